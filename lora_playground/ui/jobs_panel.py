"""The job list shown to every browser session: read from the job database and refreshed by a timer."""

from __future__ import annotations

import logging

import gradio as gr
import pandas as pd

from lora_playground.jobs import ACTIVE_STATUSES, Job, JobQueue
from lora_playground.ui.errors import show_errors
from lora_playground.ui.formatting import describe_status, format_seconds, format_time

logger = logging.getLogger(__name__)

JOB_COLUMNS = ["id", "kind", "what", "status", "created", "duration", "outcome"]
REFRESH_SECONDS = 2.0


def describe_params(job: Job) -> str:
    """Summarize what a job works on, from the params its kind stores (name, task, repo id)."""
    params = job.params
    pieces = []
    for key in ("name", "task", "repo_id", "adapters"):
        value = params.get(key)
        if value:
            pieces.append(", ".join(map(str, value)) if isinstance(value, list) else str(value))
    if params.get("method"):
        pieces.append(str(params["method"]))
    return " · ".join(pieces)


def describe_outcome(job: Job) -> str:
    if job.error:
        return job.error
    if job.result and job.result.get("summary"):
        return str(job.result["summary"])
    return ""


def jobs_table(queue: JobQueue, limit: int = 50) -> pd.DataFrame:
    """Return the newest `limit` jobs as a table with the JOB_COLUMNS columns."""
    rows = []
    for job in queue.list(limit=limit):
        position = queue.position(job.id) if job.status in ACTIVE_STATUSES else None
        rows.append(
            [
                job.id,
                job.kind,
                describe_params(job),
                describe_status(job, position),
                format_time(job.created_at),
                format_seconds(job.duration_seconds),
                describe_outcome(job),
            ]
        )
    return pd.DataFrame(rows, columns=JOB_COLUMNS)


def active_job_choices(queue: JobQueue) -> list[tuple[str, int]]:
    return [(f"#{job.id} {job.kind} ({job.status})", job.id) for job in queue.list(limit=None, statuses=ACTIVE_STATUSES)]


def build_jobs_panel(queue: JobQueue, timer: gr.Timer) -> gr.Dataframe:
    """Render the job table and a cancel control; the table refreshes on every tick of `timer`."""
    table = gr.Dataframe(value=lambda: jobs_table(queue), label="Jobs (all sessions)", interactive=False, wrap=True, elem_id="job-list")
    with gr.Row():
        to_cancel = gr.Dropdown(label="Job to cancel", choices=active_job_choices(queue), value=None, scale=3)
        cancel_button = gr.Button("Cancel job", variant="stop", scale=1)
    cancel_status = gr.Markdown()

    @show_errors
    def cancel(job_id):
        if job_id is None:
            return gr.update(), "Pick a queued or running job first."
        job = queue.cancel(int(job_id))
        if job.status == "running":
            message = f"Job #{job.id} stops at its next step."
        else:
            message = f"Job #{job.id} is {job.status}."
        return jobs_table(queue), message

    def refresh():
        return jobs_table(queue), gr.update(choices=active_job_choices(queue))

    cancel_button.click(cancel, inputs=to_cancel, outputs=[table, cancel_status])
    # Refreshes are cheap SQLite reads, so they skip the concurrency limit that protects model work.
    timer.tick(refresh, outputs=[table, to_cancel], show_progress="hidden", concurrency_limit=None)
    return table
