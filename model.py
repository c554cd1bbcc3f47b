"""The digit network, how its weights are loaded, and `Recognizer`, the public Python API.

    from model import Recognizer
    r = Recognizer.load()              # Hub if MODEL_REPO is set, else the bundled weights
    r.classify("seven.png")            # {"0": 0.0001, ..., "7": 0.998, ...}
    r.read("zip_code.png").text        # "90210": a number, digit by digit

Every caller (the app, the API, the benchmarks, the tests) goes through `Recognizer`, so an
image always takes the same path: bounded decode -> ink -> MNIST framing (preprocess.py) ->
tensor -> network -> temperature -> probabilities.
"""

from __future__ import annotations

import copy
import logging
import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
import torch.nn as nn
from torch.nn.utils.fusion import fuse_conv_bn_eval

import preprocess
from preprocess import ImageError

log = logging.getLogger(__name__)

CLASSES = tuple(str(d) for d in range(10))
WEIGHTS_FILENAME = "model_weights.pth"
BUNDLED_WEIGHTS = Path(__file__).resolve().with_name(WEIGHTS_FILENAME)
DIGIT_COST = 0.2  # nats each digit of a number costs, so that a 0 with a break reads as one 0, not two 1s
NOT_DIGIT_COST = 1.0  # nats added when a piece of a number does not look like a digit at all
HUB_TIMEOUT_S = 5.0  # a hung Hub costs at most this; with ~7 s of imports the app still answers within 15 s


def _conv(c_in: int, c_out: int, kernel: int = 3, stride: int = 1, padding: int = 0) -> list[nn.Module]:
    return [nn.Conv2d(c_in, c_out, kernel, stride, padding, bias=False), nn.BatchNorm2d(c_out), nn.ReLU(inplace=True)]


class Net(nn.Module):
    """A small all-convolutional CNN: two 28->12->4 stages of 3x3 convs with a strided 5x5
    "learned pooling", then a 4x4 conv to one 128-vector. About 0.33M parameters; one forward
    pass of a 28x28 digit costs ~15M multiply-adds, so a 2-core CPU trains it in minutes.

    `temperature` and `digit_threshold` are buffers so that the calibration and the not-a-digit
    threshold fitted by train.py travel inside the state_dict and are checked by strict loading
    like every other weight.
    """

    def __init__(self, dropout: float = 0.25):
        super().__init__()
        self.features = nn.Sequential(
            *_conv(1, 32), *_conv(32, 32), *_conv(32, 32, 5, 2, 2), nn.Dropout(dropout),
            *_conv(32, 64), *_conv(64, 64), *_conv(64, 64, 5, 2, 2), nn.Dropout(dropout),
            *_conv(64, 128, 4), nn.Flatten(), nn.Dropout(dropout),
        )
        self.classifier = nn.Linear(128, len(CLASSES))
        self.register_buffer("temperature", torch.ones(()))
        self.register_buffer("digit_threshold", torch.tensor(float("-inf")))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Raw logits; divide by `temperature` before the softmax for calibrated probabilities."""
        return self.classifier(self.features(x))

    def digit_score(self, logits: torch.Tensor) -> torch.Tensor:
        """How much an input looks like any digit at all: the negative free energy,
        logsumexp(logits / T) (Liu et al. 2020). Below `digit_threshold` it is probably not a digit."""
        return torch.logsumexp(logits / self.temperature, dim=1)


def normalize(ink: torch.Tensor) -> torch.Tensor:
    """(N, 1, 28, 28) ink in [0, 1] -> the standardised, channels_last batch the network expects."""
    return ((ink - preprocess.MNIST_MEAN) / preprocess.MNIST_STD).contiguous(memory_format=torch.channels_last)


TTA_VIEWS = ((0, 0, 0), (1, 0, 0), (-1, 0, 0), (0, 1, 0), (0, -1, 0), (0, 0, 6), (0, 0, -6))  # (dx px, dy px, degrees)


def tta_views(ink: torch.Tensor) -> torch.Tensor:
    """(N, 1, 28, 28) ink -> (V*N, 1, 28, 28): each digit as drawn, shifted a pixel each way and
    tilted 6 degrees each way, for test-time augmentation."""
    views = []
    for dx, dy, degrees in TTA_VIEWS:
        a = torch.deg2rad(torch.tensor(float(degrees)))
        half = preprocess.MNIST_SIZE / 2
        theta = torch.tensor([[a.cos(), -a.sin(), -dx / half], [a.sin(), a.cos(), -dy / half]]).expand(len(ink), 2, 3)
        grid = torch.nn.functional.affine_grid(theta, list(ink.shape), align_corners=False)
        views.append(torch.nn.functional.grid_sample(ink, grid, align_corners=False))
    return torch.cat(views)


def to_tensor(frames: np.ndarray) -> torch.Tensor:
    """(N, 28, 28) ink frames in [0, 1] -> network input."""
    return normalize(torch.as_tensor(np.asarray(frames, dtype=np.float32)).unsqueeze(1))


def inference_network(net: Net) -> nn.Sequential:
    """A copy of `net` for inference only, with the same logits, as one nn.Sequential: each
    BatchNorm folded into the conv before it and the dropouts gone, which halves the ops a call
    runs through. The last conv, whose 4x4 kernel covers its whole 4x4 input, runs as the matrix
    product it is (nn.Linear): for one digit that step took 0.19 ms as a conv, 0.03 ms as a
    product, of a forward pass of about 1 ms."""
    modules = list(net.eval().features)
    layers = [fuse_conv_bn_eval(m, bn) if isinstance(m, nn.Conv2d) else copy.deepcopy(m)
              for m, bn in zip(modules, modules[1:] + [None]) if not isinstance(m, (nn.BatchNorm2d, nn.Dropout))]
    last = max(i for i, m in enumerate(layers) if isinstance(m, nn.Conv2d))
    conv = layers[last]
    linear = nn.utils.skip_init(nn.Linear, conv.weight[0].numel(), conv.out_channels)  # no random init to overwrite
    with torch.no_grad():
        linear.weight.copy_(conv.weight.reshape(conv.out_channels, -1))
        linear.bias.copy_(conv.bias)
    layers[last : last + 1] = [nn.Flatten(), linear]
    return nn.Sequential(*layers, copy.deepcopy(net.classifier)).eval()


class WeightsError(ValueError):
    """A weights file that can't be used: unreadable, not a plain tensor dict, wrong keys or shapes, or non-finite."""


