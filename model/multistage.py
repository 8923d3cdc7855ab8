r"""Multi-stage progressive hedging on mpi-sppy: the information tree as mpi-sppy's tree.

``sourcing solve --engine mpisppy --algorithm ph`` on an instance whose scenarios
share early periods (``information: history``, the default) or whose contracts
have a ``lead_time``. The information tree (:mod:`model.input.tree`) becomes
mpi-sppy's scenario tree:

* **scenarios merged**: scenarios with the same data in every period share every
  node; they are merged into one (probabilities summed) before mpi-sppy sees
  them, and their answers are copied back at the end.
* **the cut**: with ``--stages S`` (default: every period, ``S = T + 1``) mpi-sppy's
  tree is the first ``S - 1`` rows of the information tree (row 0 the root, row
  ``r`` the nodes after period ``r - 1``). Each node of row ``d = S - 1`` is one
  mpi-sppy *scenario*: the subtree below it, built by the project's own
  formulation (:func:`model.formulation.formulation.build_model`) on the data of
  its scenarios with their conditional probabilities, one variable per node of
  the subtree. With ``S = T + 1`` each is one scenario path; smaller ``S``
  bundles paths that share their history up to period ``S - 2`` and PH only
  hedges the decisions above the cut.
* **node names** in mpi-sppy's convention: ``ROOT``, and a child is its parent's
  name plus ``_k``, ``k`` its position among the parent's children (ordered by
  the information tree's node ids); ``all_nodenames`` lists every node down to
  the cut (the leaves included), and the scenarios are listed in the
  depth-first order of their leaves, as mpi-sppy requires for an unbalanced
  tree (it is given the names, never branching factors).
* **non-anticipative variables** of the node of row ``r`` (its
  ``nonant_list``, in the same order in every scenario: contracts by arc and
  period, projects by project and period, stock by element): the contracts
  decided there (``lead_time`` rows, model.input.tree.decision_rows), the project
  sizes decided in period ``r - 1``, and under ``history`` the end-of-period
  stock of period ``r - 1``; the root also holds :math:`\eta` of a CVaR term.
  Deliveries, shortage, surplus sold, avoided demand and stock-floor deficits of
  period ``r - 1`` are *local*: every constraint that holds them holds only them
  and the node's non-anticipative variables (or its ancestors'), on the node's
  data, so each scenario of the node solves the same local LP and reaches the
  same cost. Leaving them out of PH changes no optimum; the final plan copies
  one scenario's local values to every scenario of the node, which makes it
  non-anticipative exactly at the same cost.

The wheel (mpi-sppy's hub and spokes) depends on the rank count N:

* N divisible by 3: a PH hub, a Lagrangian spoke (lower bounds from the hub's
  weights) and an xhatshuffle spoke (upper bounds: fix the non-anticipative
  variables of every node at one scenario's values, solve every subproblem);
  N/3 ranks each; the hub stops at the requested gap.
* other even N (2, 4, 8, ...): N/2 ranks for the PH hub, which tries an xhat itself
  every few iterations the way xhatshuffle does, and N/2 for the Lagrangian spoke.
* other odd N (1, 5, 7, ...): the hub alone on every rank; it also computes the
  Lagrangian bound of its weights every few iterations.

The plan is the best xhat: non-anticipative exactly (every node's variables at
one set of values), each subproblem solved with them fixed. Its cost is
recomputed from the plan's tables; the lower bound is the best Lagrangian bound
(never below the trivial bound of iteration 0).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

import numpy as np

from .errors import UsageError


# --------------------------------------------------------------------------- the cut
@dataclass
class TreeCut:
    """The information tree as mpi-sppy's tree, cut at row ``depth``."""

    data: Any                       # ProblemData of the merged scenarios
    members: list[np.ndarray]       # original scenarios of each merged scenario
    depth: int                      # d = stages - 1: the row of the subproblems' roots
    names: list[str]                # mpi-sppy scenario names, depth-first order of leaves
    bundles: list[np.ndarray]       # merged scenarios of each subproblem
    probability: np.ndarray         # (B,) probability of each subproblem
    paths: list[list[str]]          # per subproblem: node names of rows 0..d-1
    all_nodenames: list[str] | None  # None for two stages (ROOT only)
    cond_prob: dict[str, float]     # node name -> P(node | parent)
    node_of_name: dict[str, int]    # node name -> node id of the merged tree

    @property
    def stages(self) -> int:
        return self.depth + 1

    @property
    def owner(self) -> dict[str, int]:
        """The first subproblem (depth-first) under each node above the cut: the one whose
        local values the final plan copies to the others."""
        out: dict[str, int] = {}
        for b, path in enumerate(self.paths):
            for name in path:
                out.setdefault(name, b)
        return out


