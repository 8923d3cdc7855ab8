r"""Several buyers: what cooperation is worth, and who should pay for it.

The cooperative cost game of DESIGN.md, "Several buyers". For an instance with
``buyers:`` (N, n of them) every coalition :math:`S \subseteq N`, :math:`S \ne
\emptyset`, is solved alone (model.api.solve_instance with ``buyers=S``: only
its members are in the model, they pool their entitlements and may move stock
to each other): :math:`v(S)` is its optimal objective, the members' total
(discounted) cost. Then:

* **value of cooperation**: :math:`\sum_i v(\{i\}) - v(N)`;
* **allocations** of :math:`v(N)` (what each buyer pays):

  - *Shapley*: :math:`\phi_i = \sum_{S \subseteq N \setminus i}
    \frac{|S|!\,(n-|S|-1)!}{n!}\,(v(S \cup i) - v(S))`, exact enumeration;
  - *nucleolus*: over the imputations (:math:`x(N) = v(N)`, :math:`x_i \le
    v(\{i\})`), the allocation that lexicographically maximises the smallest
    savings :math:`v(S) - x(S)` of the coalitions, by sequential LPs (Maschler,
    Peleg and Shapley 1979): each round maximises the smallest saving of the
    coalitions not yet fixed, then fixes those whose saving cannot exceed it;
  - *dual-based* (Owen 1975): the grand coalition's LP is solved once; each
    buyer pays the value of its resources at the optimal duals, the sum over
    every row and bound of (dual) x (the buyer's part of its right-hand side):
    its demand and opening stock (balance rows), shortage bounds, access and
    contract bounds, its own policy rows, its entitlements' part of the shared
    capacity and of the projects. The model is written so that :math:`v(S)` is
    at least the grand LP with only the members' resources (outsiders have
    none and can do nothing), so the duals are feasible for every coalition's
    LP and :math:`\sum_{i \in S} c_i \le v(S)`: the allocation is in the core.
    Not offered when a project is all-or-nothing (a MIP has no such duals);
  - *proportional* to total demand (the IEA rule): :math:`c_i = v(N)\, D_i /
    \sum_j D_j`, :math:`D_i` the buyer's base demand over every element and
    period, tonnes summed.

* **the core test** of each allocation: :math:`\sum_{i \in S} c_i \le v(S)` for
  every coalition, within :math:`10^{-6}` relative (:data:`CORE_TOLERANCE`).

More than :data:`MAX_COALITION_BUYERS` buyers is refused (2^n - 1 solves).
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pandas as pd

from ..api import RunResult, solve_instance
from ..errors import UsageError
from ..input.buyers import split_name
from ..input.data import problem_data
from ..input.instance import LoadedInstance, load_instance
from ..formulation.matrix import build_matrix
from ..formulation.policies import check_policy, policy_names, resolve_policy
from ..solve.solve import HighsModel, SolveOptions

MAX_COALITION_BUYERS = 10          # 2^10 - 1 = 1,023 solves
CORE_TOLERANCE = 1e-6              # relative, of v(S)
RULES = ("shapley", "nucleolus", "dual", "proportional")
RULE_WORDS = {"shapley": "Shapley value", "nucleolus": "nucleolus",
              "dual": "dual-based (Owen)", "proportional": "proportional to demand (IEA)"}


def label(members: tuple[str, ...]) -> str:
    """A coalition's name: its members joined by ``+`` (``JP+EU+US``)."""
    return "+".join(members)


@dataclass
class CoalitionStudy:
    """Every coalition's run and value, the allocations and their core tests."""

    loaded: LoadedInstance
    policy: str
    buyers: list[str]                              # in the instance's order
    runs: dict[tuple[str, ...], RunResult]         # one per coalition
    value: dict[tuple[str, ...], float] = field(default_factory=dict)
    allocations: dict[str, dict[str, float] | None] = field(default_factory=dict)
    why_not: dict[str, str] = field(default_factory=dict)   # rule -> why not offered
    demand_t: dict[str, float] = field(default_factory=dict)

    @property
    def grand(self) -> tuple[str, ...]:
        return tuple(self.buyers)

    @property
    def optimal(self) -> bool:
        return all(r.optimal for r in self.runs.values())

    @property
    def value_of_cooperation(self) -> float:
        return sum(self.value[(b,)] for b in self.buyers) - self.value[self.grand]


