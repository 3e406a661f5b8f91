"""Command-line interface: `python -m lora_playground <command> ...`.

Each command group lives in its own module with `register(subparsers)`; handlers call library functions
and print their results. A PlaygroundError is shown as one readable message with exit code 2; any other
exception is a bug and keeps its traceback.
"""

import argparse
import logging
import sys

from lora_playground.errors import PlaygroundError, SecondaryProcessDone

logger = logging.getLogger("lora_playground")

EXIT_USAGE = 2


def build_parser() -> argparse.ArgumentParser:
    from lora_playground.cli import adapters_cmd, adapters_extra_cmd, data_cmd, hub_cmd, serve_cmd, train_cmd

    parser = argparse.ArgumentParser(
        prog="python -m lora_playground",
        description="Train, compare, try and publish LoRA adapters on one shared frozen base model.",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug messages")
    parser.add_argument("-q", "--quiet", action="store_true", help="log warnings and errors only")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for module in (data_cmd, train_cmd, adapters_cmd, adapters_extra_cmd, serve_cmd, hub_cmd):
        module.register(subparsers)
    return parser


def configure_logging(verbose: bool, quiet: bool) -> None:
    level = logging.INFO
    if verbose:
        level = logging.DEBUG
    elif quiet:
        level = logging.WARNING
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s", datefmt="%H:%M:%S")
    # Third-party libraries are chatty at INFO; keep their warnings only.
    for noisy in ("httpx", "urllib3", "filelock", "datasets", "huggingface_hub"):
        logging.getLogger(noisy).setLevel(max(level, logging.WARNING))


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    configure_logging(args.verbose, args.quiet)
    try:
        return args.handler(args) or 0
    except SecondaryProcessDone:
        return 0
    except PlaygroundError as error:
        logger.debug("command failed", exc_info=True)
        print(f"error: {error}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
