"""The built model as plain data: what the solve and results layers read.

Kept apart from :mod:`model.formulation.formulation` so that the matrix path and the
results layer do not import Pyomo.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from ..input.data import ProblemData
from .policies import ResolvedPolicy

META_COLUMNS = ["constraint", "rule", "element", "period", "country", "stage", "scenario",
                "sense", "rhs", "demand_t", "slot", "dnode"]
# slot: the recourse node (model.formulation.indexing) a row belongs to, -1 if none;
# dnode: the decision node of a plan row's latest contract, -1 if none.
# Both are model-internal; model.solve.expand turns them into per-scenario rows and
# a readable `node` label.


@dataclass
class BuiltModel:
    """A Pyomo model with the index arrays and row metadata needed to read it back."""

    model: Any                          # a Pyomo ConcreteModel, or None (matrix path)
    data: ProblemData
    policy: ResolvedPolicy
    # node level (as built): x (arc, period, decision node), q (arc, period, slot);
    # per scenario (after model.solve.expand): x and q both (arc, period, scenario)
    x_index: np.ndarray
    q_index: np.ndarray
    row_meta: dict[str, pd.DataFrame] = field(default_factory=dict)
    trivially_infeasible: list[str] = field(default_factory=list)
    build_seconds: float = 0.0
    matrix: Any = None                  # a matrix.LinearProgram when built without Pyomo
    index: Any = None                   # model.formulation.indexing.ModelIndex (node level only)
    floors: Any = None                  # model.formulation.indexing.StockFloorRows (node level only)
    y_index: Any = None                 # per scenario: (project, period decided, scenario)


