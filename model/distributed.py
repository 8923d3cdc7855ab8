r"""Scenario decomposition on mpi-sppy: progressive hedging or the L-shaped method.

Run under MPI (``mpiexec -n N sourcing solve INSTANCE --engine mpisppy``, or
``srun`` on a cluster). Every rank loads the instance; mpi-sppy spreads the
scenarios over the ranks. A scenario's model is the project's own Pyomo
formulation (:func:`model.formulation.formulation.build_model`) on that scenario's data
alone, so both engines share one definition of the model. Its first stage is
the contracts :math:`x` (and, with a CVaR term, :math:`\eta`); its objective is

.. math:: f_w = (1-\lambda)\,C_w + \lambda\,\big(\eta + z_w/(1-\alpha)\big),
          \qquad \textstyle\sum_w p_w f_w = \text{the extensive form's objective}.

``--algorithm blocks`` keeps the scenario decomposition but not mpi-sppy's
Pyomo subproblems: :mod:`model.solve.lshaped` runs the L-shaped method per block of
elements, each subproblem a bundle of scenarios held in one warm-started HiGHS
instance built by the vectorised builder, over mpi4py. The plan is then
evaluated in bundles of :data:`EVAL_BUNDLE` scenarios per LP. Everything below
(upper bound, gap, the run) is the same for the three algorithms.

After the algorithm:

* **lower bound**: PH: the Lagrangian bound of its final weights (never below
  the trivial, wait-and-see bound); L-shaped: the master problem's objective
  (blocks: the sum of the blocks' masters);
* **candidate** :math:`\hat x`: PH's consensus :math:`\bar x`; L-shaped: the master's x
  (blocks: each block's plan of least upper bound);
* **upper bound**: :math:`\hat x` evaluated exactly. Every rank fixes the
  contracts in its share of the scenarios and solves their second stage (the
  vectorised builder and HiGHS); with the costs :math:`C_w` of all scenarios,
  :math:`UB = (1-\lambda)E[C] + \lambda\,CVaR_\alpha(C)` (the best
  :math:`\eta` for fixed contracts is the :math:`\alpha`-quantile).
* **gap** :math:`= (UB - LB)/\max(1, |UB|)`; the run is ``optimal`` when it is
  at most the requested gap.

Rank 0 gathers the second stages and builds the same run as the extensive
form (contracts, per-scenario deliveries, balance, scenario costs), except
``duals.csv``: the extensive form's marginal values are not computed here.

A budget couples the scenarios (it bounds the expected cost), and a pure-CVaR
objective (lambda = 1) needs the extensive form's second phase; both are
refused with a message.
"""

from __future__ import annotations

import contextlib
import functools
import io
import os
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np

from .errors import UsageError

ALGORITHMS = ("ph", "lshaped", "blocks")
SOLVER = "appsi_highs"
EVAL_BUNDLE = 25      # blocks: scenarios per LP when the plan is evaluated


@dataclass
class DecompositionSettings:
    """What the user asks of the decomposed solve."""

    algorithm: str | None = None  # None: lshaped for a two-stage model, ph for a tree
    max_iterations: int = 200     # PH iterations or L-shaped master solves
    gap: float = 1e-3             # relative gap at which the run counts as optimal
    rho_factor: float = 1.0       # PH: rho = factor * the contract's reservation cost
    bundle_size: int | None = None  # blocks: scenarios per bundle (None: 4 bundles a rank)
    stages: int | None = None     # multi-stage PH: mpi-sppy's stages (None: every period)

    def __post_init__(self) -> None:
        from .safety import check_gap

        self.gap = check_gap(self.gap, "gap")   # finite: inf would call any bounds optimal


def require_mpisppy(algorithm: str = "lshaped") -> Any:
    """Import mpi4py's MPI and mpi-sppy, or explain how to install them. The blocks
    algorithm needs mpi4py only (not importing mpi-sppy and Pyomo saves 50 MiB a rank)."""
    try:
        from mpi4py import MPI
        if algorithm != "blocks":
            with contextlib.redirect_stdout(io.StringIO()):   # its import prints a banner
                import mpisppy.log
            _no_log_files(mpisppy.log)
    except ImportError as exc:  # pragma: no cover - depends on the machine
        raise UsageError(
            f"the mpisppy engine needs the distributed extra ({exc.name} is missing): "
            "install an MPI library (Debian: apt install openmpi-bin libopenmpi-dev) and "
            "pip install '.[distributed]' (see README, 'Beyond one machine')") from None
    return MPI


