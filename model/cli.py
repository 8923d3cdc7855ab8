"""The `sourcing` command line: a thin layer over :mod:`model.api`.

Exit codes: 0 solved to optimality (or a check passed), 2 bad input or usage
(one message, nothing written), 3 infeasible or stopped at a limit (the run
folder records the status and the explanation), 1 an unexpected error.

Everything a user wrote (names, ids, paths, messages quoting them) is printed
literally: the consoles parse no markup and no emoji codes, messages are rich
``Text`` objects, and control characters are shown escaped
(:func:`model.safety.printable`).
"""

from __future__ import annotations

if __name__ == "__main__":   # python -m model.cli: signal handlers before the imports below
    from model.entry import main as _entry_main

    _entry_main()

import json
import os
import signal
import sys
from pathlib import Path
from typing import Any, Callable, Optional, Union

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from .entry import INTERRUPTED, interrupted, on_signal, signalled
from .errors import InstanceError, UsageError
from .safety import (
    MAX_REGIME_STATES,
    MAX_SAMPLE,
    check_ambiguity,
    MAX_SWEEP_POINTS,
    check_count,
    check_settings,
    check_synthetic_size,
    printable,
)

EXIT_OK, EXIT_ERROR, EXIT_INPUT, EXIT_NOT_OPTIMAL = 0, 1, 2, 3

app = typer.Typer(add_completion=False, no_args_is_help=True, rich_markup_mode=None,
                  help="Rare-earth sourcing portfolio optimiser: a stochastic LP (MIP with "
                       "all-or-nothing projects) on the scenarios' information tree.")


def _version_callback(value: bool) -> None:
    if value:
        from . import __version__
        from .solve.solve import highs_version

        typer.echo(f"sourcing {__version__} (HiGHS {highs_version()})")
        raise typer.Exit(0)


@app.callback()
def _main(version: bool = typer.Option(False, "--version", callback=_version_callback,
                                       is_eager=True,
                                       help="Print the version of sourcing and HiGHS and exit.")
          ) -> None:
    """Rare-earth sourcing portfolio optimiser (docs/cli.md)."""
# no markup, no emoji codes, no highlighting: what the user wrote is shown as written
out_console = Console(markup=False, emoji=False, highlight=False)
err_console = Console(stderr=True, markup=False, emoji=False, highlight=False)

Part = Union[str, tuple[str, str]]


def _line(*parts: Part) -> Text:
    """A message as rich Text: a plain string is user text (printed literally, control
    characters escaped); a (text, style) pair is the tool's own styled word."""
    text = Text()
    for part in parts:
        if isinstance(part, tuple):
            text.append(part[0], style=part[1])
        else:
            text.append(printable(part))
    return text


def _say(console: Console, *parts: Part) -> None:
    """Print one message line (no wrapping inserted: paths stay whole)."""
    console.print(_line(*parts), soft_wrap=True)


def _progress() -> Any:
    """A progress bar whose descriptions are plain text (no markup, no emoji codes)."""
    from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn, \
        TimeRemainingColumn

    return Progress(TextColumn("{task.description}", markup=False,
                               style="progress.description"),
                    BarColumn(), TaskProgressColumn(), TimeRemainingColumn(),
                    console=err_console, transient=True)


# set by `solve --engine mpisppy` only: then every rank runs the same command and
# fails alike, and only rank 0 prints the error; every other command (also under
# srun, where SLURM_PROCID is set for a sweep of independent processes) prints its own
_MPI_ENGINE = False


def _mpi_rank() -> int:
    """This process's rank under ``solve --engine mpisppy`` started by mpiexec or srun;
    0 for every other command, whatever the environment holds."""
    if not _MPI_ENGINE:
        return 0
    for key in ("OMPI_COMM_WORLD_RANK", "PMI_RANK", "PMIX_RANK", "SLURM_PROCID"):
        if os.environ.get(key, "").isdigit():
            return int(os.environ[key])
    return 0


def _fail(message: str, code: int) -> None:
    if _mpi_rank() == 0:   # under the MPI engine every rank fails alike: say it once
        _say(err_console, ("error:", "bold red"), f" {message}")
    raise typer.Exit(code)


def _abort_world(message: str) -> None:
    """Under the MPI engine an unexpected error may strike one rank while the others wait
    for it in MPI: print it with the rank and end every rank (MPI_Abort, exit code 1)."""
    rank = _mpi_rank()
    _say(err_console, ("error:", "bold red"), f" {'' if rank == 0 else f'rank {rank}: '}"
                                              f"{message}")
    mpi = sys.modules.get("mpi4py.MPI")
    if mpi is not None and mpi.COMM_WORLD.Get_size() > 1:
        sys.stderr.flush()
        mpi.COMM_WORLD.Abort(EXIT_ERROR)
    raise typer.Exit(EXIT_ERROR)


def _guard(fn: Callable[..., int]) -> Callable[..., int]:
    """Map the project's exceptions to one message and an exit code."""
    import functools

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> int:
        try:
            code = fn(*args, **kwargs)
        except (InstanceError, UsageError) as err:
            _fail(str(err), EXIT_INPUT)
        except KeyboardInterrupt:
            _fail(_interrupted_message(), 130)
        except typer.Exit:
            raise
        except Exception as err:  # noqa: BLE001 - the last line of defence
            if signalled():    # the interrupt's unwinding broke something (an import)
                _fail(INTERRUPTED, 130)
            if os.environ.get("SOURCING_DEBUG"):
                raise
            message = (f"unexpected {type(err).__name__}: {err} "
                       "(set SOURCING_DEBUG=1 for a traceback)")
            if _MPI_ENGINE:    # one rank alone: say where, and stop the others waiting for it
                _abort_world(message)
            _fail(message, EXIT_ERROR)
        raise typer.Exit(code or 0)

    return wrapper


def _interrupted_message() -> str:
    """What an interrupt leaves on disk: nothing, or the folders already published whole
    (an interrupt during a --force swap waits until the swap is done)."""
    export = sys.modules.get("model.output.export")
    done = [p for p in getattr(export, "PUBLISHED", []) if os.path.isdir(p)]
    if not done:
        return INTERRUPTED
    return (f"interrupted; {', '.join(map(str, done))} "
            f"{'was' if len(done) == 1 else 'were'} written completely before it")


SET_HELP = ("What-if: set any input, PATH=VALUE (repeat), e.g. "
            "--set 'scenarios.jp-ban-2026.probability=0.2' or "
            "--set 'sources[lynas-hree].supply.Dy.capacity=150' (docs/cli.md, What-if).")


FORMAT_HELP = ("csv (default) or parquet: the large per-scenario tables (deliveries, balance, "
               "cost_by_year, duals) as compressed Parquet files, for thousands of "
               "scenarios (docs/outputs.md); report and verify read both.")
AMBIGUITY_PATH = "risk.ambiguity"          # --ambiguity T is --set 'risk.ambiguity={total_variation: T}'
AMBIGUITY_HELP = ("Doubt on the probabilities: the worst expectation over every distribution "
                  "within this total-variation distance of the scenario probabilities, in "
                  "[0, 2] (sets risk.ambiguity.total_variation; docs/mathematics.md).")


def _check_format(table_format: str) -> str:
    from .output.export import TABLE_FORMATS

    if table_format not in TABLE_FORMATS:
        raise UsageError(f"--format must be one of {', '.join(TABLE_FORMATS)}, not "
                         f"'{table_format}'")
    return table_format


def _load(instance: Path, sets: Optional[list[str]], ambiguity: Optional[float] = None) -> Any:
    """Load and validate an instance, then apply the --set overrides (validated again);
    --ambiguity is the override of risk.ambiguity.total_variation, applied last."""
    from .input.instance import load_instance
    from .input.overrides import overridden, parse_assignment

    loaded = load_instance(instance)
    assignments = [parse_assignment(a) for a in sets or []]
    if ambiguity is not None:
        assignments.append((AMBIGUITY_PATH, {"total_variation": check_ambiguity(ambiguity)}))
    return overridden(loaded, assignments)