def merge_identical(data: Any) -> tuple[Any, list[np.ndarray]]:
    """Scenarios with the same data in every period (one leaf of the information tree)
    merged into their first, probabilities summed."""
    from .input.data import restrict_scenarios

    leaf = data.decision_node[-1]
    _, first, inverse = np.unique(leaf, return_index=True, return_inverse=True)
    order = np.argsort(first, kind="stable")          # classes in scenario order
    rank = np.empty_like(order)
    rank[order] = np.arange(len(order))
    cls = rank[inverse]
    members = [np.flatnonzero(cls == c) for c in range(len(order))]
    if all(len(m) == 1 for m in members):
        return data, members
    reps = np.array([m[0] for m in members], dtype=np.int64)
    prob = np.array([data.probability[m].sum() for m in members])
    return restrict_scenarios(data, reps, probability=prob), members


MAX_PATHS = 1000      # default cut: at most this many scenario paths in a subproblem


def default_depth(D: np.ndarray, ranks: int = 1) -> int:
    """The default cut: the first row of the information tree (from the root) with at
    least `ranks` nodes (one subproblem per rank of a cylinder) and at most
    :data:`MAX_PATHS` scenario paths below any of them; the leaves otherwise."""
    T = D.shape[0] - 1
    for d in range(1, T + 1):
        _, count = np.unique(D[d], return_counts=True)
        if len(count) >= ranks and count.max() <= MAX_PATHS:
            return d
    return T


def tree_cut(data: Any, stages: int | None = None, ranks: int = 1) -> TreeCut:
    """mpi-sppy's tree of `data` (identical scenarios merged) with `stages` stages
    (default: :func:`default_depth` + 1 for `ranks` ranks per cylinder)."""
    merged, members = merge_identical(data)
    D = merged.decision_node
    T = D.shape[0] - 1
    depth = default_depth(D, ranks) if stages is None else int(stages) - 1
    if not 1 <= depth <= T:
        raise UsageError(f"--stages must be from 2 to {T + 1} (the periods plus the root), "
                         f"got {stages}")
    W = len(merged.scenarios)
    children: dict[int, list[int]] = {}
    for r in range(depth):
        for w in range(W):
            kids = children.setdefault(int(D[r, w]), [])
            if int(D[r + 1, w]) not in kids:
                kids.append(int(D[r + 1, w]))
    for kids in children.values():
        kids.sort()
    name_of: dict[int, str] = {int(D[0, 0]): "ROOT"}
    ordered: list[str] = ["ROOT"]
    leaves: list[int] = []

    def visit(n: int, r: int) -> None:             # depth-first, children in id order
        if r == depth:
            leaves.append(n)
            return
        for k, c in enumerate(children[n]):
            name_of[c] = f"{name_of[n]}_{k}"
            ordered.append(name_of[c])
            visit(c, r + 1)

    import sys
    sys.setrecursionlimit(max(sys.getrecursionlimit(), 4 * T + 100))
    visit(int(D[0, 0]), 0)
    node_prob = merged.tree.probability
    parent = merged.tree.parent
    cond = {name: (float(node_prob[n] / node_prob[parent[n]])
                   if parent[n] >= 0 and node_prob[parent[n]] > 0 else 1.0)
            for n, name in name_of.items()}
    bundles = [np.flatnonzero(D[depth] == n) for n in leaves]
    paths = [[name_of[int(D[r, b[0]])] for r in range(depth)] for b in bundles]
    names = [f"scen{i}" for i in range(len(bundles))]
    probability = np.array([merged.probability[b].sum() for b in bundles])
    return TreeCut(merged, members, depth, names, bundles, probability, paths,
                   ordered if depth >= 2 else None, cond,
                   {name: n for n, name in name_of.items()})


