"""Status lines for the job a screen is waiting on, shared by the Train, Compare and Hub screens."""

from __future__ import annotations

from lora_playground.jobs import SUCCEEDED, Job, JobQueue
from lora_playground.ui.formatting import describe_status, escape_markdown
from lora_playground.ui.jobs_panel import describe_params


def find_job(queue: JobQueue, job_id: int | None) -> Job | None:
    """Return the job, or None when no id is given or the job no longer exists."""
    if job_id is None:
        return None
    return queue.store.find(int(job_id))


def job_status_markdown(queue: JobQueue, job: Job) -> str:
    """Describe a job in one Markdown line: place in the queue, progress, result summary or error message."""
    what = describe_params(job)
    title = f"Job #{job.id} ({escape_markdown(what)})" if what else f"Job #{job.id}"
    if job.status == SUCCEEDED:
        summary = (job.result or {}).get("summary") or "Done."
        return f"{title} finished: {escape_markdown(summary)}"
    if job.error:
        return f"{title} {job.status}: {escape_markdown(job.error)}"
    position = queue.position(job.id)
    return f"{title} {escape_markdown(describe_status(job, position))}"
