"""The running app (`python app.py`) through gradio_client, as an API user calls it."""

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


def test_only_predict_is_public(client):
    assert list(client.view_api(print_info=False, return_format="dict")["named_endpoints"]) == ["/predict"]
