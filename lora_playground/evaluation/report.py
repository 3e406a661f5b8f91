"""Side-by-side comparison of runs (LoRA adapters, full finetunes, the untrained base) on one test split.

`compare_runs` takes each run's metrics, per-example predictions and costs and builds a
`ComparisonReport`: metrics with a bootstrap confidence interval on the primary metric, costs with
ratios to the full finetune, paired tests between runs, and the examples on which the runs differ.
"""

import itertools
import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np

from lora_playground.errors import ConfigError, DataError
from lora_playground.evaluation.metrics.text_scores import rouge_l
from lora_playground.evaluation.statistics import bootstrap_ci, mcnemar

RunKind = Literal["lora", "full", "base"]
RUN_KINDS = ("lora", "full", "base")
TASK_TYPES = ("classification", "generation")


@dataclass(frozen=True)
class MetricSpec:
    """How to read and show one metric or cost figure.

    `higher_is_better` is True or False for figures where one run can be best, and None for
    figures that only describe a run (such as its total parameter count). `unit` is one of
    "fraction" (0..1, shown as a percentage), "count", "bytes", "seconds", "ms", "tokens_per_s",
    "examples_per_s" or "number".
    """

    key: str
    label: str
    higher_is_better: bool | None
    unit: str


CLASSIFICATION_METRICS = (
    MetricSpec("accuracy", "Accuracy", True, "fraction"),
    MetricSpec("macro_f1", "Macro F1", True, "fraction"),
)
GENERATION_METRICS = (
    MetricSpec("rouge_l", "ROUGE-L", True, "fraction"),
    MetricSpec("token_f1", "Token F1", True, "fraction"),
    MetricSpec("exact_match", "Exact match", True, "fraction"),
    MetricSpec("perplexity", "Reply perplexity", False, "number"),
)
# Keys of RunResult.cost. Fewer trainable parameters and bytes count as better because they are cheaper.
COST_SPECS = (
    MetricSpec("trainable_params", "Trainable parameters", False, "count"),
    MetricSpec("total_params", "Total parameters", None, "count"),
    MetricSpec("stored_bytes", "Stored size", False, "bytes"),
    MetricSpec("peak_memory_bytes", "Peak training memory", False, "bytes"),
    MetricSpec("train_wall_time_s", "Training time", False, "seconds"),
    MetricSpec("train_tokens_per_s", "Training throughput", True, "tokens_per_s"),
    MetricSpec("inference_ms_per_example", "Inference latency per example", False, "ms"),
    MetricSpec("inference_examples_per_s", "Inference throughput", True, "examples_per_s"),
)
# Cost figures compared as a ratio to the full finetune's value.
RATIO_KEYS = ("trainable_params", "stored_bytes", "peak_memory_bytes", "train_wall_time_s", "inference_ms_per_example")
PRIMARY_METRIC = {"classification": "accuracy", "generation": "rouge_l"}


@dataclass
class RunResult:
    """One run evaluated on the test split.

    - `kind`: "lora" (an adapter), "full" (a full finetune) or "base" (the untrained base model).
    - `metrics`: from `classification_metrics` or `generation_metrics` (perplexity may be added).
    - `predictions`: one entry per test example, in test order: class indices for classification,
      generated reply texts for generation.
    - `probabilities`: classification only, one list of class probabilities per example, or None.
    - `cost`: figures keyed as in COST_SPECS: trainable_params, total_params (counts), stored_bytes,
      peak_memory_bytes (bytes), train_wall_time_s (seconds), train_tokens_per_s,
      inference_ms_per_example and inference_examples_per_s. Missing keys are shown as n/a, and
      other keys are kept in the JSON only.
    """

    name: str
    kind: RunKind
    metrics: dict[str, Any]
    predictions: list
    probabilities: list[list[float]] | None = None
    cost: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict:
        return _plain(asdict(self))

    @classmethod
    def from_dict(cls, values: dict) -> "RunResult":
        known = {key: value for key, value in values.items() if key in cls.__dataclass_fields__}
        return cls(**known)


