"""Child-process programs for the crash-safety tests: each one stops at a known point and waits to be killed.

Run as `python tests/crash_helpers.py MODE ...`. The adapter store and the runs folder come from the
environment (LORA_PLAYGROUND_ADAPTERS, LORA_PLAYGROUND_RUNS), as in the app. A program that reaches
its stopping point writes a JSON marker file and then sleeps, so the test can send SIGKILL exactly
there instead of guessing a delay.

Modes:
    jobs    the app's job queue and "train" job kind: one short job runs to the end, then a long one
            starts training and runs until the process is killed.
    save    saves the entry "kept", then saves again and stops inside the second save:
            --pause temporary   weights written to the temporary folder, metadata not yet written;
            --pause commit      the finished temporary folder is about to be renamed to its name;
            --pause replace     a forced overwrite of "kept" has moved the old entry aside and is about
                                to rename the new one into place.
    pull    pulls an adapter from a Hub-compatible server (the test keeps the download open).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import threading
import time
from pathlib import Path

TESTS_DIR = Path(__file__).resolve().parent
# The tests folder for lora_helpers, the repository root for lora_playground (not installed as a package).
sys.path[:0] = [str(TESTS_DIR), str(TESTS_DIR.parent)]

WAIT_SECONDS = 600
KEPT_NAME = "kept"
KEPT_ACCURACY = 0.25
REPLACEMENT_ACCURACY = 0.75


def write_marker(path: str, payload: dict) -> None:
    """Write `payload` to `path` atomically, so the test never reads a half-written marker."""
    partial = Path(f"{path}.partial")
    partial.write_text(json.dumps(payload), encoding="utf-8")
    os.replace(partial, path)


def stop_here(marker: str, payload: dict) -> None:
    write_marker(marker, payload)
    time.sleep(WAIT_SECONDS)
    raise SystemExit("crash helper was not killed in time")


def train_params(base: str, data: str, name: str, max_steps: int) -> dict:
    """Parameters of a "train" job as the app's Train screen submits them."""
    from lora_playground.training.config import TrainConfig

    config = TrainConfig(max_steps=max_steps, batch_size=4, max_length=32, eval_every_steps=max_steps)
    return {
        "base": base,
        "source": {"source": data},
        "name": name,
        "force": False,
        "method": "lora",
        "config": config.to_dict(),
    }


def run_jobs(args: argparse.Namespace) -> None:
    from lora_playground import settings
    from lora_playground.jobs import JobQueue
    from lora_playground.ui.context import AppContext
    from lora_playground.ui.job_kinds import register_job_kinds

    queue = JobQueue()
    context = AppContext(bases=[args.base], queue=queue, limits=settings.limits())
    register_job_kinds(queue, context)
    queue.start()

    finished = queue.submit("train", train_params(args.base, args.data, args.finished_name, max_steps=2))
    done = queue.wait(finished.id, timeout=WAIT_SECONDS)
    if done.status != "succeeded":
        raise SystemExit(f"the short training job ended {done.status}: {done.error}")
    queue.submit("train", train_params(args.base, args.data, args.interrupted_name, max_steps=1_000_000))
    time.sleep(WAIT_SECONDS)


def run_save(args: argparse.Namespace) -> None:
    from lora_playground.adapters import AdapterStore
    from lora_playground.adapters import store as store_module
    from lora_playground.models import get_shared_base
    from lora_helpers import metadata_for, perturbed_lora_model

    base = get_shared_base(args.base)
    store = AdapterStore()
    kept_metadata = metadata_for(base)
    kept_metadata.metrics = {"accuracy": KEPT_ACCURACY}
    store.save_lora(KEPT_NAME, perturbed_lora_model(base, seed=1), kept_metadata)

    replacement_metadata = metadata_for(base)
    replacement_metadata.metrics = {"accuracy": REPLACEMENT_ACCURACY}
    target_name = KEPT_NAME if args.pause == "replace" else args.name

    if args.pause == "temporary":
        original = store_module.AdapterStore._write_metadata_and_card

        def paused_write(self, folder, metadata, adapter_config):
            stop_here(args.marker, {"temporary": str(folder)})
            original(self, folder, metadata, adapter_config)

        store_module.AdapterStore._write_metadata_and_card = paused_write
    else:
        real_rename = os.rename

        def paused_rename(source, destination, *rename_args, **rename_kwargs):
            if Path(source).name.startswith(".tmp-") and Path(destination).name == target_name:
                stop_here(args.marker, {"temporary": str(source), "target": str(destination)})
            return real_rename(source, destination, *rename_args, **rename_kwargs)

        os.rename = paused_rename

    store.save_lora(target_name, perturbed_lora_model(base, seed=2), replacement_metadata, force=args.pause == "replace")
    raise SystemExit("the save finished without reaching its stopping point")


def run_pull(args: argparse.Namespace) -> None:
    from lora_playground.hub import pull_adapter
    from lora_playground.models import get_shared_base

    base = get_shared_base(args.base)
    write_marker(args.marker, {"pid": os.getpid(), "stage": "pulling"})
    pull_adapter(args.repo, endpoint=args.endpoint, base=base, name=args.name)
    write_marker(args.marker, {"pid": os.getpid(), "stage": "finished"})


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    modes = parser.add_subparsers(dest="mode", required=True)

    jobs = modes.add_parser("jobs")
    jobs.add_argument("--base", required=True, help="local model folder")
    jobs.add_argument("--data", required=True, help="CSV file with text and label columns")
    jobs.add_argument("--finished-name", required=True)
    jobs.add_argument("--interrupted-name", required=True)
    jobs.set_defaults(handler=run_jobs)

    save = modes.add_parser("save")
    save.add_argument("--base", required=True)
    save.add_argument("--name", required=True, help="entry name of the interrupted save (ignored by --pause replace)")
    save.add_argument("--pause", choices=["temporary", "commit", "replace"], required=True)
    save.add_argument("--marker", required=True)
    save.set_defaults(handler=run_save)

    pull = modes.add_parser("pull")
    pull.add_argument("--base", required=True)
    pull.add_argument("--endpoint", required=True)
    pull.add_argument("--repo", required=True)
    pull.add_argument("--name", required=True)
    pull.add_argument("--marker", required=True)
    pull.set_defaults(handler=run_pull)
    return parser


def main(argv: list[str] | None = None) -> None:
    os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
    args = build_parser().parse_args(argv)
    # The parent kills this process; a daemon watchdog ends it anyway if the parent died first.
    watchdog = threading.Timer(WAIT_SECONDS + 60, lambda: os._exit(3))
    watchdog.daemon = True
    watchdog.start()
    args.handler(args)


if __name__ == "__main__":
    main()