def _no_log_files(log: Any) -> None:
    """mpi-sppy's modules open log files (hub.log, xhatclp.log, xhateval.log) in the
    working directory when imported, at level CRITICAL and never written: give those
    loggers no file, so that a run leaves nothing in the user's directory."""
    import logging

    if getattr(log.setup_logger, "_sourcing", False):
        return
    original = log.setup_logger

    def setup_logger(name: str, out: Any, *args: Any, **kwargs: Any) -> None:
        if isinstance(out, (str, os.PathLike)):
            logger = logging.getLogger(name)
            logger.propagate = False
            logger.addHandler(logging.NullHandler())
            return
        original(name, out, *args, **kwargs)

    setup_logger._sourcing = True  # type: ignore[attr-defined]
    log.setup_logger = setup_logger


# --------------------------------------------------------------------------- scenario models
@functools.lru_cache(maxsize=4)
def _context(instance_path: str, policy: str, risk_lambda: float | None,
             risk_alpha: float | None) -> tuple[Any, Any, Any, dict[str, int]]:
    """Per process: the loaded instance, its data, the resolved policy, scenario positions."""
    from .input.data import problem_data
    from .input.instance import load_instance
    from .formulation.policies import resolve_policy

    loaded = load_instance(instance_path)
    data = problem_data(loaded, risk_lambda, risk_alpha)
    resolved = resolve_policy(loaded.instance, data, policy)
    return loaded, data, resolved, {name: w for w, name in enumerate(data.scenarios)}


def scenario_creator(scenario_name: str, instance_path: str, policy: str = "none",
                     risk_lambda: float | None = None,
                     risk_alpha: float | None = None) -> Any:
    """mpi-sppy's scenario creator: the formulation of one scenario, x first stage.

    The model is :func:`model.formulation.formulation.build_model` on the scenario's data
    with probability 1, so its objective is :math:`f_w`; mpi-sppy weights it by
    ``_mpisppy_probability`` = :math:`p_w`.
    """
    from mpisppy.utils import sputils

    from .input.data import scenario_data
    from .formulation.formulation import build_model
    from .formulation.policies import resolve_policy

    loaded, data, _, position = _context(instance_path, policy, risk_lambda, risk_alpha)
    w = position[scenario_name]
    one = scenario_data(data, w)
    built = build_model(one, resolve_policy(loaded.instance, one, policy))
    m = built.model
    first_stage = [m.x]
    first_cost = (1.0 - one.risk_lambda) * m.first_stage_cost
    if one.risk_lambda > 0:
        first_stage.append(m.eta)
        first_cost = first_cost + one.risk_lambda * m.eta
    sputils.attach_root_node(m, first_cost, first_stage)
    m._mpisppy_probability = float(data.probability[w])
    m._sourcing_x_index = built.x_index
    return m


def contract_rho_setter(factor: float) -> Callable[[Any], list[tuple[int, float]]]:
    """PH's rho per contract: `factor` times its reservation cost (at least 1e-6 of the
    instance's typical price), the cost-proportional choice of Watson and Woodruff (2011)."""

    def setter(m: Any) -> list[tuple[int, float]]:
        from pyomo.repn import generate_standard_repn

        repn = generate_standard_repn(m.first_stage_cost.expr, quadratic=False)
        coef = {id(v): abs(float(c)) for v, c in zip(repn.linear_vars, repn.linear_coefs)}
        floor = 1e-6 * max(coef.values(), default=1.0) or 1.0
        pairs = [(id(v), factor * max(coef.get(id(v), 0.0), floor)) for v in m.x.values()]
        if hasattr(m, "eta"):
            pairs.append((id(m.eta), factor * max(m._mpisppy_probability, 1e-3)))
        return pairs

    return setter


