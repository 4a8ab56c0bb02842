"""Parts and decorations added to a garment's body: collars, lapels, buttons, neckties,
scarves, belts, two-tone trims, pockets, embellishment and rips (canonical frame, see
`garments`). Parts are polygons that may cover keypoints; decorations are only drawn.
"""

from __future__ import annotations

import dataclasses

import cv2
import numpy as np


@dataclasses.dataclass(frozen=True)
class Part:
  """A filled polygon [N, 2]; `fill` says how it is painted (see `paint`)."""

  name: str
  polygon: np.ndarray
  fill: str


def bezier(p0, control, p1, n: int = 8) -> np.ndarray:
  """Quadratic Bezier from p0 to p1, both ends included: [n + 1, 2]."""
  t = np.linspace(0.0, 1.0, n + 1)[:, None]
  p0, control, p1 = (np.asarray(p, np.float64) for p in (p0, control, p1))
  return (1 - t) ** 2 * p0 + 2 * (1 - t) * t * control + t**2 * p1


def quad(x0, y0, x1, y1) -> np.ndarray:
  return np.array([[x0, y0], [x1, y0], [x1, y1], [x0, y1]], np.float64)


def add_front(item, parts: list, decor: list) -> None:
  """Collar flaps or an open front with lapels, buttons, a necktie, a scarf."""
  s = item.shape
  nh, nd, hem_y = s["neck_half"], s["neck_depth"], s["hem_y"]
  outwear = item.category in ("jacket", "coat")
  if outwear:  # open front: the inner layer shows in a V, the opening runs to the hem
    depth = min(0.55, hem_y * 0.45)
    parts.append(Part("inner", np.array([[-nh, 0.0], [nh, 0.0], [0.0, depth]]), "inner"))
    decor.append(("seam", np.array([[0.0, depth], [0.0, hem_y]])))
    if item.neck == "collar":
      for sign in (-1.0, 1.0):
        lapel = np.array([[sign * nh, 0.0], [sign * (nh + 0.06), 0.06],
                          [sign * 0.06, depth * 0.85], [sign * 0.02, depth * 0.6]])
        parts.append(Part("lapel", lapel, "collar"))
  elif item.neck == "collar":
    for sign in (-1.0, 1.0):
      flap = np.array([[sign * nh, 0.0], [sign * (nh + 0.05), 0.13], [sign * 0.035, nd + 0.02]])
      parts.append(Part("collar", flap, "collar"))
  if "buttons" in item.parts:
    top = min(0.55, hem_y * 0.45) if outwear else nd + 0.07
    ys = np.arange(top, hem_y - 0.06, 0.12)
    x = 0.04 if outwear else 0.0
    decor += [("button", np.array([[x, y]])) for y in ys]
    if not outwear:
      decor.append(("seam", np.array([[0.03, nd], [0.03, hem_y]])))
  if "necktie" in item.styles:
    tie = np.array([[0.0, nd], [0.035, nd + 0.04], [0.055, nd + 0.45], [0.0, nd + 0.52],
                    [-0.055, nd + 0.45], [-0.035, nd + 0.04]])
    parts.append(Part("necktie", tie, "tie"))
  if "scarf" in item.styles:
    outer = bezier((-nh - 0.1, -0.03), (0.0, nd + 0.16), (nh + 0.1, -0.03))
    inner = bezier((nh - 0.04, -0.08), (0.0, nd - 0.1), (-nh + 0.04, -0.08))
    parts.append(Part("scarf", np.concatenate([outer, inner]), "scarf"))
    parts.append(Part("scarf", quad(-nh + 0.02, 0.02, -nh + 0.13, 0.5), "scarf"))


def add_extras(item, pts: dict, parts: list, decor: list, hem: str) -> None:
  """Belt, two-tone trims, pockets and the item's embellishment or distressing."""
  s = item.shape
  upper = item.clothes_type != "lower"
  if "belt" in item.parts:
    y, half = (s["waist_y"], s["waist_half"]) if upper else (0.0, s["waist_half"])
    band = quad(-half, y - 0.035, half, y + 0.035) if upper else quad(-half, y, half, y + 0.07)
    parts.append(Part("belt", band, "belt"))
    decor.append(("buckle", quad(-0.04, band[0, 1] - 0.01, 0.04, band[2, 1] + 0.01)))
  if "two tone" in item.styles:
    for side in ("left", "right"):
      if upper and item.sleeve != "none":
        out, inn = pts[f"cuff_{side}_out"], pts[f"cuff_{side}_in"]
        back = (pts[f"shoulder_{side}"] - out) / np.linalg.norm(pts[f"shoulder_{side}"] - out)
        parts.append(Part("trim", np.stack([out, inn, inn + 0.07 * back, out + 0.07 * back]),
                          "trim"))
    left, right = (pts[f"{hem}_left"], pts[f"{hem}_right"]) if upper else (
        pts["waistband_left"], pts["waistband_right"])
    band = 0.07 if upper else -0.06  # a hem band on tops, a contrasting waistband below
    parts.append(Part("trim", np.stack([left, right, right - (0, band), left - (0, band)]),
                      "trim"))
  if "logo" in item.styles:  # a small badge on the wearer's chest, or on the hip below
    x, y = (-0.22, s["armpit_y"] + 0.05) if upper else (0.5 * s["waist_half"], 0.22)
    decor.append(("logo", quad(x - 0.05, y - 0.04, x + 0.05, y + 0.04)))
  if "pockets" in item.parts:
    y = s["hem_y"] * 0.72 if upper else 0.12
    for sign in (-1.0, 1.0):
      x = sign * (0.22 if upper else s["waist_half"] * 0.55)
      decor.append(("seam", quad(x - 0.08, y, x + 0.08, y + 0.14)[[0, 1, 2, 3, 0]]))
  rng = np.random.default_rng(item.seed)
  if "embellished" in item.styles:
    decor += [("dot", c[None]) for c in _inside(parts[0].polygon, rng, int(rng.integers(15, 30)))]
  if "distressed" in item.styles:
    a = np.linspace(0, 2 * np.pi, 9)[:-1]
    for c in _inside(parts[0].polygon, rng, int(rng.integers(3, 7)), margin=0.06):
      r = rng.uniform([0.02, 0.006], [0.05, 0.015])
      decor.append(("rip", c + np.stack([r[0] * np.cos(a), r[1] * np.sin(a)], -1)))


def _inside(polygon: np.ndarray, rng, n: int, margin: float = 0.02) -> list:
  """Up to `n` random points at least `margin` inside `polygon` (rejection sampling)."""
  contour = polygon.astype(np.float32)
  candidates = rng.uniform(polygon.min(0), polygon.max(0), (4 * n, 2))
  keep = [c for c in candidates
          if cv2.pointPolygonTest(contour, (float(c[0]), float(c[1])), True) > margin]
  return keep[:n]
