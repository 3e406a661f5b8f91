"""Precision: of the examples predicted as a class, the fraction whose reference is that class."""

from lora_playground.evaluation.metrics import module_base


class Precision(module_base.AveragedClassScore):
    score = "precision"
    description = __doc__
