"""The persistent compilation cache is bounded: past FASHION_JAX_CACHE_MAX_GB the least recently
used programs go (measured in a fresh process: the cache is process-wide JAX config)."""

import os
import subprocess
import sys

import pytest

from fashion_jax import compile_cache

COMPILE_30 = """
import os, sys
import jax, jax.numpy as jnp
from fashion_jax import compile_cache
path = compile_cache.enable(sys.argv[1], min_compile_seconds=0.0)
jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)
for k in range(30):  # 30 distinct small programs
  jax.jit(lambda x, k=k: jnp.sin(x) * k + jnp.cos(x) ** (k % 5))(jnp.ones((k + 3, 7)))
files = [os.path.join(d, f) for d, _, fs in os.walk(path) for f in fs]
print(len(files), sum(os.path.getsize(f) for f in files))
"""


def _cache_after_30_programs(folder, bound: str):
  env = dict(os.environ, FASHION_JAX_CACHE_MAX_GB=bound, JAX_PLATFORMS="cpu")
  out = subprocess.run([sys.executable, "-c", COMPILE_30, str(folder)], env=env,
                       capture_output=True, text=True, timeout=300)
  assert out.returncode == 0, out.stderr[-2000:]
  files, size = map(int, out.stdout.split())
  return files, size


def test_the_cache_stays_within_its_bound(tmp_path):
  files, size = _cache_after_30_programs(tmp_path / "bounded", "0.00003")  # 30 kB
  all_files, all_size = _cache_after_30_programs(tmp_path / "unbounded", "unlimited")
  assert size <= 30_000 < all_size  # the programs need more than the bound; it holds
  assert 0 < files < all_files


@pytest.mark.parametrize("value", ["0", "-1", "lots"])
def test_a_bad_bound_is_named(monkeypatch, value):
  monkeypatch.setenv("FASHION_JAX_CACHE_MAX_GB", value)
  with pytest.raises(ValueError, match=f"FASHION_JAX_CACHE_MAX_GB='{value}'"):
    compile_cache.max_bytes()
