"""Writing run folders: whole or not at all.

A run folder is first written under a hidden temporary name beside its final
place and then renamed in one step, so a reader never sees half a folder; if
anything fails (or the process is interrupted) the temporary folder is
removed. An existing folder is replaced only with ``force``, and only if it
is a folder that sourcing wrote and still holds nothing else
(:func:`model.input.folders.why_not_replaceable`): checked before any work by
:func:`check_target` and again just before the replacement.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import hashlib
import json
import os
import re
import shutil
import signal
import sys
import tempfile
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterator

if TYPE_CHECKING:
    import pandas as pd

from ..errors import UsageError
from .excel import (  # noqa: F401 - write_excel and EXCEL_MAX_ROWS are used from here too
    EXCEL_MAX_ROWS,
    comparison_contracts_sheet,
    comparison_summary_sheet,
    robustness_summary_sheet,
    run_front_sheets,
    sweep_summary_sheet,
    write_excel,
)
from ..input.folders import PARQUET_TABLES, check_output_parent, why_not_replaceable
from ..safety import csv_cell, is_id, printable

MAX_SLUG = 80            # of a default folder name, before the time stamp
_STOP = (signal.SIGINT, signal.SIGTERM)


def default_run_dir(root: Path, instance: str, policy: str) -> Path:
    """results/<instance>-<policy>-<UTC time>/ (a suffix keeps parallel runs apart).

    The instance name is free text: only letters, digits and . _ - are kept,
    the slug does not start with a dot (no hidden folder) and is cut to
    MAX_SLUG characters (file names have a length limit).
    """
    stamp = _dt.datetime.now(_dt.timezone.utc).strftime("%Y%m%d-%H%M%S")
    slug = re.sub(r"[^A-Za-z0-9._-]+", "-", f"{instance}-{policy}").strip("-.")
    slug = slug[:MAX_SLUG].rstrip("-.") or "run"
    return root / f"{slug}-{stamp}"


def _real_target(out: Path) -> Path:
    """`out` with its folder resolved (links, `..`), the last name kept as given, so a
    link named `out` is seen as a link. Refuses the root and the current folder
    (or one holding it): neither can be replaced by a rename."""
    out = Path(out)
    if out.name in ("", ".", ".."):
        real = Path(os.path.realpath(out))
    else:
        real = Path(os.path.realpath(out.parent)) / out.name
    if real.name == "" or real == real.parent:
        raise UsageError(f"{out} is the root folder; choose a folder to create (--out)")
    cwd = Path(os.path.realpath(os.getcwd()))
    if real == cwd or real in cwd.parents:
        raise UsageError(f"{out} is the current folder or holds it; choose another --out")
    return real


def check_target(out: Path, force: bool) -> None:
    """Before any work: `out` can be created, or replaced with `force` (a folder that
    sourcing wrote and that holds nothing else; never a link or another file)."""
    out = Path(out)
    real = _real_target(out)
    check_output_parent(real, out)
    if not os.path.lexists(real):
        return
    if not force:
        raise UsageError(f"{out} already exists; use --force to replace it")
    _check_replaceable(out, real)


def _check_replaceable(out: Path, real: Path) -> None:
    if real.is_symlink():
        raise UsageError(f"{out} is a symbolic link; --force replaces only a folder that "
                         "sourcing wrote, not a link")
    if not real.is_dir():
        raise UsageError(f"{out} exists and is not a folder")
    why = why_not_replaceable(real)
    if why:
        raise UsageError(f"{out} is not a folder written by sourcing ({why}); --force "
                         "replaces only such folders: remove it yourself or choose "
                         "another --out")


def file_hashes(folder: Path) -> dict[str, str]:
    """SHA-256 of every file directly in `folder` but summary.json (sorted by name)."""
    out = {}
    for entry in sorted(os.scandir(folder), key=lambda e: e.name):
        if entry.name != "summary.json" and entry.is_file(follow_symlinks=False):
            digest = hashlib.sha256()
            with open(entry.path, "rb") as fh:
                for chunk in iter(lambda: fh.read(1 << 20), b""):
                    digest.update(chunk)
            out[entry.name] = digest.hexdigest()
    return out


def write_summary(folder: Path, summary: dict[str, Any]) -> None:
    """summary.json, written last: with the SHA-256 of every other file of the folder
    (``files``), so that `verify` can tell a file changed after it was written
    (docs/outputs.md)."""
    write_json(folder / "summary.json", {**summary, "files": file_hashes(folder)})


def record_file(folder: Path, name: str) -> None:
    """Add the SHA-256 of a file written into a folder later (report.html) to its
    summary.json's ``files`` (replaced whole; a summary without ``files``, written by an
    earlier version, is left as it is)."""
    from ..input.folders import read_summary, sha256_of

    summary = read_summary(folder)
    if not isinstance(summary.get("files"), dict):
        return
    summary["files"][name] = sha256_of(folder / name)
    fd, tmp = tempfile.mkstemp(prefix=".summary.json.", suffix=".tmp", dir=folder)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(json.dumps(summary, indent=2, default=_json_default) + "\n")
        os.chmod(tmp, 0o644)
        os.replace(tmp, folder / "summary.json")
    finally:
        if os.path.lexists(tmp):
            os.unlink(tmp)


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
    A text cell that a spreadsheet would run as a formula (= + - @ tab CR
    first) gets a leading ``'`` (:func:`model.safety.csv_cell`); numbers,
    negative ones too, are written as numbers.
    """
    import math

    import pandas as pd
    import pyarrow as pa
    import pyarrow.csv as pacsv

    import numpy as np

    def text(v: Any) -> str:
        return csv_cell(v) if isinstance(v, str) else \
            ("" if v is None or (isinstance(v, float) and math.isnan(v)) else str(v))

    out = table.copy(deep=False)
    for col in out.columns:
        values = out[col]
        if not (values.dtype == object or pd.api.types.is_string_dtype(values.dtype)):
            continue
        if pd.api.types.infer_dtype(values, skipna=True) in ("string", "empty"):
            # text and missing values only: each distinct value once (ids repeat
            # over millions of rows of the per-scenario tables)
            codes, uniques = pd.factorize(values, use_na_sentinel=True)
            mapped = np.array([text(v) for v in uniques] + [""], dtype=object)
            out[col] = pd.Series(mapped[codes], index=out.index, dtype=object)
        else:
            out[col] = pd.Series([text(v) for v in values], index=out.index, dtype=object)
    pacsv.write_csv(pa.Table.from_pandas(out, preserve_index=False), str(path),
                    pacsv.WriteOptions(quoting_style="needed"))


