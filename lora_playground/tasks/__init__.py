"""Tasks: what a model learns, and the built-in tasks whose data ships in pip packages."""

from lora_playground.tasks.task import LABEL, MESSAGES, TEXT, TEXT_PAIR, Task, TaskData, TaskType

__all__ = ["LABEL", "MESSAGES", "TEXT", "TEXT_PAIR", "Task", "TaskData", "TaskType"]
