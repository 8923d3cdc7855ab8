"""Decomposition by independent blocks of elements.

Without rules that tie elements together (group caps and floors, a budget,
a CVaR term), every element is its own LP: its contracts, deliveries, stock
and shortage meet no other element's. :func:`element_blocks` finds the
connected components of elements under those couplings; :func:`solve_blocks`
solves each component as its own LP (in parallel processes when that pays)
and merges the answers into one :class:`~model.formulation.built.BuiltModel` and
:class:`~model.solve.solve.SolveResult` indexed exactly as the monolithic model, so
every table and number downstream means the same.
"""

from __future__ import annotations

import os
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import replace
from typing import Any

import numpy as np
import pandas as pd

from ..input.data import ProblemData, scenario_features
from ..formulation.built import BuiltModel
from ..formulation.policies import ResolvedPolicy, resolve_policy
from .expand import expand
from ..input.schema import Instance, Policy
from .solve import SolveOptions, SolveResult, highs_version, solve_model
from ..input.tree import Reduction, fan_reduction, reduce_scenarios

PARALLEL_MIN_DELIVERIES = 20_000   # below this, worker start-up costs more than it saves
STATUS_ORDER = ["error", "memory_limit", "interrupted", "unbounded", "infeasible",
                "iteration_limit", "time_limit", "optimal"]


