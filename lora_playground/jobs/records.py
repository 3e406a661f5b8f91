"""The job record as the queue stores it and the app shows it."""

from dataclasses import dataclass
from typing import Any, Literal

JobStatus = Literal["queued", "running", "succeeded", "failed", "cancelled"]

QUEUED: JobStatus = "queued"
RUNNING: JobStatus = "running"
SUCCEEDED: JobStatus = "succeeded"
FAILED: JobStatus = "failed"
CANCELLED: JobStatus = "cancelled"

ACTIVE_STATUSES: tuple[JobStatus, ...] = (QUEUED, RUNNING)
FINAL_STATUSES: tuple[JobStatus, ...] = (SUCCEEDED, FAILED, CANCELLED)

INTERRUPTED_MESSAGE = "Interrupted by a restart of the app; start the job again."


@dataclass(frozen=True)
class Job:
    """One unit of background work and its outcome.

    Times are UNIX timestamps in seconds (None until the event happens). `params` never contains
    secrets: the queue removes token-like keys before storing them. `progress` is the latest report
    of the running job function, `result` what it returned, `error` a message fit to show users.
    """

    id: int
    kind: str
    params: dict[str, Any]
    status: JobStatus
    progress: dict[str, Any] | None
    result: dict[str, Any] | None
    error: str | None
    created_at: float
    started_at: float | None
    finished_at: float | None
    cancel_requested: bool

    @property
    def is_active(self) -> bool:
        return self.status in ACTIVE_STATUSES

    @property
    def duration_seconds(self) -> float | None:
        """Seconds from start to finish, or None if the job never started or has not finished."""
        if self.started_at is None or self.finished_at is None:
            return None
        return self.finished_at - self.started_at
