"""Shared state of one running app: the offered base models, the job queue and the limits."""

from __future__ import annotations

from dataclasses import dataclass

from lora_playground.errors import ConfigError
from lora_playground.jobs import JobQueue
from lora_playground.settings import Limits


@dataclass
class AppContext:
    """Per-process state of the app. Screens read it; only `create_app_context` builds it.

    `bases` are the base models people may pick: registry names or local folders set by the server's
    operator. The app never loads a model named by a visitor, so a shared server downloads and runs
    only the models its operator configured.
    """

    bases: list[str]
    queue: JobQueue
    limits: Limits
    exposed: bool = False
    """True when visitors other than the local user can reach the app (see ServerOptions.is_exposed)."""

    @property
    def default_base(self) -> str:
        return self.bases[0]

    def check_base(self, base: str | None) -> str:
        """Return `base` if the app offers it; raise ConfigError naming the offered bases otherwise."""
        if base not in self.bases:
            raise ConfigError(f"Base model {base!r} is not offered by this app.", f"Pick one of: {', '.join(self.bases)}.")
        return base
