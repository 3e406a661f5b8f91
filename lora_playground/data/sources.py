"""Resolving a data source (file, folder or Hub dataset id) into raw splits with the source's own columns.

Folder layouts, tried in this order:
- split files: names such as `train.csv`, `validation.jsonl` / `valid` / `val` / `dev`, `test.parquet`,
  also with a suffix after the split name (`train-00000-of-00002.parquet`, `test_clean.csv`); several
  files of one split are concatenated. A `data/` subfolder is searched when the folder itself has none.
- a single data file of a supported format: read as the only split.
- label-suffix line files: files sharing one stem whose suffix is the label (`rt-polarity.pos`,
  `rt-polarity.neg`), one text per line.
"""

import logging
import re
from dataclasses import dataclass, field
from pathlib import Path

import datasets
import pyarrow

from lora_playground.data.files import FILE_FORMATS
from lora_playground.data.readers import ReadOptions, check_row_limit, read_data_file, read_lines_file
from lora_playground.errors import ConfigError, DataError

logger = logging.getLogger(__name__)

SPLITS = ("train", "validation", "test")
SPLIT_ALIASES = {
    "train": ("train", "training"),
    "validation": ("validation", "valid", "val", "dev"),
    "test": ("test", "testing"),
}
# owner/name or name, as the Hub spells dataset ids.
_HUB_ID = re.compile(r"[A-Za-z0-9][\w.-]*(/[A-Za-z0-9][\w.-]*)?")


@dataclass
class RawSplit:
    """One split as read from the source, with `origin` (a file name or Hub split) for error messages."""

    dataset: datasets.Dataset
    origin: str


@dataclass
class RawData:
    """The splits found in a source (always `train`, plus `validation` and `test` when present)."""

    splits: dict[str, RawSplit]
    description: str  # provenance shown in model cards, e.g. "local file data/reviews.csv"
    default_name: str  # task name when none is given: the file stem, folder name or Hub id
    hub_dataset: str | None = None
    notes: list[str] = field(default_factory=list)


def read_source(
    source: str | Path,
    *,
    options: ReadOptions,
    split_names: dict[str, str] | None,
    hub_revision: str | None,
    hub_config: str | None,
    workdir: Path,
) -> RawData:
    """Read `source` into raw splits; `workdir` is a temporary folder for caches and transcoded copies.

    A `str` that is not an existing path and looks like `owner/name` is read from the Hub.
    `split_names` maps train/validation/test to the source's names for them: file names inside a folder,
    or split names of a Hub dataset.
    """
    _check_split_names(split_names)
    path = Path(source).expanduser()
    if path.is_dir():
        return _read_folder(path, options, split_names, workdir)
    if path.exists() or isinstance(source, Path) or _looks_like_path(str(source)):
        if split_names:
            raise ConfigError(
                f"split_names={split_names} applies to folders and Hub datasets, but {str(source)!r} is one file.",
                "Drop split_names, or give the folder that contains the split files.",
            )
        dataset = read_data_file(path, options, workdir)
        return RawData(
            splits={"train": RawSplit(dataset, path.name)},
            description=f"local file {path.name}",
            default_name=path.stem,
        )
    return _read_hub(str(source), split_names, hub_revision, hub_config)


def _check_split_names(split_names: dict[str, str] | None) -> None:
    if not split_names:
        return
    unknown = sorted(set(split_names) - set(SPLITS))
    if unknown:
        raise ConfigError(
            f"split_names has unknown key(s) {unknown}.",
            f"Use the keys {', '.join(SPLITS)}, mapped to the source's names for those splits.",
        )
    if "train" not in split_names:
        raise ConfigError(f"split_names={split_names} does not name the train split.", "Add a 'train' entry.")


def _looks_like_path(text: str) -> bool:
    if Path(text).suffix.lower() in FILE_FORMATS:
        return True
    return text.startswith((".", "/", "~")) or "\\" in text or text.count("/") > 1 or not _HUB_ID.fullmatch(text)


def _data_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_file() and not p.name.startswith("."))


