#!/usr/bin/env python
"""Accuracy per pass: forward/backward passes each rule needs for a per-unit error, against exact conductance.

Completeness (the sum over units against F(x) - F(x')) hides each unit's error: errors of opposite sign cancel. Where
`layer_conductance(..., rule="exact")` runs (piecewise-linear models: it sums the linear regions each path crosses),
every unit's score is checked against it, with the per-unit error

    err = max over examples of  sum_units |ours - exact| / sum_units |exact|.

Each path point costs one forward and one backward pass, so passes to a given error are the real speed of a path method.
For each model and layer, and each per-unit target (1e-2, 1e-3), the first table gives the passes of: uniform left,
uniform trapezoid (one-sided ends, the default), `tol=` (adaptive points from one segment, each point run once; its
measured per-unit error is printed and checked to be <= 2 x tol) and Captum's default method (`LayerConductance`,
Gauss-Legendre), with exact's passes (rows per example, `result.passes`), linear regions per example and time beside
them. A uniform rule's (and Captum's) passes are m+1 for the smallest m in `GRID` whose worst error over the examples
is at or below the target, m up to 2048 where exact runs, 512 elsewhere, 128 with --quick (">2049" etc.: none);
`tol=` reports its own passes (at most 1025: `max_steps=1024`). Our one-sided runs also make one forward pass at the baseline for F(x')
(no backward), not counted here; nor is the probe at x that every method, Captum's included, makes.

The second table gives, for every row (exact or not), the passes to a relative completeness gap: Captum's default
gap (50 steps, 51 passes), 1e-2 and 1e-3. Rows where exact is not run say why. There `tol=` is the same run as in
the first table: it stops when both the gap and its estimate of the per-unit error are within tol, so it may take more
passes than the gap alone needs.

    python bench/convergence.py            # every model (trains and caches the text CNN and the MNIST replica)
    python bench/convergence.py --quick    # MLP, digits CNN, smooth net, random ResNet-18, smaller grids (a few minutes)
"""
from __future__ import annotations
import argparse, json, math, time, warnings
from pathlib import Path

import torch
from torch import nn

warnings.filterwarnings("ignore")
from neuron_importance.conductance import layer_conductance

GRID = [1, 2, 3, 4, 5, 6, 8, 10, 12, 16, 20, 24, 32, 40, 48, 64, 80, 96, 128, 160, 192, 256, 320, 384, 512,
        640, 768, 1024, 1280, 1536, 2048]
TOP = dict(quick=128, completeness=512, unit=2048)   # the largest m tried: --quick; rows without exact; rows with exact
TARGETS = (1e-2, 1e-3)
MAX_STEPS = 1024          # the most segments a tol= path may have


def train_on_digits(make_net, x, y, seed: int = 0, epochs: int = 6):
    "Train `make_net()` (built after seeding) on 1,400 of the images `x` with labels `y` (Adam 1e-3, batches of 64, one thread); the net in eval mode and the test indices."
    g = torch.Generator().manual_seed(seed)
    perm = torch.randperm(len(x), generator=g)
    tr, te = perm[:1400], perm[1400:]
    torch.manual_seed(seed)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)                   # the trained weights depend on the threads' summation order: pin them
    net = make_net()
    opt = torch.optim.Adam(net.parameters(), 1e-3)
    for epoch in range(epochs):
        for idx in tr[torch.randperm(len(tr), generator=g)].split(64):
            loss = nn.functional.cross_entropy(net(x[idx]), y[idx]); opt.zero_grad(); loss.backward(); opt.step()
    torch.set_num_threads(threads)
    return net.eval(), te


def digits_cnn(seed: int = 0):
    "A small ReLU CNN with a max pool, trained on scikit-learn's 8x8 digits; 8 test images; its test accuracy."
    from sklearn.datasets import load_digits
    d = load_digits()
    x = torch.tensor(d.images, dtype=torch.float32)[:, None] / 16
    y = torch.tensor(d.target)
    net, te = train_on_digits(lambda: nn.Sequential(nn.Conv2d(1, 16, 3, padding=1), nn.ReLU(), nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(),
                                                    nn.MaxPool2d(2), nn.Flatten(), nn.Linear(32 * 16, 64), nn.ReLU(), nn.Linear(64, 10)),
                              x, y, seed)
    with torch.no_grad(): acc = (net(x[te]).argmax(1) == y[te]).float().mean().item()
    return net, x[te[:8]], acc


