"""Publish the weights to a Hugging Face Hub model repo, with a model card and the metrics.

    python publish.py owner/digits                      # needs HF_TOKEN (or `hf auth login`)
    python publish.py owner/digits --dry-run hub-out    # writes exactly what would be uploaded, sends nothing

The app then serves them with MODEL_REPO=owner/digits (and MODEL_REVISION=<commit> to pin them).
The folder holds model_weights.pth, metrics.json, README.md (the model card) and, when
`python evaluate.py` has written them, the evaluation plots and evaluation.json.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
from pathlib import Path

from huggingface_hub import HfApi, ModelCard, ModelCardData

from model import BUNDLED_WEIGHTS, WEIGHTS_FILENAME, Net, load_network
from preprocess import MNIST_BOX, MNIST_SIZE
from train import DIGIT_REJECT_RATE, ECE_BINS, VAL_SIZE

HERE = Path(__file__).resolve().parent
REPORT_FILES = ("evaluation.json", "confusion_matrix.png", "reliability.png", "most_confused.png")

CARD = """
# Handwritten digit recognizer (MNIST CNN)

A small convolutional network (0.33M parameters) that reads one handwritten digit from a {side}x{side}
MNIST-framed image. It serves the project's Gradio app: draw or upload a digit in any colours,
size and place; the app's preprocessing brings it to MNIST's framing before the network sees it.

## Results

| metric | value |
|---|---:|
| MNIST test accuracy | {accuracy:.2%} ({errors} errors of 10,000) |
| expected calibration error ({bins} bins), before -> after the temperature | {ece_raw:.2%} -> {ece:.2%} (T = {temperature:.3f}) |
| not-a-digit threshold on the digit score | {threshold:.3f} ({reject:.0%} of held-out digits fall under it) |
| training time | {minutes:.1f} min on {processor}, {threads} threads |

## Training

    {command}

MNIST's 60,000 training digits, the last {val_size:,} held out to fit the temperature and the not-a-digit
threshold; the 10,000 test digits are only scored. Each digit is reframed by the app's own
preprocessing, then augmented on whole batches: a crisp canvas pen of random width (loops closed as
a bold marker closes them), affine and elastic warps, easing off to none over the last epochs.

## Use

```python
from model import load_network          # model.py from the project
net = load_network("model_weights.pth")  # weights_only=True, strict keys
probs = torch.softmax(net(x) / net.temperature, dim=1)   # x: (N, 1, {side}, {side}), standardised
```

The state_dict carries `temperature` (calibration) and `digit_threshold`: inputs whose
`net.digit_score(logits)` falls under it are probably not digits.

## Intended use and limits

For reading single handwritten digits 0-9, drawn or photographed, after the app's preprocessing
(crop, scale the longer side to {box} px, centre by mass in {side}x{side}). It is not meant for printed text,
letters or whole numbers (the app splits numbers before it calls the network), and it was trained
on MNIST only, whose writers were American adults: unusual handwriting styles read less well.
The not-a-digit score catches most clothing, letters and scribbles but not all; ambiguous shapes
still get a confident guess.
"""


def model_card(metrics: dict, net: Net) -> ModelCard:
    """The card for `net`: its calibration and threshold are read from the weights themselves,
    the scores and the training run from train.py's metrics."""
    data = ModelCardData(
        license="mit", library_name="pytorch", datasets=["mnist"], pipeline_tag="image-classification",
        tags=["mnist", "handwritten-digits", "gradio"],
    )
    test = metrics["test"]
    body = CARD.format(
        side=MNIST_SIZE, box=MNIST_BOX, bins=ECE_BINS, accuracy=test["accuracy"], errors=test["errors"],
        ece_raw=test["ece_uncalibrated"], ece=test["ece"], temperature=net.temperature.item(),
        threshold=net.digit_threshold.item(), reject=DIGIT_REJECT_RATE, val_size=VAL_SIZE, minutes=metrics["training_seconds"] / 60,
        processor=metrics["hardware"]["processor"], threads=metrics["hardware"]["torch_threads"], command=metrics["command"],
    )
    return ModelCard(f"---\n{data.to_yaml()}\n---\n{body}")


def build_folder(weights: Path, metrics_path: Path, report: Path, out: Path) -> Path:
    """The exact folder that is uploaded: weights, metrics, model card, and the report if present."""
    net = load_network(weights)  # refuse to publish weights that the app would refuse to load
    metrics = json.loads(metrics_path.read_text())
    if abs(metrics.get("temperature", float("nan")) - net.temperature.item()) > 1e-6:
        sys.exit(f"{metrics_path} does not describe {weights}: its temperature differs. Publish the metrics of the same training run.")
    if out.exists() and any(out.iterdir()):
        sys.exit(f"{out} is not empty: give a new folder, so that only what would be uploaded is in it.")
    out.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(weights, out / WEIGHTS_FILENAME)
    shutil.copyfile(metrics_path, out / "metrics.json")
    for name in REPORT_FILES:
        if (report / name).exists():
            shutil.copyfile(report / name, out / name)
    model_card(metrics, net).save(out / "README.md")
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("repo_id", help="the Hub model repo, owner/name (default: none, required)")
    parser.add_argument("--weights", default=str(BUNDLED_WEIGHTS), help="weights file (default: model_weights.pth)")
    parser.add_argument("--metrics", default=str(HERE / "metrics.json"), help="train.py's metrics (default: metrics.json)")
    parser.add_argument("--report", default=str(HERE / "reports"), help="evaluate.py's folder (default: reports)")
    parser.add_argument("--private", action="store_true", help="create the repo private (default: public)")
    parser.add_argument("--dry-run", metavar="DIR", default="", help="write the folder to DIR and upload nothing (default: off)")
    args = parser.parse_args()

    if args.dry_run:
        out = build_folder(Path(args.weights), Path(args.metrics), Path(args.report), Path(args.dry_run))
        print(f"dry run: would upload {sorted(p.name for p in out.iterdir())} to {args.repo_id}; wrote {out}/")
        return
    with tempfile.TemporaryDirectory() as tmp:
        folder = build_folder(Path(args.weights), Path(args.metrics), Path(args.report), Path(tmp))
        api = HfApi()
        try:
            api.create_repo(args.repo_id, private=args.private, exist_ok=True)
            commit = api.upload_folder(repo_id=args.repo_id, folder_path=folder, commit_message="Publish digit recognizer weights")
        except Exception as e:  # no network, no token, no rights: all end here with the reason
            sys.exit(f"Could not publish to the Hugging Face Hub ({type(e).__name__}: {e}).\n"
                     "Check the network and your token (HF_TOKEN or `hf auth login`), or use --dry-run DIR.")
    print(f"published {args.repo_id} at {commit.oid}: serve it with MODEL_REPO={args.repo_id} MODEL_REVISION={commit.oid}")


if __name__ == "__main__":
    main()
