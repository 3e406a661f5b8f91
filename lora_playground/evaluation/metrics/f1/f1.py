"""F1: the harmonic mean of precision and recall per class, averaged over classes."""

from lora_playground.evaluation.metrics import module_base


class F1(module_base.AveragedClassScore):
    score = "f1"
    description = __doc__
