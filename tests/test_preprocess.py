"""The MNIST framing of real-looking inputs: colours, sizes, places, pens, photos, file formats."""

import gc
import io
import struct
import tracemalloc
import warnings
import zlib

import numpy as np
import pytest
from PIL import Image, ImageDraw
from scipy import ndimage as ndi
from skimage.filters import threshold_otsu

import preprocess
import render
from conftest import ROOT
from preprocess import DIGIT_SIDE, MNIST_BOX, MNIST_CENTRE, WORK_SIDE, ImageError, frame, load_image, to_mnist


def top(probs: dict[str, float]) -> str:
    return max(probs, key=probs.get)


def on_canvas(digit: np.ndarray, side: int, size: int, top_left: tuple[int, int], fg=(0, 0, 0), bg=(255, 255, 255)) -> Image.Image:
    ink = np.asarray(Image.fromarray(digit).resize((size, size), Image.Resampling.BICUBIC), np.float32)[..., None] / 255
    canvas = np.tile(np.array(bg, np.float32), (side, side, 1))
    y, x = top_left
    canvas[y : y + size, x : x + size] = canvas[y : y + size, x : x + size] * (1 - ink) + np.array(fg) * ink
    return Image.fromarray(canvas.astype(np.uint8))


def test_frame_has_mnist_geometry(mnist):
    frame = to_mnist(on_canvas(mnist[0][5], 800, 500, (250, 40)))
    rows, cols = np.nonzero(frame > 0.1)
    assert max(np.ptp(rows), np.ptp(cols)) + 1 == pytest.approx(MNIST_BOX, abs=1)
    assert ndi.center_of_mass(frame) == pytest.approx((MNIST_CENTRE, MNIST_CENTRE), abs=1.0)
    assert frame.max() == pytest.approx(1.0)


def test_distance_by_table_lookup_equals_the_direct_formula():
    pixels = np.random.default_rng(0).integers(0, 256, (50, 60, 3), dtype=np.uint8)
    colour = np.float32([0.2, 0.9, 0.5])
    direct = preprocess._distance(pixels.astype(np.float32) / np.float32(255), colour)
    assert np.array_equal(preprocess._distance_to_colour(pixels, colour), direct)


def test_shortcut_statistics_equal_the_library_ones(mnist):
    canvas = np.asarray(render.canvas(mnist[0][0], np.random.default_rng(0), "red on blue").convert("RGB"))
    mostly_background, one_colour = preprocess._distance_to_background(canvas)  # over half exactly 0: the shortcuts apply
    assert one_colour
    noisy = np.random.default_rng(1).random((60, 70), dtype=np.float32)  # no value repeats: the library runs
    for dist in (mostly_background, noisy):
        assert preprocess._otsu(dist) == threshold_otsu(dist)
        strokes = dist[dist > 0.3] if dist is mostly_background else dist  # a solid stroke's colour: over a tenth at the maximum
        assert preprocess._top_decile(strokes) == np.percentile(strokes, 90)
        for mode in (dist.min(), dist.flat[0]):
            assert preprocess._median(dist.ravel(), mode) == np.median(dist)
            assert type(preprocess._median(dist.ravel(), mode)) is type(np.median(dist))  # float32 stays float32


def test_shrinking_only_the_visible_blocks_equals_pillows_reduce(mnist):
    rng = np.random.default_rng(0)
    drawn = render.canvas(mnist[0][3], rng, "blue on transparent", side=803)  # a last, partial block
    noisy = np.asarray(drawn).copy()
    noisy[..., :3] = rng.integers(0, 256, noisy[..., :3].shape)  # colours under alpha 0 must not leak
    edge = np.zeros((37, 50, 4), np.uint8)
    edge[20:, 41:] = rng.integers(1, 256, (17, 9, 4))  # visible up to the far corner
    black = edge.copy()
    black[..., :3] = 0  # black ink: only its alpha shows it
    images = [drawn, Image.fromarray(noisy, "RGBA"), Image.fromarray(edge, "RGBA"), Image.fromarray(black, "RGBA"),
              drawn.convert("LA"), Image.fromarray(black, "RGBA").convert("LA"),
              Image.new("RGBA", (400, 400)), Image.new("RGBA", (401, 399), (10, 20, 30, 255))]
    for image in images:
        for factor in (1, 2, 3, 4):
            shrunk, reduced = preprocess._shrink(image, factor), image.reduce(factor)
            assert (shrunk.mode, shrunk.size) == (reduced.mode, reduced.size)
            assert shrunk.tobytes() == reduced.tobytes()


