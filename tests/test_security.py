"""Gradio's file routes on the running app must never hand out the repository's files or any
other path on the server: the weights, the source, /etc/passwd, or a way up with '../'."""

import re
import urllib.error
import urllib.parse
import urllib.request

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
