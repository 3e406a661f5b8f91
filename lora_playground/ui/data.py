"""Data screen: pick a built-in task, upload a file or name a Hub dataset; map columns; preview and check.

A successful check stores the chosen source and options in the session's `data_source` state, which
the Train screen uses. Problems are shown inline before any training starts.
"""

from __future__ import annotations

import re
from pathlib import Path

import gradio as gr
import pandas as pd

from lora_playground.data import FILE_FORMATS, GENERATION_FORMATS, preview
from lora_playground.errors import DataError, PlaygroundError
from lora_playground.tasks.builtin import BUILTIN_TASKS
from lora_playground.ui.context import AppContext
from lora_playground.ui.errors import error_markdown, show_errors
from lora_playground.ui.formatting import escape_markdown
from lora_playground.ui.uploads import checked_upload

BUILTIN, UPLOAD, HUB = "Built-in task", "Upload a file", "Hub dataset"
AUTO = "(detect)"
PREVIEW_ROWS = 8
# owner/name, as the Hub spells dataset ids.
_HUB_DATASET_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[A-Za-z0-9][\w.-]*$")


def builtin_description(name: str | None) -> str:
    task = BUILTIN_TASKS.get(name or "")
    if task is None:
        return ""
    return f"**{task.type}** · {escape_markdown(task.description)}\n\nSource: {escape_markdown(task.source)} · License: {escape_markdown(task.license)}"


def checked_hub_id(text: str | None) -> str:
    """Return a Hub dataset id typed by a visitor; raise DataError for anything that is not owner/name.

    An id that names an existing path on the server is rejected too, because the loader would read
    that path instead of the Hub dataset.
    """
    dataset_id = (text or "").strip()
    if not _HUB_DATASET_ID.fullmatch(dataset_id) or ".." in dataset_id:
        raise DataError(f"{dataset_id!r} is not a Hub dataset id.", "Write it as owner/name, for example stanfordnlp/imdb.")
    if Path(dataset_id).exists():
        raise DataError(
            f"{dataset_id!r} is also a path on this server, so it cannot be read as a Hub dataset.",
            "Upload the file instead.",
        )
    return dataset_id


def source_and_options(kind, builtin, upload, hub_id, hub_revision, hub_config, task_type, text_columns,
                       label_column, data_format, encoding) -> tuple[str, dict, str]:
    """Turn the screen's inputs into (source, load_task_data options, a label for people)."""
    if kind == BUILTIN:
        if builtin not in BUILTIN_TASKS:
            raise DataError(f"Unknown built-in task {builtin!r}.", f"Pick one of: {', '.join(BUILTIN_TASKS)}.")
        return builtin, {}, f"built-in task {builtin}"

    options: dict = {"task_type": task_type}
    if task_type == "classification":
        if text_columns:
            options["text_columns"] = list(text_columns)
        if label_column and label_column != AUTO:
            options["label_column"] = label_column
    elif data_format and data_format != AUTO:
        options["data_format"] = data_format
    if encoding and encoding.strip().lower() not in ("", "utf-8"):
        options["encoding"] = encoding.strip()

    if kind == UPLOAD:
        if not upload:
            raise DataError("No file is uploaded.", f"Upload a {', '.join(sorted(FILE_FORMATS))} file first.")
        path = checked_upload(upload)
        options["name"] = Path(path).stem
        return str(path), options, f"uploaded file {Path(path).name}"
    dataset_id = checked_hub_id(hub_id)
    if hub_revision and hub_revision.strip():
        options["hub_revision"] = hub_revision.strip()
    if hub_config and hub_config.strip():
        options["hub_config"] = hub_config.strip()
    return dataset_id, options, f"Hub dataset {dataset_id}"


def rows_frame(rows: list[dict]) -> pd.DataFrame:
    return pd.DataFrame([{key: value if isinstance(value, (str, int, float)) else str(value) for key, value in row.items()} for row in rows])


def counts_frame(summary: dict) -> pd.DataFrame:
    """Label counts per split as a long table (label, split, rows) for a grouped bar chart."""
    records = [
        {"label": label, "split": split, "rows": count}
        for split, counts in summary.get("label_counts", {}).items()
        for label, count in counts.items()
    ]
    return pd.DataFrame(records, columns=["label", "split", "rows"])


