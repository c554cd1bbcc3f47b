"""train.py end to end on a few batches: it writes loadable weights and the metrics JSON."""

import json
import subprocess
import sys
from pathlib import Path

import torch

from model import CLASSES, load_network
from train import augment

ROOT = Path(__file__).resolve().parent.parent


def test_dry_run_writes_weights_and_metrics(tmp_path):
    run = subprocess.run([sys.executable, "train.py", "--dry-run", "--out", str(tmp_path), "--data", str(tmp_path / "data")],
                         cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-2000:]
    net = load_network(tmp_path / "model_weights.pth")
    assert net.temperature.item() > 0
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert set(metrics["test"]["per_class_accuracy"]) == set(CLASSES)
    assert 0 <= metrics["test"]["accuracy"] <= 1
    assert metrics["training_seconds"] >= 0
    assert metrics["torch_version"] and metrics["hardware"]["processor"]
    assert "epochs" in run.stderr  # the tqdm progress bar


def test_help_strings_give_defaults():
    run = subprocess.run([sys.executable, "train.py", "--help"], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0
    assert run.stdout.count("(default:") >= 8


def test_augmentation_eases_off_to_the_digits_as_framed(mnist):
    x = torch.from_numpy(mnist[0][:64] / 255.0).float().unsqueeze(1)
    g = torch.Generator().manual_seed(0)
    assert torch.allclose(augment(x, g, strength=0.0), x, atol=1e-5)
    assert (augment(x, g, strength=1.0) - x).abs().mean() > 0.02
