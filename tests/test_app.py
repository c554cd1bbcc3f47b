"""The running app (`python app.py`) through gradio_client and the README's curl examples, as an API user calls it."""

import json
import os
import re
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from gradio_client import Client, handle_file
from PIL import Image


@pytest.fixture(scope="module")
def client(app_url):
    return Client(app_url, verbose=False)


@pytest.fixture
def uploads(tmp_path, monkeypatch):
    """Gradio's upload folder, here tmp_path: the Upload tab reads files from there only."""
    monkeypatch.setenv("GRADIO_TEMP_DIR", str(tmp_path))
    return tmp_path


def test_predict_endpoint_reads_a_png(client, digit_png):
    path, label = digit_png(0)
    result = client.predict(handle_file(str(path)), api_name="/predict")
    assert result["label"] == str(label)
    confidences = {c["label"]: c["confidence"] for c in result["confidences"]}
    assert sorted(confidences) == [str(d) for d in range(10)]
    assert sum(confidences.values()) == pytest.approx(1.0, abs=1e-3)


def test_predict_endpoint_reads_a_photo(client):
    result = client.predict(handle_file("examples/photo_4.jpg"), api_name="/predict")
    assert result["label"] == "4"


def test_predict_endpoint_explains_a_blank_image(client, tmp_path):
    blank = tmp_path / "blank.png"
    Image.new("RGB", (300, 300), "white").save(blank)
    with pytest.raises(Exception, match="no ink"):
        client.predict(handle_file(str(blank)), api_name="/predict")


def test_predict_endpoint_explains_a_file_that_is_not_an_image(client, tmp_path):
    fake = tmp_path / "fake.png"
    fake.write_text("this is text, not a picture")
    with pytest.raises(Exception, match="not an image"):
        client.predict(handle_file(str(fake)), api_name="/predict")


def test_only_the_documented_endpoints_are_public(client):
    assert sorted(client.view_api(print_info=False, return_format="dict")["named_endpoints"]) == ["/predict", "/predict_batch", "/read"]


def test_predict_batch_returns_a_row_per_file_in_order_and_a_csv(client, digit_png, tmp_path):
    """A blank image and a text file get their reason in their row; they don't fail the batch."""
    import csv

    seven, label = digit_png(0)
    blank, fake, notes = tmp_path / "blank.png", tmp_path / "fake.png", tmp_path / "notes.txt"
    Image.new("RGB", (200, 200), "white").save(blank)
    fake.write_text("not a picture")
    notes.write_text("not a picture either, and it says so")
    table, csv_path = client.predict([handle_file(str(p)) for p in (seven, blank, fake, notes)], api_name="/predict_batch")
    assert table["headers"] == ["file", "digit", "confidence", "is_digit", "message"]
    rows = table["data"]
    assert [r[0] for r in rows] == [seven.name, "blank.png", "fake.png", "notes.txt"]
    assert rows[0][1] == str(label) and rows[0][2] > 0.9 and rows[0][3] is True and rows[0][4] == ""
    assert rows[1][1] == "" and "no ink" in rows[1][4]
    assert rows[2][1] == "" and "not an image" in rows[2][4]
    assert rows[3][1] == "" and "not an image" in rows[3][4]
    with open(csv_path, newline="") as f:
        saved = list(csv.reader(f))
    assert saved[0] == table["headers"] and [r[:2] for r in saved[1:]] == [[r[0], r[1]] for r in rows]


def test_predict_batch_refuses_more_than_max_batch_images_and_reads_max_batch(client, digit_png):
    import app

    seven, label = digit_png(0)
    with pytest.raises(Exception, match=f"at most {app.MAX_BATCH} images"):
        client.predict([handle_file(str(seven))] * (app.MAX_BATCH + 1), api_name="/predict_batch")
    table, _ = client.predict([handle_file(str(seven))] * app.MAX_BATCH, api_name="/predict_batch")
    assert [row[1] for row in table["data"]] == [str(label)] * app.MAX_BATCH


def number_strip(mnist, digits: str) -> np.ndarray:
    """A written number: the first MNIST test digit of each of `digits`, side by side, black on white."""
    images, labels = mnist
    return 255 - np.hstack([images[np.flatnonzero(labels == int(d))[0]] for d in digits])


def save_number(mnist, digits: str, path: Path) -> None:
    """number_strip enlarged 5x, as a PNG."""
    strip = Image.fromarray(number_strip(mnist, digits))
    strip.resize((strip.width * 5, strip.height * 5)).save(path)


def test_read_endpoint_returns_the_number_as_json(client, mnist, tmp_path):
    save_number(mnist, "407", tmp_path / "number.png")
    result = client.predict(handle_file(str(tmp_path / "number.png")), api_name="/read")
    assert result["text"] == "407"
    assert [d["label"] for d in result["digits"]] == ["4", "0", "7"]
    assert all(len(d["probabilities"]) == 10 and len(d["box"]) == 4 and d["is_digit"] for d in result["digits"])


