"""The handwritten-digit recognizer as a Gradio app: draw or upload a digit, see all ten
probabilities; or write a whole number and see it read digit by digit.

    python app.py                 # http://127.0.0.1:7860 (honours GRADIO_SERVER_PORT / GRADIO_SERVER_NAME)
    python app.py --share         # also asks Gradio for a public share link (or GRADIO_SHARE=1)

API: `Client(url).predict(handle_file("seven.png"), api_name="/predict")` returns the Label value;
`api_name="/read"` returns the number in an image as JSON (see Reading.to_dict);
`api_name="/predict_batch"` takes a list of files and returns a table and the same table as CSV.
All the reading is done by model.Recognizer; this file only lays out the UI and wires events.
"""

from __future__ import annotations

import argparse
import atexit
import csv
import logging
import math
import os
import shutil
import signal
import sys
import tempfile
import threading
import time
from pathlib import Path

import gradio as gr
from gradio.utils import get_upload_folder, is_in_or_equal
import numpy as np
import torch
from PIL import Image, ImageColor

from model import NoDigitError, Prediction, Recognizer
from preprocess import MNIST_SIZE, UNREADABLE, ImageError

log = logging.getLogger("app")
HERE = Path(__file__).resolve().parent
EXAMPLES = sorted(str(p) for p in (HERE / "examples").glob("*.png")) + sorted(str(p) for p in (HERE / "examples").glob("*.jpg"))
CANVAS = (400, 400)  # sketchpad size in px; the drawing is reframed to 28x28 whatever its size.
# Each pen move repaints the whole canvas, which costs on software WebGL: no bigger than needed.
NUMBER_CANVAS = (1200, 400)  # the Number tab's wide sketchpad, px: room for six digits
STROKE_COLOR, BACKGROUND_COLOR, STROKE_WIDTH = "#000000", "#ffffff", 24  # defaults; width in canvas px: 36 filled the loops of
# digits drawn under a third of the canvas tall (validation digits traced as pen paths, 15-30% tall: 96.3% read at 24, 88.9% at 36)
VIEW_SIDE = 5 * MNIST_SIZE  # the model's view is shown enlarged 5x, nearest-neighbour
BLANK = "Draw a digit in the box: the prediction updates as you draw."
UPLOAD_BLANK = "Upload a picture of a digit (a photo, a scan or a drawing), take one with the webcam, or paste one."
NUMBER_BLANK = "Write a number in the box, digits side by side: it is read as you write."
BOLD_HINT = "The pen is very thick for the digit's size and may have filled in its loops: a thinner pen or a larger digit reads more reliably."
DIGIT_VIEW_SIDE = 3 * MNIST_SIZE  # each digit of a number is shown 3x, nearest-neighbour
MAX_FILE_SIZE = 20 * 1024**2  # bytes per upload: a phone photo is a few MB; more is refused before it is read
WORKERS = 2  # events run at once: one per core; a request is ~10 ms of numpy and torch that hold the GIL only in part
QUEUE_SIZE = 64  # waiting events; beyond this a caller is told at once that the app is busy and to try again
CSV_KEEP_S = 3600  # a batch's CSV stays this long in our folder (Gradio serves its own copy); then it is deleted
CSV_SWEEP_S = 600  # how often old CSVs are looked for besides at each batch, s
CACHE_KEEP_S = 3600  # uploads and results in Gradio's cache are deleted this long after they arrive, checked as often


