"""Does test-time augmentation pay? Accuracy and latency of Recognizer with and without it.

    python benchmarks/tta.py            # bundled weights

Accuracy on the 10,000 MNIST test digits and on 2,000 canvas renders of them (benchmarks/render.py),
each framed once by preprocess.to_mnist, the function classify uses; latency of classify on an
800x800 canvas, decode and preprocessing included.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np
from tqdm import tqdm

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import preprocess  # noqa: E402
import render  # noqa: E402
from model import BUNDLED_WEIGHTS, TTA_VIEWS, Recognizer, load_network  # noqa: E402
from train import load_mnist  # noqa: E402

CANVASES = 2000  # canvas renders scored
RUNS = 100  # timed classify calls per setting


def main() -> None:
    images, labels = load_mnist("data")["test"]
    rng = np.random.default_rng(0)
    pick = rng.choice(len(images), CANVASES, replace=False)
    sets = {
        "MNIST test": (np.stack([preprocess.to_mnist(x) for x in tqdm(images, desc="framing", leave=False)]), labels),
        "canvas renders": (np.stack([preprocess.to_mnist(render.canvas(images[i], rng)) for i in tqdm(pick, desc="canvas", leave=False)]), labels[pick]),
    }
    canvas = render.canvas(images[0], rng, side=800)
    net = load_network(BUNDLED_WEIGHTS)
    print("| TTA | views | MNIST test | canvas renders | classify p50 ms (800x800 canvas) |\n|---|---:|---:|---:|---:|")
    for tta in (False, True):
        recognizer = Recognizer(net, tta=tta)
        accuracy = {name: (np.concatenate([recognizer.probabilities(f[i : i + 500]) for i in range(0, len(f), 500)]).argmax(1) == y).mean()
                    for name, (f, y) in sets.items()}
        for _ in range(5):
            recognizer.classify(canvas)
        ms = []
        for _ in range(RUNS):
            start = time.perf_counter()
            recognizer.classify(canvas)
            ms.append((time.perf_counter() - start) * 1000)
        views = len(TTA_VIEWS) if tta else 1
        print(f"| {'on' if tta else 'off'} | {views} | {accuracy['MNIST test']:.2%} | {accuracy['canvas renders']:.2%} | {np.median(ms):.1f} |", flush=True)


if __name__ == "__main__":
    main()
