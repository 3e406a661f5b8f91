"""Lookup of the data behind a stored run's task, to evaluate it again or show test examples."""

from __future__ import annotations

from lora_playground.adapters import AdapterStore
from lora_playground.errors import DataError
from lora_playground.tasks.builtin import BUILTIN_TASKS


def task_source(names: list[str], data: dict | None) -> dict:
    """Return {"source": ..., **load_task_data options} for the task of the stored runs `names`.

    The session's chosen data (Data screen) is used when its task name matches the runs' task; a
    built-in task is found by its name. Uploaded files are not kept between sessions, so for other
    runs the person must choose the data again on the Data screen. Raises DataError when the runs
    belong to different tasks or no data is found.
    """
    store = AdapterStore()
    tasks = {store.get(name).metadata.task.get("name") for name in names}
    if len(tasks) != 1:
        raise DataError(
            f"The selected runs belong to different tasks: {', '.join(sorted(map(str, tasks)))}.",
            "Pick runs of one task.",
        )
    task_name = tasks.pop()
    chosen_task = ((data or {}).get("task") or {}).get("name")
    if data and chosen_task == task_name:
        return {"source": data["source"], **data["options"]}
    if task_name in BUILTIN_TASKS:
        return {"source": task_name}
    raise DataError(
        f"The data of task {task_name!r} is not available in this session.",
        "Choose that data on the Data screen (upload the file again) and press Check data.",
    )
