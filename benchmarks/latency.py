"""In-process latency of Recognizer.classify (decode + preprocessing + network) on typical inputs,
and the throughput of classify_batch, which sends a whole batch through the network at once.

    python benchmarks/latency.py            # 50 runs per input, after 3 warm-ups

A drawing's cost depends on how it was drawn (a transparent layer, a bold pen that must be
thinned), so canvases are also timed over 100 renders each, in the robustness benchmark's colours,
sizes and pens, and like the app's sketchpad input (a transparent layer), three calls per render
whatever --runs says; the one black-on-white canvas that earlier figures used keeps its row.
"""

from __future__ import annotations

import argparse
import io
import itertools
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import render  # noqa: E402
from model import Recognizer  # noqa: E402
from train import load_mnist  # noqa: E402


CANVASES = 100  # renders per canvas row: one render's pen and size would decide the figure


def timings(fn, runs: int) -> np.ndarray:
    for _ in range(3):
        fn()
    out = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        out.append((time.perf_counter() - start) * 1000)
    return np.array(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=50, help="timed calls per single input; a set of renders gets 3 per render at least (default: 50)")
    args = parser.parse_args()

    recognizer = Recognizer.load()
    test_digits = load_mnist("data")["test"][0]
    digit = test_digits[0]
    rng = np.random.default_rng(0)
    tmp = Path(tempfile.mkdtemp())
    big = render.photo(digit, rng, side=6000).convert("RGB").resize((6000, 6000))
    big.save(tmp / "photo_6000.jpg", quality=90)
    canvas = render.canvas(digit, rng, scheme="black on white", side=800)
    buf = io.BytesIO()
    canvas.save(buf, "PNG")
    (tmp / "canvas_800.png").write_bytes(buf.getvalue())
    photo = render.photo(digit, rng, side=1024)
    photo.convert("RGB").save(tmp / "photo_1024.jpg", quality=90)
    digits = test_digits[1 : 1 + CANVASES]
    renders = np.random.default_rng(1)  # their own generator: the inputs drawn from rng stay those of earlier runs
    cases = {
        "MNIST digit, 28x28 array": [digit],
        "canvas 800x800, black on white, PIL RGB (one render)": [canvas.convert("RGB")],
        f"canvas 800x800, PIL ({CANVASES} renders: random colours, transparent too, sizes, pens)": [render.canvas(d, renders, side=800) for d in digits],
        f"like the app's sketchpad: 400x400, a transparent layer, PIL RGBA ({CANVASES} renders)":
            [render.canvas(d, renders, scheme="blue on transparent", side=400) for d in digits],
        "canvas 800x800, PNG file": [tmp / "canvas_800.png"],
        "phone photo 1024 px, JPEG file": [tmp / "photo_1024.jpg"],
        "photo 6000x6000, JPEG file": [tmp / "photo_6000.jpg"],
    }
    print(f"torch threads: {torch.get_num_threads()}\n")
    print("| input | calls | p50 ms | p99 ms |\n|---|---:|---:|---:|")
    for name, images in cases.items():
        runs = max(args.runs, 3 * len(images)) if len(images) > 1 else args.runs
        turn = itertools.cycle(images)
        t = timings(lambda: recognizer.classify(next(turn)), runs)
        print(f"| {name} | {runs} | {np.percentile(t, 50):.1f} | {np.percentile(t, 99):.1f} |")
    canvases = [render.canvas(digit, rng, scheme="black on white", side=800).convert("RGB") for _ in range(64)]
    network_only = np.stack([digit.astype(np.float32) / 255] * 64)
    print("\n| classify_batch of 800x800 canvases | images/s | network alone, images/s |\n|---:|---:|---:|")
    for size in (1, 16, 64):
        t = timings(lambda: recognizer.classify_batch(canvases[:size]), max(3, args.runs // size))
        net = timings(lambda: recognizer.probabilities(network_only[:size]), max(3, args.runs // size))
        print(f"| {size} | {size / np.percentile(t, 50) * 1000:.0f} | {size / np.percentile(net, 50) * 1000:.0f} |")


if __name__ == "__main__":
    main()
