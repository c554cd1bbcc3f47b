"""The running app (`python app.py`) through gradio_client, as an API user calls it."""

import numpy as np
import pytest
from gradio_client import Client, handle_file
from PIL import Image


@pytest.fixture(scope="module")
def client(app_url):
    return Client(app_url, verbose=False)


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
    blank, fake = tmp_path / "blank.png", tmp_path / "fake.png"
    Image.new("RGB", (200, 200), "white").save(blank)
    fake.write_text("not a picture")
    table, csv_path = client.predict([handle_file(str(p)) for p in (seven, blank, fake)], api_name="/predict_batch")
    assert table["headers"] == ["file", "digit", "confidence", "is_digit", "message"]
    rows = table["data"]
    assert [r[0] for r in rows] == [seven.name, "blank.png", "fake.png"]
    assert rows[0][1] == str(label) and rows[0][2] > 0.9 and rows[0][3] is True and rows[0][4] == ""
    assert rows[1][1] == "" and "no ink" in rows[1][4]
    assert rows[2][1] == "" and "not an image" in rows[2][4]
    with open(csv_path, newline="") as f:
        saved = list(csv.reader(f))
    assert saved[0] == table["headers"] and [r[:2] for r in saved[1:]] == [[r[0], r[1]] for r in rows]


def test_read_endpoint_returns_the_number_as_json(client, mnist, tmp_path):
    from PIL import Image

    images, labels = mnist
    strip = Image.fromarray(255 - np.hstack([images[np.flatnonzero(labels == d)[0]] for d in (4, 0, 7)]))
    strip.resize((strip.width * 5, strip.height * 5)).save(tmp_path / "number.png")
    result = client.predict(handle_file(str(tmp_path / "number.png")), api_name="/read")
    assert result["text"] == "407"
    assert [d["label"] for d in result["digits"]] == ["4", "0", "7"]
    assert all(len(d["probabilities"]) == 10 and len(d["box"]) == 4 and d["is_digit"] for d in result["digits"])


def test_number_tab_shows_the_number_and_each_digit(mnist):
    import app

    images, labels = mnist
    strip = 255 - np.hstack([images[np.flatnonzero(labels == d)[0]] for d in (1, 9, 5)])
    sentence, gallery = app.show_number(strip)
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
