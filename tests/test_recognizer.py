"""The public API: Recognizer.load / classify / classify_batch on real MNIST test digits."""

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from preprocess import ImageError
from model import (BUNDLED_WEIGHTS, CLASSES, TTA_VIEWS, NoDigitError, Recognizer, WeightsError, inference_network, load_network, Net,
                   to_tensor, tta_views)


def top(probs: dict[str, float]) -> int:
    return int(max(probs, key=probs.get))


def test_reads_mnist_test_digits(recognizer, mnist):
    images, labels = mnist
    probs = recognizer.classify_batch(list(images))
    accuracy = np.mean([top(p) == y for p, y in zip(probs, labels)])
    assert accuracy >= 0.99, f"read {accuracy:.2%} of 500 MNIST test digits"


def test_classify_returns_all_ten_classes_summing_to_one(recognizer, mnist):
    probs = recognizer.classify(mnist[0][0])
    assert list(probs) == list(CLASSES)
    assert all(0 <= p <= 1 for p in probs.values())
    assert sum(probs.values()) == pytest.approx(1.0, abs=1e-6)


def test_accepts_pil_arrays_and_paths_in_any_colours(recognizer, mnist, digit_png):
    path, label = digit_png(3)
    ink = mnist[0][3]
    red_on_yellow = np.where(ink[..., None] > 127, [200, 0, 0], [250, 230, 80]).astype(np.uint8)
    rgba = np.dstack([np.zeros_like(ink)] * 3 + [ink])  # black strokes on a transparent layer
    inputs = [path, str(path), Image.open(path), ink, 255 - ink, red_on_yellow, rgba, Image.fromarray(rgba)]
    assert [top(recognizer.classify(x)) for x in inputs] == [label] * len(inputs)


def test_classify_batch_matches_classify(recognizer, mnist):
    images = list(mnist[0][:8])
    batch = recognizer.classify_batch(images)
    single = [recognizer.classify(im) for im in images]
    for b, s in zip(batch, single):
        assert b == pytest.approx(s, abs=1e-5)


def test_what_is_no_image_gets_an_image_error_in_its_place(recognizer, mnist):
    """A Python caller's None, a data: URL passed as a path, an array of words, a tensor: each is
    told it is no image, and in a batch the images beside it are still read."""
    digit, label = mnist[0][0], str(mnist[1][0])
    odd = [None, "data:image/png;base64," + "A" * 5000, np.array([["seven"]]), torch.zeros(28, 28), 7]
    results = recognizer.predict_each([digit, *odd])
    assert results[0].label == label
    assert all(isinstance(r, ImageError) for r in results[1:]), results


def test_floats_that_overshoot_1_after_a_resize_are_read_as_0_to_1(recognizer, mnist):
    """Bicubic resizing of a 0-1 image overshoots 1 a little; one infinite pixel must not darken the rest."""
    from scipy import ndimage as ndi

    digit, label = mnist[0][0], str(mnist[1][0])
    smooth = ndi.zoom(1 - digit / 255.0, 10, order=3)
    assert smooth.max() > 1.0
    spiked = smooth.clip(0, 1)
    spiked[0, 0] = np.inf
    for image in (smooth, spiked):
        assert top(recognizer.classify(image)) == int(label)


@pytest.mark.parametrize(
    "blank",
    [
        np.full((200, 200), 255, np.uint8),
        np.full((200, 200, 3), (51, 51, 51), np.uint8),
        np.zeros((200, 200, 4), np.uint8),
        Image.new("RGB", (640, 480), "white"),
    ],
    ids=["white", "dark-mode", "transparent", "pil-white"],
)
def test_blank_image_raises_no_digit_error(recognizer, blank):
    with pytest.raises(NoDigitError, match="no ink"):
        recognizer.classify(blank)
    assert issubclass(NoDigitError, ValueError)


def test_load_uses_bundled_weights_without_model_repo(monkeypatch, mnist):
    monkeypatch.delenv("MODEL_REPO", raising=False)
    r = Recognizer.load()
    assert r.source == "bundled"
    assert top(r.classify(mnist[0][0])) == mnist[1][0]