def available_cores(cgroup: Path = Path("/sys/fs/cgroup")) -> int:
    """Cores this process may use: its CPU affinity, capped by a cgroup CPU quota, since a
    container (a 2-vCPU Space) sees all of its host's cores in os.cpu_count()."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    for quota_file, period_file in (("cpu.max", None), ("cpu/cpu.cfs_quota_us", "cpu/cpu.cfs_period_us")):  # cgroup v2, v1
        try:
            fields = (cgroup / quota_file).read_text().split()
            quota, period = fields[0], fields[1] if period_file is None else (cgroup / period_file).read_text().strip()
        except (OSError, IndexError):
            continue
        if quota not in ("max", "-1"):
            return max(1, min(cores, math.ceil(int(quota) / int(period))))
    return cores


torch.set_num_threads(max(1, available_cores() // WORKERS))  # WORKERS events at once share the cores
recognizer = Recognizer.load()
CSV_DIR = Path(tempfile.mkdtemp(prefix="digits-csv-"))
atexit.register(shutil.rmtree, CSV_DIR, ignore_errors=True)  # the batches' CSVs go with the app


def flatten_layers(editor: dict | None) -> Image.Image | None:
    """The sketchpad's drawn layers, flattened onto a transparent canvas: ink is their alpha,
    so the stroke and background colours never matter. None when nothing is drawn."""
    layers = [layer for layer in (editor or {}).get("layers") or [] if layer is not None]
    if not layers:
        return None
    canvas = Image.new("RGBA", Image.fromarray(layers[0]).size, (0, 0, 0, 0))
    for layer in layers:
        canvas.alpha_composite(Image.fromarray(layer).convert("RGBA"))
    return canvas


def describe(prediction: Prediction, drawn: bool = False) -> str:
    """The verdict; for a digit `drawn` on the sketchpad with a pen too bold for its size, how to draw it instead."""
    p = prediction.probabilities[prediction.label]
    verdict = (f"This doesn't look like a digit. Best guess: {prediction.label} ({p:.0%})." if not prediction.is_digit
               else f"Looks like {'an' if prediction.label == '8' else 'a'} {prediction.label} ({p:.0%}).")
    return f"{verdict} {BOLD_HINT}" if drawn and prediction.bold else verdict


def view(prediction: Prediction, side: int = VIEW_SIDE) -> np.ndarray:
    frame = (prediction.frame * 255).astype(np.uint8)
    return np.asarray(Image.fromarray(frame).resize((side, side), Image.Resampling.NEAREST))


def status(text: str) -> str:
    """The one-sentence verdict, in a live region that screen readers announce."""
    return f'<p role="status" aria-live="polite">{text}</p>'


def show(image: object, drawn: bool = True) -> tuple[dict | None, str, np.ndarray | None]:
    """(Label value, sentence, model's view) for the UI. A blank input gets no guess: the hint
    to draw, or for an uploaded picture (not `drawn`) the reason that nothing was read. Only a
    drawing is told that the pen was too bold: an upload has no pen to change."""
    if image is None:
        return None, status(BLANK if drawn else UPLOAD_BLANK), None
    try:
        prediction = recognizer.predict(image)
    except NoDigitError as e:
        return None, status(BLANK if drawn else str(e)), None
    except ImageError as e:
        return None, status(str(e)), None
    return prediction.probabilities, status(describe(prediction, drawn)), view(prediction)


def read_sketch(editor: dict | None) -> tuple[dict | None, str, np.ndarray | None]:
    return show(flatten_layers(editor))


def read_upload(upload: dict | None) -> tuple[dict | None, str, np.ndarray | None]:
    """The Upload tab's file as it came (its events have preprocess=False): gr.Image alone opens
    every upload with Pillow first, so a file that Pillow can't read (an iPhone's HEIC photo, text
    named .png) or a decompression bomb failed inside Gradio with a bare "Error", never saying why.

    Gradio checks that a payload's path is an upload only when the payload is marked as a file, and
    gr.Image's payload model fills that mark in for itself: a forged payload may name any path. One
    outside Gradio's upload folder gets the unreadable-file message whether or not it exists, so the
    app tells no one which files the server holds."""
    path = (upload or {}).get("path")
    if path is not None and not is_in_or_equal(path, get_upload_folder()):
        return None, status(UNREADABLE), None
    return show(path, drawn=False)


def show_number(image: object) -> tuple[str, list[tuple[np.ndarray, str]]]:
    """(sentence, each digit's view with its reading) for the Number tab."""
    if image is None:
        return status(NUMBER_BLANK), []
    try:
        reading = recognizer.read(image)
    except NoDigitError:
        return status(NUMBER_BLANK), []
    except ImageError as e:
        return status(str(e)), []
    odd = sum(not d.is_digit for d in reading.digits)
    note = f" ({odd} of the marks don't look like digits)" if odd else ""
    gallery = [(view(d, DIGIT_VIEW_SIDE), f"{d.label} · {d.confidence:.0%}" + ("" if d.is_digit else " · not a digit?"))
               for d in reading.digits]
    return status(f"Reads: {reading.text}{note}"), gallery


def read_number_sketch(editor: dict | None) -> tuple[str, list[tuple[np.ndarray, str]]]:
    return show_number(flatten_layers(editor))


def predict(image: str | None) -> dict[str, float]:
    """One image file in, the probability of every digit 0-9 out."""
    if image is None:
        raise gr.Error("Send an image file.")
    try:
        return recognizer.classify(image)
    except (NoDigitError, ImageError) as e:
        raise gr.Error(str(e)) from None


def read(image: str | None) -> dict:
    """One image file in; the number it holds out: its text and, per digit left to right, the
    box in the image, the ten probabilities and whether it looks like a digit at all."""
    if image is None:
        raise gr.Error("Send an image file.")
    try:
        return recognizer.read(image).to_dict()
    except (NoDigitError, ImageError) as e:
        raise gr.Error(str(e)) from None


BATCH_COLUMNS = ["file", "digit", "confidence", "is_digit", "message"]
MAX_BATCH = 64  # images per /predict_batch call: one batched pass, a bounded request


def predict_batch(files: list[str] | None) -> tuple[list[list], str | None]:
    """Several image files in; a table out, one row per file in the order sent (file name, best
    digit, its probability, whether it looks like a digit, and why a file could not be read),
    and the same table as a CSV file to download."""
    files = files or []
    if len(files) > MAX_BATCH:
        raise gr.Error(f"Send at most {MAX_BATCH} images at a time.")
    rows = []
    for path, result in zip(files, recognizer.predict_each(files)):
        name = Path(path).name
        if isinstance(result, Prediction):
            rows.append([name, result.label, round(result.confidence, 4), result.is_digit, ""])
        else:
            rows.append([name, "", None, False, str(result)])
    if not rows:
        return [], None
    out = csv_path()
    with open(out, "w", newline="") as f:
        csv.writer(f).writerows([BATCH_COLUMNS, *rows])
    return rows, str(out)


def delete_old_csvs() -> None:
    """Delete the batch folders older than CSV_KEEP_S, so that a public app's disk does not fill."""
    now = time.time()
    for old in CSV_DIR.iterdir():
        try:
            stale = now - old.stat().st_mtime > CSV_KEEP_S
        except FileNotFoundError:  # another batch deleted it first
            continue
        if stale:
            shutil.rmtree(old, ignore_errors=True)


def sweep_csvs(every: float, stop: threading.Event | None = None) -> None:
    """delete_old_csvs every `every` seconds until `stop` is set (in a daemon thread: for ever), so
    that an hour-old CSV goes even when no later batch comes to delete it."""
    stop = stop or threading.Event()
    while not stop.wait(every):
        try:
            delete_old_csvs()
        except OSError as e:
            log.warning("could not delete old CSVs: %s", e)


def csv_path() -> Path:
    """A fresh digits.csv in a folder of its own (two batches at once must not share a file),
    after deleting the old ones."""
    delete_old_csvs()
    return Path(tempfile.mkdtemp(dir=CSV_DIR)) / "digits.csv"


threading.Thread(target=sweep_csvs, args=(CSV_SWEEP_S,), name="csv-sweeper", daemon=True).start()


def colour(value: str | None, default: str) -> str:
    """`value` if Pillow can read it as a colour; the colour pickers also pass on whatever is typed."""
    try:
        ImageColor.getrgb(value or "")
        return value
    except ValueError:
        return default


def solid(color: str, size: tuple[int, int] = CANVAS) -> np.ndarray:
    return np.asarray(Image.new("RGBA", size, colour(color, BACKGROUND_COLOR)), dtype=np.uint8)


def pen(color: str, width: float) -> gr.Brush:
    """Gradio's brush takes a radius; people think in stroke width."""
    color = colour(color, STROKE_COLOR)
    return gr.Brush(colors=[color], default_color=color, default_size=max(1, round(width / 2)), color_mode="fixed")


def canvas(size: tuple[int, int], label: str, elem_id: str, height: int | None = None) -> gr.Sketchpad:
    """A fixed-size sketchpad with one layer and the pen, returning RGBA so that ink is its alpha."""
    return gr.Sketchpad(canvas_size=size, height=height, fixed_canvas=True, type="numpy", image_mode="RGBA",
                        brush=pen(STROKE_COLOR, STROKE_WIDTH), layers=False, transforms=(), label=label, elem_id=elem_id)


def restyle_brush(color: str, width: float) -> gr.Sketchpad:
    return gr.Sketchpad(brush=pen(color, width))


def repaint_background(color: str, editor: dict | None) -> dict:
    """A new background colour under the strokes already drawn."""
    return {"background": solid(color), "layers": (editor or {}).get("layers") or [solid("#00000000")], "composite": None}


def empty(color: str, size: tuple[int, int]) -> dict:
    """An empty canvas in the chosen colour, with one transparent layer ready for the pen."""
    return {"background": solid(color, size), "layers": [solid("#00000000", size)], "composite": None}


def blank_canvas(color: str) -> tuple[dict, None, str, None]:
    return empty(color, CANVAS), None, status(BLANK), None


def blank_number_canvas() -> tuple[dict, str, list]:
    return empty(BACKGROUND_COLOR, NUMBER_CANVAS), status(NUMBER_BLANK), []


# Gradio's sketchpads start with no tool chosen; pick the brush so a first-time user can draw at once.
SELECT_BRUSH = """
(ids) => {
  const pick = (id) => {
    const brush = document.querySelector(`#${id} button[aria-label="Brush"]`);
    if (brush) { brush.click(); return true; }
    return false;
  };
  for (const id of ids) {
    if (!pick(id)) { const t = setInterval(() => { if (pick(id)) clearInterval(t); }, 200); setTimeout(() => clearInterval(t), 10000); }
  }
}
"""


def pick_brush(*elem_ids: str) -> str:
    """An event's JS that chooses the brush on these sketchpads."""
    return f"() => ({SELECT_BRUSH})({list(elem_ids)!r})"

with gr.Blocks(title="Handwritten digit recognizer", delete_cache=(CACHE_KEEP_S, CACHE_KEEP_S)) as demo:
    gr.Markdown(
        "# Handwritten digit recognizer\n"
        "Draw a digit or upload a photo of one: any colours, any size, anywhere on the canvas."
    )
    with gr.Row():
        with gr.Column(scale=3):
            with gr.Tabs():
                with gr.Tab("Draw", id="draw") as draw_tab:
                    with gr.Row():
                        stroke_color = gr.ColorPicker(STROKE_COLOR, label="Stroke colour", elem_id="stroke-color")
                        background_color = gr.ColorPicker(BACKGROUND_COLOR, label="Background colour", elem_id="background-color")
                        stroke_width = gr.Slider(4, 120, value=STROKE_WIDTH, step=2, label="Stroke width (px)", elem_id="stroke-width")
                    sketchpad = canvas(CANVAS, "Draw a digit", "sketchpad", height=CANVAS[1] + 100)
                    clear = gr.Button("Clear", elem_id="clear")
                with gr.Tab("Upload", id="upload-tab") as upload_tab:
                    upload = gr.Image(
                        sources=["upload", "webcam", "clipboard"], type="filepath", image_mode=None,  # our bounded decoder reads it
                        webcam_options=gr.WebcamOptions(mirror=False),  # a mirrored capture would reach the model mirrored
                        label="A photo, scan or drawing of a digit", elem_id="upload",
                    )
                    gr.Examples(EXAMPLES, inputs=upload, label="Examples: MNIST digits and photos")
                with gr.Tab("Batch", id="batch-tab"):
                    batch_files = gr.File(file_count="multiple", type="filepath",  # no file_types: a non-image gets its own row, not a failed batch
                                          label=f"Up to {MAX_BATCH} images", elem_id="batch-files")
                    batch_table = gr.Dataframe(headers=BATCH_COLUMNS, interactive=False, label="Results", elem_id="batch-table")
                    batch_csv = gr.File(label="Download the results (CSV)", interactive=False, elem_id="batch-csv")
                with gr.Tab("Number", id="number-tab") as number_tab:
                    number_pad = canvas(NUMBER_CANVAS, "Write a number", "number-sketchpad")
                    clear_number = gr.Button("Clear", elem_id="clear-number")
                    number_text = gr.HTML(status(NUMBER_BLANK), elem_id="number-text")
                    number_digits = gr.Gallery(label="Each digit as the model saw it", columns=6, height=DIGIT_VIEW_SIDE + 80,
                                               object_fit="contain", elem_id="number-digits")
        with gr.Column(scale=2):
            prediction = gr.Label(num_top_classes=10, label="Prediction", elem_id="prediction")
            sentence = gr.HTML(status(BLANK), elem_id="verdict")
            model_view = gr.Image(label=f"What the model sees ({MNIST_SIZE}x{MNIST_SIZE})", interactive=False, height=VIEW_SIDE + 60, elem_id="model-view")

    sketchpad.change(read_sketch, sketchpad, [prediction, sentence, model_view],
                     trigger_mode="always_last", show_progress="hidden", api_visibility="private")
    upload.change(read_upload, upload, [prediction, sentence, model_view],
                  preprocess=False, show_progress="hidden", api_visibility="private")
    # The Draw and Upload tabs share the panel beside them: a tab brought into view gets its own input's reading back.
    draw_tab.select(read_sketch, sketchpad, [prediction, sentence, model_view], show_progress="hidden", api_visibility="private")
    upload_tab.select(read_upload, upload, [prediction, sentence, model_view], preprocess=False, show_progress="hidden", api_visibility="private")
    number_pad.change(read_number_sketch, number_pad, [number_text, number_digits],
                      trigger_mode="always_last", show_progress="hidden", api_visibility="private")
    stroke_color.change(restyle_brush, [stroke_color, stroke_width], sketchpad, api_visibility="private")
    stroke_width.change(restyle_brush, [stroke_color, stroke_width], sketchpad, api_visibility="private")
    background_color.change(repaint_background, [background_color, sketchpad], sketchpad, api_visibility="private")
    clear.click(blank_canvas, background_color, [sketchpad, prediction, sentence, model_view], api_visibility="private")
    clear_number.click(blank_number_canvas, None, [number_pad, number_text, number_digits], api_visibility="private")
    # A sketchpad's own bin empties it to white and leaves no tool chosen: it does what our Clear does, and the brush comes back.
    sketchpad.clear(blank_canvas, background_color, [sketchpad, prediction, sentence, model_view], show_progress="hidden",
                    api_visibility="private").then(
        None, js=pick_brush("sketchpad"))
    number_pad.clear(blank_number_canvas, None, [number_pad, number_text, number_digits], show_progress="hidden",
                     api_visibility="private").then(
        None, js=pick_brush("number-sketchpad"))

    batch_files.change(predict_batch, batch_files, [batch_table, batch_csv], api_name="predict_batch")

    api_image = gr.File(type="filepath", visible=False)  # a file, so that our bounded decoder reads it
    api_label = gr.Label(num_top_classes=10, visible=False)
    api_image.change(predict, api_image, api_label, api_name="predict")
    api_number_image = gr.File(type="filepath", visible=False)
    api_reading = gr.JSON(visible=False)
    api_number_image.change(read, api_number_image, api_reading, api_name="read")
    demo.load(None, js=pick_brush("sketchpad", "number-sketchpad"))
    number_tab.select(None, js=pick_brush("number-sketchpad"))  # a hidden tab's pad gets its tools when shown

demo.queue(default_concurrency_limit=WORKERS, max_size=QUEUE_SIZE)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="Serve the digit recognizer.")
    parser.add_argument("--share", action="store_true", help="ask Gradio for a public share link; Spaces ignore it (default: off)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    log.info("serving weights from %s", recognizer.source)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))  # a stop (kill, docker, a Space's restart) exits cleanly, so atexit runs
    demo.launch(share=args.share or os.environ.get("GRADIO_SHARE", "").lower() in ("1", "true", "yes"), max_file_size=MAX_FILE_SIZE)
