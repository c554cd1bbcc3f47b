"""Image -> ink map -> the 28x28 MNIST framing that the network was trained on.

MNIST digits are light ink on black, their longer side scaled to 20 px and their centre of mass
placed at the centre of a 28x28 field. A drawing or a photo is brought to that framing here:

    load_image(src)   bounded decode: any Pillow mode, EXIF orientation, huge images shrunk early
    ink_map(image)    0..1 ink wherever it differs from the background, in any colours
    frame(ink)        crop, normalise stroke width, scale to 20 px, centre by mass in 28x28
    frame_with_pen(ink)      ...and how bold the pen was, as a multiple of MNIST's
    to_mnist(src)     all three; None when there is no ink
    to_mnist_with_pen(src)   ...and how bold the pen was, as a multiple of MNIST's
    split_digits(ink, cost)  a written number's ink -> one Part per digit, left to right

    python preprocess.py photo.jpg    # writes photo.mnist.png, the 28x28 view, beside it

These are pure functions of their input. The constants below are the single source of truth for
the framing and the normalisation: train.py, model.py and the app import them from here.
"""

from __future__ import annotations

import io
import os
import sys
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cached_property, lru_cache
from pathlib import Path
from typing import Callable, Iterator, Sequence

import numpy as np
from PIL import Image, ImageOps
from scipy import ndimage as ndi
from skimage.filters import threshold_otsu
from skimage.morphology import convex_hull_image
from threadpoolctl import threadpool_limits

MNIST_SIZE = 28  # the network's input side, px
MNIST_BOX = 20  # MNIST scaled each digit's longer side to 20 px...
MNIST_CENTRE = 14.0  # ...and put its centre of mass here (pixel index, as measured on MNIST)
MNIST_MEAN, MNIST_STD = 0.1307, 0.3081  # MNIST training-set pixel statistics, for standardising
MNIST_STROKE = 0.14  # median stroke width / longer side of the digit, measured on MNIST test digits

MAX_IMAGE_PIXELS = 40_000_000  # refuse to decode more (a 6000x6000 photo is 36M): bombs stay small
WORK_SIDE = 384  # a number's image is shrunk so its longer side is at most this before any analysis, px
DIGIT_SIDE = 200  # ...and a single digit's: it divides the app's canvas (app.CANVAS, 400 px) and 800 px ones, which
# then shrink by one integer box filter and no resampling after it; a digit filling a quarter of the canvas still spans 50 px, 2.5x the
# 20 px it ends up as
STROKE_SIDE = 80  # the crop is studied at this size when its stroke width is normalised, px
MIN_CONTRAST = 0.12  # ink must differ from the background by this much (RGB distance / sqrt 3)
MIN_SPECK = 0.02  # ink blobs smaller than this share of the largest blob are noise
EDGE_BAND, EDGE_BAND_FILL = 0.12, 0.85  # outer share of each side searched for bands; ink share that makes one
EDGE_GAP = 2  # rows of paper allowed between a band and the blurred line along its inner edge
LIGHT_DEGREE = 2  # degree of the polynomial that models light falling across a photographed page
SHEET_SHARE = (0.25, 0.97)  # a sheet lying on a desk covers this share of the photo; more is a page that fills it
SHEET_EDGE = 0.05  # luminance (0-1) step per px that marks the sheet's edge: a desk's edge, not light falling off...
SHEET_SHARP = 0.85  # ...along this share of the sheet's outline (off the image's edge): the hull of a bold chalk digit has gaps
SHEET_STEP = 0.15  # luminance by which the desk just off the sheet is darker than the sheet: a ruled line is no desk
SHEET_RIM = 2  # px of the sheet along its edge that are the blurred line where it meets the desk, not ink
STROKE_INK = 0.5  # ink level that makes a pixel part of a stroke when a number is split into digits
SAME_DIGIT_OVERLAP = 0.5  # strokes sharing this share of the narrower one's columns are one digit
MIN_DIGIT_HEIGHT = 0.2  # strokes whose longer side is under this share of the tallest are dots and specks
TOUCHING_ASPECT = 1.0  # a stroke wider than this times its height may be touching digits...
CUT_TRIES = 5  # ...and is cut at up to this many places, kept if the halves read better than the whole
MAX_JOIN = 3  # at most this many separate strokes make one digit
MAX_STROKES = 32  # a number is read from at most this many strokes (six digits made at most 9 in 600 renders); more is speckle or a page of text
JOIN_GAP = 0.04  # strokes further apart than this share of their height are separate digits
JOIN_ASPECT = 1.6  # nor are strokes joined into something wider than this times its height: a 5's hat that
# overshoots makes it wide (numbers of validation digits: 1.6 read 96.2% exactly, 1.2 read 95.3%)
HALO = 3  # px: faint ink this close to a stroke belongs to it; further out it is a smudge
INK_EDGE = 2  # px: a stroke's faint anti-aliased edge, under the ink threshold, kept around it in the ink map
INK_FLOOR = 0.05  # ink level under which a pixel lies outside the digit's box when it is framed
THIN_PEN = 1.5  # strokes bolder than this times MNIST's width (for the digit's size) are thinned to 1.1 times it when framed
BOLD_PEN = 2.5  # a pen this bold fills a digit's loops: 9 of 99 validation canvas renders drawn so were misread, 18 of 3,651 bolder or finer

