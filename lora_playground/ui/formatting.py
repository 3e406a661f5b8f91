"""Human-readable numbers, times and job descriptions for the app's tables and status lines."""

from __future__ import annotations

import html
import time

from lora_playground.jobs import QUEUED, RUNNING, Job


def format_count(value: int | float | None) -> str:
    """Format a parameter or row count with thousands separators, e.g. 1,234,567."""
    if value is None:
        return "-"
    return f"{int(value):,}"


def format_bytes(value: int | float | None) -> str:
    """Format a byte count in binary units (KiB, MiB, GiB)."""
    if value is None:
        return "-"
    size = float(value)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if abs(size) < 1024 or unit == "GiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} GiB"


def format_seconds(value: float | None) -> str:
    """Format a duration as 4.2 s, 3 min 5 s or 1 h 2 min."""
    if value is None:
        return "-"
    seconds = max(0.0, float(value))
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, seconds = divmod(int(round(seconds)), 60)
    if minutes < 60:
        return f"{minutes} min {seconds} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes} min"


def format_percent(fraction: float | None, digits: int = 2) -> str:
    if fraction is None:
        return "-"
    return f"{100.0 * fraction:.{digits}f}%"


def format_time(timestamp: float | None) -> str:
    """Format a UNIX timestamp as local date and time, e.g. 2026-12-04 14:03:12."""
    if timestamp is None:
        return "-"
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(timestamp))


def escape_markdown(text: object) -> str:
    """Escape user-controlled text for a Markdown cell or line: HTML, table pipes and line breaks."""
    return html.escape(str(text)).replace("|", "\\|").replace("\n", " ")


def ordinal(number: int) -> str:
    if 10 <= number % 100 <= 20:
        suffix = "th"
    else:
        suffix = {1: "st", 2: "nd", 3: "rd"}.get(number % 10, "th")
    return f"{number}{suffix}"


def describe_progress(progress: dict | None) -> str:
    """Summarize a training progress report: step x of y, percent, ETA, throughput and latest loss.

    Reads the keys that `training.callbacks.ProgressReporter` sends (step, max_steps, eta_s,
    tokens_per_s, loss) and an optional free-text `message` from other job kinds.
    """
    if not progress:
        return "starting"
    parts = []
    step, max_steps = progress.get("step"), progress.get("max_steps")
    if step is not None and max_steps:
        parts.append(f"step {step}/{max_steps} ({100 * step / max_steps:.0f}%)")
    elif step is not None:
        parts.append(f"step {step}")
    if progress.get("eta_s") is not None:
        parts.append(f"ETA {format_seconds(progress['eta_s'])}")
    if progress.get("tokens_per_s"):
        parts.append(f"{progress['tokens_per_s']:,.0f} tokens/s")
    if progress.get("loss") is not None:
        parts.append(f"loss {progress['loss']:.4f}")
    if progress.get("message"):
        parts.append(str(progress["message"]))
    return ", ".join(parts) or "running"


def describe_status(job: Job, position: int | None = None) -> str:
    """One-line status of a job for tables: queued with its place in line, running with progress, or outcome."""
    if job.status == QUEUED:
        if position is None:
            return "queued"
        return f"queued ({ordinal(position)} in line)"
    if job.status == RUNNING:
        prefix = "cancelling" if job.cancel_requested else "running"
        return f"{prefix}: {describe_progress(job.progress)}"
    return job.status