def _worker_signals() -> None:
    """Pool workers leave Ctrl-C to the parent and die quietly when it stops them."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)


_JOBS: list[tuple[Any, ...]] = []   # read by forked workers: no pickling of the inputs


def _call_job(arg: tuple[Any, int]) -> Any:
    func, i = arg
    return func(_JOBS[i])


def run_jobs(func: Any, jobs: list[tuple[Any, ...]], weights: list[int],
             parallel: bool) -> list[Any]:
    """func(job) for every job, in forked worker processes when `parallel`.

    The jobs reach the workers through fork (copy-on-write memory), not
    pickling; only the answers travel back. Largest jobs go first so that the
    pool stays busy.
    """
    import multiprocessing as mp

    n_workers = min(len(jobs), os.cpu_count() or 1)
    if not parallel or n_workers < 2 or "fork" not in mp.get_all_start_methods():
        return [func(job) for job in jobs]
    global _JOBS
    _JOBS = jobs
    order = sorted(range(len(jobs)), key=lambda i: -weights[i])
    try:
        with ProcessPoolExecutor(max_workers=n_workers, initializer=_worker_signals,
                                 mp_context=mp.get_context("fork")) as pool:
            done = dict(zip(order, pool.map(_call_job, [(func, i) for i in order])))
    finally:
        _JOBS = []
    return [done[i] for i in range(len(jobs))]


def element_blocks(d: ProblemData, policy: ResolvedPolicy,
                   scenario_costs: bool = True, projects: bool = True) -> list[list[int]]:
    """Connected components of elements under the coupling rules (union-find).

    A CVaR term, an ambiguity set and a budget tie every element through each
    scenario's total cost; with ``scenario_costs=False`` they are left out
    (model.solve.coupled prices them between the blocks). A project ties the elements
    it yields or reduces; with ``projects=False`` it does not (model.solve.benders
    holds the builds in a master problem)."""
    E = len(d.elements)
    if scenario_costs and (d.scenario_costs_couple or policy.budgets):
        return [list(range(E))]
    parent = list(range(E))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    units: list[list[int]] = [u for r in policy.share_rules for _, u in r.units] + \
            [u for r in policy.stock_rules for _, u in r.units]
    if d.buyers is not None:    # several buyers share each element's sources (and stock)
        units += d.buyers.couplings()
    pj = d.projects if projects else None
    if pj is not None:          # a project couples the elements it yields or reduces
        for p in range(pj.n):
            arcs = np.flatnonzero(pj.capacity[p].sum(axis=1) > 0)
            elems = set(d.arc_element[arcs].tolist()) | \
                set(np.flatnonzero(pj.reduces[p].sum(axis=1) > 0).tolist())
            units.append(sorted(elems))
    for unit in units:
        for e in unit[1:]:
            parent[find(e)] = find(unit[0])
    blocks: dict[int, list[int]] = {}
    for e in range(E):
        blocks.setdefault(find(e), []).append(e)
    return list(blocks.values())


def subset_data(d: ProblemData, elements: list[int]) -> tuple[ProblemData, np.ndarray]:
    """The data of some elements only, and the full-model arc of each kept arc."""
    keep = np.isin(d.arc_element, elements)
    arcs = np.flatnonzero(keep)
    new_pos = {e: i for i, e in enumerate(elements)}
    groups = {g: [new_pos[e] for e in members if e in new_pos]
              for g, members in d.groups.items()}
    sub = replace(
        d, elements=[d.elements[e] for e in elements],
        arc_source=d.arc_source[arcs],
        arc_element=np.array([new_pos[e] for e in d.arc_element[arcs]], dtype=int),
        capacity_t=d.capacity_t[arcs], price=d.price[arcs], lead_time=d.lead_time[arcs],
        committed_t=d.committed_t[arcs], min_take=d.min_take[arcs],
        availability=d.availability[arcs], price_multiplier=d.price_multiplier[arcs],
        delivery_price=d.delivery_price[arcs], resale_price=d.resale_price[elements],
        emergency=d.emergency[elements],
        projects=d.projects.subset(arcs, elements) if d.projects is not None else None,
        base_demand_t=d.base_demand_t[elements], demand_t=d.demand_t[elements],
        shortage_penalty=d.shortage_penalty[elements],
        stock_initial_t=d.stock_initial_t[elements],
        stock_capacity_t=d.stock_capacity_t[elements], holding_cost=d.holding_cost[elements],
        terminal_value=(d.terminal_value[elements] if d.terminal_value is not None
                        else None),
        groups={g: m for g, m in groups.items() if m},
        buyers=None if d.buyers is None else d.buyers.subset(arcs, elements))
    return sub, arcs


def reduce_data(d: ProblemData, any_weights: bool = False, fixed_builds: bool = False
                ) -> tuple[ProblemData, Reduction]:
    """The data of `d` with the scenarios its block cannot tell apart merged (exact;
    with `any_weights` exact for any weights of the scenarios, see reduce_scenarios;
    with `fixed_builds` exact whatever size is fixed for each build column, as the
    blocks of model.solve.benders see them: the nodes at which a project of the
    block may be decided are never merged, so neither are their ancestors, and a
    build fixed at a node is data of that node alone).

    model.input.tree.reduce_scenarios decides which: under ``history`` nodes whose
    subtrees agree in this block's data and conditional probabilities, under
    ``clairvoyant`` scenarios identical in this block's data. One copy with the
    summed probability gives the same optimum; model.solve.expand maps the answer
    back onto every scenario.
    """
    W = len(d.scenarios)
    pj = d.projects
    has_projects = pj is not None and pj.n > 0
    if W == 1 or (has_projects and pj.integer.any() and d.scenario_costs_couple):
        # averaging all-or-nothing builds is not a build, and CVaR does not split
        # by subtree: no merging is known to be exact there
        return d, fan_reduction(W, d.decision_node, d.recourse_node, d.probability)
    rows = d.decision_row
    if has_projects:       # builds are decided at the tree's nodes, like lead-time contracts
        rows = np.maximum(rows, 1)
    features = scenario_features(d)
    if fixed_builds and has_projects:
        # a build decided in period t is taken at node decision_node[t + 1]: its
        # node id tells the node apart from every other of its period
        for t in np.flatnonzero(pj.decide.any(axis=0)):
            features[t] = np.column_stack([features[t],
                                           d.decision_node[t + 1].astype(float)])
    red = reduce_scenarios(features, d.probability, d.decision_node, d.recourse_node, rows,
                           d.information, any_weights)
    if red.trivial and np.array_equal(red.recourse_node, d.recourse_node):
        return d, red
    reps = red.representative
    merged = replace(d, scenarios=[d.scenarios[r] for r in reps], probability=red.probability,
                     availability=d.availability[:, :, reps],
                     price_multiplier=d.price_multiplier[:, :, reps],
                     delivery_price=d.delivery_price[:, :, reps],
                     emergency=d.emergency[:, :, reps],
                     demand_t=d.demand_t[:, :, reps], decision_node=red.decision_node,
                     recourse_node=red.recourse_node,
                     buyers=None if d.buyers is None else d.buyers.take_scenarios(reps))
    return merged, red


def _solve_block(args: tuple[Any, ...]) -> tuple[BuiltModel, SolveResult]:
    from ..formulation.matrix import build_matrix

    inst, sub, policy_name, extra, options, fixed = args
    merged, red = reduce_data(sub)
    built = build_matrix(merged, resolve_policy(inst, merged, policy_name, extra))
    if fixed is not None:          # a candidate's first stage (model.studies.sampling)
        from ..formulation.matrix import fix_decisions

        fix_decisions(built, fixed)
    return expand(sub, built, solve_model(built, options), red)


def _sweep_block(args: tuple[Any, ...]) -> tuple[BuiltModel, list[SolveResult]]:
    """One block's whole cap sweep on one persistent, warm-started HiGHS model."""
    from ..formulation.matrix import build_matrix
    from .solve import HighsModel

    inst, full, policy_name, extra, options, label, caps = args
    sub, red = reduce_data(full)
    built = build_matrix(sub, resolve_policy(inst, sub, policy_name, extra))
    if built.trivially_infeasible:
        bad = SolveResult("infeasible", "; ".join(built.trivially_infeasible))
        return expand(full, built, bad, red)[0], [bad for _ in caps]
    hm = HighsModel(built, options)
    meta = built.row_meta["max_single_country_share"]
    mine = (meta["rule"] == label).to_numpy()
    rhs = meta["rhs"].to_numpy(dtype=float).copy()
    demand = meta["demand_t"].to_numpy(dtype=float)
    results = []
    for i, cap in enumerate(caps):
        if i > 0:
            rhs[mine] = cap * demand[mine]
            hm.set_rhs("max_single_country_share", rhs)
        results.append(hm.solve())
    # the points share one model: its rows are expanded once, the values per point
    expanded = [expand(full, built, r, red, rows=i == 0) for i, r in enumerate(results)]
    return expanded[0][0], [r for _, r in expanded]