def random_mlp():
    "The random ReLU MLP 10-32-32-16-3 of issue 29, 8 inputs."
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(10, 32), nn.ReLU(), nn.Linear(32, 32), nn.ReLU(), nn.Linear(32, 16), nn.ReLU(),
                        nn.Linear(16, 3)).eval()
    return net, torch.randn(8, 10)


def smooth_net():
    "A random GELU / SiLU / Softplus MLP (a smooth integrand)."
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(20, 64), nn.GELU(), nn.Linear(64, 64), nn.SiLU(), nn.Linear(64, 64), nn.Softplus(),
                        nn.Linear(64, 5)).eval()
    return net, 2 * torch.randn(8, 20)


def resnet():
    from torchvision.models import resnet18
    torch.manual_seed(0)
    return resnet18(num_classes=10).eval(), torch.randn(4, 3, 64, 64)


def cases(quick: bool) -> list:
    "(label, model, inputs, layer, layer_conductance kwargs, why exact is not run: None where it is) for every row."
    out = []
    net, x = random_mlp()
    out.append(("ReLU MLP 10-32-32-16-3, random", net, x, "3", dict(target=0), None))
    dn, xd, acc = digits_cnn()
    out.append((f"CNN trained on sklearn digits (test acc {acc:.2f}), max-pool, internal ReLU", dn, xd, "3", dict(target=None), None))
    net, x = smooth_net()
    out.append(("smooth MLP (GELU, SiLU, Softplus), random", net, x, "3", dict(target=0),
                "no kink anywhere: rule='exact' would be one region integrated by 4 Gauss-Legendre nodes, an estimate, not exact"))
    rn, xr = resnet()
    out.append(("ResNet-18 at init, zero baseline", rn, xr, "layer3", dict(target=0), None))
    if quick: return out
    from neuron_importance.studies.textcnn import pretrained_textcnn
    tc, data, info = pretrained_textcnn(show_progress=False)
    ids = data.ids["test"][:8]
    for layer, what in (("pooled", "pooled filters"), ("hidden", "dense layer after its ReLU")):
        out.append((f"text CNN trained on tweets, {what}", tc, ids, layer, dict(target=0, input_layer="embedding"), None))
    from neuron_importance.studies.inception import trained_mini_inception
    mi, images, labels, train, test = trained_mini_inception(show_progress=False)
    out.append(("MNIST Inception replica (trained)", mi, images[test[:8]], "inception3b", dict(target=None),
                "more than 10,000 linear regions on one test digit's path (236 s to walk them on one thread, stopped by "
                "max_regions=10000): hours for 8 examples"))
    from neuron_importance.models import random_googlenet
    gn = random_googlenet(size=64, calibration_batches=2, batch=4)
    torch.manual_seed(1)
    out.append(("GoogLeNet, random calibrated weights, 64px, inception4d", gn, torch.randn(2, 3, 64, 64), "inception4d",
                dict(target=0), "more than 300 linear regions on one image's path (80 s on one thread, stopped by max_regions=300)"))
    return out


def per_unit_error(ours: torch.Tensor, exact: torch.Tensor) -> float:
    "max over examples of sum_units |ours - exact| / sum_units |exact|."
    ours, exact = ours.double().flatten(1), exact.double().flatten(1)
    return ((ours - exact).abs().sum(1) / exact.abs().sum(1).clamp_min(1e-300)).max().item()


def first_reaching(curve: dict, key: str, target: float):
    "Passes (m+1) of the smallest m whose `key` error is <= target, or None."
    return next((m + 1 for m, e in sorted(curve.items()) if e[key] is not None and e[key] <= target), None)