def _fmt(v: Any, unit: str = "") -> str:
    from .output.report import format_number

    return format_number(v, unit)


def sampling_rows(sampling: Any, cur: str) -> list[tuple[str, str]]:
    """The sampling statistics of a summary as (label, text) rows (printed by `solve`)."""
    from .output.report import sampling_lines

    return sampling_lines(sampling, cur)


# --------------------------------------------------------------------------- commands
@app.command()
@_guard
def validate(instance: Path = typer.Argument(..., help="Instance YAML file."),
             sets: Optional[list[str]] = typer.Option(None, "--set", metavar="PATH=VALUE", help=SET_HELP)) -> int:
    """Check an instance file (with any --set applied) and print what it contains."""
    from .formulation.policies import check_policy, policy_names
    from .input.regimes import describe

    loaded = _load(instance, sets)
    inst = loaded.instance
    _say(out_console, ("ok", "green"),
         f" {instance}: '{inst.name}', {len(inst.elements)} elements, "
         f"{len(inst.periods)} periods, {len(inst.sources)} sources, "
         f"{describe(inst)}; policies: "
         f"{', '.join(policy_names(inst))}")
    _warn(loaded.warnings)
    return EXIT_OK


def _warn(warnings: list[str]) -> None:
    for w in warnings:
        _say(err_console, ("warning:", "yellow"), f" {w}")


@app.command()
@_guard
def solve(
    instance: Optional[Path] = typer.Argument(
        None, help="Instance YAML file (default: the bundled Japan 2026 instance)."),
    policy: str = typer.Option("none", "--policy", "-p", help="Policy name from the instance."),
    out: Optional[Path] = typer.Option(
        None, "--out", "-o", help="Run folder to create (default results/<instance>-<policy>-<time>)."),
    force: bool = typer.Option(False, "--force", help="Replace --out if it exists."),
    risk_lambda: Optional[float] = typer.Option(
        None, "--lambda", help="CVaR weight in [0, 1] (overrides the instance's risk.lambda)."),
    risk_alpha: Optional[float] = typer.Option(
        None, "--alpha", help="CVaR level in [0, 1) (overrides risk.alpha)."),
    time_limit: Optional[float] = typer.Option(None, "--time-limit", help="Seconds for HiGHS."),
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Show the HiGHS log."),
    as_json: bool = typer.Option(False, "--json", help="Print summary.json to stdout."),
    metrics: bool = typer.Option(False, "--stochastic-metrics",
                                 help="Also compute WS, EEV, EVPI and VSS (several more solves)."),
    engine: str = typer.Option(
        "highs", "--engine", help="highs: the extensive form (default); mpisppy: scenario "
        "decomposition on mpi-sppy, run under mpiexec -n N (needs the distributed extra)."),
    algorithm: Optional[str] = typer.Option(
        None, "--algorithm",
        help="mpisppy: lshaped (mpi-sppy's L-shaped method), ph (mpi-sppy's progressive "
             "hedging; multi-stage on the information tree) or blocks (the project's "
             "L-shaped method per element block on bundles of scenarios: fast on large "
             "two-stage models). Default: lshaped for a two-stage instance, ph for a "
             "multi-stage one."),
    max_iterations: int = typer.Option(200, "--max-iterations",
                                       help="mpisppy: L-shaped master solves or PH iterations."),
    gap: float = typer.Option(1e-3, "--gap", help="mpisppy: relative gap between the upper and "
                              "lower bound at which the run counts as optimal."),
    bundle_size: Optional[int] = typer.Option(
        None, "--bundle-size", help="mpisppy --algorithm blocks: scenarios per bundle (one "
        "subproblem); default: 4 bundles per rank."),
    stages: Optional[int] = typer.Option(
        None, "--stages", help="mpisppy, multi-stage PH: stages of mpi-sppy's tree, 2 to "
        "periods + 1 (default): each subtree below the cut is one subproblem."),
    sets: Optional[list[str]] = typer.Option(None, "--set", metavar="PATH=VALUE", help=SET_HELP),
    table_format: str = typer.Option("csv", "--format", metavar="FORMAT", help=FORMAT_HELP),
    ambiguity: Optional[float] = typer.Option(None, "--ambiguity", metavar="THETA",
                                              help=AMBIGUITY_HELP),
    replications: Optional[int] = typer.Option(
        None, "--replications", help="Sampled instances: solve R more independent samples "
        "for a lower bound, the optimality gap (Mak, Morton and Wood) and, with the first "
        "stage fixed on --evaluate paths, an upper bound (2R + 1 more solves)."),
    evaluate: Optional[int] = typer.Option(
        None, "--evaluate", help="With --replications: paths of the sample that evaluates "
        "the plan's first stage (default: the instance's sample size)."),
    confidence: Optional[float] = typer.Option(
        None, "--confidence", help="With --replications: confidence level of the intervals "
        "(default 0.95)."),
) -> int:
    """Solve an instance under one policy and write a run folder."""
    from .input.instance import default_instance_path

    _check_format(table_format)
    if engine == "mpisppy" and table_format != "csv":
        raise UsageError("--format belongs to the default engine (the mpisppy engine writes CSV)")
    _risk_checks(risk_lambda, risk_alpha)
    if engine not in ("highs", "mpisppy"):
        raise UsageError(f"--engine must be highs or mpisppy, not '{engine}'")
    if replications is None and (evaluate is not None or confidence is not None):
        raise UsageError("--evaluate and --confidence go with --replications R")
    confidence = 0.95 if confidence is None else confidence
    if replications is not None:
        from .studies.sampling import check_sampling

        if engine != "highs":
            raise UsageError("--replications belongs to the default engine (--engine highs)")
        check_sampling(replications, evaluate, confidence)
    if engine == "mpisppy":
        if sets or ambiguity is not None:
            raise UsageError("--set and --ambiguity belong to the default engine: every MPI "
                             "rank reads the "
                             "instance file itself; write the changed instance to a file "
                             "(sourcing validate shows the result) and solve that")
        return _solve_mpisppy(instance or default_instance_path(), policy, out, force,
                              risk_lambda, risk_alpha, as_json, algorithm, max_iterations, gap,
                              time_limit, metrics, bundle_size, stages)
    _risk_checks(time_limit=time_limit)
    _check_out(out, force)
    loaded = _load(instance or default_instance_path(), sets, ambiguity)
    from .formulation.policies import check_policy, policy_names

    check_policy(policy, policy_names(loaded.instance))
    if replications is not None:
        from .studies.sampling import sampled_model

        sampled_model(loaded)        # exit 2 before any solve: the instance has no sample
    _warn(loaded.warnings)
    from .api import solve_instance  # heavy imports only once the input is good
    from .solve.solve import SolveOptions

    with err_console.status(_line(f"solving {loaded.name} under policy '{policy}'...")):
        options = SolveOptions(time_limit_s=time_limit, verbose=verbose)
        run = solve_instance(loaded, policy, risk_lambda, risk_alpha, options)
    if metrics and run.optimal:
        from .studies.metrics import stochastic_metrics

        with err_console.status(_line("stochastic metrics: wait-and-see and "
                                      "expected-value solves...")):
            run.summary.update(stochastic_metrics(loaded, policy, risk_lambda, risk_alpha,
                                                  options, rp=run.summary["objective"]))
    statistics_ok = True
    if replications is not None and run.optimal:
        run.summary["sampling"] = _sampling(loaded, policy, replications, evaluate, risk_lambda,
                                            risk_alpha, options, confidence, run)
        statistics_ok = run.summary["sampling"]["status"] == "optimal"
    code = _write_and_print(run, out, force, as_json, table_format)
    return code if statistics_ok else EXIT_NOT_OPTIMAL


