"""Seconds from `python app.py` to its first /predict answer: with the bundled weights, and with
MODEL_REPO set while the Hub hangs (a local stand-in that never answers in time).

    python benchmarks/cold_start.py
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from gradio_client import Client, handle_file  # noqa: E402

from conftest import start_app, stop_app  # noqa: E402
from hub_standin import HubStandIn  # noqa: E402


def first_answer(env: dict[str, str]) -> tuple[float, str]:
    start = time.monotonic()
    proc, url = start_app(env)
    try:
        label = Client(url, verbose=False).predict(handle_file(str(ROOT / "examples" / "mnist_7.png")), api_name="/predict")["label"]
        return time.monotonic() - start, label
    finally:
        stop_app(proc)


def main() -> None:
    print("| start | first answer s | answer |\n|---|---:|---:|")
    seconds, label = first_answer({})
    print(f"| bundled weights | {seconds:.1f} | {label} |")
    with HubStandIn({"acme/digits/main/model_weights.pth": b"never sent"}, delay_s=120) as hub, tempfile.TemporaryDirectory() as cache:
        seconds, label = first_answer({"MODEL_REPO": "acme/digits", "HF_ENDPOINT": hub.url, "HF_HUB_CACHE": cache})
    print(f"| MODEL_REPO set, Hub hangs | {seconds:.1f} | {label} |")


if __name__ == "__main__":
    main()
