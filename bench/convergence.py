#!/usr/bin/env python
"""Accuracy per pass: forward/backward passes to reach a relative completeness gap, ours vs Captum's default.

Each path point costs one forward and one backward pass, so passes to a given error are the real speed of a path method.
For each model and layer, and each target gap (1e-2, 1e-3, and the gap Captum's default leaves), the table gives the
passes of: uniform trapezoid (one-sided ends, the default), uniform left, `tol=` (adaptive points from one segment, each point run once) and
Captum's default method (`LayerConductance`, Gauss-Legendre). A uniform rule's passes are m+1 for the smallest m in
`GRID` whose worst gap over the examples is at or below the target; `tol=` reports its own passes. Our one-sided runs
also make one forward pass at the baseline for F(x') (no backward), not counted here; nor is the probe at x that every
method, Captum's included, makes.

    python bench/convergence.py            # every model (trains and caches the text CNN and the MNIST replica)
    python bench/convergence.py --quick    # smooth net, random ResNet-18, digits CNN (about a minute)
"""
from __future__ import annotations
import argparse, json, math, time, warnings
from pathlib import Path

import torch
from torch import nn

warnings.filterwarnings("ignore")
from neuron_importance.conductance import layer_conductance

GRID = [1, 2, 3, 4, 5, 6, 8, 10, 12, 16, 20, 24, 32, 40, 48, 64, 80, 96, 128, 160, 192, 256, 320, 384, 512]
TARGETS = (1e-2, 1e-3)


def digits_cnn(seed: int = 0):
    "A small ReLU CNN trained on scikit-learn's 8x8 digits; 8 test images; its test accuracy."
    from sklearn.datasets import load_digits
    d = load_digits()
    x = torch.tensor(d.images, dtype=torch.float32)[:, None] / 16
    y = torch.tensor(d.target)
    g = torch.Generator().manual_seed(seed)
    perm = torch.randperm(len(x), generator=g)
    tr, te = perm[:1400], perm[1400:]
    torch.manual_seed(seed)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)                   # the trained weights depend on the threads' summation order: pin them
    net = nn.Sequential(nn.Conv2d(1, 16, 3, padding=1), nn.ReLU(), nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(),
                        nn.MaxPool2d(2), nn.Flatten(), nn.Linear(32 * 16, 64), nn.ReLU(), nn.Linear(64, 10))
    opt = torch.optim.Adam(net.parameters(), 1e-3)
    for epoch in range(6):
        for idx in tr[torch.randperm(len(tr), generator=g)].split(64):
            loss = nn.functional.cross_entropy(net(x[idx]), y[idx]); opt.zero_grad(); loss.backward(); opt.step()
    torch.set_num_threads(threads)
    net.eval()
    with torch.no_grad(): acc = (net(x[te]).argmax(1) == y[te]).float().mean().item()
    return net, x[te[:8]], acc


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
    "(label, model, inputs, layer, layer_conductance kwargs, captum layer) for every row."
    out = []
    net, x = smooth_net()
    out.append(("smooth MLP (GELU, SiLU, Softplus), random", net, x, "3", dict(target=0), None))
    rn, xr = resnet()
    out.append(("ResNet-18 at init, zero baseline", rn, xr, "layer3", dict(target=0), None))
    dn, xd, acc = digits_cnn()
    out.append((f"CNN trained on sklearn digits (test acc {acc:.2f}), internal ReLU", dn, xd, "3", dict(target=None), None))
    if quick: return out
    from neuron_importance.studies.inception import trained_mini_inception
    mi, images, labels, train, test = trained_mini_inception(show_progress=False)
    out.append(("MNIST Inception replica (trained)", mi, images[test[:8]], "inception3b", dict(target=None), None))
    from neuron_importance.studies.textcnn import pretrained_textcnn
    tc, data, info = pretrained_textcnn(show_progress=False)
    ids = data.ids["test"][:8]
    for layer, what in (("pooled", "pooled filters"), ("hidden", "dense layer after its ReLU")):
        out.append((f"text CNN trained on tweets, {what}", tc, ids, layer, dict(target=0, input_layer="embedding"), None))
    from neuron_importance.models import random_googlenet
    gn = random_googlenet(size=64, calibration_batches=2, batch=4)
    torch.manual_seed(1)
    out.append(("GoogLeNet, random calibrated weights, 64px, inception4d", gn, torch.randn(2, 3, 64, 64), "inception4d",
                dict(target=0), None))
    return out


def gap_of(model, x, layer, kw, steps, rule) -> float:
    return layer_conductance(model, x, layer, steps=steps, rule=rule, **kw).relative_delta()[layer].max().item()


def first_reaching(gaps: dict, target: float):
    "Passes (m+1) of the smallest m with gap <= target, or None."
    return next((m + 1 for m, e in sorted(gaps.items()) if e <= target), None)


