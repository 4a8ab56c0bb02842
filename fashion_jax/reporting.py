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


def fashionai_table(results: dict[str, dict]) -> str:
  """Table 1 of the Fashion Pose Machine paper (NE per keypoint pair and mean), two halves.

  Args:
    results: method name -> the dict of `metrics.fashionai_normalized_error`.
  """
  cols = [name for name, _ in metrics.FASHIONAI_TABLE_COLUMNS]
  first, second = cols[:7], cols[7:]
  top = format_table(first, {m: [r["per_column"][c] for c in first] for m, r in results.items()})
  bottom = format_table(second + ["Ave"], {
      m: [*(r["per_column"][c] for c in second), r["mean"]] for m, r in results.items()})
  skipped = ", ".join(f"{m}: {r['num_skipped_images']}/{r['num_images']}"
                      for m, r in results.items())
  return (f"FashionAI normalised error (lower is better)\n{top}\n\n{bottom}\n"
          f"images skipped (normaliser undefined): {skipped}")
