"""Garments of the synthetic renderer: what one item is, and its geometry in a canonical frame.

Canonical frame: x to the right, y down, in units of about one shoulder width; x = 0 is the
garment's centre line and y = 0 its neckline (tops, dresses) or waistband (skirts, trousers).
"left" points have negative x: the image left in a frontal view (the flip augmentation swaps
left and right names, so only consistency matters).

Every keypoint is a vertex of a part polygon, so annotations are exact by construction. An
`Item` holds what all views of one garment share; `geometry(item, pose)` adds what a view
changes (arm and leg angles).
"""

from __future__ import annotations

import dataclasses

import numpy as np

from fashion_jax.data.synth import details, spec
from fashion_jax.data.synth.details import Part, bezier, quad


@dataclasses.dataclass(frozen=True)
class Item:
  """One garment: category, labels and shape parameters (canonical units)."""

  category: str
  clothes_type: str  # "upper", "lower" or "full"
  sleeve: str  # "none", "short", "long"; "" for lower-body garments
  neck: str  # "v", "round", "collar"; "" for lower-body garments
  pattern: str
  colour_names: tuple[str, ...]  # main, the pattern's other colours, trims' and logo's
  colours: np.ndarray  # [3, 3] RGB floats: main, secondary, tertiary (jittered)
  fabric: str
  length: str  # "cropped", "regular" or "long length"
  fit: str
  parts: tuple[str, ...]
  styles: tuple[str, ...]
  shape: dict
  seed: int  # seeds the item's decorations (identical in every view)


@dataclasses.dataclass(frozen=True)
class Geometry:
  """points: FashionAI keypoints and DeepFashion landmarks ({name: [2]}, `lm:` prefix for
  landmarks); parts in drawing order (parts[0] is the body); owner: point -> index of the part
  it lies on; decor: (kind, [N, 2] points) drawn over the parts (seams, buttons, dots, rips)."""

  points: dict
  parts: list
  owner: dict
  decor: list


def _u(rng, lo, hi):
  return float(rng.uniform(lo, hi))


def _pick(rng, options, p=None):
  return options[int(rng.choice(len(options), p=p))]


def sample_item(rng: np.random.Generator) -> Item:
  """Draws a garment: category uniform, labels and shape from the category's ranges."""
  category = _pick(rng, spec.CATEGORY_NAMES)
  clothes_type, _, _, sleeves = spec.CATEGORIES[category]
  sleeve = _pick(rng, sleeves) if sleeves else ""
  if clothes_type == "lower":
    neck = ""
  elif category in ("shirt", "jacket", "coat"):
    neck = "collar"
  elif category == "dress":
    neck = _pick(rng, ("round", "v", "collar"), p=(0.45, 0.4, 0.15))
  else:
    neck = _pick(rng, ("round", "v"))
  pattern = _pick(rng, spec.PATTERNS)
  names = list(spec.COLOURS)
  order = rng.permutation(len(names))
  count = 1 if pattern == "solid" else (3 if pattern in ("plaid", "floral", "graphic print")
                                        and rng.random() < 0.5 else 2)
  colour_names = tuple(names[i] for i in order[:count])
  colours = np.array([spec.COLOURS[names[i]] for i in order[:3]], np.float32)
  colours = np.clip(colours * rng.uniform(0.88, 1.1, (3, 1)) + rng.normal(0, 8, (3, 3)), 0, 255)
  fabric_p = (0.08, 0.08, 0.6, 0.08, 0.08, 0.08) if category == "sweater" else None
  fabric = _pick(rng, spec.FABRICS, p=fabric_p)
  length = _sample_length(rng, category)
  fit = _pick(rng, spec.FITS)
  parts = _sample_parts(rng, category)
  styles = _sample_styles(rng, category, neck, fabric)
  contrast = 1 if pattern == "solid" else 2  # the colour of trims and logos (paint.py)
  if {"two tone", "logo"} & set(styles) and contrast >= count:
    colour_names += (names[order[contrast]],)
  item = dict(category=category, clothes_type=clothes_type, sleeve=sleeve, neck=neck,
              pattern=pattern, colour_names=colour_names, colours=colours, fabric=fabric,
              length=length, fit=fit, parts=parts, styles=styles, shape={},
              seed=int(rng.integers(2**31)))
  item["shape"] = (_lower_shape if clothes_type == "lower" else _upper_shape)(rng, item)
  return Item(**item)


