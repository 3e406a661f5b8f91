"""Tables and chart data for a comparison report, built from its JSON form (`ComparisonReport.to_dict()`).

Working from the JSON form lets the app show reports stored in job results after a restart.
"""

from __future__ import annotations

import pandas as pd

from lora_playground.ui.formatting import format_bytes, format_count, format_percent, format_seconds

# Cost figures drawn as bar charts, with the chart title; the comparison metric comes first.
CHART_COSTS = (
    ("trainable_params", "Trainable parameters"),
    ("stored_bytes", "Stored size (MiB)"),
    ("peak_memory_bytes", "Peak training memory (MiB)"),
    ("train_wall_time_s", "Training time (s)"),
)
_MIB = 1024 * 1024


def format_value(value, unit: str) -> str:
    """Format a metric or cost value for a table cell according to its MetricSpec unit."""
    if value is None or isinstance(value, bool):
        return "n/a"
    if not isinstance(value, (int, float)):
        return str(value)
    formatters = {
        "fraction": lambda number: format_percent(number, 1),
        "count": format_count,
        "bytes": format_bytes,
        "seconds": format_seconds,
        "ms": lambda number: f"{number:.1f} ms",
        "tokens_per_s": lambda number: f"{number:,.0f} tokens/s",
        "examples_per_s": lambda number: f"{number:,.1f} examples/s",
    }
    return formatters.get(unit, lambda number: f"{number:.4g}")(value)


def _mark_best(text: str, key: str, run_name: str, best: dict) -> str:
    return f"{text} ★" if run_name in best.get(key, []) else text


def metrics_table(report: dict) -> pd.DataFrame:
    """Tabulate the metrics, one row per run: kind, the primary metric with its confidence interval, the rest.

    The best value of each metric is marked with ★.
    """
    confidence = report.get("confidence", 0.95)
    primary = report["primary_metric"]
    specs = report["metric_specs"]
    best = report.get("best", {})
    rows = []
    for run in report["runs"]:
        interval = run.get("interval") or {}
        row = {"run": run["name"], "kind": run["kind"]}
        if interval.get("low") is not None:
            row[f"{primary} ({confidence:.0%} CI)"] = (
                f"{format_percent(interval['point'], 1)} [{format_percent(interval['low'], 1)}, "
                f"{format_percent(interval['high'], 1)}]"
            )
        for spec in specs:
            value = run["metrics"].get(spec["key"])
            row[spec["label"]] = _mark_best(format_value(value, spec["unit"]), spec["key"], run["name"], best)
        rows.append(row)
    return pd.DataFrame(rows)


def costs_table(report: dict) -> pd.DataFrame:
    """Tabulate the costs, one row per run, with the ratio to the full finetune where there is one."""
    ratios = (report.get("relative_to_full") or {}).get("ratios", {})
    best = report.get("best", {})
    rows = []
    for run in report["runs"]:
        row = {"run": run["name"], "kind": run["kind"]}
        for spec in report["cost_specs"]:
            text = format_value(run["cost"].get(spec["key"]), spec["unit"])
            ratio = ratios.get(run["name"], {}).get(spec["key"])
            if ratio is not None:
                text += f" ({ratio:.2g}× full)"
            row[spec["label"]] = _mark_best(text, spec["key"], run["name"], best)
        rows.append(row)
    return pd.DataFrame(rows)


def chart_frames(report: dict) -> dict[str, pd.DataFrame]:
    """Data for the bar charts: {"<title>": DataFrame(run, value)}, primary metric first.

    Runs without a value for a figure are left out of that chart. Bytes are converted to MiB.
    """
    primary = report["primary_metric"]
    primary_label = next((spec["label"] for spec in report["metric_specs"] if spec["key"] == primary), primary)
    frames = {primary_label: pd.DataFrame(
        [{"run": run["name"], "value": run["metrics"].get(primary)} for run in report["runs"]
         if isinstance(run["metrics"].get(primary), (int, float))]
    )}
    for key, title in CHART_COSTS:
        rows = []
        for run in report["runs"]:
            value = run["cost"].get(key)
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                rows.append({"run": run["name"], "value": value / _MIB if key.endswith("_bytes") else value})
        frames[title] = pd.DataFrame(rows)
    return frames


def disagreements_table(report: dict) -> pd.DataFrame:
    """Test examples on which the runs disagree (classification) or sample replies (generation)."""
    if report.get("disagreements"):
        rows = []
        for example in report["disagreements"]["examples"]:
            row = {"#": example["index"], "text": example["text"], "reference": example["reference"]}
            row.update(example["predictions"])
            rows.append(row)
        return pd.DataFrame(rows)
    rows = []
    for sample in report.get("samples", []):
        prompt = " / ".join(message["content"] for message in sample["prompt"] if message.get("role") == "user")
        row = {"#": sample["index"], "prompt": prompt, "reference": sample["reference"]}
        row.update(sample["answers"])
        rows.append(row)
    return pd.DataFrame(rows)


def summary_line(report: dict) -> str:
    runs = ", ".join(run["name"] for run in report["runs"])
    text = f"{len(report['runs'])} runs on {report['n_examples']} test examples ({report['task_type']}): {runs}."
    if report.get("disagreements"):
        text += f" They disagree on {report['disagreements']['total']} examples."
    return text