# --------------------------------------------------------------------------- the run
def needs_tree(data: Any) -> bool:
    """True when the instance is not a two-stage program: scenarios that share early
    periods (information: history), contracts with a lead time, or investment
    projects (decided at the nodes of the information tree)."""
    from .input.tree import is_two_stage

    if data.projects is not None and data.projects.n:
        return True
    has_x = (data.capacity_t > 0) & data.is_contract[:, None]
    rows = np.where(has_x, data.decision_row, 0)
    return not is_two_stage(data.decision_node, data.recourse_node, rows)


def check_decomposable(data: Any, resolved: Any, algorithm: str = "ph",
                       stages: int | None = None) -> None:
    """Refuse what scenario decomposition cannot solve exactly, in the instance's words."""
    if resolved.budgets:
        labels = ", ".join(label for label, _ in resolved.budgets)
        raise UsageError(f"policy {resolved.name!r} has a budget ({labels}): it bounds the "
                         "expected cost over all scenarios, which couples them, so the "
                         "mpisppy engine cannot decompose it; use the default engine")
    if data.ambiguous:
        raise UsageError("risk.ambiguity (the worst expectation over a total-variation ball) "
                         "ties every scenario's cost together: the mpisppy engine cannot "
                         "decompose it; use the default engine")
    if data.risk_lambda >= 1.0:
        raise UsageError("lambda = 1 (pure CVaR) needs the extensive form's second phase "
                         "(least expected cost among CVaR-optimal plans); use the default "
                         "engine or a lambda below 1")
    pj = data.projects
    usable = ~resolved.excluded_projects if pj is not None and len(resolved.excluded_projects) \
        else np.ones(pj.n if pj is not None else 0, bool)
    if pj is not None and (pj.integer & usable).any():
        ids = ", ".join(i for i, b in zip(pj.ids, pj.integer & usable) if b)
        raise UsageError(f"the instance has all-or-nothing projects ({ids}): they make a "
                         "MIP, and progressive hedging gives no valid bounds on integer "
                         "decisions, so the mpisppy engine does not solve them; use the "
                         "default engine, or `integer: false` for a continuous size")
    if not needs_tree(data):
        if stages is not None:
            raise UsageError("--stages belongs to multi-stage instances (scenarios that "
                             "share early periods, lead times or projects); this one is "
                             "two-stage")
        return
    if algorithm != "ph":
        from .input.tree import is_two_stage

        has_x = (data.capacity_t > 0) & data.is_contract[:, None]
        rows = np.where(has_x, data.decision_row, 0)
        late = sorted({data.sources["id"].iloc[data.arc_source[k]]
                       for k in np.flatnonzero((rows > 0).any(axis=1))})
        if late:
            why = f"contracts with a lead time ({', '.join(late)}) are decided at later nodes"
        elif not is_two_stage(data.decision_node, data.recourse_node, rows):
            why = (f"under information: {data.information} its scenarios share early "
                   f"periods (the information tree has {data.tree.n_nodes} nodes), so "
                   "later decisions wait for news")
        else:
            why = "its investment projects are decided at the nodes of the information tree"
        raise UsageError(f"--algorithm {algorithm} solves two-stage models (contracts at "
                         f"the root, then each scenario alone), and this instance is "
                         f"multi-stage: {why}. Use --algorithm ph (multi-stage progressive "
                         "hedging on the information tree), or the default engine")
    if data.buyers is not None:
        raise UsageError("several buyers on a multi-stage instance: their transfers of "
                         "stock between members are not among the multi-stage engine's "
                         "non-anticipative variables; use the default engine")
    if data.risk_lambda > 0:
        raise UsageError("a CVaR term (lambda > 0) on a multi-stage instance: its variable "
                         "eta ties every scenario at the root, and progressive hedging's "
                         "Lagrangian bound closes on it too slowly to certify --gap (on a "
                         "six-scenario tree, still 0.3 to 6 % after 100 to 200 iterations); "
                         "use the default engine, or lambda 0")
    if (data.probability <= 0).any():
        zero = [n for n, p in zip(data.scenarios, data.probability) if p <= 0]
        raise UsageError(f"scenario(s) {', '.join(zero[:5])} have probability 0: "
                         "mpi-sppy's multi-stage PH divides by node probabilities; drop "
                         "them or use the default engine")


