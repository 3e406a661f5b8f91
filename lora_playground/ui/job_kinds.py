"""The app's background job kinds: thin adapters from job params to library calls.

Each function receives a `JobContext` and returns a JSON-serializable dict with a `summary` line for
the job list. The work itself lives in the library (`lora_playground.pipeline`, `lora_playground.hub`);
these functions only unpack params, load the task data and pack results.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from lora_playground.jobs import JobContext, JobQueue
from lora_playground.ui.formatting import format_bytes, format_count, format_seconds

if TYPE_CHECKING:
    from lora_playground.ui.context import AppContext

logger = logging.getLogger(__name__)

PRIMARY_METRIC = {"classification": "accuracy", "generation": "rouge_l"}


def load_job_data(job: JobContext):
    """Load the task data named by params["source"] ({"source": ..., **load_task_data options})."""
    from lora_playground.data import load_task_data

    options = dict(job.params["source"])
    source = options.pop("source")
    job.report({"event": "status", "message": "loading the data"})
    return load_task_data(source, **options)


def describe_run(name: str, task_type: str, metrics: dict, cost: dict) -> str:
    """Summarize a run in one line, e.g. "sms-lora: accuracy 0.912, 2,114 trainable parameters, 8.3 KiB, 4.1 s"."""
    metric = PRIMARY_METRIC.get(task_type, "accuracy")
    parts = [f"{name}:"]
    if isinstance(metrics.get(metric), (int, float)):
        parts.append(f"{metric} {metrics[metric]:.3f},")
    parts.append(
        f"{format_count(cost.get('trainable_params'))} trainable parameters, "
        f"{format_bytes(cost.get('stored_bytes'))}, {format_seconds(cost.get('train_wall_time_s'))}"
    )
    return " ".join(parts)


def run_train(job: JobContext, context: AppContext) -> dict:
    """Train one run (LoRA or full finetune) on the chosen data, evaluate it and store it."""
    from lora_playground.pipeline import train_and_store
    from lora_playground.training.config import TrainConfig

    params = job.params
    base = context.check_base(params["base"])
    task_data = load_job_data(job)
    stored = train_and_store(
        base,
        task_data,
        TrainConfig.from_dict(params["config"]),
        params["name"],
        force=bool(params.get("force")),
        progress=job.report,
        cancel_event=job.cancel_event,
    )
    task_type = task_data.task.type
    run = {"name": stored.name, "kind": stored.result.kind, "metrics": stored.result.metrics, "cost": stored.result.cost}
    return {
        "summary": describe_run(stored.name, task_type, stored.result.metrics, stored.result.cost),
        "adapter": stored.name,
        "task_type": task_type,
        "run": run,
    }


def run_train_compare(job: JobContext, context: AppContext) -> dict:
    """Train LoRA and the full-finetune baseline with one schedule, store both and compare them."""
    from lora_playground.pipeline import compare
    from lora_playground.training.config import TrainConfig

    params = job.params
    base = context.check_base(params["base"])
    task_data = load_job_data(job)
    outcome = compare(
        base,
        task_data,
        TrainConfig.from_dict(params["lora_config"]),
        TrainConfig.from_dict(params["full_config"]),
        lora_name=params["lora_name"],
        full_name=params["full_name"],
        force=bool(params.get("force")),
        progress=job.report,
        cancel_event=job.cancel_event,
    )
    report = outcome.report
    lines = [describe_run(run.name, task_data.task.type, run.result.metrics, run.result.cost) for run in outcome.runs]
    return {
        "summary": "; ".join(lines),
        "adapters": [run.name for run in outcome.runs],
        "task_type": task_data.task.type,
        "report": report.to_dict(),
        "markdown": report.to_markdown(),
    }


def run_compare(job: JobContext, context: AppContext) -> dict:
    """Evaluate stored runs on the test split of their task's data and compare them side by side."""
    from lora_playground.pipeline import compare_stored

    params = job.params
    task_data = load_job_data(job)
    job.report({"event": "status", "message": "evaluating on the test split"})
    report, _, _ = compare_stored(list(params["adapters"]), task_data, base_name=context.check_base(params["base"]))
    names = ", ".join(run["name"] for run in report.to_dict()["runs"])
    return {"summary": f"compared {names}", "report": report.to_dict(), "markdown": report.to_markdown()}


def run_hub_push(job: JobContext, context: AppContext) -> dict:
    """Upload a stored adapter and its model card to the Hub in one commit."""
    from lora_playground.hub import push_adapter

    params = job.params
    pushed = push_adapter(
        params["name"],
        params["repo_id"],
        private=bool(params.get("private", True)),
        token=job.secrets.get("token"),
        baseline=params.get("baseline"),
        base_hub_id=params.get("base_hub_id"),
    )
    return {
        "summary": f"pushed {params['name']} to {pushed.repo_url} (commit {pushed.commit_id[:12]})",
        "repo_url": pushed.repo_url,
        "commit_id": pushed.commit_id,
        "files": list(pushed.files),
    }


def run_hub_pull(job: JobContext, context: AppContext) -> dict:
    """Download an adapter from the Hub, check that it fits the chosen base, and store it."""
    from lora_playground.hub import pull_adapter
    from lora_playground.models import get_shared_base

    params = job.params
    base = get_shared_base(context.check_base(params["base"]))
    entry = pull_adapter(
        params["repo_id"],
        revision=params.get("revision"),
        name=params.get("name"),
        token=job.secrets.get("token"),
        base=base,
    )
    commit = entry.metadata.provenance.commit or ""
    return {
        "summary": f"pulled {params['repo_id']} (commit {commit[:12]}) as {entry.name}",
        "adapter": entry.name,
        "commit": commit,
    }


def register_job_kinds(queue: JobQueue, context: AppContext) -> None:
    """Register train, train_compare, compare, hub_push and hub_pull on `queue`, bound to the app's context."""
    queue.register("train", lambda job: run_train(job, context))
    queue.register("train_compare", lambda job: run_train_compare(job, context))
    queue.register("compare", lambda job: run_compare(job, context))
    queue.register("hub_push", lambda job: run_hub_push(job, context))
    queue.register("hub_pull", lambda job: run_hub_pull(job, context))