def _sampling(loaded: Any, policy: str, replications: int, evaluate: Optional[int],
              risk_lambda: Optional[float], risk_alpha: Optional[float], options: Any,
              confidence: float, run: Any) -> dict[str, Any]:
    """`solve --replications`: the sampling statistics with a progress bar over the
    2R + 1 solves (model.studies.sampling)."""
    from .studies.sampling import sampling_statistics

    with _progress() as bar:
        task = bar.add_task("sampling statistics", total=2 * replications + 1)

        def step(what: str, done: int, total: int) -> None:
            bar.update(task, completed=done, description=f"sampling statistics: {what}")

        return sampling_statistics(loaded, policy, replications, evaluate, risk_lambda,
                                   risk_alpha, options, confidence, run, step)


def _solve_mpisppy(instance: Path, policy: str, out: Optional[Path], force: bool,
                   risk_lambda: Optional[float], risk_alpha: Optional[float], as_json: bool,
                   algorithm: Optional[str], max_iterations: int, gap: float,
                   time_limit: Optional[float], metrics: bool,
                   bundle_size: Optional[int] = None, stages: Optional[int] = None) -> int:
    """`solve --engine mpisppy`: every rank solves; rank 0 writes and prints."""
    from .distributed import ALGORITHMS, DecompositionSettings, require_mpisppy
    from .input.instance import load_instance
    from .safety import check_gap

    global _MPI_ENGINE
    _MPI_ENGINE = True

    if time_limit is not None or metrics:
        raise UsageError("--time-limit and --stochastic-metrics belong to the default engine; "
                         "the mpisppy engine stops on --max-iterations and --gap")
    if algorithm is not None and algorithm not in ALGORITHMS:
        raise UsageError(f"--algorithm must be one of {', '.join(ALGORITHMS)}, not '{algorithm}'")
    if max_iterations < 1:
        raise UsageError(f"--max-iterations must be at least 1, got {max_iterations}")
    gap = check_gap(gap)        # inf would call any pair of bounds optimal
    if stages is not None and (stages < 2 or algorithm not in (None, "ph")):
        raise UsageError("--stages takes a number of stages from 2, with --algorithm ph "
                         f"(got {stages} with {algorithm})")
    if bundle_size is not None and (bundle_size < 1 or algorithm != "blocks"):
        raise UsageError("--bundle-size takes a positive number of scenarios, with "
                         f"--algorithm blocks (got {bundle_size} with {algorithm})")
    _check_out(out, force)
    loaded = load_instance(instance)            # every rank: the same error on every rank
    if loaded.instance.buyers is not None:
        raise UsageError("an instance with several buyers is solved by the default engine "
                         "(leave out --engine mpisppy)")
    from .formulation.policies import check_policy, policy_names

    check_policy(policy, policy_names(loaded.instance))
    MPI = require_mpisppy(algorithm or "ph")
    rank, size = MPI.COMM_WORLD.Get_rank(), MPI.COMM_WORLD.Get_size()
    from .distributed import solve_distributed

    settings = DecompositionSettings(algorithm, max_iterations, gap, bundle_size=bundle_size,
                                     stages=stages)
    if rank == 0:
        _warn(loaded.warnings)
        with err_console.status(_line(f"solving {loaded.name} under policy '{policy}' with "
                                      f"mpi-sppy ({algorithm or 'auto'}) on {size} "
                                      "rank(s)...")):
            run = solve_distributed(loaded.path, policy, risk_lambda, risk_alpha, settings)
    else:
        solve_distributed(loaded.path, policy, risk_lambda, risk_alpha, settings)
        return EXIT_OK
    return _write_and_print(run, out, force, as_json)


def _write_and_print(run: Any, out: Optional[Path], force: bool, as_json: bool,
                     table_format: str = "csv") -> int:
    """Write a solve's run folder, show its summary, and return the exit code."""
    from .output.export import save_run

    folder = save_run(run, out, force, table_format=table_format)
    _warn([w for w in run.summary.get("warnings", []) if w not in run.loaded.warnings])
    if as_json:   # ASCII only: JSON escapes C0 controls but would pass C1 and bidi ones
        out_console.print_json(json.dumps(run.summary, default=str), ensure_ascii=True)
    else:
        _print_summary(run.summary, folder)
    return EXIT_OK if run.optimal else EXIT_NOT_OPTIMAL


def _print_summary(s: dict[str, Any], folder: Path) -> None:
    cur = s.get("currency", "")
    table = Table(title=_line(f"{s['instance']} / policy {s['policy']}"), show_header=False)

    def row(label: str, value: Union[str, Text]) -> None:
        table.add_row(_line(label), value if isinstance(value, Text) else _line(value))

    row("status", s["status"] if s["status"] == "optimal"
        else _line((s["status"], "red"), f": {s['message']}"))
    if s["status"] == "optimal":
        row("objective", _fmt(s["objective"], f" {cur}"))
        row("expected cost", _fmt(s["expected_cost"], f" {cur}"))
        if s.get("ambiguity"):
            row(f"worst-case expected cost (total variation {s['ambiguity']['total_variation']:g})",
                _fmt(s["ambiguity"]["worst_case_expected_cost"], f" {cur}"))
        row(f"CVaR {s['risk']['alpha']:g}", _fmt(s["cvar"], f" {cur}"))
        for e, t in (s.get("expected_shortage_by_element_t") or {}).items():
            row(f"expected shortage of {e}", _fmt(t, " t"))
        if s.get("expected_shortage_value") is not None:
            row("expected shortage at the penalty prices",
                _fmt(s["expected_shortage_value"], f" {cur}"))
        row("expected shortage, all elements summed", _fmt(s["expected_shortage_t"], " t"))
        row("worst-scenario shortage, all elements summed", _fmt(s["worst_shortage_t"], " t"))
        for stage, v in (s["max_single_country_share"] or {}).items():
            where = (f" ({v['country']}, {v['element']} {v['period']}, {v['scenario']})"
                     if v["country"] else "")
            row(f"max third-country share of demand, {stage}", f"{v['share']:.1%}{where}")
        for b, v in (s.get("buyers") or {}).items():     # several buyers: each member's side
            row(f"buyer {b}: expected cost, shortage", f"{_fmt(v['expected_cost'], f' {cur}')}"
                f", {_fmt(v['expected_shortage_t'], ' t')}")
    for key, label in (("ws", "wait-and-see (WS)"), ("eev", "EEV"), ("evpi", "EVPI = RP - WS"),
                       ("vss", "VSS = EEV - RP")):
        if key in s:
            row(label, _fmt(s[key], f" {cur}"))
    for label, value in sampling_rows(s.get("sampling"), cur):
        row(label, value)
    if s.get("engine") == "mpisppy":
        row("bounds", f"{_fmt(s['lower_bound'], '')} <= optimum <= "
            f"{_fmt(s['upper_bound'], f' {cur}')}")
        gap = s["gap"]
        row("gap", "n/a" if gap is None else f"{gap:.2e} ({s['iterations']} "
            f"{s['algorithm']} iterations on {s['ranks']} rank(s), "
            f"{s['algorithm_seconds']:.1f} s)")
    row("solver", f"HiGHS {s['solver_version']}, {s['solve_seconds']:.2f} s")
    row("run folder", str(folder))
    out_console.print(table)


def _risk_checks(risk_lambda: Optional[float] = None, risk_alpha: Optional[float] = None,
                 time_limit: Optional[float] = None) -> None:
    """The API's own range checks (model.safety.check_settings), named as options."""
    check_settings(risk_lambda, risk_alpha, time_limit, flags=True)


def _check_out(out: Optional[Path], force: bool, default_root: Path = Path("results")) -> None:
    """Before any work: `out` may be written (and replaced only if --force may replace it);
    without --out, the default results folder may be created."""
    from .input.folders import check_output_parent
    from .output.export import check_target

    if out is not None:
        check_target(out, force)
    else:
        check_output_parent(default_root / "run")


