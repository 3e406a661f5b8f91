"""Recall: of the examples whose reference is a class, the fraction predicted as that class."""

from lora_playground.evaluation.metrics import module_base


class Recall(module_base.AveragedClassScore):
    score = "recall"
    description = __doc__
