"""Readers shared by the real-dataset builders: list files, typed cells, image checks.

Everything here is pure Python and raises `AnnotationError` naming the file and the 1-based
line for malformed input, so that each builder's parser stays a short description of its format.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import math
import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

if TYPE_CHECKING:
  import numpy as np

T = TypeVar("T")


class AnnotationError(ValueError):
  """Malformed or inconsistent annotation input; the message starts with `file:line:`."""

  def __init__(self, path, line: int | None, message: str):
    self.path = Path(path)
    self.line = line
    where = f"{path}:{line}" if line else f"{path}"
    super().__init__(f"{where}: {message}")


@dataclasses.dataclass(frozen=True)
class Row:
  """One whitespace-split row of an annotation file; `line` is 1-based."""

  line: int
  tokens: tuple[str, ...]

  @property
  def name(self) -> str:
    return self.tokens[0]


def iter_rows(path) -> Iterator[Row]:
  """The non-blank lines of a text file, split on whitespace (alignment padding folds, LF or
  CRLF), read lazily: the attribute list of DeepFashion is ~1 GB of text."""
  path = Path(path)
  if not path.is_file():
    raise FileNotFoundError(f"annotation file not found: {path}")
  with open(path, "rb") as f:  # decoded per line so that an encoding error names its line
    for line, raw in enumerate(f, start=1):
      try:
        tokens = raw.decode("utf-8").split()
      except UnicodeDecodeError as e:
        raise AnnotationError(path, line, f"not UTF-8 text ({e.reason})") from None
      if tokens:
        yield Row(line, tuple(tokens))


def read_rows(path) -> list[Row]:
  """All rows of a small header-less file."""
  return list(iter_rows(path))


def iter_listing(path, first_column: str) -> Iterator[Row]:
  """The rows of a DeepFashion `list_*.txt`: a count line, a column-name line, then the rows.

  The count is checked once the rows are exhausted, so consume the iterator fully.

  Args:
    first_column: the name the column-name line must start with (e.g. `image_name`); only the
      first name is checked because the published headers list columns the rows do not have.

  Raises:
    AnnotationError: no count line, no column-name line, or a count that disagrees with the rows.
  """
  rows = iter_rows(path)
  count_row = next(rows, None)
  if count_row is None or len(count_row.tokens) != 1 or not count_row.tokens[0].isdigit():
    line = count_row.line if count_row else 1
    raise AnnotationError(path, line, "expected the count line (a single non-negative integer)")
  header = next(rows, None)
  if header is None or header.tokens[0] != first_column:
    line = header.line if header else count_row.line + 1
    raise AnnotationError(
        path, line, f"expected the column-name line starting with {first_column!r}")
  found = 0
  for row in rows:
    found += 1
    yield row
  count = int(count_row.tokens[0])
  if count != found:
    raise AnnotationError(
        path, count_row.line, f"the count line says {count} rows but the file has {found}")


def read_listing(path, first_column: str) -> list[Row]:
  """All rows of a small list file (see `iter_listing`)."""
  return list(iter_listing(path, first_column))


def expect_columns(row: Row, counts: int | Iterable[int], path, what: str = "columns") -> None:
  """Refuses a row whose number of tokens is not one of `counts`."""
  counts = (counts,) if isinstance(counts, int) else tuple(counts)
  if len(row.tokens) not in counts:
    expected = " or ".join(str(c) for c in counts)
    raise AnnotationError(
        path, row.line, f"expected {expected} {what}, found {len(row.tokens)}")


def to_ints(tokens: Sequence[str], path, line: int, what: str) -> list[int]:
  """Parses integer cells; a non-numeric cell is refused naming the cell."""
  try:
    return [int(t) for t in tokens]
  except ValueError:
    bad = next(t for t in tokens if not _is_int(t))
    raise AnnotationError(path, line, f"{what}: {bad!r} is not an integer") from None


def to_floats(tokens: Sequence[str], path, line: int, what: str) -> list[float]:
  """Parses numeric cells (integers or decimals); NaN and infinities are refused."""
  values = []
  for token in tokens:
    try:
      value = float(token)
    except ValueError:
      raise AnnotationError(path, line, f"{what}: {token!r} is not a number") from None
    if not math.isfinite(value):
      raise AnnotationError(path, line, f"{what}: {token!r} is not a finite number")
    values.append(value)
  return values


def to_box(tokens: Sequence[str], path, line: int, what: str = "bbox") -> list[float]:
  """`x1 y1 x2 y2` pixels, refused unless 0 <= x1 < x2 and 0 <= y1 < y2."""
  box = to_floats(tokens, path, line, what)
  x1, y1, x2, y2 = box
  if min(box) < 0 or x2 <= x1 or y2 <= y1:
    raise AnnotationError(path, line, f"{what}: {box} is not a box in pixels (expected "
                          "0 <= x1 < x2 and 0 <= y1 < y2)")
  return box


def to_choice(value: int, allowed: Iterable[int], path, line: int, what: str) -> int:
  allowed = tuple(allowed)
  if value not in allowed:
    raise AnnotationError(path, line, f"{what}: {value} is not one of {allowed}")
  return value


def _is_int(token: str) -> bool:
  try:
    int(token)
  except ValueError:
    return False
  return True


def index_rows(rows: Iterable[Row], path,
               parse: Callable[[Row], T]) -> dict[str, tuple[int, T]]:
  """`parse(row)` keyed by image name (first token) with the row's line; a name listed twice is
  refused. Only the parsed values are kept, never the tokens."""
  index: dict[str, tuple[int, T]] = {}
  for row in rows:
    if row.name in index:
      raise AnnotationError(
          path, row.line, f"{row.name} is listed twice (first at line {index[row.name][0]})")
    index[row.name] = (row.line, parse(row))
  return index


def check_same_names(reference: dict[str, tuple], reference_path, other: dict[str, tuple],
                     other_path) -> None:
  """Refuses an image listed in one file but absent from the other (values: (line, ...))."""
  for name, (line, *_) in reference.items():
    if name not in other:
      raise AnnotationError(reference_path, line, f"{name} is not listed in {other_path}")
  for name, (line, *_) in other.items():
    if name not in reference:
      raise AnnotationError(other_path, line, f"{name} is not listed in {reference_path}")


def find_first(root, candidates: Sequence[str], what: str) -> Path:
  """The first of `root/candidate` that exists (published layouts differ between releases)."""
  root = Path(root)
  for candidate in candidates:
    if (root / candidate).exists():
      return root / candidate
  looked = ", ".join(str(root / c) for c in candidates)
  raise FileNotFoundError(f"{what} not found; looked for: {looked}")


def read_csv_records(path) -> list[tuple[int, list[str]]]:
  """The non-empty records of a CSV file, each with the (1-based) line it ends on."""
  path = Path(path)
  if not path.is_file():
    raise FileNotFoundError(f"annotation file not found: {path}")
  records = []
  with open(path, newline="", encoding="utf-8") as f:
    reader = csv.reader(f)
    for row in reader:
      if row:
        records.append((reader.line_num, row))
  if not records:
    raise AnnotationError(path, 1, "empty file: expected a header line")
  return records


def check_csv_header(header: Sequence[str], path, expected: Sequence[str]) -> None:
  """Refuses a CSV whose header does not start with the `expected` column names."""
  if tuple(header[:len(expected)]) != tuple(expected):
    raise AnnotationError(
        path, 1, f"expected the header to start with {','.join(expected)}; "
        f"found {','.join(header[:len(expected)])}")


# ---------------------------------------------------------------------------------------------
# Images. Policy (docs/datasets.md): a missing image stops preparation (the manual directory is
# incomplete); an image that cannot be fully decoded (corrupt or truncated) is skipped, counted
# and named in the summary; a decodable image that is not JPEG/PNG in L or RGB mode (CMYK, RGBA,
# palette, ...) is re-encoded as an RGB JPEG and counted.

IMAGE_OK = "ok"
IMAGE_REENCODE = "reencode"
IMAGE_CORRUPT = "corrupt"

_PASS_THROUGH_FORMATS = ("JPEG", "PNG")
_PASS_THROUGH_MODES = ("L", "RGB")
REENCODE_QUALITY = 95


@dataclasses.dataclass(frozen=True)
class ImageCheck:
  status: str  # IMAGE_OK, IMAGE_REENCODE or IMAGE_CORRUPT
  reason: str = ""
  size: tuple[int, int] | None = None  # (width, height) of a decodable image


# Images larger than this are refused before decoding (a small file can declare a huge image).
DEFAULT_MAX_PIXELS = 50_000_000


class ImageError(ValueError):
  """An image file that cannot be used; the message names the file and the reason."""


def _decode_problem(e: Exception) -> str:
  from PIL import Image

  if isinstance(e, Image.UnidentifiedImageError):
    return "corrupt image: not in a known image format"
  if isinstance(e, Image.DecompressionBombError):  # raised on open, from the header alone
    return f"too large: {e}"
  if "truncated" in str(e).lower():  # Pillow: "image file is truncated (...)", "Truncated File
    # Read" (data cut inside the header)
    return "truncated image: the data ends early"
  return f"corrupt image: {type(e).__name__}: {e}"


def _decode_errors():
  from PIL import Image

  return (OSError, SyntaxError, ValueError, Image.DecompressionBombError)


def check_image(path) -> ImageCheck:
  """Fully decodes an image file; truncated or corrupt data is reported, never repaired."""
  from PIL import Image  # deferred: only preparation needs Pillow

  try:
    with Image.open(path) as image:
      image.load()  # decodes every byte: raises on truncation
      fmt, mode, size = image.format, image.mode, image.size
  except _decode_errors() as e:
    return ImageCheck(IMAGE_CORRUPT, _decode_problem(e))
  if fmt in _PASS_THROUGH_FORMATS and mode in _PASS_THROUGH_MODES:
    return ImageCheck(IMAGE_OK, size=size)
  return ImageCheck(IMAGE_REENCODE, f"{fmt} {mode} re-encoded as RGB JPEG", size=size)


def read_rgb(path, max_pixels: int = DEFAULT_MAX_PIXELS) -> np.ndarray:
  """The image at `path` as RGB uint8 [H, W, 3], fully decoded, turned upright as its EXIF
  orientation says (as a photo viewer shows it).

  Raises:
    ImageError: (naming the file) when the header declares more than `max_pixels` pixels (the
      check comes before decoding; Pillow's own `Image.MAX_IMAGE_PIXELS` check, on open, comes
      first unless the caller lifts it), or the data is truncated or corrupt.
  """
  import numpy as np
  from PIL import Image, ImageOps

  try:
    with Image.open(path) as image:
      width, height = image.size
      if width * height > max_pixels:
        raise ImageError(f"{path}: {width}x{height} = {width * height} pixels is over the "
                         f"limit of {max_pixels}")
      image.load()
      return np.asarray(ImageOps.exif_transpose(image).convert("RGB"))
  except ImageError:
    raise
  except _decode_errors() as e:
    raise ImageError(f"{path}: {_decode_problem(e)}") from None


def image_bytes(path, reencode: bool) -> bytes:
  """The bytes handed to TFDS: the file itself, or an RGB JPEG re-encoding of it."""
  if not reencode:
    return Path(path).read_bytes()
  from PIL import Image

  with Image.open(path) as image:
    buffer = io.BytesIO()
    image.convert("RGB").save(buffer, format="JPEG", quality=REENCODE_QUALITY)
  return buffer.getvalue()


def missing_images(paths: Iterable[os.PathLike]) -> list[Path]:
  return [Path(p) for p in paths if not os.path.isfile(p)]


def mask_path(masks_dir: Path, image_id: str) -> Path:
  """Where a user-supplied (or tools/segment.py) mask of `image_id` lives: the image's relative
  path with a .png suffix, under `masks_dir`."""
  return Path(masks_dir) / Path(image_id).with_suffix(".png")


def check_mask(mask: Path, image: Path) -> str | None:
  """Why `mask` cannot be `image`'s mask (unreadable, or another size), or None."""
  from PIL import Image

  try:
    with Image.open(mask) as m, Image.open(image) as i:
      m.load()
      if m.size != i.size:
        return f"is {m.size[0]}x{m.size[1]} but the image {image.name} is {i.size[0]}x{i.size[1]}"
  except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as e:
    return f"cannot be read as an image ({e})"
  return None


def mask_is_empty(path: Path) -> bool:
  """Whether a (readable) mask has no non-zero pixel: nothing segmented."""
  import numpy as np
  from PIL import Image

  with Image.open(path) as mask:
    return not np.asarray(mask).any()


def mask_png(path: Path) -> bytes:
  """A mask file as the single-channel PNG the schema stores: 255 where the mask is non-zero
  (any mode; colour masks count any non-black pixel), 0 elsewhere."""
  import numpy as np
  from PIL import Image

  with Image.open(path) as image:
    values = np.asarray(image.convert("L"))
  buffer = io.BytesIO()
  Image.fromarray(np.where(values > 0, 255, 0).astype(np.uint8), mode="L").save(buffer, "PNG")
  return buffer.getvalue()


def empty_mask_png() -> bytes:
  """A 1x1 black single-channel PNG: the `mask` of a dataset without masks (`has_mask=False`)."""
  from PIL import Image

  buffer = io.BytesIO()
  Image.new("L", (1, 1), 0).save(buffer, format="PNG")
  return buffer.getvalue()