@app.command()
@_guard
def compare(
    instance: Path = typer.Argument(..., help="Instance YAML file."),
    policies: list[str] = typer.Option(..., "--policy", "-p", metavar="NAME",
                                       help="Policy to compare (repeat; the first is the baseline)."),
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="Comparison folder to create."),
    force: bool = typer.Option(False, "--force", help="Replace --out if it exists."),
    risk_lambda: Optional[float] = typer.Option(None, "--lambda", help="CVaR weight in [0, 1] (overrides the instance's risk.lambda)."),
    risk_alpha: Optional[float] = typer.Option(None, "--alpha", help="CVaR level in [0, 1) (overrides risk.alpha)."),
    metrics: bool = typer.Option(False, "--stochastic-metrics", help="Add WS, EEV, EVPI, VSS."),
    time_limit: Optional[float] = typer.Option(None, "--time-limit", help="Seconds per solve."),
    sets: Optional[list[str]] = typer.Option(None, "--set", metavar="PATH=VALUE", help=SET_HELP),
    table_format: str = typer.Option("csv", "--format", metavar="FORMAT", help=FORMAT_HELP),
    run_folders: bool = typer.Option(True, "--runs/--no-runs",
                                     help="Write each policy's run folder under runs/ "
                                     "(default), or the comparison alone."),
    ambiguity: Optional[float] = typer.Option(None, "--ambiguity", metavar="THETA",
                                              help=AMBIGUITY_HELP),
) -> int:
    """Solve under several policies: cost of resilience and the shortage it avoids."""
    from .formulation.policies import check_policy, policy_names

    _check_format(table_format)
    _risk_checks(risk_lambda, risk_alpha, time_limit)
    _check_out(out, force)
    loaded = _load(instance, sets, ambiguity)
    known = policy_names(loaded.instance)
    for p in policies:
        check_policy(p, known)
    from .studies.compare import compare_policies
    from .output.export import markdown_table, save_comparison
    from .solve.solve import SolveOptions

    with _progress() as bar:
        task = bar.add_task("comparing", total=len(dict.fromkeys(policies)))

        def step(what: str, done: int) -> None:
            bar.update(task, description=f"solving {what}", completed=done)

        table, runs = compare_policies(loaded, policies, risk_lambda, risk_alpha,
                                       SolveOptions(time_limit_s=time_limit), metrics,
                                       progress=step)
    folder = save_comparison(table, runs, loaded, out, force, table_format=table_format,
                             run_folders=run_folders)
    cols = [c for c in ("policy", "status", "expected_cost", "cvar", "expected_shortage_t",
                        "worst_shortage_t", "max_share_of_demand_refining",
                        "china_share_of_deliveries_refining",
                        "delta_expected_cost_per_period", "avoided_expected_shortage_t")
            if c in table.columns]
    from .output.formatting import period_word

    typer.echo(markdown_table(table[cols], loaded.instance.currency,
                              period_word(loaded.instance.period_days)))
    _say(out_console, f"comparison folder: {folder}")
    return EXIT_OK if (table.status == "optimal").all() else EXIT_NOT_OPTIMAL


@app.command()
@_guard
def coalition(
    instance: Path = typer.Argument(..., help="Instance YAML file with buyers:."),
    policy: str = typer.Option("none", "--policy", "-p", help="Policy name from the instance."),
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="Coalition folder to create."),
    force: bool = typer.Option(False, "--force", help="Replace --out if it exists."),
    risk_lambda: Optional[float] = typer.Option(None, "--lambda", help="CVaR weight in [0, 1] (overrides the instance's risk.lambda)."),
    risk_alpha: Optional[float] = typer.Option(None, "--alpha", help="CVaR level in [0, 1) (overrides risk.alpha)."),
    time_limit: Optional[float] = typer.Option(None, "--time-limit", help="Seconds per solve."),
    sets: Optional[list[str]] = typer.Option(None, "--set", metavar="PATH=VALUE", help=SET_HELP),
) -> int:
    """Several buyers: solve every coalition, value cooperation and split its cost
    (Shapley, nucleolus, dual-based, proportional to demand), each tested against the core."""
    from .formulation.policies import check_policy, policy_names

    _risk_checks(risk_lambda, risk_alpha, time_limit)
    _check_out(out, force)
    loaded = _load(instance, sets)
    check_policy(policy, policy_names(loaded.instance))
    _warn(loaded.warnings)
    from .solve.solve import SolveOptions
    from .studies.coalition import (MAX_COALITION_BUYERS, RULE_WORDS, allocations_table,
                                    coalition_study, save_coalition)

    if loaded.instance.buyers is None or len(loaded.instance.buyers) > MAX_COALITION_BUYERS:
        coalition_study(loaded, policy)          # raises the UsageError that says why
    n = len(loaded.instance.buyers)
    with _progress() as bar:
        task = bar.add_task("coalitions", total=2 ** n - 1)

        def step(what: str, done: int) -> None:
            bar.update(task, description=f"solving coalition {what}", completed=done)

        study = coalition_study(loaded, policy, risk_lambda, risk_alpha,
                                SolveOptions(time_limit_s=time_limit), progress=step)
    folder = save_coalition(study, out, force)
    from .output.report import render_report

    render_report(folder)
    cur = loaded.instance.currency
    if study.optimal:
        T = len(loaded.instance.periods)
        _say(out_console, f"value of cooperation: {_fmt(study.value_of_cooperation, f' {cur}')}"
             f" ({_fmt(study.value_of_cooperation / T, f' {cur}')} a period over {T})")
        table = Table(title=_line(f"who pays the grand coalition's cost (m {cur}, "
                                  "expected, discounted)"))
        for col in ("rule", "buyer", "allocated", "alone", "saving", "in the core"):
            table.add_column(col, justify="left" if col in ("rule", "buyer") else "right")
        for r in allocations_table(study).to_dict("records"):
            if not r["buyer"]:
                table.add_row(_line(RULE_WORDS[r["rule"]]), "", "", "", "",
                              _line(f"not offered: {r['note']}"))
                continue
            table.add_row(_line(RULE_WORDS[r["rule"]]), _line(r["buyer"]),
                          *(f"{r[k] / 1e6:,.1f}" for k in ("allocated_cost",
                                                           "stand_alone_cost", "saving")),
                          "yes" if r["in_core"] else "no")
        out_console.print(table)
    else:
        _say(err_console, ("not optimal:", "red"), " some coalition was not solved to "
             "optimality; no allocation is presented (see coalition.csv)")
    _say(out_console, f"coalition folder: {folder}")
    return EXIT_OK if study.optimal else EXIT_NOT_OPTIMAL


