"""ROUGE-L: the F-measure of the longest common subsequence of word tokens, averaged over examples."""

from lora_playground.evaluation.metrics import module_base


class RougeL(module_base.TextOverlapScore):
    score = "rouge_l"
    description = __doc__
    tokenization = "Tokens are lowercased runs of word characters, without stemming."