def captum_scores(model, x, layer, kw, n) -> torch.Tensor:
    "Captum's LayerConductance with its default method (Gauss-Legendre) at n steps (n + 1 passes)."
    from captum.attr import LayerConductance, configure_interpretable_embedding_layer, remove_interpretable_embedding_layer
    mod = dict(model.named_modules())[layer]
    target = kw.get("target")
    if target is None:
        with torch.no_grad(): target = model(x).argmax(1)
    if "input_layer" in kw:
        emb = configure_interpretable_embedding_layer(model, kw["input_layer"])
        try:
            inp = emb.indices_to_embeddings(x)
            return LayerConductance(model, mod).attribute(inp, baselines=torch.zeros_like(inp), target=target, n_steps=n)
        finally: remove_interpretable_embedding_layer(model, emb)
    return LayerConductance(model, mod).attribute(x, target=target, n_steps=n)


def row(label, model, x, layer, kw, quick: bool, why=None) -> dict:
    t0 = time.perf_counter()
    out = dict(label=label, layer=layer, why=why)
    if why is None:
        t = time.perf_counter()
        ex = layer_conductance(model, x, layer, rule="exact", **kw)
        out["exact"] = dict(seconds=time.perf_counter() - t, passes=ex.passes, regions=[ex.regions.min().item(), ex.regions.max().item()],
                            gap=ex.relative_delta()[layer].max().item())
        exact, diff = ex[layer], ex.output_diff
    else:
        exact, diff = None, layer_conductance(model, x, layer, steps=1, **kw).output_diff

    def errors(scores, seconds=None) -> dict:
        gap = ((scores.flatten(1).sum(1) - diff).abs() / diff.abs()).max().item()
        return dict(gap=gap, unit=None if exact is None else per_unit_error(scores, exact), seconds=seconds)

    def done(e, gap_target) -> bool:
        return e["gap"] <= gap_target and (e["unit"] is None or e["unit"] <= min(TARGETS))

    captum50 = errors(captum_scores(model, x, layer, kw, 50))          # Captum's default: 50 steps, 51 passes
    out["captum50"] = captum50
    gap_targets = TARGETS + (captum50["gap"],)
    top = out["top"] = TOP["quick"] if quick else TOP["completeness"] if exact is None else TOP["unit"]
    curves = {}
    for rule in ("trapezoid", "left"):
        curve = curves[rule] = {}
        for m in [m for m in GRID if m <= top]:
            t = time.perf_counter()
            r = layer_conductance(model, x, layer, steps=m, rule=rule, **kw)
            curve[m] = errors(r[layer], time.perf_counter() - t)
            if done(curve[m], min(gap_targets)): break
    curves["captum"] = {}
    for n in [m for m in GRID if 2 <= m <= top]:
        curves["captum"][n] = errors(captum_scores(model, x, layer, kw, n))
        if done(curves["captum"][n], min(TARGETS)): break
    adaptive = {}
    for name, t in (("1e-2", 1e-2), ("1e-3", 1e-3), ("to_captum", captum50["gap"])):
        r = layer_conductance(model, x, layer, steps=1, tol=t, max_steps=MAX_STEPS, **kw)   # from one segment
        adaptive[name] = dict(tol=t, passes=r.passes, estimate=r.settings.get("unit_error") if r.settings else None, **errors(r[layer]))
    out["tol"] = adaptive
    out["unit"], out["completeness"] = {}, {}
    for name, t in zip(("1e-2", "1e-3"), TARGETS):
        if exact is not None:
            a = adaptive[name]
            out["unit"][name] = dict(left=first_reaching(curves["left"], "unit", t), trapezoid=first_reaching(curves["trapezoid"], "unit", t),
                                     tol=a["passes"], tol_error=a["unit"], tol_ok=a["unit"] <= 2 * t,
                                     captum=first_reaching(curves["captum"], "unit", t))
            m = out["unit"][name]["trapezoid"]
            out["unit"][name]["trapezoid_seconds"] = curves["trapezoid"][m - 1]["seconds"] if m else None
    for name, t in zip(("1e-2", "1e-3", "to_captum"), gap_targets):
        a = adaptive[name]
        out["completeness"][name] = dict(trapezoid=first_reaching(curves["trapezoid"], "gap", t), left=first_reaching(curves["left"], "gap", t),
                                         tol=a["passes"] if a["gap"] <= t else None,
                                         captum=first_reaching(curves["captum"], "gap", t) if name != "to_captum" else 51)
    out["curves"] = curves
    out["seconds"] = time.perf_counter() - t0
    return out


