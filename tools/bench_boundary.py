"""Maps per second of `boundary_attention` (jitted jnp) against an OpenCV per-image loop.

Run from the repository root:

  python -m tools.bench_boundary
  python -m tools.bench_boundary --batch_sizes=32,256 --sizes=56,224 --repeats=7

The jnp op is timed after warm-up with `block_until_ready`, its landmarks already on the device
(as in a train step, where they are predictions). The OpenCV loop does what a data loader would do
per image: snap, `cv2.convexHull`, `cv2.fillPoly`, `cv2.GaussianBlur`. Both use the same landmark
sets, kernel and sigma. Each figure is the best of `--repeats` timed rounds of at least
`--min_seconds` each, which damps the noise of a shared machine. Prints a Markdown table.
"""

from __future__ import annotations

import argparse
import functools
import os
import platform
import time

import cv2
import jax
import numpy as np

from fashion_jax.ops import boundary


def garment_like_landmarks(rng: np.random.Generator, batch: int, num: int, size: int):
  """[batch, num, 2] points around a random ellipse (a garment-like outline) and a validity mask
  with ~10% of the landmarks absent."""
  angles = np.sort(rng.uniform(0, 2 * np.pi, (batch, num)), axis=-1)
  radii = rng.uniform(0.15, 0.45, (batch, 1, 2)) * size * rng.uniform(0.7, 1.0, (batch, num, 1))
  centres = rng.uniform(0.35, 0.65, (batch, 1, 2)) * size
  points = centres + radii * np.stack([np.cos(angles), np.sin(angles)], axis=-1)
  return points.astype(np.float32), rng.random((batch, num)) > 0.1


def opencv_attention(points: np.ndarray, valid: np.ndarray, size: int, sigma: float) -> np.ndarray:
  """The per-image OpenCV loop a data loader would run: [B, L, 2], [B, L] -> [B, size, size]."""
  ksize = 2 * boundary.blur_radius(sigma) + 1
  maps = np.zeros((len(points), size, size), np.float32)
  for b in range(len(points)):
    snapped = np.floor(points[b][valid[b]] + 0.5).astype(np.int32)
    mask = np.zeros((size, size), np.float32)
    if len(snapped):
      cv2.fillPoly(mask, [cv2.convexHull(snapped)], color=1.0)
    maps[b] = cv2.GaussianBlur(mask, (ksize, ksize), sigma, sigmaY=sigma) if sigma else mask
  return maps


def best_seconds(fn, *args, repeats: int, min_seconds: float) -> float:
  """Best time of `fn(*args)` over `repeats` rounds, each of enough calls to last `min_seconds`."""
  fn(*args)  # warm-up (compilation for the jnp op)
  start, calls = time.perf_counter(), 0
  while time.perf_counter() - start < min_seconds:
    fn(*args)
    calls += 1
  best = float("inf")
  for _ in range(repeats):
    start = time.perf_counter()
    for _ in range(calls):
      fn(*args)
    best = min(best, (time.perf_counter() - start) / calls)
  return best


def main():
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--batch_sizes", default="32,256")
  parser.add_argument("--sizes", default="56,224", help="map heights (= widths)")
  parser.add_argument("--landmarks", type=int, default=8)
  parser.add_argument("--sigma_per_56", type=float, default=2.0,
                      help="blur sigma in pixels of a 56x56 map; scaled with the map size")
  parser.add_argument("--repeats", type=int, default=5)
  parser.add_argument("--min_seconds", type=float, default=0.25)
  args = parser.parse_args()

  device = jax.devices()[0]
  print(f"JAX {jax.__version__}, backend {jax.default_backend()}, device {device.device_kind} "
        f"(x{jax.device_count()}); OpenCV {cv2.__version__} with {cv2.getNumThreads()} threads; "
        f"{os.cpu_count()} CPU cores, {platform.processor() or platform.machine()}")
  print()
  print("| B | H | sigma | jnp maps/s | OpenCV maps/s | jnp / OpenCV |")
  print("|---:|---:|---:|---:|---:|---:|")
  rng = np.random.default_rng(0)
  for size in (int(s) for s in args.sizes.split(",")):
    sigma = args.sigma_per_56 * size / 56
    op = jax.jit(functools.partial(boundary.boundary_attention, height=size, width=size,
                                   sigma=sigma))
    run_op = lambda points, valid, op=op: op(points, valid).block_until_ready()
    timing = {"repeats": args.repeats, "min_seconds": args.min_seconds}
    for batch in (int(b) for b in args.batch_sizes.split(",")):
      points, valid = garment_like_landmarks(rng, batch, args.landmarks, size)
      on_device = jax.device_put((points, valid))
      ours = best_seconds(run_op, *on_device, **timing)
      loop = best_seconds(opencv_attention, points, valid, size, sigma, **timing)
      print(f"| {batch} | {size} | {sigma:g} | {batch / ours:,.0f} | {batch / loop:,.0f} | "
            f"{loop / ours:.2f} |", flush=True)


if __name__ == "__main__":
  main()
