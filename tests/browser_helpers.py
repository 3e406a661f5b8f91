"""Helpers for browser tests: the app as a real server process on 127.0.0.1, and headless Chromium."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from contextlib import contextmanager
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = REPO_ROOT / "test-artifacts"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_for_http(url: str, timeout: float, process: subprocess.Popen, log_path: Path) -> None:
    """Poll `url` until it returns HTTP 200; fail early with the server log when the process exits."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the app exited with status {process.returncode}:\n{log_path.read_text()[-4000:]}")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(0.3)
    raise TimeoutError(f"the app did not respond on {url} within {timeout} s:\n{log_path.read_text()[-4000:]}")


@contextmanager
def running_app(base: Path | str, workdir: Path, extra_args: list[str] = (), extra_env: dict | None = None, timeout: float = 180):
    """Start `python app.py` on a free port with its own adapter store and runs folder; yield its URL.

    The server log goes to `workdir/app.log`. The process gets SIGTERM at the end (SIGKILL after 10 s).
    """
    port = free_port()
    env = {
        **os.environ,
        "GRADIO_ANALYTICS_ENABLED": "False",
        "LORA_PLAYGROUND_ADAPTERS": str(workdir / "adapters"),
        "LORA_PLAYGROUND_RUNS": str(workdir / "runs"),
        "GRADIO_TEMP_DIR": str(workdir / "gradio-uploads"),
        "PYTHONUNBUFFERED": "1",
        **(extra_env or {}),
    }
    log_path = workdir / "app.log"
    command = [sys.executable, "app.py", "--host", "127.0.0.1", "--port", str(port), "--base", str(base), *extra_args]
    with open(log_path, "w") as log:
        process = subprocess.Popen(command, cwd=REPO_ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/"
    try:
        wait_for_http(url, timeout, process, log_path)
        yield url, process, log_path
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)


@contextmanager
def chromium_browser():
    """Launch Debian's Chromium headless through Playwright (Playwright's own browsers are not used)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            yield browser
        finally:
            browser.close()


def save_screenshot(page, name: str) -> Path:
    """Save a full-page screenshot under test-artifacts/ and return its path."""
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path
