"""The X-Domain-style synthetic labels: they name what is drawn, and the subtle groups (buttons,
fit, sleeve shape) are drawn far enough apart to be learnt from the crops the MTCT configs see."""

import cv2
import numpy as np

from fashion_jax.data import schema, synth
from fashion_jax.data.synth import garments, paint, xdomain

OPTIONS = synth.SynthOptions(image_size=128, views_per_item=2, attributes="xdomain")
KEYPOINT = {name: i for i, name in enumerate(schema.KEYPOINT_NAMES)}


def test_xdomain_labels_match_the_rendered_garment():
  options = synth.SynthOptions(image_size=64, views_per_item=2, attributes="xdomain")
  groups = np.asarray(xdomain.SPEC.attribute_groups)
  checked = hits = 0
  for index in range(600):  # 1.5 ms a render at 64x64; about 1 in 70 views is plain
    example = synth.render_example(seed=3, index=index, options=options)
    item = xdomain.distinct(garments.sample_item(np.random.default_rng([3, index // 2, 0])))
    labels = example["attributes"]
    values = xdomain.values(item)
    for g, (group, value) in enumerate(values.items()):
      block = labels[groups == g]
      if value is None:
        assert (block == -1).all(), group
      else:
        assert block.sum() == 1 and (block >= 0).all(), group
        assert xdomain.GROUPS[group][int(np.argmax(block))] == value
    assert values["category"] == synth.spec.CATEGORY_NAMES[int(example["category"])]
    assert (values["collar"] is None) == (item.clothes_type == "lower")
    assert (values["sleeve shape"] is None) == (item.clothes_type == "lower"
                                                or item.sleeve == "none")
    assert (values["button"] == "buttons") == ("buttons" in item.parts)
    # Independent of the labels: a plain (solid cotton, no trims) shop view's mean colour is
    # nearest to its colour value's RGB, as the DeepFashion-style colour labels are checked.
    plain = (item.pattern == "solid" and item.fabric == "cotton"
             and "two tone" not in item.styles and example["domain"] == 0)
    if plain:
      mean = example["image"][example["mask"][..., 0] > 0].mean(0)
      nearest = min(synth.spec.COLOURS, key=lambda c: np.sum(
          (np.array(synth.spec.COLOURS[c]) - mean) ** 2))
      checked += 1
      hits += nearest == values["colour"]
  assert checked >= 3 and hits >= 0.8 * checked, (hits, checked)


def _value(example, group):
  """The labelled value of `group` in an example's attributes, or None."""
  g = xdomain.GROUP_NAMES.index(group)
  block = example["attributes"][np.asarray(xdomain.SPEC.attribute_groups) == g]
  return None if block[0] < 0 else xdomain.GROUPS[group][int(np.argmax(block))]


def _width(example, left, right):
  """Pixel distance between two keypoints of an example (None where either is absent)."""
  points, visibility = example["keypoints"], example["keypoints_visibility"]
  a, b = KEYPOINT[left], KEYPOINT[right]
  if schema.ABSENT in (visibility[a], visibility[b]):
    return None
  return float(np.linalg.norm(points[a] - points[b]))


def _shop_views(count):
  return [synth.render_example(seed=5, index=2 * i, options=OPTIONS) for i in range(count)]


def test_fit_and_cuff_widths_separate_in_the_rendered_keypoints():
  # Shop views are upright and unsquashed, so a ratio of two keypoint distances is the
  # garment's own; the labels come from the attributes, the widths from the drawn keypoints.
  ratios = {}  # (what, label) -> [ratio]
  for example in _shop_views(300):
    armpits = _width(example, "armpit_left", "armpit_right")
    category = synth.spec.CATEGORY_NAMES[int(example["category"])]
    if armpits:  # tops, outerwear and dresses: the waist, or a blouse's hem, against the chest
      waist = (_width(example, "waistline_left", "waistline_right")
               or _width(example, "top_hem_left", "top_hem_right"))
      ratios.setdefault(("waist or hem", _value(example, "shape")), []).append(waist / armpits)
      cuff = _width(example, "cuff_left_in", "cuff_left_out")
      if cuff:
        sleeve = _value(example, "sleeve length")
        ratios.setdefault((sleeve, _value(example, "sleeve shape")), []).append(cuff / armpits)
    elif category in ("skirt", "trousers"):
      waist = _width(example, "waistband_left", "waistband_right")
      hem = (_width(example, "hemline_left", "hemline_right")
             or _width(example, "bottom_left_in", "bottom_left_out"))
      ratios.setdefault((category, _value(example, "shape")), []).append(hem / waist)
  pairs = [("waist or hem", "slim fit", "loose fit"), ("skirt", "slim fit", "loose fit"),
           ("trousers", "slim fit", "loose fit"), ("short sleeve", "narrow cuff", "wide cuff"),
           ("long sleeve", "narrow cuff", "wide cuff")]
  for what, low, high in pairs:
    below, above = ratios[(what, low)], ratios[(what, high)]
    assert len(below) >= 3 and len(above) >= 3, (what, len(below), len(above))
    # A gap of at least 5% of the ratio between the classes, not only an order.
    assert max(below) * 1.05 < min(above), (what, max(below), min(above))


def test_a_button_changes_pixels_of_the_64_pixel_crop():
  # Paint each buttoned shop view with and without its buttons (same geometry, same random
  # stream), crop to the garment's box and shrink to 64x64 as the :runlocal MTCT config does.
  changed = []
  for i in range(200):
    item = xdomain.distinct(garments.sample_item(np.random.default_rng([5, i, 0])))
    if "buttons" not in item.parts or item.clothes_type == "lower":
      continue
    geom = garments.geometry(item, {"arm_deg": (50.0, 50.0), "leg_deg": (5.0, 5.0)})
    corners = np.concatenate([part.polygon for part in geom.parts])
    lo, hi = corners.min(0), corners.max(0)
    scale = 0.8 * 128 / float(np.max(hi - lo))
    matrix = np.array([[scale, 0, 63.5 - scale * (lo[0] + hi[0]) / 2],
                       [0, scale, 63.5 - scale * (lo[1] + hi[1]) / 2]])
    crops = []
    for decor in (geom.decor, [d for d in geom.decor if d[0] != "button"]):
      image = np.full((128, 128, 3), 128.0, np.float32)
      drawn = garments.Geometry(geom.points, geom.parts, geom.owner, decor)
      paint.paint_garment(image, item, drawn, matrix, np.random.default_rng(i))
      (x0, y0), (x1, y1) = paint.to_pixels(np.stack([lo, hi]), matrix).astype(int)
      crops.append(cv2.resize(image[y0:y1 + 1, x0:x1 + 1], (64, 64), interpolation=cv2.INTER_AREA))
    buttons = sum(kind == "button" for kind, _ in geom.decor)
    differs = (np.abs(crops[0] - crops[1]).max(-1) > 40).sum()
    changed.append(differs / buttons)
  assert len(changed) >= 10
  # A button is about a 3x3 block of clearly changed pixels (measured: 12.8 in the median;
  # the shared renderer's radius of 0.02 units gives 3.7).
  assert np.median(changed) >= 8, changed
