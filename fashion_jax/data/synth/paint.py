"""Painting a garment: patterns and fabrics in the garment's own frame, shading, part fills.

Patterns are functions of canonical coordinates (u, v), evaluated at every pixel through the
inverse of the view's affine map, so stripes, checks and prints follow the garment's pose and
scale. Fabric micro-textures (twill, ribs) have a fixed period in pixels (5 and 6) so they stay
visible at every image size, also after the 2x downscaling of the CPU configs.
"""

from __future__ import annotations

import cv2
import numpy as np

from fashion_jax.data.synth.garments import Geometry, Item

SUBPIXEL_BITS = 4  # cv2 drawing with fractional coordinates (1/16 pixel)
SHEER_ALPHA = 0.6
SKIN_TONES = np.array([(241, 194, 167), (224, 172, 105), (198, 134, 66), (141, 85, 36),
                       (92, 58, 38)], np.float32)


def to_pixels(points: np.ndarray, matrix: np.ndarray) -> np.ndarray:
  """Canonical [..., 2] -> image pixels under a 2x3 matrix."""
  return np.asarray(points, np.float64) @ matrix[:, :2].T + matrix[:, 2]


def fixed_point(points_px: np.ndarray) -> np.ndarray:
  """Pixel coordinates -> the int32 fixed-point contour cv2 draws with `shift=SUBPIXEL_BITS`."""
  return np.round(np.asarray(points_px) * (1 << SUBPIXEL_BITS)).astype(np.int32)


def coverage(polygon_px: np.ndarray, size: int) -> np.ndarray:
  """Anti-aliased coverage in [0, 1] of one polygon, float32 [size, size]."""
  canvas = np.zeros((size, size), np.uint8)
  cv2.fillPoly(canvas, [fixed_point(polygon_px)], 255, cv2.LINE_AA, SUBPIXEL_BITS)
  return canvas.astype(np.float32) / 255.0


def canonical_grid(matrix: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray]:
  """(u, v) canonical coordinates of every pixel centre, float32 [size, size] each."""
  linear = np.linalg.inv(matrix[:, :2])
  offset = -linear @ matrix[:, 2]
  y, x = np.mgrid[0:size, 0:size].astype(np.float32)
  u = linear[0, 0] * x + linear[0, 1] * y + offset[0]
  v = linear[1, 0] * x + linear[1, 1] * y + offset[1]
  return u.astype(np.float32), v.astype(np.float32)


def _frac(x):
  return x - np.floor(x)


def _cell_hash(i, j, salt: float):
  """A deterministic pseudo-random number in [0, 1) per integer cell (i, j)."""
  return _frac(np.sin(i * 12.9898 + j * 78.233 + salt) * 43758.5453)


def pattern_index(item: Item, u, v, matrix: np.ndarray, size: int) -> np.ndarray:
  """Which of the item's colours (0 main, 1, 2) each pixel shows; int [size, size]."""
  rng = np.random.default_rng(item.seed + 1)
  p = item.pattern
  if p == "striped":
    angle = np.deg2rad(rng.choice([0.0, 90.0, 45.0, -45.0]))
    period = rng.uniform(0.08, 0.16)
    phase = (u * np.cos(angle) + v * np.sin(angle)) / period + rng.random()
    index = (_frac(phase) < 0.45).astype(np.int32)
  elif p == "plaid":
    period = rng.uniform(0.16, 0.26)
    bu, bv = _frac(u / period + rng.random()) < 0.3, _frac(v / period + rng.random()) < 0.3
    index = np.where(bu & bv, 2, np.where(bu | bv, 1, 0))
  elif p == "dotted":
    period, radius = rng.uniform(0.09, 0.14), rng.uniform(0.22, 0.32)
    row = np.floor(v / period)
    du, dv = _frac(u / period + 0.5 * (row % 2)) - 0.5, _frac(v / period) - 0.5
    index = (du**2 + dv**2 < radius**2).astype(np.int32)
  elif p == "floral":
    index = _floral(u, v, rng.uniform(0.2, 0.28), rng.random())
  elif p == "graphic print":
    index = _graphic(item, rng, matrix, size)
  else:
    index = np.zeros(u.shape, np.int32)
  return np.minimum(index, len(item.colour_names) - 1)  # never show an unlabelled colour