def write_parquet(path: Path, table: "pd.DataFrame") -> None:
    """A table as Parquet (compressed, typed): text columns as text (period labels of
    either type as their text), numbers as numbers. What ``--format parquet`` writes
    for the large per-scenario tables; read back by model.input.folders.read_table."""
    import pandas as pd
    import pyarrow as pa
    import pyarrow.parquet as pq

    out = table.copy(deep=False)
    for col in out.columns:
        values = out[col]
        if values.dtype == object or pd.api.types.is_string_dtype(values.dtype):
            out[col] = values.where(values.isna(), values.astype(str))
    pq.write_table(pa.Table.from_pandas(out, preserve_index=False), str(path),
                   compression="zstd")


TABLE_FORMATS = ("csv", "parquet")


def write_run_folder(out: Path, fill: Callable[[Path], None], force: bool = False,
                     unique: bool = False) -> Path:
    """Create folder `out` atomically: `fill(tmp)` writes the files, then a rename.

    With `unique`, an existing `out` gets a numeric suffix instead of an error
    (default run names, where two runs may start in the same second).
    """
    given = Path(out)
    out = _real_target(given)      # the folder resolved: `.`, `..` and links in it
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent))
    try:
        fill(tmp)
        published = _publish(tmp, out, force, unique)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    # shown to the user as they wrote it (a suffix for a taken default name)
    return given if published == out else given.with_name(published.name)


# folders this process has published (complete, at their final place): what an
# interrupt's message must not deny
PUBLISHED: list[Path] = []


