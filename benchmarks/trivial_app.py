"""The baseline for benchmarks/serving.py: a Gradio app with our /predict endpoint's shape (a file
in, a Label out) and queue settings, whose function does no work, so that timing it measures
Gradio's own round trip on this machine.

    python benchmarks/trivial_app.py     # http://127.0.0.1:7860, or GRADIO_SERVER_PORT
"""

import sys
from pathlib import Path

import gradio as gr

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from app import MAX_FILE_SIZE, QUEUE_SIZE, WORKERS  # noqa: E402 (builds our app too, unlaunched)

ANSWER = {str(d): 0.1 for d in range(10)}


def predict(image: str | None) -> dict[str, float]:
    return ANSWER


with gr.Blocks() as demo:
    image = gr.File(type="filepath", visible=False)
    label = gr.Label(num_top_classes=10, visible=False)
    image.change(predict, image, label, api_name="predict")

demo.queue(default_concurrency_limit=WORKERS, max_size=QUEUE_SIZE)

if __name__ == "__main__":
    demo.launch(max_file_size=MAX_FILE_SIZE)
