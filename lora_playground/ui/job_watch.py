"""Status lines for the job a screen is waiting on, shared by the Train, Compare and Hub screens."""

from __future__ import annotations

from lora_playground.jobs import SUCCEEDED, Job, JobQueue
from lora_playground.ui.formatting import describe_status, escape_markdown


def find_job(queue: JobQueue, job_id: int | None) -> Job | None:
    """Return the job, or None when no id is given or the job no longer exists."""
    if job_id is None:
        return None
    return queue.store.find(int(job_id))


def job_status_markdown(queue: JobQueue, job: Job) -> str:
    """Describe a job in one Markdown line: place in the queue, progress, result summary or error message."""
    if job.status == SUCCEEDED:
        summary = (job.result or {}).get("summary") or "Done."
        return f"Job #{job.id} finished: {escape_markdown(summary)}"
    if job.error:
        return f"Job #{job.id} {job.status}: {escape_markdown(job.error)}"
    position = queue.position(job.id)
    return f"Job #{job.id} {escape_markdown(describe_status(job, position))}"
