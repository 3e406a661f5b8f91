"""Run one measurement in a fresh Python process, so its memory peak and warm-up are its own.

Memory that one run frees stays in the allocator and is reused by the next one without raising the
resident set size (RSS), so two runs in one process cannot be compared by peak memory. `run_isolated`
starts `python -m benchmarks.isolation TARGET PAYLOAD RESULT`, which imports TARGET
("package.module:function"), calls it with the JSON payload as keyword arguments, and writes the
returned dict (plus the process's exact peak RSS) to the RESULT file.
"""

import json
import logging
import os
import resource
import subprocess
import sys
import tempfile
import time
from importlib import import_module
from pathlib import Path

logger = logging.getLogger(__name__)

REPO_ROOT = Path(__file__).resolve().parent.parent


class IsolatedRunError(RuntimeError):
    """A measurement process exited with an error; its output went to stderr above this message."""


def process_peak_rss_bytes() -> int:
    """Return the highest RSS this process has had since it started, in bytes (Linux reports KiB)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak if sys.platform == "darwin" else peak * 1024


def call_target(target: str, payload: dict) -> dict:
    """Import "module:function" and call it with `payload` as keyword arguments."""
    module_name, _, function_name = target.partition(":")
    if not function_name:
        raise ValueError(f"Target {target!r} must be written as 'package.module:function'.")
    return getattr(import_module(module_name), function_name)(**payload)


def run_isolated(
    target: str,
    payload: dict,
    *,
    isolate: bool = True,
    timeout_s: float | None = None,
    env: dict[str, str] | None = None,
) -> dict:
    """Run `target(**payload)` in a fresh process (or in this one when `isolate` is False) and return its dict.

    The returned dict gains `process_wall_s` (seconds from starting the process to its exit, imports
    included) and `process_peak_rss_bytes` (the process's exact RSS high-water mark). Without isolation
    both describe this whole process, so they are only meaningful for smoke tests. The child's output
    goes to this process's stderr. `env` adds environment variables for the child; it needs `isolate`.
    Raises IsolatedRunError when the child fails or runs past `timeout_s`.
    """
    if env and not isolate:
        raise ValueError("Environment variables for a run need a fresh process; drop env or keep isolate=True.")
    if not isolate:
        started = time.perf_counter()
        result = call_target(target, payload)
        result["process_wall_s"] = time.perf_counter() - started
        result["process_peak_rss_bytes"] = process_peak_rss_bytes()
        return result

    with tempfile.TemporaryDirectory(prefix="lora-playground-bench-") as folder:
        payload_path = Path(folder) / "payload.json"
        result_path = Path(folder) / "result.json"
        payload_path.write_text(json.dumps(payload), encoding="utf-8")
        command = [sys.executable, "-m", "benchmarks.isolation", target, str(payload_path), str(result_path)]
        logger.info("Running %s in a fresh process", target)
        started = time.perf_counter()
        try:
            # File descriptor 2: the child's stdout joins our stderr, so our stdout holds only the report.
            completed = subprocess.run(
                command, cwd=REPO_ROOT, stdout=2, timeout=timeout_s, check=False, env={**os.environ, **(env or {})}
            )
        except subprocess.TimeoutExpired as error:
            raise IsolatedRunError(f"{target} ran past its {timeout_s:.0f} s limit and was stopped.") from error
        wall = time.perf_counter() - started
        if completed.returncode != 0 or not result_path.exists():
            raise IsolatedRunError(f"{target} failed with exit code {completed.returncode}; its output is above.")
        result = json.loads(result_path.read_text(encoding="utf-8"))
    result["process_wall_s"] = wall
    return result


def main(argv: list[str]) -> int:
    target, payload_path, result_path = argv
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s", stream=sys.stderr)
    payload = json.loads(Path(payload_path).read_text(encoding="utf-8"))
    result = call_target(target, payload)
    result["process_peak_rss_bytes"] = process_peak_rss_bytes()
    Path(result_path).write_text(json.dumps(result, default=str), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
