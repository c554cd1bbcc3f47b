"""The app under real use, over Gradio's HTTP API with gradio_client (upload + call + result):

1. /predict latency, p50 and p99, for 800x800 canvases and for phone photos, beside a trivial
   Gradio app (benchmarks/trivial_app.py: the same endpoint shape and queue, no work) timed in
   the same run, calls alternating between the two so that both see the same machine;
2. throughput with 1, 8 and 32 concurrent clients;
3. the app's resident memory (RSS): started, idle once warm, and after 1000 more requests.

    python benchmarks/serving.py                 # about 5 minutes on 2 cores
    python benchmarks/serving.py --calls 50 --requests 300
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests"), str(ROOT / "benchmarks")]

from gradio_client import Client, handle_file  # noqa: E402

import render  # noqa: E402
from conftest import start_app, stop_app  # noqa: E402
from load import RIGHT, run_clients  # noqa: E402

DIGITS = 10  # different test digits cycled through, so no answer can be a cached one


def inputs(folder: Path) -> dict[str, list[tuple[str, str]]]:
    """(path, label) pairs: 800x800 canvas PNGs and 1024 px phone-photo JPEGs of MNIST test digits."""
    data = np.load(ROOT / "tests" / "data" / "mnist_test_500.npz")
    rng = np.random.default_rng(0)
    out: dict[str, list[tuple[str, str]]] = {"canvas 800x800 PNG": [], "photo 1024 px JPEG": []}
    for k in range(DIGITS):
        digit, label = data["images"][k], str(data["labels"][k])
        canvas = folder / f"canvas_{k}.png"
        render.canvas(digit, rng, side=800).save(canvas)
        photo = folder / f"photo_{k}.jpg"
        render.photo(digit, rng, side=1024).convert("RGB").save(photo, quality=85)
        out["canvas 800x800 PNG"].append((str(canvas), label))
        out["photo 1024 px JPEG"].append((str(photo), label))
    return out


def call(client: Client, path: str) -> tuple[float, str]:
    start = time.perf_counter()
    label = client.predict(handle_file(path), api_name="/predict")["label"]
    return (time.perf_counter() - start) * 1000, label


def latency(ours: Client, trivial: Client, files: list[tuple[str, str]], calls: int) -> tuple[np.ndarray, np.ndarray, int]:
    """Alternating calls to both apps: (our ms, trivial ms, our right answers)."""
    ours_ms, trivial_ms, right = [], [], 0
    for k in range(calls + 3):
        path, label = files[k % len(files)]
        ms, got = call(ours, path)
        ms_trivial, _ = call(trivial, path)
        if k >= 3:  # the first calls warm up connections and caches
            ours_ms.append(ms)
            trivial_ms.append(ms_trivial)
            right += got == label
    return np.array(ours_ms), np.array(trivial_ms), right


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", type=int, default=100, help="timed calls per input and app (default: 100)")
    parser.add_argument("--per-client", type=int, default=15, help="calls per client in the throughput runs (default: 15)")
    parser.add_argument("--requests", type=int, default=1000, help="requests between the two RSS readings (default: 1000)")
    args = parser.parse_args()

    app, url = start_app()
    base = None
    try:
        time.sleep(2)
        at_start = rss_mb(app.pid)
        base, base_url = start_app(script="benchmarks/trivial_app.py")
        with tempfile.TemporaryDirectory() as tmp:
            files = inputs(Path(tmp))
            ours, trivial = Client(url, verbose=False), Client(base_url, verbose=False)
            print("/predict end to end (gradio_client: upload + call + result), calls alternating between the apps\n")
            print("| input | calls | ours p50 ms | ours p99 ms | trivial app p50 ms | trivial app p99 ms | p50 ratio | read right |")
            print("|---|---:|---:|---:|---:|---:|---:|---:|")
            for name, group in files.items():
                mine, theirs, right = latency(ours, trivial, group, args.calls)
                p = lambda a, q: np.percentile(a, q)  # noqa: E731
                print(f"| {name} | {args.calls} | {p(mine, 50):.1f} | {p(mine, 99):.1f} | {p(theirs, 50):.1f} | "
                      f"{p(theirs, 99):.1f} | {p(mine, 50) / p(theirs, 50):.2f} | {right}/{args.calls} |", flush=True)
            stop_app(base)
            base = None

            canvases = files["canvas 800x800 PNG"]
            print("\nThroughput, 800x800 canvases, each client calling again as soon as it is answered\n")
            print("| clients | requests | requests/s | p50 ms | p99 ms | wrong or failed |\n|---:|---:|---:|---:|---:|---:|")
            for clients in (1, 8, 32):
                n = clients * args.per_client
                outcomes, ms, wall = run_clients(url, canvases, clients, requests=n)
                bad = sum(outcomes.values()) - outcomes[RIGHT]
                print(f"| {clients} | {n} | {n / wall:.1f} | {np.percentile(ms, 50):.0f} | {np.percentile(ms, 99):.0f} | {bad} |", flush=True)

            time.sleep(2)
            idle = rss_mb(app.pid)
            outcomes, _, _ = run_clients(url, canvases, 8, requests=args.requests)
            bad = sum(outcomes.values()) - outcomes[RIGHT]
            time.sleep(2)
            after = rss_mb(app.pid)
            print(f"\n| app RSS | MB |\n|---|---:|\n| started, no request yet | {at_start:.0f} |\n| idle after the runs above | {idle:.0f} |\n"
                  f"| after {args.requests} more requests ({bad} wrong or failed) | {after:.0f} |\n"
                  f"| growth over those {args.requests} requests | {after - idle:+.1f} |")
    finally:
        stop_app(app)
        if base:
            stop_app(base)


if __name__ == "__main__":
    main()
