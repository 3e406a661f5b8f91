"""Uncertainty of a score on a finite test set: percentile bootstrap intervals and McNemar's paired test."""

import math
from collections.abc import Sequence

import numpy as np

from lora_playground.errors import ConfigError, DataError

# Below this many discordant pairs the chi-square approximation is poor, so McNemar uses the exact
# binomial test instead (a widely used rule of thumb).
EXACT_TEST_BELOW = 25

# Resamples are drawn in chunks so memory stays near this many indices, whatever the test size.
_MAX_INDICES_PER_CHUNK = 4_000_000


def bootstrap_ci(
    scores: Sequence[float] | np.ndarray, confidence: float = 0.95, n_resamples: int = 1000, seed: int = 0
) -> tuple[float, float]:
    """Estimate a confidence interval for the mean of per-example scores with the percentile bootstrap.

    `scores` are per-example values: 0/1 correctness for accuracy, or a per-example score such as
    ROUGE-L. The function resamples the examples with replacement `n_resamples` times and returns
    the (1 - confidence) / 2 and (1 + confidence) / 2 quantiles of the resampled means. The same
    seed gives the same interval; the global random state is not touched.
    """
    values = np.asarray(scores, dtype=np.float64)
    if values.ndim != 1 or values.size == 0:
        raise DataError(f"bootstrap_ci needs a non-empty flat list of scores, got shape {values.shape}.")
    if not np.all(np.isfinite(values)):
        raise DataError("bootstrap_ci got a NaN or infinite score.", "Score every example with a finite number.")
    if not 0.0 < confidence < 1.0:
        raise ConfigError(f"confidence={confidence} is not between 0 and 1.", "Use for example 0.95.")
    if n_resamples < 1:
        raise ConfigError(f"n_resamples={n_resamples} must be at least 1.", "Use for example 1000.")

    generator = np.random.default_rng(seed)
    n = values.size
    chunk = max(1, _MAX_INDICES_PER_CHUNK // n)
    means = []
    for start in range(0, n_resamples, chunk):
        rows = min(chunk, n_resamples - start)
        indices = generator.integers(0, n, size=(rows, n))  # (resamples, examples)
        means.append(values[indices].mean(axis=1))
    resampled = np.concatenate(means)

    tail = (1.0 - confidence) / 2.0
    low, high = np.quantile(resampled, [tail, 1.0 - tail])
    return float(low), float(high)


def _as_correctness(values: Sequence[int] | np.ndarray, role: str) -> np.ndarray:
    array = np.asarray(values)
    if array.ndim != 1:
        raise DataError(f"{role} must be a flat list of 0/1 correctness values, got shape {array.shape}.")
    if array.size and not np.all(np.isin(array, (0, 1))):
        raise DataError(f"{role} contains values other than 0/1 or False/True.", "Pass per-example correctness.")
    return array.astype(bool)


def _exact_two_sided_p(smaller: int, discordant: int) -> float:
    # Under the null hypothesis each discordant pair favors either model with probability 1/2, so the
    # smaller count follows Binomial(discordant, 1/2); the two-sided p-value doubles its lower tail.
    lower_tail = sum(math.comb(discordant, k) for k in range(smaller + 1)) / 2**discordant
    return min(1.0, 2.0 * lower_tail)


def mcnemar(a_correct: Sequence[int] | np.ndarray, b_correct: Sequence[int] | np.ndarray) -> dict:
    """Test whether two models evaluated on the same examples have different error rates (McNemar).

    Returns a dict with:
    - `b01`: examples that model A gets wrong and model B gets right,
    - `b10`: examples that model A gets right and model B gets wrong,
    - `statistic`: the chi-square statistic with continuity correction, (|b01 - b10| - 1)^2 / (b01 + b10),
      or, for the exact test, min(b01, b10),
    - `p_value`: two-sided,
    - `method`: "exact binomial" when b01 + b10 < 25, otherwise "chi-square with continuity correction".
    Both p-values are computed in closed form with the standard library (binomial coefficients, and
    the chi-square survival function with one degree of freedom, erfc(sqrt(x / 2))).
    """
    first = _as_correctness(a_correct, "a_correct")
    second = _as_correctness(b_correct, "b_correct")
    if first.size != second.size:
        raise DataError(
            f"mcnemar got {first.size} results for model A and {second.size} for model B.",
            "Score both models on the same examples.",
        )
    if first.size == 0:
        raise DataError("mcnemar got no examples.")

    b01 = int(np.sum(~first & second))
    b10 = int(np.sum(first & ~second))
    discordant = b01 + b10
    if discordant < EXACT_TEST_BELOW:
        smaller = min(b01, b10)
        return {
            "b01": b01,
            "b10": b10,
            "statistic": float(smaller),
            "p_value": _exact_two_sided_p(smaller, discordant),
            "method": "exact binomial",
        }

    statistic = (abs(b01 - b10) - 1) ** 2 / discordant
    p_value = math.erfc(math.sqrt(statistic / 2.0))
    return {
        "b01": b01,
        "b10": b10,
        "statistic": statistic,
        "p_value": p_value,
        "method": "chi-square with continuity correction",
    }