def summary_markdown(summary: dict, label: str) -> str:
    """Split sizes, notes and problems of a preview, in plain sentences."""
    lines = []
    if summary["problems"]:
        lines.append("### Problems")
        lines.extend(f"- {escape_markdown(problem)}" for problem in summary["problems"])
        lines.append("\nFix these, then check again. Training is not possible with this data yet.")
        return "\n".join(lines)
    task = summary["task"]
    splits = ", ".join(f"{split} {rows:,}" for split, rows in summary["splits"].items())
    lines.append(f"**Ready:** {escape_markdown(label)} → task `{escape_markdown(task['name'])}` ({task['type']}), rows: {splits}.")
    if task.get("label_names"):
        lines.append(f"Classes: {escape_markdown(', '.join(task['label_names']))}.")
    if summary["notes"]:
        lines.append("\nWhat preparation changed:")
        lines.extend(f"- {escape_markdown(note)}" for note in summary["notes"])
    lines.append("\nThe Train screen now uses this data.")
    return "\n".join(lines)


def build_data_screen(context: AppContext, data_source: gr.State) -> None:
    kind = gr.Radio([BUILTIN, UPLOAD, HUB], value=BUILTIN, label="Data source")
    with gr.Group(visible=True) as builtin_group:
        first_builtin = next(iter(BUILTIN_TASKS), None)
        builtin = gr.Dropdown(list(BUILTIN_TASKS), value=first_builtin, label="Built-in task")
        builtin_info = gr.Markdown(builtin_description(first_builtin))
    with gr.Group(visible=False) as upload_group:
        upload = gr.File(
            label=f"Data file ({', '.join(sorted(FILE_FORMATS))}; at most {context.limits.max_upload_bytes // 2**20} MiB)",
            file_types=sorted(FILE_FORMATS),
            type="filepath",
            elem_id="data-upload",
        )
    with gr.Group(visible=False) as hub_group:
        with gr.Row():
            hub_id = gr.Textbox(label="Hub dataset id", placeholder="owner/name")
            hub_revision = gr.Textbox(label="Revision (empty: main)")
            hub_config = gr.Textbox(label="Configuration (empty: default)")
    with gr.Accordion("Columns and format", open=False, visible=False) as mapping:
        task_type = gr.Radio(["classification", "generation"], value="classification", label="Task type")
        with gr.Row():
            text_columns = gr.Dropdown([], multiselect=True, allow_custom_value=True, label="Text column(s) (one, or two for pairs; empty: detect)")
            label_column = gr.Dropdown([AUTO], value=AUTO, allow_custom_value=True, label="Label column")
            data_format = gr.Dropdown([AUTO, *GENERATION_FORMATS], value=AUTO, label="Generation format")
            encoding = gr.Textbox(value="utf-8", label="Text encoding")
    check_button = gr.Button("Check data", variant="primary")
    result = gr.Markdown(elem_id="data-result")
    sample = gr.Dataframe(label="First rows", interactive=False, wrap=True, visible=False)
    counts = gr.BarPlot(x="label", y="rows", color="split", title="Rows per class and split", visible=False)

    def switch(selected):
        return (
            gr.update(visible=selected == BUILTIN),
            gr.update(visible=selected == UPLOAD),
            gr.update(visible=selected == HUB),
            gr.update(visible=selected != BUILTIN),
        )

    def check(*values):
        try:
            source, options, label = source_and_options(*values)
        except PlaygroundError as error:
            return error_markdown(error), None, gr.update(visible=False), gr.update(visible=False), gr.update(), gr.update()
        summary = preview(source, rows=PREVIEW_ROWS, **options)
        columns = summary["columns"].get("train", [])
        column_updates = (gr.update(choices=columns), gr.update(choices=[AUTO, *columns]))
        frame = counts_frame(summary)
        chosen = None if summary["problems"] else {"source": source, "options": options, "label": label, "task": summary["task"]}
        return (
            summary_markdown(summary, label),
            chosen,
            gr.update(value=rows_frame(summary["rows"]), visible=bool(summary["rows"])),
            gr.update(value=frame, visible=not frame.empty),
            *column_updates,
        )

    kind.change(switch, inputs=kind, outputs=[builtin_group, upload_group, hub_group, mapping])
    builtin.change(builtin_description, inputs=builtin, outputs=builtin_info)
    inputs = [kind, builtin, upload, hub_id, hub_revision, hub_config, task_type, text_columns, label_column, data_format, encoding]
    check_button.click(show_errors(check), inputs=inputs, outputs=[result, data_source, sample, counts, text_columns, label_column])