def load_network(path: str | os.PathLike) -> Net:
    """Load a state_dict saved by train.py into a fresh `Net`, refusing anything but plain tensors."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # torch raises UnpicklingError, RuntimeError, EOFError... for bad files
        raise WeightsError(f"{Path(path).name}: not a loadable weights file ({type(e).__name__}: {e})") from e
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise WeightsError(f"{Path(path).name}: expected a state_dict of tensors")
    net = Net()
    try:
        net.load_state_dict(state, strict=True)
    except RuntimeError as e:
        raise WeightsError(f"{Path(path).name}: does not fit this network ({e})") from e
    weights = [t for name, t in net.state_dict().items() if t.is_floating_point() and name != "digit_threshold"]
    if not all(torch.isfinite(t).all() for t in weights) or net.digit_threshold.isnan():  # -inf: flag nothing
        raise WeightsError(f"{Path(path).name}: holds NaN or infinite values")
    if not net.temperature.item() > 0:
        raise WeightsError(f"{Path(path).name}: temperature must be positive")
    return net.eval().to(memory_format=torch.channels_last)


def _download_from_hub(repo_id: str, revision: str | None, timeout: float) -> Path:
    """hf_hub_download in a daemon thread, so a Hub that hangs costs at most `timeout` seconds."""
    from huggingface_hub import hf_hub_download

    result: dict[str, object] = {}

    def fetch() -> None:
        try:
            result["path"] = hf_hub_download(repo_id, WEIGHTS_FILENAME, revision=revision)
        except Exception as e:  # network, 404, auth: all mean "use the bundled weights"
            result["error"] = e

    worker = threading.Thread(target=fetch, name="hub-download", daemon=True)
    worker.start()
    worker.join(timeout)
    if worker.is_alive():
        raise TimeoutError(f"the Hub did not answer within {timeout:.0f} s")
    if "error" in result:
        raise result["error"]  # type: ignore[misc]
    return Path(result["path"])  # type: ignore[arg-type]


NO_INK = "No digit found: the image holds no ink. Draw or upload a digit."


class NoDigitError(ValueError):
    """The image holds no ink to read."""


@dataclass
class Prediction:
    probabilities: dict[str, float]  # "0".."9" -> probability, summing to 1
    frame: np.ndarray  # the 28x28 input the network saw, ink = 1
    digit_score: float  # Net.digit_score: higher looks more like a digit
    is_digit: bool  # False when the score is under the threshold fitted on held-out digits

    box: tuple[int, int, int, int] | None = None  # (left, top, right, bottom) in the upright input's px, for a digit of a number
    pen: float | None = None  # for a single digit, its strokes' width for its size as a multiple of MNIST's (preprocess.frame_with_pen)

    @property
    def bold(self) -> bool:
        """Drawn with a pen so bold for the digit's size that its loops may have filled in."""
        return self.pen is not None and self.pen >= preprocess.BOLD_PEN

    @property
    def label(self) -> str:
        return max(self.probabilities, key=self.probabilities.get)

    @property
    def confidence(self) -> float:
        return self.probabilities[self.label]


