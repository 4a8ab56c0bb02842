"""Helpers for the real-dataset tests: tiny images and byte-exact annotation files.

Imported by name from the tests (pytest puts this folder on sys.path).
"""

from __future__ import annotations

import io
import textwrap
from pathlib import Path

import numpy as np
from PIL import Image


def write_text(path: Path, text: str) -> Path:
  """Writes `text` (dedented, so fixtures can be indented in the test) byte for byte."""
  path.parent.mkdir(parents=True, exist_ok=True)
  path.write_bytes(textwrap.dedent(text).encode())
  return path


def jpeg_bytes(seed: int, size: int = 32) -> bytes:
  rng = np.random.default_rng(seed)
  pixels = rng.integers(0, 256, (size, size, 3), dtype=np.uint8)
  buffer = io.BytesIO()
  Image.fromarray(pixels).save(buffer, format="JPEG", quality=90)
  return buffer.getvalue()


def write_jpeg(path: Path, seed: int = 0) -> Path:
  path.parent.mkdir(parents=True, exist_ok=True)
  path.write_bytes(jpeg_bytes(seed))
  return path


def write_images(root: Path, names, seed: int = 0) -> list[Path]:
  return [write_jpeg(root / name, seed + i) for i, name in enumerate(names)]


def truncate(path: Path) -> Path:
  """Cuts a JPEG in half, as an interrupted download or unzip leaves it."""
  data = path.read_bytes()
  path.write_bytes(data[:len(data) // 2])
  return path


def decoded(path: Path) -> np.ndarray:
  with Image.open(path) as image:
    return np.asarray(image.convert("RGB"))