@app.command()
@_guard
def sweep(
    instance: Path = typer.Argument(..., help="Instance YAML file."),
    cap: str = typer.Option("1.0:0.3:0.05", "--cap",
                            help="Cap values: start:stop:step (inclusive) or a,b,c."),
    param: Optional[str] = typer.Option(
        None, "--param", help="Sweep any input instead of the cap: a path such as "
        "projects[caremag-phase2].cost or scenarios.jp-ban-2026.probability "
        "(docs/cli.md, What-if)."),
    values: Optional[str] = typer.Option(
        None, "--values", help="With --param: the values, start:stop:step or a,b,c."),
    policy: str = typer.Option("none", "--policy", "-p", help="Policy the cap is added to."),
    stage: str = typer.Option("both", "--stage", help="mining, refining or both."),
    per: str = typer.Option("element", "--per", help="element or group."),
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="Sweep folder to create."),
    force: bool = typer.Option(False, "--force", help="Replace --out if it exists."),
    risk_lambda: Optional[float] = typer.Option(None, "--lambda", help="CVaR weight in [0, 1] (overrides the instance's risk.lambda)."),
    risk_alpha: Optional[float] = typer.Option(None, "--alpha", help="CVaR level in [0, 1) (overrides risk.alpha)."),
    time_limit: Optional[float] = typer.Option(None, "--time-limit", help="Seconds per point."),
    sets: Optional[list[str]] = typer.Option(None, "--set", metavar="PATH=VALUE", help=SET_HELP),
    ambiguity: Optional[float] = typer.Option(None, "--ambiguity", metavar="THETA",
                                              help=AMBIGUITY_HELP),
) -> int:
    """Frontier of cost and shortage against a single-country cap (warm-started re-solves),
    or against any input with --param PATH --values ..."""
    from .studies.compare import stages_of
    from .studies.sweep import parse_cap_range
    from .formulation.policies import check_policy, policy_names

    _risk_checks(risk_lambda, risk_alpha, time_limit)
    if (param is None) != (values is None):
        raise UsageError("--param and --values go together")
    if param is not None:
        return _sweep_param(instance, param, values or "", policy, out, force, risk_lambda,
                            risk_alpha, time_limit, sets, ambiguity)
    caps = parse_cap_range(cap)
    stages_of(stage)
    if per not in ("element", "group"):
        raise UsageError(f"--per must be element or group; got '{per}'")
    _check_out(out, force)
    loaded = _load(instance, sets, ambiguity)
    check_policy(policy, policy_names(loaded.instance))
    from .studies.sweep import sweep_cap
    from .output.export import markdown_table, save_sweep
    from .solve.solve import SolveOptions

    with _progress() as bar:
        task = bar.add_task("sweeping the cap", total=len(caps))
        frontier = sweep_cap(loaded, caps, policy, stage, per, risk_lambda, risk_alpha,
                             SolveOptions(time_limit_s=time_limit),
                             progress=lambda c: bar.advance(task))
    folder = save_sweep(frontier, {"policy": policy, "stage": stage, "per": per,
                                   "caps": caps}, loaded, out, force)
    typer.echo(markdown_table(frontier[["cap", "status", "expected_cost",
                                        "expected_shortage_t", "worst_shortage_t"] +
                                       [c for c in frontier.columns if c.startswith("size[")]],
                              loaded.instance.currency))
    _say(out_console, f"sweep folder: {folder}")
    return EXIT_OK if (frontier.status == "optimal").all() else EXIT_NOT_OPTIMAL


def _sweep_param(instance: Path, param: str, values_text: str, policy: str,
                 out: Optional[Path], force: bool, risk_lambda: Optional[float],
                 risk_alpha: Optional[float], time_limit: Optional[float],
                 sets: Optional[list[str]], ambiguity: Optional[float] = None) -> int:
    """`sweep --param PATH --values ...`: one solve per value of any input."""
    from .studies.sweep import parse_values, sweep_param
    from .output.export import markdown_table, save_sweep
    from .input.overrides import overridden, parse_path
    from .solve.solve import SolveOptions

    parse_path(param)
    vals = parse_values(values_text)
    _check_out(out, force)
    loaded = _load(instance, sets, ambiguity)
    overridden(loaded, [(param, vals[0])])          # a bad path or value: before any solve
    with _progress() as bar:
        task = bar.add_task(f"sweeping {param}", total=len(vals))
        frontier = sweep_param(loaded, param, vals, policy, risk_lambda, risk_alpha,
                               SolveOptions(time_limit_s=time_limit),
                               progress=lambda v: bar.advance(task))
    folder = save_sweep(frontier, {"policy": policy, "param": param, "values": vals},
                        loaded, out, force)
    cols = ["value", "status", "expected_cost", "expected_shortage_t", "worst_shortage_t"] + \
        [c for c in frontier.columns if c.startswith("size[")]
    typer.echo(markdown_table(frontier[cols], loaded.instance.currency))
    _say(out_console, f"sweep folder: {folder}")
    return EXIT_OK if (frontier.status == "optimal").all() else EXIT_NOT_OPTIMAL


@app.command()
@_guard
def robustness(
    instance: Path = typer.Argument(..., help="Instance YAML file."),
    ranges: Path = typer.Option(..., "--ranges", help="Ranges file: the inputs to vary, each "
                                "by its --set path (or a group of paths moved by one "
                                "factor) with low, high and a distribution "
                                "(docs/robustness.md)."),
    policies: Optional[list[str]] = typer.Option(
        None, "--policy", "-p", metavar="NAME",
        help="Policy to compare (repeat; the first is the plan whose decisions are "
             "followed; default none)."),
    draws: int = typer.Option(200, "--draws", help="Joint draws of every input (0: none)."),
    seed: int = typer.Option(0, "--seed", help="Seed of the draws (numpy PCG64)."),
    grid: int = typer.Option(8, "--grid", help="Switch points: steps of the grid scanned "
                             "along each range before bisecting each change."),
    no_switch_points: bool = typer.Option(False, "--no-switch-points",
                                          help="Skip the switch points (one input at a time "
                                          "and the draws only)."),
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="Robustness folder to create."),
    force: bool = typer.Option(False, "--force", help="Replace --out if it exists."),
    risk_lambda: Optional[float] = typer.Option(None, "--lambda", help="CVaR weight in [0, 1] (overrides the instance's risk.lambda)."),
    risk_alpha: Optional[float] = typer.Option(None, "--alpha", help="CVaR level in [0, 1) (overrides risk.alpha)."),
    time_limit: Optional[float] = typer.Option(None, "--time-limit", help="Seconds per solve."),
    cold: bool = typer.Option(False, "--cold", help="Solve every variant cold (a fresh model, "
                              "no warm start): for checking and benchmarking."),
    sets: Optional[list[str]] = typer.Option(None, "--set", metavar="PATH=VALUE", help=SET_HELP),
    ambiguity: Optional[float] = typer.Option(None, "--ambiguity", metavar="THETA",
                                              help=AMBIGUITY_HELP),
) -> int:
    """How sure are we: each input of a ranges file one at a time (a tornado), the switch
    points of the plan's decisions, and joint seeded draws (warm-started re-solves)."""
    from .formulation.policies import check_policy, policy_names
    from .studies.robustness import check_study

    _risk_checks(risk_lambda, risk_alpha, time_limit)
    names = list(dict.fromkeys(policies or ["none"]))
    from .studies.robustness import DEFAULT_RESOLUTION

    check_study(names, draws, grid, DEFAULT_RESOLUTION, seed)
    _check_out(out, force)
    loaded = _load(instance, sets, ambiguity)
    known = policy_names(loaded.instance)
    for p in names:
        check_policy(p, known)
    from .input.ranges import read_ranges

    read = read_ranges(ranges, loaded)
    _warn(loaded.warnings)
    from .output.export import save_robustness
    from .output.report import render_report
    from .solve.solve import SolveOptions
    from .studies.robustness import inputs_table, robustness as study

    with _progress() as bar:
        task = bar.add_task("robustness", total=None)

        def step(what: str, done: int, total: Optional[int]) -> None:
            bar.update(task, description=what, completed=done, total=total)

        result = study(loaded, read, names, draws, seed, grid,
                       switch_points=not no_switch_points, risk_lambda=risk_lambda,
                       risk_alpha=risk_alpha, options=SolveOptions(time_limit_s=time_limit),
                       warm=not cold, progress=step)
    folder = save_robustness(result, inputs_table(read), out, force)
    render_report(folder)
    c = result.conclusions
    if len(c) and draws:
        holds = c[c["holds_in_every_draw"] == True]    # noqa: E712 - a column of objects
        fails = c[c["holds_in_every_draw"] == False]   # noqa: E712
        _say(out_console, ("holds in every draw:", "green"), f" {len(holds)} of {len(c)} "
             "conclusions of the plan")
        for r in fails.itertuples(index=False):
            flips = str(r.flipped_by or "")
            flips = flips if len(flips) <= 150 else flips[:149] + "\u2026"
            _say(out_console, ("not in every draw:", "yellow"),
                 f" {r.statement} ({r.holds_share:.0%} of the draws)"
                 + (f"; {flips}" if flips else ""))
    t = result.timing
    def count(n: int, what: str) -> str:
        return f"{n:,} {what}" + ("" if n == 1 else "s")

    _say(out_console, f"{count(t['variants'], 'variant')} solved under "
         f"{len(names)} polic{'y' if len(names) == 1 else 'ies'} in {t['seconds']:.1f} s "
         f"(HiGHS, per element block: {count(t['warm_solves'], 'warm re-solve')}, "
         f"{count(t['cold_solves'], 'cold solve')}, "
         f"branch and bound for {t['branch_and_bound_solves']:,})")
    _say(out_console, f"robustness folder: {folder}")
    return EXIT_OK if result.all_optimal else EXIT_NOT_OPTIMAL


