"""`serve` command: run the Gradio app, the same as `python app.py`."""

import argparse
import os


def register(subparsers) -> None:
    serve = subparsers.add_parser(
        "serve",
        help="run the web app (same options as `python app.py`; see `python app.py --help`)",
        add_help=False,
    )
    serve.add_argument("app_args", nargs=argparse.REMAINDER, help="options passed on to the app")
    serve.set_defaults(handler=run_serve)


def run_serve(args: argparse.Namespace) -> int:
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    from lora_playground.ui.server import main

    return main(args.app_args)