def _run_blocks(func: Any, d: ProblemData, blocks: list[list[int]], args: tuple[Any, ...],
                allow_parallel: bool = True) -> tuple[list[Any], list[np.ndarray], float]:
    """func((inst, block data, *rest)) for each block, in worker processes when the
    instance is big enough to pay for them. Returns the outcomes, each block's
    arcs in the full model, and the elapsed seconds."""
    t0 = time.perf_counter()
    inst, *rest = args
    subs = [subset_data(d, b) for b in blocks]
    size = int((d.capacity_t[:, :, None] * d.availability > 0).sum())
    outcomes = run_jobs(func, [(inst, sub, *rest) for sub, _ in subs],
                        [len(a) for _, a in subs],
                        allow_parallel and size >= PARALLEL_MIN_DELIVERIES)
    return outcomes, [a for _, a in subs], time.perf_counter() - t0


def sweep_blocks(inst: Instance, d: ProblemData, full_policy: ResolvedPolicy,
                 policy_name: str, extra: Policy, label: str, caps: list[float],
                 blocks: list[list[int]], options: SolveOptions | None = None
                 ) -> list[tuple[BuiltModel, SolveResult]]:
    """A cap sweep block by block (each warm-started), merged per cap value."""
    outcomes, arc_maps, _ = _run_blocks(_sweep_block, d, blocks,
                                        (inst, policy_name, extra, options, label, caps))
    return [_merge(d, full_policy, blocks, arc_maps, [(b, res[i]) for b, res in outcomes], 0.0,
                   rows=i == 0)
            for i in range(len(caps))]


def _variant_block(args: tuple[Any, ...]) -> list[tuple[BuiltModel, SolveResult]]:
    """One block under several variants of the instance (one value of an input each),
    solved in turn on one HiGHS model: a variant of the same shape only changes costs,
    bounds and coefficients, so it starts from the previous variant's basis."""
    from ..formulation.matrix import build_matrix
    from .solve import HighsModel

    variants, policy_name, options = args
    hm: HighsModel | None = None
    out = []
    for inst, sub in variants:
        merged, red = reduce_data(sub)
        built = build_matrix(merged, resolve_policy(inst, merged, policy_name))
        if built.trivially_infeasible:
            out.append(expand(sub, built, SolveResult(
                "infeasible", "; ".join(built.trivially_infeasible)), red, rows=False))
            continue
        if hm is None or not hm.load_changes(built):
            hm = HighsModel(built, options)
        out.append(expand(sub, built, hm.solve(), red, rows=False))
    return out


def variant_blocks(insts: list[Instance], datas: list[ProblemData],
                   policies: list[ResolvedPolicy], policy_name: str,
                   blocks: list[list[int]], options: SolveOptions | None = None
                   ) -> list[tuple[BuiltModel, SolveResult]]:
    """Several variants of an instance (a --param sweep) block by block, each block's
    variants warm-started one from the other, merged per variant (values only)."""
    subs = [[subset_data(d, b) for b in blocks] for d in datas]
    jobs = [([(inst, subs[v][i][0]) for v, inst in enumerate(insts)], policy_name, options)
            for i in range(len(blocks))]
    size = int((datas[0].capacity_t[:, :, None] * datas[0].availability > 0).sum())
    outcomes = run_jobs(_variant_block, jobs, [len(subs[0][i][1]) for i in range(len(blocks))],
                        size >= PARALLEL_MIN_DELIVERIES)
    arc_maps = [a for _, a in subs[0]]
    return [_merge(d, policies[v], blocks, arc_maps, [res[v] for res in outcomes], 0.0,
                   rows=False) for v, d in enumerate(datas)]


