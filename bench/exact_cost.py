#!/usr/bin/env python
"""Cost of exact conductance: `rule="exact"` against the uniform trapezoid rule at the steps that reach a per-unit error.

On a small conv net trained on 16x16 images (scikit-learn's 8x8 digits upsampled; two stride-2 convs with ReLU, a dense
ReLU layer, a linear head), layer `3` (the second conv's ReLU), 8 test digits, float64: the trapezoid rule's step count
is found by doubling from 16 until its per-unit error against exact,

    err = max over examples of  sum_units |ours - exact| / sum_units |exact|,

is at most the target (1e-5). Then both are timed side by side, alternating, `--repeats` times each (the median is
reported), on a fixed number of torch threads, with the passes of each: exact's are the rows (forward + backward) the
example that needed most took (`result.passes`), the uniform rule's m+1 per example (its forward pass at the baseline,
no backward, not counted). For reference it also gives `tol=1e-3` against Captum's default (Gauss-Legendre, 50 steps).

    python bench/exact_cost.py [--md bench/exact-cost-cpu.md]
"""
from __future__ import annotations
import argparse, json, statistics, time, warnings
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

warnings.filterwarnings("ignore")
from neuron_importance.conductance import layer_conductance
from convergence import train_on_digits       # the same training as the convergence benchmark's digits CNN


def digits16(seed: int = 0, epochs: int = 4):
    "The conv net trained on digits upsampled to 16x16 (float64 afterwards), 8 test digits, its test accuracy."
    from sklearn.datasets import load_digits
    d = load_digits()
    x = F.interpolate(torch.tensor(d.images, dtype=torch.float32)[:, None] / 16, size=16, mode="bilinear", align_corners=False)
    y = torch.tensor(d.target)
    net, te = train_on_digits(lambda: nn.Sequential(nn.Conv2d(1, 16, 3, stride=2, padding=1), nn.ReLU(),
                                                    nn.Conv2d(16, 32, 3, stride=2, padding=1), nn.ReLU(),
                                                    nn.Flatten(), nn.Linear(32 * 4 * 4, 64), nn.ReLU(), nn.Linear(64, 10)),
                              x, y, seed, epochs)
    net = net.double().eval()
    x = x.double()
    with torch.no_grad(): acc = (net(x[te]).argmax(1) == y[te]).double().mean().item()
    return net, x[te[:8]], acc


def per_unit_error(ours: torch.Tensor, exact: torch.Tensor) -> float:
    ours, exact = ours.double().flatten(1), exact.double().flatten(1)
    return ((ours - exact).abs().sum(1) / exact.abs().sum(1).clamp_min(1e-300)).max().item()


def timed(f):
    t = time.perf_counter(); r = f(); return time.perf_counter() - t, r


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--target", type=float, default=1e-5, help="per-unit error the trapezoid rule must reach")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--max-steps", type=int, default=65536)
    p.add_argument("--md", type=Path, help="also write the machine, versions and result as Markdown here")
    p.add_argument("--json", type=Path)
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    net, x, acc = digits16()
    layer, kw = "3", dict(target=None)
    lines = [f"conv net 16x16 (conv 1-16 s2, ReLU, conv 16-32 s2, ReLU, dense 512-64, ReLU, 64-10), trained on digits "
             f"upsampled to 16x16, test accuracy {acc:.2f}; layer `{layer}` (second conv's ReLU, 32x4x4 units), "
             f"{len(x)} test digits, predicted class, zero baseline, float64", ""]
    t_first, ex = timed(lambda: layer_conductance(net, x, layer, rule="exact", **kw))
    exact = ex[layer]
    search, m, t_search = [], 16, 0.0
    while m <= a.max_steps:
        t, r = timed(lambda: layer_conductance(net, x, layer, steps=m, **kw))
        t_search += t
        search.append((m, per_unit_error(r[layer], exact), r.relative_delta()[layer].max().item(), t))
        print(f"  trapezoid {m:6d} steps: per-unit error {search[-1][1]:.2e}, completeness {search[-1][2]:.1e}, {t:.2f} s", flush=True)
        if search[-1][1] <= a.target: break
        m *= 2
    reached = search[-1][1] <= a.target
    times = {"exact": [t_first], "trapezoid": [search[-1][3]]}
    for _ in range(a.repeats - 1):                        # side by side, alternating
        times["exact"].append(timed(lambda: layer_conductance(net, x, layer, rule="exact", **kw))[0])
        times["trapezoid"].append(timed(lambda: layer_conductance(net, x, layer, steps=m, **kw))[0])
    t_ex, t_tr = statistics.median(times["exact"]), statistics.median(times["trapezoid"])
    faster = "exact" if t_ex < t_tr else "trapezoid"
    lines += ["| method | per-unit error | passes per example | wall time (median of %d) |" % a.repeats, "|---|---|---|---|",
              f"| `rule=\"exact\"` | float precision (completeness {ex.relative_delta()[layer].max().item():.1e}); "
              f"regions {ex.regions.min().item()}-{ex.regions.max().item()} per example | {ex.passes} (most of any example) | {t_ex:.2f} s |",
              f"| uniform trapezoid, {m} steps (doubling from 16{'' if reached else '; target NOT reached'}) | {search[-1][1]:.1e} | {m + 1} | {t_tr:.2f} s |",
              "",
              f"ratio: trapezoid / exact wall time {t_tr / t_ex:.2f} ({faster} is faster); passes {(m + 1) / ex.passes:.2f}; "
              f"the doubling search itself ran {sum(s[0] + 1 for s in search)} passes per example in {t_search:.1f} s.",
              "", "Doubling: " + "; ".join(f"{s[0]} steps {s[1]:.1e} ({s[3]:.2f} s)" for s in search) + "."]
    # for reference: tol=1e-3 against Captum's default on the same net
    from captum.attr import LayerConductance
    with torch.no_grad(): cls = net(x).argmax(1)
    t_cap, cap = timed(lambda: LayerConductance(net, dict(net.named_modules())[layer]).attribute(x, target=cls, n_steps=50))
    t_tol, ad = timed(lambda: layer_conductance(net, x, layer, steps=1, tol=1e-3, **kw))
    t_ex32, ex32 = timed(lambda: layer_conductance(net.float(), x.float(), layer, rule="exact", **kw)); net.double()
    lines += ["", f"For reference: `tol=1e-3` (from one segment) {ad.passes} passes, per-unit error {per_unit_error(ad[layer], exact):.1e}, "
              f"{t_tol:.2f} s; Captum's default (Gauss-Legendre, 50 steps) 51 passes, per-unit error {per_unit_error(cap, exact):.1e}, {t_cap:.2f} s; "
              f"`rule=\"exact\"` in float32: per-unit error {per_unit_error(ex32[layer], exact):.1e} against float64, {t_ex32:.2f} s (one run)."]
    text = "\n".join(lines)
    print(text)
    if a.json: a.json.write_text(json.dumps(dict(search=search, times=times, passes=dict(exact=ex.passes, trapezoid=m + 1)), indent=1))
    if a.md:
        import os, platform, captum
        a.md.write_text(f"machine: {platform.machine()}, {os.cpu_count()} cores; torch {torch.__version__}, captum {captum.__version__}; "
                        f"{a.threads} torch thread(s)\n\n" + text + "\n")


if __name__ == "__main__":
    main()