def _read_folder(
    folder: Path, options: ReadOptions, split_names: dict[str, str] | None, workdir: Path
) -> RawData:
    files = _data_files(folder)
    if split_names:
        split_files = _named_split_files(folder, files, split_names)
    else:
        split_files = _split_files_by_name(files)
        if not split_files and (folder / "data").is_dir():
            split_files = _split_files_by_name(_data_files(folder / "data"))
    notes = []

    if not split_files:
        supported = [p for p in files if p.suffix.lower() in FILE_FORMATS]
        if len(supported) == 1:
            split_files = {"train": supported}
            notes.append(f"Read {supported[0].name} as the only split of folder {folder.name}.")
        elif not supported and _label_suffix_groups(files):
            return _read_label_suffix_folder(folder, files, options.encoding, workdir)
        else:
            names = ", ".join(p.name for p in files[:20]) or "no files"
            raise DataError(
                f"Folder {str(folder)!r} has no train/validation/test files (it contains: {names}).",
                "Name the files train.csv, validation.csv and test.csv (or .tsv, .json, .jsonl, .parquet), "
                "or map them with split_names={'train': 'my_train.csv', ...}.",
            )
    if "train" not in split_files:
        found = ", ".join(p.name for paths in split_files.values() for p in paths)
        raise DataError(
            f"Folder {str(folder)!r} has no train file (found: {found}).",
            "Add a train file (train.csv, train.jsonl, ...): training data is required.",
        )

    used = {p for paths in split_files.values() for p in paths}
    ignored = [p.name for p in files if p not in used and p.suffix.lower() in FILE_FORMATS]
    if ignored:
        notes.append(f"Ignored files in folder {folder.name} that name no split: {', '.join(ignored)}.")

    splits = {}
    for split, paths in split_files.items():
        parts = [read_data_file(path, options, workdir) for path in paths]
        dataset = parts[0] if len(parts) == 1 else _concatenate(parts, paths)
        check_row_limit(dataset.num_rows, f"The {split} split of {folder.name}")
        splits[split] = RawSplit(dataset, "+".join(p.name for p in paths))
    return RawData(
        splits=splits, description=f"local folder {folder.name}", default_name=folder.name, notes=notes
    )


def _split_files_by_name(files: list[Path]) -> dict[str, list[Path]]:
    found: dict[str, list[Path]] = {}
    for path in files:
        if path.suffix.lower() not in FILE_FORMATS:
            continue
        stem = path.stem.lower()
        for split, aliases in SPLIT_ALIASES.items():
            if any(stem == alias or re.match(rf"{alias}[-_.]", stem) for alias in aliases):
                found.setdefault(split, []).append(path)
                break
    return found


def _named_split_files(folder: Path, files: list[Path], split_names: dict[str, str]) -> dict[str, list[Path]]:
    found = {}
    for split, name in split_names.items():
        matches = [p for p in files if p.name == name or p.stem == name]
        if len(matches) != 1:
            available = ", ".join(p.name for p in files[:20])
            problem = "matches no file" if not matches else f"matches {len(matches)} files"
            raise DataError(
                f"split_names['{split}'] = {name!r} {problem} in folder {str(folder)!r} (files: {available}).",
                "Give the file name with its suffix.",
            )
        found[split] = matches
    return found


def _concatenate(parts: list[datasets.Dataset], paths: list[Path]) -> datasets.Dataset:
    first = parts[0].column_names
    for part, path in zip(parts[1:], paths[1:]):
        if sorted(part.column_names) != sorted(first):
            raise DataError(
                f"{path.name} has columns {part.column_names}, but {paths[0].name} of the same split has {first}.",
                "Give every file of a split the same columns.",
            )
    # Column order and value types may differ between shards; align them to the first file.
    try:
        aligned = [parts[0]] + [part.select_columns(first).cast(parts[0].features) for part in parts[1:]]
        return datasets.concatenate_datasets(aligned)
    except (ValueError, TypeError, pyarrow.ArrowException) as error:
        raise DataError(
            f"The files {', '.join(p.name for p in paths)} of one split hold different value types: {error}",
            "Give every file of a split the same columns with the same kinds of values.",
        ) from error


def _label_suffix_groups(files: list[Path]) -> dict[str, Path] | None:
    """Return {label: file} when all files share one stem and differ only in a suffix, else None."""
    if len(files) < 2:
        return None
    stems = {p.stem for p in files}
    labels = [p.suffix[1:] for p in files]
    if len(stems) != 1 or not all(labels) or len(set(labels)) != len(labels):
        return None
    return dict(zip(labels, files))


