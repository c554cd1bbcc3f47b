"""The evaluation report (evaluate.py) and the Hub publishing folder (publish.py --dry-run)."""

import json
import os
import subprocess
import sys

import numpy as np
from PIL import Image

import evaluate
from conftest import ROOT
from model import BUNDLED_WEIGHTS, WEIGHTS_FILENAME, load_network
from train import frame_all


def test_report_writes_metrics_and_plots(tmp_path, mnist):
    images, labels = mnist
    metrics = evaluate.report(load_network(BUNDLED_WEIGHTS), frame_all(images), labels, tmp_path)
    saved = json.loads((tmp_path / "evaluation.json").read_text())
    assert saved["accuracy"] == metrics["accuracy"] >= 0.99
    counts = np.array(saved["confusion_matrix"])
    assert counts.shape == (10, 10) and counts.sum() == len(labels) and counts.trace() == len(labels) - saved["errors"]
    for name in ("confusion_matrix.png", "reliability.png", "most_confused.png"):
        with Image.open(tmp_path / name) as plot:
            assert plot.width > 300 and plot.height > 100
            assert np.asarray(plot.convert("L")).std() > 10  # something was drawn


def test_confusion_matrix_counts_true_by_predicted():
    counts = evaluate.confusion_matrix(np.array([3, 3, 5]), np.array([3, 5, 5]))
    assert counts[3, 3] == 1 and counts[3, 5] == 1 and counts[5, 5] == 1 and counts.sum() == 3


def test_publish_dry_run_writes_the_exact_upload_folder(tmp_path):
    out = tmp_path / "hub"
    run = subprocess.run([sys.executable, "publish.py", "someone/digits", "--dry-run", str(out), "--report", str(tmp_path / "none")],
                         cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr[-2000:]
    assert sorted(p.name for p in out.iterdir()) == ["README.md", "metrics.json", WEIGHTS_FILENAME]
    assert (out / WEIGHTS_FILENAME).read_bytes() == BUNDLED_WEIGHTS.read_bytes()
    card = (out / "README.md").read_text()
    metrics = json.loads((ROOT / "metrics.json").read_text())
    assert card.startswith("---\n") and "library_name: pytorch" in card
    assert f"{metrics['test']['accuracy']:.2%}" in card and metrics["command"] in card
    assert "Intended use and limits" in card


def test_publish_without_a_network_fails_clearly(tmp_path):
    env = {**os.environ, "HF_HOME": str(tmp_path), "HF_ENDPOINT": "http://127.0.0.1:9", "HF_TOKEN": "hf_test"}  # port 9: nothing listens
    run = subprocess.run([sys.executable, "publish.py", "someone/digits"], cwd=ROOT, capture_output=True, text=True, timeout=120, env=env)
    assert run.returncode != 0
    assert "Could not publish to the Hugging Face Hub" in run.stderr
    assert "Traceback" not in run.stderr


def test_publish_dry_run_refuses_a_folder_with_other_files(tmp_path):
    (tmp_path / "stale.txt").write_text("left over")
    run = subprocess.run([sys.executable, "publish.py", "someone/digits", "--dry-run", str(tmp_path)],
                         cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert run.returncode != 0 and "not empty" in run.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["stale.txt"]
