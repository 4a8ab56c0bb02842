"""X-Domain-style labels of a synthetic garment (the multi-task curriculum transfer poster): nine
single-label attribute groups, each derived from what the renderer draws.

  category       the 10 synthetic categories (silhouette);
  button         buttons drawn or not;
  colour         the main colour (the garment's base; patterns and trims add others);
  length         cropped / regular / long (hem height against the body);
  pattern        solid, striped, plaid, dotted, floral, graphic print;
  shape          slim / loose (the fit: waist and hem widths);
  collar         v neck / round neck / collar (missing on lower-body garments);
  sleeve length  sleeveless / short / long (missing on lower-body garments);
  sleeve shape   narrow / wide cuff: the cuff's width against the middle of its sleeve length's
                 range (missing where there is no sleeve).
Stored in the schema's `attributes` as one positive per labelled group (1 on its value, 0 on the
group's others) and -1 on every value of a missing group, as the shop/street CSV layout does.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from fashion_jax.data import schema
from fashion_jax.data.synth import spec

GROUPS = {
    "category": spec.CATEGORY_NAMES,
    "button": ("no buttons", "buttons"),
    "colour": tuple(spec.COLOURS),
    "length": ("cropped length", "regular length", "long length"),
    "pattern": spec.PATTERNS,
    "shape": ("slim fit", "loose fit"),
    "collar": ("v neck", "round neck", "collar"),
    "sleeve length": ("sleeveless", "short sleeve", "long sleeve"),
    "sleeve shape": ("narrow cuff", "wide cuff"),
}
GROUP_NAMES = tuple(GROUPS)
ATTRIBUTE_NAMES = tuple(v for values in GROUPS.values() for v in values)
SPEC = schema.DatasetSpec(
    category_names=spec.CATEGORY_NAMES, attribute_names=ATTRIBUTE_NAMES,
    attribute_groups=tuple(g for g, values in enumerate(GROUPS.values()) for _ in values),
    attribute_group_names=GROUP_NAMES, labels=schema.LABEL_KINDS)
# Each sleeve length's cuff-width range as garments._upper_shape draws it: (middle, half width).
CUFF_RANGE = {"short": (0.23, 0.03), "long": (0.155, 0.025)}
CUFF_MIDDLE = {sleeve: middle for sleeve, (middle, _) in CUFF_RANGE.items()}
# distinct(): how far the fit's widths move (slim, loose): a top's or dress's waist and hem, a
# skirt's hem, a trouser or shorts leg's opening (a skirt's or trouser's waistband stays).
FIT_SCALE = {"waist_half": (0.8, 1.12), "hem_half": (0.85, 1.15), "opening": (0.78, 1.2)}
CUFF_GAP, CUFF_SPREAD = 0.4, 4.0
BUTTON_RADIUS = 0.05  # canonical units; the DeepFashion-style set draws 0.02


def distinct(item):
  """The item as the X-Domain-style set draws it: the three subtle groups made visible.

  At the size these labels are trained on (64x64 crops at `:runlocal`) the shared renderer's
  buttons are under a pixel, slim and loose differ by 5% of a width (shorts not at all) and a
  cuff's width was a threshold on a continuous draw, so nothing could learn buttons, shape or
  sleeve shape from pixels. Here buttons are drawn with radius `BUTTON_RADIUS`; every width the
  fit sets is scaled by `FIT_SCALE` (slim, loose); and the cuff's signed distance d in [-1, 1]
  from its range's middle (in half widths) moves to sign(d) (CUFF_GAP + (1 - CUFF_GAP) |d|)
  `CUFF_SPREAD` half widths, so narrow and wide cuffs are at least 2 CUFF_GAP CUFF_SPREAD half
  widths apart (0.10 of the garment's scale for short sleeves, 0.08 for long). Labels follow
  from the result (`values`), so they stay what is drawn.
  """
  shape = dict(item.shape, button_radius=BUTTON_RADIUS)
  for key, (slim, loose) in FIT_SCALE.items():
    if key in shape and not (key == "waist_half" and item.clothes_type == "lower"):
      shape[key] *= slim if item.fit == "slim" else loose
  if item.clothes_type != "lower" and item.sleeve in CUFF_RANGE:
    middle, half = CUFF_RANGE[item.sleeve]
    d = float(np.clip((shape["cuff_width"] - middle) / half, -1.0, 1.0))
    moved = np.sign(d or 1.0) * (CUFF_GAP + (1.0 - CUFF_GAP) * abs(d))
    shape["cuff_width"] = middle + moved * CUFF_SPREAD * half
  return dataclasses.replace(item, shape=shape)


def values(item) -> dict[str, str | None]:
  """{group: the item's value, or None where the group does not apply}."""
  upper = item.clothes_type != "lower"
  sleeved = upper and item.sleeve in CUFF_MIDDLE
  return {
      "category": item.category,
      "button": "buttons" if "buttons" in item.parts else "no buttons",
      "colour": item.colour_names[0],
      "length": {"cropped": "cropped length", "regular": "regular length",
                 "long length": "long length"}[item.length],
      "pattern": item.pattern,
      "shape": f"{item.fit} fit",
      "collar": spec.NECKS[item.neck] if upper else None,
      "sleeve length": spec.SLEEVES[item.sleeve] if upper else None,
      "sleeve shape": (("wide cuff" if item.shape["cuff_width"] > CUFF_MIDDLE[item.sleeve]
                        else "narrow cuff") if sleeved else None),
  }


def attribute_labels(item) -> np.ndarray:
  """[A] int8: one positive per labelled group, -1 across a missing group."""
  labels = np.full(len(ATTRIBUTE_NAMES), -1, np.int8)
  start = 0
  for group, value in values(item).items():
    options = GROUPS[group]
    if value is not None:
      labels[start:start + len(options)] = 0
      labels[start + options.index(value)] = 1
    start += len(options)
  return labels