def test_an_opaque_alpha_channel_changes_nothing(mnist):
    canvas = render.canvas(mnist[0][2], np.random.default_rng(2), "yellow on green").convert("RGB")
    assert load_image(canvas).mode == "RGB" and load_image(canvas.convert("RGBA")).mode == "RGBA"
    assert np.array_equal(to_mnist(canvas.convert("RGBA")), to_mnist(canvas))


def test_colours_size_and_place_do_not_change_the_frame(mnist):
    digit = mnist[0][7]
    reference = to_mnist(on_canvas(digit, 400, 300, (50, 50)))
    variants = [
        on_canvas(digit, 800, 220, (560, 20), fg=(255, 255, 255), bg=(51, 51, 51)),  # small, dark mode, corner
        on_canvas(digit, 280, 270, (5, 5), fg=(220, 40, 40), bg=(30, 60, 160)),  # fills the canvas, coloured
        on_canvas(digit, 600, 400, (100, 150), fg=(250, 220, 40), bg=(20, 110, 60)),
    ]
    for image in variants:
        assert np.abs(to_mnist(image) - reference).mean() < 0.04


@pytest.mark.parametrize("scheme", list(render.NAMED_SCHEMES))
def test_canvas_renders_are_read(recognizer, mnist, scheme):
    rng = np.random.default_rng(1)
    images, labels = mnist
    renders = [render.canvas(images[i], rng, scheme=scheme) for i in range(20)]
    read = [top(p) for p in recognizer.classify_batch(renders)]
    assert sum(r == str(y) for r, y in zip(read, labels[:20])) >= 19


@pytest.mark.parametrize("make, seed", [(render.photo, 2), (render.desk, 3)], ids=["photo", "sheet on a desk"])
def test_photo_renders_are_read(recognizer, mnist, make, seed):
    """Photos of paper, and photos where the desk shows around a tilted sheet: its edges once became
    strokes beside the digit, or the desk passed for the background and the sheet for ink (6 of
    these 20 desk photos were read)."""
    rng = np.random.default_rng(seed)
    images, labels = mnist
    photos = [make(images[i], rng) for i in range(20)]
    read = [top(p) for p in recognizer.classify_batch(photos)]
    assert sum(r == str(y) for r, y in zip(read, labels[:20])) >= 19


def test_only_photos_are_searched_for_a_sheet(mnist, monkeypatch):
    """Drawings and MNIST digits have an edge of exactly one colour and never reach the sheet search,
    so their frames, and the weights train.py makes from them, stay as they were."""
    found = []
    search = preprocess._sheet
    monkeypatch.setattr(preprocess, "_sheet", lambda *args: found.append(search(*args)) or found[-1])
    rng = np.random.default_rng(4)
    images = mnist[0]
    for i, scheme in enumerate([*render.NAMED_SCHEMES, None] * 2):
        to_mnist(render.canvas(images[i], rng, scheme=scheme))
    for i in range(5):
        to_mnist(images[i])
    assert len(found) == 17 and all(sheet is None for sheet in found)
    found.clear()
    for i in range(5):
        to_mnist(render.desk(images[i], rng))
    assert sum(sheet is not None for sheet in found) >= 4  # a low, blurred desk edge may pass unseen


def _noise(side: int) -> np.ndarray:
    return np.random.default_rng(side).integers(0, 256, (side, side, 3), dtype=np.uint8)


def _strip() -> np.ndarray:
    strip = np.random.default_rng(0).integers(28, 33, (12, 200, 3), dtype=np.uint8)
    strip[3:7] += 180
    return strip


