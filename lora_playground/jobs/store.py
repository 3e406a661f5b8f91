"""SQLite persistence of job records and their progress events (standard library `sqlite3`, WAL mode).

Every method opens its own short-lived connection, so the store is safe to share between the worker
threads and the request handlers of the app. Writes that must see a consistent count (the queue limit,
claiming the next job) run inside `BEGIN IMMEDIATE` transactions, which serialize writers across
threads and processes.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from lora_playground import settings
from lora_playground.errors import LimitError, PlaygroundError
from lora_playground.jobs.records import (
    ACTIVE_STATUSES,
    CANCELLED,
    FAILED,
    FINAL_STATUSES,
    INTERRUPTED_MESSAGE,
    QUEUED,
    RUNNING,
    Job,
    JobStatus,
)

logger = logging.getLogger(__name__)

SCHEMA_VERSION = 1

# Progress events kept per job for plots; a training run reports once per logging step, so this
# covers long runs. Later events still update the job's latest progress but are not appended.
MAX_EVENTS_PER_JOB = 20_000

_SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    kind TEXT NOT NULL,
    params TEXT NOT NULL,
    status TEXT NOT NULL,
    progress TEXT,
    result TEXT,
    error TEXT,
    created_at REAL NOT NULL,
    started_at REAL,
    finished_at REAL,
    cancel_requested INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS jobs_by_status ON jobs (status, id);
CREATE TABLE IF NOT EXISTS job_events (
    job_id INTEGER NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
    seq INTEGER NOT NULL,
    time REAL NOT NULL,
    data TEXT NOT NULL,
    PRIMARY KEY (job_id, seq)
);
"""


def default_path() -> Path:
    """Return the job database path of this installation: `<runs folder>/jobs.sqlite3`."""
    return settings.runs_dir() / "jobs.sqlite3"


def _loads(text: str | None) -> Any:
    return None if text is None else json.loads(text)


def _row_to_job(row: sqlite3.Row) -> Job:
    return Job(
        id=row["id"],
        kind=row["kind"],
        params=json.loads(row["params"]),
        status=row["status"],
        progress=_loads(row["progress"]),
        result=_loads(row["result"]),
        error=row["error"],
        created_at=row["created_at"],
        started_at=row["started_at"],
        finished_at=row["finished_at"],
        cancel_requested=bool(row["cancel_requested"]),
    )


