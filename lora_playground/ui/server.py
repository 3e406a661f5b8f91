"""Command-line options and environment variables of `python app.py`, and the launch of the Gradio server.

| flag | environment variable | meaning | default |
| --- | --- | --- | --- |
| --host | LORA_PLAYGROUND_HOST (then GRADIO_SERVER_NAME) | interface to bind | 127.0.0.1 |
| --port | LORA_PLAYGROUND_PORT (then GRADIO_SERVER_PORT) | TCP port | 7860 |
| --share | LORA_PLAYGROUND_SHARE=1 | also open a public Gradio share link | off |
| --auth USER:PASSWORD | LORA_PLAYGROUND_AUTH | require this login | none |
| --auth-file PATH | LORA_PLAYGROUND_AUTH_FILE | require a login from a file of USER:PASSWORD lines | none |
| --base NAME (repeatable) | LORA_PLAYGROUND_BASES (comma-separated) | base models offered; the first is the default | minilm-l6, smollm2-135m |
| --job-workers N | LORA_PLAYGROUND_JOB_WORKERS | background jobs (training, comparison) run at once | 1 |
| --concurrency-limit N | LORA_PLAYGROUND_CONCURRENCY | requests per event (e.g. Try) served at once | 2 |
| --max-queue-size N | LORA_PLAYGROUND_MAX_QUEUE | requests waiting in Gradio's queue before new ones are turned away | 64 |

Hugging Face Spaces sets GRADIO_SERVER_NAME=0.0.0.0, so the app is reachable there without flags.
"""

from __future__ import annotations

import argparse
import ipaddress
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path

from lora_playground.errors import ConfigError
from lora_playground.jobs.redact import redact_text

logger = logging.getLogger(__name__)

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 7860
DEFAULT_BASES = ("minilm-l6", "smollm2-135m")


@dataclass
class ServerOptions:
    """Server settings of the app; the module docstring lists the matching flags and variables."""

    host: str = DEFAULT_HOST
    port: int = DEFAULT_PORT
    share: bool = False
    auth: list[tuple[str, str]] = field(default_factory=list)
    """Accepted (user, password) pairs; empty means no login."""
    bases: list[str] = field(default_factory=lambda: list(DEFAULT_BASES))
    job_workers: int = 1
    concurrency_limit: int = 2
    max_queue_size: int = 64

    @property
    def is_exposed(self) -> bool:
        """True when people other than the local user can reach the app (non-loopback host or share link)."""
        return self.share or not _is_loopback(self.host)


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def parse_auth_pair(text: str, source: str) -> tuple[str, str]:
    """Split "user:password" (the password may contain colons); raise ConfigError naming `source` if malformed."""
    user, separator, password = text.strip().partition(":")
    if not separator or not user or not password:
        raise ConfigError(
            f"Invalid login in {source}: expected USER:PASSWORD with both parts non-empty.",
            "Write one login per line as USER:PASSWORD.",
        )
    return user, password


def read_auth_file(path: str | Path) -> list[tuple[str, str]]:
    """Read USER:PASSWORD lines from `path`; blank lines and lines starting with # are skipped."""
    file = Path(path).expanduser()
    try:
        lines = file.read_text(encoding="utf-8").splitlines()
    except OSError as error:
        raise ConfigError(f"Cannot read the auth file {str(file)!r}: {error.strerror}.", "Check the path.") from error
    pairs = [
        parse_auth_pair(line, f"{file} line {number}")
        for number, line in enumerate(lines, start=1)
        if line.strip() and not line.lstrip().startswith("#")
    ]
    if not pairs:
        raise ConfigError(f"The auth file {str(file)!r} contains no USER:PASSWORD line.", "Add at least one login.")
    return pairs


