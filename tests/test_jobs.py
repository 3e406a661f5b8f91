"""The SQLite job queue: persistence, restart recovery, cancellation, ordering, limits and secrets."""

import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

from lora_playground.errors import CancelledError, ConfigError, DataError, LimitError
from lora_playground.jobs import (
    CANCELLED,
    FAILED,
    INTERRUPTED_MESSAGE,
    QUEUED,
    RUNNING,
    SUCCEEDED,
    JobQueue,
    JobStore,
    strip_secrets,
)

REPO_ROOT = Path(__file__).resolve().parent.parent
FAKE_TOKEN = "hf_" + "A1b2C3d4E5" * 4


@pytest.fixture
def store(tmp_path) -> JobStore:
    return JobStore(tmp_path / "jobs.sqlite3")


@pytest.fixture
def queue(store):
    job_queue = JobQueue(store, max_active_jobs=50)
    yield job_queue
    job_queue.shutdown(cancel_running=True, timeout=10)


def echo(context):
    return {"echo": context.params["value"]}


def test_default_store_lives_in_runs_folder(tmp_path):
    store = JobStore()
    assert store.path == tmp_path / "runs" / "jobs.sqlite3"
    assert store.path.exists()


def test_job_runs_and_stores_result(queue):
    queue.register("echo", echo)
    queue.start()
    job = queue.submit("echo", {"value": 7})
    assert job.status == QUEUED
    finished = queue.wait(job.id, timeout=10)
    assert finished.status == SUCCEEDED
    assert finished.result == {"echo": 7}
    assert finished.error is None
    assert finished.started_at is not None
    assert finished.finished_at >= finished.started_at >= finished.created_at


def test_jobs_persist_across_queue_instances(tmp_path):
    path = tmp_path / "jobs.sqlite3"
    first = JobQueue(JobStore(path))
    first.register("echo", echo)
    first.start()
    job = first.submit("echo", {"value": "kept"})
    first.wait(job.id, timeout=10)
    first.shutdown()

    second = JobQueue(JobStore(path))
    reloaded = second.get(job.id)
    assert reloaded.status == SUCCEEDED
    assert reloaded.result == {"echo": "kept"}
    assert [listed.id for listed in second.list()] == [job.id]


def test_restart_marks_open_jobs_interrupted(tmp_path):
    path = tmp_path / "jobs.sqlite3"
    store = JobStore(path)
    running = store.create("train", {"n": 1})
    store.claim_next()
    waiting = store.create("train", {"n": 2})
    done = store.create("train", {"n": 3})
    store.finish(done.id, SUCCEEDED, result={"ok": True})

    JobQueue(JobStore(path))

    assert store.get(running.id).status == FAILED
    assert store.get(running.id).error == INTERRUPTED_MESSAGE
    assert store.get(waiting.id).status == CANCELLED
    assert store.get(waiting.id).error == INTERRUPTED_MESSAGE
    assert store.get(done.id).status == SUCCEEDED
    assert store.get(done.id).result == {"ok": True}


def test_sigkill_during_job_is_marked_failed(tmp_path):
    path = tmp_path / "jobs.sqlite3"
    script = textwrap.dedent(
        f"""
        import time
        from lora_playground.jobs import JobQueue, JobStore

        def slow(context):
            context.report({{"step": 1}})
            time.sleep(60)

        queue = JobQueue(JobStore({str(path)!r}))
        queue.register("slow", slow)
        queue.start()
        queue.submit("slow", {{}})
        queue.submit("slow", {{}})
        time.sleep(60)
        """
    )
    process = subprocess.Popen([sys.executable, "-c", script], cwd=REPO_ROOT)
    try:
        store = JobStore(path)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            jobs = store.list() if path.exists() else []
            if any(job.status == RUNNING and job.progress for job in jobs):
                break
            time.sleep(0.1)
        else:
            pytest.fail("the job never started in the child process")
        os.kill(process.pid, signal.SIGKILL)
        process.wait(timeout=10)
    finally:
        if process.poll() is None:
            process.kill()

    JobQueue(JobStore(path))
    first, second = sorted(JobStore(path).list(), key=lambda job: job.id)
    assert first.status == FAILED
    assert first.error == INTERRUPTED_MESSAGE
    assert first.progress == {"step": 1}
    assert second.status == CANCELLED