FLOAT_OVERSHOOT = 1.5  # an array of floats whose largest is at most this is in 0-1: bicubic resizing overshoots 1 by a little
EXIF_ORIENTATION = 0x0112  # the tag whose values 5-8 turn the picture a quarter: width and height swap

Image.MAX_IMAGE_PIXELS = MAX_IMAGE_PIXELS
# Our BLAS work is a 6-column least-squares fit per photo. A second OpenBLAS thread gains nothing
# there, and it keeps spinning afterwards, taking a core from torch and from the next request: a
# 1024 px photo took 14.5 ms with it and 9.6 ms without, with the same results.
threadpool_limits(1, user_api="blas")


UNREADABLE = "This file is not an image that can be read (PNG, JPEG, WebP, GIF, BMP, TIFF)."


class ImageError(ValueError):
    """The input is not an image we can read; the message is safe to show to a user."""


def load_image(src: object, side: int = WORK_SIDE) -> Image.Image:
    """Decode `src` (path, bytes, file object, PIL image or numpy array) into an RGB image (RGBA
    when it has transparency) whose longer side is at most `side`, upright according to its EXIF
    orientation. Its info["source_size"] is the upright input's (width, height), for mapping
    boxes back."""
    if isinstance(src, Image.Image):
        img = src
        with _decoding():  # an image opened but not yet decoded may be truncated or a bomb
            _check_size(img)
            img.load()
            if img.getexif().get(EXIF_ORIENTATION, 1) != 1:  # Image.open(photo), passed on: still upright
                img = ImageOps.exif_transpose(img)
    elif isinstance(src, np.ndarray):
        img = _from_array(src)
    else:
        if isinstance(src, (bytes, bytearray, memoryview)):
            src = io.BytesIO(src)
        elif isinstance(src, (str, os.PathLike)):
            if not _is_file(src):
                raise ImageError(f"No such image file: {Path(src).name[:80]}")
        elif not hasattr(src, "read"):
            raise ImageError(f"Expected an image (a path, bytes, a file, a PIL image or a numpy array), got {type(src).__name__}.")
        with _decoding(), Image.open(src) as opened:  # closed here: an animated GIF would keep its file open
            stored = opened.size  # full size: JPEG's draft shrinks it
            _check_size(opened)
            opened.draft("RGB", (side, side))  # JPEG: decode at reduced size, much faster
            img = ImageOps.exif_transpose(opened)  # a decoded copy, upright
            source = stored if img.size == opened.size else stored[::-1]  # turned a quarter (TIFF's reader turns its size itself)
    if img.width == 0 or img.height == 0:
        raise ImageError("The image is empty (0 pixels).")
    if isinstance(src, (Image.Image, np.ndarray)):
        source = img.size
    if img.mode == "La":  # premultiplied grey, which Pillow converts only to LA
        img = img.convert("LA")
    if img.mode in ("I", "I;16", "I;16B", "I;16L", "I;16N", "F"):  # 16- and 32-bit greys: shrunk as integers, then levelled
        img = _from_array(_reduce(np.asarray(img), max(img.size) // side))
    if max(img.size) >= 2 * side and img.mode in ("L", "LA", "RGB", "RGBA"):
        img = _shrink(img, max(img.size) // side)  # integer box shrink first: far cheaper than resizing
    img = img.convert("RGBA" if img.has_transparency_data else "RGB")  # an opaque alpha would only cost time
    if max(img.size) > side:
        img.thumbnail((side, side), Image.Resampling.BOX)
    img.info["source_size"] = source  # convert() made a copy: the caller's image is untouched
    return img


def _is_file(path: str | os.PathLike) -> bool:
    try:
        return Path(path).is_file()
    except (OSError, ValueError):  # a name too long (a data: URL), or with a NUL in it
        return False


@contextmanager
def _decoding() -> Iterator[None]:
    """Pillow's errors while decoding -> ImageError, with a message that is safe to show."""
    try:
        yield
    except Image.DecompressionBombError as e:
        raise ImageError(f"The image is too large: at most {MAX_IMAGE_PIXELS // 1_000_000} megapixels.") from e
    except (OSError, SyntaxError, ValueError) as e:
        raise ImageError(UNREADABLE) from e


def _check_size(img: Image.Image) -> None:
    """Pillow itself only refuses twice MAX_IMAGE_PIXELS, and only when opening a file."""
    if img.width * img.height > MAX_IMAGE_PIXELS:
        raise Image.DecompressionBombError(f"{img.width}x{img.height}")


def source_box(box: tuple[int, int, int, int], img: Image.Image) -> tuple[int, int, int, int]:
    """(left, top, right, bottom) in `img`, as load_image returned it -> the same box in the
    upright input's pixels."""
    (width, height), (w, h) = img.info["source_size"], img.size
    left, top, right, bottom = box
    return (round(left * width / w), round(top * height / h), min(width, round(right * width / w)), min(height, round(bottom * height / h)))


def _from_array(a: np.ndarray) -> Image.Image:
    a = np.asarray(a)
    if a.ndim == 3 and a.shape[2] == 1:
        a = a[..., 0]
    if a.ndim not in (2, 3) or (a.ndim == 3 and a.shape[2] not in (3, 4)):
        raise ImageError(f"Expected an HxW, HxWx3 or HxWx4 array, got shape {a.shape}.")
    if a.dtype != np.uint8:
        try:
            a = a.astype(np.float32)
        except (TypeError, ValueError) as e:
            raise ImageError(f"Expected an array of numbers, got {a.dtype}.") from e
        finite = a[np.isfinite(a)]
        top = finite.max() if finite.size else 0
        # floats in 0-1 (a resize's overshoot past 1 too), 8-bit levels, or else the fewest bits that hold the maximum: a 10-
        # or 12-bit scan in a 16-bit file
        full = 1.0 if top <= FLOAT_OVERSHOOT else 255.0 if top <= 255 else 2.0 ** np.ceil(np.log2(top + 1.0)) - 1
        a = np.nan_to_num(a * np.float32(255.0 / full), posinf=255.0, neginf=0.0).clip(0, 255).astype(np.uint8)
    return Image.fromarray(a)


def _shrink(img: Image.Image, factor: int) -> Image.Image:
    """img.reduce(factor), the same pixels. Pillow reduces an image with alpha by premultiplying
    every pixel first (2 ms for an 800x800 canvas, five times the reduce), although where alpha is
    0 the result is 0 whatever the colour: only the blocks that hold the visible pixels go through it."""
    box = img.getbbox() if img.mode in ("LA", "RGBA") and factor > 1 else (0, 0, *img.size)  # of the pixels whose alpha is not 0
    if box == (0, 0, *img.size):  # all of it, as an opaque image: a cropped copy would only cost time
        return img.reduce(factor)
    out = Image.new(img.mode, (-(-img.width // factor), -(-img.height // factor)))  # Pillow keeps a last, partial block
    if box is not None:
        left, top = box[0] // factor, box[1] // factor
        right, bottom = min(-(-box[2] // factor) * factor, img.width), min(-(-box[3] // factor) * factor, img.height)
        out.paste(img.crop((left * factor, top * factor, right, bottom)).reduce(factor), (left, top))
    return out


def _reduce(a: np.ndarray, factor: int) -> np.ndarray:
    """Image.reduce for a 2-D array (Pillow can't reduce 16-bit modes): the mean of each factor x
    factor block, so that a huge 16-bit scan is never held as full-size floats."""
    if factor < 2:
        return a
    h, w = a.shape[0] // factor * factor, a.shape[1] // factor * factor
    return a[:h, :w].reshape(h // factor, factor, w // factor, factor).mean(axis=(1, 3), dtype=np.float32)


def ink_map(img: Image.Image, one_digit: bool = True) -> np.ndarray:
    """(H, W) float32 in [0, 1]: how much each pixel is ink rather than background.

    Transparent layers are read by their alpha. Otherwise ink is the colour distance to the
    background: one colour when the image's edge is uniform (a canvas), else a smooth field that
    follows uneven light across a photo, fitted on the sheet alone when a desk shows around it (the
    desk is no ink). Specks and frame artefacts along the edge are dropped,
    and for `one_digit` also small marks far from the main stroke (in a number, those are digits).
    """
    img = img if img.mode in ("RGB", "RGBA") else img.convert("RGBA")
    alpha = np.asarray(img.getchannel("A")) if img.mode == "RGBA" else None
    if alpha is not None and alpha.min() < 0.9 * 255 and alpha.max() > 0.1 * 255:
        lightness = np.asarray(img.convert("L"))[alpha > alpha.max() // 2]  # the strokes' ITU-R 601 luma, however faint the pen
        backdrop = 255 if np.median(lightness) < 127.5 else 0
        img = Image.alpha_composite(Image.new("RGBA", img.size, (backdrop, backdrop, backdrop, 255)), img)  # in uint8: within half a level of a float blend
    dist, one_colour = _distance_to_background(np.asarray(img)[..., :3])
    dist /= np.float32(np.sqrt(3))
    if dist.max() < MIN_CONTRAST:
        return np.zeros(dist.shape, np.float32)
    otsu = _otsu(dist)
    background = dist[dist <= otsu]
    level = _median(background, background.min())
    noise = level + 6 * 1.4826 * _median(np.abs(background - level), 0)
    threshold = max(otsu, noise, MIN_CONTRAST / 2)
    mask = _clean(_drop_edge_bands(dist > threshold, drawing=one_colour), one_digit)
    if not mask.any():
        return np.zeros(dist.shape, np.float32)
    full = _top_decile(dist[mask])
    rows, cols = _box(mask)  # the edge lies in the strokes' box, grown by INK_EDGE
    near = (slice(max(rows.start - INK_EDGE, 0), rows.stop + INK_EDGE), slice(max(cols.start - INK_EDGE, 0), cols.stop + INK_EDGE))
    out = np.zeros(dist.shape, np.float32)
    out[near] = np.clip((dist[near] - threshold / 2) / max(full - threshold / 2, 1e-6), 0, 1) * ndi.binary_dilation(mask[near], iterations=INK_EDGE)
    return out


def _otsu(dist: np.ndarray) -> np.floating:
    """threshold_otsu(dist), the same value, with the histogram made of the pixels off the
    background only: on a canvas most pixels are exactly the background colour, all in the first bin."""
    lo, hi = dist.min(), dist.max()
    if lo == hi:
        return lo
    off = dist[dist > lo]
    counts, edges = np.histogram(off, 256, range=(lo, hi))  # threshold_otsu's own bins
    counts[0] += dist.size - off.size
    return threshold_otsu(hist=(counts, (edges[:-1] + edges[1:]) / 2.0))


def _median(x: np.ndarray, mode: float) -> np.floating:
    """np.median(x), the same value, without a partial sort when over half of x equals `mode`:
    on a canvas most pixels are exactly the background colour."""
    return x.dtype.type(mode) if np.count_nonzero(x == mode) > x.size // 2 else np.median(x)


def _top_decile(x: np.ndarray) -> np.floating:
    """np.percentile(x, 90), the same value, without a partial sort when the maximum fills more
    than a tenth of x (plus two, for the interpolation's rounding): a solid stroke's own colour."""
    top = x.max()
    return top if np.count_nonzero(x == top) >= 0.1 * x.size + 2 else np.percentile(x, 90)


def _edge(rgb: np.ndarray) -> np.ndarray:
    """(N, 3) uint8: the pixels in a thin ring along the image's edge."""
    h, w, _ = rgb.shape
    ring = max(1, min(h, w) // 30)
    return np.concatenate([rgb[:ring].reshape(-1, 3), rgb[-ring:].reshape(-1, 3), rgb[:, :ring].reshape(-1, 3), rgb[:, -ring:].reshape(-1, 3)])


def _sheet(rgb: np.ndarray, edge: np.ndarray) -> np.ndarray | None:
    """A photo of a sheet of paper lying on a darker desk that shows around it -> the sheet's
    pixels, less its blurred rim; None for any other image. A drawing's background is exactly one
    colour along its `edge` (ring), a photo's never is, so drawings and MNIST digits are never searched."""
    pixel = np.dtype((np.void, 3))  # an RGB pixel as one value: compared in one pass, not three (about 20 us, not 90)
    if np.count_nonzero(edge.view(pixel).ravel() == edge[0].view(pixel)) > len(edge) // 2:  # a drawing's corner is nearly always its background
        return None
    if np.count_nonzero((edge == np.median(edge, axis=0)).all(axis=1)) > len(edge) // 2:
        return None
    lum = rgb @ np.float32([0.299, 0.587, 0.114]) / np.float32(255)
    labels, n = ndi.label(lum > threshold_otsu(lum))
    if n == 0:
        return None
    sheet = convex_hull_image(labels == 1 + np.argmax(np.bincount(labels.ravel())[1:]))  # with the ink on it, even ink touching its edge
    if not SHEET_SHARE[0] <= sheet.mean() <= SHEET_SHARE[1]:
        return None
    outline = sheet & ~ndi.binary_erosion(sheet, border_value=1)  # the image's own edge is not the sheet's
    step = ndi.maximum_filter(np.hypot(ndi.sobel(lum, 0), ndi.sobel(lum, 1)), 3) / 4  # per px (Sobel weighs 4); the hull may lie a px off the edge
    if not outline.any() or np.count_nonzero(step[outline] >= SHEET_EDGE) < SHEET_SHARP * np.count_nonzero(outline):
        return None
    # the light on either side of the edge, measured past the blurred line: 2 rims in, and from 1 to 3 rims out
    inside = sheet & ~ndi.binary_erosion(sheet, iterations=2 * SHEET_RIM, border_value=1)
    outside = ndi.binary_dilation(sheet, iterations=3 * SHEET_RIM) & ~ndi.binary_dilation(sheet, iterations=SHEET_RIM)
    if not outside.any() or np.median(lum[inside]) - np.median(lum[outside]) < SHEET_STEP:
        return None
    sheet = ndi.binary_erosion(sheet, iterations=SHEET_RIM, border_value=1)
    return sheet if sheet.any() else None


def _distance_to_background(rgb: np.ndarray) -> tuple[np.ndarray, bool]:
    """Each pixel's RGB distance (0-255 levels scaled to 0-1) to the background, and whether that
    is one colour: so when the image's edge is uniform (a drawing, a clean scan), else the background
    is the lighting field. When a photo shows a sheet lying on a desk, the field is fitted on the
    sheet alone and the desk counts as background: it holds no ink."""
    edge = _edge(rgb)
    sheet = _sheet(rgb, edge)
    if sheet is None:
        edge = edge.astype(np.float32) / np.float32(255)
        colour = np.array([_median(channel, channel[0]) for channel in edge.T], np.float32)  # a canvas's corner is its background
        if _median(np.abs(edge - colour), 0) < 0.02:  # a uniform edge: perhaps one background colour
            dist = _distance_to_colour(rgb, colour)
            if np.count_nonzero(dist < MIN_CONTRAST * np.sqrt(3) / 2) > 0.25 * dist.size:
                return dist, True  # a canvas or a clean scan
    levels = rgb.astype(np.float32) / np.float32(255)
    dist = _distance(levels, _lighting_field(levels, sheet))
    if sheet is not None:
        dist[~sheet] = np.median(dist[sheet])
    return dist, False


def _distance_to_colour(rgb: np.ndarray, colour: np.ndarray) -> np.ndarray:
    """Each uint8 pixel's Euclidean distance to one colour in 0-1 units, by table lookup: the
    same float32 values as _distance, in a third of the time."""
    squares = (np.arange(256, dtype=np.float32) / np.float32(255) - colour[:, None]) ** 2  # (channel, level)
    dist = np.take(squares[0], rgb[..., 0], mode="clip")  # uint8 can't leave the table: "clip" skips the bounds check
    dist += np.take(squares[1], rgb[..., 1], mode="clip")
    dist += np.take(squares[2], rgb[..., 2], mode="clip")
    return np.sqrt(dist, out=dist)


def _distance(rgb: np.ndarray, colour: np.ndarray) -> np.ndarray:
    """Euclidean RGB distance per pixel (np.linalg.norm over the last axis, in a quarter of the time)."""
    diff = rgb - colour
    return np.sqrt(np.einsum("ijk,ijk->ij", diff, diff))


@lru_cache(maxsize=4)  # photos from one camera share their sizes; at most 4 x 3.5 MB
def _poly_terms(h: int, w: int) -> np.ndarray:
    """(h, w, terms) read-only: the monomials x^i y^j of the lighting polynomial over an h x w image."""
    y, x = np.meshgrid(np.linspace(-1, 1, h, dtype=np.float32), np.linspace(-1, 1, w, dtype=np.float32), indexing="ij")
    terms = np.stack([x**i * y**j for i in range(LIGHT_DEGREE + 1) for j in range(LIGHT_DEGREE + 1 - i)], axis=-1)
    terms.flags.writeable = False
    return terms


def _lighting_field(rgb: np.ndarray, within: np.ndarray | None = None) -> np.ndarray:
    """Paper under uneven light: a smooth polynomial surface per channel, fitted to the pixels
    that are not ink (and lie `within` the sheet, when given) and refitted as the ink is found, so
    even bold strokes leave it untouched."""
    h, w, _ = rgb.shape
    step = max(1, max(h, w) // 64)
    small = rgb[::step, ::step].reshape(-1, 3)
    terms = _poly_terms(*rgb[::step, ::step].shape[:2]).reshape(len(small), -1)
    if within is not None and np.count_nonzero(on := within[::step, ::step].ravel()) >= 4 * terms.shape[1]:
        small, terms = small[on], terms[on]  # else the sheet is a strip the samples nearly miss: fit the whole image
    luminance = small @ np.float32([0.299, 0.587, 0.114])
    typical = np.median(luminance)
    paper = luminance >= typical if typical > 0.5 else luminance <= typical
    for _ in range(4):
        coef, *_ = np.linalg.lstsq(terms[paper], small[paper], rcond=None)
        residual = np.linalg.norm(small - terms @ coef, axis=1)
        middle = np.median(residual)
        spread = 1.4826 * np.median(np.abs(residual - middle))
        paper = residual < max(threshold_otsu(residual) if np.ptp(residual) > 0 else 0, middle + 3 * spread)
    return (_poly_terms(h, w) @ coef).astype(np.float32)


def _drop_edge_bands(mask: np.ndarray, drawing: bool = False) -> np.ndarray:
    """Rows and columns that are ink almost end to end, running in from the image's edge, are the
    table or the page's shadow at the edge of a photo, not a stroke: clear them, with the blurred
    line where the band meets the paper, even where a digit touches them. In a `drawing` (one
    background colour) cropped to its ink, a band whose ink runs on across the image into the zone
    along the opposite edge is a stroke that lies along the edge, as a 7's bar does when the 7 is
    cropped tight, and stays; a strip along the edge of a drawing with room around the digit goes."""
    mask = mask.copy()
    for axis in (0, 1):
        fill = np.count_nonzero(mask, axis=1 - axis) / mask.shape[1 - axis]  # mask.mean, in a quarter of the time
        n = len(fill)
        for lines in (np.arange(int(n * EDGE_BAND)), n - 1 - np.arange(int(n * EDGE_BAND))):
            band = lines[fill[lines] > EDGE_BAND_FILL]
            if not band.size or abs(band[0] - lines[0]) > EDGE_GAP:
                continue
            last, gap = band[0], 0
            for i in lines[abs(band[0] - lines[0]) :]:
                gap = 0 if fill[i] > EDGE_BAND_FILL / 2 else gap + 1
                if gap > EDGE_GAP:
                    break
                if gap == 0:
                    last = i
            cleared = slice(min(lines[0], last), max(lines[0], last) + 1)
            if drawing and _runs_across(mask, axis, cleared, from_start=lines[0] == 0):
                continue
            if axis == 0:
                mask[cleared, :] = False
            else:
                mask[:, cleared] = False
    return mask


def _runs_across(mask: np.ndarray, axis: int, band: slice, from_start: bool) -> bool:
    """Whether the ink touching the rows (axis 0) or columns (axis 1) of `band` reaches the zone
    along the opposite edge, as in an image cropped to its ink."""
    labels, _ = ndi.label(mask, structure=np.ones((3, 3)))
    ids = np.unique(labels[band] if axis == 0 else labels[:, band])
    lines = np.flatnonzero(np.isin(labels, ids[ids > 0]).any(axis=1 - axis))
    zone = int(mask.shape[axis] * EDGE_BAND)
    return bool(lines.size) and (lines[-1] >= mask.shape[axis] - zone if from_start else lines[0] < zone)


def _clean(mask: np.ndarray, one_digit: bool = True) -> np.ndarray:
    """Drop specks and blobs that hug the image's edge (a photo's dark frame, a table, a shadow),
    and for `one_digit` small stray marks far from the main blob."""
    ink_box = _box(mask)
    if ink_box is None:
        return mask
    ink = mask[ink_box]  # every blob lies in the ink's box: label only that, and keep to its coordinates
    labels, n = ndi.label(ink, structure=np.ones((3, 3)))
    if n == 1:  # one blob, as most drawings are: its size and box without scanning the labels
        sizes, boxes = np.array([np.count_nonzero(ink)]), [(slice(0, ink.shape[0]), slice(0, ink.shape[1]))]
    else:
        sizes, boxes = np.bincount(labels.ravel(), minlength=n + 1)[1:], ndi.find_objects(labels)
    keep = sizes >= MIN_SPECK * sizes.max()
    top, left = ink_box[0].start, ink_box[1].start  # where the box sits in the image
    h, w = mask.shape
    margin = max(2, min(h, w) // 20)
    inner = np.zeros_like(mask)
    inner[margin:-margin, margin:-margin] = True
    inner = inner[ink_box]
    for i, box in enumerate(boxes):
        if not keep[i]:
            continue
        rows, cols = box
        touches = top + rows.start == 0 or left + cols.start == 0 or top + rows.stop == h or left + cols.stop == w
        spans = (cols.stop - cols.start) > 0.6 * w or (rows.stop - rows.start) > 0.6 * h
        if touches and spans:
            blob = labels[box] == i + 1
            if (blob & ~inner[box]).sum() > 0.4 * blob.sum():
                keep[i] = False
    keep_ids = np.flatnonzero(keep) + 1
    if one_digit and len(keep_ids) > 1:
        keep_ids = _drop_strays(labels, keep_ids, sizes)
    if len(keep_ids) == n:
        return mask
    kept = np.zeros_like(mask)
    kept[ink_box] = np.isin(labels, keep_ids)
    return kept


def _drop_strays(labels: np.ndarray, ids: np.ndarray, sizes: np.ndarray) -> np.ndarray:
    """Small blobs far from the main ink are stray marks, not part of the digit."""
    main = ids[np.argmax(sizes[ids - 1])]
    rows, cols = np.nonzero(labels == main)
    cy, cx, reach = rows.mean(), cols.mean(), max(np.ptp(rows), np.ptp(cols), 1)
    kept = []
    for i in ids:
        r, c = np.nonzero(labels == i)
        far = np.hypot(r - cy, c - cx).min() > reach
        if not (far and sizes[i - 1] < 0.1 * sizes[main - 1]):
            kept.append(i)
    return np.array(kept)


def _box(mask: np.ndarray) -> tuple[slice, slice] | None:
    """The rows and columns that hold a 2-D mask's True pixels, or None: ndi.find_objects for a
    single label, in a fifth of the time."""
    rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
    return (slice(int(rows[0]), int(rows[-1]) + 1), slice(int(cols[0]), int(cols[-1]) + 1)) if rows.size else None


def frame(ink: np.ndarray) -> np.ndarray | None:
    """MNIST framing of an ink map: (28, 28) float32 in [0, 1], or None if there is no ink."""
    framed = frame_with_pen(ink)
    return None if framed is None else framed[0]


def frame_with_pen(ink: np.ndarray) -> tuple[np.ndarray, float] | None:
    """`frame(ink)`, and how bold the pen was: the strokes' mean width over the digit's longer
    side, as a multiple of MNIST's (its digits measure about 1). None if there is no ink."""
    box = _box(ink > INK_FLOOR)
    if box is None:
        return None
    crop, ratio = _normalise_stroke(ink[box])
    h, w = crop.shape
    scale = MNIST_BOX / max(h, w)
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    resample = Image.Resampling.BOX if scale < 1 else Image.Resampling.BILINEAR
    digit = np.asarray(Image.fromarray(crop.astype(np.float32), mode="F").resize(size, resample), np.float32)
    if digit.max() <= 0:
        return None
    digit = np.clip(digit / digit.max(), 0, 1)
    cy, cx = ndi.center_of_mass(digit)
    top = min(max(round(MNIST_CENTRE - cy), 0), MNIST_SIZE - digit.shape[0])
    left = min(max(round(MNIST_CENTRE - cx), 0), MNIST_SIZE - digit.shape[1])
    out = np.zeros((MNIST_SIZE, MNIST_SIZE), np.float32)
    out[top : top + digit.shape[0], left : left + digit.shape[1]] = digit
    return out, ratio / MNIST_STROKE


def stroke_width(depth: np.ndarray) -> float:
    """Mean stroke width in px from the strokes' distance transform: four times their mean depth."""
    inside = depth[depth > 0]
    return 4 * float(inside.mean()) if inside.size else 0.0


def _normalise_stroke(crop: np.ndarray) -> tuple[np.ndarray, float]:
    """Thicken hairlines and thin very bold strokes towards MNIST's width-to-size ratio: the crop
    at STROKE_SIDE so normalised, and the ratio it had (MNIST's digits: MNIST_STROKE). No thinning
    reopens the loops that a very bold pen fills."""
    h, w = crop.shape
    scale = STROKE_SIDE / max(h, w)
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    big = np.asarray(Image.fromarray(crop.astype(np.float32), mode="F").resize(size, Image.Resampling.BILINEAR), np.float32)
    depth = ndi.distance_transform_edt(big > 0.5)  # each stroke pixel's distance to the nearest pixel off the strokes
    ratio = stroke_width(depth) / STROKE_SIDE
    if 0 < ratio < 0.5 * MNIST_STROKE:
        radius = (0.75 * MNIST_STROKE - ratio) * STROKE_SIDE / 2
        big = ndi.grey_dilation(big, footprint=_disk(radius))
    elif ratio > THIN_PEN * MNIST_STROKE:
        disk = _disk((ratio - 1.1 * MNIST_STROKE) * STROKE_SIDE / 2)
        reach = disk.shape[0] // 2
        if depth.min() == 0:
            # The erosion leaves as ink only pixels deeper in the strokes than the disk reaches, and
            # it is kept only if they are over a fifth of the strokes: count them first. On a solid
            # blob the disk grows as wide as the blob, and eroding by it took up to seconds per crop.
            erode = np.count_nonzero(depth * depth > reach * reach + 0.5) > 0.2 * np.count_nonzero(depth)
        else:
            # Ink from edge to edge. A block as wide as a bold stroke holds no stroke to thin (and
            # took seconds). A narrower bar is eroded as it always was: one MNIST training 1 is such
            # a bar, and train.py must still reproduce the bundled weights.
            erode = min(big.shape) < 1.5 * MNIST_STROKE * STROKE_SIDE
        if erode:
            # scipy leaves NaN where a disk far wider than `big` finds nothing (a solid bar): no ink there
            thinner = np.nan_to_num(_erode(big, disk), nan=0.0)
            if (thinner > 0.5).sum() > 0.2 * (big > 0.5).sum():
                big = thinner
    return big, ratio


def _disk(radius: float) -> np.ndarray:
    r = max(1, int(round(radius)))
    y, x = np.ogrid[-r : r + 1, -r : r + 1]
    return x * x + y * y <= r * r + 0.5


def _erode(img: np.ndarray, disk: np.ndarray) -> np.ndarray:
    """ndi.grey_erosion(img, footprint=disk), the same values. A disk is the union of the centred
    rectangles whose corners are where its rows narrow, and the minimum over a union is the least
    of the minima over its parts, each a separable filter: on an 80 px crop of a bold pen, 0.21
    against 1.13 ms at radius 8 and 0.58 against 3.35 ms at radius 12. A disk wider than the image
    goes to scipy as it is: the two extend such an image past its edge differently."""
    if disk.shape[0] > min(img.shape):
        return ndi.grey_erosion(img, footprint=disk)
    r = disk.shape[0] // 2
    half = np.count_nonzero(disk[r:], axis=1) // 2  # each row's half-width, from the centre row outwards
    out = None
    for dy in np.flatnonzero(np.append(half[1:] < half[:-1], True)):
        eroded = ndi.minimum_filter(img, size=(2 * dy + 1, 2 * half[dy] + 1))
        out = eroded if out is None else np.minimum(out, eroded, out=out)
    return out


@dataclass(frozen=True, eq=False)
class Part:
    """Some strokes of a written number: their ink, cropped to them, and where the crop sits."""

    ink: np.ndarray
    top: int
    left: int

    @property
    def box(self) -> tuple[int, int, int, int]:
        """(left, top, right, bottom) in the ink map's pixels."""
        return self.left, self.top, self.left + self.ink.shape[1], self.top + self.ink.shape[0]

    @cached_property
    def framed(self) -> np.ndarray | None:
        """frame(self.ink), made once: split_digits scores it and the recognizer then reads it."""
        return frame(self.ink)


def _part(ink: np.ndarray, top: int = 0, left: int = 0) -> Part | None:
    """The ink cropped to its strokes, or None when there are none."""
    box = _box(ink > 0)
    if box is None:
        return None
    rows, cols = box
    return Part(ink[rows, cols], top + rows.start, left + cols.start)


def join(parts: Sequence[Part]) -> Part:
    """Several parts as one: the strokes of one digit."""
    if len(parts) == 1:
        return parts[0]  # with its frame, if split_digits already made it
    left, top = min(p.left for p in parts), min(p.top for p in parts)
    right, bottom = max(p.box[2] for p in parts), max(p.box[3] for p in parts)
    ink = np.zeros((bottom - top, right - left), np.float32)
    for p in parts:
        window = ink[p.top - top : p.box[3] - top, p.left - left : p.box[2] - left]
        np.maximum(window, p.ink, out=window)
    return Part(ink, top, left)


def strokes(ink: np.ndarray) -> list[Part]:
    """A written number's ink map -> its separate strokes, left to right. Connected components
    that share most of their columns are taken as one (a 5's hat, a 4 drawn in two strokes);
    faint edge pixels go with the nearest stroke; dots and specks far smaller than the tallest
    stroke are dropped first, so that they join no digit."""
    labels, n = ndi.label(ink > STROKE_INK, structure=np.ones((3, 3)))
    if n == 0:
        return []
    boxes = ndi.find_objects(labels)
    tallest = max(b[0].stop - b[0].start for b in boxes)
    ids = [i + 1 for i, (rows, cols) in enumerate(boxes)
           if max(rows.stop - rows.start, cols.stop - cols.start) >= MIN_DIGIT_HEIGHT * tallest]
    if len(ids) > MAX_STROKES:  # grouping them costs up to the cube of their number: minutes for a speckled picture
        raise ImageError(f"Too many separate marks to read as one number ({len(ids)}). Crop the picture to the number.")
    groups = [[i] for i in ids]
    spans = [[boxes[i - 1][1].start, boxes[i - 1][1].stop, boxes[i - 1][0].start, boxes[i - 1][0].stop] for i in ids]
    a = 0
    while a < len(groups):
        for b in range(a + 1, len(groups)):
            (alo, ahi, atop, abot), (blo, bhi, btop, bbot) = spans[a], spans[b]
            merged = [min(alo, blo), max(ahi, bhi), min(atop, btop), max(abot, bbot)]
            overlap = min(ahi, bhi) - max(alo, blo)
            # an underline or a form's box overlaps every digit: it joins none of them
            if overlap >= SAME_DIGIT_OVERLAP * min(ahi - alo, bhi - blo) and merged[1] - merged[0] <= JOIN_ASPECT * (merged[3] - merged[2]):
                groups[a] += groups.pop(b)
                spans[a] = merged
                spans.pop(b)
                break
        else:
            a += 1
            continue
        a = 0  # a grown span may now overlap a group already passed
    group_of = np.zeros(n + 1, np.int32)
    for g, members in enumerate(groups):
        group_of[members] = g + 1
    near, (iy, ix) = ndi.distance_transform_edt(group_of[labels] == 0, return_distances=True, return_indices=True)
    owner = np.where((ink > 0) & (near <= HALO), group_of[labels[iy, ix]], 0)
    parts = [_part(np.where(owner[box] == g + 1, ink[box], 0), box[0].start, box[1].start)
             for g, box in enumerate(ndi.find_objects(owner)) if box is not None]
    return sorted((p for p in parts if p is not None), key=lambda p: p.left)


def cuts(part: Part) -> list[tuple[Part, Part]]:
    """Ways to cut touching digits apart: down the columns with least ink in the middle half."""
    w = part.ink.shape[1]
    profile = ndi.uniform_filter1d((part.ink > STROKE_INK).sum(axis=0).astype(np.float32), 3)
    lo, hi = w // 4, w - w // 4
    found: list[int] = []
    for c in lo + np.argsort(profile[lo:hi], kind="stable"):
        if all(abs(c - f) > max(2, w // 20) for f in found):
            found.append(int(c))
        if len(found) == CUT_TRIES:
            break
    pairs = []
    for c in found:
        left, right = _part(part.ink[:, :c], part.top, part.left), _part(part.ink[:, c:], part.top, part.left + c)
        if left is not None and right is not None:
            pairs.append((left, right))
    return pairs


def split_digits(ink: np.ndarray, cost: Callable[[list[np.ndarray]], np.ndarray]) -> list[Part]:
    """A written number's ink map -> one Part per digit, left to right.

    Segmentation by recognition: the strokes are grouped into digits in whichever way the
    network reads best. `cost` takes MNIST frames and returns, per frame, how poor a digit it is
    (the recognizer's -log p of its best class plus a fixed cost per digit, so that fewer,
    confident digits win). A stroke wider than tall may be two touching digits: it is cut where
    the halves read best, if they read better than the whole. Neighbouring strokes with no gap
    between them (a 5's hat drawn apart, a 0 with a break) are joined when one digit reads better.
    """
    parts = strokes(ink)
    if not parts:
        return []
    atoms: list[Part] = []
    while parts:
        p = parts.pop()
        pairs = cuts(p) if p.ink.shape[1] > TOUCHING_ASPECT * p.ink.shape[0] else []
        if pairs:
            costs = _costs([p] + [half for pair in pairs for half in pair], cost)
            split = costs[1::2] + costs[2::2]
            if split.min() < costs[0]:
                parts += pairs[int(np.argmin(split))]  # each half may still be touching digits
                continue
        atoms.append(p)
    atoms.sort(key=lambda p: p.left)

    runs = []  # (first, stop) ranges of atoms that could be one digit
    for i in range(len(atoms)):
        runs.append((i, i + 1))
        for j in range(i + 1, min(i + MAX_JOIN, len(atoms))):
            run = atoms[i : j + 1]
            height = max(p.box[3] for p in run) - min(p.top for p in run)
            width = max(p.box[2] for p in run) - run[0].left
            if atoms[j].left - max(p.box[2] for p in run[:-1]) > JOIN_GAP * height or width > JOIN_ASPECT * height:
                break
            runs.append((i, j + 1))
    candidates = {(i, j): join(atoms[i:j]) for i, j in runs}
    costs = _costs(list(candidates.values()), cost)
    best, back = [0.0] + [np.inf] * len(atoms), [0] * (len(atoms) + 1)
    for (i, j), c in sorted(zip(candidates, costs), key=lambda rc: rc[0][1]):
        if best[i] + c < best[j]:
            best[j], back[j] = best[i] + c, i
    digits, j = [], len(atoms)
    while j > 0:
        digits.append(candidates[back[j], j])
        j = back[j]
    return digits[::-1]


def _costs(parts: list[Part], cost: Callable[[list[np.ndarray]], np.ndarray]) -> np.ndarray:
    frames = [p.framed for p in parts]
    out = np.full(len(parts), np.inf)
    readable = [k for k, f in enumerate(frames) if f is not None]
    if readable:
        out[readable] = cost([frames[k] for k in readable])
    return out


def to_mnist(src: object) -> np.ndarray | None:
    """Any image -> its (28, 28) MNIST framing, or None when it holds no ink."""
    framed = to_mnist_with_pen(src)
    return None if framed is None else framed[0]


def to_mnist_with_pen(src: object) -> tuple[np.ndarray, float] | None:
    """to_mnist(src), and how bold its pen was (see frame_with_pen)."""
    return frame_with_pen(ink_map(load_image(src, DIGIT_SIDE)))


if __name__ == "__main__":
    for name in sys.argv[1:]:
        view = to_mnist(name)
        target = Path(name).with_suffix(".mnist.png")
        if view is None:
            print(f"{name}: no ink found")
        else:
            Image.fromarray((view * 255).astype(np.uint8)).resize((280, 280), Image.Resampling.NEAREST).save(target)
            print(f"{name}: wrote {target}")