@contextlib.contextmanager
def _signals_deferred() -> Iterator[None]:
    """SIGINT and SIGTERM held back for the duration and handled when it ends, so that
    a folder swap is never cut between its two renames.

    Python runs signal handlers in the main thread whatever thread the signal
    reaches (HiGHS and rich start threads of their own), so blocking the signals
    with pthread_sigmask would not hold them back: the handlers are swapped for
    ones that only take note, and the first signal noted is handed to the old
    handler afterwards. Outside the main thread (where no handler can be set)
    the signals are blocked for this thread instead.
    """
    if threading.current_thread() is not threading.main_thread():
        old_mask = signal.pthread_sigmask(signal.SIG_BLOCK, _STOP)
        try:
            yield
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, old_mask)
        return
    noted: list[int] = []
    old = {s: signal.signal(s, lambda signum, frame: noted.append(signum)) for s in _STOP}
    try:
        yield
    finally:
        for s, handler in old.items():
            signal.signal(s, handler)
        if noted:
            handler = old[noted[0]]
            if callable(handler):
                handler(noted[0], None)          # ours raises KeyboardInterrupt
            elif handler == signal.SIG_DFL:
                signal.raise_signal(noted[0])


def _publish(tmp: Path, out: Path, force: bool, unique: bool) -> Path:
    candidate, n = out, 1
    while True:
        if os.path.lexists(candidate):
            if unique:
                n += 1
                candidate = out.with_name(f"{out.name}-{n}")
                continue
            if not force:
                raise UsageError(f"{candidate} already exists; use --force to replace it")
            _check_replaceable(candidate, candidate)   # again: it may have changed meanwhile
            _swap(tmp, candidate)
            return candidate
        try:
            with _signals_deferred():
                os.rename(tmp, candidate)  # fails if another run created it meanwhile
                PUBLISHED.append(candidate)
            return candidate
        except OSError:
            if not os.path.lexists(candidate):
                raise


def _swap(tmp: Path, target: Path) -> None:
    """Replace folder `target` by `tmp`: the old folder moves aside, the new one in, and
    the old one is deleted. Interrupts wait until both renames are done; if the second
    fails, the old folder is put back (and if even that fails, the error says where it is)."""
    trash = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".old", dir=target.parent))
    try:
        with _signals_deferred():
            os.rename(target, trash / "old")
            try:
                os.rename(tmp, target)
            except BaseException as err:
                try:
                    os.rename(trash / "old", target)
                except OSError as again:
                    raise UsageError(
                        f"could not replace {target} ({_why(err)}) nor put the old folder "
                        f"back ({_why(again)}): it is at {trash / 'old'}; the new results "
                        "were not kept") from None
                raise UsageError(f"could not replace {target} ({_why(err)}); the old folder "
                                 "is back in place, the new results were not kept") from None
            PUBLISHED.append(target)
    finally:
        if not os.path.lexists(trash / "old") or os.path.lexists(target):
            shutil.rmtree(trash, ignore_errors=True)


def _why(err: BaseException) -> str:
    return getattr(err, "strerror", None) or type(err).__name__


RUN_TABLES = ("allocation", "deliveries", "balance", "scenarios", "cost_by_year", "duals",
              "tree", "stock_floors", "projects",
              "buyers", "buyer_scenarios", "transfers")    # the last three: several buyers


