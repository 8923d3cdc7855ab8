"""Canonical form of a built LP, to check the matrix path against the Pyomo formulation."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from model.solve.solve import VARIABLES, HighsModel


def canonical_lp(built) -> dict:
    """Matrix, bounds and costs in the model's own (variable, row family) order.

    Columns the Pyomo compiler dropped (in no row and not in the objective) are
    zero columns; each row is scaled so that its first coefficient is positive.
    """
    hm = HighsModel(built)
    lp = hm.highs.getLp()
    A = sp.csc_matrix((np.asarray(lp.a_matrix_.value_), np.asarray(lp.a_matrix_.index_),
                       np.asarray(lp.a_matrix_.start_)), shape=(lp.num_row_, lp.num_col_))
    names = [n for n in VARIABLES if n in hm.col_of]
    col_map = np.concatenate([hm.col_of[n] for n in names])
    fams = list(built.row_meta)
    row_map = np.concatenate([hm.row_of[f] for f in fams])
    n_c, n_r = len(col_map), len(row_map)
    inv_c = np.full(lp.num_col_, -1)
    inv_c[col_map[col_map >= 0]] = np.flatnonzero(col_map >= 0)
    inv_r = np.full(lp.num_row_, -1)
    inv_r[row_map[row_map >= 0]] = np.flatnonzero(row_map >= 0)
    coo = A.tocoo()
    keep = (inv_r[coo.row] >= 0) & (inv_c[coo.col] >= 0)
    B = sp.csr_matrix((coo.data[keep], (inv_r[coo.row[keep]], inv_c[coo.col[keep]])),
                      shape=(n_r, n_c))
    lo = np.full(n_r, -np.inf)
    up = np.full(n_r, np.inf)
    ok = row_map >= 0
    lo[ok] = np.asarray(lp.row_lower_)[row_map[ok]]
    up[ok] = np.asarray(lp.row_upper_)[row_map[ok]]
    sign = np.ones(n_r)
    for i in range(n_r):
        row = B.getrow(i)
        if row.nnz:
            sign[i] = np.sign(row.data[np.argmin(row.indices)])
    B = sp.diags(sign) @ B
    lo, up = np.where(sign > 0, lo, -up), np.where(sign > 0, up, -lo)

    def cols(values, fill):
        out = np.full(n_c, fill)
        out[col_map >= 0] = np.asarray(values)[col_map[col_map >= 0]]
        return out

    return {"A": B.tocsr(), "row_lower": lo, "row_upper": up,
            "cost": cols(lp.col_cost_, 0.0), "col_lower": cols(lp.col_lower_, np.nan),
            "col_upper": cols(lp.col_upper_, np.nan), "offset": lp.offset_,
            "col_used": col_map >= 0}


def assert_same_lp(pyomo_built, matrix_built, rtol: float = 1e-12) -> None:
    a, b = canonical_lp(pyomo_built), canonical_lp(matrix_built)
    assert a["A"].shape == b["A"].shape, (a["A"].shape, b["A"].shape)
    diff = abs(a["A"] - b["A"])
    scale = max(1.0, abs(a["A"]).max() if a["A"].nnz else 1.0)
    assert (diff.max() if diff.nnz else 0.0) <= rtol * scale
    for key in ("row_lower", "row_upper", "cost"):
        np.testing.assert_allclose(a[key], b[key], rtol=rtol, atol=1e-9, err_msg=key)
    used = a["col_used"]  # bounds of columns the compiler dropped do not matter
    for key in ("col_lower", "col_upper"):
        np.testing.assert_allclose(a[key][used], b[key][used], rtol=rtol, err_msg=key)
    assert abs(a["offset"] - b["offset"]) <= 1e-9 * max(1.0, abs(a["offset"]))
