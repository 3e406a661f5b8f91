"""The task description and the prepared, normalized data that every trainer and evaluator consumes."""

from dataclasses import asdict, dataclass, field
from typing import Literal

import datasets

# datasets 5.2 fingerprints a new Dataset by pickling it, and its pickler reads
# transformers.PreTrainedTokenizerBase once transformers is in sys.modules. transformers 5 replaces its
# sys.modules entry with a lazy module when its import finishes, so a thread that imports it while another
# thread is still importing it gets the old module, and fingerprinting fails with "module 'transformers'
# has no attribute 'PreTrainedTokenizerBase'". The data loaders and the app (at start-up) import this
# module, so importing transformers here finishes that import before their threads can start one.
import transformers  # noqa: F401

TaskType = Literal["classification", "generation"]

# Normalized column names in TaskData.splits.
TEXT = "text"  # classification: the input text (str)
TEXT_PAIR = "text_pair"  # classification: optional second text (str), present only for pair tasks
LABEL = "label"  # classification: class index (int) into Task.label_names
MESSAGES = "messages"  # generation: list of {"role", "content"} dicts; the last one is the assistant reply


@dataclass
class Task:
    """What a model learns: the task type, where its inputs and targets come from, and the label names.

    Column fields name the columns of the user's source data; after preparation the data uses the
    normalized column names above, so trainers never look at the user's column names.
    """

    name: str
    type: TaskType = "classification"
    text_columns: list[str] = field(default_factory=lambda: ["text"])
    label_column: str | None = "label"
    # Class names in index order; a model's output i means label_names[i].
    label_names: list[str] = field(default_factory=list)
    # Generation only: "alpaca" (instruction/input/output), "chat" (messages) or "prompt_completion".
    data_format: str | None = None
    # Human-readable provenance, shown in model cards: where the data came from and under which license.
    source: str = ""
    license: str | None = None
    # Hub dataset id, when the data came from the Hub (goes into the model card's `datasets`).
    hub_dataset: str | None = None

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict) -> "Task":
        known = {key: value for key, value in values.items() if key in cls.__dataclass_fields__}
        return cls(**known)


@dataclass
class TaskData:
    """A task with its train/validation/test splits in normalized columns.

    `fingerprint` is a sha256 hex digest over the normalized rows of all splits (and the label names),
    recorded in every run so two runs can be shown to use the same data. `notes` lists what
    preparation changed, e.g. "dropped 3 rows with empty text from train", for the user to see.
    """

    task: Task
    splits: datasets.DatasetDict
    fingerprint: str
    notes: list[str] = field(default_factory=list)