def _sample_length(rng, category: str) -> str:
  if category in ("coat", "trousers"):
    return "long length"
  if category == "shorts":
    return "cropped"
  if category in ("dress", "skirt"):
    return _pick(rng, ("cropped", "regular", "long length"), p=(0.3, 0.4, 0.3))
  if category in ("tee", "tank", "shirt", "sweater") and rng.random() < 0.25:
    return "cropped"
  return "regular"


def _sample_parts(rng, category: str) -> tuple[str, ...]:
  p_buttons = {"shirt": 1.0, "jacket": 0.7, "coat": 0.7, "trousers": 0.5, "skirt": 0.3,
               "dress": 0.25, "sweater": 0.2}.get(category, 0.05)
  p_pockets = {"jacket": 0.6, "coat": 0.6, "trousers": 0.6, "shorts": 0.6, "shirt": 0.3,
               "dress": 0.3, "skirt": 0.3}.get(category, 0.1)
  p_belt = 0.3 if category in ("dress", "coat", "skirt", "shorts", "trousers") else 0.0
  return tuple(name for name, p in zip(spec.PARTS, (p_buttons, p_pockets, p_belt), strict=True)
               if rng.random() < p)


def _sample_styles(rng, category: str, neck: str, fabric: str) -> tuple[str, ...]:
  chosen = []
  if rng.random() < 0.2:
    chosen.append("two tone")
  if rng.random() < 0.15:
    chosen.append("embellished")
  if rng.random() < (0.35 if fabric == "denim" else 0.12):
    chosen.append("distressed")
  if rng.random() < 0.2:
    chosen.append("logo")
  if category == "shirt" and neck == "collar" and rng.random() < 0.35:
    chosen.append("necktie")
  elif spec.CATEGORIES[category][0] != "lower" and rng.random() < 0.12:
    chosen.append("scarf")
  return tuple(chosen)


def _upper_shape(rng, item: dict) -> dict:
  slim = item["fit"] == "slim"
  s = {"neck_half": _u(rng, 0.13, 0.18),
       "neck_depth": {"round": (0.07, 0.13), "v": (0.22, 0.34), "collar": (0.08, 0.12)}[
           item["neck"]],
       "armpit_half": _u(rng, 0.40, 0.48), "armpit_y": _u(rng, 0.36, 0.46),
       "shoulder_drop": _u(rng, 0.05, 0.10)}
  s["neck_depth"] = _u(rng, *s["neck_depth"])
  s["shoulder_half"] = (s["neck_half"] + _u(rng, 0.07, 0.12) if item["sleeve"] == "none"
                        else _u(rng, 0.46, 0.55))
  s["waist_half"] = s["armpit_half"] * (_u(rng, 0.78, 0.9) if slim else _u(rng, 0.95, 1.05))
  s["waist_y"] = s["armpit_y"] + _u(rng, 0.32, 0.40)
  s["hem_half"] = s["armpit_half"] * (_u(rng, 0.9, 0.98) if slim else _u(rng, 1.05, 1.2))
  if item["category"] == "coat":
    s["hem_y"], s["hem_half"] = _u(rng, 1.7, 2.0), s["hem_half"] * 1.1
  elif item["category"] == "jacket":
    s["hem_y"] = _u(rng, 1.0, 1.2)
  elif item["category"] == "dress":
    skirt = {"cropped": (0.35, 0.5), "regular": (0.6, 0.85), "long length": (1.1, 1.4)}
    s["hem_y"] = s["waist_y"] + _u(rng, *skirt[item["length"]])
    s["hem_half"] = s["waist_half"] * (_u(rng, 1.1, 1.3) if slim else _u(rng, 1.5, 2.0))
  else:
    s["hem_y"] = _u(rng, 0.62, 0.75) if item["length"] == "cropped" else _u(rng, 0.95, 1.15)
  long_sleeve = item["sleeve"] == "long"
  s["sleeve_length"] = _u(rng, 0.75, 0.92) if long_sleeve else _u(rng, 0.22, 0.34)
  s["cuff_width"] = _u(rng, 0.13, 0.18) if long_sleeve else _u(rng, 0.2, 0.26)
  return s