def save_run(run: Any, out: Path | None = None, force: bool = False,
             results_root: Path = Path("results"), charts: bool = True,
             table_format: str = "csv") -> Path:
    """Write a solve's run folder (see docs/outputs.md) and return its path.

    Always: ``summary.json`` and ``instance.yaml`` (the exact input). For an
    optimal solve also the tables as CSV and ``allocation.xlsx``; for any other
    status no table is written, so nothing can be mistaken for an optimum. With
    ``table_format="parquet"`` the large per-scenario tables (deliveries, balance,
    cost_by_year, duals) are Parquet files instead of CSV.
    """
    if table_format not in TABLE_FORMATS:
        raise UsageError(f"the table format must be one of {', '.join(TABLE_FORMATS)}, "
                         f"not {table_format!r}")
    unique = out is None
    target = default_run_dir(results_root, run.summary["instance"], run.policy) \
        if out is None else Path(out)

    def fill(tmp: Path) -> None:
        _instance_copy(run.loaded, tmp)
        if run.has_solution:          # no plan: nothing that could pass for one
            painter = _start_charts(run, tmp) if charts else None
            try:
                names = [n for n in RUN_TABLES if n in run.tables]   # no duals from mpi-sppy
                for name in names:
                    if table_format == "parquet" and name in PARQUET_TABLES:
                        write_parquet(tmp / f"{name}.parquet", run.tables[name])
                    else:
                        write_csv(tmp / f"{name}.csv", run.tables[name])
                write_excel(tmp / "allocation.xlsx", {n: run.tables[n] for n in names},
                            run.summary.get("currency", ""),
                            run_front_sheets(run.summary, run.tables,
                                             run.loaded.instance.period_days))
            finally:
                if painter is not None:
                    _finish_charts(painter)
        write_summary(tmp, run.summary)

    return write_run_folder(target, fill, force=force, unique=unique)


def _quiet_exit(signum: int, frame: Any) -> None:
    os._exit(128 + signum)   # no traceback, no clean-up: the parent removes the folder


def _draw_run_charts(run: Any, folder: Path, forked: bool = False) -> None:
    from . import charts

    if forked:
        # The parent handles interrupts and stops this process with SIGTERM; its own
        # handler (which raises KeyboardInterrupt) must not run here. The signals
        # were blocked across the fork, so none arrives before these handlers.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, _quiet_exit)
        signal.pthread_sigmask(signal.SIG_UNBLOCK, _STOP)
        try:
            _draw(charts, run, folder)
        except Exception as err:  # noqa: BLE001 - one line, the parent reports the failure
            if os.environ.get("SOURCING_DEBUG"):
                raise
            if folder.is_dir():   # gone: the parent is cleaning up after an interrupt
                sys.stderr.write(f"charts: {type(err).__name__}: {printable(err)}\n")
                sys.stderr.flush()
            os._exit(1)
        return
    _draw(charts, run, folder)


def _draw(charts: Any, run: Any, folder: Path) -> None:
    from ..input.regimes import scenario_paths
    charts.allocation_by_country(run.tables["deliveries"], run.tables["balance"],
                                 folder / "allocation_by_country.png",
                                 f"{run.summary['instance']} / {run.policy}")
    charts.cost_and_shortage_by_scenario(run.tables["scenarios"], folder / "scenarios.png",
                                         run.summary.get("currency", ""))
    charts.information_tree(run.tables["tree"], folder / "tree.png", run.summary["instance"])
    paths = scenario_paths(run.loaded.instance)
    if paths is not None and paths.states:          # scenarios from regimes: by period
        from .scenario_summary import by_regime_grid, regime_probability, shortage_by_regime

        charts.regimes(regime_probability(paths),
                       by_regime_grid(shortage_by_regime(paths, run.tables["balance"]),
                                      "weighted_shortage_t"),
                       folder / "regimes.png", run.summary["instance"])
    if len(run.tables.get("capacity_added", ())):
        charts.capacity_built(run.tables["capacity_added"], folder / "projects.png",
                              run.summary["instance"],
                              [p.id for p in run.loaded.instance.projects])


def _start_charts(run: Any, folder: Path) -> Any:
    """Draw the charts in a forked process while this one writes the tables."""
    import multiprocessing as mp

    if "fork" not in mp.get_all_start_methods():
        _draw_run_charts(run, folder)
        return None
    proc = mp.get_context("fork").Process(target=_draw_run_charts, args=(run, folder, True),
                                          daemon=True)
    # block SIGINT/SIGTERM across the fork: the child must not run this process's
    # handler before it installs its own; here they are delivered once unblocked
    old = signal.pthread_sigmask(signal.SIG_BLOCK, _STOP)
    try:
        proc.start()
    finally:
        try:
            signal.pthread_sigmask(signal.SIG_SETMASK, old)   # a pending signal fires here
        except BaseException:
            if proc.pid is not None:   # started: stop it, it must not outlive this call
                proc.terminate()
                proc.join()
            raise
    return proc


