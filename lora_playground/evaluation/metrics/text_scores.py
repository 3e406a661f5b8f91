"""Text overlap scores between a generated reply and its reference: ROUGE-L, exact match and token F1.

Two tokenizations are used, each documented where it is defined:
- ROUGE-L tokens: lowercased runs of word characters (`\\w+`), no stemming and no stop-word removal.
- Answer tokens (exact match, token F1): SQuAD-style normalization, which lowercases, removes
  punctuation and the English articles "a", "an", "the", and splits on whitespace.
Both split on whitespace and punctuation only, so a script written without spaces (Chinese, Japanese, Thai)
becomes one token per unbroken run of characters.
"""

import re
import string
import unicodedata
from collections import Counter
from collections.abc import Sequence

from lora_playground.errors import DataError

_WORD = re.compile(r"\w+")
_ARTICLES = re.compile(r"\b(a|an|the)\b")


def check_text_pairs(predictions: Sequence[str], references: Sequence[str]) -> None:
    """Raise DataError unless predictions and references are equally long, non-empty lists of strings."""
    if len(predictions) != len(references):
        raise DataError(
            f"Got {len(predictions)} predictions for {len(references)} references.",
            "Pass one prediction per reference.",
        )
    if len(references) == 0:
        raise DataError("There are no examples to score: the predictions and references are empty.")
    for role, texts in (("prediction", predictions), ("reference", references)):
        for index, text in enumerate(texts):
            if not isinstance(text, str):
                raise DataError(f"The {role} at position {index} is {type(text).__name__}, not a string.")


def rouge_tokens(text: str) -> list[str]:
    """Split text into lowercased word tokens for ROUGE-L."""
    return _WORD.findall(text.lower())


def _is_punctuation(character: str) -> bool:
    return character in string.punctuation or unicodedata.category(character).startswith("P")


def normalize_answer(text: str) -> str:
    """Lowercase, drop punctuation and the articles a/an/the, and collapse whitespace (SQuAD-style)."""
    lowered = text.lower()
    without_punctuation = "".join(" " if _is_punctuation(character) else character for character in lowered)
    without_articles = _ARTICLES.sub(" ", without_punctuation)
    return " ".join(without_articles.split())


def answer_tokens(text: str) -> list[str]:
    """Split the normalized text into whitespace tokens."""
    return normalize_answer(text).split()


def longest_common_subsequence(first: Sequence[str], second: Sequence[str]) -> int:
    """Return the length of the longest common subsequence of two token lists (O(len * len) time, O(len) memory)."""
    if len(first) < len(second):
        first, second = second, first
    previous = [0] * (len(second) + 1)
    for token in first:
        current = [0]
        for column, other in enumerate(second, start=1):
            if token == other:
                current.append(previous[column - 1] + 1)
            else:
                current.append(max(previous[column], current[column - 1]))
        previous = current
    return previous[-1]


def _f1_from_overlap(overlap: int, predicted_count: int, reference_count: int) -> float:
    # Two empty token lists agree perfectly; one empty list against a non-empty one shares nothing.
    if predicted_count == 0 or reference_count == 0:
        return float(predicted_count == reference_count)
    if overlap == 0:
        return 0.0
    precision = overlap / predicted_count
    recall = overlap / reference_count
    return 2 * precision * recall / (precision + recall)


def rouge_l(prediction: str, reference: str) -> float:
    """Return the ROUGE-L F-measure (beta = 1) of one prediction against one reference, 0.0 to 1.0.

    Precision is LCS / prediction tokens and recall is LCS / reference tokens, where LCS is the longest
    common subsequence of the `rouge_tokens` of both texts.
    """
    predicted = rouge_tokens(prediction)
    expected = rouge_tokens(reference)
    return _f1_from_overlap(longest_common_subsequence(predicted, expected), len(predicted), len(expected))


def exact_match(prediction: str, reference: str) -> float:
    """Return 1.0 when both texts are equal after `normalize_answer`, else 0.0."""
    return float(normalize_answer(prediction) == normalize_answer(reference))


def token_f1(prediction: str, reference: str) -> float:
    """Return the F1 of the bag-of-tokens overlap between the normalized texts, 0.0 to 1.0 (SQuAD-style)."""
    predicted = answer_tokens(prediction)
    expected = answer_tokens(reference)
    overlap = sum((Counter(predicted) & Counter(expected)).values())
    return _f1_from_overlap(overlap, len(predicted), len(expected))


_SCORERS = {"rouge_l": rouge_l, "exact_match": exact_match, "token_f1": token_f1}


def mean_text_score(
    score: str, predictions: Sequence[str], references: Sequence[str], return_per_example: bool = False
) -> dict:
    """Score every (prediction, reference) pair with the named scorer and return `{score: mean}`.

    With `return_per_example`, the result also contains `{score}_per_example`, the list of example scores.
    """
    check_text_pairs(predictions, references)
    scorer = _SCORERS[score]
    scores = [scorer(prediction, reference) for prediction, reference in zip(predictions, references)]
    result: dict = {score: sum(scores) / len(scores)}
    if return_per_example:
        result[f"{score}_per_example"] = scores
    return result