def test_number_tab_shows_the_number_and_each_digit(mnist):
    import app

    sentence, gallery = app.show_number(number_strip(mnist, "195"))
    assert "Reads: 195" in sentence
    assert [caption.split(" ")[0] for _, caption in gallery] == ["1", "9", "5"]
    assert all(view.shape == (app.DIGIT_VIEW_SIDE, app.DIGIT_VIEW_SIDE) and "%" in caption for view, caption in gallery)


def test_verdict_says_when_it_is_not_a_digit_and_still_guesses():
    import app

    clothing = np.load(app.HERE / "tests" / "data" / "fashion_test_50.npz")["images"]
    verdicts = [app.show(image) for image in clothing[:10]]
    flagged = [(label, sentence) for label, sentence, view in verdicts if "doesn't look like a digit" in sentence]
    assert len(flagged) >= 5
    assert all(label is not None and "Best guess:" in sentence for label, sentence in flagged)


def readme_curl_examples() -> dict[str, str]:
    """The README's bash blocks that call an endpoint, by the endpoint's name."""
    from conftest import ROOT

    blocks = re.findall(r"```bash\n(.*?)```", (ROOT / "README.md").read_text(), flags=re.S)
    return {m.group(1): block for block in blocks if (m := re.search(r"/gradio_api/call/(\w+) ", block))}


def test_readme_has_a_curl_example_per_endpoint():
    assert sorted(readme_curl_examples()) == ["predict", "predict_batch", "read"]


