#!/usr/bin/env python
"""neuron_importance vs Captum, measured side by side in one run.

Prints a table of ratios with the machine and versions, and exits non-zero when a correctness check fails
(never because a speed ratio misses its target). `--quick` uses small sizes for a CI smoke run.

    python bench/benchmark.py            # the full run (about 6 minutes on a 2-core CPU)
    python bench/benchmark.py --quick    # smoke run (about 1 minute)
    python bench/benchmark.py --compile  # also measure torch.compile (adds the compile time, minutes on a CPU)
"""
from __future__ import annotations
import argparse, json, os, platform, subprocess, sys, threading, time, warnings
from pathlib import Path

import torch
from torch import nn

warnings.filterwarnings("ignore")
from neuron_importance.conductance import layer_conductance, neuron_conductance, total_conductance_reference
from neuron_importance.models import random_googlenet
from neuron_importance.results import max_relative_error as rel
from neuron_importance.studies.textcnn import TextCNN

MIXED = ["inception3a", "inception3b", "inception4a", "inception4b", "inception4c", "inception4d", "inception4e",
         "inception5a", "inception5b"]
failures: list[str] = []
rows: list[tuple] = []


def timed(f, repeat: int = 1):
    "Best wall time of `repeat` calls of f, and its last result."
    best, out = float("inf"), None
    for _ in range(repeat):
        t0 = time.perf_counter(); out = f(); best = min(best, time.perf_counter() - t0)
    return best, out


def check(ok: bool, what: str):
    if not ok: failures.append(what)
    return "ok" if ok else "FAILED"


def report(item: str, ours: str, peer: str, ratio: str, target: str, note: str = ""):
    rows.append((item, ours, peer, ratio, target, note)); print(f"  {item}: {ratio} ({note})", flush=True)


def bench_layers(net, x, steps):
    "All nine mixed layers: one call of ours vs Captum's LayerConductance once per layer."
    from captum.attr import LayerConductance
    # one_sided=False: Captum takes the gradients at the path's ends, so the same sum term for term
    t_ours, ours = timed(lambda: layer_conductance(net, x, MIXED, target=0, steps=steps, rule="left", one_sided=False))
    mods = dict(net.named_modules())
    t_captum, theirs = timed(lambda: {n: LayerConductance(net, mods[n]).attribute(x, target=0, n_steps=steps,
                                                                                   method="riemann_trapezoid") for n in MIXED})
    worst = max(rel(ours[n], theirs[n]) for n in MIXED)
    report("9 GoogLeNet mixed layers, one call vs Captum per layer", f"{t_ours:.1f} s", f"{t_captum:.1f} s",
           f"{t_captum / t_ours:.1f}x faster", ">= 8x", f"agreement {worst:.1e} {check(worst < 1e-4, 'layers vs Captum')}")


