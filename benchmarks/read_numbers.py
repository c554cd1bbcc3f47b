"""How well `Recognizer.read` reads whole numbers: strings of 2-6 MNIST test digits written side
by side on a wide canvas, each digit its own size, with gaps of varying width, a drifting and
jittering baseline, and the robustness benchmark's colour schemes (see render.number).

    python benchmarks/read_numbers.py                 # 1000 numbers, bundled weights
    python benchmarks/read_numbers.py --n 200 --weights runs/x/model_weights.pth

A number counts as read when the whole string is exact. Digit accuracy is 1 - (edit distance /
digits), summed over all numbers, so a dropped or doubled digit costs one digit, not the rest of
the string. Only MNIST's test digits are rendered; training never sees them.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import defaultdict
from pathlib import Path

import numpy as np
from tqdm import tqdm

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import render  # noqa: E402
from model import BUNDLED_WEIGHTS, NoDigitError, Recognizer, load_network  # noqa: E402
from train import load_mnist  # noqa: E402

LENGTHS = range(2, 7)  # digits per number


def edit_distance(a: str, b: str) -> int:
    """Levenshtein distance: insertions, deletions and substitutions."""
    row = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        prev, row[0] = row[0], i
        for j, cb in enumerate(b, 1):
            prev, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, prev + (ca != cb))
    return row[-1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=1000, help="numbers to write and read (default: 1000)")
    parser.add_argument("--seed", type=int, default=0, help="picks the digits and the renders (default: 0)")
    parser.add_argument("--weights", default=str(BUNDLED_WEIGHTS), help="weights file (default: model_weights.pth)")
    parser.add_argument("--data", default="data", help="where torchvision keeps MNIST (default: data)")
    parser.add_argument("--tta", action="store_true", help="average over the test-time augmentation views (default: off)")
    args = parser.parse_args()

    recognizer = Recognizer(load_network(args.weights), tta=args.tta)
    images, labels = load_mnist(args.data)["test"]
    rng = np.random.default_rng(args.seed)
    stats = defaultdict(lambda: np.zeros(5))  # numbers, exact, digits, edits, wrong digit count
    seconds = []
    for _ in tqdm(range(args.n), desc="numbers"):
        pick = rng.choice(len(images), int(rng.choice(LENGTHS)), replace=False)
        truth = "".join(str(v) for v in labels[pick])
        image = render.number(list(images[pick]), rng)
        start = time.perf_counter()
        try:
            text = recognizer.read(image).text
        except NoDigitError:
            text = ""
        seconds.append(time.perf_counter() - start)
        for key in (len(truth), "all"):
            stats[key] += [1, text == truth, len(truth), edit_distance(text, truth), len(text) != len(truth)]

    print(f"| digits | numbers | read exactly | digit accuracy | wrong number of digits |\n|---|---:|---:|---:|---:|")
    for key in [*LENGTHS, "all"]:
        n, exact, digits, edits, miscounted = stats[key]
        name = f"**{key}**" if key == "all" else key
        print(f"| {name} | {n:.0f} | {exact / n:.2%} | {1 - edits / digits:.2%} | {miscounted / n:.2%} |")
    print(f"\n`read` p50 {np.median(seconds) * 1000:.0f} ms per number (render excluded)")


if __name__ == "__main__":
    main()
