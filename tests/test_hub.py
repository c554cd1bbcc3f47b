"""Weights from the Hub, through huggingface_hub's real client against a local stand-in (HF_ENDPOINT).

huggingface_hub reads HF_ENDPOINT when it is imported, so each case loads in a fresh interpreter.
"""

import io
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from hub_standin import HubStandIn
from model import Net

ROOT = Path(__file__).resolve().parent.parent
LOAD = """
import json, sys, numpy as np
from model import Recognizer
r = Recognizer.load(**json.loads(sys.argv[1]))
images = np.load("tests/data/mnist_test_500.npz")["images"]
probs = r.classify(images[0])
print(json.dumps({"source": r.source, "top": max(probs, key=probs.get)}))
"""


def always(digit: str) -> bytes:
    """Weights of a network that answers `digit` whatever it is shown."""
    net = Net()
    net.classifier.weight.data.zero_()
    net.classifier.bias.data.fill_(-10).index_fill_(0, torch.tensor([int(digit)]), 10)
    buf = io.BytesIO()
    torch.save(net.state_dict(), buf)
    return buf.getvalue()


def load_in_subprocess(endpoint: str, cache: Path, kwargs: dict | None = None, env: dict | None = None) -> dict:
    inherited = {k: v for k, v in os.environ.items() if k not in ("MODEL_REPO", "MODEL_REVISION")}
    full_env = {**inherited, "HF_ENDPOINT": endpoint, "HF_HUB_CACHE": str(cache), "HF_HUB_DISABLE_TELEMETRY": "1", **(env or {})}
    run = subprocess.run([sys.executable, "-c", LOAD, json.dumps(kwargs or {})], cwd=ROOT, env=full_env,
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr[-2000:]
    return {**json.loads(run.stdout.strip().splitlines()[-1]), "log": run.stderr}


def test_weights_come_from_the_hub_repo_and_revision(tmp_path, mnist):
    assert mnist[1][0] != 3
    with HubStandIn({"acme/digits/v2/model_weights.pth": always("3")}) as hub:
        got = load_in_subprocess(hub.url, tmp_path, {"repo_id": "acme/digits", "revision": "v2"})
    assert got == {**got, "source": "hub:acme/digits@v2", "top": "3"}
    assert ("GET", "/acme/digits/resolve/v2/model_weights.pth") in hub.requests


def test_model_repo_and_revision_come_from_the_environment(tmp_path):
    with HubStandIn({"acme/digits/r1/model_weights.pth": always("5")}) as hub:
        got = load_in_subprocess(hub.url, tmp_path, env={"MODEL_REPO": "acme/digits", "MODEL_REVISION": "r1"})
    assert (got["source"], got["top"]) == ("hub:acme/digits@r1", "5")


def test_downloaded_weights_are_cached(tmp_path):
    with HubStandIn({"acme/digits/main/model_weights.pth": always("4")}) as hub:
        load_in_subprocess(hub.url, tmp_path, {"repo_id": "acme/digits"})
    got = load_in_subprocess("http://127.0.0.1:9", tmp_path, {"repo_id": "acme/digits"}, env={"HF_HUB_OFFLINE": "1"})
    assert (got["source"], got["top"]) == ("hub:acme/digits@main", "4")


def test_hub_down_falls_back_to_bundled_weights(tmp_path, mnist):
    got = load_in_subprocess("http://127.0.0.1:9", tmp_path, {"repo_id": "acme/digits"})
    assert got["source"] == "bundled"
    assert got["top"] == str(mnist[1][0])
    assert "using the bundled weights" in got["log"]


def test_missing_file_falls_back_to_bundled_weights(tmp_path):
    with HubStandIn({}) as hub:
        got = load_in_subprocess(hub.url, tmp_path, {"repo_id": "acme/digits"})
    assert got["source"] == "bundled"


@pytest.mark.parametrize("content", [b"not a checkpoint", b""], ids=["garbage", "empty"])
def test_incompatible_file_falls_back_to_bundled_weights(tmp_path, content):
    with HubStandIn({"acme/digits/main/model_weights.pth": content}) as hub:
        got = load_in_subprocess(hub.url, tmp_path, {"repo_id": "acme/digits"})
    assert got["source"] == "bundled"
    assert "not a loadable weights file" in got["log"]


def test_slow_hub_is_abandoned_after_the_timeout(tmp_path):
    with HubStandIn({"acme/digits/main/model_weights.pth": always("3")}, delay_s=30) as hub:
        start = time.monotonic()
        got = load_in_subprocess(hub.url, tmp_path, {"repo_id": "acme/digits", "timeout": 2})
        elapsed = time.monotonic() - start
    assert got["source"] == "bundled"
    assert "did not answer within 2 s" in got["log"]
    assert elapsed < 25, "loading waited for the slow Hub instead of giving up"


def test_app_with_a_hung_hub_serves_the_bundled_weights(tmp_path, digit_png):
    from gradio_client import Client, handle_file

    from conftest import start_app, stop_app

    path, label = digit_png(0)
    with HubStandIn({"acme/digits/main/model_weights.pth": always("3")}, delay_s=60) as hub:
        proc, url = start_app({"MODEL_REPO": "acme/digits", "HF_ENDPOINT": hub.url, "HF_HUB_CACHE": str(tmp_path)})
        try:
            result = Client(url, verbose=False).predict(handle_file(str(path)), api_name="/predict")
        finally:
            log = stop_app(proc)
    assert result["label"] == str(label)
    assert "did not answer within" in log and "using the bundled weights" in log