# --------------------------------------------------------------------------- subproblems
@dataclass
class NodeColumns:
    """Positions in a subproblem's variables of one node above the cut."""

    x: np.ndarray         # contracts decided at the node
    y: np.ndarray         # project sizes decided at the node
    stock: np.ndarray     # stock of the node's period (history), E entries
    eta: bool             # the root of a CVaR objective
    # local variables of the node's period (history): copied between subproblems
    q: np.ndarray
    u: np.ndarray
    z: np.ndarray
    r: np.ndarray
    deficit: np.ndarray


def node_columns(sub: Any, built: Any, row: int) -> NodeColumns:
    """The columns of the subproblem `built` (on data `sub`) that belong to its node of
    `row` (0 = root), each family in its index order (the same in every subproblem)."""
    ix = built.index
    node = int(sub.decision_node[row, 0])
    empty = np.zeros(0, np.int64)
    x = np.flatnonzero(ix.x_index[:, 2] == node)
    y = np.flatnonzero(ix.y_index[:, 2] == node) if len(ix.y_index) else empty
    stock = q = u = z = r = deficit = empty
    if row >= 1 and sub.information == "history":
        S, E = ix.n_slots, len(sub.elements)
        s = int(ix.slot_of[row - 1, 0])
        stock = np.arange(E, dtype=np.int64) * S + s
        u = stock.copy()
        q = np.flatnonzero(ix.q_index[:, 2] == s)
        z = np.arange(len(ix.z_elements), dtype=np.int64) * S + s
        r = np.arange(len(ix.r_elements), dtype=np.int64) * S + s
        floors = built.floors
        if floors is not None and len(floors.slot):
            deficit = np.flatnonzero(floors.slot[floors.soft] == s)
    return NodeColumns(x, y, stock, row == 0 and sub.risk_lambda > 0, q, u, z, r, deficit)


@functools.lru_cache(maxsize=2)
def _cut_context(instance_path: str, policy: str, risk_lambda: float | None,
                 risk_alpha: float | None, stages: int | None, ranks: int = 1) -> TreeCut:
    from .distributed import _context

    _, data, _, _ = _context(instance_path, policy, risk_lambda, risk_alpha)
    return tree_cut(data, stages, ranks)


def subproblem_creator(scenario_name: str, instance_path: str, policy: str = "none",
                       risk_lambda: float | None = None, risk_alpha: float | None = None,
                       stages: int | None = None) -> Any:
    """mpi-sppy's scenario creator: the subtree below one node of the cut, its scenarios
    with their conditional probabilities (objective: the conditional expectation of
    f_w), and one ScenarioNode per node above it."""
    from mpisppy.scenario_tree import ScenarioNode

    from .formulation.formulation import build_model
    from .formulation.policies import resolve_policy
    from .input.data import restrict_scenarios
    from .distributed import _context

    loaded = _context(instance_path, policy, risk_lambda, risk_alpha)[0]
    cut = _cut_context(instance_path, policy, risk_lambda, risk_alpha, stages)
    b = cut.names.index(scenario_name)
    keep = cut.bundles[b]
    p = cut.data.probability[keep]
    sub = restrict_scenarios(cut.data, keep, probability=p / p.sum())
    built = build_model(sub, resolve_policy(loaded.instance, sub, policy))
    m = built.model
    nodes, columns = [], []
    for row in range(cut.depth):
        col = node_columns(sub, built, row)
        columns.append(col)
        nonants = [m.x[i] for i in col.x.tolist()] + [m.y[i] for i in col.y.tolist()] + \
            [m.stock[i] for i in col.stock.tolist()] + ([m.eta] if col.eta else [])
        name = cut.paths[b][row]
        cost: Any = 0.0
        if row == 0:
            cost = (1.0 - sub.risk_lambda) * m.first_stage_cost + \
                (sub.risk_lambda * m.eta if col.eta else 0.0)
        nodes.append(ScenarioNode(name, cut.cond_prob[name], row + 1, cost, nonants, m,
                                  parent_name=cut.paths[b][row - 1] if row else None))
    m._mpisppy_node_list = nodes
    m._mpisppy_probability = float(cut.probability[b])
    m._sourcing = (b, sub, built, columns)
    m._sourcing_rho_cost = rho_costs(m)
    return m