@pytest.mark.parametrize("image", [_noise(2), _noise(3), _noise(4), _noise(6), _strip()], ids=["noise 2", "noise 3", "noise 4", "noise 6", "strip"])
def test_degenerate_sheets_leave_no_nan_and_raise_nothing(image):
    """Noise has no edge of one colour, so it is searched, and a sheet a few px wide has no rim to
    leave out. A light strip a few px tall across a dark photo is a sheet whose rim leaves none of
    the light field's samples on it (found in review: the fit got no pixels and raised)."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # numpy warns on the median of nothing, and returns NaN
        ink = preprocess.ink_map(Image.fromarray(image))
    assert np.isfinite(ink).all()


def test_specks_and_a_dark_photo_edge_are_ignored(mnist):
    digit = mnist[0][9]
    clean = on_canvas(digit, 600, 300, (150, 150))
    noisy = np.asarray(clean).copy()
    rng = np.random.default_rng(0)
    for y, x in rng.integers(0, 590, size=(12, 2)):
        noisy[y : y + 3, x : x + 3] = 0  # pencil dots
    noisy[:, :25] = (40, 35, 30)  # the table beside the page
    assert np.abs(to_mnist(Image.fromarray(noisy)) - to_mnist(clean)).mean() < 0.03


@pytest.mark.parametrize("margin", [0, 2])
@pytest.mark.parametrize("label, strokes", [
    ("7", [((100, 60), (300, 60)), ((300, 60), (180, 340))]),
    ("2", [((110, 120), (200, 60)), ((200, 60), (290, 120)), ((290, 120), (110, 340)), ((110, 340), (300, 340))]),
], ids=["seven", "two"])
def test_a_stroke_along_the_edge_of_a_drawing_cropped_tight_is_kept(recognizer, label, strokes, margin):
    """A 7's bar or a 2's base along the edge of a drawing cropped to its ink runs on into the digit:
    a stroke, not the table at a photo's edge, which is dropped (test above)."""
    drawing = Image.new("L", (400, 400), 255)
    for a, b in strokes:
        ImageDraw.Draw(drawing).line([a, b], fill=0, width=22)
    box = np.array(drawing.point(lambda v: 255 - v).getbbox()) + np.array([-margin, -margin, margin, margin])
    tight = drawing.crop(tuple(box))
    assert top(recognizer.classify(tight)) == label


@pytest.mark.parametrize("digit", [0, 6])
def test_a_dark_strip_along_a_drawings_edge_is_dropped_even_where_the_digit_touches_it(recognizer, mnist, digit):
    """A scanner lid's shadow, a black crop strip: ink from end to end along the top of a drawing
    that has room below the digit, unlike a tight crop's stroke (test above)."""
    images, labels = mnist
    index = int(np.flatnonzero(labels == digit)[0])
    ink = np.asarray(Image.fromarray(images[index]).resize((200, 200), Image.Resampling.BICUBIC), np.float32) / 255
    page = np.full((300, 300), 255, np.float32)
    page[0:200, 50:250] *= 1 - ink
    page[0:35] = 0
    assert top(recognizer.classify(page.astype(np.uint8))) == str(digit)


@pytest.mark.parametrize("pen", [-0.4, 1.0], ids=["hairline", "bold"])
def test_thin_and_thick_pens_are_read(recognizer, mnist, pen):
    images, labels = mnist
    strokes = [render._pen(images[i], 500, pen) for i in range(20)]
    read = [top(p) for p in recognizer.classify_batch([(1 - s) * 255 for s in strokes])]
    assert sum(r == str(y) for r, y in zip(read, labels[:20])) >= 19


@pytest.mark.parametrize("mode", ["1", "L", "LA", "P", "RGB", "RGBA", "CMYK", "I;16", "I", "F"])
def test_every_pillow_mode_is_read(recognizer, mnist, tmp_path, mode):
    digit = on_canvas(mnist[0][2], 200, 160, (20, 20))
    image = digit.convert("RGBA").convert(mode) if mode not in ("I;16", "I", "F") else _scaled(digit, mode)
    suffix = {"CMYK": "jpg", "F": "tiff"}.get(mode, "png")
    path = tmp_path / f"digit.{suffix}"
    image.save(path)
    assert top(recognizer.classify(path)) == str(mnist[1][2])
    assert top(recognizer.classify(image)) == str(mnist[1][2])


