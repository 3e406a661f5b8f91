"""Evaluate a merged adapter on each of its sources' tasks, beside the sources themselves.

A merged entry's metadata lists its sources (see `adapters.merging`), and each source's task data is
found again. A built-in task is rebuilt by name with the split seed the source was trained with. Any
other task needs its data given per source name, as a path or as `data.load_task_data` options. When the rebuilt
data's fingerprint differs from the one the source recorded, the row says so: the numbers are then
not on the data the source was trained and tested on.
"""

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from lora_playground.adapters.serving import get_pool
from lora_playground.adapters.store import AdapterEntry, AdapterStore
from lora_playground.errors import AdapterError
from lora_playground.tasks.task import TaskData

logger = logging.getLogger(__name__)

HEADLINE_METRICS = {"classification": "accuracy", "generation": "rouge_l"}
DataSource = str | Path | Mapping


@dataclass
class TaskScores:
    """One source task: the headline metric of every model on its split, or a note why it was skipped."""

    task: str
    source: str
    """The source adapter whose task this is."""
    metric: str
    scores: dict[str, float] = field(default_factory=dict)
    """Model name (each source, then the merged adapter) -> metric value, 0.0 to 1.0."""
    examples: int = 0
    note: str | None = None


@dataclass
class MergeComparison:
    """Scores of a merged adapter and its sources on each source task."""

    merged: str
    sources: list[str]
    method: str
    weights: list[float]
    split: str
    rows: list[TaskScores]

    def to_dict(self) -> dict:
        return {
            "merged": self.merged,
            "sources": self.sources,
            "method": self.method,
            "weights": self.weights,
            "split": self.split,
            "rows": [row.__dict__ for row in self.rows],
        }

    def to_markdown(self) -> str:
        """Return a table with one row per source task and one column per model (the best score in bold)."""
        models = [*self.sources, self.merged]
        lines = [
            f"Merged adapter **{self.merged}** ({self.method}, weights {', '.join(f'{w:g}' for w in self.weights)}), "
            f"{self.split} split:",
            "",
            "| task (source) | metric | " + " | ".join(models) + " | examples | note |",
            "| --- | --- | " + " | ".join("---:" for _ in models) + " | ---: | --- |",
        ]
        for row in self.rows:
            best = max(row.scores.values()) if row.scores else None
            cells = []
            for model in models:
                value = row.scores.get(model)
                text = f"{value:.4f}" if value is not None else "n/a"
                cells.append(f"**{text}**" if value is not None and value == best else text)
            lines.append(
                f"| {row.task} ({row.source}) | {row.metric} | " + " | ".join(cells) + f" | {row.examples} | {row.note or ''} |"
            )
        return "\n".join(lines) + "\n"


def load_source_task(entry: AdapterEntry, data_source: DataSource | None = None) -> tuple[TaskData | None, str | None]:
    """Return (task data, note) for the task a stored adapter was trained on, or (None, reason) if unavailable.

    `data_source` is a path or Hub id, or a dict of `data.load_task_data` options with "source"; it is
    read with the adapter's task type, label names and split seed unless the options set them.
    Without it, a built-in task is rebuilt by name. The note reports a data fingerprint that differs
    from the adapter's record.
    """
    from lora_playground.data import load_task_data
    from lora_playground.tasks.builtin import BUILTIN_TASKS, load_builtin

    metadata = entry.metadata
    task_name = metadata.task.get("name", "")
    seed = int(metadata.train_config.get("seed") or 42)
    if data_source is not None:
        options = dict(data_source) if isinstance(data_source, Mapping) else {"source": str(data_source)}
        options.setdefault("seed", seed)
        if options["source"] not in BUILTIN_TASKS:
            options.setdefault("task_type", metadata.task_type)
            options.setdefault("name", task_name)
            if metadata.task_type == "classification":
                options.setdefault("label_names", metadata.label_names)
        task_data = load_task_data(**options)
    elif task_name in BUILTIN_TASKS:
        task_data = load_builtin(task_name, seed=seed)
    else:
        return None, f"data of task {task_name!r} not available: give a data path for {entry.name}"

    note = None
    if metadata.data_fingerprint and task_data.fingerprint != metadata.data_fingerprint:
        note = f"data differs from what {entry.name} was trained on (fingerprint mismatch)"
    return task_data, note


def evaluate_merge(
    merged_name: str,
    *,
    data_sources: Mapping[str, DataSource] | None = None,
    split: str = "test",
    max_examples: int | None = None,
    store: AdapterStore | None = None,
) -> MergeComparison:
    """Evaluate merged entry `merged_name` and each of its sources on every source task they can be scored on.

    data_sources: source entry name -> data (see `load_source_task`), needed for tasks that are not
        built in. Tasks without data get a row with a note instead of scores.
    split, max_examples: which split to score, and an optional cap on its rows (first N) for quick looks.

    All models run through the base's AdapterPool, so the sources and the merge share one base.
    Raises AdapterError if `merged_name` is not a merged entry.
    """
    from lora_playground.models import get_shared_base
    from lora_playground.pipeline.evaluate import evaluate_model

    store = store or AdapterStore()
    merged = store.get(merged_name)
    merge = merged.metadata.extra.get("merge")
    if not isinstance(merge, dict) or not merge.get("sources"):
        raise AdapterError(
            f"Adapter {merged_name!r} has no merge record in its metadata, so its sources are unknown.",
            "Evaluate adapters made by `merge`, or use `evaluate` for other adapters.",
        )
    sources = list(merge["sources"])
    data_sources = dict(data_sources or {})
    unknown = sorted(set(data_sources) - set(sources))
    if unknown:
        raise AdapterError(
            f"Data was given for {', '.join(unknown)}, which are not sources of {merged_name!r}.",
            f"Its sources are {', '.join(sources)}.",
        )
    base = get_shared_base(merged.metadata.base_model.name)
    pool = get_pool(base, store)
    metric = HEADLINE_METRICS[merged.metadata.task_type]

    rows = []
    for source in sources:
        entry = store.get(source)
        task_data, note = load_source_task(entry, data_sources.get(source))
        row = TaskScores(task=entry.metadata.task.get("name", "?"), source=source, metric=metric, note=note)
        rows.append(row)
        if task_data is None:
            continue
        if split not in task_data.splits:
            row.note = f"task has no {split!r} split (it has {', '.join(task_data.splits)})"
            continue
        row.examples = len(task_data.splits[split]) if max_examples is None else min(max_examples, len(task_data.splits[split]))
        for model_name in [*sources, merged_name]:
            with pool.use(model_name) as model:
                result = evaluate_model(
                    model,
                    base.tokenizer,
                    task_data,
                    name=model_name,
                    kind="lora",
                    split=split,
                    max_examples=max_examples,
                    max_length=pool.info(model_name).max_length,
                )
            row.scores[model_name] = float(result.metrics[metric])
        logger.info("Scored merge %s on task %s: %s", merged_name, row.task, row.scores)
    return MergeComparison(
        merged=merged_name,
        sources=sources,
        method=merge.get("method", "?"),
        weights=list(merge.get("weights", [])),
        split=split,
        rows=rows,
    )