def rho_costs(m: Any) -> dict[int, float]:
    """The cost scale of each non-anticipative variable of subproblem `m` (id -> currency
    per unit): its cost in the objective (a contract's reservation cost, a project's
    capital cost), at least 1e-6 of the largest; a stock has little cost of its own
    (holding), so it takes the reservation cost of a tonne of its element's contracts
    in its period."""
    from pyomo.repn import generate_standard_repn

    _, sub, _, rows = m._sourcing
    wanted = {id(m.x[i]) for c in rows for i in c.x.tolist()} | \
        {id(m.y[i]) for c in rows for i in c.y.tolist()}
    repn = generate_standard_repn(m.objective.expr, quadratic=False)
    coef = {id(v): abs(float(c)) for v, c in zip(repn.linear_vars, repn.linear_coefs)
            if id(v) in wanted}
    floor = 1e-6 * (max(coef.values(), default=1.0) or 1.0)
    fee = sub.reservation_fee[:, None] * sub.price                          # (K, T)
    per_e = np.zeros((len(sub.elements), len(sub.periods)))
    for e in range(len(sub.elements)):
        arcs = (sub.arc_element == e) & sub.is_contract
        if arcs.any():
            per_e[e] = fee[arcs].mean(axis=0) * sub.discount
    out: dict[int, float] = {}
    for row, c in enumerate(rows):
        for var, i in [(m.x, i) for i in c.x.tolist()] + [(m.y, i) for i in c.y.tolist()]:
            out[id(var[i])] = max(coef.get(id(var[i]), 0.0), floor)
        for e, i in enumerate(c.stock.tolist()):
            out[id(m.stock[i])] = max(per_e[e, row - 1] if row >= 1 else 0.0, floor)
        if c.eta:   # the same in every subproblem, or the weights would not sum to 0
            out[id(m.eta)] = max(sub.risk_lambda, 1e-3)
    return out


def rho_setter(factor: float) -> Any:
    """PH's rho, cost-proportional (Watson and Woodruff, 2011): `factor` times
    :func:`rho_costs`."""

    def setter(m: Any) -> list[tuple[int, float]]:
        return [(i, factor * c) for i, c in m._sourcing_rho_cost.items()]

    return setter


# --------------------------------------------------------------------------- the wheel
XHAT_EVERY = 3        # the hub tries an xhat at x-bar every this many PH iterations


def layout(ranks: int) -> str:
    """Which cylinders run on `ranks` ranks (module docstring)."""
    if ranks % 3 == 0:
        return "hub+lagrangian+xhatshuffle"
    if ranks % 2 == 0:
        return "hub+lagrangian"
    return "hub"


SOLVER = "sourcing_appsi_highs"     # appsi_highs, fixed variables as bounds (below)


@functools.lru_cache(maxsize=1)
def register_solver() -> str:
    """Register :data:`SOLVER` with Pyomo: appsi_highs telling HiGHS that a fixed variable
    is fixed (its bounds), instead of Pyomo's default of rewriting every row and the
    objective that hold it. An xhat fixes the non-anticipative variables of every
    subproblem; with the default, fixing the root's contracts of one 729-path subtree of
    the Japan regime tree took 407 s, with this 0.4 s."""
    import pyomo.environ as pyo
    from pyomo.opt import SolverFactory

    base = type(pyo.SolverFactory("appsi_highs"))

    class Highs(base):  # type: ignore[misc, valid-type]
        def __init__(self, **kwds: Any) -> None:
            super().__init__(**kwds)
            self.update_config.treat_fixed_vars_as_params = False

    SolverFactory.register(SOLVER, doc="appsi_highs, fixed variables as bounds")(Highs)
    return SOLVER