def _scaled(image: Image.Image, mode: str) -> Image.Image:
    """A high-bit-depth copy, using the full 16-bit range as scanners do."""
    a = np.asarray(image.convert("L"), np.float32) * 257
    return Image.fromarray(a.astype(np.uint16), "I;16") if mode == "I;16" else Image.fromarray(a.astype(np.int32 if mode == "I" else np.float32))


def test_palette_transparency_is_read(recognizer, mnist, tmp_path):
    ink = mnist[0][4]
    rgba = Image.fromarray(np.dstack([np.zeros_like(ink)] * 3 + [ink]), "RGBA").resize((140, 140))
    path = tmp_path / "digit.png"
    rgba.quantize(colors=16).save(path)
    with Image.open(path) as saved:
        assert saved.mode == "P" and "transparency" in saved.info
    assert top(recognizer.classify(path)) == str(mnist[1][4])


@pytest.mark.parametrize("suffix", ["jpg", "tif"])
def test_exif_orientation_is_honoured(recognizer, mnist, tmp_path, suffix):
    upright = on_canvas(mnist[0][1], 400, 250, (30, 100)).crop((0, 0, 400, 300))  # wider than tall
    stored = upright.rotate(90, expand=True)  # what a phone held sideways writes
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 degrees clockwise to display"
    path = tmp_path / f"sideways.{suffix}"
    stored.save(path, exif=exif, **({"quality": 95} if suffix == "jpg" else {}))
    assert load_image(path).info["source_size"] == upright.size
    assert np.abs(to_mnist(path) - to_mnist(upright)).mean() < 0.03
    assert top(recognizer.classify(path)) == str(mnist[1][1])
    with Image.open(path) as opened:  # opened by the caller and passed on
        assert np.abs(to_mnist(opened) - to_mnist(upright)).mean() < 0.03
        assert [d.box for d in recognizer.read(opened).digits] == [d.box for d in recognizer.read(path).digits]


@pytest.mark.parametrize("bits", [10, 12, 16])
def test_a_scan_of_any_bit_depth_in_a_16_bit_file_is_read(recognizer, mnist, tmp_path, bits):
    """Scanners and cameras store 10- and 12-bit levels in 16-bit files: the top level is 1023 or 4095."""
    digit = on_canvas(mnist[0][2], 200, 160, (20, 20))
    levels = np.rint(np.asarray(digit.convert("L"), np.float32) / 255 * (2**bits - 1)).astype(np.uint16)
    Image.fromarray(levels, "I;16").save(tmp_path / "scan.png")
    assert top(recognizer.classify(tmp_path / "scan.png")) == str(mnist[1][2])
    assert top(recognizer.classify(levels)) == str(mnist[1][2])


def test_a_huge_16_bit_scan_is_shrunk_before_it_becomes_floats():
    scan = Image.fromarray(np.full((4000, 6000), 60000, np.uint16), "I;16")  # 48 MB of levels
    tracemalloc.start()
    image = load_image(scan)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 3 * 4000 * 6000 * 2  # numpy's copy of the levels (Pillow hands them over as bytes first); made floats, over 8 times that
    assert max(image.size) == WORK_SIDE and image.width / image.height == pytest.approx(1.5, abs=0.01)
    assert np.asarray(image).min() == round(60000 / 65535 * 255)  # its level kept: a 16-bit file's top is 65535


def test_premultiplied_grey_is_read(recognizer, mnist):
    digit = on_canvas(mnist[0][2], 200, 160, (20, 20))
    assert top(recognizer.classify(digit.convert("LA").convert("La"))) == str(mnist[1][2])


def test_an_animated_gif_file_is_closed_once_read(mnist, tmp_path):
    frames = [Image.fromarray(255 - mnist[0][0]), Image.new("L", (28, 28), 255)]
    frames[0].save(tmp_path / "anim.gif", save_all=True, append_images=frames[1:], duration=100, loop=0)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        load_image(tmp_path / "anim.gif")
        gc.collect()  # an open file left behind warns when it is collected
    assert not [w for w in caught if issubclass(w.category, ResourceWarning)]