def _floral(u, v, period: float, salt: float) -> np.ndarray:
  """Five-petal flowers on a jittered lattice; petals colour 1, hearts colour 2."""
  i, j = np.floor(u / period), np.floor(v / period)
  lu = _frac(u / period) - 0.5 - 0.3 * (_cell_hash(i, j, salt) - 0.5)
  lv = _frac(v / period) - 0.5 - 0.3 * (_cell_hash(j, i, salt) - 0.5)
  turn = 2 * np.pi * _cell_hash(i, j, salt + 1.0)
  petals = np.zeros(u.shape, bool)
  for k in range(5):
    a = turn + 2 * np.pi * k / 5
    petals |= (lu - 0.17 * np.cos(a)) ** 2 + (lv - 0.17 * np.sin(a)) ** 2 < 0.11**2
  heart = lu**2 + lv**2 < 0.07**2
  return np.where(heart, 2, petals.astype(np.int32))


def _graphic(item: Item, rng, matrix: np.ndarray, size: int) -> np.ndarray:
  """One large print (star, ring, diamond or bolt) on the chest or the front of the leg."""
  centre = (np.array([0.0, item.shape["armpit_y"] + 0.15]) if item.clothes_type != "lower"
            else np.array([-0.15, 0.35]))
  radius = rng.uniform(0.12, 0.18)
  kind = rng.choice(["star", "ring", "diamond", "bolt"])
  a = np.linspace(0, 2 * np.pi, 11)[:-1] - np.pi / 2
  shapes = {
      "star": np.stack([np.cos(a), np.sin(a)], -1) * np.where(np.arange(10) % 2, 0.45, 1)[:, None],
      "ring": np.stack([np.cos(a), np.sin(a)], -1),
      "diamond": np.array([[0, -1], [0.7, 0], [0, 1], [-0.7, 0]], np.float64),
      "bolt": np.array([[0.2, -1], [-0.5, 0.1], [0.0, 0.1], [-0.2, 1], [0.5, -0.2], [0.0, -0.2]]),
  }
  index = np.zeros((size, size), np.int32)
  outline = to_pixels(centre + radius * shapes[kind], matrix)
  cv2.fillPoly(index, [fixed_point(outline)], 1, cv2.LINE_8, SUBPIXEL_BITS)
  inner = to_pixels(centre + 0.45 * radius * shapes["diamond"], matrix)
  cv2.fillPoly(index, [fixed_point(inner)], 2, cv2.LINE_8, SUBPIXEL_BITS)
  return index


def shading(item: Item, u, v, pixels_per_unit: float, rng) -> np.ndarray:
  """Folds, top-down light fall-off and the fabric's micro-texture, float32 [H, W]."""
  prng = np.random.default_rng(item.seed + 2)
  ph = prng.uniform(0, 2 * np.pi, 2)
  shade = (1.0 + 0.07 * np.sin(2 * np.pi * (1.6 * u + 0.4 * v) + ph[0])
           + 0.05 * np.sin(2 * np.pi * (0.7 * v - 0.9 * u) + ph[1]) - 0.06 * v)
  px = 1.0 / pixels_per_unit  # one pixel in canonical units
  if item.fabric == "denim":  # diagonal twill, 5-pixel period, and slub noise
    shade *= 0.88 + 0.12 * np.sign(np.sin(2 * np.pi * (u + v) / (5.0 * px)))
    shade *= 1.0 + rng.normal(0, 0.05, u.shape)
  elif item.fabric == "knit":  # vertical ribs, 6-pixel period
    shade *= 0.78 + 0.22 * np.abs(np.sin(np.pi * u / (6.0 * px)))
  elif item.fabric == "corduroy":  # wide vertical wales with sharp dark grooves, 10 pixels
    shade *= 0.7 + 0.3 * np.minimum(1.0, 2.5 * np.abs(np.sin(np.pi * u / (10.0 * px))))
  elif item.fabric == "leather":  # one broad specular highlight
    shade += 0.45 * np.exp(-((u - 0.15) ** 2 + (v - 0.3) ** 2) / 0.02)
  else:
    shade *= 1.0 + rng.normal(0, 0.015, u.shape)
  return shade.astype(np.float32)


