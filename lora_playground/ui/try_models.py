"""Try screen: one input, the outputs of several stored runs (and the untrained base) side by side."""

from __future__ import annotations

import json
import logging
from functools import lru_cache

import gradio as gr
import pandas as pd

from lora_playground.errors import ConfigError, DataError, PlaygroundError
from lora_playground.pipeline.inference import stream_side_by_side
from lora_playground.ui.adapter_choices import adapter_choices
from lora_playground.ui.context import AppContext
from lora_playground.ui.errors import show_errors
from lora_playground.ui.task_source import task_source

logger = logging.getLogger(__name__)

RESULT_COLUMNS = ["model", "kind", "output", "latency (ms)", "top classes", "note"]
EXAMPLE_COUNT = 10


@lru_cache(maxsize=8)
def _test_texts(source: str, options_json: str) -> tuple[str, ...]:
    from lora_playground.data import load_task_data

    task_data = load_task_data(source, **json.loads(options_json))
    test = task_data.splits["test"]
    if task_data.task.type == "classification":
        texts = test["text"]
    else:
        # The prompt is the last user turn before the reference reply.
        texts = [next(m["content"] for m in reversed(messages[:-1]) if m["role"] == "user") for messages in test["messages"]]
    return tuple(texts[:EXAMPLE_COUNT])


def example_texts(names: list[str], data: dict | None) -> list[str]:
    """Return up to EXAMPLE_COUNT test-split inputs of the first selected run's task (see `task_source`)."""
    if not names:
        return []
    options = task_source(names[:1], data)
    source = options.pop("source")
    return list(_test_texts(source, json.dumps(options, sort_keys=True)))


def results_frames(answers: list[dict]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Turn the answers of `pipeline.inference` into the results table and a (model, class, probability) table.

    A reply that is still streaming ends with "…"; a model that has not started shows "waiting".
    """
    rows, probabilities = [], []
    for answer in answers:
        classes = answer.get("probabilities") or {}
        top = sorted(classes.items(), key=lambda item: item[1], reverse=True)[:3]
        output = answer.get("output") or ""
        if not answer.get("done", True):
            output = f"{output}…" if output else "waiting"
        latency = answer.get("latency_ms")
        rows.append(
            {
                "model": answer["name"],
                "kind": answer.get("kind", ""),
                "output": output,
                "latency (ms)": round(float(latency), 1) if latency is not None else None,
                "top classes": ", ".join(f"{label} {probability:.0%}" for label, probability in top),
                "note": answer.get("note") or "",
            }
        )
        probabilities.extend({"model": answer["name"], "class": label, "probability": p} for label, p in classes.items())
    return pd.DataFrame(rows, columns=RESULT_COLUMNS), pd.DataFrame(probabilities, columns=["model", "class", "probability"])


def build_try_screen(context: AppContext, data_source: gr.State, tab: gr.Tab) -> None:
    gr.Markdown(
        "Type a text and see what each selected run makes of it, all loaded on one shared base. For "
        "generation tasks the untrained base answers too, so you can see what training changed."
    )
    with gr.Row():
        runs = gr.Dropdown(label="Runs", choices=adapter_choices(), multiselect=True, scale=4)
        base = gr.Dropdown(context.bases, value=context.default_base, label="Base model", scale=2)
        with gr.Column(scale=2):
            include_base = gr.Checkbox(True, label="Also the untrained base")
            include_full = gr.Checkbox(True, label="Also full finetunes trained on the same data")
    text = gr.Textbox(label="Input text", lines=3, elem_id="try-input")
    examples = gr.Dataset(components=[text], samples=[], label="Examples from the test split (click to use)")
    with gr.Accordion("Generation settings", open=False):
        with gr.Row():
            max_new_tokens = gr.Slider(1, 256, value=64, step=1, label="Max new tokens")
            temperature = gr.Slider(0, 2, value=0, step=0.05, label="Temperature (0: greedy)")
            top_p = gr.Slider(0.05, 1, value=1, step=0.05, label="Top-p")
    run_button = gr.Button("Run", variant="primary")
    results = gr.Dataframe(headers=RESULT_COLUMNS, label="Outputs", interactive=False, wrap=True, elem_id="try-results")
    probability_plot = gr.BarPlot(x="model", y="probability", color="class", title="Class probabilities", visible=False)

    @show_errors
    def run(names, base_name, with_base, with_full, input_text, new_tokens, temp, nucleus):
        if not names:
            raise ConfigError("No runs are selected.", "Pick at least one stored run.")
        if not (input_text or "").strip():
            raise DataError("The input text is empty.", "Type a text or click an example.")
        # Each yield is the whole answer list again, so generated replies grow in place (streaming).
        for answers in stream_side_by_side(
            context.check_base(base_name),
            list(names),
            input_text,
            include_base=bool(with_base),
            include_full_names=bool(with_full),
            max_new_tokens=int(new_tokens),
            temperature=float(temp),
            top_p=float(nucleus),
        ):
            table, probabilities = results_frames(answers)
            yield table, gr.update(value=probabilities, visible=not probabilities.empty)

    def load_examples(names, data):
        try:
            texts = example_texts(names or [], data)
        except PlaygroundError as error:
            logger.info("No test examples for %s: %s", names, error)
            texts = []
        return gr.update(samples=[[value] for value in texts])

    run_button.click(
        run,
        inputs=[runs, base, include_base, include_full, text, max_new_tokens, temperature, top_p],
        outputs=[results, probability_plot],
    )
    examples.click(lambda sample: sample[0], inputs=examples, outputs=text)
    runs.change(load_examples, inputs=[runs, data_source], outputs=examples)
    tab.select(lambda: gr.update(choices=adapter_choices()), outputs=runs)