def _options(settings: Any, cut: TreeCut) -> dict[str, Any]:
    return {
        "solver_name": register_solver(), "PHIterLimit": settings.max_iterations,
        "defaultPHrho": 1.0, "convthresh": 0.0, "verbose": False, "toc": False,
        "display_progress": False, "display_timing": False,
        "display_convergence_detail": False, "time_limit": None, "smoothed": 0,
        "iter0_solver_options": {}, "iterk_solver_options": {},
        # appsi_highs takes no quadratic objective: the proximal term as tangent cuts
        "linearize_proximal_terms": True, "proximal_linearization_tolerance": 1e-3,
        # subproblems cut above the leaves number their own columns differently: the
        # non-anticipative variables are matched by position (the same order everywhere)
        "turn_off_names_check": cut.depth < cut.data.decision_node.shape[0] - 1,
        "xhat_looper_options": {"xhat_solver_options": {}, "reverse": True,
                                "iter_step": None},
    }


@functools.lru_cache(maxsize=1)
def _classes() -> dict[str, type]:
    """mpi-sppy classes of our own (defined here: mpi-sppy is imported only when needed)."""
    from mpisppy.cylinders.hub import PHHub
    from mpisppy.cylinders.lagrangian_bounder import LagrangianOuterBound
    from mpisppy.extensions.extension import Extension
    from mpisppy.phbase import _Compute_Xbar
    from mpisppy.utils.sputils import is_persistent, not_good_enough_results

    class Retry(Extension):
        """A subproblem whose warm-started solve fails is solved again from scratch.
        (HiGHS stopped with a solve error on a warm start of a Japan regime subtree in
        PH's first iteration, and solved the same LP from scratch in 1.3 s.)"""

        def post_solve(self, s: Any, results: Any) -> Any:
            if s._mpisppy_data.solution_available:
                return results
            highs = getattr(s._solver_plugin, "_solver_model", None)
            if highs is None:
                return results
            highs.clearSolver()
            results = s._solver_plugin.solve(s, load_solutions=False)
            if not not_good_enough_results(results):
                s.solutions.load_from(results)
                s._mpisppy_data.solution_available = True
                s._mpisppy_data.outer_bound = results.Problem[0].Lower_bound
                s._mpisppy_data.inner_bound = results.Problem[0].Upper_bound
            return results

    class Hub(PHHub):
        """PH's hub, which also counts the bounds its own PH object finds (the stock
        PHHub stops on the gap only with an xhat spoke)."""

        def is_converged(self, screen_trace: bool = True) -> bool:
            if self.opt.best_bound_obj_val is not None:
                self.BestOuterBound = self.OuterBoundUpdate(self.opt.best_bound_obj_val)
            if self.opt.best_solution_obj_val is not None:
                self.BestInnerBound = self.InnerBoundUpdate(self.opt.best_solution_obj_val)
            if self.global_rank == 0 and screen_trace:
                self.screen_trace()
            return self.determine_termination(screen_trace)

    class Lagrangian(LagrangianOuterBound):
        """mpi-sppy's Lagrangian spoke, which sends no bound when a subproblem has no
        solution (its bound would be a stale one's)."""

        def lagrangian(self, *args: Any, **kwargs: Any) -> float:
            bound = super().lagrangian(*args, **kwargs)
            return bound if self.opt.no_incumbent_prob() == 0.0 else float("-inf")

    class HubBounds(Retry):
        """On the hub, every XHAT_EVERY iterations (after the solves): an xhat with every
        node's non-anticipative variables at x-bar (a convex combination of the node's
        scenario values; the local variables stay free), and, without a Lagrangian
        spoke, the Lagrangian bound of the current weights. The PH state is restored."""

        def __init__(self, opt: Any, lagrangian: bool = False) -> None:
            super().__init__(opt)
            self.lagrangian = lagrangian

        def enditer(self) -> None:
            if self.opt._PHIter % XHAT_EVERY == 0:
                self.bounds()

        def bounds(self) -> None:
            opt = self.opt
            opt._save_nonants()
            if self.lagrangian:
                opt._disable_prox()
                opt.solve_loop(gripe=True, warmstart=True)
                bound = opt.Ebound(False)
                if opt.no_incumbent_prob() == 0.0 and (opt.best_bound_obj_val is None
                                                       or bound > opt.best_bound_obj_val):
                    opt.best_bound_obj_val = bound
                opt._reenable_prox()
                opt._restore_nonants()
            _Compute_Xbar(opt)
            opt.disable_W_and_prox()
            for s in opt.local_scenarios.values():
                solver = s._solver_plugin if is_persistent(s._solver_plugin) else None
                for (ndn, i), var in s._mpisppy_data.nonant_indices.items():
                    var._value = s._mpisppy_model.xbars[ndn, i]._value
                    var.fix()
                    if solver is not None:
                        solver.update_var(var)
            opt.solve_loop(need_solution=False, warmstart=True)
            if opt.no_incumbent_prob() == 0.0:
                opt.update_best_solution_if_improving(opt.Eobjective(False))
            opt.reenable_W_and_prox()
            opt._restore_nonants()

    return {"Retry": Retry, "Hub": Hub, "Lagrangian": Lagrangian, "HubBounds": HubBounds}