def _compare_block(args: tuple[Any, ...]) -> list[tuple[BuiltModel, SolveResult]]:
    """One block under every policy, on one union model re-solved warm (model.solve.switch)."""
    from .switch import solve_policies

    inst, sub, names, options = args
    merged, red = reduce_data(sub)
    answers = solve_policies(merged, [resolve_policy(inst, merged, n) for n in names], options)
    return [expand(sub, built, result, red) for built, result in answers]


def compare_blocks(inst: Instance, d: ProblemData, full_policies: list[ResolvedPolicy],
                   names: list[str], blocks: list[list[int]],
                   options: SolveOptions | None = None
                   ) -> list[tuple[BuiltModel, SolveResult]]:
    """Several policies block by block (one switched model per block), merged per policy.

    `blocks` must be independent under every policy's couplings at once
    (element_blocks of their union_policy).
    """
    outcomes, arc_maps, wall = _run_blocks(_compare_block, d, blocks, (inst, names, options))
    return [_merge(d, full_policies[i], blocks, arc_maps, [res[i] for res in outcomes],
                   wall / len(names))
            for i in range(len(names))]


def solve_blocks(inst: Instance, d: ProblemData, full_policy: ResolvedPolicy,
                 policy_name: str, extra: Policy | None, blocks: list[list[int]],
                 options: SolveOptions | None = None,
                 workers: int | None = None, fixed: Any = None
                 ) -> tuple[BuiltModel, SolveResult]:
    """Solve each block alone and merge into the monolithic model's indexing; `fixed`
    (model.formulation.matrix.FixedDecisions) holds decisions fixed in every block."""
    return solve_blocks_many(inst, d, [(full_policy, policy_name, extra, blocks)], options,
                             allow_parallel=workers is None or workers > 1, fixed=fixed)[0]


def solve_blocks_many(inst: Instance, d: ProblemData,
                      policies: list[tuple[ResolvedPolicy, str, Policy | None, list[list[int]]]],
                      options: SolveOptions | None = None, allow_parallel: bool = True,
                      fixed: Any = None) -> list[tuple[BuiltModel, SolveResult]]:
    """:func:`solve_blocks` for several policies at once: every policy's blocks go
    to one pool of workers, largest first, so that a policy with one large block
    (a cap per group) runs beside the other policies' small ones instead of
    leaving a core idle. Each block is built and solved exactly as alone, so each
    policy's answer is the one :func:`solve_blocks` gives it."""
    t0 = time.perf_counter()
    subs = {}        # the same element block under several policies is subset once
    jobs, weights, owner = [], [], []
    for k, (_, policy_name, extra, blocks) in enumerate(policies):
        for b in blocks:
            sub, arcs = subs.setdefault(tuple(b), subset_data(d, b))
            jobs.append((inst, sub, policy_name, extra, options, fixed))
            weights.append(len(arcs))
            owner.append(k)
    size = int((d.capacity_t[:, :, None] * d.availability > 0).sum())
    outcomes = run_jobs(_solve_block, jobs, weights,
                        allow_parallel and size >= PARALLEL_MIN_DELIVERIES)
    wall = time.perf_counter() - t0
    return [_merge(d, resolved, blocks, [subs[tuple(b)][1] for b in blocks],
                   [o for o, who in zip(outcomes, owner) if who == k], wall)
            for k, (resolved, _, _, blocks) in enumerate(policies)]