class JobStore:
    """Job records in one SQLite file; see the module docstring for the locking rules.

    `path` defaults to `default_path()`. The folder is created if missing. Params, progress and results
    must be JSON-serializable; a value that is not raises TypeError, since that is a bug in the caller.
    """

    def __init__(self, path: str | Path | None = None):
        self.path = Path(path) if path is not None else default_path()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._connect() as connection:
            connection.execute("PRAGMA journal_mode=WAL")
            connection.executescript(_SCHEMA)
            connection.execute(f"PRAGMA user_version={SCHEMA_VERSION}")

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        # isolation_level=None: no implicit transactions, so BEGIN IMMEDIATE below is the only one.
        connection = sqlite3.connect(self.path, timeout=30.0, isolation_level=None)
        connection.row_factory = sqlite3.Row
        connection.execute("PRAGMA foreign_keys=ON")
        try:
            yield connection
        finally:
            connection.close()

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        with self._connect() as connection:
            connection.execute("BEGIN IMMEDIATE")
            try:
                yield connection
            except BaseException:
                connection.execute("ROLLBACK")
                raise
            connection.execute("COMMIT")

    def create(self, kind: str, params: dict[str, Any], max_active: int | None = None) -> Job:
        """Insert a queued job and return it.

        Raises LimitError when `max_active` is set and that many jobs are already queued or running.
        The count and the insert happen in one transaction, so concurrent submitters cannot overshoot.
        """
        params_json = json.dumps(params)
        with self._transaction() as connection:
            if max_active is not None:
                active = self._count(connection, ACTIVE_STATUSES)
                if active >= max_active:
                    raise LimitError(
                        f"The job queue is full: {active} jobs are queued or running (limit {max_active}).",
                        "Wait for a job to finish or cancel one, or raise LORA_PLAYGROUND_MAX_QUEUED_JOBS.",
                    )
            cursor = connection.execute(
                "INSERT INTO jobs (kind, params, status, created_at) VALUES (?, ?, ?, ?)",
                (kind, params_json, QUEUED, time.time()),
            )
            job_id = cursor.lastrowid
            row = connection.execute("SELECT * FROM jobs WHERE id = ?", (job_id,)).fetchone()
        return _row_to_job(row)

    def find(self, job_id: int) -> Job | None:
        with self._connect() as connection:
            row = connection.execute("SELECT * FROM jobs WHERE id = ?", (job_id,)).fetchone()
        return None if row is None else _row_to_job(row)

    def get(self, job_id: int) -> Job:
        """Return the job with this id; raises PlaygroundError if there is none."""
        job = self.find(job_id)
        if job is None:
            raise PlaygroundError(f"Job {job_id} was not found.", "Pick a job from the job list.")
        return job

    def list(
        self,
        limit: int | None = 100,
        statuses: tuple[JobStatus, ...] | None = None,
        kinds: tuple[str, ...] | None = None,
    ) -> list[Job]:
        """Return jobs newest first, optionally only those with the given statuses or kinds."""
        query = "SELECT * FROM jobs"
        conditions, values = [], []
        if statuses:
            conditions.append(f"status IN ({', '.join('?' * len(statuses))})")
            values.extend(statuses)
        if kinds:
            conditions.append(f"kind IN ({', '.join('?' * len(kinds))})")
            values.extend(kinds)
        if conditions:
            query += " WHERE " + " AND ".join(conditions)
        query += " ORDER BY id DESC"
        if limit is not None:
            query += " LIMIT ?"
            values.append(limit)
        with self._connect() as connection:
            rows = connection.execute(query, values).fetchall()
        return [_row_to_job(row) for row in rows]

    @staticmethod
    def _count(connection: sqlite3.Connection, statuses: tuple[JobStatus, ...]) -> int:
        placeholders = ", ".join("?" * len(statuses))
        row = connection.execute(f"SELECT COUNT(*) FROM jobs WHERE status IN ({placeholders})", statuses).fetchone()
        return row[0]

    def count(self, statuses: tuple[JobStatus, ...] = ACTIVE_STATUSES) -> int:
        with self._connect() as connection:
            return self._count(connection, statuses)

    def position(self, job_id: int) -> int | None:
        """Place of a queued job in the waiting line: 1 runs next. None if the job is not queued."""
        with self._connect() as connection:
            row = connection.execute("SELECT status FROM jobs WHERE id = ?", (job_id,)).fetchone()
            if row is None or row["status"] != QUEUED:
                return None
            ahead = connection.execute(
                "SELECT COUNT(*) FROM jobs WHERE status = ? AND id <= ?", (QUEUED, job_id)
            ).fetchone()
        return ahead[0]

    def claim_next(self, kinds: tuple[str, ...] | None = None) -> Job | None:
        """Mark the oldest queued job (of the given kinds, if set) as running and return it, or None."""
        query = "SELECT id FROM jobs WHERE status = ?"
        values: list[Any] = [QUEUED]
        if kinds is not None:
            query += f" AND kind IN ({', '.join('?' * len(kinds))})"
            values.extend(kinds)
        query += " ORDER BY id LIMIT 1"
        with self._transaction() as connection:
            row = connection.execute(query, values).fetchone()
            if row is None:
                return None
            connection.execute(
                "UPDATE jobs SET status = ?, started_at = ? WHERE id = ?", (RUNNING, time.time(), row["id"])
            )
            claimed = connection.execute("SELECT * FROM jobs WHERE id = ?", (row["id"],)).fetchone()
        return _row_to_job(claimed)

    def record_progress(self, job_id: int, progress: dict[str, Any]) -> None:
        """Store `progress` as the job's latest progress and append it to the job's event list."""
        progress_json = json.dumps(progress)
        with self._transaction() as connection:
            connection.execute("UPDATE jobs SET progress = ? WHERE id = ?", (progress_json, job_id))
            row = connection.execute(
                "SELECT COUNT(*), COALESCE(MAX(seq), 0) FROM job_events WHERE job_id = ?", (job_id,)
            ).fetchone()
            if row[0] < MAX_EVENTS_PER_JOB:
                connection.execute(
                    "INSERT INTO job_events (job_id, seq, time, data) VALUES (?, ?, ?, ?)",
                    (job_id, row[1] + 1, time.time(), progress_json),
                )

    def events(self, job_id: int, after_seq: int = 0) -> list[dict[str, Any]]:
        """Return the progress reports of a job in order, each with its `seq` and `time` added."""
        with self._connect() as connection:
            rows = connection.execute(
                "SELECT seq, time, data FROM job_events WHERE job_id = ? AND seq > ? ORDER BY seq",
                (job_id, after_seq),
            ).fetchall()
        return [{**json.loads(row["data"]), "seq": row["seq"], "time": row["time"]} for row in rows]

    def finish(
        self,
        job_id: int,
        status: JobStatus,
        result: dict[str, Any] | None = None,
        error: str | None = None,
    ) -> Job:
        """Record the outcome of a job; `status` must be succeeded, failed or cancelled."""
        if status not in FINAL_STATUSES:
            raise ValueError(f"status={status!r} is not final; use one of {FINAL_STATUSES}")
        result_json = None if result is None else json.dumps(result)
        with self._transaction() as connection:
            connection.execute(
                "UPDATE jobs SET status = ?, result = ?, error = ?, finished_at = ? WHERE id = ?",
                (status, result_json, error, time.time(), job_id),
            )
            row = connection.execute("SELECT * FROM jobs WHERE id = ?", (job_id,)).fetchone()
        return _row_to_job(row)

    def request_cancel(self, job_id: int) -> Job:
        """Cancel a queued job at once, or flag a running one; finished jobs are returned unchanged."""
        with self._transaction() as connection:
            row = connection.execute("SELECT status FROM jobs WHERE id = ?", (job_id,)).fetchone()
            if row is None:
                raise PlaygroundError(f"Job {job_id} was not found.", "Pick a job from the job list.")
            if row["status"] == QUEUED:
                connection.execute(
                    "UPDATE jobs SET status = ?, error = ?, finished_at = ?, cancel_requested = 1 WHERE id = ?",
                    (CANCELLED, "Cancelled before it started.", time.time(), job_id),
                )
            elif row["status"] == RUNNING:
                connection.execute("UPDATE jobs SET cancel_requested = 1 WHERE id = ?", (job_id,))
            updated = connection.execute("SELECT * FROM jobs WHERE id = ?", (job_id,)).fetchone()
        return _row_to_job(updated)

    def recover_interrupted(self) -> list[int]:
        """Close jobs that a crash or restart left open: running ones failed, queued ones cancelled.

        Call this once when the single process that runs jobs starts, before any worker claims a job.
        Returns the ids of the jobs it closed.
        """
        now = time.time()
        with self._transaction() as connection:
            rows = connection.execute(
                "SELECT id, status FROM jobs WHERE status IN (?, ?)", (QUEUED, RUNNING)
            ).fetchall()
            for row in rows:
                status = FAILED if row["status"] == RUNNING else CANCELLED
                connection.execute(
                    "UPDATE jobs SET status = ?, error = ?, finished_at = ? WHERE id = ?",
                    (status, INTERRUPTED_MESSAGE, now, row["id"]),
                )
        job_ids = [row["id"] for row in rows]
        if job_ids:
            logger.warning("Marked %d jobs interrupted by a restart: %s", len(job_ids), job_ids)
        return job_ids