@pytest.mark.skipif(shutil.which("curl") is None, reason="the README's examples use curl")
@pytest.mark.parametrize("endpoint", ["predict", "read", "predict_batch"])
def test_readme_curl_examples_work(app_url, mnist, tmp_path, endpoint):
    """Each README curl example, run as written in a folder holding the files it names."""
    images, labels = mnist
    seven = np.flatnonzero(labels == 7)[0]
    Image.fromarray(255 - images[seven]).resize((112, 112)).save(tmp_path / "seven.png")
    shutil.copy("examples/photo_4.jpg", tmp_path / "four.jpg")
    save_number(mnist, "407", tmp_path / "zip_code.png")
    script = readme_curl_examples()[endpoint].replace("http://127.0.0.1:7860/", app_url)
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}  # the README's `python`
    out = subprocess.run(["bash", "-euo", "pipefail", "-c", script], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    events = out.stdout.split("event: ")
    result = json.loads(next(e for e in events if e.startswith("complete")).split("data: ", 1)[1])
    if endpoint == "predict":
        assert result[0]["label"] == "7"
    elif endpoint == "read":
        assert result[0]["text"] == "407"
    else:
        assert [row[:2] for row in result[0]["data"]] == [["seven.png", "7"], ["four.jpg", "4"]]


def test_an_uploaded_picture_without_ink_gets_the_reason(uploads):
    import app

    Image.new("RGB", (300, 200), "white").save(uploads / "blank.jpg")
    label, sentence, view = app.read_upload({"path": str(uploads / "blank.jpg")})
    assert label is None and view is None and "No digit found" in sentence


@pytest.mark.parametrize("name, content", [("IMG_0001.heic", b"\x00\x00\x00\x18ftypheic" + bytes(64)), ("notes.png", b"not a picture")])
def test_an_upload_that_pillow_cannot_open_gets_our_message_not_gradios_error(uploads, name, content):
    """The Upload tab's events take the file as it came, for our decoder: gr.Image alone opens it
    with Pillow first and fails with a bare "Error"."""
    import app

    (uploads / name).write_bytes(content)
    events = [d for d in app.demo.config["dependencies"] if d["targets"] and d["targets"][0][0] in (app.upload._id, app.upload_tab._id)]
    assert {d["targets"][0][1] for d in events} == {"change", "select"}
    assert not any(app.demo.fns[d["id"]].preprocess for d in events)
    label, sentence, view = app.read_upload({"path": str(uploads / name), "orig_name": name})
    assert label is None and view is None and app.UNREADABLE in sentence


def test_the_upload_tab_asks_for_a_picture_not_a_drawing():
    import app

    assert "Upload a picture" in app.read_upload(None)[1]
    assert "Draw a digit" in app.read_sketch(None)[1]


def test_the_verdict_says_an_8(mnist):
    import app

    images, labels = mnist
    eight, seven = (app.recognizer.predict(images[np.flatnonzero(labels == d)[0]]) for d in (8, 7))
    assert app.describe(eight).startswith("Looks like an 8 (")
    assert app.describe(seven).startswith("Looks like a 7 (")


def test_a_colour_typed_into_a_picker_that_is_no_colour_falls_back():
    import app

    assert (app.solid("banana") == app.solid(app.BACKGROUND_COLOR)).all()
    assert app.repaint_background("", None)["background"].shape == (*app.CANVAS[::-1], 4)
    assert app.pen("not-a-colour", 10).default_color == app.STROKE_COLOR
    assert app.pen("#ff0000", 10).default_color == "#ff0000"


def test_webcam_captures_are_not_mirrored():
    import app

    assert app.upload.webcam_options.mirror is False


@pytest.fixture
def csv_folders(tmp_path, monkeypatch):
    """The app's CSV folder, here holding one batch folder two hours old and one just made."""
    import app

    monkeypatch.setattr(app, "CSV_DIR", tmp_path)
    old, recent = tmp_path / "old", tmp_path / "recent"
    old.mkdir(), recent.mkdir()
    hours_ago = time.time() - 2 * app.CSV_KEEP_S
    os.utime(old, (hours_ago, hours_ago))
    return old, recent


def test_old_batch_csvs_are_deleted(csv_folders, tmp_path):
    import app

    old, recent = csv_folders
    path = app.csv_path()
    assert path.name == "digits.csv" and path.parent.parent == tmp_path
    assert not old.exists() and recent.exists()


def test_old_batch_csvs_are_deleted_when_no_batch_comes(csv_folders):
    import app

    assert "csv-sweeper" in [t.name for t in threading.enumerate()]  # started with the app
    old, recent = csv_folders
    stop = threading.Event()
    threading.Thread(target=app.sweep_csvs, args=(0.05, stop), daemon=True).start()
    deadline = time.monotonic() + 10
    while old.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    stop.set()
    assert not old.exists() and recent.exists()


def test_the_csv_folder_goes_when_the_app_exits():
    from conftest import ROOT

    out = subprocess.run([sys.executable, "-c", "import app; print(app.CSV_DIR)"], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    folder = Path(out.stdout.strip().splitlines()[-1])
    assert folder.name.startswith("digits-csv-") and not folder.exists()


def test_the_csv_folder_goes_when_the_app_is_stopped(digit_png, tmp_path):
    """`kill`, `docker stop` and a Space's restart send SIGTERM, which skips atexit unless handled."""
    from conftest import start_app, stop_app

    proc, url = start_app(env={"TMPDIR": str(tmp_path)})
    try:
        Client(url, verbose=False).predict([handle_file(digit_png(0)[0])], api_name="/predict_batch")
        assert list(tmp_path.glob("digits-csv-*/*/digits.csv"))
    finally:
        out = stop_app(proc)
    assert proc.returncode == 0, out
    assert not list(tmp_path.glob("digits-csv-*"))


def test_a_new_background_keeps_the_strokes_drawn():
    import app

    strokes = app.solid("#00000000").copy()
    strokes[100:300, 190:210] = (200, 30, 30, 255)
    editor = app.repaint_background("#1e3ca0", {"background": app.solid("#ffffff"), "layers": [strokes], "composite": None})
    assert (editor["background"] == (0x1E, 0x3C, 0xA0, 255)).all()
    assert len(editor["layers"]) == 1 and np.array_equal(editor["layers"][0], strokes)
    label, sentence, view = app.read_sketch(editor)
    assert label is not None and "Looks like a 1" in sentence


def test_a_digit_drawn_with_a_pen_too_thick_for_its_size_gets_a_hint(mnist, uploads):
    """The boldest pens fill a digit's loops, which no thinning can reopen: the verdict says so and
    how to draw instead. The same digits drawn with MNIST's pen get the plain verdict, and an
    uploaded picture, which has no pen to change, none."""
    import app
    import render

    def sentence(ink: np.ndarray) -> str:
        layer = app.solid("#00000000").copy()
        layer[100 : 100 + ink.shape[0], 100 : 100 + ink.shape[1]] = (20, 20, 20, 0)
        layer[100 : 100 + ink.shape[0], 100 : 100 + ink.shape[1], 3] = np.uint8(255 * ink)
        return app.read_sketch({"background": app.solid("#ffffff"), "layers": [layer], "composite": None})[1]

    for digit in mnist[0][:5]:
        assert app.BOLD_HINT in sentence(render._pen(digit, 150, 3.0))
        assert app.BOLD_HINT not in sentence(render._pen(digit, 150, 0.0))
    Image.fromarray(np.uint8(255 * (1 - render._pen(mnist[0][0], 150, 3.0)))).save(uploads / "bold.png")
    label, uploaded, view = app.read_upload({"path": str(uploads / "bold.png")})
    assert label is not None and app.BOLD_HINT not in uploaded


@pytest.mark.parametrize("files, cores", [({"cpu.max": "50000 100000\n"}, 1), ({"cpu.max": "150000 100000\n"}, 2), ({"cpu.max": "max 100000\n"}, None),
                                          ({"cpu/cpu.cfs_quota_us": "100000\n", "cpu/cpu.cfs_period_us": "100000\n"}, 1),
                                          ({"cpu/cpu.cfs_quota_us": "-1\n", "cpu/cpu.cfs_period_us": "100000\n"}, None), ({}, None)],
                         ids=["v2 half a core", "v2 one and a half cores", "v2 no quota", "v1 quota", "v1 no quota", "no cgroup"])
def test_torch_threads_follow_the_containers_cpu_quota(tmp_path, monkeypatch, files, cores):
    import app

    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(8)))  # the host's cores, as a container sees them
    assert app.available_cores(tmp_path) == (8 if cores is None else cores)
