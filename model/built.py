"""The built model as plain data: what the solve and results layers read.

Kept apart from :mod:`model.formulation` so that the matrix path and the
results layer do not import Pyomo.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from .data import ProblemData
from .policies import ResolvedPolicy

META_COLUMNS = ["constraint", "rule", "element", "period", "country", "stage", "scenario",
                "sense", "rhs", "demand_t"]


@dataclass
class BuiltModel:
    """A Pyomo model with the index arrays and row metadata needed to read it back."""

    model: Any                          # a Pyomo ConcreteModel, or None (matrix path)
    data: ProblemData
    policy: ResolvedPolicy
    x_index: np.ndarray                 # (n_x, 2): arc, period of each contract variable
    q_index: np.ndarray                 # (n_q, 3): arc, period, scenario of each delivery
    row_meta: dict[str, pd.DataFrame] = field(default_factory=dict)
    trivially_infeasible: list[str] = field(default_factory=list)
    build_seconds: float = 0.0
    matrix: Any = None                  # a matrix.LinearProgram when built without Pyomo


