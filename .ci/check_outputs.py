#!/usr/bin/env python
"""Re-run notebooks the way the tests do and fail when a stored output no longer matches what the code prints now.

    python .ci/check_outputs.py nbs/index.ipynb      # the README is generated from it: what it shows must be current

- Cells are run as `.ci/execute_notebooks.py` runs them (flagged cells skipped, in the notebook's folder); nothing is written.
- Text outputs are compared token by token. Numbers agree when they are within 1% of each other, relative to the larger
  (float noise from thread counts moves a small completeness gap in its third digit; a stale result is off by far more); a number followed by a unit of time (`s`, `ms`,
  `min`) is a timing and is not compared. Figures are not compared.
- Prints `outputs: N passed, N failed` over the compared cells, and each differing cell with the stored and the fresh text.
"""
from __future__ import annotations
import re, sys
from pathlib import Path

from execnb.nbio import read_nb

sys.path.insert(0, str(Path(__file__).resolve().parent))
from execute_notebooks import output_text, run, skipped     # the same rules for which cells run

NUMBER = re.compile(r"[-+]?(?:\d+\.\d*|\.\d+|\d+)(?:[eE][-+]?\d+)?")
TIMING = re.compile(r"^\s*(?:s|ms|min|seconds?)\b")


def shown(cell) -> str:
    "The text a cell shows: its stream and text outputs, figures left out."
    return "\n".join(output_text(o) for o in cell.get("outputs", []) if o.get("output_type") != "error").strip()


def tokens(text: str) -> list:
    "The text cut into numbers (floats; None for a timing) and the words between them."
    out, pos = [], 0
    for m in NUMBER.finditer(text):
        out.append(text[pos:m.start()])
        out.append(None if TIMING.match(text[m.end():]) else float(m.group(0)))
        pos = m.end()
    return out + [text[pos:]]


def same(a: str, b: str, rel: float = 1e-2) -> bool:
    ta, tb = tokens(a), tokens(b)
    if len(ta) != len(tb): return False
    for x, y in zip(ta, tb):
        if isinstance(x, float) and isinstance(y, float):
            if abs(x - y) > rel * max(abs(x), abs(y), 1e-12): return False
        elif (x is None) != (y is None) or (isinstance(x, str) and x.split() != y.split()): return False
    return True


def check(path: Path) -> tuple:
    stored = read_nb(path)
    fresh, _, ok = run(path)
    if not ok: return 0, 1
    passed, failed = 0, 0
    for i, (s, f) in enumerate(zip(stored.cells, fresh.cells)):
        if skipped(s) or not (shown(s) or shown(f)): continue
        if same(shown(s), shown(f)): passed += 1
        else:
            failed += 1
            print(f"{path.name}, cell {i}: the stored output is not what the code prints now\n--- stored\n{shown(s)}\n--- now\n{shown(f)}\n")
    return passed, failed


if __name__ == "__main__":
    paths = [Path(p).resolve() for p in sys.argv[1:]]
    if not paths: sys.exit(__doc__)
    totals = [check(p) for p in paths]
    passed, failed = sum(p for p, _ in totals), sum(f for _, f in totals)
    print(f"outputs: {passed} passed, {failed} failed")
    sys.exit(1 if failed else 0)
