"""Cold start: from `python app.py` to a ready page, and loading a base model the first and later times.

1. App: start `python app.py` on a free port of 127.0.0.1 and time until GET / returns 200, several times.
   The app loads base models only when a screen needs one, so this time is imports plus building the UI.
2. Base model, first run: in a fresh process with LORA_PLAYGROUND_CACHE pointed at an empty folder, time
   `get_shared_base` (for smollm2-135m this dequantizes the embedded GGUF file and saves a safetensors copy).
3. Base model, cached: the same again in a new process, now reading the converted copy.

    python -m benchmarks.cold_start                          # smollm2-135m
    python -m benchmarks.cold_start --base minilm-l6 --repeats 5
"""

import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

from benchmarks.isolation import REPO_ROOT, IsolatedRunError, run_isolated
from benchmarks.options import base_parser, script_main
from benchmarks.report import BenchmarkReport, format_ratio, ratio

NAME = "cold_start"
WORKER = "benchmarks.cold_start:time_base_load"
POLL_INTERVAL_S = 0.1
LOG_TAIL_CHARS = 3000


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _page_ready(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return response.status == 200
    except (urllib.error.URLError, ConnectionError, TimeoutError, OSError):
        return False


def app_ready_seconds(env: dict[str, str], timeout_s: float) -> float:
    """Start `python app.py` on a free local port and return the seconds until GET / returns 200.

    The app is stopped afterwards (SIGTERM, then SIGKILL after 10 s). Raises IsolatedRunError, with the end
    of the app's output, when it exits early or is not ready within `timeout_s`.
    """
    port = free_port()
    url = f"http://127.0.0.1:{port}/"
    with tempfile.TemporaryFile(mode="w+", encoding="utf-8") as log:
        started = time.perf_counter()
        process = subprocess.Popen(
            [sys.executable, "app.py", "--host", "127.0.0.1", "--port", str(port)],
            cwd=REPO_ROOT,
            env={**os.environ, **env},
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            while True:
                if _page_ready(url):
                    return time.perf_counter() - started
                if process.poll() is not None:
                    problem = f"app.py exited with code {process.returncode} before serving {url}"
                    break
                if time.perf_counter() - started > timeout_s:
                    problem = f"app.py did not serve {url} within {timeout_s:.0f} s"
                    break
                time.sleep(POLL_INTERVAL_S)
        finally:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        log.seek(0)
        raise IsolatedRunError(f"{problem}. Its output ended with:\n{log.read()[-LOG_TAIL_CHARS:]}")


def time_base_load(*, base: str) -> dict:
    """Time importing the model code and `get_shared_base(base)` in this (fresh) process, in seconds."""
    started = time.perf_counter()
    from lora_playground import settings
    from lora_playground.models import get_shared_base

    imports_s = time.perf_counter() - started
    cache = settings.cache_dir()
    had_cache = (cache / "models").is_dir() and any((cache / "models").iterdir())
    started = time.perf_counter()
    shared = get_shared_base(base)
    load_s = time.perf_counter() - started
    return {
        "imports_s": imports_s,
        "load_s": load_s,
        "cache_was_filled": had_cache,
        "source": shared.source,
        "parameters": shared.num_parameters(),
    }


def build_parser():
    parser = base_parser(NAME, __doc__.split("\n\n")[0], default_base="smollm2-135m", with_data=False)
    parser.add_argument("--repeats", type=int, default=3, help="app starts to time (default: 3)")
    parser.add_argument("--app-timeout", type=float, default=300.0, help="seconds to wait for the page (default: 300)")
    parser.add_argument(
        "--skip-conversion", action="store_true", help="do not time the first-run conversion into an empty cache"
    )
    return parser


def run(args) -> dict:
    report = BenchmarkReport(NAME, options=vars(args), quick=args.quick)
    repeats = 1 if args.quick else args.repeats
    with tempfile.TemporaryDirectory(prefix="cold-start-") as folder:
        scratch = {
            "LORA_PLAYGROUND_ADAPTERS": str(Path(folder) / "adapters"),
            "LORA_PLAYGROUND_RUNS": str(Path(folder) / "runs"),
            "GRADIO_ANALYTICS_ENABLED": "False",
        }
        app_times = [app_ready_seconds(scratch, args.app_timeout) for _ in range(repeats)]

        loads = {}
        if not (args.skip_conversion or args.quick):
            empty_cache = {"LORA_PLAYGROUND_CACHE": str(Path(folder) / "cache")}
            loads["first run (empty cache)"] = run_isolated(WORKER, {"base": args.base}, env=empty_cache)
            loads["second run (cache filled)"] = run_isolated(WORKER, {"base": args.base}, env=empty_cache)
        else:
            report.notes.append("First-run conversion not timed (--skip-conversion or --quick).")
        loads["user cache as it is"] = run_isolated(WORKER, {"base": args.base}, isolate=not args.no_isolation)

    report.results = {"app_ready_s": app_times, "base_loads": loads}
    table = report.table(
        "python app.py until GET / returns 200 (s)",
        ["starts", "median", "min", "max"],
        note="Process start, imports and building the Gradio UI; no base model is loaded at start-up.",
    )
    table.add(len(app_times), statistics.median(app_times), min(app_times), max(app_times))

    table = report.table(
        f"Loading base {args.base} in a fresh process (s)",
        ["case", "imports", "get_shared_base", "load vs cached"],
        note="The first run with an empty LORA_PLAYGROUND_CACHE converts the embedded GGUF file (smollm2-135m) "
        "into a float32 safetensors folder and fingerprints it; later runs read that folder.",
    )
    cached = loads.get("second run (cache filled)", loads["user cache as it is"])["load_s"]
    for name, result in loads.items():
        table.add(name, result["imports_s"], result["load_s"], format_ratio(ratio(result["load_s"], cached)))
    return report.finish(args.output)


main = script_main(build_parser, run)


if __name__ == "__main__":
    sys.exit(main())
