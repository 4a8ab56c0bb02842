"""One synthetic example: an item, a view of it (shop or street), and its exact annotations.

Item `index // views_per_item` is drawn from `(seed, item_id)`, so every view of a garment
shows the same category, colours, pattern, parts and shape; view 0 is its "shop" image and the
others are "street" images. A view is drawn from `(seed, index)`: deterministic per seed.

Visibility of each keypoint and landmark follows the scene's geometry:
  TRUNCATED  outside the image frame (the schema's pixel-centre convention);
  OCCLUDED   inside the frame but covered: by a garment part drawn over the one it lies on
             (a sleeve over the waist, a scarf over the neckline), by an occluder within
             `OCCLUDER_MARGIN` pixels, or with no visible garment pixel within 2 pixels;
  VISIBLE    otherwise, so a visible point always has garment mask pixels next to it;
  ABSENT     keypoints the category does not define (FashionAI's per-category sets).
"""

from __future__ import annotations

import dataclasses

import cv2
import numpy as np

from fashion_jax.data import schema
from fashion_jax.data.synth import garments, paint, scene, spec, xdomain


@dataclasses.dataclass(frozen=True)
class AttributeSet:
  spec: schema.DatasetSpec
  labels: object  # item -> [A] int8
  draw: object = None  # item -> the item as drawn (None: as sampled)
  revision: int = 1  # of what `draw` changes; part of the generated dataset's name


# What `attributes` holds: DeepFashion-style groups (multi-label) or X-Domain's (single-label).
ATTRIBUTE_SETS = {"deepfashion": AttributeSet(spec.SYNTH_SPEC, spec.attribute_labels),
                  "xdomain": AttributeSet(xdomain.SPEC, xdomain.attribute_labels, xdomain.distinct,
                                         revision=2)}

OCCLUDER_MARGIN = 3.0  # pixels: a point this close to an occluder counts as occluded
COVER_DEPTH = 1.0  # pixels: a point this deep inside a later part counts as covered


@dataclasses.dataclass(frozen=True)
class SynthOptions:
  image_size: int = 256  # square images of this many pixels
  views_per_item: int = 2  # view 0 of an item is shop, the others street
  attributes: str = "deepfashion"  # or "xdomain": the nine single-label groups (xdomain.py)


def _sample_pose(item: garments.Item, rng, street: bool) -> dict:
  """Sleeve angles from vertical (degrees) and trouser-leg spread, per side."""
  lo, hi = (45.0, 75.0) if item.sleeve == "short" else (20.0, 65.0)
  if street:
    return {"arm_deg": tuple(rng.uniform(lo, hi, 2)), "leg_deg": tuple(rng.uniform(0, 14, 2))}
  arm = rng.uniform(lo + 0.3 * (hi - lo), lo + 0.6 * (hi - lo))
  leg = rng.uniform(3, 8)
  return {"arm_deg": (arm, arm + rng.normal(0, 1)), "leg_deg": (leg, leg)}


def _view_matrix(geom: garments.Geometry, rng, size: int, street: bool) -> np.ndarray:
  """2x3 canonical -> pixels: shop views centred and upright, street views scaled (the garment
  may leave the frame), rotated, squashed (turned body) and shifted."""
  corners = np.concatenate([part.polygon for part in geom.parts])
  lo, hi = corners.min(0), corners.max(0)
  scale = 0.8 * size / float(np.max(hi - lo))
  if street:
    scale *= rng.uniform(0.65, 1.35)
    angle, squash = np.deg2rad(rng.uniform(-18, 18)), rng.uniform(0.8, 1.0)
    target = (size - 1) / 2 + rng.uniform(-0.2, 0.2, 2) * size
  else:
    scale *= rng.uniform(0.95, 1.03)
    angle, squash = np.deg2rad(rng.uniform(-2, 2)), 1.0
    target = (size - 1) / 2 + rng.normal(0, 0.01 * size, 2)  # pixel centres at integers
  rotation = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
  linear = rotation @ np.diag([scale * squash, scale])
  offset = target - linear @ ((lo + hi) / 2)
  return np.concatenate([linear, offset[:, None]], axis=1)


def _visibility(point, covering: list, occluders: list, mask: np.ndarray) -> int:
  size = mask.shape[0]
  x, y = float(point[0]), float(point[1])
  if not (-0.5 < x < size - 0.5 and -0.5 < y < size - 0.5):
    return schema.TRUNCATED
  if any(cv2.pointPolygonTest(p, (x, y), True) > COVER_DEPTH for p in covering):
    return schema.OCCLUDED
  if any(cv2.pointPolygonTest(p, (x, y), True) > -OCCLUDER_MARGIN for p in occluders):
    return schema.OCCLUDED
  r, c = int(round(y)), int(round(x))
  if not mask[max(r - 2, 0):r + 3, max(c - 2, 0):c + 3].any():
    return schema.OCCLUDED
  return schema.VISIBLE


