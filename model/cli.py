"""The `sourcing` command line: a thin layer over :mod:`model.api`.

Exit codes: 0 solved to optimality (or a check passed), 2 bad input or usage
(one message, nothing written), 3 infeasible or stopped at a limit (the run
folder records the status and the explanation), 1 an unexpected error.
"""

from __future__ import annotations

import json
import os
import signal
import sys
from pathlib import Path
from typing import Any, Callable, Optional

import typer
from rich.console import Console
from rich.table import Table

from .errors import InstanceError, UsageError

EXIT_OK, EXIT_ERROR, EXIT_INPUT, EXIT_NOT_OPTIMAL = 0, 1, 2, 3

app = typer.Typer(add_completion=False, no_args_is_help=True,
                  help="Rare-earth sourcing portfolio optimiser (two-stage stochastic LP).")
out_console = Console()
err_console = Console(stderr=True)


def _fail(message: str, code: int) -> None:
    err_console.print(f"[bold red]error:[/] {message}", highlight=False, soft_wrap=True)
    raise typer.Exit(code)


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
            _fail("interrupted; nothing was written", 130)
        except typer.Exit:
            raise
        except Exception as err:  # noqa: BLE001 - the last line of defence
            if os.environ.get("SOURCING_DEBUG"):
                raise
            _fail(f"unexpected {type(err).__name__}: {err} "
                  "(set SOURCING_DEBUG=1 for a traceback)", EXIT_ERROR)
        raise typer.Exit(code or 0)

    return wrapper


def _on_sigterm(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


def _fmt(v: Any, unit: str = "") -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:,.6g}{unit}" if abs(v) < 1e6 else f"{v:,.0f}{unit}"
    return f"{v}{unit}"


# --------------------------------------------------------------------------- commands
@app.command()
@_guard
def validate(instance: Path = typer.Argument(..., help="Instance YAML file.")) -> int:
    """Check an instance file and print what it contains."""
    from .instance import load_instance
    from .policies import policy_names

    loaded = load_instance(instance)
    inst = loaded.instance
    out_console.print(
        f"[green]ok[/] {instance}: '{inst.name}', {len(inst.elements)} elements, "
        f"{len(inst.periods)} periods, {len(inst.sources)} sources, "
        f"{len(inst.scenarios or [None])} scenario(s); policies: "
        f"{', '.join(policy_names(inst))}", highlight=False)
    for w in loaded.warnings:
        err_console.print(f"[yellow]warning:[/] {w}", highlight=False)
    return EXIT_OK


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
) -> int:
    """Solve an instance under one policy and write a run folder."""
    from .export import check_target
    from .instance import default_instance_path, load_instance

    if risk_lambda is not None and not 0.0 <= risk_lambda <= 1.0:
        raise UsageError(f"--lambda must lie in [0, 1], got {risk_lambda}")
    if risk_alpha is not None and not 0.0 <= risk_alpha < 1.0:
        raise UsageError(f"--alpha must lie in [0, 1), got {risk_alpha}")
    if time_limit is not None and time_limit <= 0:
        raise UsageError(f"--time-limit must be positive, got {time_limit}")
    if out is not None:
        check_target(out, force)
    loaded = load_instance(instance or default_instance_path())
    for w in loaded.warnings:
        err_console.print(f"[yellow]warning:[/] {w}", highlight=False)
    from .api import solve_instance  # heavy imports only once the input is good
    from .export import save_run
    from .solve import SolveOptions

    with err_console.status(f"solving {loaded.name} under policy '{policy}'..."):
        run = solve_instance(loaded, policy, risk_lambda, risk_alpha,
                             SolveOptions(time_limit_s=time_limit, verbose=verbose))
    folder = save_run(run, out, force)
    if as_json:
        out_console.print_json(json.dumps(run.summary, default=str))
    else:
        _print_summary(run.summary, folder)
    return EXIT_OK if run.optimal else EXIT_NOT_OPTIMAL


def _print_summary(s: dict[str, Any], folder: Path) -> None:
    cur = s.get("currency", "")
    table = Table(title=f"{s['instance']} / policy {s['policy']}", show_header=False)
    table.add_row("status", s["status"] if s["status"] == "optimal"
                  else f"[red]{s['status']}[/]: {s['message']}")
    if s["status"] == "optimal":
        table.add_row("objective", _fmt(s["objective"], f" {cur}"))
        table.add_row("expected cost", _fmt(s["expected_cost"], f" {cur}"))
        table.add_row(f"CVaR {s['risk']['alpha']:g}", _fmt(s["cvar"], f" {cur}"))
        table.add_row("expected shortage", _fmt(s["expected_shortage_t"], " t"))
        table.add_row("worst-scenario shortage", _fmt(s["worst_shortage_t"], " t"))
        for stage, v in (s["max_single_country_share"] or {}).items():
            where = (f" ({v['country']}, {v['element']} {v['period']}, {v['scenario']})"
                     if v["country"] else "")
            table.add_row(f"max third-country share, {stage}", f"{v['share']:.1%}{where}")
    table.add_row("solver", f"HiGHS {s['solver_version']}, {s['solve_seconds']:.2f} s")
    table.add_row("run folder", str(folder))
    out_console.print(table)


@app.command()
@_guard
def verify(run_dir: Path = typer.Argument(..., help="A run folder written by solve.")) -> int:
    """Independently recheck every constraint and reported number of a run folder."""
    from .verify import verify_run

    if not (run_dir / "summary.json").is_file():
        raise UsageError(f"{run_dir} is not a run folder (no summary.json)")
    problems = verify_run(run_dir)
    for p in problems:
        err_console.print(f"[red]violated:[/] {p}", highlight=False)
    if problems:
        return EXIT_ERROR
    out_console.print(f"[green]ok[/] {run_dir}: every constraint and reported number checks out",
                      highlight=False)
    return EXIT_OK


@app.command()
@_guard
def schema() -> int:
    """Print the instance format as JSON Schema (for editors)."""
    from .schema import json_schema

    sys.stdout.write(json.dumps(json_schema(), indent=2) + "\n")
    return EXIT_OK


def main() -> None:
    """Console entry point."""
    signal.signal(signal.SIGTERM, _on_sigterm)
    app()


if __name__ == "__main__":
    main()
