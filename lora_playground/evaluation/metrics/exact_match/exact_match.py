"""Exact match: the fraction of predictions equal to their reference after SQuAD-style normalization."""

from lora_playground.evaluation.metrics import module_base


class ExactMatch(module_base.TextOverlapScore):
    score = "exact_match"
    description = __doc__
    tokenization = "Normalization lowercases and removes punctuation, the articles a/an/the and extra whitespace."
