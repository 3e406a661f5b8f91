"""Human-readable numbers for reports: percentages, parameter counts, binary byte sizes, durations and rates."""

import math

MISSING = "n/a"


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def format_percent(fraction: float, decimals: int = 2) -> str:
    """Format a fraction (0.9667) as a percentage ("96.67%")."""
    return f"{100.0 * fraction:.{decimals}f}%"


def format_count(count: float) -> str:
    """Format a count with a K/M/B suffix above a thousand ("811", "12.3K", "134.5M", "1.24B")."""
    for threshold, suffix in ((1e9, "B"), (1e6, "M"), (1e3, "K")):
        if abs(count) >= threshold:
            return f"{count / threshold:.1f}{suffix}"
    return f"{count:.0f}"


def format_bytes(size: float) -> str:
    """Format a size in bytes with binary units ("512 B", "1.5 KiB", "3.2 MiB", "1.2 GiB")."""
    if abs(size) < 1024:
        return f"{size:.0f} B"
    for unit in ("KiB", "MiB", "GiB"):
        size /= 1024.0
        if abs(size) < 1024:
            break
    return f"{size:.1f} {unit}"


def format_seconds(seconds: float) -> str:
    """Format a duration ("0.85 s", "95.3 s", "12 min 04 s", "1 h 02 min")."""
    if seconds < 10:
        return f"{seconds:.2f} s"
    if seconds < 120:
        return f"{seconds:.1f} s"
    minutes, remainder = divmod(round(seconds), 60)
    if minutes < 60:
        return f"{minutes} min {remainder:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


def format_ratio(ratio: float) -> str:
    """Format a ratio to a reference: a percentage below 10% ("0.70%"), else a multiple ("0.45x", "2.1x")."""
    if ratio < 0.1:
        return f"{100.0 * ratio:.2g}%"
    return f"{ratio:.2f}x" if ratio < 10 else f"{ratio:.1f}x"


def format_fraction_of(ratio: float) -> str:
    """Format a ratio below 1 as "1/N" (1/180) and anything else as a multiple ("1.3x")."""
    if 0 < ratio < 1:
        return f"1/{1.0 / ratio:.0f}"
    return f"{ratio:.2g}x"


def format_value(value, unit: str) -> str:
    """Format `value` for the given unit name; see `report.MetricSpec.unit` for the names."""
    if not _is_number(value):
        return MISSING if value is None else str(value)
    if unit == "fraction":
        return format_percent(value)
    if unit == "count":
        return format_count(value)
    if unit == "bytes":
        return format_bytes(value)
    if unit == "seconds":
        return format_seconds(value)
    if unit == "ms":
        return f"{value:.2f} ms" if value < 100 else f"{value:.0f} ms"
    if unit == "tokens_per_s":
        return f"{value:,.0f} tokens/s"
    if unit == "examples_per_s":
        return f"{value:,.1f} examples/s"
    return f"{value:.4g}"
