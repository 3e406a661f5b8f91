"""Background jobs for the app: a SQLite-backed queue whose workers run registered job functions."""

from lora_playground.jobs.queue import JobContext, JobFunction, JobQueue
from lora_playground.jobs.records import (
    ACTIVE_STATUSES,
    CANCELLED,
    FAILED,
    FINAL_STATUSES,
    INTERRUPTED_MESSAGE,
    QUEUED,
    RUNNING,
    SUCCEEDED,
    Job,
    JobStatus,
)
from lora_playground.jobs.redact import redact_text, strip_secrets
from lora_playground.jobs.store import JobStore

__all__ = [
    "ACTIVE_STATUSES",
    "CANCELLED",
    "FAILED",
    "FINAL_STATUSES",
    "INTERRUPTED_MESSAGE",
    "QUEUED",
    "RUNNING",
    "SUCCEEDED",
    "Job",
    "JobContext",
    "JobFunction",
    "JobQueue",
    "JobStatus",
    "JobStore",
    "redact_text",
    "strip_secrets",
]