def coalitions(buyers: list[str]) -> list[tuple[str, ...]]:
    """Every non-empty coalition, by size, members in the instance's order."""
    return [c for k in range(1, len(buyers) + 1) for c in itertools.combinations(buyers, k)]


def coalition_study(instance: str | Path | LoadedInstance, policy: str = "none",
                    risk_lambda: float | None = None, risk_alpha: float | None = None,
                    options: SolveOptions | None = None,
                    progress: Callable[[str, int], None] | None = None) -> CoalitionStudy:
    """Solve every coalition of an instance's buyers and allocate the grand coalition's
    cost (see the module docstring). Raises UsageError for an instance without
    buyers, or with more than MAX_COALITION_BUYERS."""
    loaded = instance if isinstance(instance, LoadedInstance) else load_instance(instance)
    inst = loaded.instance
    check_policy(policy, policy_names(inst))
    if inst.buyers is None:
        raise UsageError(f"{loaded.name} has one buyer (no `buyers:`): there is no coalition "
                         "to form (docs/instance-format.md, Several buyers)")
    buyers = [b.id for b in inst.buyers]
    if len(buyers) > MAX_COALITION_BUYERS:
        raise UsageError(f"{len(buyers)} buyers make {2 ** len(buyers) - 1:,} coalitions; at "
                         f"most {MAX_COALITION_BUYERS} buyers are studied (2^n - 1 solves)")
    report = progress or (lambda what, done: None)
    study = CoalitionStudy(loaded, policy, buyers, {})
    for done, members in enumerate(coalitions(buyers)):
        report(label(members), done)
        run = solve_instance(loaded, policy, risk_lambda, risk_alpha, options,
                             buyers=list(members))
        study.runs[members] = run
        if run.optimal:
            study.value[members] = float(run.summary["objective"])
    grand = problem_data(loaded, risk_lambda, risk_alpha).buyers
    study.demand_t = {b: float(v) for b, v in zip(grand.ids, grand.demand_total_t)}
    if not study.optimal:
        return study
    v = study.value
    study.allocations["shapley"] = shapley(buyers, v)
    study.allocations["nucleolus"] = nucleolus(buyers, v)
    integer = [p.id for p in inst.projects if p.integer]
    if integer:
        study.allocations["dual"] = None
        study.why_not["dual"] = (f"project(s) {', '.join(integer)} are all-or-nothing: the "
                                 "model is a MIP, whose duals do not price the resources")
    else:
        study.allocations["dual"] = dual_allocation(loaded, policy, risk_lambda, risk_alpha,
                                                    options, v[study.grand])
    total = sum(study.demand_t.values())
    study.allocations["proportional"] = {
        b: v[study.grand] * (study.demand_t[b] / total if total > 0 else 1.0 / len(buyers))
        for b in buyers}
    return study


# --------------------------------------------------------------------------- allocations
def shapley(buyers: list[str], v: dict[tuple[str, ...], float]) -> dict[str, float]:
    """Exact Shapley value: each buyer's marginal cost averaged over the orders of joining."""
    n = len(buyers)
    out = {}
    for i in buyers:
        others = [b for b in buyers if b != i]
        phi = 0.0
        for k in range(n):
            weight = math.factorial(k) * math.factorial(n - k - 1) / math.factorial(n)
            for s in itertools.combinations(others, k):
                with_i = tuple(b for b in buyers if b in s or b == i)
                phi += weight * (v[with_i] - (v[s] if s else 0.0))
        out[i] = phi
    return out


def _linprog(c: np.ndarray, A_ub: Any, b_ub: Any, A_eq: Any, b_eq: Any,
             bounds: list[tuple[float | None, float | None]]) -> Any:
    from scipy.optimize import linprog

    res = linprog(c, A_ub=A_ub, b_ub=b_ub, A_eq=A_eq, b_eq=b_eq, bounds=bounds,
                  method="highs")
    if res.status != 0:
        raise RuntimeError(f"nucleolus LP: {res.message}")
    return res