def _lower_shape(rng, item: dict) -> dict:
  slim = item["fit"] == "slim"
  s = {"waist_half": _u(rng, 0.32, 0.40)}
  s["hip_half"] = s["waist_half"] * _u(rng, 1.05, 1.15)
  if item["category"] == "skirt":
    length = {"cropped": (0.4, 0.55), "regular": (0.65, 0.85), "long length": (1.1, 1.4)}
    s["hem_y"] = _u(rng, *length[item["length"]])
    s["hem_half"] = s["waist_half"] * (_u(rng, 1.1, 1.3) if slim else _u(rng, 1.5, 2.1))
  else:
    shorts = item["category"] == "shorts"
    s["crotch_y"] = _u(rng, 0.32, 0.40)
    s["leg_length"] = _u(rng, 0.5, 0.62) if shorts else _u(rng, 1.45, 1.75)
    s["opening"] = (_u(rng, 0.28, 0.36) if shorts else
                    _u(rng, 0.17, 0.22) if slim else _u(rng, 0.26, 0.34))
  return s


def _mirror(p) -> np.ndarray:
  return np.asarray(p, np.float64) * (-1.0, 1.0)


def geometry(item: Item, pose: dict) -> Geometry:
  """The view's polygons and points. pose: {"arm_deg": (left, right)} for tops and dresses
  (angle of each sleeve from vertical), {"leg_deg": (left, right)} for trousers and shorts."""
  if item.clothes_type == "lower":
    return _lower_geometry(item, pose)
  return _upper_geometry(item, pose)


