"""The `fashion-jax` console script: one command, a subcommand per job.

  fashion-jax train --config=configs/fpm.py:runlocal --workdir=W
  fashion-jax eval --workdir=W
  fashion-jax predict --workdir=W --images=photos/ --out=P
  fashion-jax export --workdir=W --out=E
  fashion-jax prepare --dataset=deepfashion_attributes --manual_dir=DIR
  fashion-jax ablate --config=fpm:runlocal --workdir=W --variant=s2=stages=2 --variant=s3=stages=3
  fashion-jax cross-validate --config=sister:runlocal --workdir=W
  fashion-jax convert-weights | segment | export-synth | bench   (tools/ in the repository)

Each runs the module's own command line (`python -m fashion_jax.main`, ...), with the same
flags (`fashion-jax SUBCOMMAND --help` lists them) and exit statuses.
"""

from __future__ import annotations

import runpy
import sys

# subcommand -> (module, flags put before the user's)
COMMANDS = {
    "train": ("fashion_jax.main", ()),
    "eval": ("fashion_jax.main", ("--mode=eval",)),
    "predict": ("fashion_jax.predict", ()),
    "export": ("fashion_jax.export", ()),
    "prepare": ("fashion_jax.data.prepare", ()),
    "ablate": ("fashion_jax.experiments.ablate", ()),
    "cross-validate": ("fashion_jax.experiments.cross_validate", ()),
    "convert-weights": ("fashion_jax.tools.convert_weights", ()),
    "segment": ("fashion_jax.tools.segment", ()),
    "export-synth": ("fashion_jax.tools.export_synth", ()),
    "bench": ("fashion_jax.tools.bench_step", ()),
}


def usage() -> str:
  return (f"usage: fashion-jax {{{','.join(COMMANDS)}}} [flags]\n"
          "  fashion-jax SUBCOMMAND --help   lists the subcommand's flags\n")


def main(argv: list[str] | None = None) -> int:
  argv = sys.argv[1:] if argv is None else list(argv)
  if not argv or argv[0] in ("-h", "--help", "help"):
    sys.stdout.write(usage())
    return 0 if argv else 2
  name, rest = argv[0], argv[1:]
  if name not in COMMANDS:
    sys.stderr.write(f"error: unknown subcommand {name!r}; one of {', '.join(COMMANDS)}\n")
    return 2
  module, head = COMMANDS[name]
  sys.argv = [f"fashion-jax {name}", *head, *rest]
  runpy.run_module(module, run_name="__main__", alter_sys=True)
  return 0


if __name__ == "__main__":
  sys.exit(main())
