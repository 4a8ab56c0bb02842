"""What the synthetic dataset annotates: categories, attributes in groups, and how an item's
properties become the labels of the shared schema (DeepFashion attributes, DCSA labels).

Attribute groups are DeepFashion's five types, so the synthetic set exports to the DeepFashion
format and is scored by its per-group recall. What each group holds here:
  texture  pattern (solid, striped, ...) and the colours present (colour is surface appearance);
  fabric   the material's micro-texture (one per item);
  shape    sleeve length, garment length, fit;
  part     neckline, buttons, pockets, belt;
  style    two-tone trims, embellishment, distressing, a logo badge, necktie, scarf.
Every group has more than five attributes, so top-5 recall within a group is never 100% by
construction.
A label that does not apply to a garment (sleeves of a skirt, its neckline) is unknown (-1), as
in DeepFashion, never negative. Attribute names contain spaces like DeepFashion's.
"""

from __future__ import annotations

import numpy as np

from fashion_jax.data import schema

# name: (clothes type, FashionAI category, DCSA category or None, sleeve choices)
CATEGORIES = {
    "tee": ("upper", "blouse", "T-shirt", ("short",)),
    "tank": ("upper", "blouse", "Tank Top", ("none",)),
    "shirt": ("upper", "blouse", "Shirt", ("short", "long")),
    "sweater": ("upper", "blouse", "Sweater", ("long",)),
    "jacket": ("upper", "outwear", "Outerwear", ("long",)),
    "coat": ("upper", "outwear", "Outerwear", ("long",)),
    "dress": ("full", "dress", "Dress", ("none", "short", "long")),
    "skirt": ("lower", "skirt", None, ()),
    "shorts": ("lower", "trousers", None, ()),
    "trousers": ("lower", "trousers", None, ()),
}
CATEGORY_NAMES = tuple(CATEGORIES)

PATTERNS = ("solid", "striped", "plaid", "dotted", "floral", "graphic print")
# Colour names double as DCSA's colour labels; RGB is the item's base before jitter.
COLOURS = {
    "red": (200, 32, 40), "blue": (32, 64, 190), "green": (34, 140, 62), "yellow": (236, 206, 44),
    "black": (26, 26, 30), "white": (240, 240, 234), "gray": (128, 128, 128),
    "brown": (120, 76, 40), "purple": (122, 52, 150), "cyan": (40, 190, 200),
}
FABRICS = ("cotton", "denim", "knit", "corduroy", "leather", "sheer")
SLEEVES = {"none": "sleeveless", "short": "short sleeve", "long": "long sleeve"}
LENGTHS = ("cropped", "long length")
FITS = ("slim", "loose")
NECKS = {"v": "v neck", "round": "round neck", "collar": "collar"}
PARTS = ("buttons", "pockets", "belt")
STYLES = ("two tone", "embellished", "distressed", "logo", "necktie", "scarf")

GROUP_NAMES = ("texture", "fabric", "shape", "part", "style")
_GROUPS = {
    "texture": (*PATTERNS, *COLOURS),
    "fabric": FABRICS,
    "shape": (*SLEEVES.values(), *LENGTHS, *FITS),
    "part": (*NECKS.values(), *PARTS),
    "style": STYLES,
}
ATTRIBUTE_NAMES = tuple(a for g in GROUP_NAMES for a in _GROUPS[g])
ATTRIBUTE_INDEX = {a: i for i, a in enumerate(ATTRIBUTE_NAMES)}

SYNTH_SPEC = schema.DatasetSpec(
    category_names=CATEGORY_NAMES, attribute_names=ATTRIBUTE_NAMES,
    attribute_groups=tuple(GROUP_NAMES.index(g) for g in GROUP_NAMES for _ in _GROUPS[g]),
    attribute_group_names=GROUP_NAMES, labels=schema.LABEL_KINDS)

# FashionAI's keypoint set per category (the columns its CSV fills; the rest are -1_-1_-1).
FASHIONAI_KEYPOINTS = {
    "blouse": ("neckline_left", "neckline_right", "center_front", "shoulder_left",
               "shoulder_right", "armpit_left", "armpit_right", "cuff_left_in", "cuff_left_out",
               "cuff_right_in", "cuff_right_out", "top_hem_left", "top_hem_right"),
    "outwear": ("neckline_left", "neckline_right", "shoulder_left", "shoulder_right",
                "armpit_left", "armpit_right", "waistline_left", "waistline_right",
                "cuff_left_in", "cuff_left_out", "cuff_right_in", "cuff_right_out",
                "top_hem_left", "top_hem_right"),
    "dress": ("neckline_left", "neckline_right", "center_front", "shoulder_left",
              "shoulder_right", "armpit_left", "armpit_right", "waistline_left",
              "waistline_right", "cuff_left_in", "cuff_left_out", "cuff_right_in",
              "cuff_right_out", "hemline_left", "hemline_right"),
    "skirt": ("waistband_left", "waistband_right", "hemline_left", "hemline_right"),
    "trousers": ("waistband_left", "waistband_right", "crotch", "bottom_left_in",
                 "bottom_left_out", "bottom_right_in", "bottom_right_out"),
}


def attribute_labels(item) -> np.ndarray:
  """[A] int8 in {1, 0, -1} for an `Item` (see `garments.Item`)."""
  labels = np.zeros(len(ATTRIBUTE_NAMES), np.int8)

  def put(names, value):
    for name in names:
      labels[ATTRIBUTE_INDEX[name]] = value

  put((item.pattern, *item.colour_names, item.fabric, item.fit, *item.parts, *item.styles), 1)
  put([length for length in LENGTHS if length == item.length], 1)
  if item.clothes_type == "lower":  # no sleeves, neckline or top-of-body accessories
    put((*SLEEVES.values(), *NECKS.values(), "necktie", "scarf"), -1)
  else:
    put((SLEEVES[item.sleeve], NECKS[item.neck]), 1)
  return labels


def dcsa_labels(item) -> np.ndarray:
  """[26] int8 DCSA labels: 23 binary (0/1) then 3 classes (0-based); -1 missing.

  DCSA shows upper-body clothing, so lower-body garments have every label missing; `gender`
  is always missing (a garment render has no wearer's gender).
  """
  labels = np.full(len(schema.DCSA_LABELS), -1, np.int8)
  if item.clothes_type == "lower":
    return labels
  binary = {name: name in item.colour_names for name in COLOURS}
  binary.update({
      "collar": item.neck == "collar", "many_colors": len(item.colour_names) >= 3,
      "necktie": "necktie" in item.styles, "scarf": "scarf" in item.styles,
      "placket": "buttons" in item.parts,
      "skin_exposure": item.sleeve == "none" or item.length == "cropped",
      "pattern_floral": item.pattern == "floral",
      "pattern_graphics": item.pattern == "graphic print",
      "pattern_plaid": item.pattern == "plaid", "pattern_solid": item.pattern == "solid",
      "pattern_spot": item.pattern == "dotted", "pattern_stripe": item.pattern == "striped",
  })
  for i, name in enumerate(schema.DCSA_BINARY_LABELS):
    if name in binary:
      labels[i] = int(binary[name])
  classes = {"category": CATEGORIES[item.category][2],
             "neckline": {"v": "V-shape", "round": "Round", "collar": "Other"}[item.neck],
             "sleevelength": {"none": "No sleeves", "short": "Short", "long": "Long"}[item.sleeve]}
  offset = len(schema.DCSA_BINARY_LABELS)
  for j, (name, values) in enumerate(schema.DCSA_MULTICLASS_LABELS.items()):
    labels[offset + j] = values.index(classes[name])
  return labels
