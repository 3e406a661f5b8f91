"""Compare screen: stored runs side by side on their task's test split, with charts and exports."""

from __future__ import annotations

import tempfile
from pathlib import Path

import gradio as gr

from lora_playground.errors import ConfigError
from lora_playground.jobs import SUCCEEDED
from lora_playground.ui.adapter_choices import adapter_choices
from lora_playground.ui.context import AppContext
from lora_playground.ui.errors import show_errors
from lora_playground.ui.job_watch import find_job, job_status_markdown
from lora_playground.ui.task_source import task_source
from lora_playground.ui.report_view import (
    chart_frames,
    costs_table,
    disagreements_table,
    metrics_table,
    summary_line,
)

CHART_COUNT = 5


def export_files(job_id: int, result: dict) -> tuple[str, str]:
    """Write the report of a finished compare job as Markdown and JSON files for download."""
    import json

    folder = Path(tempfile.mkdtemp(prefix=f"lora-playground-report-{job_id}-"))
    markdown_path = folder / f"comparison-{job_id}.md"
    json_path = folder / f"comparison-{job_id}.json"
    markdown_path.write_text(result["markdown"], encoding="utf-8")
    json_path.write_text(json.dumps(result["report"], indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return str(markdown_path), str(json_path)


def build_compare_screen(context: AppContext, data_source: gr.State, timer: gr.Timer, tab: gr.Tab) -> None:
    gr.Markdown(
        "Pick stored runs of one task (LoRA adapters and full finetunes). They are evaluated on the task's "
        "test split in the background (built-in tasks, or the data chosen on the Data screen); the table "
        "shows each metric with its confidence interval, ★ marks the best value."
    )
    with gr.Row():
        runs = gr.Dropdown(label="Runs to compare", choices=adapter_choices(), multiselect=True, scale=4)
        base = gr.Dropdown(context.bases, value=context.default_base, label="Base model", scale=2)
    compare_button = gr.Button("Compare", variant="primary")
    status = gr.Markdown(elem_id="compare-status")
    watched_job = gr.State(None)
    shown_job = gr.State(None)

    summary = gr.Markdown()
    metrics = gr.Dataframe(label="Metrics", interactive=False, wrap=True, elem_id="compare-metrics")
    costs = gr.Dataframe(label="Costs", interactive=False, wrap=True)
    with gr.Row():
        charts = [gr.BarPlot(x="run", y="value", height=260) for _ in range(CHART_COUNT)]
    disagreements_view = gr.Dataframe(label="Examples on which the runs disagree", interactive=False, wrap=True, visible=False)
    with gr.Row():
        download_markdown = gr.DownloadButton("Download Markdown report", visible=False)
        download_json = gr.DownloadButton("Download JSON report", visible=False)

    @show_errors
    def start(names, base_name, data):
        if not names:
            raise ConfigError("No runs are selected.", "Pick at least one stored run to compare.")
        params = {"adapters": list(names), "base": context.check_base(base_name), "source": task_source(names, data)}
        job = context.queue.submit("compare", params)
        return job.id, job_status_markdown(context.queue, job)

    outputs = [status, shown_job, summary, metrics, costs, *charts, disagreements_view, download_markdown, download_json]

    def refresh(job_id, already_shown):
        job = find_job(context.queue, job_id)
        unchanged = [gr.update()] * (len(outputs) - 1)
        if job is None:
            return [gr.update(), *unchanged]
        line = job_status_markdown(context.queue, job)
        if job.status != SUCCEEDED or already_shown == job.id:
            return [line, *unchanged]
        report = job.result["report"]
        frames = chart_frames(report)
        chart_updates = []
        for index, (title, frame) in enumerate(list(frames.items())[:CHART_COUNT]):
            # The first chart is the primary metric, a fraction; every chart starts at 0 so bars compare.
            y_lim = [0, 1] if index == 0 else [0, None]
            chart_updates.append(gr.update(value=frame, title=title, y_lim=y_lim, visible=not frame.empty))
        chart_updates += [gr.update(visible=False)] * (CHART_COUNT - len(chart_updates))
        markdown_path, json_path = export_files(job.id, job.result)
        disagreements = disagreements_table(report)
        return [
            line,
            job.id,
            summary_line(report),
            metrics_table(report),
            costs_table(report),
            *chart_updates,
            gr.update(value=disagreements, visible=not disagreements.empty),
            gr.update(value=markdown_path, visible=True),
            gr.update(value=json_path, visible=True),
        ]

    compare_button.click(start, inputs=[runs, base, data_source], outputs=[watched_job, status]).then(
        refresh, inputs=[watched_job, shown_job], outputs=outputs
    )
    timer.tick(refresh, inputs=[watched_job, shown_job], outputs=outputs, show_progress="hidden", concurrency_limit=None)
    tab.select(lambda: gr.update(choices=adapter_choices()), outputs=runs)

