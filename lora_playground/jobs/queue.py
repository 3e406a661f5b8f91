"""A persistent job queue: worker threads run registered job functions one at a time (by default).

Jobs are plain callables registered by kind ("train", "compare", "hub_pull", ...), so the queue does
not depend on what they do. A job function receives a `JobContext` and returns a JSON-serializable dict
(or None). It reports progress with `context.report({...})` and should check `context.cancel_event`
(or call `context.raise_if_cancelled()`) at safe points; raising `CancelledError` marks the job cancelled.

Params, progress reports, results and error messages are stored without secret-named keys, and with
the job's secret values and anything shaped like a Hugging Face token replaced by "***" (see `redact`).

Only one process may run the queue of a given database: on start the queue marks every job that an
earlier process left queued or running as interrupted.
"""

from __future__ import annotations

import json
import logging
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from lora_playground import settings
from lora_playground.errors import CancelledError, ConfigError, PlaygroundError
from lora_playground.jobs.records import CANCELLED, FAILED, FINAL_STATUSES, SUCCEEDED, Job, JobStatus
from lora_playground.jobs.redact import redact_text, strip_secrets
from lora_playground.jobs.store import JobStore

logger = logging.getLogger(__name__)


@dataclass
class JobContext:
    """What a running job function gets: its id and params, secrets kept in memory only, and cancellation.

    `secrets` contains values such as a Hub token that were passed to `JobQueue.submit(secrets=...)`; they
    are never written to the database and are gone after a restart.
    """

    job_id: int
    kind: str
    params: dict[str, Any]
    secrets: dict[str, str]
    cancel_event: threading.Event
    _store: JobStore = field(repr=False)

    def report(self, progress: dict[str, Any]) -> None:
        """Persist a progress report (a JSON-serializable dict, e.g. step, max_steps, loss, eta_seconds).

        Secret-named keys are dropped, and the job's own secret values are replaced by "***".
        """
        self._store.record_progress(self.job_id, strip_secrets(progress, tuple(self.secrets.values())))

    def raise_if_cancelled(self) -> None:
        if self.cancel_event.is_set():
            raise CancelledError(f"Job {self.job_id} was cancelled.")


JobFunction = Callable[[JobContext], "dict[str, Any] | None"]


