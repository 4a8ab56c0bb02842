"""The tested dependency set: constraints.txt pins every requirement within its range, and CI
runs the README's test command with it."""

import os
import re

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = os.path.join(os.path.dirname(__file__), "..")


def _lines(name):
  with open(os.path.join(ROOT, name)) as f:
    return [line.split("#")[0].strip() for line in f if line.split("#")[0].strip()]


def test_constraints_pin_every_requirement_inside_its_range():
  pins = {}
  for line in _lines("constraints.txt"):
    name, version = line.split("==")
    pins[canonicalize_name(name)] = version
  for file in ("requirements.txt", "requirements-test.txt"):
    for line in _lines(file):
      requirement = Requirement(line)
      name = canonicalize_name(requirement.name)
      assert name in pins, f"{file}: {requirement.name} has no pin in constraints.txt"
      assert requirement.specifier.contains(pins[name], prereleases=True), (
          f"{file}: {line} excludes the pinned {pins[name]}")


def test_ci_runs_the_readmes_test_command_with_the_constraints():
  with open(os.path.join(ROOT, "README.md")) as f:
    readme = f.read()
  with open(os.path.join(ROOT, ".ci", "run")) as f:
    ci = f.read()
  command = re.search(r"^python3 -m venv .*pytest -q$", readme, re.M).group(0)
  assert "-c constraints.txt" in command and command in ci