def run_wheel(cut: TreeCut, kwargs: dict[str, Any], settings: Any) -> dict[str, Any]:
    """Spin mpi-sppy's wheel on COMM_WORLD; rank 0 returns the bounds, the iterations
    and the plan's parts (every subproblem's answer), the other ranks an empty dict."""
    from mpi4py import MPI
    from mpisppy.cylinders.xhatshufflelooper_bounder import XhatShuffleInnerBound
    from mpisppy.opt.ph import PH
    from mpisppy.phbase import PHBase
    from mpisppy.spin_the_wheel import WheelSpinner
    from mpisppy.utils.xhat_eval import Xhat_Eval

    cls = _classes()
    world = MPI.COMM_WORLD
    kind = layout(world.Get_size())
    common = {"all_scenario_names": cut.names, "scenario_creator": subproblem_creator,
              "scenario_creator_kwargs": kwargs, "all_nodenames": cut.all_nodenames}
    hub = {"hub_class": cls["Hub"], "hub_kwargs": {"options": {"rel_gap": settings.gap}},
           "opt_class": PH,
           "opt_kwargs": {**common, "options": _options(settings, cut),
                          "rho_setter": rho_setter(settings.rho_factor),
                          "extensions": cls["HubBounds"],
                          "extension_kwargs": {"lagrangian": kind == "hub"}}}
    spokes = []
    if kind != "hub":
        spokes.append({"spoke_class": cls["Lagrangian"], "opt_class": PHBase,
                       "opt_kwargs": {**common, "options": _options(settings, cut),
                                      "rho_setter": rho_setter(settings.rho_factor),
                                      "extensions": cls["Retry"]}})
    if kind == "hub+lagrangian+xhatshuffle":
        spokes.append({"spoke_class": XhatShuffleInnerBound, "opt_class": Xhat_Eval,
                       "opt_kwargs": {**common, "options": _options(settings, cut),
                                      "extensions": cls["Retry"]}})
    wheel = WheelSpinner(hub, spokes)
    wheel.spin()
    out: dict[str, Any] = {"layout": kind}
    if wheel.strata_rank == 0 and wheel.cylinder_rank == 0:
        opt = wheel.spcomm.opt
        out.update({"outer": float(wheel.BestOuterBound), "inner": float(wheel.BestInnerBound),
                    "iterations": int(opt._PHIter), "trivial_bound": float(opt.trivial_bound)})
        if kind == "hub" and opt.best_bound_obj_val is not None:
            out["outer"] = max(out["outer"], float(opt.best_bound_obj_val))
    winner = wheel._determine_innerbound_winner()
    parts: list[Any] = []
    if winner and wheel.spcomm.opt.load_best_solution():
        parts = _plan_parts(cut, wheel.spcomm.opt, wheel.spcomm.cylinder_comm)
    gathered = world.gather(parts, root=0)
    if world.Get_rank() == 0:
        out["parts"] = [p for chunk in gathered for p in chunk]
    return out


