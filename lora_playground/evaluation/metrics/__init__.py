"""Local `evaluate` metric modules, loaded from this folder so that scoring never contacts the Hub.

`evaluate.load("accuracy")` downloads the metric script from the Hugging Face Hub and fails offline.
Each subfolder here contains one module (`<name>/<name>.py`, an `evaluate.Metric` subclass) that
`evaluate.load(<folder>)` imports from disk. The formulas live in `classification_scores` and
`text_scores`, which the modules call.
"""

import logging
import threading
from functools import lru_cache
from pathlib import Path

import evaluate

from lora_playground.errors import ConfigError

logger = logging.getLogger(__name__)

METRICS_DIR = Path(__file__).resolve().parent
METRIC_NAMES = ("accuracy", "precision", "recall", "f1", "confusion_matrix", "rouge_l", "exact_match", "token_f1")

# evaluate.Metric instances buffer their inputs between add_batch and compute, so concurrent callers
# (the app's request handlers and its job worker) must not share one instance at the same time.
_locks = {name: threading.Lock() for name in METRIC_NAMES}


def metric_path(name: str) -> Path:
    """Return the folder of the named local metric module."""
    if name not in METRIC_NAMES:
        raise ConfigError(f"Unknown metric {name!r}.", f"Use one of {', '.join(METRIC_NAMES)}.")
    return METRICS_DIR / name


@lru_cache(maxsize=None)
def load_metric(name: str) -> evaluate.EvaluationModule:
    """Load the named local metric with `evaluate.load(<folder>)`, once per process.

    The module keeps its inputs in memory (no cache files), so it works in read-only and offline
    settings. Use `compute_metric` to score, because it serializes calls on the shared instance.
    """
    path = metric_path(name)
    logger.debug("Loading metric %s from %s", name, path)
    return evaluate.load(str(path), keep_in_memory=True)


def compute_metric(name: str, predictions, references, **options) -> dict:
    """Score predictions against references with the named local metric and return its result dict.

    `options` go to the metric (for example `labels=[0, 1, 2]`, `average=None`,
    `return_per_example=True`); each module's `inputs_description` lists them.
    """
    metric = load_metric(name)
    with _locks[name]:
        return metric.compute(predictions=predictions, references=references, **options)