def test_cancel_running_job(queue):
    started = threading.Event()

    def wait_for_cancel(context):
        started.set()
        while not context.cancel_event.wait(0.01):
            pass
        context.raise_if_cancelled()

    queue.register("wait", wait_for_cancel)
    queue.start()
    job = queue.submit("wait", {})
    assert started.wait(10)
    assert queue.cancel(job.id).cancel_requested
    finished = queue.wait(job.id, timeout=10)
    assert finished.status == CANCELLED
    assert "cancelled" in finished.error


def test_cancel_queued_job_never_runs(queue):
    release = threading.Event()
    ran = []

    def blocker(context):
        release.wait(10)

    def record(context):
        ran.append(context.job_id)

    queue.register("block", blocker)
    queue.register("record", record)
    queue.start()
    first = queue.submit("block", {})
    second = queue.submit("record", {})
    cancelled = queue.cancel(second.id)
    assert cancelled.status == CANCELLED
    release.set()
    queue.wait(first.id, timeout=10)
    third = queue.submit("record", {})
    queue.wait(third.id, timeout=10)
    assert ran == [third.id]
    assert queue.get(second.id).status == CANCELLED


def test_jobs_run_in_submission_order(store):
    order = []
    queue = JobQueue(store)
    queue.register("record", lambda context: order.append(context.params["index"]))
    submitted = [queue.submit("record", {"index": index}) for index in range(6)]
    queue.start()
    for job in submitted:
        queue.wait(job.id, timeout=10)
    queue.shutdown()
    assert order == list(range(6))


def test_position_counts_waiting_jobs(queue):
    release = threading.Event()
    started = threading.Event()

    def blocker(context):
        started.set()
        release.wait(10)

    queue.register("block", blocker)
    queue.start()
    running = queue.submit("block", {})
    assert started.wait(10)
    waiting = [queue.submit("block", {}) for _ in range(3)]
    assert queue.position(running.id) is None
    assert [queue.position(job.id) for job in waiting] == [1, 2, 3]
    queue.cancel(waiting[0].id)
    assert [queue.position(job.id) for job in waiting] == [None, 1, 2]
    release.set()
    queue.wait(waiting[-1].id, timeout=10)
    assert queue.position(waiting[-1].id) is None


def test_queue_limit_raises_limit_error(store):
    queue = JobQueue(store, max_active_jobs=2)
    queue.register("echo", echo)
    queue.submit("echo", {"value": 1})
    queue.submit("echo", {"value": 2})
    with pytest.raises(LimitError, match="limit 2"):
        queue.submit("echo", {"value": 3})
    assert store.count() == 2


def test_limit_defaults_to_settings(store, monkeypatch):
    monkeypatch.setenv("LORA_PLAYGROUND_MAX_QUEUED_JOBS", "3")
    assert JobQueue(store).max_active_jobs == 3