def _read_label_suffix_folder(folder: Path, files: list[Path], encoding: str, workdir: Path) -> RawData:
    groups = _label_suffix_groups(files)
    parts = []
    for label, path in groups.items():
        lines = read_lines_file(path, encoding, workdir)
        parts.append(lines.add_column("label", [label] * lines.num_rows))
    dataset = datasets.concatenate_datasets(parts)
    check_row_limit(dataset.num_rows, f"Folder {folder.name}")
    stem = files[0].stem
    note = (
        f"Read folder {folder.name} as one text per line, labelled by file suffix: "
        + ", ".join(f"{label} ({path.name})" for label, path in groups.items())
        + "."
    )
    return RawData(
        splits={"train": RawSplit(dataset, f"{stem}.{{{','.join(groups)}}}")},
        description=f"local folder {folder.name} (one text per line, label = file suffix)",
        default_name=folder.name,
        notes=[note],
    )


def _hub_offline() -> bool:
    # datasets reads HF_HUB_OFFLINE / HF_DATASETS_OFFLINE when it is imported.
    return bool(datasets.config.HF_HUB_OFFLINE)


def _read_hub(
    dataset_id: str,
    split_names: dict[str, str] | None,
    revision: str | None,
    config_name: str | None,
) -> RawData:
    """Download (or read from the local Hugging Face cache) a Hub dataset and pick its splits."""
    local_hint = (
        "Without network access, give a local CSV, TSV, JSON, JSONL or Parquet file, or a folder of split files."
    )
    if not _HUB_ID.fullmatch(dataset_id):
        raise DataError(f"Data source {dataset_id!r} is not a local file or folder, nor a Hub dataset id.")
    logger.info("Loading Hub dataset %s (config %s, revision %s)", dataset_id, config_name, revision)
    try:
        loaded = datasets.load_dataset(dataset_id, config_name, revision=revision)
    except datasets.exceptions.DatasetNotFoundError as error:
        raise DataError(
            f"{dataset_id!r} is not a local file or folder, and no Hub dataset has that id: {error}.",
            "Check the path or the dataset id (owner/name).",
        ) from error
    except (ConnectionError, OSError) as error:
        offline = " (offline mode is on: HF_HUB_OFFLINE=1)" if _hub_offline() else ""
        raise DataError(
            f"{dataset_id!r} is not a local file or folder, and the Hub dataset with that id could not be "
            f"downloaded{offline}: {error}.",
            local_hint,
        ) from error
    except (datasets.exceptions.DatasetsError, ValueError) as error:
        raise DataError(
            f"Hub dataset {dataset_id!r} could not be loaded: {error}.",
            "If it has several configurations, name one with hub_config=... (CLI: --hub-config).",
        ) from error

    available = list(loaded)
    chosen = dict(split_names) if split_names else _match_hub_splits(available)
    splits = {}
    for split, hub_split in chosen.items():
        if hub_split not in loaded:
            raise DataError(
                f"Hub dataset {dataset_id!r} has no split {hub_split!r}; its splits are {available}.",
                "Map the splits with split_names={'train': ..., 'validation': ..., 'test': ...}.",
            )
        check_row_limit(loaded[hub_split].num_rows, f"Split {hub_split} of {dataset_id}")
        splits[split] = RawSplit(loaded[hub_split], f"{dataset_id} [{hub_split}]")
    if "train" not in splits:
        raise DataError(
            f"Hub dataset {dataset_id!r} has no train split; its splits are {available}.",
            "Name the split to train on with split_names={'train': '<split>'}.",
        )
    revision_text = f" (revision {revision})" if revision else ""
    return RawData(
        splits=splits,
        description=f"Hugging Face Hub dataset {dataset_id}{revision_text}",
        default_name=dataset_id.split("/")[-1],
        hub_dataset=dataset_id,
    )


def _match_hub_splits(available: list[str]) -> dict[str, str]:
    chosen = {}
    for split, aliases in SPLIT_ALIASES.items():
        for alias in aliases:
            if alias in available:
                chosen[split] = alias
                break
    return chosen
