"""Turning raw label values (strings, integers, mixed) into class indices and label names.

Rules:
- Every raw value is first written as a string key: numbers without a fractional part as integers
  ("1", 1 and 1.0 are the same class), booleans as "true"/"false", strings stripped of surrounding space.
- Given `label_names`: a key that is one of the names maps to that name's index. Otherwise, when every
  key is an integer, the keys are indices into `label_names`.
- Without names: integer keys are sorted numerically and named by their value ("-1", "0", "1"); other keys
  are sorted as strings. The names come from the training split, and a validation or test label that never
  occurs in training is an error.
"""

import math
import re

from lora_playground.errors import DataError

_INTEGER = re.compile(r"[+-]?\d+")
_SHOWN = 10  # how many offending values a message lists


def label_key(value) -> str | None:
    """Return the class key of a raw label value, or None when the label is missing.

    Raises TypeError for lists, dicts and other values that cannot be a class label.
    """
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return None
        return str(int(value)) if value.is_integer() else repr(value)
    if isinstance(value, str):
        return value.strip() or None
    raise TypeError(f"a {type(value).__name__} cannot be a class label")


def _shown(values) -> str:
    values = list(values)
    text = ", ".join(repr(value) for value in values[:_SHOWN])
    return text + (f" and {len(values) - _SHOWN} more" if len(values) > _SHOWN else "")


def encode_labels(
    keys_by_split: dict[str, list[str]],
    origins: dict[str, str],
    column: str,
    label_names: list[str] | None = None,
) -> tuple[list[str], dict[str, list[int]]]:
    """Return the label names and, per split, the class index of every key.

    `keys_by_split` has the keys (see `label_key`) of each split and must contain "train";
    `origins` names each split's file for messages; `column` is the label column's name.
    Raises DataError for one class only, labels outside `label_names`, integer labels out of range, and
    validation/test labels that the training split does not contain.
    """
    all_keys = {key for keys in keys_by_split.values() for key in keys}
    all_integers = all(_INTEGER.fullmatch(key) for key in all_keys)

    if label_names is not None:
        names = _checked_names(label_names)
        if all_keys <= set(names):
            index_of = {name: index for index, name in enumerate(names)}
        elif all_integers:
            index_of = _index_by_position(keys_by_split, origins, column, names)
        else:
            unknown = sorted(all_keys - set(names))
            raise DataError(
                f"Label column {column!r} contains value(s) {_shown(unknown)} that are not among the given label "
                f"names {names}.",
                "Add them to the label names, or fix those rows.",
            )
    else:
        names, index_of = _names_from_training(keys_by_split, origins, column, all_integers)

    indices = {split: [index_of[key] for key in keys] for split, keys in keys_by_split.items()}
    trained_classes = set(indices["train"])
    if len(trained_classes) < 2:
        only = names[next(iter(trained_classes))] if trained_classes else "none"
        raise DataError(
            f"The training data ({origins['train']}) has only one class in label column {column!r}: {only!r}.",
            "A classifier needs examples of at least two classes; check the label column.",
        )
    return names, indices


def missing_training_classes(names: list[str], train_indices: list[int]) -> list[str]:
    """Return the label names that have no training row (possible only when names are given)."""
    present = set(train_indices)
    return [name for index, name in enumerate(names) if index not in present]


def _checked_names(label_names: list[str]) -> list[str]:
    names = [str(name).strip() for name in label_names]
    if len(names) < 2:
        raise DataError(f"label_names={label_names} names fewer than two classes.", "Give at least two label names.")
    duplicates = sorted({name for name in names if names.count(name) > 1 or not name})
    if duplicates:
        raise DataError(
            f"label_names={label_names} repeats or leaves empty the name(s) {duplicates}.",
            "Give every class a different, non-empty name.",
        )
    return names


def _index_by_position(
    keys_by_split: dict[str, list[str]], origins: dict[str, str], column: str, names: list[str]
) -> dict[str, int]:
    index_of = {}
    for split, keys in keys_by_split.items():
        out_of_range = sorted({key for key in keys if not 0 <= int(key) < len(names)}, key=int)
        if out_of_range:
            raise DataError(
                f"Label column {column!r} of {origins[split]} contains class index(es) {_shown(out_of_range)}, "
                f"outside 0..{len(names) - 1} for the {len(names)} label names {names}.",
                "Fix those rows, or give one label name per class index.",
            )
        index_of.update({key: int(key) for key in keys})
    return index_of


def _names_from_training(
    keys_by_split: dict[str, list[str]], origins: dict[str, str], column: str, all_integers: bool
) -> tuple[list[str], dict[str, int]]:
    if all_integers:
        # "1", "01" and "+1" are one class, named "1".
        canonical = {key: str(int(key)) for keys in keys_by_split.values() for key in keys}
        train_names = sorted({canonical[key] for key in keys_by_split["train"]}, key=int)
    else:
        canonical = {key: key for keys in keys_by_split.values() for key in keys}
        train_names = sorted(set(keys_by_split["train"]))

    for split, keys in keys_by_split.items():
        unseen = sorted({canonical[key] for key in keys} - set(train_names), key=int if all_integers else str)
        if unseen:
            raise DataError(
                f"The {split} data ({origins[split]}) has label(s) {_shown(unseen)} in column {column!r} that "
                f"never occur in the training data ({origins['train']}).",
                "A model cannot learn classes it never sees: add training rows for them, or remove those rows.",
            )
    position = {name: index for index, name in enumerate(train_names)}
    return train_names, {key: position[canonical[key]] for key in canonical}
