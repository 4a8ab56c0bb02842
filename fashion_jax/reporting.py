"""Metric dicts -> text tables in the layout of the papers' tables (one row per method)."""

from __future__ import annotations

import math

from fashion_jax import metrics


def format_table(columns: list[str], rows: dict[str, list[float]], *, fmt: str = "{:.4f}",
                 first: str = "Methods") -> str:
  """A fixed-width table: one header line, then one line per (method, values) row."""
  cells = [[first, *columns]]
  for name, values in rows.items():
    cells.append([name, *("-" if v is None or math.isnan(v) else fmt.format(v) for v in values)])
  widths = [max(len(row[i]) for row in cells) for i in range(len(cells[0]))]
  lines = ["  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in
                     enumerate(zip(row, widths, strict=True))) for row in cells]
  lines.insert(1, "-" * len(lines[0]))
  return "\n".join(lines)


def fashionai_table(results: dict[str, dict],
                    title: str = "FashionAI normalised error") -> str:
  """Table 1 of the Fashion Pose Machine paper (NE per keypoint pair and mean), two halves.

  Args:
    results: method name -> the dict of `metrics.fashionai_normalized_error` or
      `metrics.normalized_coordinate_error`.
  """
  cols = [name for name, _ in metrics.FASHIONAI_TABLE_COLUMNS]
  first, second = cols[:7], cols[7:]
  top = format_table(first, {m: [r["per_column"][c] for c in first] for m, r in results.items()})
  bottom = format_table(second + ["Ave"], {
      m: [*(r["per_column"][c] for c in second), r["mean"]] for m, r in results.items()})
  text = f"{title} (lower is better)\n{top}\n\n{bottom}"
  if all("num_skipped_images" in r for r in results.values()):
    skipped = ", ".join(f"{m}: {r['num_skipped_images']}/{r['num_images']}"
                        for m, r in results.items())
    text += f"\nimages skipped (normaliser undefined): {skipped}"
  return text


_SLOT_COLUMNS = ("L.Collar", "R.Collar", "L.Sleeve", "R.Sleeve", "L.Waistline", "R.Waistline",
                 "L.Hem", "R.Hem")
ATTRIBUTE_GROUPS = ("texture", "fabric", "shape", "part", "style")


def deepfashion_landmark_table(results: dict[str, dict]) -> str:
  """Table 1 of the landmark-attention paper: NE per landmark slot and the average.

  Args:
    results: method name -> the dict of `metrics.deepfashion_landmark_error`.
  """
  rows = {m: [*r["per_slot"].values(), r["mean"]] for m, r in results.items()}
  return ("DeepFashion landmark normalised error (lower is better)\n"
          + format_table([*_SLOT_COLUMNS, "Avg"], rows))


def deepfashion_classification_table(categories: dict[str, dict],
                                     attributes: dict[str, dict]) -> str:
  """Table 2 of the landmark-attention paper: category top-3/5 accuracy and attribute top-3/5
  recall per group and overall, in percent.

  Args:
    categories: method -> `metrics.top_k_accuracy` dict; attributes: method ->
      `metrics.attribute_recall_at_k` dict (groups missing from a dataset show as "-").
  """
  groups = ("Category", *(g.capitalize() for g in ATTRIBUTE_GROUPS), "All")
  columns = [f"{g} top-{k}" for g in groups for k in (3, 5)]
  rows = {}
  for method in categories:
    attr = attributes[method]
    values = [100 * categories[method]["top3"], 100 * categories[method]["top5"]]
    for group in (*ATTRIBUTE_GROUPS, "all"):
      cell = attr.get(group, {})
      values += [100 * cell.get("top3", float("nan")), 100 * cell.get("top5", float("nan"))]
    rows[method] = values
  return ("DeepFashion category accuracy and attribute recall, % (higher is better)\n"
          + format_table(columns, rows, fmt="{:.2f}"))


def two_stream_table(results: dict[str, dict]) -> str:
  """Table 1 of the two-stream paper: landmark NE, category top-3/5 accuracy and attribute
  top-3/5 recall over all attributes (%, NE as a fraction).

  Args:
    results: method -> the multi-task metrics dict (`landmarks`, `category`, `attributes`).
  """
  rows = {m: [r["landmarks"]["mean"], 100 * r["category"]["top3"], 100 * r["category"]["top5"],
              100 * r["attributes"]["all"]["top3"], 100 * r["attributes"]["all"]["top5"]]
          for m, r in results.items()}
  table = format_table(["Landmarks NE", "Category top-3", "top-5", "Attribute top-3", "top-5"],
                       rows)
  return "DeepFashion-C: landmarks (NE, lower is better), category and attributes (%)\n" + table


def dcsa_table(results: dict[str, dict]) -> str:
  """SisterNetwork's mean accuracy (MACC, Tables 1-3) and the per-label accuracies, in %.

  Args:
    results: method -> `metrics.dcsa_accuracy` dict.
  """
  from fashion_jax.data import schema

  labels = list(schema.DCSA_LABELS)
  halves = (labels[:13], labels[13:])
  text = ["Clothing attributes: mean accuracy over labels (MACC) and per-label accuracy, % "
          "(higher is better)",
          format_table(["MACC", "labels"], {m: [100 * r["macc"], r["num_labels"]]
                                            for m, r in results.items()}, fmt="{:.2f}")]
  for half in halves:
    text.append(format_table(half, {m: [100 * r["per_label"][n] for n in half]
                                    for m, r in results.items()}, fmt="{:.1f}"))
  return "\n\n".join(text)


def xdomain_table(results: dict[str, dict]) -> str:
  """The multi-task curriculum transfer poster's tables: per-group mAP, mAP_cls (the mean of the
  group columns, as the poster's rows), mP_ins and mR_ins, and the pooled class mean, in %.

  Args:
    results: method -> `metrics.xdomain_attribute_metrics` dict.
  """
  groups = list(next(iter(results.values()))["per_group"])
  rows = {m: [100 * r["per_group"][g] for g in groups]
          + [100 * r["mAP_cls"], 100 * r["mP_ins"], 100 * r["mR_ins"],
             100 * r["mAP_cls_pooled"]]
          for m, r in results.items()}
  return ("Street attributes: per-group mAP, mAP_cls (mean of the groups), mP_ins, mR_ins, and "
          "the mean over all classes pooled, % (higher is better)\n"
          + format_table([g.capitalize() for g in groups]
                         + ["mAP_cls", "mP_ins", "mR_ins", "pooled mAP"], rows, fmt="{:.2f}"))
