"""How well the digit score tells digits from things that are not digits.

    apt-get install dataset-fashion-mnist        # Fashion-MNIST, from Debian
    python benchmarks/not_a_digit.py             # bundled weights

Digits: the 10,000 MNIST test digits. Not digits: Fashion-MNIST's 10,000 test images (clothing),
letters typed in the fonts this machine has (those that look like no digit: no l, I, O, o, S, s,
Z, z, g, q, b), and random scribbles. Every image goes through Recognizer.predict_batch, the app's
own path. AUROC is the chance that a digit scores above a non-digit; "flagged" is the share that
falls under the threshold stored with the weights (fitted so that train.DIGIT_REJECT_RATE, 0.5%, of
held-out digits do).
"""

from __future__ import annotations

import argparse
import gzip
import string
import sys
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont
from scipy.stats import mannwhitneyu
from tqdm import tqdm

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from model import BUNDLED_WEIGHTS, NoDigitError, Recognizer, load_network  # noqa: E402
from train import load_mnist  # noqa: E402

FASHION = Path("/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz")  # Debian's dataset-fashion-mnist
FONTS = sorted(Path("/usr/share/fonts").rglob("*.ttf"))
LETTERS = [c for c in string.ascii_letters if c not in "lIOoSsZzgqb"]  # those that could pass for a digit are left out
BATCH = 500  # images per predict_batch call


def fashion(n: int) -> np.ndarray:
    if not FASHION.exists():
        sys.exit(f"{FASHION} is missing: apt-get install dataset-fashion-mnist")
    with gzip.open(FASHION) as f:
        return np.frombuffer(f.read(), np.uint8, offset=16).reshape(-1, 28, 28)[:n]


def letters(n: int, rng: np.random.Generator) -> list[Image.Image]:
    out = []
    while len(out) < n:
        img = Image.new("L", (96, 96), 255)
        font = ImageFont.truetype(str(rng.choice(FONTS)), int(rng.integers(40, 70)))
        ImageDraw.Draw(img).text((48, 48), str(rng.choice(LETTERS)), fill=0, font=font, anchor="mm")
        if img.getextrema()[0] < 128:  # a font without Latin letters draws nothing
            out.append(img)
    return out


def scribbles(n: int, rng: np.random.Generator) -> list[Image.Image]:
    out = []
    for _ in range(n):
        img = Image.new("L", (200, 200), 255)
        points = [tuple(p) for p in rng.uniform(20, 180, size=(int(rng.integers(6, 14)), 2))]
        ImageDraw.Draw(img).line(points, fill=0, width=int(rng.integers(6, 16)), joint="curve")
        out.append(img)
    return out


def scores(recognizer: Recognizer, images, name: str) -> np.ndarray:
    """Each image's digit score; -inf for one with no ink at all, which the app refuses outright."""
    out = []
    for lo in tqdm(range(0, len(images), BATCH), desc=name, leave=False):
        batch = list(images[lo : lo + BATCH])
        try:
            out += [p.digit_score for p in recognizer.predict_batch(batch)]
        except NoDigitError:
            out += [float(scores(recognizer, [image], name)[0]) if len(batch) > 1 else -np.inf for image in batch]
    return np.array(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=10000, help="images per set, at most 10000 (default: 10000)")
    parser.add_argument("--seed", type=int, default=0, help="letters and scribbles (default: 0)")
    parser.add_argument("--weights", default=str(BUNDLED_WEIGHTS), help="weights file (default: model_weights.pth)")
    args = parser.parse_args()

    recognizer = Recognizer(load_network(args.weights))
    threshold = recognizer.net.digit_threshold.item()
    rng = np.random.default_rng(args.seed)
    digits = scores(recognizer, load_mnist("data")["test"][0][: args.n], "MNIST test")
    print(f"digit score threshold {threshold:.3f}: {(digits < threshold).mean():.2%} of {len(digits)} MNIST test digits flagged\n")
    print("| not digits | images | AUROC vs MNIST test | flagged as not a digit |\n|---|---:|---:|---:|")
    sets = {"Fashion-MNIST test (clothing)": fashion(args.n), "scribbles": scribbles(min(args.n, 2000), rng)}
    if FONTS:
        sets["typed letters"] = letters(min(args.n, 2000), rng)
    for name, images in sets.items():
        other = scores(recognizer, images, name)
        auroc = mannwhitneyu(digits, other).statistic / (len(digits) * len(other))
        print(f"| {name} | {len(other)} | {auroc:.4f} | {(other < threshold).mean():.2%} |", flush=True)


if __name__ == "__main__":
    main()
