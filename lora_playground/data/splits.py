"""Seeded train/validation/test splits: stratified by label for classification, random or grouped otherwise.

Every function returns row indices in ascending order, so each split keeps the order of the source.
The same inputs and seed give the same split on every machine (numpy's PCG64 generator).
"""

import math
from collections import defaultdict

import numpy as np

from lora_playground.errors import ConfigError, DataError


def check_fractions(validation_fraction: float, test_fraction: float) -> None:
    """Raise ConfigError unless both fractions are in (0, 1) and leave rows for training."""
    for name, value in (("validation_fraction", validation_fraction), ("test_fraction", test_fraction)):
        if not 0 < value < 1:
            raise ConfigError(f"{name}={value} is outside (0, 1).", "Use a fraction such as 0.1.")
    if validation_fraction + test_fraction >= 1:
        raise ConfigError(
            f"validation_fraction={validation_fraction} and test_fraction={test_fraction} leave no training rows.",
            "Make their sum smaller than 1, for example 0.1 and 0.1.",
        )


def stratified_indices(labels: list[int], fraction: float, seed: int) -> tuple[list[int], list[int]]:
    """Split rows into (kept, carved) with about `fraction` of each class carved out.

    The carved count of the whole data is round(len(labels) * fraction), at least one row; it is shared
    among the classes by largest remainder, and every class keeps at least one row.
    Raises DataError when no row can be carved without emptying a class.
    """
    rng = np.random.default_rng(seed)
    by_class: dict[int, list[int]] = defaultdict(list)
    for index, label in enumerate(labels):
        by_class[label].append(index)
    classes = sorted(by_class)

    quotas = {label: len(by_class[label]) * fraction for label in classes}
    capacity = {label: len(by_class[label]) - 1 for label in classes}
    target = min(max(1, math.floor(len(labels) * fraction + 0.5)), sum(capacity.values()))
    if target < 1:
        raise DataError(
            f"There are too few rows ({len(labels)}) to split off a part without removing a class.",
            "Give more rows, or give separate train/validation/test files.",
        )
    counts = _largest_remainder(quotas, capacity, target)

    carved = []
    for label in classes:
        members = np.array(by_class[label])
        rng.shuffle(members)
        carved.extend(int(index) for index in members[: counts[label]])
    carved_set = set(carved)
    kept = [index for index in range(len(labels)) if index not in carved_set]
    return kept, sorted(carved)


def random_indices(num_rows: int, fraction: float, seed: int, groups: list[str] | None = None):
    """Split rows into (kept, carved) at random, about `fraction` carved; rows of one group stay together.

    `groups` (optional) gives each row a group key, e.g. its prompt, so that rows sharing a key never land
    in different splits. Raises DataError when fewer than two rows (or groups) exist.
    """
    rng = np.random.default_rng(seed)
    keys = groups if groups is not None else list(range(num_rows))
    unique = sorted(set(keys), key=str)
    if len(unique) < 2:
        raise DataError(
            f"There are too few rows ({num_rows}) to split off a part.",
            "Give more rows, or give separate train/validation/test files.",
        )
    order = rng.permutation(len(unique))
    count = min(max(1, math.floor(len(unique) * fraction + 0.5)), len(unique) - 1)
    carved_keys = {unique[position] for position in order[:count]}
    carved = [index for index, key in enumerate(keys) if key in carved_keys]
    kept = [index for index, key in enumerate(keys) if key not in carved_keys]
    return kept, carved


def ordered_indices(num_rows: int, validation_fraction: float, test_fraction: float):
    """Split rows in file order: the first part trains, the next `test_fraction` tests, the rest validates.

    The train and test counts are int(n * fraction), the order and rounding used in chapter 7 of
    S. Raschka, "Build a Large Language Model From Scratch" (1,100 rows at 0.85/0.10/0.05 give 935/110/55).
    Returns (train, validation, test) index lists.
    """
    # The small epsilon keeps int() from losing a row to binary rounding, as in 0.85 * 1100 = 934.99...
    num_train = int(num_rows * (1.0 - validation_fraction - test_fraction) + 1e-9)
    num_test = int(num_rows * test_fraction + 1e-9)
    train = list(range(num_train))
    test = list(range(num_train, num_train + num_test))
    validation = list(range(num_train + num_test, num_rows))
    return train, validation, test


def _largest_remainder(quotas: dict[int, float], capacity: dict[int, int], target: int) -> dict[int, int]:
    counts = {label: min(math.floor(quota), capacity[label]) for label, quota in quotas.items()}
    remaining = target - sum(counts.values())
    # Ties go to the smaller class index, so the result does not depend on dict order.
    by_remainder = sorted(quotas, key=lambda label: (-(quotas[label] - math.floor(quotas[label])), label))
    while remaining > 0:
        progressed = False
        for label in by_remainder:
            if remaining == 0:
                break
            if counts[label] < capacity[label]:
                counts[label] += 1
                remaining -= 1
                progressed = True
        if not progressed:
            break
    return counts