def nucleolus(buyers: list[str], v: dict[tuple[str, ...], float],
              tol: float = 1e-9) -> dict[str, float]:
    """The nucleolus of the cost game over the imputations, by sequential LPs.

    Round k maximises :math:`\\epsilon` subject to :math:`v(S) - x(S) \\ge
    \\epsilon` for the coalitions not yet fixed, :math:`v(S) - x(S) = \\epsilon_j`
    for those fixed in round j, :math:`x(N) = v(N)`, :math:`x_i \\le v(\\{i\\})`;
    then each coalition whose saving is :math:`\\epsilon^*` is tested by an LP
    (its saving maximised with every other free saving at least
    :math:`\\epsilon^*`) and fixed when it cannot rise. It stops when the fixed
    coalitions determine x (rank n). Values are scaled to O(1) for the LPs."""
    n = len(buyers)
    grand = tuple(buyers)
    scale = max(1.0, max(abs(x) for x in v.values()))
    val = {s: x / scale for s, x in v.items()}
    proper = [s for s in coalitions(buyers) if s != grand]
    vec = {s: np.array([1.0 if b in s else 0.0 for b in buyers]) for s in proper}
    fixed: dict[tuple[str, ...], float] = {}
    free = list(proper)
    bounds = [(None, val[(b,)]) for b in buyers] + [(None, None)]
    x = np.full(n, val[grand] / n)
    for _ in range(len(proper) + 1):
        if not free:
            break
        # rows over (x, eps): eps + x(S) <= v(S) for S free
        A_ub = np.array([np.append(vec[s], 1.0) for s in free])
        b_ub = np.array([val[s] for s in free])
        eq = [np.append(np.ones(n), 0.0)] + [np.append(vec[s], 0.0) for s in fixed]
        b_eq = [val[grand]] + [val[s] - lvl for s, lvl in fixed.items()]
        res = _linprog(np.append(np.zeros(n), -1.0), A_ub, b_ub, np.array(eq),
                       np.array(b_eq), bounds)
        eps = -res.fun
        x = res.x[:n]
        tight = [s for s in free if val[s] - vec[s] @ x <= eps + 1e-7]
        newly = []
        for s in tight:        # tight at every optimum: its saving cannot rise above eps
            others = [o for o in free if o != s]
            A2 = np.array([np.append(vec[o], 0.0) for o in others]) if others else None
            b2 = np.array([val[o] - eps for o in others]) if others else None
            res2 = _linprog(np.append(vec[s], 0.0), A2, b2, np.array(eq), np.array(b_eq),
                            bounds[:n] + [(0.0, 0.0)])
            if val[s] - res2.fun <= eps + 1e-7:
                newly.append(s)
        if not newly:
            newly = tight[:1]
        for s in newly:
            fixed[s] = eps
            free.remove(s)
        rank = np.linalg.matrix_rank(np.array([np.ones(n)] + [vec[s] for s in fixed]))
        if rank >= n:
            break
    # the fixed coalitions determine x: solve them exactly
    rows = [np.ones(n)] + [vec[s] for s in fixed]
    rhs = [val[grand]] + [val[s] - lvl for s, lvl in fixed.items()]
    sol, *_ = np.linalg.lstsq(np.array(rows), np.array(rhs), rcond=None)
    if np.allclose(np.array(rows) @ sol, rhs, atol=1e-7):
        x = sol
    return {b: float(xi * scale) for b, xi in zip(buyers, x)}


def in_core(allocation: dict[str, float], v: dict[tuple[str, ...], float]
            ) -> tuple[bool, float, tuple[str, ...]]:
    """(in the core?, the largest excess sum_{i in S} c_i - v(S), its coalition), each
    coalition within CORE_TOLERANCE relative of v(S); the grand coalition's sum must
    equal v(N)."""
    worst, where, ok = -math.inf, (), True
    for s, vs in v.items():
        excess = sum(allocation[b] for b in s) - vs
        slack = CORE_TOLERANCE * max(1.0, abs(vs))
        if len(s) == len(allocation):
            ok &= abs(excess) <= slack
        elif excess > slack:
            ok = False
        if excess > worst and len(s) < len(allocation):
            worst, where = excess, s
    return ok, worst, where


