"""Everything around the garment: backgrounds, the wearer, occluders and the camera's look.

"shop" views: plain light backdrop, soft shadow, no wearer, rarely a small tag in front.
"street" views: cluttered backdrop (with stripes and colours that compete with the garment's),
a wearer (head, skin, other clothes) behind the garment, frequent occluders in front (bags,
poles, hands), colour casts, blur and noise.
"""

from __future__ import annotations

import cv2
import numpy as np

from fashion_jax.data.synth.garments import Geometry, Item
from fashion_jax.data.synth.paint import SKIN_TONES, SUBPIXEL_BITS, fixed_point, to_pixels


def _fill(image, polygon_px, colour) -> None:
  cv2.fillPoly(image, [fixed_point(polygon_px)], tuple(float(c) for c in colour), cv2.LINE_AA,
               SUBPIXEL_BITS)


def _capsule(a, b, half_width: float, n: int = 6) -> np.ndarray:
  """Polygon of a thick segment a-b with round ends (canonical or pixel units alike)."""
  a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
  d = (b - a) / max(np.linalg.norm(b - a), 1e-9)
  angle = np.arctan2(d[1], d[0])
  t = np.linspace(-np.pi / 2, np.pi / 2, n)
  cap_b = b + half_width * np.stack([np.cos(angle + t), np.sin(angle + t)], -1)
  cap_a = a + half_width * np.stack([np.cos(angle + np.pi + t), np.sin(angle + np.pi + t)], -1)
  return np.concatenate([cap_b, cap_a])


def _ellipse(centre, axes, n: int = 20) -> np.ndarray:
  t = np.linspace(0, 2 * np.pi, n, endpoint=False)
  return np.asarray(centre) + np.stack([axes[0] * np.cos(t), axes[1] * np.sin(t)], -1)


def shop_background(rng, size: int) -> np.ndarray:
  base = rng.uniform(222, 250) + rng.normal(0, 4, 3)
  fall_off = 1.0 - 0.07 * np.linspace(0, 1, size, dtype=np.float32)[:, None, None]
  return np.clip(np.broadcast_to(base, (size, size, 3)) * fall_off, 0, 255).astype(np.float32)


def street_background(rng, size: int) -> np.ndarray:
  """Wall/sky gradient, a floor, and 6-14 clutter shapes, some of them striped."""
  top, bottom = rng.uniform(40, 230, 3), rng.uniform(40, 230, 3)
  t = np.linspace(0, 1, size, dtype=np.float32)[:, None, None]
  image = np.ascontiguousarray(np.broadcast_to(top * (1 - t) + bottom * t, (size, size, 3)),
                               np.float32)
  horizon = rng.uniform(0.55, 0.85) * size
  _fill(image, np.array([[0, horizon], [size, horizon], [size, size], [0, size]]),
        rng.uniform(30, 200, 3))
  for _ in range(int(rng.integers(6, 15))):
    centre, extent = rng.uniform(0, size, 2), rng.uniform(0.05, 0.35, 2) * size
    colour = rng.uniform(0, 255, 3)
    kind = rng.integers(4)
    if kind == 0:
      shape = np.array([[-1, -1], [1, -1], [1, 1], [-1, 1]]) * extent / 2 + centre
    elif kind == 1:
      shape = _ellipse(centre, extent / 2)
    elif kind == 2:
      shape = _capsule(centre - extent / 2, centre + extent / 2, rng.uniform(0.005, 0.02) * size)
    else:
      shape = centre + rng.uniform(-1, 1, (3, 2)) * extent
    _fill(image, shape, colour)
    if kind == 0 and rng.random() < 0.4:  # a striped awning or sign
      step = max(3.0, rng.uniform(0.02, 0.05) * size)
      x0, y0 = centre - extent / 2
      for x in np.arange(x0, x0 + extent[0], 2 * step):
        _fill(image, np.array([[x, y0], [x + step, y0], [x + step, y0 + extent[1]],
                               [x, y0 + extent[1]]]), colour * 0.4)
  return image


