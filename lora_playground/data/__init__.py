"""Reading task data from files, folders, the Hub or built-in tasks into normalized, split TaskData."""

from lora_playground.data.files import FILE_FORMATS
from lora_playground.data.fingerprint import data_fingerprint
from lora_playground.data.generation import GENERATION_FORMATS
from lora_playground.data.loader import load_task_data
from lora_playground.data.preview import preview

__all__ = ["FILE_FORMATS", "GENERATION_FORMATS", "data_fingerprint", "load_task_data", "preview"]