def dual_allocation(loaded: LoadedInstance, policy: str, risk_lambda: float | None,
                    risk_alpha: float | None, options: SolveOptions | None,
                    v_grand: float) -> dict[str, float]:
    """Owen's allocation: the grand coalition's LP solved as one (matrix build, HiGHS),
    each buyer charged its resources at the optimal duals (module docstring).
    Checked: the charges add up to the optimum (strong duality) and that optimum is
    v(N) as solved by the pipeline."""
    data = problem_data(loaded, risk_lambda, risk_alpha)
    built = build_matrix(data, resolve_policy(loaded.instance, data, policy))
    hm = HighsModel(built, options)
    result = hm.solve()
    if not result.optimal:
        raise RuntimeError(f"the grand coalition's LP: {result.status}")
    sol = hm.highs.getSolution()
    row_dual = np.asarray(sol.row_dual, dtype=float)
    col_dual = np.asarray(sol.col_dual, dtype=float)
    lp = built.matrix
    owner_rows = _row_owners(built)
    owner_cols = _col_owners(built)
    charge = np.zeros(data.buyers.n)
    total = lp.offset
    for dual, lo, up, owners in ((row_dual, lp.row_lower, lp.row_upper, owner_rows),
                                 (col_dual, lp.col_lower, lp.col_upper, owner_cols)):
        active = _active_bound(dual, lo, up)
        amount = np.where(np.abs(dual) > 0, dual * active, 0.0)
        total += float(amount.sum())
        charge += owners.T @ amount
    obj = float(result.objective)
    if abs(total - obj) > 1e-6 * max(1.0, abs(obj)):
        raise RuntimeError(f"dual allocation: the resources at the duals add up to {total}, "
                           f"the optimum is {obj}")
    if abs(obj - v_grand) > 1e-6 * max(1.0, abs(v_grand)):
        raise RuntimeError(f"dual allocation: the grand coalition's LP has optimum {obj}, "
                           f"its run {v_grand}")
    return {b: float(c) for b, c in zip(data.buyers.ids, charge)}


def _active_bound(dual: np.ndarray, lo: np.ndarray, up: np.ndarray) -> np.ndarray:
    """The bound a dual prices: the lower one for a positive dual (HiGHS' sign for a
    minimisation), the upper one for a negative; 0 where the dual is 0."""
    side = np.where(dual > 0, lo, up)
    side = np.where(dual == 0, 0.0, side)
    noise = ~np.isfinite(side) & (np.abs(dual) <= 1e-7)    # round-off on a free side
    side = np.where(noise, 0.0, side)
    if not np.isfinite(side).all():
        bad = np.flatnonzero(~np.isfinite(side))
        raise RuntimeError(f"dual allocation: a nonzero dual on an infinite bound "
                           f"({len(bad)} of them, e.g. {dual[bad[0]]})")
    return side


def _shares_of_source(data: Any, source: str, element: str | None) -> np.ndarray:
    """(B,) each member's part of what the coalition holds of a source (entitlements)."""
    bd = data.buyers
    sid = list(data.sources["id"]).index(source)
    arcs = np.flatnonzero(data.arc_source == sid)
    if element is not None:
        arcs = arcs[np.array([bd.base_elements[bd.element_base[data.arc_element[k]]] == element
                              for k in arcs], dtype=bool)]
    first = arcs[bd.arc_group[arcs] == bd.arc_group[arcs[0]]] if len(arcs) else arcs
    held = np.zeros(bd.n)
    np.add.at(held, bd.arc_buyer(data.arc_element)[first], bd.entitlement[first])
    return held / held.sum() if held.sum() > 0 else np.full(bd.n, 1.0 / bd.n)


def _row_owners(built: Any) -> np.ndarray:
    """(rows, B) whose resource each row's right-hand side is: the buyer of its element
    (a member's own rows), the entitlements of a shared capacity or project row."""
    data, lp = built.data, built.matrix
    bd = data.buyers
    out = np.zeros((lp.A.shape[0], bd.n))
    projects = data.projects
    for family, (a, b) in lp.row_blocks.items():
        meta = built.row_meta.get(family)
        if b == a:
            continue
        if family in ("shared_contract_capacity", "shared_delivery_capacity"):
            for i, (src, el) in enumerate(zip(meta["rule"], meta["element"])):
                out[a + i] = _shares_of_source(data, src, el)
        elif family in ("project_size", "build"):
            for i, pid in enumerate(meta["rule"] if family == "project_size"
                                    else meta["element"]):
                p = projects.ids.index(pid)
                k = np.flatnonzero(projects.capacity[p].sum(axis=1) > 0)
                src = data.sources["id"].iloc[data.arc_source[k[0]]] if len(k) else None
                out[a + i] = _shares_of_source(data, src, None) if src is not None \
                    else np.full(bd.n, 1.0 / bd.n)
        elif family in ("transfer_pool", "contract_delivery", "min_take", "reduction",
                        "cvar_excess", "ambiguity_max", "ambiguity_excess"):
            continue              # right-hand side 0
        else:                     # a member's own rows: the buyer of the row's element
            for i, name in enumerate(meta["element"]):
                _, who = split_name(str(name))
                if not who:
                    raise RuntimeError(f"dual allocation: row {i} of {family} ({name}) "
                                       "belongs to no buyer")
                out[a + i, bd.ids.index(who)] = 1.0
    return out


