"""Train-evaluate-store workflows shared by the CLI and the app.

`train_and_store` trains one run (LoRA or full finetune) on the shared base, evaluates it on the test
split and saves it in the adapter store. `compare` does that for LoRA and the full-finetune baseline
with the same data and schedule, then writes a side-by-side report. `compare_stored` compares entries
that are already in the store on one task.
"""

import json
import logging
import threading
from dataclasses import dataclass, replace
from pathlib import Path

from lora_playground import settings
from lora_playground.adapters.metadata import AdapterMetadata, BaseModelRef
from lora_playground.adapters.store import AdapterEntry, AdapterStore
from lora_playground.errors import AdapterError, ConfigError, SecondaryProcessDone
from lora_playground.evaluation import ComparisonReport, RunResult, compare_runs
from lora_playground.models import get_shared_base
from lora_playground.pipeline.evaluate import evaluate_model
from lora_playground.tasks.task import TaskData
from lora_playground.training.config import TrainConfig
from lora_playground.training.trainer import TrainedRun, train

logger = logging.getLogger(__name__)

# Weight files whose size is the "stored size" of an entry: what must be kept to reload the model.
WEIGHT_FILES = ("adapter_model.safetensors", "model.safetensors")


@dataclass
class StoredRun:
    """A trained run after saving: its store entry, its test-split evaluation and the training result."""

    name: str
    entry: AdapterEntry
    result: RunResult
    trained: TrainedRun


def train_and_store(
    base_name: str,
    task_data: TaskData,
    config: TrainConfig,
    name: str,
    *,
    force: bool = False,
    progress=None,
    cancel_event: threading.Event | None = None,
    store: AdapterStore | None = None,
    trust_remote_code: bool = False,
) -> StoredRun:
    """Train `config.method` on the shared base `base_name`, evaluate on the test split, save entry `name`.

    The name is checked before training so a clash costs no training time. Metrics, costs (with the
    real size of the saved weight files as `stored_bytes`) and the data fingerprint go into the entry's
    metadata.json and model card. Raises PlaygroundError subclasses for bad input; nothing is written
    to the store unless training and evaluation both succeed.
    """
    store = store or AdapterStore()
    config.validate()
    folder = store.path(name)
    if folder.exists() and not force:
        raise AdapterError(
            f"An adapter named {name!r} already exists in {store.root}.",
            "Pass --force to replace it, or pick another name.",
        )

    base = get_shared_base(base_name, trust_remote_code=trust_remote_code)
    logger.info("Training %s run %r on %s (task %s)", config.method, name, base.spec.name, task_data.task.name)
    run_progress = None
    if progress is not None:
        # Tag each event with the run name, so a listener following a LoRA-vs-full comparison can tell
        # the two runs' losses apart.
        def run_progress(event: dict) -> None:
            progress({**event, "run": name})

    trained = train(base, task_data, config, progress=run_progress, cancel_event=cancel_event)
    if not trained.is_main_process:
        # Under torchrun / accelerate launch every process trains; only the first one evaluates and saves.
        raise SecondaryProcessDone(name)
    result = evaluate_model(
        trained.model, base.tokenizer, task_data, name=name, kind=config.method, max_length=config.max_length
    )

    cost = {**trained.cost.to_dict(), **result.cost}
    metadata = AdapterMetadata(
        name=name,
        kind=config.method,
        task=trained.task.to_dict(),
        base_model=BaseModelRef.from_shared_base(base),
        train_config=config.to_dict(),
        metrics=result.metrics,
        val_metrics=trained.val_metrics,
        cost=cost,
        data_fingerprint=task_data.fingerprint,
        extra={"notes": list(task_data.notes) + list(trained.notes)},
    )
    if config.method == "lora":
        entry = store.save_lora(name, trained.model, metadata, adapter_name=trained.adapter_name, force=force)
    else:
        entry = store.save_full(name, trained.model, base.tokenizer, metadata, force=force)

    stored_bytes = sum((entry.path / file).stat().st_size for file in WEIGHT_FILES if (entry.path / file).exists())
    cost["stored_bytes"] = stored_bytes
    entry = store.update_metadata(name, {"cost": cost})
    result = replace(result, cost=cost)
    _write_evaluation(entry, task_data, result)
    logger.info("Saved %s entry %r (%d bytes of weights) in %s", config.method, name, stored_bytes, entry.path)
    return StoredRun(name=name, entry=entry, result=result, trained=trained)


@dataclass
class ComparisonOutcome:
    """The outcome of `compare`: the report, the runs behind it and the paths of the report files."""

    report: ComparisonReport
    runs: list[StoredRun]
    json_path: Path
    markdown_path: Path


