"""Gradio's file routes on the running app must never hand out the repository's files or any
other path on the server: the weights, the source, /etc/passwd, or a way up with '../'. Nor may
an event read a path that a forged payload names."""

import json
import re
import uuid
import urllib.error
import urllib.parse
import urllib.request

import httpx
import pytest

FORBIDDEN = [
    "model_weights.pth",
    "app.py",
    "/etc/passwd",
    "../model_weights.pth",
    "../../../../etc/passwd",
    "examples/../model_weights.pth",
    "%2e%2e/%2e%2e/etc/passwd",
    "..%2fmodel_weights.pth",
]


def status_of(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=30) as r:
            return r.status
    except urllib.error.HTTPError as e:
        return e.code


@pytest.mark.parametrize("route", ["gradio_api/file=", "gradio_api/file/"])
@pytest.mark.parametrize("path", FORBIDDEN)
def test_file_routes_refuse_repo_and_system_files(app_url, route, path):
    assert status_of(app_url + route + path) in (403, 404)


def test_file_routes_refuse_absolute_paths_into_the_repo(app_url):
    from conftest import ROOT

    for name in ("model_weights.pth", "app.py", "requirements.txt"):
        assert status_of(app_url + "gradio_api/file=" + urllib.parse.quote(str(ROOT / name))) in (403, 404)


def test_the_example_images_the_page_shows_are_still_served(app_url):
    """The checks above must not pass merely because the route is broken: the files the page
    itself links to (the example images, copied into Gradio's cache) do load."""
    with urllib.request.urlopen(app_url + "config", timeout=30) as r:
        links = re.findall(r'"(http[^"]*/gradio_api/file=[^"]+)"', r.read().decode())
    assert links
    assert all(status_of(link) == 200 for link in links)


def call_event(app_url: str, fn_index: int, data: list) -> list:
    """One event through Gradio's queue, as the page sends it; returns its outputs."""
    session = uuid.uuid4().hex
    httpx.post(app_url + "gradio_api/queue/join", json={"data": data, "fn_index": fn_index, "session_hash": session}, timeout=30)
    with httpx.stream("GET", app_url + "gradio_api/queue/data", params={"session_hash": session}, timeout=60) as stream:
        for line in stream.iter_lines():
            message = json.loads(line[5:]) if line.startswith("data:") else {}
            if message.get("msg") == "process_completed":
                return message["output"]["data"]
    raise AssertionError("the event never completed")


def test_the_upload_tab_reads_no_path_outside_gradios_upload_folder(app_url):
    """gr.Image's payload model marks a payload as a file by itself, so Gradio does not check a
    forged path that comes without the mark: the Upload tab must read only uploads, and answer for
    a server file, present or not, exactly as for one that is no image."""
    from conftest import ROOT
    from preprocess import UNREADABLE

    config = httpx.get(app_url + "config", timeout=30).json()
    upload = next(c["id"] for c in config["components"] if c.get("props", {}).get("elem_id") == "upload")
    change = next(d["id"] for d in config["dependencies"] if [upload, "change"] in d["targets"])
    for path in (ROOT / "examples" / "mnist_3.png", ROOT / "model_weights.pth", "/etc/passwd", "/etc/no-such-file"):
        label, sentence, view = call_event(app_url, change, [{"path": str(path)}])
        assert not label and view is None and UNREADABLE in sentence, path
    uploaded = httpx.post(app_url + "gradio_api/upload", files={"files": (ROOT / "examples" / "mnist_3.png").open("rb")}, timeout=30).json()[0]
    label, sentence, view = call_event(app_url, change, [{"path": uploaded, "meta": {"_type": "gradio.FileData"}}])
    assert label["label"] == "3"  # a real upload still reads