def _col_owners(built: Any) -> np.ndarray:
    """(columns, B) whose resource each column's bounds are: the buyer of its arc or
    element (contracts, deliveries, shortage, stock); a project's size by the
    entitlements of its source; the rest have bounds 0 or infinite."""
    data, lp = built.data, built.matrix
    bd, ix = data.buyers, built.index
    out = np.zeros((lp.A.shape[1], bd.n))
    S = ix.n_slots
    for kind, (a, b) in lp.col_blocks.items():
        if b == a:
            continue
        if kind in ("x", "q"):
            idx = ix.x_index if kind == "x" else ix.q_index
            who = bd.arc_buyer(data.arc_element)[idx[:, 0]]
            out[a + np.arange(b - a), who] = 1.0
        elif kind in ("u", "stock"):
            who = bd.element_buyer[np.arange(b - a) // S]
            out[a + np.arange(b - a), who] = 1.0
        elif kind == "y":
            pj = data.projects
            for j, p in enumerate(ix.y_index[:, 0].tolist()):
                k = np.flatnonzero(pj.capacity[p].sum(axis=1) > 0)
                src = data.sources["id"].iloc[data.arc_source[k[0]]]
                out[a + j] = _shares_of_source(data, src, None)
    return out


# --------------------------------------------------------------------------- tables
def coalition_table(study: CoalitionStudy) -> pd.DataFrame:
    """coalition.csv: one row per coalition: its members, status, v(S), what it saves
    against its members alone, and each member's expected cost and shortage in it."""
    rows = []
    alone = {b: study.value.get((b,)) for b in study.buyers}
    for members, run in study.runs.items():
        row: dict[str, Any] = {"coalition": label(members), "members": len(members),
                               "status": run.summary["status"],
                               "value": study.value.get(members)}
        if run.optimal:
            per = run.summary["buyers"]
            row["saving"] = sum(alone[b] for b in members) - study.value[members] \
                if all(alone[b] is not None for b in members) else None
            row["expected_shortage_t"] = run.summary["expected_shortage_t"]
            for b in study.buyers:
                row[f"cost_{b}"] = per[b]["expected_cost"] if b in per else None
                row[f"shortage_{b}_t"] = per[b]["expected_shortage_t"] if b in per else None
        rows.append(row)
    return pd.DataFrame(rows)


def allocations_table(study: CoalitionStudy) -> pd.DataFrame:
    """allocations.csv: per rule and buyer: the cost allocated, the buyer's stand-alone
    cost v({i}), the saving, its share of v(N), and whether the rule's allocation is
    in the core (with its largest excess over a coalition's value and where)."""
    rows = []
    for rule in RULES:
        alloc = study.allocations.get(rule)
        if alloc is None:
            rows.append({"rule": rule, "buyer": "", "allocated_cost": None,
                         "stand_alone_cost": None, "saving": None, "share_of_total": None,
                         "in_core": None, "max_excess": None, "worst_coalition": "",
                         "note": study.why_not.get(rule, "")})
            continue
        ok, worst, where = in_core(alloc, study.value)
        for b in study.buyers:
            alone = study.value[(b,)]
            rows.append({"rule": rule, "buyer": b, "allocated_cost": alloc[b],
                         "stand_alone_cost": alone, "saving": alone - alloc[b],
                         "share_of_total": alloc[b] / study.value[study.grand]
                         if study.value[study.grand] else None,
                         "in_core": ok, "max_excess": worst, "worst_coalition": label(where),
                         "note": ""})
    return pd.DataFrame(rows)


def by_scenario_table(study: CoalitionStudy) -> pd.DataFrame:
    """buyers_by_scenario.csv: per buyer and scenario, its cost and shortage alone and in
    the grand coalition (its members' attribution, model.analysis.buyers), and the
    shortage the coalition avoids it (per element too)."""
    grand = study.runs[study.grand].tables["buyer_scenarios"]
    parts = []
    for b in study.buyers:
        alone = study.runs[(b,)].tables["buyer_scenarios"]
        mine = grand[grand["buyer"] == b].set_index("scenario")
        a = alone.set_index("scenario").loc[mine.index]
        out = pd.DataFrame({"buyer": b, "scenario": mine.index,
                            "probability": mine["probability"].to_numpy(),
                            "cost_alone": a["cost"].to_numpy(),
                            "cost_grand": mine["cost"].to_numpy(),
                            "shortage_alone_t": a["shortage_t"].to_numpy(),
                            "shortage_grand_t": mine["shortage_t"].to_numpy()})
        out["avoided_shortage_t"] = out["shortage_alone_t"] - out["shortage_grand_t"]
        for col in [c for c in mine.columns if c.startswith("shortage_") and c != "shortage_t"]:
            element = col[len("shortage_"):-2]
            out[f"shortage_alone_{element}_t"] = a[col].to_numpy()
            out[f"shortage_grand_{element}_t"] = mine[col].to_numpy()
        out["received_grand_t"] = mine["received_t"].to_numpy()
        out["sent_grand_t"] = mine["sent_t"].to_numpy()
        parts.append(out)
    return pd.concat(parts, ignore_index=True)


def summary_of(study: CoalitionStudy) -> dict[str, Any]:
    """summary.json of a coalition folder."""
    from .. import __version__

    T = len(study.loaded.instance.periods)
    out: dict[str, Any] = {
        "kind": "coalition", "instance": study.loaded.name,
        "instance_sha256": study.loaded.sha256, "overrides": list(study.loaded.overrides),
        "policy": study.policy, "buyers": study.buyers,
        "statuses": {label(m): r.summary["status"] for m, r in study.runs.items()},
        "values": {label(m): v for m, v in study.value.items()},
        "version": __version__, "periods": T,
        "currency": study.loaded.instance.currency}
    if study.optimal:
        out["value_of_cooperation"] = study.value_of_cooperation
        out["value_of_cooperation_per_period"] = study.value_of_cooperation / T
        out["allocations"] = study.allocations
        out["in_core"] = {r: (in_core(a, study.value)[0] if a is not None else None)
                          for r, a in study.allocations.items()}
        out["not_offered"] = study.why_not
        out["demand_t"] = study.demand_t
    return out


def save_coalition(study: CoalitionStudy, out: Path | None = None, force: bool = False,
                   results_root: Path = Path("results")) -> Path:
    """A coalition folder (docs/outputs.md): coalition.csv, allocations.csv,
    buyers_by_scenario.csv (and .md, .xlsx), the charts, summary.json, instance.yaml
    and one run folder per coalition (runs/<members joined by +>)."""
    from ..output import coalition_report
    from ..output.excel import write_excel
    from ..output.export import (_instance_copy, default_run_dir, markdown_table, save_run,
                                 write_csv, write_run_folder, write_summary)

    unique = out is None
    target = default_run_dir(results_root, study.loaded.name, f"coalition-{study.policy}") \
        if out is None else Path(out)
    cur = study.loaded.instance.currency

    def fill(tmp: Path) -> None:
        table = coalition_table(study)
        tables = {"coalition": table}
        if study.optimal:
            tables["allocations"] = allocations_table(study)
            tables["buyers_by_scenario"] = by_scenario_table(study)
        for name, t in tables.items():
            write_csv(tmp / f"{name}.csv", t)
        (tmp / "coalition.md").write_text(markdown_table(table, cur) + "\n")
        write_excel(tmp / "coalition.xlsx", tables, cur)
        if study.optimal:
            coalition_report.allocation_chart(tables["allocations"], tmp / "allocations.png",
                                              cur, study.loaded.name)
            coalition_report.shortage_chart(tables["buyers_by_scenario"], tmp / "shortage.png",
                                            study.loaded.name)
        _instance_copy(study.loaded, tmp)
        for members, run in study.runs.items():
            save_run(run, tmp / "runs" / label(members), charts=len(members) in
                     (1, len(study.buyers)))
        write_summary(tmp, summary_of(study))

    return write_run_folder(target, fill, force=force, unique=unique)
