"""The app in a real browser: Debian's Chromium, driven by Playwright, draws MNIST test digits
with the mouse (pen paths traced from their skeletons) and uploads a photo.

Needs /usr/bin/chromium (`apt-get install chromium`); Playwright never downloads a browser here.
"""

from __future__ import annotations

import io
import itertools
import json
import os
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageColor
from playwright.sync_api import Page, sync_playwright
from playwright.sync_api import TimeoutError as PlaywrightTimeout
from scipy import ndimage as ndi

from preprocess import UNREADABLE
from strokes import trace

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update"]
DIGIT_SHARE = 0.5  # drawn digits span this share of the visible canvas
SETTLE_S = 1.5  # the verdict must stay the same this long to count as the answer
STROKE_PAUSE_S = 1.5  # under software WebGL the canvas is busy exporting for a moment after each stroke
CLEAR_PAUSE_S = 2.0  # lets a control's new value reach the page
RESET_REPORTS = 2  # a sketchpad given a new value by the server reports it this many times
RESET_TIMEOUT_S = 30  # ...within this (5-10 s under software WebGL); after it one report will do
QUIET_S = 1.5  # no further report this long means the canvas is ready for the pen
UNDO_RETRIES = 3  # extra Undo clicks allowed when the busy canvas misses one
UNDO_WAIT_MS = 15_000  # the page says the canvas is blank within this after the last Undo
NUDGE_S = 1.5  # s between pointer moves that wake a canvas which has not finished loading
VERDICTS = ("Looks like a", "This doesn't look like a digit")  # the verdicts that come with a prediction

if os.environ.get("SKIP_BROWSER_TESTS"):
    pytest.skip("SKIP_BROWSER_TESTS is set", allow_module_level=True)


@pytest.fixture(autouse=True)
def chromium_is_installed():
    """A missing browser fails these tests rather than skipping them, so that CI can't pass without them."""
    if not Path(CHROMIUM).exists():
        pytest.fail(f"needs Debian's chromium at {CHROMIUM} (apt-get install chromium), or SKIP_BROWSER_TESTS=1", pytrace=False)


CHANGES: dict[str, list[float]] = {}  # sketchpad elem_id -> when its change events reached the server's queue


def record_changes(app_url: str):
    """A request listener that notes each sketchpad change event the page sends, by sketchpad."""
    with urllib.request.urlopen(app_url + "config", timeout=30) as r:
        config = json.load(r)
    elem_ids = {c["id"]: c.get("props", {}).get("elem_id") for c in config["components"]}
    pads = {d["id"]: elem_ids.get(target) for d in config["dependencies"] for target, event in d["targets"] if event == "change"}

    def listener(request) -> None:
        if "/queue/join" in request.url and request.post_data:
            pad = pads.get(json.loads(request.post_data).get("fn_index"))
            if pad:
                CHANGES.setdefault(pad, []).append(time.monotonic())

    return listener


@pytest.fixture(scope="module")
def page(app_url):
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1300, "height": 1100})
        page.on("request", record_changes(app_url))
        page.goto(app_url)
        page.wait_for_selector("#sketchpad canvas", timeout=60_000)
        yield page
        browser.close()


def verdict(page: Page) -> str:
    return page.inner_text("#verdict").strip()


def answer(page: Page, timeout_s: float = 60, stale: str = "") -> str:
    """The digit that #prediction shows, once the verdict beside it has stopped changing (and is
    no longer `stale`, the verdict on the page before the input was given)."""
    deadline = time.monotonic() + timeout_s
    last, since = None, time.monotonic()
    while time.monotonic() < deadline:
        text = verdict(page)
        if text != last:
            last, since = text, time.monotonic()
        elif text.startswith(VERDICTS) and text != stale and time.monotonic() - since >= SETTLE_S:
            return page.inner_text("#prediction [data-testid=label-output-value]").strip()
        time.sleep(0.25)
    raise AssertionError(f"no settled prediction; the page says {last!r}")


def draw(page: Page, digit: np.ndarray, pad: str = "#sketchpad", where: float = 0.5) -> int:
    """Draw `digit` across DIGIT_SHARE of the canvas's height, centred `where` of its width along;
    returns the number of strokes drawn."""
    x, y, w, h = page.eval_on_selector(f"{pad} canvas", "e => { const r = e.getBoundingClientRect(); return [r.x, r.y, r.width, r.height]; }")
    side = DIGIT_SHARE * min(w, h)
    left, top = x + where * w - side / 2, y + (h - side) / 2
    strokes = trace(digit)
    for stroke in strokes:
        px = [(left + sx / 28 * side, top + sy / 28 * side) for sx, sy in stroke]
        page.mouse.move(*px[0])
        page.mouse.down()
        for point in px[1:]:
            page.mouse.move(*point)
        page.mouse.up()
        time.sleep(STROKE_PAUSE_S)
    return len(strokes)


