"""Load test: many gradio_client users calling /predict at once for a while, against `python app.py`.

    python benchmarks/load.py                        # starts the app, 50 clients for 60 s
    python benchmarks/load.py --url http://127.0.0.1:7860/ --clients 80 --seconds 30

Every request ends one of three ways: answered (and checked against the digit's label), refused
with the queue's "full, try again" answer, or lost (any other error or no answer). A healthy app
loses none, and answers a request correctly after the load as it did before.
"""

from __future__ import annotations

import argparse
import itertools
import math
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from gradio_client import Client, handle_file  # noqa: E402
from gradio_client.exceptions import AppError  # noqa: E402
from gradio_client.utils import QueueError  # noqa: E402

ANSWER_TIMEOUT_S = 60  # a request unanswered this long is lost, not waited on forever
RETRY_PAUSE_S = 0.5  # a refused user waits this long before trying again, as told
RIGHT, WRONG, REFUSED = "answered right", "answered wrong", "refused: queue full"  # outcomes other than lost


def digit_files(folder: Path, count: int = 10) -> list[tuple[str, str]]:
    """`count` MNIST test digits from the test fixtures as 280 px black-on-white PNGs, with their labels."""
    data = np.load(ROOT / "tests" / "data" / "mnist_test_500.npz")
    files = []
    for k in range(count):
        path = folder / f"digit_{k}.png"
        Image.fromarray(255 - data["images"][k]).resize((280, 280), Image.Resampling.BICUBIC).save(path)
        files.append((str(path), str(data["labels"][k])))
    return files


def connect(url: str) -> Client:
    """A gradio_client user with a patient HTTP client: under load an upload can take longer than
    httpx's default 5 s, and that is slowness, not a lost request."""
    return Client(url, verbose=False, analytics_enabled=False, httpx_kwargs={"timeout": ANSWER_TIMEOUT_S})


def call(client: Client, path: str, label: str) -> str:
    """One /predict call, as one of the three ways a request can end: answered (right or wrong),
    refused because the queue is full, or lost."""
    try:
        got = client.submit(handle_file(path), api_name="/predict").result(timeout=ANSWER_TIMEOUT_S)["label"]
        return RIGHT if got == label else WRONG
    except QueueError:
        return REFUSED
    except TimeoutError:
        return f"lost: no answer in {ANSWER_TIMEOUT_S} s"
    except AppError as e:
        return f"lost: {e}"[:80]
    except Exception as e:  # noqa: BLE001 - a load test counts every other failure as lost
        return f"lost: {type(e).__name__}"


def run_clients(url: str, files: list[tuple[str, str]], clients: int, seconds: float = math.inf,
                requests: float = math.inf) -> tuple[Counter, np.ndarray, float]:
    """`clients` gradio_client users, each calling /predict again as soon as it is answered (or
    RETRY_PAUSE_S after a refusal), from when all have connected until `seconds` have passed or
    `requests` calls have been made in all: (outcome -> requests, ms per request, seconds taken)."""
    outcomes: Counter = Counter()
    latencies: list[float] = []
    lock = threading.Lock()
    made = itertools.count()
    started: list[float] = []
    ready = threading.Barrier(clients, action=lambda: started.append(time.monotonic()))

    def user() -> None:
        try:
            client = connect(url)
        except Exception as e:  # noqa: BLE001 - a user who cannot even connect is a lost request
            with lock:
                outcomes[f"lost: connecting, {type(e).__name__}"] += 1
            ready.wait()
            return
        ready.wait()
        while time.monotonic() < started[0] + seconds:
            with lock:
                k = next(made)
            if k >= requests:
                break
            path, label = files[k % len(files)]
            begin = time.monotonic()
            outcome = call(client, path, label)
            with lock:
                outcomes[outcome] += 1
                latencies.append((time.monotonic() - begin) * 1000)
            if outcome == REFUSED:
                time.sleep(RETRY_PAUSE_S)
        client.close()

    users = [threading.Thread(target=user) for _ in range(clients)]
    for t in users:
        t.start()
    for t in users:
        t.join()
    return outcomes, np.array(latencies), time.monotonic() - started[0]


def failures(outcomes: Counter) -> int:
    """Requests answered wrong or lost: neither answered right nor refused with the queue's answer."""
    return sum(n for o, n in outcomes.items() if o not in (RIGHT, REFUSED))


def healthy(url: str, path: str, label: str) -> bool:
    """Whether a fresh user gets this digit read right."""
    client = connect(url)
    try:
        return call(client, path, label) == RIGHT
    finally:
        client.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", default="", help="a running app; empty starts `python app.py` (default: empty)")
    parser.add_argument("--clients", type=int, default=50, help="concurrent users (default: 50)")
    parser.add_argument("--seconds", type=float, default=60, help="how long they keep calling (default: 60)")
    args = parser.parse_args()

    proc = None
    if not args.url:
        from conftest import start_app, stop_app

        proc, args.url = start_app()
    try:
        with tempfile.TemporaryDirectory() as tmp:
            files = digit_files(Path(tmp))
            healthy_before = healthy(args.url, *files[0])
            outcomes, ms, wall = run_clients(args.url, files, args.clients, seconds=args.seconds)
            healthy_after = healthy(args.url, *files[1])
    finally:
        if proc:
            stop_app(proc)
    total = sum(outcomes.values())
    print(f"{args.clients} clients for {args.seconds:.0f} s: {total} requests, {total / wall:.1f}/s")
    print("| outcome | requests |\n|---|---:|")
    for outcome, n in sorted(outcomes.items()):
        print(f"| {outcome} | {n} |")
    print(f"| latency p50 / p99 ms | {np.percentile(ms, 50):.0f} / {np.percentile(ms, 99):.0f} |")
    print(f"| healthy before / after | {healthy_before} / {healthy_after} |")
    sys.exit(0 if failures(outcomes) == 0 and healthy_after else 1)


if __name__ == "__main__":
    main()