def _plain(value):
    """Convert numpy values and containers to JSON-ready Python values; non-finite floats become None."""
    if isinstance(value, dict):
        return {str(key): _plain(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(item) for item in value]
    if isinstance(value, np.ndarray):
        return _plain(value.tolist())
    if isinstance(value, np.generic):
        return _plain(value.item())
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


@dataclass
class ComparisonReport:
    """Everything `compare_runs` found, ready for JSON (`to_dict`, `to_json`) or Markdown (`to_markdown`).

    - `runs`: one dict per run with name, kind, metrics, cost and `interval` (the bootstrap interval of
      the primary metric: metric, point, low, high).
    - `best`: for each metric or cost key with a direction, the names of the best runs, ties included.
      A key is absent when fewer than two runs have a value or when all values are equal.
    - `relative_to_full`: `{"reference": name, "ratios": {run: {cost key: run value / full value}}}`,
      or None when no run has kind "full".
    - `pairwise`: classification: McNemar test results per pair of runs; generation: the paired bootstrap
      interval of the mean ROUGE-L difference (first run minus second).
    - `disagreements`: classification: `{"total": count, "examples": [listed examples]}` for test examples whose
      predicted class differs between runs (at most `max_disagreements` of them); generation: None.
    - `samples`: generation: test prompts with the reference and every run's reply; classification: [].
    """

    task_type: str
    n_examples: int
    confidence: float
    primary_metric: str
    label_names: list[str] | None
    runs: list[dict]
    metric_specs: list[MetricSpec]
    cost_specs: list[MetricSpec]
    best: dict[str, list[str]]
    relative_to_full: dict | None
    pairwise: list[dict]
    disagreements: dict | None
    samples: list[dict]

    def to_dict(self) -> dict:
        return _plain(asdict(self))

    def to_json(self, indent: int = 2) -> str:
        return json.dumps(self.to_dict(), indent=indent, ensure_ascii=False)

    def to_markdown(self) -> str:
        from lora_playground.evaluation.report_markdown import render_markdown

        return render_markdown(self)

    def write(self, folder: str | Path, stem: str = "comparison") -> tuple[Path, Path]:
        """Write `<stem>.json` and `<stem>.md` into `folder` (created if missing) and return both paths."""
        target = Path(folder)
        target.mkdir(parents=True, exist_ok=True)
        json_path = target / f"{stem}.json"
        markdown_path = target / f"{stem}.md"
        json_path.write_text(self.to_json() + "\n", encoding="utf-8")
        markdown_path.write_text(self.to_markdown(), encoding="utf-8")
        return json_path, markdown_path


def _check_inputs(results: list[RunResult], test_examples: list[dict], label_names, task_type: str) -> None:
    if task_type not in TASK_TYPES:
        raise ConfigError(f"Unknown task_type {task_type!r}.", f"Use one of {', '.join(TASK_TYPES)}.")
    if not results:
        raise ConfigError("compare_runs got no runs.", "Pass at least one RunResult.")
    if not test_examples:
        raise DataError("compare_runs got no test examples.", "Check that the test split is not empty.")
    names = [result.name for result in results]
    duplicates = sorted({name for name in names if names.count(name) > 1})
    if duplicates:
        raise ConfigError(f"Run names {duplicates} appear more than once.", "Give every run a distinct name.")
    for result in results:
        if result.kind not in RUN_KINDS:
            raise ConfigError(f"Run {result.name!r} has kind {result.kind!r}.", f"Use one of {', '.join(RUN_KINDS)}.")
        if len(result.predictions) != len(test_examples):
            raise DataError(
                f"Run {result.name!r} has {len(result.predictions)} predictions "
                f"for {len(test_examples)} test examples.",
                "Evaluate every run on the same test split.",
            )
    if task_type == "classification":
        if not label_names:
            raise ConfigError(
                "Classification comparisons need label_names.", "Pass the task's class names in index order."
            )
        missing = [index for index, example in enumerate(test_examples) if "label" not in example]
        if missing:
            raise DataError(f"Test example {missing[0]} has no 'label' field.", "Pass normalized classification rows.")
        for result in results:
            outside = [value for value in result.predictions if not 0 <= int(value) < len(label_names)]
            if outside:
                raise DataError(
                    f"Run {result.name!r} predicts class index {int(outside[0])}, "
                    f"outside the {len(label_names)} label names.",
                    "Pass the label_names the runs were trained with.",
                )
    else:
        for index, example in enumerate(test_examples):
            messages = example.get("messages")
            if not messages or messages[-1].get("role") != "assistant":
                raise DataError(
                    f"Test example {index} has no 'messages' list ending with the assistant reply.",
                    "Pass normalized generation rows.",
                )
        for result in results:
            if not all(isinstance(prediction, str) for prediction in result.predictions):
                raise DataError(
                    f"Run {result.name!r} has predictions that are not strings.", "Pass the generated replies."
                )


def _per_example_scores(results: list[RunResult], test_examples: list[dict], task_type: str) -> dict[str, np.ndarray]:
    """Return, per run, the per-example score behind the primary metric (0/1 correctness or ROUGE-L)."""
    scores = {}
    if task_type == "classification":
        references = np.asarray([int(example["label"]) for example in test_examples])
        for result in results:
            scores[result.name] = (np.asarray(result.predictions, dtype=np.int64) == references).astype(np.float64)
    else:
        references = [example["messages"][-1]["content"] for example in test_examples]
        for result in results:
            scores[result.name] = np.asarray(
                [rouge_l(str(prediction), reference) for prediction, reference in zip(result.predictions, references)]
            )
    return scores


def _best_runs(values: dict[str, Any], higher_is_better: bool) -> list[str]:
    numbers = {
        name: float(value)
        for name, value in values.items()
        if isinstance(value, (int, float, np.number)) and not isinstance(value, bool) and math.isfinite(value)
    }
    if len(numbers) < 2 or len(set(numbers.values())) == 1:
        return []
    target = max(numbers.values()) if higher_is_better else min(numbers.values())
    return [name for name, value in numbers.items() if math.isclose(value, target, rel_tol=1e-12, abs_tol=1e-15)]


def _find_best(results: list[RunResult], specs: list[MetricSpec], section: str) -> dict[str, list[str]]:
    best = {}
    for spec in specs:
        if spec.higher_is_better is None:
            continue
        values = {result.name: getattr(result, section).get(spec.key) for result in results}
        winners = _best_runs(values, spec.higher_is_better)
        if winners:
            best[spec.key] = winners
    return best


def _ratios_to_full(results: list[RunResult]) -> dict | None:
    full_runs = [result for result in results if result.kind == "full"]
    if not full_runs:
        return None
    reference = full_runs[0]
    ratios = {}
    for result in results:
        if result is reference:
            continue
        run_ratios = {}
        for key in RATIO_KEYS:
            value, base = result.cost.get(key), reference.cost.get(key)
            if isinstance(value, (int, float)) and isinstance(base, (int, float)) and base > 0:
                run_ratios[key] = value / base
        ratios[result.name] = run_ratios
    return {"reference": reference.name, "ratios": ratios}


def _pairwise(
    results: list[RunResult], scores: dict[str, np.ndarray], task_type: str, confidence, n_resamples, seed
) -> list[dict]:
    comparisons = []
    for first, second in itertools.combinations(results, 2):
        a_scores, b_scores = scores[first.name], scores[second.name]
        if task_type == "classification":
            test = mcnemar(a_scores.astype(int), b_scores.astype(int))
            comparisons.append({"a": first.name, "b": second.name, "test": "mcnemar", **test})
        else:
            differences = a_scores - b_scores
            low, high = bootstrap_ci(differences, confidence=confidence, n_resamples=n_resamples, seed=seed)
            comparisons.append(
                {
                    "a": first.name,
                    "b": second.name,
                    "test": "paired bootstrap",
                    "metric": "rouge_l",
                    "mean_difference": float(differences.mean()),
                    "low": low,
                    "high": high,
                }
            )
    return comparisons


def _disagreements(results: list[RunResult], test_examples: list[dict], label_names: list[str], limit: int) -> dict:
    listed = []
    total = 0
    for index, example in enumerate(test_examples):
        predicted = {result.name: int(result.predictions[index]) for result in results}
        if len(set(predicted.values())) < 2:
            continue
        total += 1
        if len(listed) < limit:
            entry = {"index": index, "text": example.get("text", "")}
            if example.get("text_pair") is not None:
                entry["text_pair"] = example["text_pair"]
            entry["reference"] = label_names[int(example["label"])]
            entry["predictions"] = {name: label_names[value] for name, value in predicted.items()}
            listed.append(entry)
    return {"total": total, "examples": listed}


def _samples(results: list[RunResult], test_examples: list[dict], limit: int) -> list[dict]:
    samples = []
    for index, example in enumerate(test_examples[:limit]):
        messages = example["messages"]
        samples.append(
            {
                "index": index,
                "prompt": messages[:-1],
                "reference": messages[-1]["content"],
                "answers": {result.name: str(result.predictions[index]) for result in results},
            }
        )
    return samples


def compare_runs(
    results: list[RunResult],
    test_examples: list[dict],
    label_names: list[str] | None,
    task_type: Literal["classification", "generation"],
    *,
    confidence: float = 0.95,
    n_resamples: int = 1000,
    seed: int = 0,
    max_disagreements: int = 20,
    max_samples: int = 10,
) -> ComparisonReport:
    """Compare runs evaluated on the same test examples and return a `ComparisonReport`.

    `test_examples` are the normalized test rows in the order of each run's predictions: `text`
    (+ optional `text_pair`) and `label` for classification, `messages` for generation. The primary
    metric (accuracy, or ROUGE-L for generation) gets a percentile bootstrap interval at `confidence`
    from the per-example scores, with `n_resamples` resamples and `seed`. Every pair of runs gets a
    McNemar test (classification) or a paired bootstrap interval of the ROUGE-L difference
    (generation). At most `max_disagreements` differing examples and `max_samples` generation samples
    are listed; the total number of disagreements is always reported.
    """
    _check_inputs(results, test_examples, label_names, task_type)
    primary = PRIMARY_METRIC[task_type]
    scores = _per_example_scores(results, test_examples, task_type)
    metric_specs = list(CLASSIFICATION_METRICS if task_type == "classification" else GENERATION_METRICS)

    runs = []
    for result in results:
        low, high = bootstrap_ci(scores[result.name], confidence=confidence, n_resamples=n_resamples, seed=seed)
        interval = {"metric": primary, "point": float(scores[result.name].mean()), "low": low, "high": high}
        runs.append(
            {
                "name": result.name,
                "kind": result.kind,
                "metrics": result.metrics,
                "cost": result.cost,
                "interval": interval,
            }
        )

    is_classification = task_type == "classification"
    return ComparisonReport(
        task_type=task_type,
        n_examples=len(test_examples),
        confidence=confidence,
        primary_metric=primary,
        label_names=list(label_names) if label_names else None,
        runs=runs,
        metric_specs=metric_specs,
        cost_specs=list(COST_SPECS),
        best={**_find_best(results, metric_specs, "metrics"), **_find_best(results, list(COST_SPECS), "cost")},
        relative_to_full=_ratios_to_full(results),
        pairwise=_pairwise(results, scores, task_type, confidence, n_resamples, seed),
        disagreements=(
            _disagreements(results, test_examples, label_names, max_disagreements) if is_classification else None
        ),
        samples=[] if is_classification else _samples(results, test_examples, max_samples),
    )