def clear(page: Page, button: str = "#clear", pad: str = "sketchpad") -> None:
    """Press Clear and wait until the sketchpad has loaded the blank canvas.

    The blank canvas comes from the server. Under software WebGL the sketchpad takes seconds to
    load it and reports the new value twice; strokes drawn before both reports are wiped, in whole
    or in part. The second report often waits for the pointer to move over the canvas, so once the
    first has come the pointer is nudged there now and then (not often: each move costs a render).
    """
    x, y, w, h = page.eval_on_selector(f"#{pad} canvas", "e => { const r = e.getBoundingClientRect(); return [r.x, r.y, r.width, r.height]; }")
    pressed = time.monotonic()
    nudged = pressed - NUDGE_S  # the first report brings the first nudge
    page.click(button)
    for k in itertools.count():
        now, reports = time.monotonic(), [t for t in CHANGES.get(pad, []) if t > pressed]
        if reports and now - reports[-1] >= QUIET_S and (len(reports) >= RESET_REPORTS or now - pressed > RESET_TIMEOUT_S):
            return
        if now - pressed > 2 * RESET_TIMEOUT_S:
            raise AssertionError(f"#{pad} never reported its cleared canvas")
        if reports and now - nudged > NUDGE_S:
            page.mouse.move(x + w * (0.1 + 0.05 * (k % 2)), y + h * 0.1)
            nudged = time.monotonic()
        page.wait_for_timeout(200)  # unlike time.sleep, lets Playwright deliver the request events


def undo(page: Page, strokes: int) -> None:
    """Take the strokes back with the sketchpad's own Undo until the page says it is blank again.

    Between digits this is much quicker than Clear under software WebGL: nothing comes back from
    the server to be loaded. A click the busy canvas missed is made again.
    """
    clicks = strokes
    for _ in range(1 + UNDO_RETRIES):
        for _ in range(clicks):
            page.click("#sketchpad button[aria-label='Undo']")
            page.wait_for_timeout(300)
        try:
            page.wait_for_function("() => document.querySelector('#verdict').innerText.startsWith('Draw a digit')", timeout=UNDO_WAIT_MS)
            return
        except PlaywrightTimeout:
            clicks = 1
    raise AssertionError("Undo did not take the strokes back")


def set_colour(page: Page, elem_id: str, colour: str) -> None:
    page.click(f"#{elem_id} button.dialog-button")
    field = page.locator(f"#{elem_id} input[type=text]")
    field.fill(colour)
    field.press("Enter")
    page.click("h1")  # closes the colour dialog
    time.sleep(CLEAR_PAUSE_S)


def set_stroke_width(page: Page, width: int) -> None:
    field = page.locator("#stroke-width input[type=number]")
    field.fill(str(width))
    field.press("Enter")
    time.sleep(CLEAR_PAUSE_S)


def read_drawings(page: Page, digits) -> list[tuple[int, str]]:
    """Each digit drawn on a blank canvas: Clear before the first, Undo before each next one.
    The last digit stays on the canvas."""
    clear(page)
    results, strokes = [], 0
    for image, label in digits:
        if strokes:
            undo(page, strokes)
        strokes = draw(page, image)
        results.append((label, answer(page)))
    return results


@pytest.mark.parametrize(
    "stroke, background, width",
    [("#ffffff", "#333333", 8), ("#c81e1e", "#1e3ca0", 32)],
    ids=["thin-white-on-dark", "thick-red-on-blue"],
)
def test_drawn_digits_are_read(page, mnist, stroke, background, width):
    """One MNIST test digit of each class, drawn with colours and width set through the app's controls."""
    page.get_by_role("tab", name="Draw").click()
    set_colour(page, "stroke-color", stroke)
    set_colour(page, "background-color", background)
    set_stroke_width(page, width)
    images, labels = mnist
    nth = 0 if width < 20 else 1
    digits = [(images[np.flatnonzero(labels == d)[nth]], d) for d in range(10)]
    results = read_drawings(page, digits)
    assert sum(str(label) == got for label, got in results) >= 9, results
    shot = np.asarray(Image.open(io.BytesIO(page.locator("#sketchpad canvas").first.screenshot())).convert("RGB"), float)
    area = drawing_area(shot, background)
    assert near(area, background).sum() > 0.3 * shot[..., 0].size, "the background colour control did not repaint the canvas"
    assert near(area, stroke).mean() > 0.01, "the stroke colour control did not change the pen"


