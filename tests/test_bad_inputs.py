"""Odd and hostile files sent to the running app's /predict endpoint: each is read correctly or
refused with a clear message that shows no traceback and no server path, and the app keeps serving."""

from __future__ import annotations

import io
import struct
import zlib
from pathlib import Path

import httpx
import numpy as np
import pytest
from gradio_client import Client, handle_file
from PIL import Image

SEVEN = 0  # tests/data/mnist_test_500.npz index of the digit the readable files show


@pytest.fixture(scope="module")
def client(app_url):
    return Client(app_url, verbose=False)


@pytest.fixture(scope="module")
def digit(mnist) -> tuple[Image.Image, str]:
    """An MNIST test digit, black on white at 280 px, and its label."""
    images, labels = mnist
    return Image.fromarray(255 - images[SEVEN]).resize((280, 280), Image.Resampling.BICUBIC), str(labels[SEVEN])


def png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png_header(width: int, height: int) -> bytes:
    """A PNG signature and IHDR (8-bit grey) for any size, even one Pillow refuses to write."""
    return b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0))


def bomb() -> bytes:
    """A 40000x40000 grey PNG of a few KB that claims 1.6 GB once decoded (its data stops after
    100 rows: the size in the header is what a decoder would act on)."""
    rows = zlib.compress(b"\x00" * (40_000 + 1) * 100, 9)
    return png_header(40_000, 40_000) + png_chunk(b"IDAT", rows) + png_chunk(b"IEND", b"")


def encoded(img: Image.Image, fmt: str, **kw) -> bytes:
    buf = io.BytesIO()
    img.save(buf, fmt, **kw)
    return buf.getvalue()


REFUSED = {  # file name -> (bytes maker, words the message must hold)
    "empty.png": (lambda d: b"", "not an image"),
    "random.png": (lambda d: np.random.default_rng(0).bytes(5000), "not an image"),
    "text.png": (lambda d: b"this is text, not a picture\n" * 10, "not an image"),
    "truncated.png": (lambda d: encoded(d, "PNG")[:400], "not an image"),
    "truncated.jpg": (lambda d: encoded(d.convert("RGB"), "JPEG")[:300], "not an image"),
    "bomb.png": (lambda d: bomb(), "too large"),
    "drawing.svg": (lambda d: b'<svg xmlns="http://www.w3.org/2000/svg" width="28" height="28"><path d="M4 4h20L10 24" stroke="black"/></svg>', "not an image"),
    "zero.png": (lambda d: png_header(0, 0) + png_chunk(b"IEND", b""), "not an image"),
}


@pytest.mark.parametrize("endpoint", ["/predict", "/read"])
@pytest.mark.parametrize("name", REFUSED)
def test_bad_files_get_a_clear_message_and_the_app_keeps_serving(client, digit, tmp_path, name, endpoint):
    make, words = REFUSED[name]
    path = tmp_path / name
    path.write_bytes(make(digit[0]))
    with pytest.raises(Exception) as refused:
        client.predict(handle_file(str(path)), api_name=endpoint)
    message = str(refused.value)
    assert words in message
    assert "Traceback" not in message and str(tmp_path) not in message and "/tmp" not in message
    good = tmp_path / "good.png"
    digit[0].save(good)
    assert client.predict(handle_file(str(good)), api_name="/predict")["label"] == digit[1]


def exif_rotated(d: Image.Image) -> bytes:
    """The digit stored turned a quarter, with the EXIF orientation (6) that turns it back."""
    exif = Image.Exif()
    exif[0x0112] = 6
    return encoded(d.convert("RGB").rotate(90, expand=True), "JPEG", exif=exif, quality=95)


def animated(d: Image.Image) -> bytes:
    frames = [d.convert("P"), Image.new("P", d.size, 255)]
    return encoded(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=100, loop=0)


def palette_with_transparency(d: Image.Image) -> bytes:
    """Ink in palette index 0, the rest transparent: only the transparency says where the digit is."""
    ink = np.asarray(d) < 128
    p = Image.fromarray(np.where(ink, 0, 1).astype(np.uint8), "P")
    p.putpalette([0, 0, 0, 0, 0, 0] + [0, 0, 0] * 254)
    return encoded(p, "PNG", transparency=1)


READ = {  # file name -> bytes maker
    "sixteen_bit.png": lambda d: encoded(Image.fromarray(np.asarray(d, np.uint16) * 257), "PNG"),
    "cmyk.jpg": lambda d: encoded(d.convert("CMYK"), "JPEG", quality=95),
    "palette_transparency.png": palette_with_transparency,
    "exif_rotated.jpg": exif_rotated,
    "animated.gif": animated,
    "huge_photo.jpg": lambda d: encoded(d.convert("RGB").resize((6000, 6000), Image.Resampling.BILINEAR), "JPEG", quality=80),
}


@pytest.mark.parametrize("name", READ)
def test_odd_but_legitimate_images_are_read(client, digit, tmp_path, name):
    path = tmp_path / name
    path.write_bytes(READ[name](digit[0]))
    assert client.predict(handle_file(str(path)), api_name="/predict")["label"] == digit[1]


def test_an_upload_over_the_size_cap_is_refused_and_the_app_keeps_serving(app_url, client, digit, tmp_path):
    from app import MAX_FILE_SIZE

    huge = tmp_path / "huge.png"
    huge.write_bytes(encoded(digit[0], "PNG") + b"\0" * MAX_FILE_SIZE)
    with huge.open("rb") as f:
        refused = httpx.post(app_url + "gradio_api/upload", files={"files": f}, timeout=60)
    assert refused.status_code == 413 and "maximum allowed size" in refused.text
    with pytest.raises(Exception, match="exceeds the maximum file size"):  # gradio_client checks before sending
        client.predict(handle_file(str(huge)), api_name="/predict")
    good = tmp_path / "good.png"
    digit[0].save(good)
    assert client.predict(handle_file(str(good)), api_name="/predict")["label"] == digit[1]
