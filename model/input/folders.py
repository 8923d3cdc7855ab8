"""Reading folders written by sourcing, without trusting what may have been planted in them.

`report` and `verify` read run, comparison and sweep folders; `--force`
replaces them. A folder may have been changed since it was written (or may
not be ours at all), so:

* files inside it are read with :func:`read_member`: never through a symbolic
  link, only regular files, with a size limit;
* :func:`read_summary` checks that ``summary.json`` is a summary of ours;
* :func:`why_not_replaceable` says why ``--force`` must not replace a folder:
  it replaces only a folder holding our ``summary.json`` and nothing but the
  files sourcing writes there (so a user's own files are never deleted);
* :func:`check_file_target` and :func:`check_output_parent` refuse, before any
  work, a single output file (an instance, a report, a workbook) that cannot be
  written or that ``--force`` must not replace.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from ..errors import InstanceError, UsageError

MAX_MEMBER_BYTES = 2 * 1024 ** 3        # a run folder's largest table (deliveries.csv)
MAX_SUMMARY_BYTES = 16 * 1024 ** 2
# per kind of file (docs/cli.md, Safety); tables are bounded further by the sizes of
# the folder's own instance (:func:`table_limits`)
MAX_BYTES_BY_SUFFIX = {".csv": MAX_MEMBER_BYTES, ".json": MAX_SUMMARY_BYTES,
                       ".yaml": 32 * 1024 ** 2, ".png": 32 * 1024 ** 2,
                       ".md": 256 * 1024 ** 2, ".xlsx": 256 * 1024 ** 2,
                       ".html": 256 * 1024 ** 2, ".parquet": MAX_MEMBER_BYTES}
MAX_ROW_BYTES = 2048            # a table row: a few ids (at most 100 characters) and numbers
TABLE_SLACK_BYTES = 64 * 1024   # the header and rounding
MIN_ROW_BYTES = 8               # the shortest row of any of our tables, as CSV

# the per-scenario tables that `--format parquet` writes as Parquet instead of CSV
PARQUET_TABLES = ("deliveries", "balance", "cost_by_year", "duals")
RUN_FILES = frozenset({"summary.json", "instance.yaml", "allocation.csv", "deliveries.csv",
                       "balance.csv", "scenarios.csv", "cost_by_year.csv", "duals.csv",
                       "tree.csv", *(f"{n}.parquet" for n in PARQUET_TABLES),
                       "stock_floors.csv", "projects.csv", "allocation.xlsx",
                       "allocation_by_country.png", "scenarios.png", "tree.png",
                       "projects.png", "regimes.png", "report.html",
                       # several buyers (model.analysis.buyers)
                       "buyers.csv", "buyer_scenarios.csv", "transfers.csv"})
COMPARISON_FILES = frozenset({"summary.json", "instance.yaml", "comparison.csv",
                              "cost_by_year.csv", "comparison_scenarios.csv",
                              "comparison.md", "comparison.xlsx", "comparison.png",
                              "report.html"})
SWEEP_FILES = frozenset({"summary.json", "instance.yaml", "frontier.csv", "frontier.md",
                         "frontier.png", "frontier.xlsx", "report.html"})
PROJECT_FILES = frozenset({"summary.json", "instance.yaml", "project_values.csv",
                           "project_values.md", "report.html"})
ROBUSTNESS_FILES = frozenset({"summary.json", "instance.yaml", "ranges.yaml", "ranges.csv",
                              "robustness.csv", "switch_points.csv", "draws.csv",
                              "conclusions.csv", "robustness.md", "robustness.xlsx",
                              "tornado.png", "report.html"})
# several buyers: every coalition's value and the allocations (model.studies.coalition),
# with one run folder per coalition under runs/
COALITION_FILES = frozenset({"summary.json", "instance.yaml", "coalition.csv",
                             "allocations.csv", "buyers_by_scenario.csv", "coalition.md",
                             "coalition.xlsx", "allocations.png", "shortage.png",
                             "report.html"})
FILES_OF = {"run": RUN_FILES, "comparison": COMPARISON_FILES, "sweep": SWEEP_FILES,
            "projects": PROJECT_FILES, "robustness": ROBUSTNESS_FILES,
            "coalition": COALITION_FILES}
# keys that every summary.json of this tool has had, whatever its kind and version
OUR_KEYS = frozenset({"instance", "instance_sha256", "version"})


def limit_of(path: Path) -> int:
    """The largest file of this kind that a folder of ours may hold (by its suffix)."""
    return MAX_BYTES_BY_SUFFIX.get(Path(path).suffix.lower(), MAX_MEMBER_BYTES)


def read_member(path: Path, limit: int | None = None) -> bytes:
    """The bytes of a file inside a folder: a regular file, never through a link, at
    most `limit` bytes (default: the bound of its kind, :func:`limit_of`).

    Raises UsageError naming the file otherwise (a planted link to another
    file must not be read into a report or a check).
    """
    from ..input.instance import read_limited

    try:
        return read_limited(Path(path), limit_of(path) if limit is None else limit,
                            follow=False)
    except InstanceError as err:
        raise UsageError(str(err)) from None


def table_limits(inst: Any, policies: int = 1) -> dict[str, int]:
    """The largest size in bytes each table of a run folder can have, from the sizes of
    its instance (S sources, P projects, E elements, T periods, W scenarios): its rows
    at most MAX_ROW_BYTES each (tree.csv's rows also list scenario ids). A table of a
    folder beyond these was not written by sourcing for this instance."""
    from ..input.regimes import scenario_list

    S, P = len(inst.sources), len(inst.projects)
    E, T, W = len(inst.elements), len(inst.periods), len(scenario_list(inst) or [None])
    rules = sum(len(p.min_stock_days) for p in inst.policies.values()) or 1
    rows = {"allocation": S * E * T * W, "deliveries": S * E * T * W,
            "balance": E * T * W, "scenarios": W, "cost_by_year": policies * (W + 1) * T,
            "duals": 8 * (S + P + 1) * E * T * W + 4 * rules * E * T * W,
            "tree": T * W + 1, "stock_floors": rules * E * T * W,
            "projects": P * T * W, "capacity_added": P * S * E * T * W,
            "comparison_scenarios": policies * W}
    B = len(getattr(inst, "buyers", None) or [None])
    if B > 1 or getattr(inst, "buyers", None):   # several buyers: each table per buyer
        rows = {name: n * B for name, n in rows.items()}
        rows.update({"buyers": B, "buyer_scenarios": B * W, "transfers": B * E * T * W,
                     "duals": rows["duals"] + 2 * S * E * T * W + E * T * W})
    out = {name: TABLE_SLACK_BYTES + n * MAX_ROW_BYTES for name, n in rows.items()}
    out["tree"] += (T * W + 1) * W * 102        # the scenarios of each node, ;-joined
    return {name: min(n, MAX_MEMBER_BYTES) for name, n in out.items()}


def table_path(path: Path) -> Path:
    """The file of a table: ``x.csv``, or ``x.parquet`` where the folder holds that
    instead (a run written with ``--format parquet``)."""
    path = Path(path)
    if path.suffix == ".csv" and not os.path.lexists(path):
        other = path.with_suffix(".parquet")
        if os.path.lexists(other):
            return other
    return path


def has_table(path: Path) -> bool:
    """Whether the folder holds the table ``x.csv`` (or ``x.parquet``)."""
    return os.path.lexists(table_path(path))


def _read_parquet(path: Path, data: bytes, limit: int, **kwargs: Any) -> Any:
    """A Parquet table as read_table gives a CSV one: the columns asked for as text
    are text (missing values stay missing)."""
    import io

    import pandas as pd

    from ..safety import shown

    import pyarrow.parquet as pq

    try:
        meta = pq.ParquetFile(io.BytesIO(data)).metadata
        # a few kilobytes of Parquet can declare a billion rows (run-length encoded):
        # the rows, cells and decoded bytes are bounded as a CSV of `limit` bytes would be
        decoded = sum(meta.row_group(g).total_byte_size for g in range(meta.num_row_groups))
        if meta.num_rows > limit // MIN_ROW_BYTES or \
                meta.num_rows * meta.num_columns > limit // 2 or decoded > limit:
            raise UsageError(f"{path}: {meta.num_rows:,} rows of {meta.num_columns} columns "
                             f"({decoded:,} bytes decoded), more than a table of sourcing "
                             "holds for this instance")
        table = pd.read_parquet(io.BytesIO(data))
    except UsageError:
        raise
    except Exception as err:  # noqa: BLE001 - pyarrow raises many kinds on a bad file
        raise UsageError(f"{path}: not a table written by sourcing "
                         f"({shown(str(err).splitlines()[0] if str(err) else type(err).__name__, 120)})"
                         ) from None
    empty_missing = "" in kwargs.get("na_values", [""])
    for col in table.columns:      # as in a CSV, an empty cell is a missing value
        if not empty_missing:
            break
        if table[col].dtype == object or pd.api.types.is_string_dtype(table[col].dtype):
            table[col] = table[col].mask(table[col] == "")
            if table[col].isna().all():   # and a column of empty cells reads as numbers
                table[col] = pd.Series(float("nan"), index=table.index, dtype="float64")
    if kwargs.get("usecols"):
        table = table[[c for c in kwargs["usecols"] if c in table.columns]]
    dtype = kwargs.get("dtype")
    text = list(table.columns) if dtype is str else \
        [c for c, t in (dtype or {}).items() if t is str and c in table.columns]
    for col in text:
        values = table[col]
        table[col] = values.where(values.isna(), values.astype(str)).astype(object)
    return table


def read_table(path: Path, limit: int | None = None, columns: tuple[str, ...] = (),
               **kwargs: Any) -> Any:
    """One of our tables as a DataFrame: read as a regular file (never through a
    link, at most `limit` bytes), and only empty cells are missing values: a country
    such as NA (Namibia) or an id such as "null" stays text. ``x.csv`` may be
    ``x.parquet`` (:func:`table_path`). A file that is not such a table (not
    UTF-8, not CSV or Parquet, lacking one of `columns`) is a UsageError naming it."""
    import io

    import pandas as pd

    from ..safety import shown

    path = table_path(path)
    kwargs.setdefault("keep_default_na", False)
    kwargs.setdefault("na_values", [""])
    data = read_member(path, limit)
    if path.suffix == ".parquet":
        table = _read_parquet(path, data, MAX_MEMBER_BYTES if limit is None else limit,
                              **kwargs)
        missing = [c for c in columns if c not in table.columns]
        if missing:
            raise UsageError(f"{path}: not a table written by sourcing (no column "
                             f"{', '.join(missing)})")
        return table
    try:
        table = pd.read_csv(io.BytesIO(data), encoding="utf-8", **kwargs)
    except (UnicodeDecodeError, ValueError, pd.errors.ParserError,
            pd.errors.EmptyDataError) as err:    # ParserError is a ValueError too
        first = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise UsageError(f"{path}: not a table written by sourcing ({shown(first, 120)})") \
            from None
    missing = [c for c in columns if c not in table.columns]
    if missing:
        raise UsageError(f"{path}: not a table written by sourcing (no column "
                         f"{', '.join(missing)})")
    return table


def sha256_of(path: Path) -> str:
    """SHA-256 of a file inside a folder, streamed (never through a link, a regular
    file only, at most the bound of its kind)."""
    import hashlib
    import stat

    limit = limit_of(path)
    flags = os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_NOFOLLOW", 0) | \
        getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(path, flags)
    except OSError as err:
        raise UsageError(f"{path}: cannot read ({err.strerror}; a link?)") from None
    digest, total = hashlib.sha256(), 0
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise UsageError(f"{path}: not a regular file")
        if info.st_size > limit:
            raise UsageError(f"{path}: {info.st_size:,} bytes, above {limit:,} for its kind")
        os.set_blocking(fd, True)
        while total <= limit:
            chunk = os.read(fd, 1 << 20)
            if not chunk:
                break
            digest.update(chunk)
            total += len(chunk)
    finally:
        os.close(fd)
    if total > limit:
        raise UsageError(f"{path}: above {limit:,} bytes for its kind")
    return digest.hexdigest()


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
    except RecursionError:         # nested thousands deep: ours nest 4 levels
        raise UsageError(f"{path}: not a summary written by sourcing (nested too deep)") \
            from None
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
        if kind in ("comparison", "coalition") and entry.name == "runs" and \
                entry.is_dir(follow_symlinks=False):
            for sub in os.scandir(entry.path):
                why = "not a folder" if not sub.is_dir(follow_symlinks=False) else \
                    why_not_replaceable(Path(sub.path))
                if why:
                    return f"runs/{sub.name}: {why}"
            continue
        if entry.name not in FILES_OF[kind] or not entry.is_file(follow_symlinks=False):
            return f"it holds {entry.name}, which sourcing does not write there"
    return None


def check_output_parent(out: Path, shown: Path | None = None) -> None:
    """Refuse early an output whose folder cannot be created or written into.

    The nearest existing ancestor of `out` must be a folder we may write to
    (parent folders are created as needed). Messages name `shown` (the path as
    the user wrote it), by default `out`.
    """
    out = Path(out)
    shown = out if shown is None else shown
    parent = Path(os.path.abspath(out)).parent
    while not os.path.lexists(parent) and parent != parent.parent:
        parent = parent.parent
    if not parent.is_dir():
        raise UsageError(f"cannot write {shown}: {parent} is not a folder")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise UsageError(f"cannot write {shown}: no permission to write in {parent}")


def check_file_target(out: Path, force: bool) -> None:
    """Before any work: a single output file (`report --out`, `build --out`) can be
    written; with `force` only a regular file is replaced, never a folder or a link."""
    out = Path(out)
    check_output_parent(out)
    if not os.path.lexists(out):
        return
    if not force:
        raise UsageError(f"{out} already exists; use --force to replace it")
    if out.is_symlink():
        raise UsageError(f"{out} is a symbolic link; --force replaces only a regular file")
    if not out.is_file():
        raise UsageError(f"{out} is not a regular file; --force replaces only a regular file")
