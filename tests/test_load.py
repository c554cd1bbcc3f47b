"""Many users at once (benchmarks/load.py's clients, for a shorter while): every request is
answered right or refused with the queue's "full, try again", none is lost, and the app still
answers afterwards. The full 50-client, 60-second run is `python benchmarks/load.py`."""

import load
from conftest import ROOT, start_app, stop_app

LOAD_SECONDS = 15  # each of 50 clients is answered 2-3 times in that on 2 cores


def test_fifty_clients_are_all_answered_right(app_url, tmp_path):
    files = load.digit_files(tmp_path)
    outcomes, _, _ = load.run_clients(app_url, files, clients=50, seconds=LOAD_SECONDS)
    assert set(outcomes) == {load.RIGHT}, outcomes
    assert load.healthy(app_url, *files[1])


def test_a_full_queue_refuses_with_try_again_and_loses_nothing(tmp_path):
    """The app's own events behind a queue of 2, so that 12 clients overflow it."""
    script = tmp_path / "small_queue_app.py"
    script.write_text(
        f"import sys\nsys.path.insert(0, {str(ROOT)!r})\nimport app\n"
        "app.demo.queue(default_concurrency_limit=1, max_size=2)\napp.demo.launch()\n"
    )
    proc, url = start_app(script=str(script))
    try:
        files = load.digit_files(tmp_path)
        outcomes, _, _ = load.run_clients(url, files, clients=12, seconds=LOAD_SECONDS)
        assert load.failures(outcomes) == 0, outcomes
        assert outcomes[load.REFUSED] > 0, outcomes
        assert outcomes[load.RIGHT] > 0, outcomes
        assert load.healthy(url, *files[1])
    finally:
        stop_app(proc)