class JobQueue:
    """Runs submitted jobs in the background and records everything in a `JobStore`.

    Args:
        store: where jobs are persisted; defaults to `JobStore()` under the runs folder.
        concurrency: number of worker threads, i.e. jobs that run at the same time (default 1).
        max_active_jobs: most jobs queued or running at once; a further `submit` raises LimitError.
            Defaults to `settings.limits().max_queued_jobs`.
        recover: on construction, mark jobs left queued or running by an earlier process as interrupted.
    """

    def __init__(
        self,
        store: JobStore | None = None,
        *,
        concurrency: int = 1,
        max_active_jobs: int | None = None,
        recover: bool = True,
    ):
        if concurrency < 1:
            raise ConfigError(f"concurrency={concurrency} must be at least 1.", "Use 1 to run jobs one at a time.")
        self.store = store if store is not None else JobStore()
        self.concurrency = concurrency
        self.max_active_jobs = max_active_jobs if max_active_jobs is not None else settings.limits().max_queued_jobs
        self._functions: dict[str, JobFunction] = {}
        self._secrets: dict[int, dict[str, str]] = {}
        self._cancel_events: dict[int, threading.Event] = {}
        self._lock = threading.Lock()
        self._wakeup = threading.Condition(self._lock)
        self._stopping = False
        self._workers: list[threading.Thread] = []
        if recover:
            self.store.recover_interrupted()

    def register(self, kind: str, function: JobFunction) -> None:
        """Make jobs of `kind` runnable by `function`; registering a kind again replaces its function."""
        with self._lock:
            self._functions[kind] = function

    @property
    def kinds(self) -> tuple[str, ...]:
        with self._lock:
            return tuple(self._functions)

    def start(self) -> None:
        """Start the worker threads (daemon threads); calling it again does nothing."""
        with self._lock:
            if self._workers:
                return
            self._stopping = False
            for index in range(self.concurrency):
                worker = threading.Thread(target=self._work, name=f"job-worker-{index}", daemon=True)
                self._workers.append(worker)
                worker.start()
        logger.info("Job queue started with %d worker(s) on %s", self.concurrency, self.store.path)

    def shutdown(self, cancel_running: bool = True, timeout: float | None = 30.0) -> None:
        """Stop the workers after their current job; with `cancel_running`, ask running jobs to stop first."""
        with self._lock:
            self._stopping = True
            if cancel_running:
                for event in self._cancel_events.values():
                    event.set()
            self._wakeup.notify_all()
            workers, self._workers = self._workers, []
        for worker in workers:
            worker.join(timeout)
        logger.info("Job queue stopped")

    def submit(self, kind: str, params: dict[str, Any], *, secrets: dict[str, str] | None = None) -> Job:
        """Queue a job and return its record.

        `params` are stored with secret-looking keys removed (a job function that needs a token gets it
        from `secrets`, which stays in memory). Raises ConfigError for an unknown kind and LimitError
        when the queue is full.
        """
        with self._lock:
            if kind not in self._functions:
                known = ", ".join(sorted(self._functions)) or "none"
                raise ConfigError(f"Unknown job kind {kind!r}.", f"Registered kinds: {known}.")
        stored_params = strip_secrets(params)
        if stored_params != params:
            logger.warning("Removed secret-looking values from the params of a %s job before storing them", kind)
        job = self.store.create(kind, stored_params, max_active=self.max_active_jobs)
        with self._lock:
            if secrets:
                self._secrets[job.id] = dict(secrets)
            self._wakeup.notify()
        logger.info("Queued job %d (%s)", job.id, kind)
        return job

    def cancel(self, job_id: int) -> Job:
        """Cancel a queued job now, or ask a running one to stop (it ends as cancelled when it notices)."""
        job = self.store.request_cancel(job_id)
        with self._lock:
            event = self._cancel_events.get(job_id)
            if event is not None:
                event.set()
            if job.status in FINAL_STATUSES:
                self._secrets.pop(job_id, None)
        logger.info("Cancel requested for job %d (now %s)", job_id, job.status)
        return job

    def get(self, job_id: int) -> Job:
        return self.store.get(job_id)

    def list(self, limit: int | None = 100, **filters: Any) -> list[Job]:
        return self.store.list(limit=limit, **filters)

    def position(self, job_id: int) -> int | None:
        """Place of a queued job in the waiting line (1 runs next), or None if it is not waiting."""
        return self.store.position(job_id)

    def events(self, job_id: int, after_seq: int = 0) -> list[dict[str, Any]]:
        return self.store.events(job_id, after_seq)

    def wait(self, job_id: int, timeout: float | None = None, poll_seconds: float = 0.05) -> Job:
        """Block until the job is finished and return it; raises TimeoutError after `timeout` seconds."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            job = self.store.get(job_id)
            if job.status in FINAL_STATUSES:
                return job
            if deadline is not None and time.monotonic() > deadline:
                raise TimeoutError(f"Job {job_id} is still {job.status} after {timeout} s")
            time.sleep(poll_seconds)

    def _work(self) -> None:
        while True:
            with self._lock:
                if self._stopping:
                    return
                kinds = tuple(self._functions)
            job = self.store.claim_next(kinds) if kinds else None
            if job is None:
                with self._lock:
                    if self._stopping:
                        return
                    # Wake on submit; the timeout also picks up jobs queued before a function was registered.
                    self._wakeup.wait(timeout=1.0)
                continue
            self._run(job)

    def _run(self, job: Job) -> None:
        with self._lock:
            function = self._functions[job.kind]
            secrets = self._secrets.pop(job.id, {})
            cancel_event = threading.Event()
            self._cancel_events[job.id] = cancel_event
            if self._stopping:
                cancel_event.set()
        # A cancel that arrived between claiming and registering the event is only in the database.
        if self.store.get(job.id).cancel_requested:
            cancel_event.set()

        context = JobContext(job.id, job.kind, job.params, secrets, cancel_event, self.store)
        secret_values = tuple(secrets.values())
        logger.info("Started job %d (%s)", job.id, job.kind)
        status: JobStatus
        result = None
        error = None
        try:
            result = function(context)
            if result is not None:
                json.dumps(result)
            status = SUCCEEDED
        except CancelledError as exc:
            status, error = CANCELLED, redact_text(exc.message or "Cancelled by the user.", secret_values)
        except PlaygroundError as exc:
            status, error = FAILED, redact_text(str(exc), secret_values)
            logger.warning("Job %d (%s) failed: %s", job.id, job.kind, error)
        except Exception as exc:
            status = FAILED
            error = redact_text(
                f"Unexpected error ({type(exc).__name__}): {exc}. The app log has the details.", secret_values
            )
            details = redact_text("".join(traceback.format_exception(exc)), secret_values)
            logger.error("Job %d (%s) crashed:\n%s", job.id, job.kind, details)
        finally:
            with self._lock:
                self._cancel_events.pop(job.id, None)
        stored_result = strip_secrets(result, secret_values) if status == SUCCEEDED and result is not None else None
        self.store.finish(job.id, status, result=stored_result, error=error)
        logger.info("Finished job %d (%s): %s", job.id, job.kind, status)