def bench_one_layer(net, x, steps, layer="inception4d"):
    "One layer: ours vs Captum, and ours vs the bare m+1 forward+backward passes of the model."
    from captum.attr import LayerConductance
    rows_per = max(1, (2**22) // x[0].numel())
    def bare():
        a = torch.linspace(0, 1, steps + 1)
        for chunk in a.split(rows_per):
            pts = (chunk.view(-1, 1, 1, 1) * x).requires_grad_()
            torch.autograd.grad(net(pts)[:, 0].sum(), pts)
    t_bare, _ = timed(bare, 2)
    t_ours, ours = timed(lambda: layer_conductance(net, x, layer, target=0, steps=steps, rule="left", one_sided=False), 2)
    t_captum, theirs = timed(lambda: LayerConductance(net, dict(net.named_modules())[layer]).attribute(
        x, target=0, n_steps=steps, method="riemann_trapezoid"), 2)
    err = rel(ours[layer], theirs)
    report(f"one layer ({layer}) vs bare m+1 forward+backward", f"{t_ours:.2f} s", f"bare {t_bare:.2f} s",
           f"{t_ours / t_bare:.2f}x the bare cost", "<= 1.1x", "")
    report(f"one layer ({layer}) vs Captum", f"{t_ours:.2f} s", f"{t_captum:.2f} s", f"{t_ours / t_captum:.2f}x Captum's time",
           "<= 1.0x", f"agreement {err:.1e} {check(err < 1e-4, 'one layer vs Captum')}")


def _rss() -> int:
    with open("/proc/self/statm") as f: return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def memory_probe(who: str, steps: int, size: int) -> float:
    "Peak resident memory above the level before the call, in MB (run in a fresh process)."
    from captum.attr import LayerConductance
    net = random_googlenet(size=size, calibration_batches=2, batch=4)
    x = torch.randn(1, 3, size, size)
    peak, stop, base = [0], [False], _rss()
    def sample():
        while not stop[0]: peak[0] = max(peak[0], _rss()); time.sleep(0.002)
    t = threading.Thread(target=sample); t.start()
    try:
        if who == "ours": layer_conductance(net, x, "inception4d", target=0, steps=steps)
        else: LayerConductance(net, net.inception4d).attribute(x, target=0, n_steps=steps, method="riemann_trapezoid")
    finally: stop[0] = True; t.join()
    return (max(peak[0], _rss()) - base) / 2**20


def bench_memory(size, steps_list):
    out = {}
    for who in ("ours", "captum"):
        for m in steps_list:
            r = subprocess.run([sys.executable, __file__, "--memory-probe", who, "--steps", str(m), "--size", str(size)],
                               capture_output=True, text=True, timeout=600)
            out[who, m] = float(r.stdout.strip().splitlines()[-1]) if r.returncode == 0 else float("nan")
    ours = ", ".join(f"m={m}: {out['ours', m]:.0f} MB" for m in steps_list)
    theirs = ", ".join(f"m={m}: {out['captum', m]:.0f} MB" for m in steps_list)
    mid = steps_list[1]
    report(f"peak memory vs steps (GoogLeNet {size}px, inception4d)", ours, theirs,
           f"ours/Captum at m={mid}: {out['ours', mid] / out['captum', mid]:.2f}", "flat; <= 0.5x at m=64",
           f"ours grows {out['ours', steps_list[-1]] / max(out['ours', steps_list[0]], 1):.1f}x from m={steps_list[0]} to {steps_list[-1]}")


def bench_neurons(label, net, x, layer, units, steps, **kw):
    """Neuron conductance of K units: ours (one walk, K products below the layer) vs Captum's NeuronConductance once per unit.

    Both pay K x (m+1) vector-Jacobian products from the layer down to the input; Captum also pays a forward pass and
    the backward pass above the layer for every unit. So the speed-up cannot exceed Captum's time per unit over our
    marginal time per unit, measured here from ours at 1 and at K units ("ceiling")."""
    from captum.attr import NeuronConductance
    k = len(units)
    kw = dict(kw, one_sided=False)        # Captum's gradients at the ends: the same sum term for term
    t_one, _ = timed(lambda: neuron_conductance(net, x, layer, units[:1], steps=steps, **kw))
    t_ours, ours = timed(lambda: neuron_conductance(net, x, layer, units, steps=steps, **kw))
    mod, n = dict(net.named_modules())[layer], steps + 1
    nc = NeuronConductance(net, mod)
    def captum_loop(inp):
        # Captum's trapezoid step weights sum to (n-1)/n: rescale to the integral (see nbs/06_measures)
        return timed(lambda: torch.stack([nc.attribute(inp, neuron_selector=u, n_steps=n, method="riemann_trapezoid",
                                                       target=kw["target"]) for u in units], 1) * n / (n - 1))
    kw.pop("one_sided")
    if "input_layer" in kw:      # Captum's path runs in the embedding's output space: attribute to that layer's output
        from captum.attr import configure_interpretable_embedding_layer, remove_interpretable_embedding_layer
        emb = configure_interpretable_embedding_layer(net, kw["input_layer"])
        try: t_captum, theirs = captum_loop(emb.indices_to_embeddings(x))
        finally: remove_interpretable_embedding_layer(net, emb)
    else: t_captum, theirs = captum_loop(x)
    err = rel(ours, theirs)
    ceiling = (t_captum / k) / max((t_ours - t_one) / (k - 1), 1e-9)
    report(f"neuron conductance, {k} units of {label}", f"{t_ours:.1f} s (1 unit: {t_one:.2f} s)", f"{t_captum:.1f} s",
           f"{t_captum / t_ours:.1f}x faster", ">= 10x",
           f"ceiling for one walk with K products: {ceiling:.1f}x; agreement {err:.1e} {check(err < 1e-3, f'neurons vs Captum ({label})')}")


def bench_deeplift(net, x, steps):
    "DeepLIFT (one pass) vs conductance (m+1 points) for all nine mixed layers, and Captum's LayerDeepLift per layer."
    from captum.attr import LayerDeepLift
    from neuron_importance.deeplift import layer_deeplift
    t_dl, dl = timed(lambda: layer_deeplift(net, x, MIXED, target=0), 2)
    t_cd, _ = timed(lambda: layer_conductance(net, x, MIXED, target=0, steps=steps))
    mods = dict(net.named_modules())
    t_cap, theirs = timed(lambda: {n: LayerDeepLift(net, mods[n]).attribute(x, baselines=torch.zeros_like(x), target=0) for n in MIXED})
    ours_gap = max(dl.relative_delta()[n].max().item() for n in MIXED)
    cap_gap = max(((theirs[n].flatten(1).sum(1) - dl.output_diff).abs() / dl.output_diff.abs()).max().item() for n in MIXED)
    report("DeepLIFT vs conductance time, 9 GoogLeNet mixed layers", f"DeepLIFT {t_dl:.2f} s (1 pass)",
           f"conductance {t_cd:.1f} s ({steps + 1} points); Captum LayerDeepLift per layer {t_cap:.1f} s",
           f"conductance/DeepLIFT {t_cd / t_dl:.0f}x; Captum/ours {t_cap / t_dl:.1f}x", "report",
           f"summation-to-delta: ours max rel. gap {ours_gap:.1e} {check(ours_gap < 1e-4, 'DeepLIFT summation-to-delta')}, "
           f"Captum {cap_gap:.2f} (functional ReLUs fall back to gradients)")


def bench_compile(net, x, steps, layer="inception4d", repeat=3):
    "torch.compile of the model: first call (compiles), then repeated calls, vs the eager model."
    t_eager, eager = timed(lambda: layer_conductance(net, x, layer, target=0, steps=steps), repeat)
    compiled = torch.compile(net)
    t_first, _ = timed(lambda: layer_conductance(compiled, x, layer, target=0, steps=steps))
    t_again, again = timed(lambda: layer_conductance(compiled, x, layer, target=0, steps=steps), repeat)
    gap = rel(again[layer], eager[layer])
    comp_c, comp_e = again.relative_delta()[layer].max().item(), eager.relative_delta()[layer].max().item()
    saved = t_eager - t_again
    even = f"pays after {t_first / saved:.0f} calls" if saved > 0 else "never pays"
    report(f"torch.compile, one layer ({layer}), repeated calls", f"compiled {t_again:.2f} s (first call {t_first:.0f} s)",
           f"eager {t_eager:.2f} s", f"{t_eager / t_again:.2f}x faster once compiled", "measure; off by default",
           f"{even}; agreement with eager {gap:.1e}; completeness gap compiled {comp_c:.1e}, eager {comp_e:.1e} "
           f"{check(comp_c < 2 * comp_e + 1e-4, 'compiled completeness')}")


def bench_convergence(quick: bool):
    "Accuracy per pass (bench/convergence.py): passes to a per-unit error against rule='exact' (and to a completeness gap), ours vs Captum's default, per model."
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import convergence
    fmt = convergence.fmt
    table = []
    threads = torch.get_num_threads()
    torch.set_num_threads(1)               # as bench/convergence.py runs: one thread (many small passes; two threads thrash on a busy machine)
    try:
        cases = [(c, convergence.row(*c[:5], quick, c[5])) for c in convergence.cases(quick)]
    finally: torch.set_num_threads(threads)
    for (label, model, x, layer, kw, why), r in cases:
        table.append(r)
        if why is None:
            u, e = r["unit"], r["exact"]
            best = min((p for p in (u["1e-2"]["trapezoid"], u["1e-2"]["tol"]) if p is not None), default=None)
            cap = u["1e-2"]["captum"]
            report(f"passes to per-unit error 1e-2 against exact, {label} (`{layer}`)",
                   f"trapezoid {fmt(u['1e-2']['trapezoid'], r['top'])}, left {fmt(u['1e-2']['left'], r['top'])}, tol= {u['1e-2']['tol']}",
                   f"Captum {fmt(cap, r['top'])} (at 51 passes: {r['captum50']['unit']:.1e})",
                   f"Captum/ours {cap / best:.1f}x" if best and cap else "n/a", "report",
                   f"exact: {e['passes']} passes, regions {e['regions'][0]}-{e['regions'][1]}, {e['seconds']:.2f} s; "
                   f"tol= per-unit error at tol 1e-2 / 1e-3: {u['1e-2']['tol_error']:.1e} / {u['1e-3']['tol_error']:.1e} "
                   f"{check(u['1e-2']['tol_ok'] and u['1e-3']['tol_ok'], f'tol= per-unit error <= 2 x tol, {label}')}")
        else:
            c = r["completeness"]
            report(f"passes to Captum's default completeness gap, {label} (`{layer}`)",
                   f"trapezoid {fmt(c['to_captum']['trapezoid'], r['top'])}, left {fmt(c['to_captum']['left'], r['top'])}, tol= {fmt(c['to_captum']['tol'], convergence.MAX_STEPS)}",
                   f"51 passes, gap {r['captum50']['gap']:.1e}", "report", "report", f"no exact reference: {why}")
    return table


def bench_headline(widths, steps):
    "'Total conductance did not scale': neuron IG vs the per-unit paper-exact formula for a whole layer, as it widens."
    times = []
    for w in widths:
        torch.manual_seed(0)
        mlp = nn.Sequential(nn.Linear(64, w), nn.Tanh(), nn.Linear(w, 10)).eval()
        x = torch.randn(4, 64)
        t_nig, nig = timed(lambda: layer_conductance(mlp, x, "1", target=0, steps=steps))
        t_ref, ref = timed(lambda: total_conductance_reference(mlp, x, "1", target=0, steps=steps))
        check(rel(ref.float(), nig["1"]) < 0.01, f"paper-exact vs neuron IG at width {w}")
        times.append((w, t_nig, t_ref))
    report("neuron IG vs paper-exact formula, whole layer", ", ".join(f"{w}: {a * 1e3:.0f} ms" for w, a, _ in times),
           ", ".join(f"{w}: {b:.1f} s" for w, _, b in times), ", ".join(f"{w}: {b / a:.0f}x" for w, a, b in times),
           "gap grows with width", f"MLP 64 -> width -> 10, {steps} steps, 4 examples")


def textcnn():
    "The paper's text CNN (`neuron_importance.studies.textcnn.TextCNN`) with random weights over a 2,000-word vocabulary."
    torch.manual_seed(0)
    return TextCNN(2000).eval()


def bench_adaptive(cases, tol=0.01):
    "Passes to reach a completeness tolerance: uniform grids (known steps, and the doubling search) vs adaptive points."
    for label, model, x, layer, kw in cases:
        uniform, searched = None, 0
        for m in (4, 8, 16, 32, 64, 128, 256, 512):
            searched += m + 1
            if layer_conductance(model, x, layer, steps=m, **kw).relative_delta()[layer].max() <= tol: uniform = m; break
        ad = layer_conductance(model, x, layer, steps=1, tol=tol, max_steps=512, **kw)
        report(f"passes to {tol:.0%} completeness, {label}", f"adaptive {ad.passes} passes ({ad.steps} segments)",
               f"uniform {uniform + 1 if uniform else '>513'} passes (search {searched})",
               f"{(uniform + 1) / ad.passes:.2f}x" if uniform else "n/a", "report", "trapezoid rule, target 0")


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="small sizes, for a CI smoke run")
    p.add_argument("--compile", action="store_true", help="also measure torch.compile (compiling GoogLeNet takes minutes)")
    p.add_argument("--json", type=Path, help="also write the table as JSON here")
    p.add_argument("--memory-probe", choices=["ours", "captum"], help=argparse.SUPPRESS)
    p.add_argument("--steps", type=int, default=64, help=argparse.SUPPRESS)
    p.add_argument("--size", type=int, default=112, help=argparse.SUPPRESS)
    a = p.parse_args()
    if a.memory_probe: print(memory_probe(a.memory_probe, a.steps, a.size)); return
    import captum, torchvision
    size = 64 if a.quick else 224
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, {platform.processor() or platform.platform()}; "
          f"device: {'cuda' if torch.cuda.is_available() else 'cpu'}")
    print(f"torch {torch.__version__}, torchvision {torchvision.__version__}, captum {captum.__version__}, python {platform.python_version()}")
    print(f"mode: {'quick' if a.quick else 'full'}; GoogLeNet with random calibrated weights at {size}x{size}, batch 1\n", flush=True)
    t0 = time.perf_counter()
    net = random_googlenet(size=size, calibration_batches=2, batch=4)
    torch.manual_seed(1)
    x = torch.randn(1, 3, size, size)
    bench_layers(net, x, steps=8 if a.quick else 32)
    bench_one_layer(net, x, steps=8 if a.quick else 32)
    if a.compile: bench_compile(net, x, steps=8 if a.quick else 32)
    bench_memory(64 if a.quick else 112, [4, 16, 64] if a.quick else [16, 64, 256])
    small = random_googlenet(size=64, calibration_batches=2, batch=4)
    k = 8 if a.quick else 64
    bench_neurons("GoogLeNet 64px inception4d", small, torch.randn(1, 3, 64, 64), "inception4d",
                  [(c, 1, 1) for c in range(k)], steps=4 if a.quick else 16, target=0)
    tc, ids = textcnn(), torch.randint(1, 2000, (4, 40))
    bench_neurons("random text CNN, pooled filters", tc, ids, "pooled", [(c,) for c in range(k)],
                  steps=4 if a.quick else 16, target=0, input_layer="embedding")
    conv_table = bench_convergence(a.quick)
    bench_headline([16, 64] if a.quick else [64, 256, 1024], steps=8 if a.quick else 16)
    bench_deeplift(net, x, steps=8 if a.quick else 32)
    bench_adaptive([(f"GoogLeNet {size}px inception4d", net, x, "inception4d", dict(target=0)),
                    ("random text CNN (Kim-style, 4x64 filters), pooled layer", tc, ids, "pooled",
                     dict(target=0, input_layer="embedding"))])
    print(f"\n| measurement | ours | peer | ratio | target | notes |\n|---|---|---|---|---|---|")
    for r in rows: print("| " + " | ".join(map(str, r)) + " |")
    print(f"\ntotal {time.perf_counter() - t0:.0f} s; correctness checks: {'all passed' if not failures else 'FAILED: ' + '; '.join(failures)}")
    print("\n## Accuracy per pass\n\n" + __import__("convergence").table(conv_table))
    if a.json: a.json.write_text(json.dumps(dict(rows=rows, failures=failures, convergence=conv_table), indent=1, default=str))
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