def captum_gaps(model, x, layer, kw, steps_list, diff) -> dict:
    "Captum's LayerConductance with its default method (Gauss-Legendre) at each step count: worst relative gap."
    from captum.attr import LayerConductance, configure_interpretable_embedding_layer, remove_interpretable_embedding_layer
    mod = dict(model.named_modules())[layer]
    target = kw.get("target")
    if target is None:
        with torch.no_grad(): target = model(x).argmax(1)
    out = {}
    if "input_layer" in kw:
        emb = configure_interpretable_embedding_layer(model, kw["input_layer"])
        try:
            inp = emb.indices_to_embeddings(x)
            for n in steps_list:
                r = LayerConductance(model, mod).attribute(inp, baselines=torch.zeros_like(inp), target=target, n_steps=n)
                out[n] = ((r.flatten(1).sum(1) - diff).abs() / diff.abs()).max().item()
        finally: remove_interpretable_embedding_layer(model, emb)
    else:
        for n in steps_list:
            r = LayerConductance(model, mod).attribute(x, target=target, n_steps=n)
            out[n] = ((r.flatten(1).sum(1) - diff).abs() / diff.abs()).max().item()
    return out


def row(label, model, x, layer, kw, quick: bool) -> dict:
    t0 = time.perf_counter()
    diff = layer_conductance(model, x, layer, steps=1, **kw).output_diff
    # Captum: its default is 50 steps, and it evaluates n_steps + 1 points for layer conductance
    captum50 = captum_gaps(model, x, layer, kw, [50], diff)[50]
    targets = TARGETS + (captum50,)
    uniform = {}
    for rule in ("trapezoid", "left"):
        gaps = {}
        for m in GRID:
            gaps[m] = gap_of(model, x, layer, kw, m, rule)
            if gaps[m] <= min(targets): break
        uniform[rule] = gaps
    adaptive = {}
    for t in targets:
        r = layer_conductance(model, x, layer, steps=1, tol=t, max_steps=512, **kw)   # from one segment
        adaptive[t] = (r.passes, r.relative_delta()[layer].max().item())
    cap_grid = {}
    for n in [m for m in GRID if m >= 2]:
        cap_grid[n] = captum_gaps(model, x, layer, kw, [n], diff)[n]
        if cap_grid[n] <= min(TARGETS) or n >= (128 if quick else 512): break
    out = dict(label=label, layer=layer, captum_gap=captum50, seconds=time.perf_counter() - t0)
    for name, t in zip(("1e-2", "1e-3", "to_captum"), targets):
        out[name] = dict(trapezoid=first_reaching(uniform["trapezoid"], t), left=first_reaching(uniform["left"], t),
                         tol=adaptive[t][0] if adaptive[t][1] <= t else None,
                         captum=first_reaching(cap_grid, t) if name != "to_captum" else 51)
    out["curves"] = dict(trapezoid=uniform["trapezoid"], left=uniform["left"], captum=cap_grid)
    return out


def fmt(p) -> str: return ">513" if p is None else str(p)


def table(rows: list) -> str:
    head = ("| model, layer | Captum default (GL, 50 steps, 51 passes): gap | passes to that gap: trapezoid / left / tol= "
            "| to 1e-2: trapezoid / left / tol= / Captum | to 1e-3: trapezoid / left / tol= / Captum |\n|---|---|---|---|---|")
    lines = [head]
    for r in rows:
        b = r
        lines.append(f"| {r['label']} (`{r['layer']}`) | {r['captum_gap']:.1e} | "
                     + " / ".join(fmt(b["to_captum"][k]) for k in ("trapezoid", "left", "tol"))
                     + " | " + " / ".join(fmt(b["1e-2"][k]) for k in ("trapezoid", "left", "tol", "captum"))
                     + " | " + " / ".join(fmt(b["1e-3"][k]) for k in ("trapezoid", "left", "tol", "captum")) + " |")
    return "\n".join(lines)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true")
    p.add_argument("--json", type=Path)
    p.add_argument("--md", type=Path, help="also write the machine, versions and table as Markdown here")
    p.add_argument("--threads", type=int, default=1, help="torch threads for every pass (default 1: the same sums on any machine)")
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    rows = []
    for label, model, x, layer, kw, _ in cases(a.quick):
        r = row(label, model, x, layer, kw, a.quick)
        rows.append(r)
        print(f"  {label} ({layer}): {r['seconds']:.0f} s", flush=True)
    print(table(rows))
    if a.json: a.json.write_text(json.dumps(rows, indent=1, default=str))
    if a.md:
        import os, platform, captum, torchvision
        a.md.write_text(f"machine: {platform.machine()}, {os.cpu_count()} cores; torch {torch.__version__}, torchvision "
                        f"{torchvision.__version__}, captum {captum.__version__}; {a.threads} torch thread(s); mode: {'quick' if a.quick else 'full'}\n\n"
                        + table(rows) + "\n")


if __name__ == "__main__":
    main()