def _values(m: Any) -> dict[str, np.ndarray]:
    """A subproblem's variable values as arrays in its model's index order."""
    def arr(var: Any) -> np.ndarray:
        return np.array([v.value if v.value is not None else 0.0 for v in var.values()],
                        dtype=float)

    out = {name: arr(getattr(m, name)) for name in ("x", "q", "u", "stock", "z", "deficit",
                                                    "y", "r")}
    if hasattr(m, "eta"):
        out["eta"] = np.array([float(m.eta.value or 0.0)])
        out["excess"] = arr(m.excess)
    return out


LOCALS = ("q", "u", "z", "r", "deficit")


def _plan_parts(cut: TreeCut, opt: Any, comm: Any) -> list[dict[str, Any]]:
    """On the ranks of the cylinder holding the best xhat: each local subproblem's
    answer as dense arrays over its scenarios, after the local variables of every node
    above the cut are copied from the node's owner subproblem (so that the plan is
    non-anticipative exactly, at the same cost: module docstring)."""
    local = {m._sourcing[0]: (m, _values(m)) for m in opt.local_scenarios.values()}
    owner = cut.owner
    mine: dict[str, dict[str, np.ndarray]] = {}
    for b, (m, vals) in local.items():
        columns = m._sourcing[3]
        for row in range(1, cut.depth):
            name = cut.paths[b][row]
            if owner[name] == b:
                mine[name] = {key: vals[key][getattr(columns[row], key)] for key in LOCALS}
    shared: dict[str, dict[str, np.ndarray]] = {}
    for chunk in comm.allgather(mine):
        shared.update(chunk)
    parts = []
    for b, (m, vals) in local.items():
        _, sub, built, columns = m._sourcing
        for row in range(1, cut.depth):
            name = cut.paths[b][row]
            if owner[name] != b and name in shared:
                for key in LOCALS:
                    vals[key][getattr(columns[row], key)] = shared[name][key]
        parts.append(_dense(b, sub, built, vals))
    return parts


def _dense(b: int, sub: Any, built: Any, vals: dict[str, np.ndarray]) -> dict[str, Any]:
    """One subproblem's answer per scenario (model.solve.expand), as dense arrays."""
    from .analysis.results import solution_arrays
    from .solve.expand import expand
    from .solve.solve import SolveResult

    result = SolveResult("optimal", values=vals,
                         reduced_costs={k: np.zeros_like(v) for k, v in vals.items()})
    view, per = expand(sub, built, result, rows=False)
    sol = solution_arrays(view, per)
    floors = sol.floors[["rule", "element", "period", "scenario", "deficit_t"]] \
        if sol.floors is not None and len(sol.floors) else None
    return {"bundle": b, "contracted_t": sol.contracted_t, "delivered_t": sol.delivered_t,
            "shortage_t": sol.shortage_t, "stock_t": sol.stock_t, "surplus_t": sol.surplus_t,
            "avoided_t": sol.avoided_t, "built_size": sol.built_size, "floors": floors}


