"""The value of the stochastic solution and of perfect information.

:func:`stochastic_metrics` computes WS, EEV, EVPI and VSS (DESIGN.md) from
solves of one instance: each scenario alone, the expected-value problem, and
the stochastic problem with the expected-value plan fixed.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..api import check_run_settings
from ..formulation.matrix import build, fix_shared_decisions
from ..formulation.policies import resolve_policy
from ..input.data import ProblemData, expected_value_data, problem_data, scenario_data
from ..input.instance import LoadedInstance
from ..solve.solve import SolveOptions, solve_model


def stochastic_metrics(loaded: LoadedInstance, policy: str = "none",
                       risk_lambda: float | None = None, risk_alpha: float | None = None,
                       options: SolveOptions | None = None,
                       rp: float | None = None) -> dict[str, Any]:
    """WS, EEV, EVPI = RP - WS and VSS = EEV - RP, in objective units.

    WS solves each scenario alone (with positive probability) and weights the
    optima. The expected-value problem replaces availability, shocked prices
    and demand by their means; EEV fixes its contracts and re-solves the second
    stage over all scenarios. A part that is infeasible is reported as None.
    """
    check_run_settings(risk_lambda, risk_alpha, options)
    inst = loaded.instance
    data = problem_data(loaded, risk_lambda, risk_alpha)

    def optimum(d: ProblemData, fix: tuple[np.ndarray, np.ndarray] | None = None
                ) -> tuple[Any, Any]:
        built = build(d, resolve_policy(inst, d, policy))
        if fix is not None:
            fix_shared_decisions(built, *fix)
        res = solve_model(built, options)
        return (res.objective if res.optimal else None), (built, res)

    if rp is None:
        rp, _ = optimum(data)
    ws_parts = []
    for w, p in enumerate(data.probability):
        if p > 0:
            value, _ = optimum(scenario_data(data, w))
            ws_parts.append(None if value is None else p * value)
    ws = None if any(v is None for v in ws_parts) else float(sum(ws_parts))
    ev, (ev_built, ev_res) = optimum(expected_value_data(data))
    eev = None
    if ev is not None:   # EEV fixes what the EV plan decides at nodes of every scenario
        ix = ev_built.index
        ev_x = np.zeros(ev_built.data.capacity_t.shape)
        ev_x[ix.x_index[:, 0], ix.x_index[:, 1]] = ev_res.values["x"]
        ev_y = np.zeros(ev_built.data.projects.decide.shape) if data.projects is not None \
            else np.zeros((0, len(data.periods)))
        if len(ix.y_index):
            ev_y[ix.y_index[:, 0], ix.y_index[:, 1]] = ev_res.values["y"] * ix.y_unit
        eev, _ = optimum(data, fix=(ev_x, ev_y))
    return {
        "rp": rp, "ws": ws, "ev": ev, "eev": eev,
        "evpi": None if rp is None or ws is None else rp - ws,
        "vss": None if rp is None or eev is None else eev - rp,
    }
