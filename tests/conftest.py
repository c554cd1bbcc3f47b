"""Shared fixtures: 500 real MNIST test digits, the bundled recognizer, and a running app.

tests/data/mnist_test_500.npz holds 500 digits drawn at random (seed 0) from MNIST's 10k test set,
uint8 white-on-black as published, with their labels and their indices in the test set.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest

from model import BUNDLED_WEIGHTS, Recognizer, load_network

ROOT = Path(__file__).resolve().parent.parent
APP_START_TIMEOUT_S = 120  # generous: CI machines import torch and gradio slowly


@pytest.fixture(scope="session")
def mnist() -> tuple[np.ndarray, np.ndarray]:
    data = np.load(ROOT / "tests" / "data" / "mnist_test_500.npz")
    return data["images"], data["labels"]


@pytest.fixture(scope="session")
def recognizer() -> Recognizer:
    return Recognizer(load_network(BUNDLED_WEIGHTS))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_app(env: dict[str, str] | None = None, script: str = "app.py") -> tuple[subprocess.Popen, str]:
    """`python app.py` (or another Gradio script) on a free port; returns the process and its URL once it answers."""
    port = free_port()
    full_env = {**os.environ, "GRADIO_SERVER_PORT": str(port), "GRADIO_SERVER_NAME": "127.0.0.1",
                "GRADIO_ANALYTICS_ENABLED": "False", "PYTHONUNBUFFERED": "1", **(env or {})}
    proc = subprocess.Popen([sys.executable, script], cwd=ROOT, env=full_env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    url = f"http://127.0.0.1:{port}/"
    deadline = time.monotonic() + APP_START_TIMEOUT_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{script} exited early:\n{proc.stdout.read()}")
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                if r.status == 200:
                    return proc, url
        except OSError:
            time.sleep(0.5)
    proc.kill()
    raise RuntimeError(f"{script} did not answer within {APP_START_TIMEOUT_S} s:\n{proc.stdout.read()}")


def stop_app(proc: subprocess.Popen) -> str:
    proc.terminate()
    try:
        out, _ = proc.communicate(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, _ = proc.communicate()
    return out


@pytest.fixture(scope="session")
def app_url():
    proc, url = start_app()
    yield url
    stop_app(proc)


@pytest.fixture
def digit_png(tmp_path, mnist):
    """Writes MNIST test digit `index` as a 4x enlarged black-on-white PNG; returns (path, label)."""

    def write(index: int) -> tuple[Path, int]:
        from PIL import Image

        images, labels = mnist
        path = tmp_path / f"digit_{index}.png"
        Image.fromarray(255 - images[index]).resize((112, 112), Image.Resampling.BICUBIC).save(path)
        return path, int(labels[index])

    return write