def _finish_charts(proc: Any) -> None:
    if sys.exc_info()[0] is not None:  # failing or interrupted: do not wait for charts
        proc.terminate()
        proc.join()
        return
    proc.join()
    if proc.exitcode != 0:
        raise RuntimeError(f"drawing the charts failed (exit code {proc.exitcode})")


def _instance_copy(loaded: Any, tmp: Path) -> None:
    """instance.yaml: the bytes that were validated and hashed (instance_sha256), also
    for an instance built in Python (then the validated instance as YAML)."""
    raw = getattr(loaded, "raw", None)
    if raw is None and loaded.path is not None:
        raw = Path(loaded.path).read_bytes()
    if raw is None:
        from ..input.builders import instance_to_yaml

        raw = instance_to_yaml(loaded.instance).encode()
    (tmp / "instance.yaml").write_bytes(raw)


def save_comparison(table: "pd.DataFrame", runs: dict[str, Any], loaded: Any,
                    out: Path | None = None, force: bool = False,
                    results_root: Path = Path("results"), table_format: str = "csv",
                    run_folders: bool = True) -> Path:
    """A comparison folder: comparison.csv/.md/.xlsx/.png, summary.json, one run folder
    each (in `table_format`; none with ``run_folders=False``: the comparison alone,
    for a reference of thousands of scenarios)."""
    unique = out is None
    target = default_run_dir(results_root, loaded.name, "compare") if out is None else Path(out)
    currency = loaded.instance.currency

    def fill(tmp: Path) -> None:
        from . import charts
        from ..analysis.results import comparison_scenarios_table, cost_by_year_table
        from .formatting import period_word

        by_year = cost_by_year_table(runs)
        write_csv(tmp / "comparison.csv", table)
        write_csv(tmp / "cost_by_year.csv", by_year)
        sheets = {"comparison": table, "cost_by_year": by_year}
        chart_table = table
        if not any(str(c).startswith("shortage_t[") for c in table.columns):
            # many scenarios: their figures in long form, not two columns each
            long = comparison_scenarios_table(runs)
            write_csv(tmp / "comparison_scenarios.csv", long)
            sheets["comparison_scenarios"] = long
            chart_table = with_key_scenarios(table, long)
        per = period_word(loaded.instance.period_days)
        (tmp / "comparison.md").write_text(markdown_table(table, currency, per) + "\n")
        front = [comparison_summary_sheet(table, loaded.name, currency),
                 comparison_contracts_sheet(runs)]
        write_excel(tmp / "comparison.xlsx", sheets, currency, [f for f in front if f is not None])
        if (table.status == "optimal").any():
            charts.comparison(chart_table, tmp / "comparison.png", currency,
                              "year" if per == "yr" else "period")
        _instance_copy(loaded, tmp)
        for name, run in runs.items():
            if not is_id(name):   # a folder name: never a path
                raise UsageError(f"policy name {name!r} cannot be a folder name")
            if run_folders:
                save_run(run, tmp / "runs" / name, table_format=table_format)
        write_summary(tmp, {
            "kind": "comparison", "instance": loaded.name, "instance_sha256": loaded.sha256,
            "overrides": list(loaded.overrides),
            "policies": list(runs), "statuses": {p: r.summary["status"] for p, r in runs.items()},
            "run_folders": run_folders,
            "version": _version()})

    return write_run_folder(target, fill, force=force, unique=unique)


