#!/usr/bin/env python
"""Run notebooks top to bottom and save their outputs, the way `nbdev_test` runs them.

    python .ci/execute_notebooks.py nbs/05_conductance.ipynb [more notebooks ...]
    python .ci/execute_notebooks.py --flags slow nbs/21_inception.ipynb      # also run (and refresh) the `slow` cells

- Each notebook runs in a fresh `CaptureShell` in its own folder, with plain PNG figures (not the doubled "retina"
  resolution that execnb uses by default), so saved figures are small and shown at their real size.
- Cells flagged with one of `settings.ini`'s `tst_flags` (`slow`, `weights`, `browser`) or `#| eval: false` are not run
  and keep the outputs they have (the results of a full run, stated in the notebook's prose).
- The notebook is written back only when every cell ran without an error, then `nbdev_clean` normalises it.
- Outputs must not show where they were run: an output holding this checkout's path, the home folder, a temporary
  folder or `site-packages` is reported, and the notebook is not written.
"""
from __future__ import annotations
import os, re, sys, tempfile, time
from configparser import ConfigParser
from pathlib import Path

from execnb.nbio import read_nb, write_nb
from execnb.shell import CaptureShell

root = Path(__file__).resolve().parent.parent
cfg = ConfigParser(); cfg.read(root / "settings.ini")
FLAGS = set(cfg["DEFAULT"].get("tst_flags", "").split())
MACHINE = [re.escape(str(root)), re.escape(str(Path.home())), re.escape(tempfile.gettempdir()) + r"/", r"site-packages"]
_machine = re.compile("|".join(MACHINE))


def directives(source: str) -> dict:
    "The `#| key: value` lines at the top of a code cell."
    found = {}
    for line in source.splitlines():
        m = re.match(r"^\s*#\|\s*([\w-]+):?\s*(.*)$", line)
        if not m: break
        found[m.group(1)] = m.group(2).strip()
    return found


RUN_FLAGS: set = set()

def skipped(cell) -> bool:
    if cell.cell_type != "code": return True
    d = directives(cell.source)
    return bool((FLAGS - RUN_FLAGS) & d.keys()) or d.get("eval", "").lower() == "false" or "default_exp" in d


def output_text(out) -> str:
    parts = [out.get("text", "")] if "text" in out else []
    parts += [v if isinstance(v, str) else "".join(v) for k, v in out.get("data", {}).items() if k.startswith("text/")]
    parts += out.get("traceback", [])
    return "\n".join("".join(p) if isinstance(p, list) else str(p) for p in parts)


def run(path: Path):
    "Run the notebook's cells the way the tests do, in its folder; returns (notebook with fresh outputs, shell, ok)."
    nb = read_nb(path)
    shell = CaptureShell(path, mpl_format="png")
    def pre(cell):
        if skipped(cell): return True
        cell.outputs = []
        return False
    ok, cwd = True, os.getcwd()
    try:
        os.chdir(path.parent)
        shell.run_all(nb, exc_stop=True, preproc=pre)
    except Exception:
        sys.stderr.write(shell.prettytb(fname=path) + "\n"); ok = False
    finally: os.chdir(cwd)
    return nb, shell, ok


def execute(path: Path) -> bool:
    t0 = time.time()
    nb, shell, ok = run(path)
    leaks = [(i, m.group(0)) for i, c in enumerate(nb.cells) if c.cell_type == "code" and not skipped(c)
             for o in c.get("outputs", []) for m in [_machine.search(output_text(o))] if m]
    for i, what in leaks: print(f"{path.name}: cell {i} shows a machine path ({what!r}): print a relative path or silence the warning")
    if ok and not leaks:
        write_nb(nb, path)
        os.system(f"nbdev_clean --fname {path}")
    elif ok:                                     # keep the run, so that a long one is not lost to one leaking output
        kept = Path(tempfile.gettempdir()) / f"refused-{path.name}"
        write_nb(nb, kept)
        print(f"{path.name}: the run is kept in {kept} for inspection")
    print(f"{path.name}: {'written' if ok and not leaks else 'NOT written'} ({time.time() - t0:.0f} s)", flush=True)
    return ok and not leaks


if __name__ == "__main__":
    args = sys.argv[1:]
    if args[:1] == ["--flags"]: RUN_FLAGS.update(args[1].split()); args = args[2:]
    paths = [Path(p).resolve() for p in args]
    if not paths: sys.exit(__doc__)
    results = [execute(p) for p in paths]
    sys.exit(0 if all(results) else 1)