def fmt(p, top: int = GRID[-1]) -> str: return f">{top + 1}" if p is None else str(p)


def tol_cell(u) -> str: return f"{u['tol']} ({u['tol_error']:.1e}{'' if u['tol_ok'] else ', > 2 x tol'})"


def unit_table(rows: list) -> str:
    head = ("| model, layer | exact: passes, regions per example, time | Captum default (GL, 51 passes): per-unit error "
            "| per-unit 1e-2: left / trapezoid / tol= (its error) / Captum | per-unit 1e-3: left / trapezoid / tol= (its error) / Captum "
            "| trapezoid at per-unit 1e-3: time |\n|---|---|---|---|---|---|")
    lines = [head]
    for r in rows:
        if r["why"] is not None: continue
        e, u = r["exact"], r["unit"]
        cells = [f"{r['label']} (`{r['layer']}`)",
                 f"{e['passes']}, {e['regions'][0]}-{e['regions'][1]}, {e['seconds']:.2f} s",
                 f"{r['captum50']['unit']:.1e}"]
        for name in ("1e-2", "1e-3"):
            cells.append(" / ".join([fmt(u[name]["left"], r["top"]), fmt(u[name]["trapezoid"], r["top"]), tol_cell(u[name]),
                                     fmt(u[name]["captum"], r["top"])]))
        s = u["1e-3"]["trapezoid_seconds"]
        cells.append("n/a" if s is None else f"{s:.2f} s")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def completeness_table(rows: list) -> str:
    head = ("| model, layer | per-unit reference | Captum default (GL, 50 steps, 51 passes): gap | passes to that gap: trapezoid / left / tol= "
            "| to 1e-2: trapezoid / left / tol= / Captum | to 1e-3: trapezoid / left / tol= / Captum |\n|---|---|---|---|---|---|")
    lines = [head]
    for r in rows:
        c = r["completeness"]
        ref = "exact" if r["why"] is None else f"none: {r['why']}"
        top = lambda k: MAX_STEPS if k == "tol" else r["top"]
        lines.append(f"| {r['label']} (`{r['layer']}`) | {ref} | {r['captum50']['gap']:.1e} | "
                     + " / ".join(fmt(c["to_captum"][k], top(k)) for k in ("trapezoid", "left", "tol"))
                     + " | " + " / ".join(fmt(c["1e-2"][k], top(k)) for k in ("trapezoid", "left", "tol", "captum"))
                     + " | " + " / ".join(fmt(c["1e-3"][k], top(k)) for k in ("trapezoid", "left", "tol", "captum")) + " |")
    return "\n".join(lines)


def table(rows: list) -> str:
    bad = [f"{r['label']} at tol={t}" for r in rows if r["why"] is None for t, u in r["unit"].items() if not u["tol_ok"]]
    return ("Per-unit error against `rule=\"exact\"`:\n\n" + unit_table(rows)
            + f"\n\n`tol=` cells with measured per-unit error > 2 x tol: {', '.join(bad) if bad else 'none'}.\n\n"
            + "Relative completeness gap, every model:\n\n" + completeness_table(rows))


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true")
    p.add_argument("--json", type=Path)
    p.add_argument("--md", type=Path, help="also write the machine, versions and table as Markdown here")
    p.add_argument("--threads", type=int, default=1, help="torch threads for every pass (default 1: the same sums on any machine)")
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    rows = []
    t0 = time.perf_counter()
    for label, model, x, layer, kw, why in cases(a.quick):
        r = row(label, model, x, layer, kw, a.quick, why)
        rows.append(r)
        print(f"  {label} ({layer}): {r['seconds']:.0f} s", flush=True)
    print(table(rows))
    print(f"\ntotal {time.perf_counter() - t0:.0f} s")
    if a.json: a.json.write_text(json.dumps(rows, indent=1, default=str))
    if a.md:
        import os, platform, captum, torchvision
        a.md.write_text(f"machine: {platform.machine()}, {os.cpu_count()} cores; torch {torch.__version__}, torchvision "
                        f"{torchvision.__version__}, captum {captum.__version__}; {a.threads} torch thread(s); mode: {'quick' if a.quick else 'full'}\n\n"
                        + table(rows) + "\n")


if __name__ == "__main__":
    main()