def test_weights_with_wrong_shapes_are_refused(tmp_path):
    state = Net().state_dict()
    state["classifier.weight"] = torch.zeros(9, 128)
    torch.save(state, tmp_path / "w.pth")
    with pytest.raises(WeightsError, match="does not fit"):
        load_network(tmp_path / "w.pth")


def test_weights_with_nan_are_refused(tmp_path):
    state = Net().state_dict()
    state["classifier.bias"][0] = float("nan")
    torch.save(state, tmp_path / "w.pth")
    with pytest.raises(WeightsError, match="NaN"):
        load_network(tmp_path / "w.pth")


@pytest.mark.parametrize("force_full_pickle", ["", "1"], ids=["default", "TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD=1"])
def test_pickled_code_in_weights_never_runs(tmp_path, monkeypatch, force_full_pickle):
    """The environment variable that turns torch.load back into full pickle must not reach our loading."""
    monkeypatch.setenv("TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD", force_full_pickle)
    marker = tmp_path / "pwned"

    class Payload:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    torch.save({"x": Payload()}, tmp_path / "w.pth", _use_new_zipfile_serialization=True)
    with pytest.raises(WeightsError):
        load_network(tmp_path / "w.pth")
    assert not marker.exists()


@pytest.fixture(scope="module")
def clothing() -> np.ndarray:
    """50 Fashion-MNIST test images (Zalando, MIT licence), white on black like MNIST."""
    return np.load(Path(__file__).parent / "data" / "fashion_test_50.npz")["images"]


def test_digits_pass_the_not_a_digit_check(recognizer, mnist):
    flagged = [not p.is_digit for p in recognizer.predict_batch(list(mnist[0]))]
    assert np.mean(flagged) <= 0.02, f"{np.mean(flagged):.1%} of 500 MNIST test digits flagged as not digits"


def test_clothing_is_flagged_as_not_a_digit_with_a_best_guess(recognizer, clothing):
    predictions = recognizer.predict_batch(list(clothing))
    assert np.mean([not p.is_digit for p in predictions]) >= 0.7
    assert all(p.label in CLASSES and sum(p.probabilities.values()) == pytest.approx(1.0) for p in predictions)
    assert all((p.digit_score >= recognizer.net.digit_threshold.item()) == p.is_digit for p in predictions)


def test_tta_views_shift_and_tilt_the_digit(mnist):
    ink = torch.from_numpy(mnist[0][:3] / 255.0).float().unsqueeze(1)
    views = tta_views(ink).reshape(len(TTA_VIEWS), 3, 1, 28, 28)
    for view, (dx, dy, degrees) in zip(views, TTA_VIEWS):
        if (dx, dy, degrees) == (0, 0, 0):
            assert torch.allclose(view, ink, atol=1e-5)
        elif (dx, dy) == (1, 0):
            assert torch.allclose(view[..., 1:], ink[..., :-1], atol=1e-5)
        elif (dx, dy) == (-1, 0):
            assert torch.allclose(view[..., :-1], ink[..., 1:], atol=1e-5)
        elif (dx, dy) == (0, 1):
            assert torch.allclose(view[..., 1:, :], ink[..., :-1, :], atol=1e-5)
        elif (dx, dy) == (0, -1):
            assert torch.allclose(view[..., :-1, :], ink[..., 1:, :], atol=1e-5)
        else:  # tilted about the centre: about the same ink, moved
            assert view.sum().item() == pytest.approx(ink.sum().item(), rel=0.05)
            assert not torch.allclose(view, ink, atol=1e-2)


def test_tta_reads_digits_as_well(mnist):
    r = Recognizer(load_network(BUNDLED_WEIGHTS), tta=True)
    probs = r.classify_batch(list(mnist[0][:100]))
    assert np.mean([top(p) == y for p, y in zip(probs, mnist[1][:100])]) >= 0.99
    assert all(sum(p.values()) == pytest.approx(1.0, abs=1e-6) for p in probs)


def test_inference_network_gives_the_trained_networks_logits(mnist):
    net = load_network(BUNDLED_WEIGHTS)
    fast = inference_network(net)
    x = to_tensor(mnist[0][:64] / 255.0)
    assert not any(isinstance(m, (torch.nn.BatchNorm2d, torch.nn.Dropout)) for m in fast.modules())
    with torch.no_grad():
        assert torch.allclose(fast(x), net(x), atol=1e-4)
