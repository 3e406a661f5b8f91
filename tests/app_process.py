"""The Gradio app as a real `python app.py` process for HTTP-level tests, started with exactly the given flags.

Unlike `browser_helpers.running_app`, nothing is added to the command line (not even --host), so a test
can check the defaults the app applies by itself.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from browser_helpers import free_port, wait_for_http

REPO_ROOT = Path(__file__).resolve().parent.parent
# Importing gradio, torch and transformers and building every screen takes long on a loaded machine.
START_TIMEOUT = 240


@dataclass
class AppProcess:
    url: str
    port: int
    process: subprocess.Popen
    log_path: Path
    workdir: Path

    @property
    def adapters_dir(self) -> Path:
        return self.workdir / "adapters"

    @property
    def runs_dir(self) -> Path:
        return self.workdir / "runs"

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


@contextmanager
def app_process(workdir: Path, args: list[str], extra_env: dict[str, str] | None = None):
    """Run `python app.py --port <free port> *args` with its own store, runs and upload folders under `workdir`.

    The app is stopped with SIGTERM at the end (SIGKILL after 10 s). Hub tokens are removed from its
    environment.
    """
    port = free_port()
    env = {key: value for key, value in os.environ.items() if key not in ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN", "GRADIO_SERVER_NAME")}
    env.update(
        GRADIO_ANALYTICS_ENABLED="False",
        HF_HUB_DISABLE_TELEMETRY="1",
        LORA_PLAYGROUND_ADAPTERS=str(workdir / "adapters"),
        LORA_PLAYGROUND_RUNS=str(workdir / "runs"),
        GRADIO_TEMP_DIR=str(workdir / "gradio-uploads"),
        PYTHONUNBUFFERED="1",
        **(extra_env or {}),
    )
    log_path = workdir / "app.log"
    with open(log_path, "w") as log:
        process = subprocess.Popen(
            [sys.executable, "app.py", "--port", str(port), *args], cwd=REPO_ROOT, env=env, stdout=log, stderr=subprocess.STDOUT
        )
    url = f"http://127.0.0.1:{port}/"
    try:
        wait_for_http(url, START_TIMEOUT, process, log_path)
        yield AppProcess(url=url, port=port, process=process, log_path=log_path, workdir=workdir)
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)


def listening_addresses(port: int) -> list[str]:
    """Return the local addresses ("127.0.0.1", "::", ...) with a TCP socket listening on `port` (Linux /proc)."""
    addresses = []
    for table, width in (("/proc/net/tcp", 8), ("/proc/net/tcp6", 32)):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            local, state = fields[1], fields[3]
            address_hex, port_hex = local.split(":")
            if state != "0A" or int(port_hex, 16) != port:  # 0A is TCP_LISTEN
                continue
            addresses.append(_decode_address(address_hex, width))
    return addresses


def _decode_address(address_hex: str, width: int) -> str:
    import ipaddress

    # /proc prints each 32-bit word of the address in host (little-endian) byte order.
    words = [address_hex[index : index + 8] for index in range(0, width, 8)]
    raw = b"".join(bytes.fromhex(word)[::-1] for word in words)
    return str(ipaddress.ip_address(raw))


def endpoint_arguments(api_info: dict, api_name: str, values: dict[str, object]) -> list:
    """Build the positional inputs of endpoint `api_name` from the app's API description (/gradio_api/info).

    Each input whose label starts with a key of `values` gets that value, every other input its default.
    Matching by label keeps tests working when the app reorders inputs or adds inputs with defaults.
    """
    endpoints = api_info["named_endpoints"]
    assert api_name in endpoints, f"the app has no endpoint {api_name}; it has {sorted(endpoints)}"
    arguments, used = [], set()
    for parameter in endpoints[api_name]["parameters"]:
        label = parameter.get("label") or ""
        matches = [key for key in values if label.startswith(key)]
        if matches:
            arguments.append(values[matches[0]])
            used.add(matches[0])
        else:
            arguments.append(parameter.get("parameter_default"))
    assert used == set(values), f"{api_name} has no inputs labelled {sorted(set(values) - used)}"
    return arguments