def test_the_sketchpads_own_bin_keeps_the_background_and_the_brush(page, mnist):
    """Gradio's bin empties a sketchpad to white with no tool chosen; ours repaints the chosen
    background and picks the brush again, so the next digit can be drawn at once."""
    page.get_by_role("tab", name="Draw").click()
    set_colour(page, "stroke-color", "#000000")
    set_colour(page, "background-color", "#1e3ca0")
    clear(page, "#sketchpad button[aria-label='Clear canvas']")
    page.wait_for_function("() => document.querySelector('#verdict').innerText.startsWith('Draw a digit')", timeout=UNDO_WAIT_MS)
    images, labels = mnist
    draw(page, images[np.flatnonzero(labels == 2)[0]])
    assert answer(page) == "2"
    shot = np.asarray(Image.open(io.BytesIO(page.locator("#sketchpad canvas").first.screenshot())).convert("RGB"), float)
    assert near(drawing_area(shot, "#1e3ca0"), "#1e3ca0").sum() > 0.3 * shot[..., 0].size
    set_colour(page, "background-color", "#ffffff")  # as the tests after this one expect


def test_the_draw_and_upload_tabs_each_show_their_own_reading(page, mnist):
    """The prediction beside the tabs is the shown tab's: a digit on the canvas, then a picture
    uploaded, then back to the canvas."""
    page.get_by_role("tab", name="Draw").click()
    clear(page)
    images, labels = mnist
    draw(page, images[np.flatnonzero(labels == 5)[0]])
    assert answer(page) == "5"
    before = upload(page, ROOT / "examples" / "mnist_7.png")
    assert answer(page, stale=before) == "7"
    for tab, digit in (("Draw", "5"), ("Upload", "7")):
        before = verdict(page)
        page.get_by_role("tab", name=tab).click()
        assert answer(page, stale=before) == digit


def near(pixels: np.ndarray, colour: str) -> np.ndarray:
    """Which of (..., 3) RGB pixels are close to the "#rrggbb" `colour`."""
    return np.abs(pixels - np.array(ImageColor.getrgb(colour), float)).max(axis=-1) < 24


def drawing_area(shot: np.ndarray, background: str) -> np.ndarray:
    """The box of the largest patch of `background` in a screenshot of the sketchpad: the drawing
    itself, without the editor's white frame around it, which a white pen would match."""
    patches, n = ndi.label(near(shot, background))
    if not n:
        return shot[:0, :0]
    largest = 1 + np.argmax(np.bincount(patches.ravel())[1:])
    return shot[ndi.find_objects(patches)[largest - 1]]


def test_a_written_number_is_read(page, mnist):
    """Three MNIST test digits written side by side on the Number tab's wide canvas."""
    page.get_by_role("tab", name="Number").click()
    page.wait_for_selector("#number-sketchpad canvas", timeout=30_000)
    clear(page, "#clear-number", "number-sketchpad")
    images, labels = mnist
    number = "408"
    for k, d in enumerate(number):
        draw(page, images[np.flatnonzero(labels == int(d))[2]], "#number-sketchpad", where=0.3 + 0.2 * k)
    deadline, text = time.monotonic() + 60, ""
    while time.monotonic() < deadline and f"Reads: {number}" not in text:
        time.sleep(0.5)
        text = page.inner_text("#number-text")
    assert f"Reads: {number}" in text
    assert page.locator("#number-digits img").count() == len(number)


def upload(page: Page, path: Path) -> str:
    """Put `path` in the Upload tab; returns the verdict shown before it."""
    page.get_by_role("tab", name="Upload").click()
    remove = page.locator("#upload button[aria-label='Remove Image']")
    if remove.count():
        remove.click()
    before = verdict(page)
    page.locator("#upload input[type=file]").set_input_files(str(path))
    return before


@pytest.mark.parametrize("name, label", [("mnist_7.png", "7"), ("photo_4.jpg", "4")])
def test_uploaded_image_is_read(page, name, label):
    before = upload(page, ROOT / "examples" / name)
    assert answer(page, stale=before) == label


def test_an_uploaded_file_that_is_no_picture_gets_the_reason(page, tmp_path):
    """gr.Image alone opens it with Pillow and shows a bare "Error"; the app says why."""
    (tmp_path / "notes.png").write_text("my shopping list")
    upload(page, tmp_path / "notes.png")
    page.wait_for_function(f"() => document.querySelector('#verdict').innerText.includes({json.dumps(UNREADABLE)})", timeout=30_000)
    assert page.locator("#prediction [data-testid=label-output-value]").count() == 0


def test_an_uploaded_picture_without_ink_gets_the_reason_not_a_guess(page, tmp_path):
    Image.new("RGB", (300, 200), "white").save(tmp_path / "blank_page.png")
    upload(page, tmp_path / "blank_page.png")
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and "No digit found" not in verdict(page):
        time.sleep(0.25)
    assert "No digit found" in verdict(page)
    assert page.locator("#prediction [data-testid=label-output-value]").count() == 0
