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
                 range (short sleeves 0.20-0.26, long 0.13-0.18 of the garment's scale), the
                 subtlest group (missing where there is no sleeve).
Stored in the schema's `attributes` as one positive per labelled group (1 on its value, 0 on the
group's others) and -1 on every value of a missing group, as the shop/street CSV layout does.
"""

from __future__ import annotations

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
# The middle of each sleeve length's cuff-width range (garments._upper_shape).
CUFF_MIDDLE = {"short": 0.23, "long": 0.155}


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
