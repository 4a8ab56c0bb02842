"""The papers' systems and their registry: `config.system = "<name>"` is the `SYSTEM` of
`fashion_jax/systems/<name>.py`, so a new system is one new system file (see
`fashion_jax.systems.base.System`). Reusable networks live in `fashion_jax.models`."""

import importlib
import importlib.util
import pkgutil

from fashion_jax.systems.base import System


def known_systems() -> list[str]:
  """The model files that export a `SYSTEM` (imports each module)."""
  names = [m.name for m in pkgutil.iter_modules(__path__) if not m.name.startswith("_")]
  return sorted(n for n in names if hasattr(importlib.import_module(f"{__name__}.{n}"), "SYSTEM"))


def get_system(name: str) -> System:
  """The `SYSTEM` of `fashion_jax/systems/<name>.py`, or, for a dotted name
  (`mypackage.my_system`), of that importable module: a system of your own needs no file of
  this package touched (docs/training.md, "Adding a system")."""
  module = None
  if name.isidentifier() and importlib.util.find_spec(f"{__name__}.{name}") is not None:
    module = importlib.import_module(f"{__name__}.{name}")
  elif "." in name and all(part.isidentifier() for part in name.split(".")):
    try:
      module = importlib.import_module(name)
    except ModuleNotFoundError as e:
      raise ValueError(f"system {name!r}: {e} (is its package on the Python path?)") from None
  if not isinstance(getattr(module, "SYSTEM", None), System):
    raise ValueError(f"unknown system {name!r}; known: {known_systems()}, or a module path "
                     "(mypackage.my_system) whose SYSTEM is a fashion_jax.systems.base.System")
  return module.SYSTEM