@app.command()
@_guard
def projects(
    instance: Path = typer.Argument(..., help="Instance YAML file with `projects`."),
    policy: str = typer.Option("none", "--policy", "-p", help="Policy to value them under."),
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="Folder to create."),
    force: bool = typer.Option(False, "--force", help="Replace --out if it exists."),
    risk_lambda: Optional[float] = typer.Option(None, "--lambda", help="CVaR weight in [0, 1]."),
    risk_alpha: Optional[float] = typer.Option(None, "--alpha", help="CVaR level in [0, 1)."),
    time_limit: Optional[float] = typer.Option(None, "--time-limit", help="Seconds per solve."),
    sets: Optional[list[str]] = typer.Option(None, "--set", metavar="PATH=VALUE", help=SET_HELP),
) -> int:
    """What each investment project is worth: allowed, excluded and forced to full size."""
    from .studies.projects import project_values
    from .output.export import markdown_table, save_project_values
    from .formulation.policies import check_policy, policy_names
    from .solve.solve import SolveOptions

    _risk_checks(risk_lambda, risk_alpha, time_limit)
    _check_out(out, force)
    loaded = _load(instance, sets)
    check_policy(policy, policy_names(loaded.instance))
    with _progress() as bar:
        task = bar.add_task("valuing projects", total=len(loaded.instance.projects))
        table = project_values(loaded, policy, risk_lambda, risk_alpha,
                               SolveOptions(time_limit_s=time_limit),
                               progress=lambda pid: bar.advance(task))
    folder = save_project_values(table, policy, loaded, out, force)
    typer.echo(markdown_table(table, loaded.instance.currency))
    _say(out_console, f"projects folder: {folder}")
    return EXIT_OK


