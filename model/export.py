"""Writing run folders: whole or not at all.

A run folder is first written under a hidden temporary name beside its final
place and then renamed in one step, so a reader never sees half a folder; if
anything fails (or the process is interrupted) the temporary folder is
removed. An existing folder is replaced only with ``force``.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import re
import shutil
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

if TYPE_CHECKING:
    import pandas as pd

from .errors import UsageError

EXCEL_MAX_ROWS = 20_000  # larger tables stay in CSV (see docs/outputs.md)


def default_run_dir(root: Path, instance: str, policy: str) -> Path:
    """results/<instance>-<policy>-<UTC time>/ (a suffix keeps parallel runs apart)."""
    stamp = _dt.datetime.now(_dt.timezone.utc).strftime("%Y%m%d-%H%M%S")
    slug = re.sub(r"[^A-Za-z0-9._-]+", "-", f"{instance}-{policy}").strip("-")
    return root / f"{slug}-{stamp}"


def check_target(out: Path, force: bool) -> None:
    """Refuse early to overwrite an existing folder without `force`."""
    if out.exists() and not force:
        raise UsageError(f"{out} already exists; use --force to replace it")
    if out.exists() and not out.is_dir():
        raise UsageError(f"{out} exists and is not a folder")


def write_json(path: Path, obj: Any) -> None:
    path.write_text(json.dumps(obj, indent=2, default=_json_default) + "\n")


def _json_default(v: Any) -> Any:
    if hasattr(v, "item"):
        return v.item()
    if isinstance(v, Path):
        return str(v)
    raise TypeError(f"not JSON serialisable: {type(v).__name__}")


def write_csv(path: Path, table: "pd.DataFrame") -> None:
    """CSV with every float written exactly (shortest round-trip form), via Arrow.

    Arrow's writer is ~10x faster than pandas' on the large per-scenario tables.
    Text columns with mixed content (period labels, None) are written as text.
    """
    import math

    import pyarrow as pa
    import pyarrow.csv as pacsv

    out = table.copy(deep=False)
    for col in out.columns:
        if out[col].dtype == object:
            out[col] = [("" if v is None or (isinstance(v, float) and math.isnan(v))
                         else str(v)) for v in out[col]]
    pacsv.write_csv(pa.Table.from_pandas(out, preserve_index=False), str(path),
                    pacsv.WriteOptions(quoting_style="needed"))


def write_run_folder(out: Path, fill: Callable[[Path], None], force: bool = False,
                     unique: bool = False) -> Path:
    """Create folder `out` atomically: `fill(tmp)` writes the files, then a rename.

    With `unique`, an existing `out` gets a numeric suffix instead of an error
    (default run names, where two runs may start in the same second).
    """
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent))
    try:
        fill(tmp)
        return _publish(tmp, out, force, unique)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def _publish(tmp: Path, out: Path, force: bool, unique: bool) -> Path:
    candidate, n = out, 1
    while True:
        if candidate.exists():
            if unique:
                n += 1
                candidate = out.with_name(f"{out.name}-{n}")
                continue
            if not force:
                raise UsageError(f"{candidate} already exists; use --force to replace it")
            trash = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".old",
                                          dir=out.parent))
            os.rename(candidate, trash / "old")
            try:
                os.rename(tmp, candidate)
            except OSError:
                os.rename(trash / "old", candidate)
                raise
            finally:
                shutil.rmtree(trash, ignore_errors=True)
            return candidate
        try:
            os.rename(tmp, candidate)  # fails if another run created it meanwhile
            return candidate
        except OSError:
            if not candidate.exists():
                raise


RUN_TABLES = ("allocation", "deliveries", "balance", "scenarios", "duals", "tree",
              "stock_floors")


def save_run(run: Any, out: Path | None = None, force: bool = False,
             results_root: Path = Path("results"), charts: bool = True) -> Path:
    """Write a solve's run folder (see docs/outputs.md) and return its path.

    Always: ``summary.json`` and ``instance.yaml`` (the exact input). For an
    optimal solve also the tables as CSV and ``allocation.xlsx``; for any other
    status no table is written, so nothing can be mistaken for an optimum.
    """
    unique = out is None
    target = default_run_dir(results_root, run.summary["instance"], run.policy) \
        if out is None else Path(out)

    def fill(tmp: Path) -> None:
        write_json(tmp / "summary.json", run.summary)
        _instance_copy(run.loaded, tmp)
        if not run.optimal:
            return
        painter = _start_charts(run, tmp) if charts else None
        try:
            names = [n for n in RUN_TABLES if n in run.tables]   # no duals from mpi-sppy
            for name in names:
                write_csv(tmp / f"{name}.csv", run.tables[name])
            write_excel(tmp / "allocation.xlsx", {n: run.tables[n] for n in names})
        finally:
            if painter is not None:
                _finish_charts(painter)

    return write_run_folder(target, fill, force=force, unique=unique)


def _draw_run_charts(run: Any, folder: Path) -> None:
    import signal

    from . import charts

    signal.signal(signal.SIGINT, signal.SIG_IGN)   # the parent handles interrupts
    signal.signal(signal.SIGTERM, signal.SIG_DFL)

    charts.allocation_by_country(run.tables["deliveries"], run.tables["balance"],
                                 folder / "allocation_by_country.png",
                                 f"{run.summary['instance']} / {run.policy}")
    charts.cost_and_shortage_by_scenario(run.tables["scenarios"], folder / "scenarios.png",
                                         run.summary.get("currency", ""))
    charts.information_tree(run.tables["tree"], folder / "tree.png", run.summary["instance"])


def _start_charts(run: Any, folder: Path) -> Any:
    """Draw the charts in a forked process while this one writes the tables."""
    import multiprocessing as mp

    if "fork" not in mp.get_all_start_methods():
        _draw_run_charts(run, folder)
        return None
    proc = mp.get_context("fork").Process(target=_draw_run_charts, args=(run, folder),
                                          daemon=True)
    proc.start()
    return proc


def _finish_charts(proc: Any) -> None:
    import sys

    if sys.exc_info()[0] is not None:  # failing or interrupted: do not wait for charts
        proc.terminate()
        proc.join()
        return
    proc.join()
    if proc.exitcode != 0:
        raise RuntimeError(f"drawing the charts failed (exit code {proc.exitcode})")


def _instance_copy(loaded: Any, tmp: Path) -> None:
    if loaded.path is not None:
        shutil.copyfile(loaded.path, tmp / "instance.yaml")


def save_comparison(table: "pd.DataFrame", runs: dict[str, Any], loaded: Any,
                    out: Path | None = None, force: bool = False,
                    results_root: Path = Path("results")) -> Path:
    """A comparison folder: comparison.csv/.md/.xlsx/.png, summary.json, one run folder each."""
    unique = out is None
    target = default_run_dir(results_root, loaded.name, "compare") if out is None else Path(out)
    currency = loaded.instance.currency

    def fill(tmp: Path) -> None:
        from . import charts

        write_csv(tmp / "comparison.csv", table)
        (tmp / "comparison.md").write_text(markdown_table(table) + "\n")
        write_excel(tmp / "comparison.xlsx", {"comparison": table})
        if (table.status == "optimal").any():
            charts.comparison(table, tmp / "comparison.png", currency)
        write_json(tmp / "summary.json", {
            "kind": "comparison", "instance": loaded.name, "instance_sha256": loaded.sha256,
            "policies": list(runs), "statuses": {p: r.summary["status"] for p, r in runs.items()},
            "version": _version()})
        _instance_copy(loaded, tmp)
        for name, run in runs.items():
            save_run(run, tmp / "runs" / name)

    return write_run_folder(target, fill, force=force, unique=unique)


def save_sweep(frontier: "pd.DataFrame", settings: dict[str, Any], loaded: Any,
               out: Path | None = None, force: bool = False,
               results_root: Path = Path("results")) -> Path:
    """A sweep folder: frontier.csv, frontier.png, summary.json, instance.yaml."""
    unique = out is None
    target = default_run_dir(results_root, loaded.name, f"sweep-{settings['policy']}") \
        if out is None else Path(out)

    def fill(tmp: Path) -> None:
        from . import charts

        write_csv(tmp / "frontier.csv", frontier)
        (tmp / "frontier.md").write_text(markdown_table(frontier) + "\n")
        charts.frontier(frontier, tmp / "frontier.png", loaded.instance.currency)
        write_json(tmp / "summary.json", {
            "kind": "sweep", "instance": loaded.name, "instance_sha256": loaded.sha256,
            **settings, "statuses": frontier.status.tolist(), "version": _version()})
        _instance_copy(loaded, tmp)

    return write_run_folder(target, fill, force=force, unique=unique)


def markdown_table(table: "pd.DataFrame") -> str:
    """A GitHub-flavoured Markdown table (numbers to 6 significant digits)."""
    return table.to_markdown(index=False, floatfmt=",.6g")


def _version() -> str:
    from . import __version__

    return __version__


def write_excel(path: Path, tables: dict[str, "pd.DataFrame"]) -> None:
    """One sheet per table (xlsxwriter, constant memory), written column-typed.

    Tables longer than :data:`EXCEL_MAX_ROWS` stay in their CSV only; a
    ``notes`` sheet says which, so a spreadsheet never shows a silently cut table.
    Cells go straight to xlsxwriter row by row: pandas' ``to_excel`` formats
    every cell on its own and was several times slower.
    """
    import pandas as pd
    import xlsxwriter

    omitted = {n: len(t) for n, t in tables.items() if len(t) > EXCEL_MAX_ROWS}
    sheets = {n: t for n, t in tables.items() if n not in omitted}
    if omitted:
        sheets["notes"] = pd.DataFrame({
            "table": list(omitted), "rows": list(omitted.values()),
            "note": [f"over {EXCEL_MAX_ROWS:,} rows: see {n}.csv" for n in omitted]})
    book = xlsxwriter.Workbook(str(path), {"constant_memory": True})
    try:
        bold = book.add_format({"bold": True})
        for name, table in sheets.items():
            sheet = book.add_worksheet(name[:31])
            sheet.write_row(0, 0, [str(c) for c in table.columns], bold)
            columns = [_excel_cells(table[c]) for c in table.columns]
            # typed writers: write_row would test every string for numbers and URLs
            writers = [{"number": sheet.write_number, "bool": sheet.write_boolean,
                        "text": sheet.write_string}[kind] for kind, _ in columns]
            for r, row in enumerate(zip(*(cells for _, cells in columns)), 1):
                for c, (write, value) in enumerate(zip(writers, row)):
                    if value is not None:
                        write(r, c, value)
    finally:
        book.close()


def _excel_cells(column: "pd.Series") -> tuple[str, list[Any]]:
    """(kind, plain Python values) of one column; missing or non-finite values: None (blank)."""
    import numpy as np
    import pandas as pd

    if pd.api.types.is_bool_dtype(column):
        return "bool", column.tolist()
    if column.dtype == object and len(column) and all(
            isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, bool)
            for v in column):
        column = column.astype(float)      # e.g. periods: numbers in an object column
    if pd.api.types.is_numeric_dtype(column):
        values = column.to_numpy(dtype=float)
        cells: list[Any] = values.tolist()
        for i in np.flatnonzero(~np.isfinite(values)):
            cells[i] = None
        return "number", cells
    return "text", [None if v is None or (isinstance(v, float) and v != v) else str(v)
                    for v in column.astype(object).tolist()]
