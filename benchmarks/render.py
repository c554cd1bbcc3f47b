"""Re-render MNIST digits the way real inputs look: drawn on a web canvas, or photographed on paper.

Used by the robustness and number benchmarks, the tests and the app's example images. Every function takes a
uint8 28x28 MNIST digit (white ink on black) and a numpy Generator, and returns a PIL image.

    python benchmarks/render.py      # writes a contact sheet of renders to /tmp/renders.png
"""

from __future__ import annotations

import io
import sys
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw
from scipy import ndimage as ndi

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from preprocess import MNIST_SIZE  # noqa: E402

CANVAS_SIDES = (800, 400, 280)  # the sketchpad sizes people use, px
DIGIT_SHARE = (0.25, 0.70)  # digit height as a share of the canvas side
FRAME_FILL = 0.71  # MNIST's 20 px digit fills 71% of its 28 px frame (20/28 rounded: every benchmark render was made with it)
SHEET_SIDES = (0.55, 0.95)  # share of the photo's width, and of its height, that a sheet on a desk covers
SHEET_TILT = 5.0  # degrees a sheet on a desk lies askew
PAPER_LEVELS = ((200, 250), (195, 245), (170, 240))  # RGB ranges of paper: white to yellowed
PENS = ((20, 20, 25), (25, 35, 110), (70, 70, 75), (15, 60, 30))  # black, blue, pencil grey and green ink
DESK_LEVELS = (20, 140)  # a desk's RGB levels: darker than paper (a sheet on a white desk shows no edge)
NUMBER_HEIGHT = (50, 160)  # px range of a number's digit height: a form field up to a wide canvas
NAMED_SCHEMES = {  # (stroke, background); None = transparent
    "black on white": ((0, 0, 0), (255, 255, 255)),
    "white on dark mode": ((255, 255, 255), (51, 51, 51)),
    "red on blue": ((220, 40, 40), (30, 60, 160)),
    "yellow on green": ((250, 220, 40), (20, 110, 60)),
    "blue on transparent": ((30, 60, 200), None),
}


def _pen(digit: np.ndarray, side: int, width_change: float) -> np.ndarray:
    """The digit enlarged to `side` px as a crisp pen stroke in [0, 1]; `width_change` thickens (>0)
    or thins (<0) it by that share of its own stroke width."""
    big = np.asarray(Image.fromarray(digit).resize((side, side), Image.Resampling.BICUBIC), np.float32) / 255
    mask = big > 0.45
    width = 4 * ndi.distance_transform_edt(mask)[mask].mean() if mask.any() else 1
    r = int(round(abs(width_change) * width / 2))
    if r:
        disk = np.hypot(*np.ogrid[-r : r + 1, -r : r + 1]) <= r
        if width_change > 0:
            mask = ndi.binary_dilation(mask, disk)
        elif (thinner := ndi.binary_erosion(mask, disk)).sum() > 0.3 * mask.sum():
            mask = thinner
    return ndi.gaussian_filter(mask.astype(np.float32), 0.7)


