"""Fixed-width text tables (`format_table`); each system file lays out its paper's table with it."""

from __future__ import annotations

import math


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
