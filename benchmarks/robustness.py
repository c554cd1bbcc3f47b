"""Accuracy on MNIST test digits re-rendered as canvas drawings and phone photos, beside the naive
resize-the-whole-image pipeline that most digit demos use.

    python benchmarks/robustness.py                 # 1000 digits per condition, bundled weights
    python benchmarks/robustness.py --n 200 --weights runs/x/model_weights.pth
    python benchmarks/robustness.py --split validation --n 625   # to judge a change before any test score

Only MNIST's test digits are rendered; training never sees them. `--split validation` renders the
5,000 held-out validation digits instead (also never trained on), so that a change can be judged
there first and the test renders scored once, after the decision. Each condition draws its own
digits, so that a handful of ambiguous test digits (a 5 written as a 3) cannot count once per
condition: the 8 x 1000 renders are 8000 different digits.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
from tqdm import tqdm

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import render  # noqa: E402
from model import BUNDLED_WEIGHTS, NoDigitError, Recognizer, load_network  # noqa: E402
from train import load_mnist, split_validation  # noqa: E402

CONDITIONS = {
    **{f"canvas: {name}": (lambda d, rng, s=name: render.canvas(d, rng, scheme=s)) for name in render.NAMED_SCHEMES},
    "canvas: random colours": render.canvas,
    "photo": render.photo,
    "photo: sheet on a desk": render.desk,
}


def read(recognizer: Recognizer, images: list) -> list[str]:
    """The top digit for each image; "-" where no digit was found, which counts as wrong."""
    try:
        return [max(p, key=p.get) for p in recognizer.classify_batch(images)]
    except NoDigitError:
        return [read(recognizer, [image])[0] if len(images) > 1 else "-" for image in images]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=1000, help="digits per condition: at most 1250 test, 625 validation (default: 1000)")
    parser.add_argument("--split", choices=("test", "validation"), default="test", help="which held-out digits to render (default: test)")
    parser.add_argument("--seed", type=int, default=0, help="picks the digits and the renders (default: 0)")
    parser.add_argument("--weights", default=str(BUNDLED_WEIGHTS), help="weights file (default: model_weights.pth)")
    parser.add_argument("--batch", type=int, default=100, help="images per classify_batch call (default: 100)")
    parser.add_argument("--only", default="", help="run only the conditions whose name contains this (default: all)")
    parser.add_argument("--save-misses", default="", help="folder to save misread renders in (default: none)")
    parser.add_argument("--tta", action="store_true", help="average over the test-time augmentation views (default: off)")
    args = parser.parse_args()

    recognizer = Recognizer(load_network(args.weights), tta=args.tta)
    mnist = load_mnist("data")
    images, labels = mnist["test"] if args.split == "test" else split_validation(*mnist["train"])[1]
    last = max((k for k, name in enumerate(CONDITIONS) if args.only in name), default=0)
    if args.n * (last + 1) > len(images):
        parser.error(f"--n at most {len(images) // (last + 1)} here: each condition takes its own {args.split} digits")
    order = np.random.default_rng(args.seed).permutation(len(images))
    totals = {"canvas": [0, 0, 0], "photo": [0, 0, 0]}
    print("| condition | digits | ours | naive resize | render+read ms/img |\n|---|---:|---:|---:|---:|")
    for k, (name, make) in enumerate(CONDITIONS.items()):
        if args.only and args.only not in name:
            continue
        rng = np.random.default_rng([args.seed, k])
        pick = order[k * args.n : (k + 1) * args.n]
        ours = naive = 0
        start = time.perf_counter()
        for lo in tqdm(range(0, args.n, args.batch), desc=name, leave=False):
            idx = pick[lo : lo + args.batch]
            renders = [make(images[i], rng) for i in idx]
            truth = labels[idx]
            got = read(recognizer, renders)
            ours += sum(g == str(t) for g, t in zip(got, truth))
            naive += int((recognizer.probabilities(np.stack([render.naive(r) for r in renders])).argmax(1) == truth).sum())
            if args.save_misses:
                for g, t, r, i in zip(got, truth, renders, idx):
                    if g != str(t):
                        r.save(Path(args.save_misses) / f"{name.replace(':', '').replace(' ', '_')}_{i}_true{t}_read{g}.png")
        ms = (time.perf_counter() - start) / args.n * 1000
        print(f"| {name} | {args.n} | {ours / args.n:.2%} | {naive / args.n:.2%} | {ms:.1f} |", flush=True)
        kind = name.split(":")[0]
        totals[kind][0] += args.n
        totals[kind][1] += ours
        totals[kind][2] += naive
    for kind, (n, ours, naive) in totals.items():
        if n:
            print(f"| **all {kind} renders** | {n} | **{ours / n:.2%}** | {naive / n:.2%} | |")


if __name__ == "__main__":
    main()