def _fill_colours(item: Item) -> dict:
  """Flat colours of the parts that are not cut from the garment's fabric."""
  prng = np.random.default_rng(item.seed + 3)
  contrast = item.colours[1] if item.pattern == "solid" else item.colours[2]
  inner = np.array([(236, 236, 230), (30, 30, 36), (150, 150, 150)][prng.integers(3)], np.float32)
  scarf = np.array(prng.uniform(30, 230, 3), np.float32)
  return {"trim": contrast, "tie": item.colours[2], "inner": inner, "scarf": scarf,
          "belt": np.array((52, 36, 26), np.float32)}


# Parts cut from the garment's fabric, and their brightness relative to it.
_FABRIC_FILLS = {"garment": 1.0, "sleeve": 0.93, "collar": 1.1, "band": 0.82}


def silhouette(geom: Geometry, matrix: np.ndarray, size: int) -> np.ndarray:
  """Coverage of the union of the garment's parts, float32 [size, size] in [0, 1]."""
  canvas = np.zeros((size, size), np.uint8)
  for part in geom.parts:
    cv2.fillPoly(canvas, [fixed_point(to_pixels(part.polygon, matrix))], 255, cv2.LINE_AA,
                 SUBPIXEL_BITS)
  return canvas.astype(np.float32) / 255.0


def paint_garment(image: np.ndarray, item: Item, geom: Geometry, matrix: np.ndarray,
                  rng: np.random.Generator) -> None:
  """Composites the garment's parts onto `image` (float32 [S, S, 3], modified in place)."""
  size = image.shape[0]
  u, v = canonical_grid(matrix, size)
  pixels_per_unit = float(np.sqrt(abs(np.linalg.det(matrix[:, :2]))))
  shade = shading(item, u, v, pixels_per_unit, rng)[..., None]
  fabric = item.colours[pattern_index(item, u, v, matrix, size)] * shade
  flat = _fill_colours(item)
  for part in geom.parts:
    alpha = coverage(to_pixels(part.polygon, matrix), size)
    if part.fill in _FABRIC_FILLS:
      colour = fabric * _FABRIC_FILLS[part.fill]
      alpha = alpha * (SHEER_ALPHA if item.fabric == "sheer" else 1.0)
    else:
      colour = flat[part.fill] * shade
    a = alpha[..., None]
    image *= 1.0 - a
    image += a * colour
  np.clip(image, 0, 255, out=image)
  _draw_details(image, item, geom, matrix, pixels_per_unit, flat["trim"])


def _draw_details(image, item: Item, geom: Geometry, matrix, pixels_per_unit: float,
                  trim) -> None:
  """Seams along every part and pocket, buttons, embellishment dots, rips, logos, buckles."""
  main = item.colours[0]
  dark = float(main.mean()) < 70
  seam = tuple(float(c) for c in (main + 60 if dark else main * 0.5))
  button = (225.0, 225.0, 215.0) if dark else (35.0, 30.0, 30.0)
  thickness = max(1, round(image.shape[0] / 320))
  radius = max(1.0, 0.02 * pixels_per_unit)
  # The X-Domain-style set draws buttons larger (xdomain.distinct): a label must be visible.
  button_radius = max(1.0, item.shape.get("button_radius", 0.02) * pixels_per_unit)

  def poly(points, closed):
    return [fixed_point(to_pixels(points, matrix))], closed

  for part in geom.parts:
    cv2.polylines(image, *poly(part.polygon, True), seam, thickness, cv2.LINE_AA, SUBPIXEL_BITS)
  for kind, points in geom.decor:
    if kind in ("seam", "buckle"):
      colour = (230.0, 200.0, 90.0) if kind == "buckle" else seam
      cv2.polylines(image, *poly(points, kind == "buckle"), colour, thickness, cv2.LINE_AA,
                    SUBPIXEL_BITS)
    elif kind in ("rip", "logo"):
      colour = main * 0.35 if kind == "rip" else trim  # a logo takes the trims' colour
      cv2.fillPoly(image, [fixed_point(to_pixels(points, matrix))],
                   tuple(float(c) for c in colour), cv2.LINE_AA, SUBPIXEL_BITS)
    else:  # button or embellishment dot
      centre = tuple(int(c) for c in fixed_point(to_pixels(points, matrix))[0])
      r = button_radius if kind == "button" else 0.6 * radius
      colour = button if kind == "button" else (250.0, 225.0, 130.0)
      cv2.circle(image, centre, int(round(r * (1 << SUBPIXEL_BITS))), colour, -1, cv2.LINE_AA,
                 SUBPIXEL_BITS)