def with_key_scenarios(table: "pd.DataFrame", long: "pd.DataFrame", most: int = 8
                       ) -> "pd.DataFrame":
    """The comparison table with ``shortage_t[w]`` and ``avoided_shortage_t[w]`` columns
    for the `most` scenarios of the long table with the largest baseline shortage (for
    the chart's grid; the CSV keeps its narrow form)."""
    import pandas as pd

    if not len(long) or not len(table):
        return table
    first = long[long.policy == table.policy.iloc[0]]
    if not len(first):
        return table
    ranked = first.sort_values("shortage_t", ascending=False, kind="stable")
    keep = [w for w in first.scenario if w in set(ranked.scenario.head(most))]
    part = long[long.scenario.isin(keep)]
    cols = {}
    for key in ("shortage_t", "avoided_shortage_t"):
        wide = part.pivot(index="policy", columns="scenario", values=key)
        for w in keep:
            cols[f"{key}[{w}]"] = wide[w].reindex(table.policy).to_numpy() \
                if w in wide.columns else float("nan")
    return pd.concat([table.reset_index(drop=True), pd.DataFrame(cols)], axis=1)


def save_project_values(table: "pd.DataFrame", policy: str, loaded: Any,
                        out: Path | None = None, force: bool = False,
                        results_root: Path = Path("results")) -> Path:
    """A project-values folder: project_values.csv/.md, summary.json, instance.yaml."""
    unique = out is None
    target = default_run_dir(results_root, loaded.name, f"projects-{policy}") \
        if out is None else Path(out)

    def fill(tmp: Path) -> None:
        write_csv(tmp / "project_values.csv", table)
        (tmp / "project_values.md").write_text(
            markdown_table(table, loaded.instance.currency) + "\n")
        _instance_copy(loaded, tmp)
        write_summary(tmp, {
            "kind": "projects", "instance": loaded.name, "instance_sha256": loaded.sha256,
            "overrides": list(loaded.overrides),
            "policy": policy, "projects": table["project"].tolist(), "version": _version()})

    return write_run_folder(target, fill, force=force, unique=unique)


def save_sweep(frontier: "pd.DataFrame", settings: dict[str, Any], loaded: Any,
               out: Path | None = None, force: bool = False,
               results_root: Path = Path("results")) -> Path:
    """A sweep folder: frontier.csv/.md/.xlsx/.png, summary.json, instance.yaml."""
    unique = out is None
    target = default_run_dir(results_root, loaded.name, f"sweep-{settings['policy']}") \
        if out is None else Path(out)

    def fill(tmp: Path) -> None:
        from . import charts

        write_csv(tmp / "frontier.csv", frontier)
        (tmp / "frontier.md").write_text(
            markdown_table(frontier, loaded.instance.currency) + "\n")
        currency = loaded.instance.currency
        write_excel(tmp / "frontier.xlsx", {"frontier": frontier}, currency,
                    [sweep_summary_sheet(frontier, settings, loaded.name, currency)])
        charts.frontier(frontier, tmp / "frontier.png", loaded.instance.currency)
        _instance_copy(loaded, tmp)
        write_summary(tmp, {
            "kind": "sweep", "instance": loaded.name, "instance_sha256": loaded.sha256,
            "overrides": list(loaded.overrides),
            **settings, "statuses": frontier.status.tolist(), "version": _version()})

    return write_run_folder(target, fill, force=force, unique=unique)


