"""Reading folders written by sourcing, without trusting what may have been planted in them.

`report` and `verify` read run, comparison and sweep folders; `--force`
replaces them. A folder may have been changed since it was written (or may
not be ours at all), so:

* files inside it are read with :func:`read_member`: never through a symbolic
  link, only regular files, with a size limit;
* :func:`read_summary` checks that ``summary.json`` is a summary of ours;
* :func:`why_not_replaceable` says why ``--force`` must not replace a folder:
  it replaces only a folder holding our ``summary.json`` and nothing but the
  files sourcing writes there (so a user's own files are never deleted).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from ..errors import InstanceError, UsageError

MAX_MEMBER_BYTES = 2 * 1024 ** 3        # a run folder's largest table (deliveries.csv)
MAX_SUMMARY_BYTES = 64 * 1024 ** 2

RUN_FILES = frozenset({"summary.json", "instance.yaml", "allocation.csv", "deliveries.csv",
                       "balance.csv", "scenarios.csv", "cost_by_year.csv", "duals.csv",
                       "tree.csv",
                       "stock_floors.csv", "projects.csv", "allocation.xlsx",
                       "allocation_by_country.png", "scenarios.png", "tree.png",
                       "projects.png", "report.html"})
COMPARISON_FILES = frozenset({"summary.json", "instance.yaml", "comparison.csv",
                              "cost_by_year.csv",
                              "comparison.md", "comparison.xlsx", "comparison.png",
                              "report.html"})
SWEEP_FILES = frozenset({"summary.json", "instance.yaml", "frontier.csv", "frontier.md",
                         "frontier.png", "frontier.xlsx", "report.html"})
PROJECT_FILES = frozenset({"summary.json", "instance.yaml", "project_values.csv",
                           "project_values.md", "report.html"})
FILES_OF = {"run": RUN_FILES, "comparison": COMPARISON_FILES, "sweep": SWEEP_FILES,
            "projects": PROJECT_FILES}
# keys that every summary.json of this tool has had, whatever its kind and version
OUR_KEYS = frozenset({"instance", "instance_sha256", "version"})


def read_member(path: Path, limit: int = MAX_MEMBER_BYTES) -> bytes:
    """The bytes of a file inside a folder: a regular file, never through a link.

    Raises UsageError naming the file otherwise (a planted link to another
    file must not be read into a report or a check).
    """
    from ..input.instance import read_limited

    try:
        return read_limited(Path(path), limit, follow=False)
    except InstanceError as err:
        raise UsageError(str(err)) from None


def read_table(path: Path, **kwargs: Any) -> Any:
    """One of our CSV tables as a DataFrame: read as a regular file (never through a
    link, size-limited), and only empty cells are missing values: a country such
    as NA (Namibia) or an id such as "null" stays text."""
    import io

    import pandas as pd

    kwargs.setdefault("keep_default_na", False)
    kwargs.setdefault("na_values", [""])
    return pd.read_csv(io.BytesIO(read_member(path)), **kwargs)


def read_summary(folder: Path) -> dict[str, Any]:
    """A folder's summary.json as a dict, checked to be one that sourcing wrote."""
    path = Path(folder) / "summary.json"
    if not os.path.lexists(path):
        raise UsageError(f"{folder} is not a run, comparison or sweep folder (no summary.json)")
    data = read_member(path, MAX_SUMMARY_BYTES)   # its own message for a link or a FIFO
    try:
        summary = json.loads(data)
    except ValueError as err:      # also UnicodeDecodeError
        raise UsageError(f"{path}: not a summary written by sourcing ({err})") from None
    if not isinstance(summary, dict) or not OUR_KEYS <= summary.keys():
        raise UsageError(f"{path}: not a summary written by sourcing (it lacks "
                         f"{', '.join(sorted(OUR_KEYS - set(summary or {})))})"
                         if isinstance(summary, dict) else
                         f"{path}: not a summary written by sourcing")
    kind = summary.get("kind", "run")
    if kind not in FILES_OF:
        raise UsageError(f"{path}: unknown kind '{kind}'")
    if kind == "run" and "status" not in summary:
        raise UsageError(f"{path}: not a run summary (no status)")
    return summary


def why_not_replaceable(folder: Path) -> str | None:
    """Why `folder` is not a folder that sourcing wrote and may replace (None: it is)."""
    folder = Path(folder)
    if folder.is_symlink():
        return "it is a symbolic link"
    if not os.path.lexists(folder / "summary.json"):
        return "it has no summary.json"
    try:
        summary = read_summary(folder)
    except UsageError:
        return "its summary.json was not written by sourcing"
    kind = summary.get("kind", "run")
    try:
        entries = list(os.scandir(folder))
    except OSError as err:
        return f"it cannot be listed ({err.strerror})"
    for entry in entries:
        if entry.is_symlink():
            return f"it holds a symbolic link, {entry.name}"
        if kind == "comparison" and entry.name == "runs" and entry.is_dir(follow_symlinks=False):
            for sub in os.scandir(entry.path):
                why = "not a folder" if not sub.is_dir(follow_symlinks=False) else \
                    why_not_replaceable(Path(sub.path))
                if why:
                    return f"runs/{sub.name}: {why}"
            continue
        if entry.name not in FILES_OF[kind] or not entry.is_file(follow_symlinks=False):
            return f"it holds {entry.name}, which sourcing does not write there"
    return None