def canvas(digit: np.ndarray, rng: np.random.Generator, scheme: str | None = None, side: int | None = None) -> Image.Image:
    """A digit drawn on a web canvas: random size, place, stroke width and colours."""
    side = side or int(rng.choice(CANVAS_SIDES))
    size = int(side * rng.uniform(*DIGIT_SHARE) / FRAME_FILL)
    ink = _pen(digit, size, rng.uniform(-0.4, 1.0))
    fg, bg = _colours(rng, scheme)
    y0, x0 = rng.integers(-size // 10, side - size + size // 10 + 1, size=2)
    layer = np.zeros((side, side), np.float32)
    _paste(layer, ink, int(y0), int(x0))
    return _paint(layer, fg, bg)


def number(digits: list[np.ndarray], rng: np.random.Generator, scheme: str | None = None) -> Image.Image:
    """A number written on a wide canvas: one pen and colour pair, each digit its own size
    (+-25%), gaps of 5-60% of the digit height, and a baseline that drifts and jitters."""
    base = int(rng.integers(*NUMBER_HEIGHT))
    width_change = rng.uniform(-0.4, 0.8)
    fg, bg = _colours(rng, scheme)
    inks = []
    for d in digits:
        ink = _pen(d, int(base * rng.uniform(0.75, 1.25) / FRAME_FILL), width_change)
        rows, cols = np.nonzero(ink > 0.05)
        inks.append(ink[rows.min() : rows.max() + 1, cols.min() : cols.max() + 1])
    gaps = rng.uniform(0.05, 0.6, len(inks)) * base
    slope = rng.uniform(-0.15, 0.15)  # baseline drift, px per px
    margin = base // 2
    width = int(sum(i.shape[1] for i in inks) + gaps[1:].sum()) + 2 * margin
    height = int(2.5 * base + abs(slope) * width)
    layer = np.zeros((height, width), np.float32)
    x, y0 = margin, (height - base) / 2 - slope * width / 2
    for k, ink in enumerate(inks):
        x += int(gaps[k]) if k else 0
        bottom = y0 + base + slope * x + rng.normal(0, 0.08) * base
        _paste(layer, ink, int(bottom - ink.shape[0]), int(x))
        x += ink.shape[1]
    return _paint(layer, fg, bg)


def _colours(rng: np.random.Generator, scheme: str | None) -> tuple[tuple[int, ...], tuple[int, ...] | None]:
    """(stroke, background) of a named scheme, or half the time a named one and else a random
    contrasting pair, sometimes on a transparent layer."""
    if scheme is not None:
        return NAMED_SCHEMES[scheme]
    if rng.random() < 0.5:
        return NAMED_SCHEMES[str(rng.choice(list(NAMED_SCHEMES)))]
    return _contrasting_pair(rng)


def _paint(layer: np.ndarray, fg: tuple[int, ...], bg: tuple[int, ...] | None) -> Image.Image:
    """An ink layer in [0, 1] painted in `fg` over `bg`, or as alpha when `bg` is None."""
    h, w = layer.shape
    fg = np.array(fg, np.float32)
    if bg is None:
        rgba = np.dstack([np.broadcast_to(fg, (h, w, 3)), layer[..., None] * 255])
        return Image.fromarray(rgba.astype(np.uint8), "RGBA")
    rgb = np.array(bg, np.float32) * (1 - layer[..., None]) + fg * layer[..., None]
    return Image.fromarray(rgb.astype(np.uint8), "RGB")


def _contrasting_pair(rng: np.random.Generator) -> tuple[tuple[int, ...], tuple[int, ...] | None]:
    while True:
        fg, bg = rng.integers(0, 256, size=(2, 3))
        if np.linalg.norm(fg - bg) > 160:
            return tuple(int(v) for v in fg), (None if rng.random() < 0.15 else tuple(int(v) for v in bg))


def _paste(dst: np.ndarray, src: np.ndarray, y0: int, x0: int) -> None:
    h, w = src.shape
    ys, xs = max(0, -y0), max(0, -x0)
    ye, xe = min(h, dst.shape[0] - y0), min(w, dst.shape[1] - x0)
    if ye > ys and xe > xs:
        dst[y0 + ys : y0 + ye, x0 + xs : x0 + xe] = np.maximum(dst[y0 + ys : y0 + ye, x0 + xs : x0 + xe], src[ys:ye, xs:xe])


def photo(digit: np.ndarray, rng: np.random.Generator, side: int | None = None) -> Image.Image:
    """A digit written on paper and photographed: paper tint, uneven light, tilt, blur, noise, JPEG."""
    w = side or int(rng.choice([480, 640, 1024]))
    h = int(w * rng.uniform(0.75, 1.0))
    size = int(min(h, w) * rng.uniform(0.35, 0.7) / FRAME_FILL)
    ink = _written(digit, size, rng)
    layer = np.zeros((h, w), np.float32)
    _paste(layer, ink, int(rng.integers(0, max(1, h - size))), int(rng.integers(0, max(1, w - size))))
    paper = np.array([rng.uniform(*levels) for levels in PAPER_LEVELS], np.float32)
    pen = np.array(rng.choice(PENS), np.float32)
    rgb = paper * (1 - layer[..., None] * rng.uniform(0.75, 1.0)) + pen * layer[..., None] * rng.uniform(0.75, 1.0)
    return _photograph(rgb, rng, table_edge=True)


def desk(digit: np.ndarray, rng: np.random.Generator) -> Image.Image:
    """A digit on a sheet of paper lying on a desk, photographed from far enough that the desk shows
    around the tilted sheet; otherwise as `photo`."""
    w = int(rng.choice([480, 640, 1024]))
    h = int(w * rng.uniform(0.75, 1.0))
    sh, sw = int(h * rng.uniform(*SHEET_SIDES)), int(w * rng.uniform(*SHEET_SIDES))
    top, left = int(rng.integers(0, h - sh + 1)), int(rng.integers(0, w - sw + 1))
    size = int(min(sh, sw) * rng.uniform(0.35, 0.7) / FRAME_FILL)
    ink = _written(digit, size, rng)
    layer = np.zeros((h, w), np.float32)
    _paste(layer, ink, top + int(rng.integers(0, max(1, sh - size))), left + int(rng.integers(0, max(1, sw - size))))
    turn = np.radians(rng.uniform(-SHEET_TILT, SHEET_TILT))
    cy, cx = top + sh / 2, left + sw / 2
    corners = [(cx + dx * np.cos(turn) - dy * np.sin(turn), cy + dx * np.sin(turn) + dy * np.cos(turn))
               for dx, dy in ((-sw / 2, -sh / 2), (sw / 2, -sh / 2), (sw / 2, sh / 2), (-sw / 2, sh / 2))]
    outline = Image.new("L", (w, h))
    ImageDraw.Draw(outline).polygon(corners, fill=255)
    sheet = np.asarray(outline, np.float32)[..., None] / 255
    surface = np.array(rng.uniform(*DESK_LEVELS, size=3), np.float32)
    paper = np.array([rng.uniform(*levels) for levels in PAPER_LEVELS], np.float32)
    pen = np.array(rng.choice(PENS), np.float32)
    strength = (layer * sheet[..., 0])[..., None] * rng.uniform(0.75, 1.0)  # ink only on the paper
    rgb = (surface * (1 - sheet) + paper * sheet) * (1 - strength) + pen * strength
    return _photograph(rgb, rng, table_edge=False)


def _written(digit: np.ndarray, size: int, rng: np.random.Generator) -> np.ndarray:
    """The digit as a pen writes it on paper: a ballpoint to a felt-tip, tilted up to 8 degrees."""
    ink = _pen(digit, size, rng.uniform(-0.3, 0.4))
    return ndi.rotate(ink, rng.uniform(-8, 8), reshape=False, order=1)


def _photograph(rgb: np.ndarray, rng: np.random.Generator, table_edge: bool) -> Image.Image:
    """A page (H, W, 3 levels) as a phone photographs it: uneven light and vignette, sometimes (with
    `table_edge`) the table at one edge, blur, noise and JPEG."""
    h, w, _ = rgb.shape
    yy, xx = np.mgrid[0:h, 0:w] / max(h, w)
    angle = rng.uniform(0, 2 * np.pi)
    light = 1 - rng.uniform(0.15, 0.45) * ((np.cos(angle) * xx + np.sin(angle) * yy) - (np.cos(angle) + np.sin(angle)) / 2 + 0.5)
    light -= rng.uniform(0, 0.2) * ((xx - 0.5) ** 2 + (yy - 0.5) ** 2)  # vignette
    rgb = rgb * light[..., None]
    if table_edge and rng.random() < 0.3:  # the table at the edge of the photo
        band = int(min(h, w) * rng.uniform(0.03, 0.08))
        edge = rng.integers(4)
        table = np.array(rng.uniform(20, 90, size=3), np.float32)
        sl = [np.s_[:band, :], np.s_[-band:, :], np.s_[:, :band], np.s_[:, -band:]][edge]
        rgb[sl] = table
    rgb = ndi.gaussian_filter(rgb, (rng.uniform(0.3, 1.5), rng.uniform(0.3, 1.5), 0))
    rgb = rgb + rng.normal(0, rng.uniform(2, 8), rgb.shape)
    img = Image.fromarray(rgb.clip(0, 255).astype(np.uint8), "RGB")
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=int(rng.integers(35, 90)))
    return Image.open(io.BytesIO(buf.getvalue()))


def naive(img: Image.Image) -> np.ndarray:
    """The usual demo's preprocessing: greyscale, resize the whole image to 28x28, invert if light."""
    g = np.asarray(img.convert("L").resize((MNIST_SIZE, MNIST_SIZE), Image.Resampling.BILINEAR), np.float32) / 255
    return 1 - g if g.mean() > 0.5 else g


if __name__ == "__main__":
    import gzip
    import pickle
    import importlib.resources

    with gzip.open(importlib.resources.files("mnist") / "data" / "mnist.pkl.gz", "rb") as f:
        digits = (pickle.load(f, encoding="latin1")[2][0][:8] * 256).clip(0, 255).astype(np.uint8).reshape(-1, 28, 28)
    rng = np.random.default_rng(0)
    tiles = [canvas(d, rng).convert("RGB").resize((160, 160)) for d in digits] + [photo(d, rng).convert("RGB").resize((160, 160)) for d in digits]
    sheet = Image.new("RGB", (160 * 8, 320))
    for i, t in enumerate(tiles):
        sheet.paste(t, (160 * (i % 8), 160 * (i // 8)))
    sheet.save("/tmp/renders.png")
    print("wrote /tmp/renders.png")