def test_concurrent_submitters_respect_limit(store):
    queue = JobQueue(store, max_active_jobs=25)
    queue.register("echo", echo)
    accepted, rejected = [], []
    lock = threading.Lock()

    def submit_many(thread_index):
        for index in range(10):
            try:
                job = queue.submit("echo", {"value": f"{thread_index}-{index}"})
            except LimitError:
                with lock:
                    rejected.append((thread_index, index))
            else:
                with lock:
                    accepted.append(job)

    threads = [threading.Thread(target=submit_many, args=(index,)) for index in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert len(accepted) == 25
    assert len(rejected) == 35
    assert len({job.id for job in accepted}) == 25
    stored = {job.id: job.params["value"] for job in store.list(limit=None)}
    assert stored == {job.id: job.params["value"] for job in accepted}


def test_concurrency_two_runs_jobs_together(store):
    both_running = threading.Barrier(2, timeout=10)

    def meet(context):
        both_running.wait()
        return {"met": True}

    queue = JobQueue(store, concurrency=2)
    queue.register("meet", meet)
    queue.start()
    jobs = [queue.submit("meet", {}) for _ in range(2)]
    results = [queue.wait(job.id, timeout=15) for job in jobs]
    queue.shutdown()
    assert [job.status for job in results] == [SUCCEEDED, SUCCEEDED]


def test_secrets_stay_out_of_database(store, queue):
    seen = {}

    def push(context):
        seen["secrets"] = dict(context.secrets)
        seen["params"] = dict(context.params)
        return {"url": "http://127.0.0.1/repo"}

    queue.register("hub_push", push)
    queue.start()
    params = {"repo_id": "me/adapter", "token": FAKE_TOKEN, "options": {"hf_token": FAKE_TOKEN, "private": True}}
    job = queue.submit("hub_push", params, secrets={"token": FAKE_TOKEN})
    finished = queue.wait(job.id, timeout=10)

    assert finished.status == SUCCEEDED
    assert finished.params == {"repo_id": "me/adapter", "options": {"private": True}}
    assert seen["secrets"] == {"token": FAKE_TOKEN}
    assert "token" not in seen["params"]
    database_bytes = b"".join(path.read_bytes() for path in store.path.parent.glob("jobs.sqlite3*"))
    assert FAKE_TOKEN.encode() not in database_bytes


def test_error_messages_redact_tokens(queue):
    def leak(context):
        raise DataError(f"could not read with token {context.secrets['token']}")

    def crash(context):
        raise RuntimeError(f"boom {context.secrets['token']}")

    queue.register("leak", leak)
    queue.register("crash", crash)
    queue.start()
    failed = queue.wait(queue.submit("leak", {}, secrets={"token": "s3cret-value"}).id, timeout=10)
    crashed = queue.wait(queue.submit("crash", {}, secrets={"token": "s3cret-value"}).id, timeout=10)

    assert failed.status == FAILED
    assert failed.error == "could not read with token ***"
    assert crashed.status == FAILED
    assert crashed.error.startswith("Unexpected error (RuntimeError): boom ***")
    assert "s3cret-value" not in crashed.error


def test_strip_secrets_removes_nested_keys():
    cleaned = strip_secrets({"Authorization": "Bearer x", "items": [{"api_key": "k", "name": "a"}], "note": FAKE_TOKEN})
    assert cleaned == {"items": [{"name": "a"}], "note": "***"}


def test_strip_secrets_keeps_short_hf_names():
    assert strip_secrets({"name": "hf_sentiment1"}) == {"name": "hf_sentiment1"}


def test_progress_reports_are_kept_in_order(queue):
    def train(context):
        for step in range(1, 4):
            context.report({"step": step, "loss": 1.0 / step})
        return None

    queue.register("train", train)
    queue.start()
    job = queue.wait(queue.submit("train", {}).id, timeout=10)
    assert job.status == SUCCEEDED
    assert job.result is None
    assert job.progress == {"step": 3, "loss": 1 / 3}
    events = queue.events(job.id)
    assert [event["step"] for event in events] == [1, 2, 3]
    assert [event["seq"] for event in events] == [1, 2, 3]
    assert [event["step"] for event in queue.events(job.id, after_seq=2)] == [3]


def test_cancelled_error_from_function_marks_cancelled(queue):
    def stop(context):
        raise CancelledError("Training was cancelled at step 3.")

    queue.register("stop", stop)
    queue.start()
    job = queue.wait(queue.submit("stop", {}).id, timeout=10)
    assert job.status == CANCELLED
    assert job.error == "Training was cancelled at step 3."


def test_unserializable_result_fails_job(queue):
    queue.register("bad", lambda context: {"value": object()})
    queue.start()
    job = queue.wait(queue.submit("bad", {}).id, timeout=10)
    assert job.status == FAILED
    assert "TypeError" in job.error


def test_unknown_kind_is_rejected(queue):
    queue.register("echo", echo)
    with pytest.raises(ConfigError, match="Unknown job kind 'nope'"):
        queue.submit("nope", {})


def test_concurrency_below_one_is_rejected(store):
    with pytest.raises(ConfigError, match="concurrency=0"):
        JobQueue(store, concurrency=0)
