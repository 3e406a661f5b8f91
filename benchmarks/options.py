"""Command-line options shared by the benchmark scripts, and their logging setup."""

import argparse
import logging
import sys
from collections.abc import Callable
from pathlib import Path

RESULTS_FOLDER = Path("benchmarks") / "results"


def base_parser(name: str, description: str, *, default_base: str, with_data: bool = True) -> argparse.ArgumentParser:
    """Return a parser with --base, --data, --output, --quick and --no-isolation.

    `name` is the script's short name; the default output is benchmarks/results/<name>.json.
    """
    parser = argparse.ArgumentParser(prog=f"python -m benchmarks.{name}", description=description)
    parser.add_argument(
        "--base",
        default=default_base,
        help=f"base model: a registry name, a local model folder or a Hub id (default: {default_base})",
    )
    if with_data:
        parser.add_argument(
            "--data",
            help="classification data (file, folder or built-in task; default: ../shared/datasets/sms_spam when "
            "present, else the built-in task chatterbot-language)",
        )
    parser.add_argument(
        "--output",
        default=str(RESULTS_FOLDER / f"{name}.json"),
        help=f"JSON file for the figures (default: {RESULTS_FOLDER / name}.json)",
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="tiny smoke run (a few rows and steps) to check that the script works; figures mean nothing",
    )
    parser.add_argument(
        "--no-isolation",
        action="store_true",
        help="run every measurement in this process instead of a fresh one each (faster, but memory peaks "
        "and warm-up then mix between runs; for smoke tests)",
    )
    return parser


def setup_logging(verbose: bool = False) -> None:
    """Log to stderr, so stdout holds only the report."""
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING,
        format="%(asctime)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    logging.getLogger("benchmarks").setLevel(logging.INFO)


def script_main(build_parser: Callable[[], argparse.ArgumentParser], run: Callable[[argparse.Namespace], dict]):
    """Return a `main(argv=None) -> int` that parses the options, sets up logging and runs the benchmark."""

    def main(argv: list[str] | None = None) -> int:
        args = build_parser().parse_args(argv)
        setup_logging()
        run(args)
        return 0

    return main