def save_robustness(result: Any, inputs: "pd.DataFrame", out: Path | None = None,
                    force: bool = False, results_root: Path = Path("results")) -> Path:
    """A robustness folder (docs/outputs.md): robustness.csv (one input at a time),
    switch_points.csv, draws.csv, conclusions.csv, ranges.csv (the inputs) and the
    ranges file as read (ranges.yaml), robustness.md/.xlsx, tornado.png, summary.json,
    instance.yaml. `result` is a model.studies.robustness.RobustnessResult (duck-typed:
    nothing below model.studies imports it)."""
    loaded = result.loaded
    unique = out is None
    target = default_run_dir(results_root, loaded.name, "robustness") if out is None \
        else Path(out)
    currency = loaded.instance.currency

    def fill(tmp: Path) -> None:
        from . import charts

        tables = {"robustness": result.one_at_a_time, "switch_points": result.switch_points,
                  "draws": result.draws, "conclusions": result.conclusions, "ranges": inputs}
        for name, table in tables.items():
            write_csv(tmp / f"{name}.csv", table)
        (tmp / "ranges.yaml").write_bytes(result.ranges.raw)
        (tmp / "robustness.md").write_text(robustness_markdown(result, currency) + "\n")
        write_excel(tmp / "robustness.xlsx", tables, currency,
                    [robustness_summary_sheet(result.conclusions, result.settings,
                                              loaded.name)])
        if len(result.one_at_a_time):
            charts.tornado(result.one_at_a_time, tmp / "tornado.png", currency,
                           result.policies)
        _instance_copy(loaded, tmp)
        settings = {k: v for k, v in result.settings.items() if k != "ranges_file"}
        held = [None if v is None or v != v else bool(v)       # v != v: NaN
                for v in (result.conclusions["holds_in_every_draw"]
                          if len(result.conclusions) else [])]
        write_summary(tmp, {
            "kind": "robustness", "instance": loaded.name, "instance_sha256": loaded.sha256,
            "overrides": list(loaded.overrides),
            "ranges": {"file": Path(result.ranges.file).name,
                       "sha256": result.ranges.sha256},
            **settings,
            "conclusions": {"holding_in_every_draw": int(sum(v is True for v in held)),
                            "not_holding_in_every_draw": int(sum(v is False for v in held))},
            "timing": result.timing, "version": _version()})

    return write_run_folder(target, fill, force=force, unique=unique)


def robustness_markdown(result: Any, currency: str) -> str:
    """The conclusions (which hold in every draw, which do not and what flips them),
    then one input at a time: what the markdown file and the console show."""
    import pandas as pd

    c = result.conclusions
    lines = [f"# How sure: {result.loaded.name}", ""]
    n = result.settings.get("draws", 0)
    if len(c) and not n:
        lines += ["No draws: the plan's conclusions, and where one input at a time flips "
                  "them:", ""]
        lines += [f"- {r.statement}" + (f": {r.flipped_by}" if r.flipped_by else "")
                  for r in c.itertuples(index=False)]
        lines.append("")
    elif len(c):
        every = c[c["holds_in_every_draw"] == True]   # noqa: E712 - a column of objects
        some = c[c["holds_in_every_draw"] == False]   # noqa: E712
        lines += [f"Holds in every one of the {n} draws:", ""]
        lines += [f"- {s}" for s in every["statement"]] or ["- (none)"]
        lines += ["", "Does not hold in every draw:", ""]
        for r in some.itertuples(index=False):
            share = "" if r.holds_share is None or pd.isna(r.holds_share) else \
                f" (holds in {r.holds_share:.0%} of the draws)"
            flips = "; ".join(x for x in (r.flipped_by, r.draws_failing_with and
                                          f"in the draws it fails with {r.draws_failing_with}")
                              if x)
            lines.append(f"- {r.statement}{share}" + (f": {flips}" if flips else ""))
        if not len(some):
            lines.append("- (none)")
        lines.append("")
    cols = [col for col in ("label", "low", "high", "expected_cost_low", "expected_cost_high",
                            "cost_swing") if col in result.one_at_a_time.columns]
    if cols:
        lines += ["## One input at a time (largest swing first)", "",
                  markdown_table(result.one_at_a_time[cols], currency)]
    return "\n".join(lines)


def markdown_table(table: "pd.DataFrame", currency: str = "", per: str = "period") -> str:
    """A GitHub-flavoured Markdown table for people (model.output.formatting): money in
    millions of `currency`, tonnes with one decimal, shares in percent, units in
    the headers, numbers right-aligned; never scientific notation. Columns for
    programs only (``binding_rows``) stay in the CSV.

    Text cells are made safe for the table and a terminal: `|` is escaped (it
    would end the cell) and control characters are shown escaped.
    """
    from .formatting import for_people, format_frame, numeric_columns

    table = table[for_people(table.columns)]
    out = format_frame(table, currency, per)
    out.columns = [c.replace("|", "\\|") for c in out.columns]
    for col in out.columns:
        out[col] = [v.replace("|", "\\|") for v in out[col]]
    align = ["right" if n else "left" for n in numeric_columns(table)]
    return out.to_markdown(index=False, disable_numparse=True, colalign=align)


def _version() -> str:
    from .. import __version__

    return __version__
