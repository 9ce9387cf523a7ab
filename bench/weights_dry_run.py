"""Dry run of the `#| weights` cells of nbs/21_inception.ipynb where no ImageNet weights or images exist.

It writes a weights file with the keys of torchvision's `googlenet-1378be20.pth` (random values, aux heads included)
and an ImageFolder of 256x256 crops of scikit-learn's two sample photos in 10 class folders, points
NEURON_IMPORTANCE_GOOGLENET and NEURON_IMPORTANCE_IMAGENET at them, and runs the notebook with the `weights` flag on:
the flagged cells run unchanged, end to end. Their numbers mean nothing (random weights); with the real file and
ImageNet validation folders the same command gives the paper's experiments.

    python bench/weights_dry_run.py [--per-class 50]
"""
import argparse, os, subprocess, sys, tempfile, time
from pathlib import Path

import torch, torchvision

def make_weights(path: Path):
    "A state dict with torchvision's GoogLeNet keys, as in the ImageNet file."
    torch.manual_seed(0)
    model = torchvision.models.googlenet(weights=None, aux_logits=True, init_weights=True, transform_input=True)
    torch.save(model.state_dict(), path)

def make_folder(root: Path, classes: int = 10, per_class: int = 50, size: int = 256):
    "Class folders of JPEG crops of scikit-learn's sample photos (the layout torchvision's ImageFolder reads)."
    from sklearn.datasets import load_sample_images
    from PIL import Image
    photos, g = load_sample_images().images, torch.Generator().manual_seed(0)
    for c in range(classes):
        folder = root / f"n{c:08d}"; folder.mkdir(parents=True)
        for i in range(per_class):
            p = photos[(c + i) % len(photos)]
            y, x = (int(torch.randint(0, n - size, (1,), generator=g)) for n in p.shape[:2])
            Image.fromarray(p[y:y + size, x:x + size]).save(folder / f"img{i:03d}.JPEG")

def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--per-class", type=int, default=50, help="images per class folder (the cells use up to 50)")
    args = ap.parse_args()
    root = Path(__file__).resolve().parents[1]
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        make_weights(tmp / "googlenet-dry-run.pth"); make_folder(tmp / "imagenet", per_class=args.per_class)
        env = dict(os.environ, NEURON_IMPORTANCE_GOOGLENET=str(tmp / "googlenet-dry-run.pth"),
                   NEURON_IMPORTANCE_IMAGENET=str(tmp / "imagenet"))
        t0 = time.time()
        rc = subprocess.call(["nbdev_test", "--flags", "weights", "--do_print", "--path", str(root / "nbs/21_inception.ipynb")],
                             env=env, cwd=root)
        print(f"nbs/21_inception.ipynb with the weights cells: {'passed' if rc == 0 else 'FAILED'} in {time.time() - t0:.0f} s")
    sys.exit(rc)

if __name__ == "__main__":
    main()
