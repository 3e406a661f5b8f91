"""Token F1: the F1 of tokens shared by prediction and reference, averaged over examples (SQuAD-style)."""

from lora_playground.evaluation.metrics import module_base


class TokenF1(module_base.TextOverlapScore):
    score = "token_f1"
    description = __doc__
    tokenization = "Texts are normalized as for exact match, then compared as bags of whitespace tokens."
