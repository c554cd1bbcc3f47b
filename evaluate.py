"""The evaluation report of a weights file on the MNIST test set: a metrics JSON and three plots.

    python evaluate.py                       # the bundled weights -> reports/
    python evaluate.py --weights runs/x/model_weights.pth --out runs/x/report

Writes evaluation.json (accuracy, per-class accuracy, confusion matrix, ECE before and after the
temperature, the most confused pairs), confusion_matrix.png, reliability.png (calibration before
and after the temperature) and most_confused.png (the test digits read wrong, most confident
first). The test digits are framed by preprocess.to_mnist, as every served image is.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

from model import BUNDLED_WEIGHTS, CLASSES, Net, load_network  # noqa: E402
from train import ECE_BINS, frame_all, load_mnist, logits_of, metrics_of  # noqa: E402

MOST_CONFUSED = 40  # misread digits shown, most confident first


def confusion_matrix(labels: np.ndarray, predicted: np.ndarray) -> np.ndarray:
    """counts[true, predicted]."""
    return np.bincount(labels * len(CLASSES) + predicted, minlength=len(CLASSES) ** 2).reshape(len(CLASSES), -1)


def plot_confusion(counts: np.ndarray, path: Path) -> None:
    fig, ax = plt.subplots(figsize=(6.4, 5.6))
    shown = np.where(np.eye(len(counts), dtype=bool), 0, counts)  # colour the errors, not the diagonal
    ax.imshow(shown, cmap="Reds")
    for (i, j), n in np.ndenumerate(counts):
        if n:
            ax.text(j, i, str(n), ha="center", va="center", fontsize=8, color="black" if i != j else "tab:blue")
    ax.set(xticks=range(len(CLASSES)), yticks=range(len(CLASSES)), xticklabels=CLASSES, yticklabels=CLASSES,
           xlabel="predicted", ylabel="true", title=f"MNIST test confusion matrix ({int(counts.trace())}/{counts.sum()} right)")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def reliability(probs: np.ndarray, labels: np.ndarray, bins: int = ECE_BINS) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(mean confidence, accuracy, count) per equal-width confidence bin."""
    conf, correct = probs.max(1), probs.argmax(1) == labels
    which = np.clip(np.ceil(conf * bins).astype(int) - 1, 0, bins - 1)
    count = np.bincount(which, minlength=bins)
    safe = np.maximum(count, 1)
    return np.bincount(which, conf, bins) / safe, np.bincount(which, correct, bins) / safe, count


def plot_reliability(curves: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray, float]], path: Path) -> None:
    fig, ax = plt.subplots(figsize=(5.6, 5.2))
    ax.plot([0, 1], [0, 1], "k:", label="perfect calibration")
    for name, (conf, acc, count, ece) in curves.items():
        ax.plot(conf[count > 0], acc[count > 0], "o-", label=f"{name} (ECE {ece:.2%})")
    ax.set(xlabel="confidence", ylabel="accuracy", xlim=(0, 1.01), ylim=(0, 1.01), title="Reliability on MNIST test")
    ax.legend(loc="upper left")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def plot_most_confused(images: np.ndarray, labels: np.ndarray, probs: np.ndarray, path: Path) -> list[int]:
    predicted = probs.argmax(1)
    wrong = np.flatnonzero(predicted != labels)
    wrong = wrong[np.argsort(-probs[wrong, predicted[wrong]])][:MOST_CONFUSED]
    cols = 10
    rows = max(1, -(-len(wrong) // cols))
    fig, axes = plt.subplots(rows, cols, figsize=(cols * 1.1, rows * 1.35), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for ax, i in zip(axes.flat, wrong):
        ax.imshow(images[i], cmap="gray", vmin=0, vmax=255)
        ax.set_title(f"{labels[i]}→{predicted[i]} {probs[i, predicted[i]]:.0%}", fontsize=8)
    fig.suptitle("MNIST test digits read wrong (true→read, confidence)", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return [int(i) for i in wrong]


def report(net: Net, images: np.ndarray, labels: np.ndarray, out: Path) -> dict:
    """Metrics and plots for framed uint8 (N, 28, 28) `images`, written into `out`."""
    out.mkdir(parents=True, exist_ok=True)
    logits = logits_of(net, images)
    metrics = metrics_of(logits, labels, net.temperature)
    raw = torch.softmax(logits, 1).numpy()
    calibrated = torch.softmax(logits / net.temperature, 1).numpy()
    counts = confusion_matrix(labels, calibrated.argmax(1))
    off = np.where(np.eye(len(counts), dtype=bool), 0, counts)
    pairs = sorted(((int(off[i, j]), CLASSES[i], CLASSES[j]) for i, j in zip(*np.nonzero(off))), reverse=True)
    metrics["confusion_matrix"] = counts.tolist()
    metrics["most_confused_pairs"] = [{"true": t, "read": p, "count": n} for n, t, p in pairs[:10]]
    plot_confusion(counts, out / "confusion_matrix.png")
    plot_reliability(
        {
            "before temperature": (*reliability(raw, labels), metrics["ece_uncalibrated"]),
            f"T = {net.temperature.item():.2f}": (*reliability(calibrated, labels), metrics["ece"]),
        },
        out / "reliability.png",
    )
    metrics["most_confused_test_indices"] = plot_most_confused(images, labels, calibrated, out / "most_confused.png")
    (out / "evaluation.json").write_text(json.dumps(metrics, indent=2) + "\n")
    return metrics


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--weights", default=str(BUNDLED_WEIGHTS), help="weights file (default: model_weights.pth)")
    parser.add_argument("--data", default="data", help="where torchvision keeps MNIST (default: data)")
    parser.add_argument("--out", default="reports", help="folder for the JSON and the plots (default: reports)")
    parser.add_argument("--n", type=int, default=10000, help="test digits to score (default: 10000)")
    args = parser.parse_args()
    images, labels = load_mnist(args.data)["test"]
    images, labels = frame_all(images[: args.n]), labels[: args.n]
    m = report(load_network(args.weights), images, labels, Path(args.out))
    print(f"MNIST test accuracy {m['accuracy']:.2%} ({m['errors']} errors), ECE {m['ece_uncalibrated']:.2%} -> {m['ece']:.2%}; wrote {args.out}/")


if __name__ == "__main__":
    main()
