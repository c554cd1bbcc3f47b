"""Accuracy of the public API on the whole MNIST test set: every digit goes through
Recognizer.classify_batch, so through the same decode -> ink -> framing path as the app.

    python benchmarks/mnist_test.py            # bundled weights (or $MODEL_REPO)
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np
from tqdm import tqdm

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from model import Recognizer  # noqa: E402
from train import load_mnist  # noqa: E402

BATCH = 500  # images per classify_batch call


def main() -> None:
    recognizer = Recognizer.load()
    images, labels = load_mnist("data")["test"]
    start = time.perf_counter()
    predicted = []
    for lo in tqdm(range(0, len(images), BATCH), desc="MNIST test", unit="batch"):
        for probs in recognizer.classify_batch(list(images[lo : lo + BATCH])):
            predicted.append(int(max(probs, key=probs.get)))
    seconds = time.perf_counter() - start
    correct = np.array(predicted) == labels
    print("\n| weights | MNIST test accuracy | errors | ms/digit |\n|---|---:|---:|---:|")
    print(f"| {recognizer.source} | {correct.mean():.2%} | {(~correct).sum()} | {seconds / len(images) * 1000:.2f} |")


if __name__ == "__main__":
    main()