def _annotate(names, lookup, geom, matrix, owners, parts_px, occluders, mask):
  """(points [N, 2] float32 pixels, visibility [N] int8) for `names`; None lookups are ABSENT."""
  points = np.zeros((len(names), 2), np.float32)
  visibility = np.full(len(names), schema.ABSENT, np.int8)
  for i, name in enumerate(names):
    key = lookup(name)
    if key not in geom.points:  # not defined for this category, or a sleeveless cuff
      continue
    points[i] = paint.to_pixels(geom.points[key], matrix)
    visibility[i] = _visibility(points[i], parts_px[owners(key) + 1:], occluders, mask)
  return points, visibility


def render_example(*, seed: int, index: int, options: SynthOptions = SynthOptions()) -> dict:
  """The example at `index` of the dataset of `seed`: the schema's fields plus `image` (uint8
  [S, S, 3] RGB), `mask` (uint8 [S, S, 1], 255 on visible garment pixels) and `image_id`."""
  size = options.image_size
  item_id, view = divmod(index, options.views_per_item)
  attribute_set = ATTRIBUTE_SETS[options.attributes]
  item = garments.sample_item(np.random.default_rng([seed, item_id, 0]))
  item = attribute_set.draw(item) if attribute_set.draw else item
  rng = np.random.default_rng([seed, index, 1])
  street = view > 0
  pose = _sample_pose(item, rng, street)
  geom = garments.geometry(item, pose)
  matrix = _view_matrix(geom, rng, size, street)
  image = (scene.street_background if street else scene.shop_background)(rng, size)
  if street:
    scene.draw_wearer(image, item, geom, matrix, pose, rng)
  silhouette = paint.silhouette(geom, matrix, size)
  if not street:
    scene.shop_shadow(image, silhouette, rng)
  paint.paint_garment(image, item, geom, matrix, rng)
  garment = silhouette >= 0.5
  rows, cols = np.nonzero(garment)
  bbox = (np.array([cols.min(), rows.min(), cols.max(), rows.max()], np.float32) if rows.size
          else np.zeros(4, np.float32))
  shapes = scene.occluders(rng, size, street, bbox)
  mask = garment & ~scene.draw_occluders(image, shapes)
  image = scene.camera(image, rng, street)

  parts_px = [paint.to_pixels(p.polygon, matrix).astype(np.float32) for p in geom.parts]
  occluders = [polygon.astype(np.float32) for polygon, _ in shapes]

  def owner(name):
    if name.endswith("_sleeve") and item.sleeve != "none":
      return geom.owner[f"cuff_{name[3:].split('_')[0]}_in"]
    return geom.owner.get(name, 0)

  clothes_type, fashionai, _, _ = spec.CATEGORIES[item.category]
  defined = set(spec.FASHIONAI_KEYPOINTS[fashionai])
  keypoints, keypoints_vis = _annotate(
      schema.KEYPOINT_NAMES, lambda n: n if n in defined else None, geom, matrix, owner,
      parts_px, occluders, mask)
  slots = {schema.LANDMARK_NAMES[i] for i in
           schema.CLOTHES_TYPE_SLOTS[schema.CLOTHES_TYPES.index(clothes_type)]}
  landmarks, landmarks_vis = _annotate(
      schema.LANDMARK_NAMES, lambda n: f"lm:{n}" if n in slots else None, geom, matrix, owner,
      parts_px, occluders, mask)

  example = schema.empty_example(attribute_set.spec.num_attributes)
  example.update(
      image=image, mask=(mask[..., None] * 255).astype(np.uint8),
      image_id=f"synth_s{seed}_{index:09d}", has_mask=np.bool_(True), bbox=bbox,
      has_bbox=np.bool_(rows.size > 0), landmarks=landmarks, landmarks_visibility=landmarks_vis,
      keypoints=keypoints, keypoints_visibility=keypoints_vis,
      clothes_type=np.int32(schema.CLOTHES_TYPES.index(clothes_type)),
      fashionai_category=np.int32(schema.FASHIONAI_CATEGORIES.index(fashionai)),
      category=np.int32(spec.CATEGORY_NAMES.index(item.category)),
      attributes=attribute_set.labels(item), dcsa_labels=spec.dcsa_labels(item),
      domain=np.int32(schema.DOMAINS.index("street" if street else "shop")),
      item_id=np.int64(item_id))
  return example