# --------------------------------------------------------------------------- the run
def assemble(loaded: Any, data: Any, resolved: Any, policy: str, cut: TreeCut,
             out: dict[str, Any], settings: Any, info: dict[str, Any]) -> Any:
    """Rank 0: one RunResult over every scenario of `data` from the subproblems' answers
    (the best xhat), its exact cost as the upper bound, the Lagrangian lower bound."""
    import pandas as pd

    from .analysis.results import cost_breakdown, cvar, solution_arrays
    from .api import RunResult, base_summary, tabulate
    from .formulation.built import BuiltModel
    from .formulation.indexing import model_index
    from .distributed import _version
    from .solve.solve import SolveResult, highs_version

    parts = out.get("parts", [])
    W, E = len(data.scenarios), len(data.elements)
    ix = model_index(data, resolved)           # per scenario, as model.solve.expand reports
    x_index = np.argwhere(ix.xcol_of >= 0)
    q_index = np.argwhere(ix.qpos_of[:, ix.slot_of] >= 0)
    y_index = np.argwhere(ix.ycol_of >= 0)
    result = SolveResult("optimal", "", solver=f"mpi-sppy {_version('mpi-sppy')} "
                         f"(multi-stage ph, {cut.stages} stages) + HiGHS",
                         solver_version=highs_version())
    lower = float(max(out["outer"], out["trivial_bound"]))
    upper = None
    meta: dict[str, pd.DataFrame] = {}
    if len(parts) != len(cut.names):
        result.status = "iteration_limit"
        result.message = (f"no plan: PH found no feasible xhat in {out['iterations']} "
                          "iterations; raise --max-iterations")
    else:
        # the merged scenarios' answers, then each original scenario's (its class's)
        Wm = len(cut.data.scenarios)
        merged: dict[str, np.ndarray] = {}
        for key in ("contracted_t", "delivered_t", "shortage_t", "stock_t", "surplus_t",
                    "avoided_t", "built_size"):
            first = parts[0][key]
            arr = np.zeros(first.shape[:2] + (Wm,))
            for p in parts:
                arr[:, :, cut.bundles[p["bundle"]]] = p[key]
            merged[key] = arr
        class_of = np.zeros(W, dtype=np.int64)
        for c, members in enumerate(cut.members):
            class_of[members] = c
        full = {key: arr[:, :, class_of] for key, arr in merged.items()}
        floors = [p["floors"] for p in parts if p["floors"] is not None]
        if floors:
            table = pd.concat(floors, ignore_index=True)
            names = pd.DataFrame({"scenario": [cut.data.scenarios[c] for c in class_of],
                                  "full": data.scenarios})
            table = table.merge(names, on="scenario").drop(columns="scenario") \
                .rename(columns={"full": "scenario"})
            meta["min_stock_days"] = table[["rule", "element", "period", "scenario"]]
            result.values["deficit"] = table["deficit_t"].to_numpy(float)
        result.values.update({
            "x": full["contracted_t"][tuple(x_index.T)],
            "q": full["delivered_t"][tuple(q_index.T)],
            "u": full["shortage_t"].reshape(-1), "stock": full["stock_t"].reshape(-1),
            "z": full["surplus_t"].reshape(-1), "r": full["avoided_t"].reshape(-1),
            "y": full["built_size"][tuple(y_index.T)] if len(y_index) else np.zeros(0)})
        view = BuiltModel(None, data, resolved, x_index, q_index, meta, [], 0.0,
                          y_index=y_index)
        costs = cost_breakdown(data, solution_arrays(view, result))["cost"].to_numpy()
        lam, alpha = data.risk_lambda, data.risk_alpha
        upper = float((1 - lam) * costs @ data.probability
                      + (lam * cvar(costs, data.probability, alpha) if lam > 0 else 0.0))
        result.objective = upper
    gap = None if upper is None else max(0.0, (upper - lower) / max(1.0, abs(upper)))
    if gap is not None and gap > settings.gap:
        result.status = "iteration_limit"
        result.message = (f"relative gap {gap:.3g} is above --gap {settings.gap:g} after "
                          f"{out['iterations']} iterations: raise --max-iterations")
    result.bound = lower
    result.solve_seconds = float(info["algorithm_seconds"])   # the wheel's wall time
    result.n_variables = len(x_index) + len(q_index) + 2 * E * W * len(data.periods)
    built = BuiltModel(None, data, resolved, x_index, q_index, meta, [], 0.0,
                       y_index=y_index)
    summary = base_summary(loaded, data, built, result, policy)
    summary.update({
        "engine": "mpisppy", "algorithm": "ph",
        "upper_bound": upper, "lower_bound": lower, "gap": gap,
        "gap_tolerance": settings.gap, "iterations": out["iterations"],
        "stages": cut.stages, "subproblems": len(cut.names),
        "merged_scenarios": len(cut.data.scenarios), "layout": out["layout"],
        "trivial_bound": out["trivial_bound"], "lagrangian_bound": out["outer"],
        "xhat_bound": out["inner"] if np.isfinite(out["inner"]) else None,
        "ranks": info.pop("ranks"),
        "algorithm_seconds": round(info.pop("algorithm_seconds"), 6),
        "evaluation_seconds": 0.0,
        "peak_rss_mib_per_rank": [round(v, 1) for v in info.pop("peak_rss_mib_per_rank")],
        "duals": "not computed by the mpisppy engine (see docs/outputs.md)",
    })
    return tabulate(RunResult(loaded, data, built, result, policy, summary))
