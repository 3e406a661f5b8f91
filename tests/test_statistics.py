"""Bootstrap intervals and McNemar's test against hand-computed and published values."""

import math

import numpy as np
import pytest

from lora_playground.errors import ConfigError, DataError
from lora_playground.evaluation.statistics import EXACT_TEST_BELOW, bootstrap_ci, mcnemar


def _pairs(both: int, only_a: int, only_b: int, neither: int) -> tuple[list[int], list[int]]:
    """Build per-example correctness lists for models A and B from the four cells of the 2x2 table."""
    a_correct = [1] * both + [1] * only_a + [0] * only_b + [0] * neither
    b_correct = [1] * both + [0] * only_a + [1] * only_b + [0] * neither
    return a_correct, b_correct


def test_bootstrap_brackets_mean():
    scores = np.array([1] * 45 + [0] * 15)
    low, high = bootstrap_ci(scores)
    assert low < scores.mean() < high
    assert 0.0 <= low
    assert high <= 1.0


def test_bootstrap_same_seed_same_interval():
    scores = np.random.default_rng(3).random(200)
    assert bootstrap_ci(scores, seed=7) == bootstrap_ci(scores, seed=7)
    assert bootstrap_ci(scores, seed=7) != bootstrap_ci(scores, seed=8)


def test_bootstrap_leaves_global_rng_alone():
    np.random.seed(11)
    expected = np.random.random()
    np.random.seed(11)
    bootstrap_ci([0, 1, 1, 0, 1])
    assert np.random.random() == expected


def test_bootstrap_matches_normal_approximation():
    # For 900 correct out of 1000, the normal interval is 0.9 +- 1.96 * sqrt(0.9 * 0.1 / 1000) = 0.9 +- 0.0186.
    scores = np.array([1] * 900 + [0] * 100)
    low, high = bootstrap_ci(scores, n_resamples=4000, seed=1)
    half_width = 1.96 * math.sqrt(0.9 * 0.1 / 1000)
    assert low == pytest.approx(0.9 - half_width, abs=0.005)
    assert high == pytest.approx(0.9 + half_width, abs=0.005)


def test_bootstrap_constant_scores_zero_width():
    assert bootstrap_ci([0.25] * 30) == (0.25, 0.25)


def test_bootstrap_higher_confidence_wider():
    scores = np.random.default_rng(0).random(300)
    low_90, high_90 = bootstrap_ci(scores, confidence=0.90)
    low_99, high_99 = bootstrap_ci(scores, confidence=0.99)
    assert low_99 < low_90
    assert high_99 > high_90


def test_bootstrap_chunked_resamples_cover_request():
    # 5000 examples x 1000 resamples exceeds one chunk of indices, so several chunks are drawn.
    scores = np.random.default_rng(0).integers(0, 2, 5000)
    low, high = bootstrap_ci(scores, n_resamples=1000)
    assert low < scores.mean() < high


@pytest.mark.parametrize(
    "arguments, error",
    [
        ({"scores": []}, DataError),
        ({"scores": [[1, 0], [0, 1]]}, DataError),
        ({"scores": [1.0, float("nan")]}, DataError),
        ({"scores": [1, 0], "confidence": 1.0}, ConfigError),
        ({"scores": [1, 0], "n_resamples": 0}, ConfigError),
    ],
)
def test_bootstrap_rejects_bad_input(arguments, error):
    with pytest.raises(error):
        bootstrap_ci(**arguments)


def test_mcnemar_agresti_presidential_approval():
    # Agresti (1990), Categorical Data Analysis, p. 350: 1600 voters rated the president twice.
    # approve/approve 794, approve/disapprove 150, disapprove/approve 86, disapprove/disapprove 570.
    # Without continuity correction the statistic is 64^2 / 236 = 17.36 (p = 3.1e-05).
    a_correct, b_correct = _pairs(both=794, only_a=150, only_b=86, neither=570)
    result = mcnemar(a_correct, b_correct)
    assert result["b10"] == 150
    assert result["b01"] == 86
    assert result["method"] == "chi-square with continuity correction"
    assert result["statistic"] == pytest.approx(63**2 / 236)
    assert result["statistic"] == pytest.approx(16.8178, abs=1e-4)
    assert result["p_value"] == pytest.approx(4.115e-05, rel=1e-3)


def test_mcnemar_chi_square_matches_scipy():
    stats = pytest.importorskip("scipy.stats")
    a_correct, b_correct = _pairs(both=10, only_a=30, only_b=12, neither=5)
    result = mcnemar(a_correct, b_correct)
    assert result["statistic"] == pytest.approx(17**2 / 42)
    assert result["p_value"] == pytest.approx(stats.chi2.sf(17**2 / 42, df=1), rel=1e-12)


def test_mcnemar_exact_small_counts():
    # One discordant pair favors A and nine favor B: p = 2 * (C(10,0) + C(10,1)) / 2^10 = 22 / 1024.
    a_correct, b_correct = _pairs(both=40, only_a=1, only_b=9, neither=3)
    result = mcnemar(a_correct, b_correct)
    assert result["method"] == "exact binomial"
    assert result["b01"] == 9
    assert result["b10"] == 1
    assert result["statistic"] == 1.0
    assert result["p_value"] == pytest.approx(22 / 1024)


def test_mcnemar_exact_matches_scipy():
    stats = pytest.importorskip("scipy.stats")
    for only_a, only_b in [(3, 8), (0, 6), (12, 12), (2, 20)]:
        a_correct, b_correct = _pairs(both=5, only_a=only_a, only_b=only_b, neither=5)
        expected = stats.binomtest(min(only_a, only_b), only_a + only_b, 0.5).pvalue
        assert mcnemar(a_correct, b_correct)["p_value"] == pytest.approx(expected, rel=1e-12)


def test_mcnemar_switches_test_at_threshold():
    below = mcnemar(*_pairs(both=5, only_a=EXACT_TEST_BELOW - 1, only_b=0, neither=5))
    at = mcnemar(*_pairs(both=5, only_a=EXACT_TEST_BELOW, only_b=0, neither=5))
    assert below["method"] == "exact binomial"
    assert at["method"] == "chi-square with continuity correction"


def test_mcnemar_no_discordant_pairs():
    result = mcnemar([1, 0, 1], [1, 0, 1])
    assert result["b01"] == 0
    assert result["b10"] == 0
    assert result["p_value"] == 1.0


def test_mcnemar_symmetric_in_models():
    a_correct, b_correct = _pairs(both=20, only_a=4, only_b=11, neither=2)
    forward = mcnemar(a_correct, b_correct)
    backward = mcnemar(b_correct, a_correct)
    assert forward["p_value"] == backward["p_value"]
    assert forward["b01"] == backward["b10"]


def test_mcnemar_rejects_bad_input():
    with pytest.raises(DataError, match="3 results for model A and 2"):
        mcnemar([1, 0, 1], [1, 0])
    with pytest.raises(DataError, match="other than 0/1"):
        mcnemar([1, 2], [1, 0])
    with pytest.raises(DataError, match="no examples"):
        mcnemar([], [])