def _upper_geometry(item: Item, pose: dict) -> Geometry:
  s = item.shape
  pts = {"neckline_right": (s["neck_half"], 0.0), "center_front": (0.0, s["neck_depth"]),
         "shoulder_right": (s["shoulder_half"], s["shoulder_drop"]),
         "armpit_right": (s["armpit_half"], s["armpit_y"]),
         "waistline_right": (s["waist_half"], s["waist_y"])}
  hem = "hemline" if item.clothes_type == "full" else "top_hem"
  pts[f"{hem}_right"] = (s["hem_half"], s["hem_y"])
  pts.update({k.replace("right", "left"): _mirror(v) for k, v in list(pts.items())
              if "right" in k})
  pts = {k: np.asarray(v, np.float64) for k, v in pts.items()}
  cf, nd = pts["center_front"], s["neck_depth"]
  if item.neck == "v":
    neck = np.stack([pts["neckline_left"], cf, pts["neckline_right"]])
  else:
    neck = np.concatenate([bezier(pts["neckline_left"], (-s["neck_half"], nd), cf),
                           bezier(cf, (s["neck_half"], nd), pts["neckline_right"])[1:]])
  with_waist = item.clothes_type == "full" or s["waist_y"] < s["hem_y"] - 0.08
  right = [pts["shoulder_right"]]
  if item.sleeve == "none":
    sh, ap = pts["shoulder_right"], pts["armpit_right"]
    control = (min(sh[0], ap[0]) - 0.1, sh[1] + 0.65 * (ap[1] - sh[1]))
    armhole = bezier(sh, control, ap)
    right += list(armhole[1:-1])
    pts["armhole_right"] = armhole[len(armhole) // 2]
    pts["armhole_left"] = _mirror(pts["armhole_right"])
  right += [pts["armpit_right"]] + ([pts["waistline_right"]] if with_waist else [])
  right += [pts[f"{hem}_right"]]
  body = np.concatenate([neck, np.array(right), _mirror(np.array(right[::-1]))])
  parts = [Part("body", body, "garment")]
  owner = {name: 0 for name in pts}
  if item.sleeve != "none":
    for side, sign, deg in (("left", -1.0, pose["arm_deg"][0]), ("right", 1.0, pose["arm_deg"][1])):
      sleeve = _sleeve(pts, side, sign, np.deg2rad(deg), s)
      owner.update({f"cuff_{side}_in": len(parts), f"cuff_{side}_out": len(parts)})
      parts.append(Part(f"sleeve_{side}", sleeve, "sleeve"))
  _landmarks(pts, item)
  decor = []
  details.add_front(item, parts, decor)
  details.add_extras(item, pts, parts, decor, hem)
  return Geometry(pts, parts, owner, decor)


def _sleeve(pts: dict, side: str, sign: float, theta: float, s: dict) -> np.ndarray:
  """Sleeve quad shoulder -> cuff out -> cuff in -> armpit; sets the cuff keypoints."""
  shoulder, armpit = pts[f"shoulder_{side}"], pts[f"armpit_{side}"]
  axis = np.array([sign * np.sin(theta), np.cos(theta)])  # down and outwards
  inward = np.array([-sign * np.cos(theta), np.sin(theta)])  # across the cuff, body side
  # The inner seam (armpit -> cuff in) must keep a positive length along the sleeve axis.
  length = max(s["sleeve_length"], float((armpit - shoulder) @ axis) + 0.06)
  out = shoulder + length * axis
  pts[f"cuff_{side}_out"], pts[f"cuff_{side}_in"] = out, out + s["cuff_width"] * inward
  return np.stack([shoulder, out, pts[f"cuff_{side}_in"], armpit])


def _landmarks(pts: dict, item: Item) -> None:
  """DeepFashion's 8 slots (as `lm:<slot>` entries) from the FashionAI-style points."""
  for side in ("left", "right"):
    if item.clothes_type == "lower":
      pts[f"lm:{side}_waistline"] = pts[f"waistband_{side}"]
      pts[f"lm:{side}_hem"] = (pts[f"hemline_{side}"] if item.category == "skirt" else
                               (pts[f"bottom_{side}_in"] + pts[f"bottom_{side}_out"]) / 2)
      continue
    pts[f"lm:{side}_collar"] = pts[f"neckline_{side}"]
    pts[f"lm:{side}_sleeve"] = (pts[f"armhole_{side}"] if item.sleeve == "none" else
                                (pts[f"cuff_{side}_in"] + pts[f"cuff_{side}_out"]) / 2)
    if item.clothes_type == "full":
      pts[f"lm:{side}_waistline"] = pts[f"waistline_{side}"]
      pts[f"lm:{side}_hem"] = pts[f"hemline_{side}"]
    else:
      pts[f"lm:{side}_hem"] = pts[f"top_hem_{side}"]


def _lower_geometry(item: Item, pose: dict) -> Geometry:
  s = item.shape
  wh = s["waist_half"]
  pts = {"waistband_right": np.array([wh, 0.0]), "hip_right": np.array([s["hip_half"], 0.18])}
  if item.category == "skirt":
    pts["hemline_right"] = np.array([s["hem_half"], s["hem_y"]])
    right = ["waistband_right", "hip_right", "hemline_right"]
  else:
    phi = np.deg2rad(pose["leg_deg"][1])
    axis, inward = np.array([np.sin(phi), np.cos(phi)]), np.array([-np.cos(phi), np.sin(phi)])
    pts["bottom_right_out"] = pts["hip_right"] + (s["leg_length"] - 0.18) * axis
    pts["bottom_right_in"] = pts["bottom_right_out"] + s["opening"] * inward
    right = ["waistband_right", "hip_right", "bottom_right_out", "bottom_right_in"]
  left = {}
  for name in right:
    left[name.replace("right", "left")] = _mirror(pts[name])
  if item.category != "skirt":  # the left leg has its own angle
    phi = np.deg2rad(pose["leg_deg"][0])
    axis, inward = np.array([-np.sin(phi), np.cos(phi)]), np.array([np.cos(phi), np.sin(phi)])
    left["bottom_left_out"] = left["hip_left"] + (s["leg_length"] - 0.18) * axis
    left["bottom_left_in"] = left["bottom_left_out"] + s["opening"] * inward
    pts["crotch"] = np.array([0.0, s["crotch_y"]])
  pts.update(left)
  ring = right + (["crotch"] if "crotch" in pts else [])
  ring += [n.replace("right", "left") for n in reversed(right)]
  parts = [Part("body", np.stack([pts[n] for n in ring]), "garment"),
           Part("waistband", quad(-wh, 0.0, wh, 0.06), "band")]
  del pts["hip_right"], pts["hip_left"]
  _landmarks(pts, item)
  decor = [("seam", np.array([[0.0, 0.06], [0.0, s.get("crotch_y", 0.2) * 0.7]]))]
  if "buttons" in item.parts:
    decor.append(("button", np.array([[0.0, 0.03]])))
  details.add_extras(item, pts, parts, decor, "")
  return Geometry(pts, parts, {name: 0 for name in pts}, decor)