def draw_wearer(image, item: Item, geom: Geometry, matrix, pose: dict, rng) -> None:
  """Head, neck, arms, legs and the wearer's other clothes, all behind the garment."""
  skin = SKIN_TONES[rng.integers(len(SKIN_TONES))] * rng.uniform(0.9, 1.05)
  other = rng.uniform(20, 220, 3)  # the wearer's other garment (no annotation)
  shapes = []
  s = item.shape
  if item.clothes_type != "lower":
    shapes += [(_ellipse((0.0, -0.36), (0.14, 0.18)), skin),
               (_ellipse((0.0, -0.43), (0.15, 0.12)), rng.uniform(10, 90, 3)),  # hair
               (np.array([[-0.07, -0.24], [0.07, -0.24], [0.07, 0.08], [-0.07, 0.08]]), skin)]
    for side, sign, deg in (("left", -1, pose["arm_deg"][0]), ("right", 1, pose["arm_deg"][1])):
      shoulder = geom.points[f"shoulder_{side}"]
      theta = np.deg2rad(deg)
      hand = shoulder + 1.2 * np.array([sign * np.sin(theta), np.cos(theta)])
      shapes.append((_capsule(shoulder, hand, 0.06), skin))
    hem_y = s["hem_y"]
    if item.clothes_type == "full":
      shapes += [(_capsule((x, hem_y - 0.1), (x * 1.2, hem_y + 0.9), 0.055), skin)
                 for x in (-0.14, 0.14)]
    else:  # trousers of another colour below the top
      shapes += [(_capsule((x, hem_y - 0.15), (x * 1.1, hem_y + 1.4), 0.14), other)
                 for x in (-0.2, 0.2)]
  else:
    wh = s["waist_half"]
    shapes += [(np.array([[-wh - 0.1, -0.95], [wh + 0.1, -0.95], [wh, 0.08], [-wh, 0.08]]),
                other), (_ellipse((0.0, -1.3), (0.14, 0.18)), skin)]
    shapes += [(_capsule((sign * (wh + 0.12), -0.9), (sign * (wh + 0.25), 0.1), 0.06), skin)
               for sign in (-1, 1)]
    if item.category == "skirt":
      shapes += [(_capsule((x, s["hem_y"] - 0.1), (x * 1.1, s["hem_y"] + 0.9), 0.055), skin)
                 for x in (-0.14, 0.14)]
    else:
      for side in ("left", "right"):
        bottom = (geom.points[f"bottom_{side}_in"] + geom.points[f"bottom_{side}_out"]) / 2
        shapes.append((_capsule(bottom - (0, 0.05), bottom + (0, 0.5 if item.category == "shorts"
                                                                  else 0.08), 0.055), skin))
  for shape, colour in shapes:
    _fill(image, to_pixels(shape, matrix), colour)


def occluders(rng, size: int, street: bool, bbox_px) -> list:
  """Polygons (pixels) of objects in front of the garment: a bag with its strap, a pole, a hand
  or a tag. Street views get one with probability 0.55 (sometimes two), shop views 0.1."""
  count = 0
  if street:
    count = int(rng.random() < 0.55) + int(rng.random() < 0.15)
  elif rng.random() < 0.1:
    count = 1
  out = []
  x1, y1, x2, y2 = bbox_px
  for _ in range(count):
    centre = rng.uniform((x1, y1), (max(x1, x2), max(y1, y2)))
    kind = rng.integers(3) if street else 3
    colour = rng.uniform(0, 255, 3)
    if kind == 0:  # bag and strap
      half = rng.uniform(0.06, 0.14, 2) * size
      out.append((np.array([[-1, -1], [1, -1], [1, 1], [-1, 1]]) * half + centre, colour))
      top = centre - (0, half[1])
      strap = top + (rng.uniform(-0.1, 0.1) * size, -rng.uniform(0.15, 0.3) * size)
      out.append((_capsule(top, strap, 0.008 * size), colour * 0.6))
    elif kind == 1:  # pole or railing across the picture
      angle = rng.uniform(-0.4, 0.4) + (np.pi / 2 if rng.random() < 0.6 else 0.0)
      d = np.array([np.cos(angle), np.sin(angle)]) * size
      out.append((_capsule(centre - d, centre + d, rng.uniform(0.015, 0.04) * size), colour))
    elif kind == 2:  # someone's hand
      out.append((_ellipse(centre, rng.uniform(0.03, 0.06, 2) * size),
                  SKIN_TONES[rng.integers(len(SKIN_TONES))]))
    else:  # a price tag
      half = rng.uniform(0.03, 0.06, 2) * size
      out.append((np.array([[-1, -1], [1, -1], [1, 1], [-1, 1]]) * half + centre,
                  (245.0, 245.0, 240.0)))
  return out


def draw_occluders(image, shapes) -> np.ndarray:
  """Draws occluder polygons; returns their union as a bool [S, S] mask."""
  mask = np.zeros(image.shape[:2], np.uint8)
  for polygon, colour in shapes:
    _fill(image, polygon, colour)
    cv2.fillPoly(mask, [fixed_point(polygon)], 1, cv2.LINE_8, SUBPIXEL_BITS)
  return mask.astype(bool)


def shop_shadow(image, silhouette, rng) -> None:
  """Darkens the backdrop under a blurred, offset copy of the silhouette."""
  size = image.shape[0]
  shift = np.float32([[1, 0, 0.02 * size], [0, 1, 0.03 * size]])
  shadow = cv2.warpAffine(silhouette, shift, (size, size))
  shadow = cv2.GaussianBlur(shadow, (0, 0), 0.02 * size + 0.5)
  image *= 1.0 - rng.uniform(0.12, 0.22) * shadow[..., None]


def camera(image, rng, street: bool) -> np.ndarray:
  """Lighting, colour cast, blur and sensor noise; float32 in, uint8 RGB out."""
  size = image.shape[0]
  if street:
    gain = rng.uniform(0.7, 1.2) * rng.uniform(0.88, 1.12, 3)
    mean = image.mean()
    image = (image - mean) * rng.uniform(0.75, 1.15) + mean
    image = image * gain
    sigma = rng.uniform(0.0, 1.1) * size / 256
    if sigma > 0.3:
      image = cv2.GaussianBlur(image, (0, 0), sigma)
    noise = rng.uniform(1.0, 7.0)
  else:
    noise = 1.5
  image = image + rng.normal(0, noise, image.shape).astype(np.float32)
  return np.clip(image + 0.5, 0, 255).astype(np.uint8)