@app.command()
@_guard
def bench(
    scenarios: int = typer.Option(25, "--scenarios", "-w", min=1, help="Scenarios W."),
    sources: int = typer.Option(20, "--sources", min=1, help="Sources S."),
    elements: int = typer.Option(17, "--elements", min=1, help="Elements E."),
    periods: int = typer.Option(10, "--periods", min=1, help="Periods T."),
    seed: int = typer.Option(0, "--seed", help="Random seed of the generator."),
    sweep_points: int = typer.Option(0, "--sweep", min=0,
                                     help="Also time an N-point cap sweep, warm against cold."),
    compare_runs: bool = typer.Option(False, "--compare",
                                      help="Also time compare over the instance's 4 policies, "
                                      "one switched model against separate solves."),
    no_reference: bool = typer.Option(False, "--no-reference",
                                      help="Skip the monolithic highspy reference."),
    policy: str = typer.Option("none", "--policy", "-p", metavar="NAME",
                               help="Policy of the timed solve (the generator's: none, crma65, "
                               "crma65-group, plan50); the reference solves the same."),
    risk_lambda: Optional[float] = typer.Option(None, "--lambda",
                                                help="CVaR weight in [0, 1] of the timed solve "
                                                "and the reference."),
    budget_slack: Optional[float] = typer.Option(
        None, "--budget", metavar="SLACK",
        help="Add a budget of (1 + SLACK) x the least expected cost to the policy."),
    information: str = typer.Option("history", "--information", metavar="KIND",
                                    help="history (scenarios share early periods: a tree) "
                                    "or clairvoyant."),
    regimes: int = typer.Option(0, "--regimes", min=0, max=MAX_REGIME_STATES,
                                help="Scenarios from a chain of this many regimes (one "
                                "normal), --scenarios paths sampled; 0: the generator's "
                                "list of disruptions."),
    projects: int = typer.Option(0, "--projects", min=0, max=1000,
                                 help="Investment projects, each adding to 2-4 elements of "
                                 "one source (they tie those elements' blocks)."),
    integer_projects: bool = typer.Option(False, "--integer-projects",
                                          help="Make the --projects all-or-nothing."),
    reference_limit: Optional[float] = typer.Option(
        None, "--reference-limit", metavar="S",
        help="Stop the reference at S seconds (a MIP's branch and bound may not finish)."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object."),
) -> int:
    """Benchmark each phase on the synthetic generator against a monolithic highspy solve."""
    from .bench import run_bench
    from .formulation.policies import check_policy

    check_synthetic_size(sources, elements, periods, scenarios, flags=True)
    check_count("--sweep", sweep_points, MAX_SWEEP_POINTS, least=0)
    check_settings(risk_lambda)
    check_policy(policy, ("none", "crma65", "crma65-group", "plan50"), "the generator's")
    if information not in ("history", "clairvoyant"):
        raise UsageError(f"--information must be history or clairvoyant, got '{information}'")
    if budget_slack is not None and not 0 <= budget_slack <= 10:
        raise UsageError(f"--budget must be in [0, 10], got {budget_slack}")
    check_settings(time_limit=reference_limit)
    with err_console.status(_line(f"benchmark: S={sources} E={elements} T={periods} "
                                  f"W={scenarios}...")):
        res = run_bench(scenarios, sources, elements, periods, seed, not no_reference,
                        sweep_points, compare_runs, policy, risk_lambda, budget_slack,
                        information, regimes, projects, integer_projects,
                        reference_limit)
    if as_json:
        typer.echo(json.dumps(res))
        return EXIT_OK
    table = Table(title=_line(f"bench S={sources} E={elements} T={periods} W={scenarios} "
                              f"({res['n_variables']:,} variables, {res['blocks']} blocks)"),
                  show_header=False)
    for key, value in res.items():
        if key.endswith("_s") or key.endswith("_mib") or key in (
                "objective", "reference_objective", "speedup", "objective_rel_diff",
                "outside_highs_share", "rss_ratio", "sweep_speedup", "sweep_max_rel_diff",
                "compare_speedup", "compare_max_rel_diff", "compare_reference_speedup",
                "compare_reference_max_rel_diff"):
            table.add_row(key, _fmt(float(value)) if value is not None else "-")
    out_console.print(table)
    return EXIT_OK


REFERENCE_CAPS = "1.0:0.3:0.05"
REFERENCE_CONTRACT = "lynas-jare-ndpr"      # the signed floor the reference prices
REFERENCE_UNSIGNED_POLICIES = ["none", "crma65", "cap-china-50", "stockpile-60d"]
REFERENCE_PROJECT_SWEEP = ("projects[gbd-conversion].cost", "0:1.5e9:1.5e8")
# what the stock already held is worth: the instance's opening 60 days against its
# 18 private days alone (the 42 national days removed), with and without building stock
REFERENCE_STOCK_POLICIES = ["none", "no-stock"]
# the briefing's policies when the scenario probabilities are doubted (issue 25): the
# worst expectation within total-variation distance 0.2
REFERENCE_AMBIGUITY = 0.2
REFERENCE_AMBIGUITY_POLICIES = ["none", "no-stock", "crma65", "crma65-2028", "cap-china-50",
                                "cap-china-50-2028", "stockpile-60d"]
REFERENCE_PRIVATE_DAYS, REFERENCE_OPENING_DAYS = 18, 60
# the bundled instance of several buyers (issue 26): its coalition game under `none`
REFERENCE_COALITION_INSTANCE, REFERENCE_COALITION_POLICY = "g7_2026.yaml", "none"


@app.command()
@_guard
def reference(
    out: Path = typer.Option(Path("results/reference"), "--out", "-o",
                             help="Folder for the reference outputs."),
    force: bool = typer.Option(False, "--force", help="Replace existing reference outputs."),
) -> int:
    """Regenerate the reference outputs of the bundled instance.

    A comparison of all its policies (out/compare), a cap sweep 1.0 -> 0.3 on
    policy none (out/sweep), the Lynas-JARE NdPr contract without its signed
    terms under the main policies (out/lynas-unsigned), what each project is worth
    (out/projects), a sweep of GBD's cost (out/project-cost) and the instance
    without the national stock (out/stock: its 18 private days of opening stock
    only), the briefing's policies under doubt on the probabilities (out/ambiguity:
    total variation 0.2), each with its report.html; and the coalition game of the bundled
    instance of several buyers, instances/g7_2026.yaml, under policy none
    (out/g7-coalition).
    """
    from .studies.compare import compare_policies
    from .studies.projects import project_values
    from .studies.sweep import parse_cap_range, parse_values, sweep_cap, sweep_param
    from .input.builders import without_signed_terms
    from .output.export import check_target, save_comparison, save_project_values, save_sweep
    from .input.instance import default_instance_path, instance_from_dict, load_instance
    from .formulation.policies import check_policy, policy_names
    from .output.report import render_report

    for sub in ("compare", "sweep", "lynas-unsigned", "projects", "project-cost", "stock",
                "ambiguity", "g7-coalition"):
        check_target(out / sub, force)
    loaded = load_instance(default_instance_path())
    with err_console.status(_line("reference: comparing every policy...")):
        table, runs = compare_policies(loaded, policy_names(loaded.instance), with_metrics=True)
    render_report(save_comparison(table, runs, loaded, out / "compare", force))
    caps = parse_cap_range(REFERENCE_CAPS)
    with err_console.status(_line("reference: sweeping the cap...")):
        frontier = sweep_cap(loaded, caps)
    render_report(save_sweep(frontier, {"policy": "none", "stage": "both", "per": "element",
                                        "caps": caps}, loaded, out / "sweep", force))
    unsigned = instance_from_dict(without_signed_terms(loaded.instance, REFERENCE_CONTRACT))
    with err_console.status(_line(f"reference: {REFERENCE_CONTRACT} without its signed terms...")):
        free, free_runs = compare_policies(unsigned, REFERENCE_UNSIGNED_POLICIES)
    render_report(save_comparison(free, free_runs, unsigned, out / "lynas-unsigned", force))
    with err_console.status(_line("reference: what each project is worth...")):
        values = project_values(loaded, "none")
    save_project_values(values, "none", loaded, out / "projects", force)
    path, grid = REFERENCE_PROJECT_SWEEP
    with err_console.status(_line(f"reference: sweeping {path}...")):
        swept = sweep_param(loaded, path, parse_values(grid))
    render_report(save_sweep(swept, {"policy": "none", "param": path,
                                     "values": parse_values(grid)}, loaded,
                             out / "project-cost", force))
    private = _private_stock_only(loaded)
    with err_console.status(_line("reference: without the national stock...")):
        held, held_runs = compare_policies(private, REFERENCE_STOCK_POLICIES)
    render_report(save_comparison(held, held_runs, private, out / "stock", force))
    from .input.overrides import overridden

    doubt = overridden(loaded, [(AMBIGUITY_PATH, {"total_variation": REFERENCE_AMBIGUITY})])
    with err_console.status(_line("reference: doubting the probabilities...")):
        worst, worst_runs = compare_policies(doubt, REFERENCE_AMBIGUITY_POLICIES)
    render_report(save_comparison(worst, worst_runs, doubt, out / "ambiguity", force))
    from .studies.coalition import coalition_study, save_coalition

    g7 = load_instance(default_instance_path().with_name(REFERENCE_COALITION_INSTANCE))
    with err_console.status(_line("reference: every coalition of the G7 buyers...")):
        game = coalition_study(g7, REFERENCE_COALITION_POLICY)
    render_report(save_coalition(game, out / "g7-coalition", force))
    _say(out_console, ("wrote", "green"), f" {out}/compare, sweep, lynas-unsigned, projects, "
         "project-cost, stock, ambiguity and g7-coalition")
    return EXIT_OK if (table.status == "optimal").all() and game.optimal \
        else EXIT_NOT_OPTIMAL


def _private_stock_only(loaded: Any) -> Any:
    """The bundled instance with only the private days of its opening stock (the
    national 42 of its 60 days removed), as a what-if (`--set stock.initial.<e>`)."""
    from .input.overrides import overridden

    scale = REFERENCE_PRIVATE_DAYS / REFERENCE_OPENING_DAYS
    initial = loaded.instance.stock.initial
    return overridden(loaded, [(f"stock.initial.{e}", round(float(v) * scale, 1))
                               for e, v in initial.items()])


@app.command()
@_guard
def verify(run_dir: Path = typer.Argument(..., help="A run folder written by solve.")) -> int:
    """Independently recheck every constraint and reported number of a run folder.

    A comparison folder is checked run by run.
    """
    from .analysis.verify import runs_to_verify, verify_run

    failed = False
    folders = runs_to_verify(run_dir)
    if not folders:
        _say(out_console, ("nothing to check", "yellow"), f" {run_dir}: a comparison written "
             "without its run folders (compare --no-runs) holds no allocation")
    for folder, status, problems in folders:
        if status is not None:   # None: the comparison folder's own instance copy
            problems = problems + verify_run(folder)
        for p in problems:
            _say(err_console, ("violated:", "red"), f" {folder}: {p}")
        failed |= bool(problems)
        if problems:
            continue
        if status == "optimal":
            _say(out_console, ("ok", "green"),
                 f" {folder}: every constraint and reported number checks out")
        else:
            _say(out_console, ("not optimal", "yellow"), f" {folder}: status {status}; the "
                 "folder holds no allocation, nothing to check")
    return EXIT_ERROR if failed else EXIT_OK


@app.command()
@_guard
def report(
    folder: Path = typer.Argument(..., help="A run, comparison or sweep folder."),
    out: Optional[Path] = typer.Option(None, "--out", "-o",
                                       help="HTML file to write (default FOLDER/report.html, "
                                       "which is regenerated in place)."),
    force: bool = typer.Option(False, "--force", help="Replace --out if it exists."),
) -> int:
    """Render a self-contained HTML report (tables, charts, assumptions)."""
    from .output.report import render_report

    path = render_report(folder, out, force)
    _say(out_console, ("wrote", "green"), f" {path}")
    return EXIT_OK


@app.command()
@_guard
def schema() -> int:
    """Print the instance format as JSON Schema (for editors)."""
    from .input.schema import json_schema

    sys.stdout.write(json.dumps(json_schema(), indent=2) + "\n")
    return EXIT_OK


@app.command("export-instance")
@_guard
def export_instance(
    instance: Path = typer.Argument(..., help="Instance YAML file."),
    out: Path = typer.Option(..., "--out", "-o", help="Workbook to write (.xlsx)."),
    force: bool = typer.Option(False, "--force", help="Replace --out if it exists."),
) -> int:
    """Write an instance as an Excel workbook to edit; `build from-xlsx` reads it back."""
    from .input.folders import check_file_target
    from .input.instance import load_instance
    from .input.workbook import write_instance_workbook

    if out.suffix.lower() != ".xlsx":
        raise UsageError(f"--out must name an .xlsx file, not '{out}'")
    check_file_target(out, force)
    loaded = load_instance(instance)
    _warn(loaded.warnings)
    write_instance_workbook(loaded.instance, out, force=force)
    _say(out_console, ("wrote", "green"), f" {out}: instance '{loaded.name}' as a workbook "
         "(edit it, then: sourcing build from-xlsx)")
    return EXIT_OK


build_app = typer.Typer(no_args_is_help=True, rich_markup_mode=None,
                        help="Generate instances: scenario sets, synthetic cases, "
                             "instances from workbooks.")
app.add_typer(build_app, name="build")


@build_app.command("scenarios")
@_guard
def build_scenarios(
    base: Path = typer.Argument(..., help="Instance whose sources, demand and policies are kept."),
    events: Optional[Path] = typer.Option(
        None, "--events", help="YAML file with `events:` (id, probability, disruptions, "
        "price_shocks, demand_shocks): replace the scenarios by their combinations."),
    expand: bool = typer.Option(
        False, "--expand", help="Write the scenarios that the instance's regimes and events "
        "generate as a plain list (to read, or to edit in Excel); not with --events."),
    out: Path = typer.Option(..., "--out", "-o", help="Instance file to write."),
    sample: Optional[int] = typer.Option(
        None, "--sample", help="Draw this many Monte Carlo scenarios instead of all 2^k."),
    seed: int = typer.Option(0, "--seed", help="Random seed for --sample."),
    base_scenario: Optional[str] = typer.Option(
        None, "--base-scenario", metavar="ID",
        help="The base instance's scenario whose rules (its baseline, such as the normal "
             "licensing regime) hold in every generated scenario; default: its first "
             "scenario; 'none' for no baseline rules."),
    force: bool = typer.Option(False, "--force", help="Replace --out if it exists."),
) -> int:
    """Replace an instance's scenarios by event combinations (2^k) or a Monte Carlo sample,
    each on top of the base instance's baseline scenario rules (--events); or write the
    scenarios its regimes and events generate as a plain list (--expand)."""
    from .input.builders import base_rules, check_instance_text, combine_events, expanded, \
        instance_to_yaml, read_events, sample_scenarios, write_text_atomic
    from .input.instance import load_instance
    from .input.regimes import describe, scenario_list
    from .input.folders import check_file_target

    if (events is None) == (not expand):
        raise UsageError("give either --events FILE (replace the scenarios by event "
                         "combinations) or --expand (write the scenarios of the instance's "
                         "regimes and events as a list)" if events is None else
                         "--events and --expand are alternatives: give one of them")
    if expand:
        given = [flag for flag, value in (("--sample", sample is not None),
                                          ("--seed", seed != 0),
                                          ("--base-scenario", base_scenario is not None))
                 if value]
        if given:
            raise UsageError(f"{given[0]} goes with --events, not --expand (a sample of "
                             "regime paths is the instance's `scenarios.sample`)")
    if sample is not None:
        check_count("--sample", sample, MAX_SAMPLE)
    check_file_target(out, force)
    loaded = load_instance(base)
    if expand:
        built = expanded(loaded.instance)
        how = describe(loaded.instance)
        write_text_atomic(out, check_instance_text(instance_to_yaml(
            built.instance, f"Generated by `sourcing build scenarios --expand` from "
            f"{printable(base.name)}: {how}, as a list.")), force=force)
        _say(out_console, ("wrote", "green"), f" {out}: {how}, as a list")
        return EXIT_OK
    evs = read_events(events, loaded.instance)
    scenarios = scenario_list(loaded.instance)
    chosen = (scenarios[0].id if scenarios else None) if base_scenario is None else \
        (None if base_scenario == "none" else base_scenario)
    baseline = base_rules(loaded.instance, chosen)
    built = combine_events(loaded.instance, evs, baseline) if sample is None else \
        sample_scenarios(loaded.instance, evs, sample, seed, baseline)
    how = (f"{sample} sampled (seed {seed})" if sample is not None else
           f"all {2 ** len(evs)} combinations of {len(evs)} events") + \
        (f", each on top of scenario {chosen}'s rules" if chosen else "")
    write_text_atomic(out, check_instance_text(instance_to_yaml(
        built.instance, f"Generated by `sourcing build scenarios` from {printable(base.name)}: "
        f"{how}.")),
        force=force)
    _say(out_console, ("wrote", "green"),
         f" {out}: {len(built.instance.scenarios or [])} scenarios ({how})")
    return EXIT_OK


@build_app.command("synthetic")
@_guard
def build_synthetic(
    out: Path = typer.Option(..., "--out", "-o", help="Instance file to write."),
    sources: int = typer.Option(20, "--sources", min=1, help="Sources S."),
    elements: int = typer.Option(17, "--elements", min=1, help="Elements E."),
    periods: int = typer.Option(10, "--periods", min=1, help="Periods T."),
    scenarios: int = typer.Option(25, "--scenarios", min=1, help="Scenarios W."),
    seed: int = typer.Option(0, "--seed", help="Random seed of the generator."),
    information: str = typer.Option(
        "history", "--information",
        help="history (decisions see the data so far; the default) or clairvoyant "
             "(the two-stage model, which --engine mpisppy solves)."),
    regimes: int = typer.Option(0, "--regimes", min=0, max=MAX_REGIME_STATES,
                                help="Scenarios from a chain of this many regimes (one "
                                "normal), --scenarios paths sampled; 0: a list of "
                                "disruptions."),
    projects: int = typer.Option(0, "--projects", min=0, max=1000,
                                 help="Investment projects, each adding to 2-4 elements of "
                                 "one source (they tie those elements' blocks)."),
    integer_projects: bool = typer.Option(False, "--integer-projects",
                                          help="Make the --projects all-or-nothing."),
    force: bool = typer.Option(False, "--force", help="Replace --out if it exists."),
) -> int:
    """Write a random, plausible instance of the given size (for tests and benchmarks)."""
    from .input.builders import check_instance_text, instance_to_yaml, synthetic_instance, \
        write_text_atomic
    from .input.folders import check_file_target
    from .input.instance import instance_from_dict

    check_synthetic_size(sources, elements, periods, scenarios, flags=True)
    check_file_target(out, force)
    if information not in ("history", "clairvoyant"):
        raise UsageError(f"--information must be history or clairvoyant, not '{information}'")
    data = synthetic_instance(sources, elements, periods, scenarios, seed,
                              information=information, regimes=regimes, projects=projects,
                              integer=integer_projects)
    instance_from_dict(data, name=data["name"])  # refuse to write an invalid instance
    write_text_atomic(out, check_instance_text(
        instance_to_yaml(data, "Synthetic instance (random, not data).")), force=force)
    _say(out_console, ("wrote", "green"), f" {out}: {sources} sources x {elements} elements x "
         f"{periods} periods x {scenarios} " + (f"paths of {regimes} regimes" if regimes
                                                 else "scenarios") + f" (seed {seed})")
    return EXIT_OK


@build_app.command("from-xlsx")
@_guard
def build_from_xlsx(
    workbook: Path = typer.Argument(..., help="Instance workbook (.xlsx), as written by "
                                    "export-instance."),
    out: Path = typer.Option(..., "--out", "-o", help="Instance file to write."),
    force: bool = typer.Option(False, "--force", help="Replace --out if it exists."),
) -> int:
    """Read an instance workbook back into a YAML instance (validated first)."""
    from .input.builders import check_instance_text, instance_to_yaml, write_text_atomic
    from .input.folders import check_file_target
    from .input.workbook import load_instance_workbook

    check_file_target(out, force)
    loaded = load_instance_workbook(workbook)
    _warn(loaded.warnings)
    # the file name goes into a YAML comment: control characters (a CR would end
    # the comment) are shown escaped
    write_text_atomic(out, check_instance_text(instance_to_yaml(
        loaded.instance, f"Generated by `sourcing build from-xlsx` from "
        f"{printable(workbook.name)}.")), force=force)
    inst = loaded.instance
    _say(out_console, ("wrote", "green"), f" {out}: '{inst.name}', {len(inst.elements)} "
         f"elements, {len(inst.periods)} periods, {len(inst.sources)} sources, "
         f"{len(inst.scenarios or [None])} scenario(s)")
    return EXIT_OK


def main() -> None:
    """Run the command line (the console script enters through model.entry.main,
    which installs the signal handlers before importing this module)."""
    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    try:
        app()
    except KeyboardInterrupt:  # an interrupt outside a command's own guard
        interrupted()
