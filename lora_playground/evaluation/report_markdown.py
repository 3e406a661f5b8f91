"""Markdown rendering of a `ComparisonReport`: tables side by side, the best run in bold."""

from lora_playground.evaluation.formatting import (
    MISSING,
    format_fraction_of,
    format_percent,
    format_ratio,
    format_value,
)
from lora_playground.evaluation.report import ComparisonReport, MetricSpec

_CELL_LIMIT = 160  # characters of example text shown in a table cell; the JSON keeps the full text
_SIGNIFICANCE = 0.05
_RATIO_LABELS = {
    "trainable_params": "Trainable parameters",
    "stored_bytes": "Stored size",
    "peak_memory_bytes": "Peak training memory",
    "train_wall_time_s": "Training time",
    "inference_ms_per_example": "Inference latency per example",
}


def _cell(text: str, limit: int = _CELL_LIMIT) -> str:
    flat = " ".join(str(text).split())
    if len(flat) > limit:
        flat = flat[: limit - 1] + "…"
    return flat.replace("|", "\\|")


def _table(header: list[str], rows: list[list[str]], align: str | None = None) -> list[str]:
    """Build a Markdown table; `align` has one letter per column, "l" (left) or "r" (right), default "lrr...r"."""
    align = align or "l" + "r" * (len(header) - 1)
    separators = ["---:" if letter == "r" else "---" for letter in align]
    lines = ["| " + " | ".join(header) + " |", "| " + " | ".join(separators) + " |"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return lines


def _arrow(spec: MetricSpec) -> str:
    if spec.higher_is_better is None:
        return ""
    return " ↑" if spec.higher_is_better else " ↓"


def _run_header(report: ComparisonReport) -> list[str]:
    return [f"{_cell(run['name'])} ({run['kind']})" for run in report.runs]


def _spec_rows(report: ComparisonReport, specs: list[MetricSpec], section: str) -> list[list[str]]:
    rows = []
    for spec in specs:
        values = [run[section].get(spec.key) for run in report.runs]
        if all(value is None for value in values):
            continue
        winners = report.best.get(spec.key, [])
        cells = []
        for run, value in zip(report.runs, values):
            text = format_value(value, spec.unit)
            cells.append(f"**{text}**" if run["name"] in winners else text)
        rows.append([spec.label + _arrow(spec)] + cells)
    return rows


def _interval_row(report: ComparisonReport) -> list[str]:
    spec = next(spec for spec in report.metric_specs if spec.key == report.primary_metric)
    cells = [
        f"[{format_percent(run['interval']['low'])}, {format_percent(run['interval']['high'])}]" for run in report.runs
    ]
    return [f"{spec.label} {report.confidence:.0%} CI (bootstrap)"] + cells


def _metrics_section(report: ComparisonReport) -> list[str]:
    rows = _spec_rows(report, report.metric_specs, "metrics")
    interval = _interval_row(report)
    primary_label = next(spec.label for spec in report.metric_specs if spec.key == report.primary_metric)
    position = next((index + 1 for index, row in enumerate(rows) if row[0].startswith(primary_label)), 0)
    rows.insert(position, interval)
    lines = ["## Metrics", ""]
    lines += _table(["Metric"] + _run_header(report), rows)
    lines += ["", "↑ higher is better, ↓ lower is better; bold marks the best run on each row.", ""]
    if report.task_type == "classification" and report.label_names:
        lines += _per_class_section(report)
    return lines


def _per_class_section(report: ComparisonReport) -> list[str]:
    rows = []
    for name in report.label_names:
        scores = [run["metrics"].get("per_class", {}).get(name, {}) for run in report.runs]
        f1_values = [score.get("f1") for score in scores]
        if all(value is None for value in f1_values):
            continue
        numbers = [value for value in f1_values if value is not None]
        best = max(numbers) if len(numbers) > 1 and len(set(numbers)) > 1 else None
        cells = []
        for value in f1_values:
            text = MISSING if value is None else format_percent(value, 1)
            cells.append(f"**{text}**" if best is not None and value == best else text)
        support = next((score.get("support") for score in scores if score.get("support") is not None), None)
        rows.append([_cell(name), MISSING if support is None else str(support)] + cells)
    if not rows:
        return []
    lines = ["### F1 per class", ""]
    lines += _table(["Class", "Test examples"] + _run_header(report), rows)
    return lines + [""]


def _relative_section(report: ComparisonReport) -> list[str]:
    relative = report.relative_to_full
    if not relative or not relative["ratios"]:
        return []
    reference = relative["reference"]
    names = list(relative["ratios"])
    rows = []
    for key, label in _RATIO_LABELS.items():
        values = [relative["ratios"][name].get(key) for name in names]
        if all(value is None for value in values):
            continue
        rows.append([label] + [MISSING if value is None else format_ratio(value) for value in values])
    if not rows:
        return []
    kinds = {run["name"]: run["kind"] for run in report.runs}
    lines = [f"### Relative to the full finetune `{reference}`", ""]
    lines += _table(["Cost"] + [_cell(name) for name in names], rows)
    lines.append("")
    for name in names:
        ratios = relative["ratios"][name]
        if kinds[name] != "lora" or "trainable_params" not in ratios:
            continue
        trained = format_ratio(ratios["trainable_params"])
        sentence = f"- LoRA `{name}` trains {trained} of the parameters that `{reference}` trains"
        if "stored_bytes" in ratios:
            sentence += (
                f", and its stored files are {format_fraction_of(ratios['stored_bytes'])} of the full checkpoint's size"
            )
        lines.append(sentence + ".")
    return lines + [""]


def _costs_section(report: ComparisonReport) -> list[str]:
    rows = _spec_rows(report, report.cost_specs, "cost")
    if not rows:
        return []
    lines = ["## Costs", ""]
    lines += _table(["Cost"] + _run_header(report), rows)
    lines += [
        "",
        "Stored size is what must be kept on disk for the run: the adapter files, or the full checkpoint.",
        "",
    ]
    return lines + _relative_section(report)


def _pairwise_section(report: ComparisonReport) -> list[str]:
    if not report.pairwise:
        return []
    if report.task_type == "classification":
        rows = []
        for test in report.pairwise:
            verdict = "error rates differ" if test["p_value"] < _SIGNIFICANCE else "no significant difference"
            rows.append(
                [
                    f"`{_cell(test['a'])}` vs `{_cell(test['b'])}`",
                    str(test["b10"]),
                    str(test["b01"]),
                    test["method"],
                    f"{test['statistic']:.3g}",
                    f"{test['p_value']:.3g}",
                    verdict,
                ]
            )
        header = [
            "Runs (A vs B)",
            "A right, B wrong",
            "A wrong, B right",
            "Test",
            "Statistic",
            "p-value",
            f"At p < {_SIGNIFICANCE}",
        ]
        lines = [
            "## Paired McNemar tests",
            "",
            "Each test compares the two runs' errors on the same test examples.",
            "",
        ]
        return lines + _table(header, rows, align="lrrlrrl") + [""]

    rows = [
        [
            f"`{_cell(test['a'])}` vs `{_cell(test['b'])}`",
            f"{100 * test['mean_difference']:+.2f} points",
            f"[{100 * test['low']:+.2f}, {100 * test['high']:+.2f}]",
        ]
        for test in report.pairwise
    ]
    header = ["Runs (A vs B)", "Mean ROUGE-L difference (A - B)", f"{report.confidence:.0%} CI (paired bootstrap)"]
    lines = [
        "## Paired differences",
        "",
        "An interval that excludes 0 means the runs' ROUGE-L differs on this test set.",
        "",
    ]
    return lines + _table(header, rows) + [""]


def _disagreements_section(report: ComparisonReport) -> list[str]:
    found = report.disagreements
    if found is None:
        return []
    if found["total"] == 0:
        return [
            "## Examples where the runs disagree",
            "",
            "The runs predict the same class for every test example.",
            "",
        ]
    listed = found["examples"]
    title = f"## Examples where the runs disagree ({len(listed)} of {found['total']} shown)"
    names = [run["name"] for run in report.runs]
    rows = []
    for example in listed:
        text = example["text"] if "text_pair" not in example else f"{example['text']} / {example['text_pair']}"
        rows.append(
            [str(example["index"]), _cell(text), _cell(example["reference"])]
            + [_cell(example["predictions"][name]) for name in names]
        )
    return (
        [title, ""]
        + _table(["#", "Text", "Reference"] + [_cell(name) for name in names], rows, align="r" + "l" * (len(names) + 2))
        + [""]
    )


def _quote(text: str) -> list[str]:
    lines = str(text).splitlines() or [""]
    return ["> " + line for line in lines]


def _samples_section(report: ComparisonReport) -> list[str]:
    if not report.samples:
        return []
    lines = [f"## Sample answers ({len(report.samples)} of {report.n_examples} test prompts)", ""]
    kinds = {run["name"]: run["kind"] for run in report.runs}
    for sample in report.samples:
        lines += [f"### Test example {sample['index']}", ""]
        for message in sample["prompt"]:
            lines += [f"**{message['role'].capitalize()}:**", ""] + _quote(message["content"]) + [""]
        lines += ["**Reference:**", ""] + _quote(sample["reference"]) + [""]
        for name, answer in sample["answers"].items():
            lines += [f"**`{name}` ({kinds[name]}):**", ""] + _quote(answer) + [""]
    return lines


def render_markdown(report: ComparisonReport) -> str:
    """Render the report as a Markdown document (metrics, costs, paired tests, disagreements or samples)."""
    lines = [
        f"# Comparison of {len(report.runs)} runs ({report.task_type})",
        "",
        f"Test examples: {report.n_examples}. Runs: "
        + ", ".join(f"`{run['name']}` ({run['kind']})" for run in report.runs)
        + ".",
        "",
    ]
    lines += _metrics_section(report)
    lines += _costs_section(report)
    lines += _pairwise_section(report)
    lines += _disagreements_section(report)
    lines += _samples_section(report)
    return "\n".join(lines).rstrip() + "\n"
