"""Printed tables and the JSON file every benchmark script produces.

A `BenchmarkReport` collects tables (for people), raw results (for programs) and targets (a measured
ratio against the figure the project aims for). `finish` prints the tables to stdout and writes
everything, with the machine description, to the JSON file named by `--output`.
"""

import json
import logging
import math
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from benchmarks.machine import describe_machine, machine_summary

logger = logging.getLogger(__name__)


def format_value(value) -> str:
    """Format a cell: None as "n/a", floats with 3 significant figures (thousands separated), the rest as str."""
    if value is None:
        return "n/a"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        if math.isnan(value) or math.isinf(value):
            return str(value)
        magnitude = abs(value)
        if magnitude >= 100:
            return f"{value:,.0f}"
        if magnitude >= 10:
            return f"{value:.1f}"
        if magnitude >= 1:
            return f"{value:.2f}"
        return f"{value:.3g}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def ratio(numerator: float | None, denominator: float | None) -> float | None:
    """Return numerator / denominator, or None when either is missing or the denominator is 0."""
    if numerator is None or denominator is None or denominator == 0:
        return None
    return numerator / denominator


def format_ratio(value: float | None) -> str:
    """Format a ratio as "2.41x" ("n/a" when it could not be computed)."""
    return "n/a" if value is None else f"{format_value(float(value))}x"


def mib(num_bytes: float | None) -> float | None:
    """Bytes to MiB (None stays None)."""
    return None if num_bytes is None else num_bytes / 2**20


@dataclass
class Table:
    """A titled table; `render` gives a Markdown pipe table with aligned columns."""

    title: str
    columns: list[str]
    rows: list[list[str]] = field(default_factory=list)
    note: str = ""

    def add(self, *cells) -> None:
        """Append a row; each cell is formatted with `format_value` unless it is already a string."""
        if len(cells) != len(self.columns):
            raise ValueError(f"Table {self.title!r} has {len(self.columns)} columns, got a row of {len(cells)}.")
        self.rows.append([cell if isinstance(cell, str) else format_value(cell) for cell in cells])

    def render(self) -> str:
        widths = [len(column) for column in self.columns]
        for row in self.rows:
            widths = [max(width, len(cell)) for width, cell in zip(widths, row)]

        def line(cells: list[str]) -> str:
            return "| " + " | ".join(cell.ljust(width) for cell, width in zip(cells, widths)) + " |"

        lines = [f"### {self.title}", "", line(self.columns), "|" + "|".join("-" * (w + 2) for w in widths) + "|"]
        lines += [line(row) for row in self.rows]
        if self.note:
            lines += ["", self.note]
        return "\n".join(lines)

    def to_dict(self) -> dict:
        return {"title": self.title, "columns": self.columns, "rows": self.rows, "note": self.note}


@dataclass
class Target:
    """A figure the project aims for: `measured` must be >= `threshold` ("at_least") or <= it ("at_most")."""

    name: str
    measured: float | None
    threshold: float
    direction: str = "at_least"

    @property
    def met(self) -> bool | None:
        if self.measured is None:
            return None
        if self.direction == "at_least":
            return self.measured >= self.threshold
        return self.measured <= self.threshold

    def describe(self) -> str:
        sign = ">=" if self.direction == "at_least" else "<="
        if self.met is None:
            verdict = "not measured"
        elif self.met:
            verdict = "met"
        else:
            verdict = f"missed (measured {format_value(float(self.measured))}, off by {self._shortfall()})"
        return f"{self.name}: {format_value(self.measured)} (target {sign} {format_value(float(self.threshold))}) -> {verdict}"

    def _shortfall(self) -> str:
        # How far the measurement is from the threshold, as a factor, so "2x off" reads the same both ways.
        if not self.measured:
            return "all of it"
        factor = self.threshold / self.measured if self.direction == "at_least" else self.measured / self.threshold
        return f"a factor of {factor:.2f}"

    def to_dict(self) -> dict:
        return {
            "name": self.name,
            "measured": self.measured,
            "threshold": self.threshold,
            "direction": self.direction,
            "met": self.met,
        }


@dataclass
class BenchmarkReport:
    """Everything one benchmark run produced. `results` contains the raw figures of each measured run."""

    name: str
    options: dict
    quick: bool = False
    tables: list[Table] = field(default_factory=list)
    targets: list[Target] = field(default_factory=list)
    results: dict = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    machine: dict = field(default_factory=describe_machine)
    started_at: float = field(default_factory=time.time)

    def table(self, title: str, columns: list[str], note: str = "") -> Table:
        """Create, register and return a new table."""
        table = Table(title, columns, note=note)
        self.tables.append(table)
        return table

    def target(self, name: str, measured: float | None, threshold: float, direction: str = "at_least") -> Target:
        target = Target(name, measured, threshold, direction)
        self.targets.append(target)
        return target

    def render(self) -> str:
        header = f"## {self.name}" + (" (--quick smoke run: figures are not meaningful)" if self.quick else "")
        parts = [header, "", f"Machine: {machine_summary(self.machine)}", ""]
        parts += [table.render() + "\n" for table in self.tables]
        if self.targets:
            parts += ["### Targets", ""] + [f"- {target.describe()}" for target in self.targets] + [""]
        if self.notes:
            parts += ["### Notes", ""] + [f"- {note}" for note in self.notes] + [""]
        return "\n".join(parts)

    def to_dict(self) -> dict:
        return {
            "benchmark": self.name,
            "quick": self.quick,
            "options": self.options,
            "machine": self.machine,
            "started_at": self.started_at,
            "duration_s": time.time() - self.started_at,
            "load_average_1min_at_end": round(os.getloadavg()[0], 2) if hasattr(os, "getloadavg") else None,
            "tables": [table.to_dict() for table in self.tables],
            "targets": [target.to_dict() for target in self.targets],
            "results": self.results,
            "notes": self.notes,
        }

    def finish(self, output: str | Path | None) -> dict:
        """Print the report to stdout, write it as JSON to `output` (folders created), and return the dict."""
        print(self.render(), flush=True)
        record = self.to_dict()
        if output:
            path = Path(output)
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(record, indent=2, default=str) + "\n", encoding="utf-8")
            print(f"Wrote {path}", file=sys.stderr, flush=True)
        return record