@dataclass
class Reading:
    """A number read from one image: its digits, left to right."""

    digits: list[Prediction]

    @property
    def text(self) -> str:
        return "".join(d.label for d in self.digits)

    def to_dict(self) -> dict:
        """The JSON the /read endpoint returns."""
        return {
            "text": self.text,
            "digits": [
                {"label": d.label, "confidence": d.confidence, "box": list(d.box), "is_digit": d.is_digit,
                 "digit_score": d.digit_score, "probabilities": d.probabilities}
                for d in self.digits
            ],
        }


class Recognizer:
    """Reads handwritten digits from images in any colours, sizes and positions."""

    def __init__(self, net: Net, source: str = "bundled", tta: bool = False):
        self.net = net.eval()
        self._forward = inference_network(self.net)
        self.source = source  # where the weights came from, for logs and the UI
        self.tta = tta  # average the logits over TTA_VIEWS: see benchmarks/tta.py for what it buys

    @classmethod
    def load(
        cls,
        repo_id: str | None = None,
        revision: str | None = None,
        timeout: float = HUB_TIMEOUT_S,
        bundled: str | os.PathLike = BUNDLED_WEIGHTS,
        tta: bool = False,
    ) -> "Recognizer":
        """Weights from the Hub repo `repo_id` (default: $MODEL_REPO) at `revision` (default:
        $MODEL_REVISION), falling back to the bundled file, with the reason logged, when the Hub is
        down, slow, or serves a file that does not load."""
        repo_id = repo_id or os.environ.get("MODEL_REPO") or None
        revision = revision or os.environ.get("MODEL_REVISION") or None
        if repo_id:
            try:
                path = _download_from_hub(repo_id, revision, timeout)
                net = load_network(path)
                log.info("loaded weights from the Hub: %s@%s", repo_id, revision or "main")
                return cls(net, source=f"hub:{repo_id}@{revision or 'main'}", tta=tta)
            except Exception as e:
                log.warning("Hub weights %s unavailable (%s: %s); using the bundled weights", repo_id, type(e).__name__, e)
        return cls(load_network(bundled), source="bundled", tta=tta)

    @torch.inference_mode()
    def read_frames(self, frames: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(N, 28, 28) MNIST-framed ink -> (N, 10) calibrated probabilities and (N,) digit scores,
        in one batched pass."""
        if self.tta:
            ink = torch.as_tensor(np.asarray(frames, dtype=np.float32)).unsqueeze(1)
            logits = self._forward(normalize(tta_views(ink))).reshape(len(TTA_VIEWS), len(frames), -1).mean(0)
        else:
            logits = self._forward(to_tensor(frames))
        probs = torch.softmax(logits / self.net.temperature, dim=1).double().numpy()
        return probs, self.net.digit_score(logits).numpy()

    def probabilities(self, frames: np.ndarray) -> np.ndarray:
        """(N, 28, 28) MNIST-framed ink -> (N, 10) calibrated probabilities, in one batched pass."""
        return self.read_frames(frames)[0]

    def predict_batch(self, images: Sequence[object]) -> list[Prediction]:
        """`predict` for many images in one batched pass; raises the first image's error
        (NoDigitError, ImageError) if any can't be read."""
        results = self.predict_each(images)
        for result in results:
            if not isinstance(result, Prediction):
                raise result
        return results

    def predict_each(self, images: Sequence[object]) -> list[Prediction | ImageError | NoDigitError]:
        """`predict` for many images in one batched pass; an image that can't be read gets its
        error in its place, so one bad file does not fail the rest."""
        results: list[tuple[np.ndarray, float] | Prediction | ImageError | NoDigitError] = []
        for image in images:
            try:
                framed = preprocess.to_mnist_with_pen(image)
                results.append(framed if framed is not None else NoDigitError(NO_INK))
            except ImageError as e:
                results.append(e)
        readable = [k for k, r in enumerate(results) if isinstance(r, tuple)]
        if readable:
            frames, pens = zip(*(results[k] for k in readable))
            for k, prediction in zip(readable, self._predictions(list(frames), pens=pens)):
                results[k] = prediction
        return results

    def _predictions(self, frames: list[np.ndarray], boxes: Sequence | None = None,
                     known: tuple[np.ndarray, np.ndarray] | None = None, pens: Sequence | None = None) -> list[Prediction]:
        """Predictions for frames, from `known` = read_frames(frames) when the caller already has it."""
        probs, scores = self.read_frames(np.stack(frames)) if known is None else known
        threshold = self.net.digit_threshold.item()
        return [
            Prediction({c: float(p) for c, p in zip(CLASSES, row / row.sum())}, frame, float(score), bool(score >= threshold), box, pen)
            for row, frame, score, box, pen in zip(probs, frames, scores, boxes or [None] * len(frames), pens or [None] * len(frames))
        ]

    def predict(self, image: object) -> Prediction:
        """The probabilities, the 28x28 view the network saw and whether it looks like a digit at all.
        Raises NoDigitError on a blank image."""
        return self.predict_batch([image])[0]

    def classify(self, image: object) -> dict[str, float]:
        """Probabilities of "0".."9" for a PIL image, a numpy array (HxW, HxWx3, HxWx4) or a path."""
        return self.predict(image).probabilities

    def classify_batch(self, images: Sequence[object]) -> list[dict[str, float]]:
        """`classify` for many images, sent through the network in one batched pass."""
        return [p.probabilities for p in self.predict_batch(images)]

    def read(self, image: object) -> Reading:
        """Every digit of a written number, left to right, each with its box in the input image.
        Raises NoDigitError when the image holds no ink."""
        img = preprocess.load_image(image)
        seen: dict[int, tuple[np.ndarray, np.ndarray, float]] = {}
        parts = preprocess.split_digits(preprocess.ink_map(img, one_digit=False), lambda frames: self._digit_cost(frames, seen))
        if not parts:
            raise NoDigitError("No digits found: the image holds no ink. Write a number.")
        boxes = [preprocess.source_box(p.box, img) for p in parts]
        frames = [p.framed for p in parts]
        return Reading(self._predictions(frames, boxes, self._read_once(frames, seen)))

    def _read_once(self, frames: list[np.ndarray], seen: dict) -> tuple[np.ndarray, np.ndarray]:
        """read_frames for the frames of one number, sending through the network only those it has
        not seen: split_digits scores a part whole, then among the candidates, and read reports the
        chosen ones. `seen` maps id(frame) -> (frame, probabilities, score), the frame kept alive
        beside its id so that no other array can take that id."""
        new = [f for f in frames if id(f) not in seen]
        if new:
            probs, scores = self.read_frames(np.stack(new))
            seen.update((id(f), (f, p, s)) for f, p, s in zip(new, probs, scores))
        return np.stack([seen[id(f)][1] for f in frames]), np.array([seen[id(f)][2] for f in frames])

    def _digit_cost(self, frames: list[np.ndarray], seen: dict) -> np.ndarray:
        """How poorly each frame reads as one digit, for preprocess.split_digits."""
        probs, scores = self._read_once(frames, seen)
        return -np.log(probs.max(axis=1)) + DIGIT_COST + NOT_DIGIT_COST * (scores < self.net.digit_threshold.item())