def compare(
    base_name: str,
    task_data: TaskData,
    lora_config: TrainConfig,
    full_config: TrainConfig,
    *,
    lora_name: str,
    full_name: str,
    output_dir: Path | None = None,
    include_base: bool | None = None,
    force: bool = False,
    progress=None,
    cancel_event: threading.Event | None = None,
    store: AdapterStore | None = None,
) -> ComparisonOutcome:
    """Train LoRA and the full-finetune baseline on the same data and schedule, and compare them on the test split.

    Both runs share the seed, epochs, batch size, max length and data order; only the trainable weights
    and the learning rate differ. `include_base` adds the untrained base model as a third column; it
    defaults to on for generation (where the base can answer) and is not available for classification
    (the untrained base has no trained head). Writes comparison.json and comparison.md to `output_dir`
    (default: <runs>/compare-<lora_name>).
    """
    if lora_config.method != "lora" or full_config.method != "full":
        raise ConfigError(
            f"compare needs a 'lora' and a 'full' config, got {lora_config.method!r} and {full_config.method!r}."
        )
    if lora_name == full_name:
        raise ConfigError(f"The LoRA and full-finetune runs need different names, both are {lora_name!r}.")
    task_type = task_data.task.type
    if include_base is None:
        include_base = task_type == "generation"
    if include_base and task_type == "classification":
        raise ConfigError(
            "include_base works for generation tasks only: an untrained base has no trained classification head."
        )
    store = store or AdapterStore()
    for name in (lora_name, full_name):
        if store.path(name).exists() and not force:
            raise AdapterError(f"An adapter named {name!r} already exists.", "Pass --force to replace it, or pick other names.")

    runs = []
    # NOTE: both runs share this process, so one-time work (lazy imports, metric modules loaded at the
    # first validation) lands in the first run's peak-memory figure. benchmarks/lora_vs_full.py measures
    # each method in a fresh process for figures to quote.
    for config, name in ((lora_config, lora_name), (full_config, full_name)):
        runs.append(
            train_and_store(
                base_name, task_data, config, name, force=force, progress=progress, cancel_event=cancel_event, store=store
            )
        )
    results = [run.result for run in runs]
    if include_base:
        base = get_shared_base(base_name)
        results.insert(0, evaluate_model(base.causal_lm_model(), base.tokenizer, task_data, name="base", kind="base",
                                         max_length=lora_config.max_length))

    report = compare_runs(results, _test_examples(task_data), task_data.task.label_names or None, task_type)
    output_dir = Path(output_dir) if output_dir else settings.runs_dir() / f"compare-{lora_name}"
    json_path, markdown_path = report.write(output_dir)
    logger.info("Wrote the comparison to %s and %s", json_path, markdown_path)
    return ComparisonOutcome(report=report, runs=runs, json_path=json_path, markdown_path=markdown_path)


def compare_stored(
    names: list[str],
    task_data: TaskData,
    *,
    base_name: str | None = None,
    output_dir: Path | None = None,
    store: AdapterStore | None = None,
) -> tuple[ComparisonReport, Path, Path]:
    """Evaluate stored entries on the test split of `task_data` and compare them side by side.

    All entries must be for the same base and the task's label names; their training costs come from
    their metadata. Reuses saved evaluations when the data fingerprint matches.
    """
    if not names:
        raise ConfigError("Name at least one stored adapter to compare.")
    store = store or AdapterStore()
    entries = [store.get(name) for name in names]
    bases = {entry.metadata.base_model.name for entry in entries}
    if base_name is None:
        if len(bases) > 1:
            raise AdapterError(
                f"The adapters were trained on different bases: {', '.join(sorted(bases))}.",
                "Compare adapters of one base at a time.",
            )
        base_name = bases.pop()
    base = get_shared_base(base_name)

    results = []
    for entry in entries:
        _check_same_task(entry, task_data)
        result = _read_evaluation(entry, task_data)
        if result is None:
            model = store.load(entry.name, base)
            max_length = int(entry.metadata.train_config.get("max_length", 128))
            result = evaluate_model(
                model, base.tokenizer, task_data, name=entry.name, kind=entry.metadata.kind, max_length=max_length
            )
            _write_evaluation(entry, task_data, result)
        results.append(replace(result, cost={**entry.metadata.cost, **result.cost}))

    report = compare_runs(results, _test_examples(task_data), task_data.task.label_names or None, task_data.task.type)
    output_dir = Path(output_dir) if output_dir else settings.runs_dir() / ("compare-" + "-vs-".join(names))[:120]
    json_path, markdown_path = report.write(output_dir)
    return report, json_path, markdown_path


def _check_same_task(entry: AdapterEntry, task_data: TaskData) -> None:
    metadata = entry.metadata
    if metadata.task_type != task_data.task.type:
        raise AdapterError(
            f"Adapter {entry.name!r} is a {metadata.task_type} adapter, but task {task_data.task.name!r} is {task_data.task.type}.",
            "Pick adapters trained for this kind of task.",
        )
    if metadata.task_type == "classification" and metadata.label_names != list(task_data.task.label_names):
        raise AdapterError(
            f"Adapter {entry.name!r} predicts labels {metadata.label_names}, but task {task_data.task.name!r} has "
            f"labels {task_data.task.label_names}.",
            "Evaluate it on data with the same label names.",
        )


def _test_examples(task_data: TaskData) -> list[dict]:
    return [dict(row) for row in task_data.splits["test"]]


def _evaluation_path(name: str, task_data: TaskData) -> Path:
    return settings.runs_dir() / "evaluations" / f"{name}-{task_data.fingerprint[:16]}.json"


def _write_evaluation(entry: AdapterEntry, task_data: TaskData, result: RunResult) -> None:
    """Keep the test-split predictions, so later comparisons on the same data skip the evaluation.

    The file records the entry's creation time: an entry replaced under the same name does not reuse it.
    """
    path = _evaluation_path(entry.name, task_data)
    path.parent.mkdir(parents=True, exist_ok=True)
    record = {"entry_created_at": entry.metadata.created_at, "result": result.to_dict()}
    temporary = path.with_suffix(".tmp")
    temporary.write_text(json.dumps(record), encoding="utf-8")
    temporary.replace(path)


def _read_evaluation(entry: AdapterEntry, task_data: TaskData) -> RunResult | None:
    path = _evaluation_path(entry.name, task_data)
    if not path.exists():
        return None
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
        if record.get("entry_created_at") != entry.metadata.created_at:
            return None
        return RunResult.from_dict(record["result"])
    except (OSError, ValueError, TypeError, KeyError):
        logger.warning("Ignoring unreadable saved evaluation %s", path)
        return None
