"""One product training run, measured: the worker that several benchmarks start in a fresh process.

`measure_training` loads the data and the shared base. It then runs the product's own pipeline
(`pipeline.train_and_store`: train, evaluate on the test split, save in a scratch adapter store) or
just `training.train`. It returns time, tokens, memory, stored size and accuracy as a JSON-ready dict.
"""

import logging
import time

import psutil

logger = logging.getLogger(__name__)


def current_rss_bytes() -> int:
    return psutil.Process().memory_info().rss


def page_in(model) -> None:
    """Read every parameter once, so weights that safetensors mapped from disk are resident before measuring.

    Without this, a LoRA run's memory peak would include paging in the frozen base weights on first use.
    """
    import torch

    with torch.no_grad():
        for parameter in model.parameters():
            parameter.sum()


def measure_training(
    *,
    base: str,
    data: str | None,
    config: dict,
    max_rows: dict[str, int] | None = None,
    drop_splits: list[str] | None = None,
    store: bool = True,
    name: str = "bench",
    min_words: int | None = None,
) -> dict:
    """Train one run of the product and return its figures.

    `config` contains TrainConfig fields, and `max_rows`, `drop_splits` and `min_words` reshape the data (see
    `workloads.load_workload`). With `store` the run goes through `train_and_store` (train, evaluate on the
    test split, save the adapter or checkpoint in a scratch store), so the result has `accuracy` and the
    real `stored_bytes` of the weight files. Without it only `train` runs.
    Time and memory fields (seconds, bytes):
    - `setup_s`: loading data and base; `pipeline_s`: everything after that (train, evaluate, save);
    - `train_wall_time_s`, `train_tokens`, `train_tokens_per_s`, `peak_memory_bytes`: the product's CostReport
      (its peak is measured from the start of the Trainer loop, after the model was built);
    - `rss_after_setup_bytes`: RSS with data and base loaded; `peak_above_setup_bytes`: the peak RSS above that
      while the pipeline ran (model copy, gradients, optimizer state, activations, evaluation).
    """
    started = time.perf_counter()
    from lora_playground.models import get_shared_base
    from lora_playground.training import TrainConfig, measure_peak_rss
    from lora_playground.training.trainer import train

    from benchmarks.workloads import load_workload, scratch_folders

    imports_s = time.perf_counter() - started
    setup_started = time.perf_counter()
    task_data = load_workload(data, max_rows=max_rows, drop_splits=tuple(drop_splits or ()), min_words=min_words)
    shared = get_shared_base(base)
    page_in(shared.model)
    setup_s = time.perf_counter() - setup_started
    rss_after_setup = current_rss_bytes()
    train_config = TrainConfig.from_dict(config)

    result: dict = {}
    pipeline_started = time.perf_counter()
    with scratch_folders(), measure_peak_rss() as memory:
        if store:
            from lora_playground.pipeline import train_and_store

            stored = train_and_store(base, task_data, train_config, f"{name}-{train_config.method}", force=True)
            trained = stored.trained
            result["accuracy"] = stored.result.metrics.get("accuracy")
            result["macro_f1"] = stored.result.metrics.get("macro_f1")
            result["stored_bytes"] = stored.result.cost.get("stored_bytes")
            result["inference_examples_per_s"] = stored.result.cost.get("inference_examples_per_s")
        else:
            trained = train(shared, task_data, train_config)
    pipeline_s = time.perf_counter() - pipeline_started

    steps = max((entry.get("step", 0) for entry in trained.history), default=0)
    result.update(
        {
            "method": train_config.method,
            "config": train_config.to_dict(),
            "base": base,
            "task": task_data.task.name,
            "rows": {split: len(rows) for split, rows in task_data.splits.items()},
            "imports_s": imports_s,
            "setup_s": setup_s,
            "pipeline_s": pipeline_s,
            "steps": steps,
            "rss_after_setup_bytes": rss_after_setup,
            "peak_above_setup_bytes": memory.peak_bytes,
            "val_metrics": trained.val_metrics,
            **trained.cost.to_dict(),
        }
    )
    if not store:
        result["stored_bytes"] = trained.cost.stored_bytes
    logger.info(
        "%s run: %.1f s training, %.0f tokens/s, accuracy %s",
        train_config.method,
        trained.cost.train_wall_time_s,
        trained.cost.train_tokens_per_s,
        result.get("accuracy"),
    )
    return result