def _positive_int(value: str, name: str) -> int:
    try:
        number = int(value)
    except ValueError:
        raise ConfigError(f"{name}={value!r} is not an integer.", "Use a whole number such as 1.") from None
    if number < 1:
        raise ConfigError(f"{name}={number} must be at least 1.", "Use a whole number such as 1.")
    return number


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="app.py",
        description="Serve LoRA Playground in the browser. Every flag can also be set by the environment "
        "variable named in its help; a flag wins over its variable.",
    )
    parser.add_argument("--host", help="interface to bind (LORA_PLAYGROUND_HOST; default 127.0.0.1, only this machine)")
    parser.add_argument("--port", help="TCP port (LORA_PLAYGROUND_PORT; default 7860)")
    parser.add_argument(
        "--share", action="store_true", default=None, help="also create a public Gradio share link (LORA_PLAYGROUND_SHARE=1)"
    )
    parser.add_argument(
        "--auth",
        help="require the login USER:PASSWORD (LORA_PLAYGROUND_AUTH); prefer --auth-file, since command lines "
        "are visible to other users of the machine",
    )
    parser.add_argument("--auth-file", help="file with one USER:PASSWORD login per line (LORA_PLAYGROUND_AUTH_FILE)")
    parser.add_argument(
        "--base",
        action="append",
        help="base model offered in the app: a registry name or a local model folder; repeat for several, the "
        "first is the default (LORA_PLAYGROUND_BASES, comma-separated; default minilm-l6,smollm2-135m)",
    )
    parser.add_argument("--job-workers", help="background jobs run at the same time (LORA_PLAYGROUND_JOB_WORKERS; default 1)")
    parser.add_argument(
        "--concurrency-limit", help="requests of one kind served at once (LORA_PLAYGROUND_CONCURRENCY; default 2)"
    )
    parser.add_argument(
        "--max-queue-size", help="requests waiting in Gradio's queue before new ones are rejected (LORA_PLAYGROUND_MAX_QUEUE; default 64)"
    )
    return parser


def parse_options(argv: list[str] | None = None, environ: dict[str, str] | None = None) -> ServerOptions:
    """Build ServerOptions from command-line flags, then environment variables, then defaults."""
    environ = os.environ if environ is None else environ
    arguments = build_parser().parse_args(argv)

    def pick(flag_value, *variables: str) -> str | None:
        if flag_value is not None:
            return flag_value
        for variable in variables:
            if environ.get(variable):
                return environ[variable]
        return None

    options = ServerOptions()
    options.host = pick(arguments.host, "LORA_PLAYGROUND_HOST", "GRADIO_SERVER_NAME") or DEFAULT_HOST
    port = pick(arguments.port, "LORA_PLAYGROUND_PORT", "GRADIO_SERVER_PORT")
    if port is not None:
        options.port = _positive_int(port, "port")
        if options.port > 65535:
            raise ConfigError(f"port={options.port} is not a TCP port.", "Use a number from 1 to 65535, e.g. 7860.")
    share = arguments.share if arguments.share is not None else environ.get("LORA_PLAYGROUND_SHARE", "")
    options.share = share is True or str(share).lower() in ("1", "true", "yes")

    auth_text = pick(arguments.auth, "LORA_PLAYGROUND_AUTH")
    auth_file = pick(arguments.auth_file, "LORA_PLAYGROUND_AUTH_FILE")
    if auth_text:
        options.auth.append(parse_auth_pair(auth_text, "--auth / LORA_PLAYGROUND_AUTH"))
    if auth_file:
        options.auth.extend(read_auth_file(auth_file))

    if arguments.base:
        options.bases = list(arguments.base)
    elif environ.get("LORA_PLAYGROUND_BASES"):
        options.bases = [name.strip() for name in environ["LORA_PLAYGROUND_BASES"].split(",") if name.strip()]

    workers = pick(arguments.job_workers, "LORA_PLAYGROUND_JOB_WORKERS")
    if workers is not None:
        options.job_workers = _positive_int(workers, "job workers")
    concurrency = pick(arguments.concurrency_limit, "LORA_PLAYGROUND_CONCURRENCY")
    if concurrency is not None:
        options.concurrency_limit = _positive_int(concurrency, "concurrency limit")
    queue_size = pick(arguments.max_queue_size, "LORA_PLAYGROUND_MAX_QUEUE")
    if queue_size is not None:
        options.max_queue_size = _positive_int(queue_size, "max queue size")
    return options


class RedactingFormatter(logging.Formatter):
    """Log formatter that replaces anything shaped like a Hugging Face token with "***"."""

    def format(self, record: logging.LogRecord) -> str:
        return redact_text(super().format(record))


def configure_logging(level: int = logging.INFO) -> None:
    """Log to stderr through RedactingFormatter; tracebacks of unexpected errors go here, not to users."""
    handler = logging.StreamHandler()
    handler.setFormatter(RedactingFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)


def main(argv: list[str] | None = None) -> int:
    """Parse options, build the app and serve it until interrupted; returns the process exit status."""
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    configure_logging()
    from lora_playground.errors import PlaygroundError

    try:
        options = parse_options(argv)
        from lora_playground.ui.app import launch

        launch(options)
    except PlaygroundError as error:
        # Bad options or limit variables (e.g. LORA_PLAYGROUND_MAX_ROWS=0) stop the start with one line.
        logger.error("%s", error)
        return 2
    return 0