def solve_distributed(instance_path: str | Path, policy: str = "none",
                      risk_lambda: float | None = None, risk_alpha: float | None = None,
                      settings: DecompositionSettings | None = None) -> Any:
    """Solve on mpi-sppy across the ranks of MPI.COMM_WORLD.

    Every rank must call this. Rank 0 returns the :class:`~model.api.RunResult`
    (status, bounds and gap in its summary; tables when optimal); other ranks
    return None.
    """
    settings = settings or DecompositionSettings()
    if settings.algorithm is not None and settings.algorithm not in ALGORITHMS:
        raise UsageError(f"--algorithm must be one of {', '.join(ALGORITHMS)}, "
                         f"not {settings.algorithm!r}")
    MPI = require_mpisppy(settings.algorithm or "ph")
    comm = MPI.COMM_WORLD
    rank, size = comm.Get_rank(), comm.Get_size()
    path = str(Path(instance_path).resolve())
    loaded, data, resolved, _ = _context(path, policy, risk_lambda, risk_alpha)
    tree = needs_tree(data)
    settings = replace(settings, algorithm=settings.algorithm or ("ph" if tree else "lshaped"))
    check_decomposable(data, resolved, settings.algorithm, settings.stages)
    kwargs = {"instance_path": path, "policy": policy, "risk_lambda": risk_lambda,
              "risk_alpha": risk_alpha}
    if tree:
        return _solve_tree(loaded, data, resolved, policy, kwargs, settings)
    names = list(data.scenarios)
    t0 = time.perf_counter()
    if settings.algorithm == "blocks":
        from .solve.lshaped import NoCompleteRecourse, block_lshaped

        try:
            lower, contracted, iterations, extra = block_lshaped(
                comm, loaded, data, resolved, policy, settings.gap, settings.max_iterations,
                settings.bundle_size)
        except NoCompleteRecourse as exc:
            raise UsageError(f"--algorithm blocks needs a second stage that is feasible for "
                             f"every plan of contracts, and a bundle of scenarios has none "
                             f"({exc}); use --algorithm lshaped or the default engine") from None
    else:
        with _quiet():
            if settings.algorithm == "ph":
                lower, xhat, iterations, extra = _run_ph(names, kwargs, settings)
            else:
                lower, xhat, iterations, extra = _run_lshaped(names, kwargs, settings)
        contracted = _as_contracted(loaded, data, policy, xhat) if rank == 0 else None
    t_algo = time.perf_counter() - t0
    # every rank evaluates its share of the scenarios with the contracts fixed
    if settings.algorithm == "blocks":
        from .solve.lshaped import settle

        settle(comm)
    contracted = comm.bcast(contracted, root=0)
    if settings.algorithm == "blocks":   # in bundles of scenarios, the rank's own share
        share = np.array_split(np.arange(len(names)), size)[rank]
        chunks = [c for c in np.array_split(share, -(-len(share) // EVAL_BUNDLE)) if len(c)] \
            if len(share) else []
        pairs = [item for c in chunks for item in _second_stages(loaded, data, policy, c,
                                                                 contracted)]
    else:
        mine = list(range(rank, len(names), size))
        pairs = [(w, _second_stage(loaded, data, policy, w, contracted)) for w in mine]
    if settings.algorithm == "blocks":
        from .solve.lshaped import settle

        settle(comm)
    gathered = comm.gather(pairs, root=0)
    t_eval = time.perf_counter() - t0 - t_algo
    from .solve.solve import peak_rss_mib

    peak = comm.gather(peak_rss_mib(), root=0)
    if rank != 0:
        return None
    parts = dict(item for chunk in gathered for item in chunk)
    return _assemble(loaded, data, resolved, policy, parts, lower, settings,
                     {"iterations": iterations, "ranks": size, "algorithm_seconds": t_algo,
                      "evaluation_seconds": t_eval, "peak_rss_mib_per_rank": peak, **extra})


def _solve_tree(loaded: Any, data: Any, resolved: Any, policy: str, kwargs: dict[str, Any],
                settings: DecompositionSettings) -> Any:
    """Multi-stage PH on the information tree (model.multistage); rank 0 returns the
    run, the other ranks None."""
    from mpi4py import MPI

    from .multistage import _cut_context, layout, run_wheel
    from .solve.solve import peak_rss_mib

    comm = MPI.COMM_WORLD
    rank, size = comm.Get_rank(), comm.Get_size()
    kind = layout(size)
    per = size // (kind.count("+") + 1)         # ranks of each cylinder
    cut = _cut_context(kwargs["instance_path"], policy, kwargs["risk_lambda"],
                       kwargs["risk_alpha"], settings.stages, per)
    if per > len(cut.names):
        raise UsageError(f"{size} ranks give {per} rank(s) to each of mpi-sppy's cylinders "
                         f"({kind}), more than the {len(cut.names)} subproblem(s) of "
                         f"--stages {cut.stages}: use fewer ranks or more stages")
    t0 = time.perf_counter()
    with _quiet():
        out = run_wheel(cut, {**kwargs, "stages": cut.stages}, settings)
    t_algo = time.perf_counter() - t0
    peak = comm.gather(peak_rss_mib(), root=0)
    if rank != 0:
        return None
    from .multistage import assemble

    return assemble(loaded, data, resolved, policy, cut, out, settings,
                    {"ranks": size, "algorithm_seconds": t_algo,
                     "peak_rss_mib_per_rank": peak})


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """mpi-sppy prints from every rank; keep the console for our own progress
    (SOURCING_MPISPPY_VERBOSE=1 shows its output)."""
    if os.environ.get("SOURCING_MPISPPY_VERBOSE"):
        yield
        return
    with contextlib.redirect_stdout(io.StringIO()):
        yield


def _run_ph(names: list[str], kwargs: dict[str, Any], settings: DecompositionSettings
            ) -> tuple[float, np.ndarray | None, int, dict[str, Any]]:
    """Progressive hedging; returns (lower bound, x-bar on rank 0, iterations, extras)."""
    from mpisppy.opt.ph import PH

    options = {
        "solver_name": SOLVER, "PHIterLimit": settings.max_iterations,
        "defaultPHrho": 1.0, "convthresh": 1e-7, "verbose": False,
        "display_progress": False, "display_timing": False,
        "iter0_solver_options": {}, "iterk_solver_options": {},
        # appsi_highs takes no quadratic objective: approximate the proximal term
        # by tangent cuts (needs scipy)
        "linearize_proximal_terms": True, "proximal_linearization_tolerance": 1e-3,
    }
    ph = PH(options, names, scenario_creator, scenario_creator_kwargs=kwargs,
            rho_setter=contract_rho_setter(settings.rho_factor))
    conv, _, trivial = ph.ph_main()
    lagrangian = ph.post_solve_bound()
    lower = max(trivial, lagrangian)
    s = next(iter(ph.local_scenarios.values()))
    n_x = len(s._sourcing_x_index)
    xbar = np.array([float(s._mpisppy_model.xbars["ROOT", i].value) for i in range(n_x)])
    iterations = int(getattr(ph, "_PHIter", settings.max_iterations))
    return lower, xbar, iterations, {"trivial_bound": trivial, "lagrangian_bound": lagrangian,
                                     "ph_convergence": conv}


def _cost_scale(kwargs: dict[str, Any]) -> float:
    """An upper bound on one scenario's cost: every tonne of demand unmet (>= 1)."""
    _, data, _, _ = _context(kwargs["instance_path"], kwargs["policy"], kwargs["risk_lambda"],
                             kwargs["risk_alpha"])
    worst = np.einsum("t,e,etw->w", data.discount, data.shortage_penalty, data.demand_t)
    return float(max(1.0, worst.max(initial=0.0)))


def _run_lshaped(names: list[str], kwargs: dict[str, Any], settings: DecompositionSettings
                 ) -> tuple[float, np.ndarray | None, int, dict[str, Any]]:
    """The L-shaped method; returns (master bound, master's x on rank 0, iterations, {})."""
    from mpisppy.opt.lshaped import LShapedMethod

    options = {
        # Pyomo's Benders cut generator knows the dual sign convention of "highs" only
        "root_solver": "highs", "sp_solver": "highs", "max_iter": settings.max_iterations,
        # a cut is added when it is violated by more than this (currency, absolute):
        # 1e-9 of what a scenario can cost at most, so HiGHS's round-off on costs of
        # 1e10 does not keep the method cutting after it has converged
        "tol": 1e-9 * _cost_scale(kwargs), "verbose": False,
        # every scenario's f_w is a non-negative cost, so 0 is a valid bound on eta_w
        "valid_eta_lb": {name: 0.0 for name in names},
    }
    ls = LShapedMethod(options, names, scenario_creator, scenario_creator_kwargs=kwargs)
    ls.lshaped_algorithm()
    lower = float(ls._LShaped_bound)
    m = ls.root
    x_vars = getattr(m, "x", None)
    xhat = None
    if x_vars is not None:
        xhat = np.array([float(v.value or 0.0) for v in x_vars.values()])
    iterations = int(getattr(ls, "iter", settings.max_iterations)) + 1
    return lower, xhat, iterations, {}


def _as_contracted(loaded: Any, data: Any, policy: str, xhat: np.ndarray) -> np.ndarray:
    """mpi-sppy's first-stage vector (a scenario model's x, in its index order) as
    contracted tonnes per (arc, period)."""
    from .input.data import scenario_data
    from .formulation.indexing import model_index
    from .formulation.policies import resolve_policy

    one = scenario_data(data, 0)
    keys = model_index(one, resolve_policy(loaded.instance, one, policy)).x_index
    contracted = np.zeros(data.capacity_t.shape)
    contracted[keys[:, 0], keys[:, 1]] = xhat
    return contracted


def _second_stage(loaded: Any, data: Any, policy: str, w: int,
                  contracted_t: np.ndarray) -> dict[str, Any]:
    """Scenario w's second stage with the contracts fixed at contracted_t (K, T)
    (expected-cost model)."""
    from dataclasses import replace

    from .input.data import scenario_data
    from .solve.expand import expand
    from .formulation.matrix import build_matrix, fix_shared_decisions
    from .formulation.policies import resolve_policy
    from .analysis.results import solution_arrays
    from .solve.solve import solve_model

    one = replace(scenario_data(data, w), risk_lambda=0.0)   # least C_w: best for any eta
    built = build_matrix(one, resolve_policy(loaded.instance, one, policy))
    fix_shared_decisions(built, contracted_t)
    result = solve_model(built)
    if not result.optimal:
        return {"status": result.status, "message": result.message}
    sol = solution_arrays(*expand(one, built, result, rows=False))
    return {"status": "optimal", "cost": float(result.objective),
            "delivered_t": sol.delivered_t[:, :, 0], "shortage_t": sol.shortage_t[:, :, 0],
            "stock_t": sol.stock_t[:, :, 0], "contracted_t": sol.contracted_t[:, :, 0],
            "handoff_seconds": result.handoff_seconds, "solve_seconds": result.solve_seconds}


def _second_stages(loaded: Any, data: Any, policy: str, ws: np.ndarray,
                   contracted_t: np.ndarray) -> list[tuple[int, dict[str, Any]]]:
    """The second stages of scenarios `ws` with the contracts fixed, as one LP (the
    extensive form of those scenarios, which separates by scenario once the contracts
    are fixed): what :func:`_second_stage` gives for each, at a fraction of the builds."""
    from dataclasses import replace

    from .input.data import restrict_scenarios
    from .solve.expand import expand
    from .formulation.matrix import build_matrix, fix_shared_decisions
    from .formulation.policies import resolve_policy
    from .analysis.results import cost_breakdown, solution_arrays
    from .solve.solve import solve_model

    ws = np.asarray(ws, dtype=np.int64)
    some = replace(restrict_scenarios(data, ws), risk_lambda=0.0)
    built = build_matrix(some, resolve_policy(loaded.instance, some, policy))
    fix_shared_decisions(built, contracted_t)
    result = solve_model(built)
    if not result.optimal:
        bad = {"status": result.status, "message": result.message}
        return [(int(w), bad) for w in ws]
    sol = solution_arrays(*expand(some, built, result, rows=False))
    costs = cost_breakdown(some, sol)["cost"].to_numpy()
    n = len(ws)
    return [(int(w), {"status": "optimal", "cost": float(costs[i]),
                      "delivered_t": sol.delivered_t[:, :, i],
                      "shortage_t": sol.shortage_t[:, :, i], "stock_t": sol.stock_t[:, :, i],
                      "contracted_t": sol.contracted_t[:, :, i],
                      "handoff_seconds": result.handoff_seconds / n,
                      "solve_seconds": result.solve_seconds / n})
            for i, w in enumerate(ws)]


def _assemble(loaded: Any, data: Any, resolved: Any, policy: str,
              parts: dict[int, dict[str, Any]], lower: float,
              settings: DecompositionSettings, info: dict[str, Any]) -> Any:
    """Rank 0: one RunResult in the extensive form's indexing, bounds in the summary."""
    from .api import RunResult, base_summary, tabulate
    from .formulation.built import BuiltModel
    from .formulation.indexing import model_index
    from .analysis.results import cvar
    from .solve.solve import SolveResult, highs_version

    W = len(data.scenarios)
    bad = [data.scenarios[w] for w in range(W) if parts[w]["status"] != "optimal"]
    ix = model_index(data, resolved)     # per scenario, as model.solve.expand reports
    x_index = np.argwhere(ix.xcol_of >= 0)
    q_index = np.argwhere(ix.qpos_of[:, ix.slot_of] >= 0)
    solver = (f"model.solve.lshaped (blocks) on mpi4py {_version('mpi4py')} + HiGHS"
              if settings.algorithm == "blocks" else
              f"mpi-sppy {_version('mpi-sppy')} ({settings.algorithm}) + HiGHS")
    result = SolveResult("optimal", "", solver=solver, solver_version=highs_version())
    upper = None
    if bad:
        result.status = "infeasible"
        result.message = (f"the {settings.algorithm} contracts leave scenario(s) "
                          f"{', '.join(bad[:5])} without a feasible second stage; try more "
                          "iterations or the default engine")
    else:
        costs = np.array([parts[w]["cost"] for w in range(W)])
        lam, alpha = data.risk_lambda, data.risk_alpha
        upper = float((1 - lam) * costs @ data.probability
                      + (lam * cvar(costs, data.probability, alpha) if lam > 0 else 0.0))
        delivered = np.stack([parts[w]["delivered_t"] for w in range(W)], axis=-1)
        shortage = np.stack([parts[w]["shortage_t"] for w in range(W)], axis=-1)
        stock = np.stack([parts[w]["stock_t"] for w in range(W)], axis=-1)
        contracted = parts[0]["contracted_t"]
        result.values = {"x": contracted[x_index[:, 0], x_index[:, 1]],
                         "q": delivered[tuple(q_index.T)],
                         "u": shortage.reshape(-1), "stock": stock.reshape(-1)}
        result.objective = upper
        result.handoff_seconds = sum(parts[w]["handoff_seconds"] for w in range(W))
        result.solve_seconds = sum(parts[w]["solve_seconds"] for w in range(W))
    lower = float(lower)
    # below zero only by the solvers' tolerances: report it as 0
    gap = None if upper is None else max(0.0, (upper - lower) / max(1.0, abs(upper)))
    if gap is not None and gap > settings.gap:
        result.status = "iteration_limit"
        result.message = (f"relative gap {gap:.3g} is above --gap {settings.gap:g} after "
                          f"{info['iterations']} iterations: raise --max-iterations")
    result.bound = lower
    result.n_variables = len(ix.x_index) + len(ix.q_index) + 2 * ix.n_slots * len(data.elements)
    built = BuiltModel(None, data, resolved, x_index, q_index, {}, [], 0.0)
    summary = base_summary(loaded, data, built, result, policy)
    summary.update({
        "engine": "mpisppy", "algorithm": settings.algorithm,
        "upper_bound": upper, "lower_bound": lower, "gap": gap, "gap_tolerance": settings.gap,
        "iterations": info.pop("iterations"), "ranks": info.pop("ranks"),
        "algorithm_seconds": round(info.pop("algorithm_seconds"), 6),
        "evaluation_seconds": round(info.pop("evaluation_seconds"), 6),
        "peak_rss_mib_per_rank": [round(v, 1) for v in info.pop("peak_rss_mib_per_rank")],
        **{k: (float(v) if isinstance(v, (float, np.floating)) else v)
           for k, v in info.items()},
        "duals": "not computed by the mpisppy engine (see docs/outputs.md)",
    })
    return tabulate(RunResult(loaded, data, built, result, policy, summary))


def _version(package: str) -> str:
    from importlib.metadata import version

    return version(package)
