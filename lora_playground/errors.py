"""Exceptions for problems the user can fix: bad input, missing files, mismatched adapters.

Each message names the offending value and says what to do next. The CLI and the app show these
messages as they are, and treat any other exception as a bug (logged with its traceback).
"""


class PlaygroundError(Exception):
    """A problem with user input or the environment, with a message that names the value and the fix."""

    def __init__(self, message: str, hint: str | None = None):
        self.message = message
        self.hint = hint
        super().__init__(message if hint is None else f"{message} {hint}")


class DataError(PlaygroundError):
    """A data file, column, label or split is missing or invalid."""


class ModelError(PlaygroundError):
    """A base model cannot be found or loaded, or a module name does not exist in it."""


class AdapterError(PlaygroundError):
    """A stored adapter is missing, broken, or does not fit the base model."""


class ConfigError(PlaygroundError):
    """Training or evaluation options are invalid or conflict with each other."""


class HubError(PlaygroundError):
    """A Hugging Face Hub request failed: bad token, missing repo, network failure."""


class LimitError(PlaygroundError):
    """A configured limit (upload size, rows, sequence length, jobs, loaded adapters) was exceeded."""


class CancelledError(PlaygroundError):
    """A job was cancelled by the user before it finished."""


class SecondaryProcessDone(Exception):
    """Raised in every process but the first of a distributed run, once training is done.

    Not an error: the first process evaluates and saves, the others have nothing left to do, and the
    CLI exits with 0 on it.
    """
