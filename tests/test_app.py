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


def test_only_predict_and_read_are_public(client):
    assert sorted(client.view_api(print_info=False, return_format="dict")["named_endpoints"]) == ["/predict", "/read"]


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