def test_a_faint_dark_pen_on_a_transparent_layer_is_read(recognizer, mnist):
    """A stroke layer whose ink is never over half opaque (a pen at 40% opacity): its colour, not
    the transparent paper's, decides the backdrop it is read against."""
    ink = np.asarray(Image.fromarray(mnist[0][3]).resize((200, 200), Image.Resampling.BICUBIC))
    layer = np.dstack([np.zeros_like(ink)] * 3 + [(ink * 0.4).astype(np.uint8)])
    assert top(recognizer.classify(layer)) == str(mnist[1][3])


def test_huge_images_are_shrunk_before_analysis():
    image = load_image(Image.new("RGB", (6000, 4000), "white"))
    assert max(image.size) == WORK_SIDE and image.mode == "RGB"  # no alpha to carry: an opaque one only costs time
    digit = load_image(Image.new("RGB", (800, 600), "white"), side=DIGIT_SIDE)
    assert digit.size == (DIGIT_SIDE, DIGIT_SIDE * 3 // 4) and digit.info["source_size"] == (800, 600)


def test_decompression_bomb_is_refused(tmp_path):
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", 40000, 40000, 8, 0, 0, 0, 0)
    bomb = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\0" * 40001)) + chunk(b"IEND", b"")
    (tmp_path / "bomb.png").write_bytes(bomb)
    with pytest.raises(ImageError, match="too large"):
        load_image(tmp_path / "bomb.png")


@pytest.mark.parametrize("content", [b"", b"hello, this is text", bytes(range(256)) * 4], ids=["empty", "text", "random"])
def test_non_images_get_a_clear_error(tmp_path, content):
    path = tmp_path / "fake.png"
    path.write_bytes(content)
    with pytest.raises(ImageError, match="not an image"):
        load_image(path)


def test_truncated_png_gets_a_clear_error(tmp_path, mnist):
    buf = io.BytesIO()
    Image.fromarray(mnist[0][0]).resize((300, 300)).save(buf, "PNG")
    (tmp_path / "cut.png").write_bytes(buf.getvalue()[: len(buf.getvalue()) // 2])
    with pytest.raises(ImageError, match="not an image"):
        load_image(tmp_path / "cut.png")
    with pytest.raises(ImageError, match="not an image"):  # opened by the caller, not yet decoded
        to_mnist(Image.open(tmp_path / "cut.png"))


@pytest.mark.filterwarnings("ignore::PIL.Image.DecompressionBombWarning")  # Pillow warns on opening it
def test_an_opened_bomb_is_refused_before_it_is_decoded(tmp_path):
    Image.new("L", (8000, 6000)).save(tmp_path / "big.png")  # 48 MP: Pillow itself only warns below 80
    with pytest.raises(ImageError, match="too large"):
        load_image(Image.open(tmp_path / "big.png"))


@pytest.mark.parametrize("label", ["1", "4", "5"])
def test_the_table_at_a_photo_edge_is_not_read_as_ink(recognizer, label):
    """Renders (benchmarks/render.py) where a dark table edge and its blurred inner line once
    became a bar across the digit and misled the network."""
    assert top(recognizer.classify(ROOT / "tests" / "data" / f"photo_table_edge_{label}.jpg")) == label


def test_a_solid_bar_is_framed_without_nan():
    """A dash with no background inside its box: thinning it must not leave NaN (scipy's erosion does
    where its footprint is far wider than the image)."""
    bar = np.full((3, 13), 0.9, np.float32)
    framed = frame(bar)
    assert framed is not None and np.isfinite(framed).all() and framed.max() == 1.0


def _always_eroded(crop: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """_normalise_stroke's study-size crop and its thinning of it, eroding whatever the erosion
    leaves (as it did before it learnt to skip the erosions it throws away)."""
    h, w = crop.shape
    scale = preprocess.STROKE_SIDE / max(h, w)
    big = np.asarray(Image.fromarray(crop, "F").resize((max(1, round(w * scale)), max(1, round(h * scale))), Image.Resampling.BILINEAR))
    ratio = preprocess.stroke_width(ndi.distance_transform_edt(big > 0.5)) / preprocess.STROKE_SIDE
    if ratio > 1.5 * preprocess.MNIST_STROKE:
        disk = preprocess._disk((ratio - 1.1 * preprocess.MNIST_STROKE) * preprocess.STROKE_SIDE / 2)
        thinner = np.nan_to_num(ndi.grey_erosion(big, footprint=disk), nan=0.0)
        if (thinner > 0.5).sum() > 0.2 * (big > 0.5).sum():
            return big, thinner
    return big, big


def test_thinning_skips_only_the_erosions_it_would_throw_away(mnist, monkeypatch):
    """Bold digits are thinned exactly as when every erosion ran; blobs no erosion can thin are
    spared one as wide as themselves, which took up to seconds per crop."""
    square = np.ones((120, 120), np.float32)  # no background inside its box: a redacted digit
    holed = square.copy()
    holed[58:62, 58:62] = 0  # a pinhole makes the whole square one deep stroke
    triangle = np.tri(120, dtype=np.float32)
    bar = np.ones((120, 12), np.float32)  # a straight 1 with no background in its box: eroded as ever
    bold = [render._pen(mnist[0][i], 120, 1.0) for i in range(12)]
    thinned = 0
    for crop in [*bold, bar, square, holed, triangle]:
        crop = crop[preprocess._box(crop > 0.05)]
        big, expected = _always_eroded(crop)
        assert np.array_equal(preprocess._normalise_stroke(crop)[0], expected)
        thinned += expected is not big
    assert thinned >= 8  # the bold pens' erosions are kept

    def refuse(*args, **kwargs):
        raise AssertionError("eroded a blob that no erosion can thin")

    monkeypatch.setattr(preprocess, "_erode", refuse)
    for blob in (square, holed, triangle):
        assert frame(blob) is not None


def test_eroding_by_a_disk_equals_scipys_grey_erosion():
    rng = np.random.default_rng(0)
    paths = {"rectangles": 0, "scipy": 0}
    for k in range(400):
        img = rng.random(tuple(rng.integers(1, 60, 2)), dtype=np.float32)
        if k % 2:
            img = (img > 0.4).astype(np.float32)  # strokes and background, as a crop's ink is
        disk = preprocess._disk(rng.uniform(0.5, 20))
        paths["scipy" if disk.shape[0] > min(img.shape) else "rectangles"] += 1
        assert np.array_equal(preprocess._erode(img, disk), ndi.grey_erosion(img, footprint=disk), equal_nan=True)
    assert min(paths.values()) > 50


def test_blas_runs_on_one_thread_once_preprocess_is_imported():
    from threadpoolctl import threadpool_info

    blas = [lib for lib in threadpool_info() if lib["user_api"] == "blas"]
    assert blas and all(lib["num_threads"] == 1 for lib in blas)


def test_cleaning_keeps_the_digit_and_drops_specks_strays_and_edge_frames():
    mask = np.zeros((200, 200), bool)
    mask[60:140, 90:110] = True  # the digit's stroke
    mask[100:104, 1:5] = True  # a speck near the left edge: under MIN_SPECK of the stroke
    mask[170:178, 170:178] = True  # a stray mark far away: in a number, another digit's dot
    mask[194:200, 5:195] = True  # a photo's dark frame along the bottom edge
    digit = np.zeros_like(mask)
    digit[60:140, 90:110] = True
    assert np.array_equal(preprocess._clean(mask), digit)
    number = digit.copy()
    number[170:178, 170:178] = True
    assert np.array_equal(preprocess._clean(mask, one_digit=False), number)


def test_pen_width_is_measured_against_mnists_pen(mnist):
    """MNIST's own digits measure about 1; the same digits drawn on a canvas with a pen twice as
    bold measure over 1.5, where framing thins them; a blank canvas has no pen."""
    digits = mnist[0][:40]
    as_published = np.median([preprocess.to_mnist_with_pen(d)[1] for d in digits])
    bold = np.median([preprocess.to_mnist_with_pen(Image.fromarray(np.uint8(255 * render._pen(d, 200, 1.0))))[1] for d in digits])
    assert 0.85 < as_published < 1.2
    assert bold > 1.5
    assert preprocess.to_mnist_with_pen(Image.new("RGB", (200, 200), "white")) is None