def _merge(d: ProblemData, policy: ResolvedPolicy, blocks: list[list[int]],
           arc_maps: list[np.ndarray], outcomes: list[tuple[BuiltModel, SolveResult]],
           wall: float, rows: bool = True) -> tuple[BuiltModel, SolveResult]:
    """The blocks' models and answers in the monolithic model's indexing
    (``rows=False``: values only, no row metadata or duals)."""
    E, T, W = d.demand_t.shape
    built_blocks = [b for b, _ in outcomes]
    results = [r for _, r in outcomes]
    x_index = np.concatenate([np.column_stack([amap[b.x_index[:, 0]], b.x_index[:, 1:]])
                              for b, amap in zip(built_blocks, arc_maps) if len(b.x_index)]
                             or [np.zeros((0, 3), int)])
    q_index = np.concatenate([np.column_stack([amap[b.q_index[:, 0]], b.q_index[:, 1:]])
                              for b, amap in zip(built_blocks, arc_maps) if len(b.q_index)]
                             or [np.zeros((0, 3), int)])
    # the monolithic order: x and q by (arc, period, scenario)
    x_order = np.lexsort((x_index[:, 2], x_index[:, 1], x_index[:, 0])) if len(x_index) \
        else np.zeros(0, int)
    q_order = np.lexsort((q_index[:, 2], q_index[:, 1], q_index[:, 0])) if len(q_index) \
        else np.zeros(0, int)
    names = [n for n in dict.fromkeys(k for b in built_blocks for k in b.row_meta)
             if rows or n == "min_stock_days"]
    meta = {name: pd.concat([b.row_meta[name] for b in built_blocks if name in b.row_meta],
                            ignore_index=True) for name in names}
    infeasible = [m for b in built_blocks for m in b.trivially_infeasible]
    # project sizes: each block's projects are some of the instance's, by id
    ids = d.projects.ids if d.projects is not None else []
    y_parts = [np.column_stack([np.array([ids.index(i) for i in b.data.projects.ids],
                                         dtype=np.int64)[b.y_index[:, 0]], b.y_index[:, 1:]])
               for b in built_blocks if b.y_index is not None and len(b.y_index)]
    y_index = np.concatenate(y_parts) if y_parts else np.zeros((0, 3), np.int64)
    y_order = np.lexsort((y_index[:, 2], y_index[:, 1], y_index[:, 0])) if len(y_index) \
        else np.zeros(0, int)
    merged_built = BuiltModel(None, d, policy, x_index[x_order], q_index[q_order], meta,
                              infeasible, sum(b.build_seconds for b in built_blocks),
                              y_index=y_index[y_order])
    worst = min(results, key=lambda r: STATUS_ORDER.index(r.status)
                if r.status in STATUS_ORDER else 0)
    status = worst.status
    names = ", ".join(d.elements[e] for b, r in zip(blocks, results) if r.status == status
                      for e in b)
    merged = SolveResult(
        status, worst.message if status == "optimal" else f"{worst.message} (elements {names})",
        solver_version=results[0].solver_version or highs_version(),
        handoff_seconds=sum(r.handoff_seconds for r in results),
        solve_seconds=sum(r.solve_seconds for r in results),
        n_variables=sum(r.n_variables for r in results),
        n_constraints=sum(r.n_constraints for r in results),
        mip=any(r.mip for r in results))
    merged.wall_seconds = wall  # type: ignore[attr-defined]
    merged.blocks = len(blocks)  # type: ignore[attr-defined]
    if not all(r.has_solution for r in results):
        return merged_built, merged
    merged.incumbent = status != "optimal"      # every block has a plan, some not optimal
    merged.objective = float(sum(r.objective for r in results))
    if merged.mip and all(r.bound is not None or not r.mip for r in results):
        bound = sum((r.bound if r.mip else r.objective) for r in results)
        merged.bound = float(bound)
        merged.mip_gap = max(0.0, (merged.objective - bound) / max(1.0, abs(merged.objective)))
    for key, order in (("y", y_order),):
        merged.values[key] = np.concatenate([r.values.get(key, np.zeros(0))
                                             for r in results])[order]
        merged.reduced_costs[key] = np.concatenate([r.reduced_costs.get(key, np.zeros(0))
                                                    for r in results])[order]
    for key in ("x", "q"):
        merged.values[key] = np.concatenate([r.values[key] for r in results])[
            x_order if key == "x" else q_order]
        merged.reduced_costs[key] = np.concatenate([r.reduced_costs[key] for r in results])[
            x_order if key == "x" else q_order]
    for key in ("u", "stock", "z", "r"):
        full = np.zeros((E, T, W))
        rc = np.zeros((E, T, W))
        for block, r in zip(blocks, results):
            full[block] = r.values[key].reshape(len(block), T, W)
            if key in r.reduced_costs:
                rc[block] = r.reduced_costs[key].reshape(len(block), T, W)
        merged.values[key] = full.reshape(-1)
        merged.reduced_costs[key] = rc.reshape(-1)
    for key in ("m_in", "m_out"):     # several buyers: stock moved between members
        if any(key in r.values for r in results):
            full = np.zeros((E, T, W))
            for block, r in zip(blocks, results):
                if key in r.values:
                    full[block] = r.values[key].reshape(len(block), T, W)
            merged.values[key] = full.reshape(-1)
    if any("deficit" in r.values for r in results):   # in the order of the merged rows
        merged.values["deficit"] = np.concatenate([r.values.get("deficit", np.zeros(0))
                                                   for r in results])
    merged.duals = {name: np.concatenate([r.duals[name] for r in results if name in r.duals])
                    for name in meta if rows}
    return merged_built, merged
