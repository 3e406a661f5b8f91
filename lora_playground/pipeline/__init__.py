"""Workflows shared by the CLI and the app: train-evaluate-store, compare, and side-by-side inference."""

from lora_playground.pipeline.evaluate import evaluate_model
from lora_playground.pipeline.experiment import ComparisonOutcome, StoredRun, compare, compare_stored, train_and_store

__all__ = ["ComparisonOutcome", "StoredRun", "compare", "compare_stored", "evaluate_model", "train_and_store"]
