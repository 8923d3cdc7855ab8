"""Numbers for people (model.output.formatting): units, fixed decimals, never e-notation,
in the console's Markdown tables as in the reports; CSVs keep exact numbers."""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd
import pytest

from model.output.export import markdown_table, write_csv
from model.output.formatting import cell, header, period_word, spec

E_NOTATION = re.compile(r"\d\.?\d*e[+-]\d+", re.I)


@pytest.mark.parametrize("value, kind, expected", [
    (2.39007e8, "delta_money_rate", "USD +239.0 m/yr"),
    (-1.5e6, "delta_money_rate", "USD -1.5 m/yr"),
    (-1e-7, "delta_money", "USD 0.0 m"),          # rounds to zero: no sign
    (9.71468e9, "money", "USD 9,714.7 m"),
    (927.7, "t", "927.7 t"),
    (-379.55, "delta_t", "-379.6 t"),
    (0.21146, "share", "21 %"),
    (0.005, "share", "0.5 %"),
    (0.0, "share", "0 %"),
    (-1.436e7, "per_t", "USD -14,360,000/t"),
    (0.6086917, "hhi", "0.609"),
    (float("nan"), "t", ""),
    (None, "money", ""),
    ("CN", "country", "CN"),
])
def test_cells_with_units(value: object, kind: str, expected: str) -> None:
    assert cell(value, kind, "USD", "yr", unit=True) == expected


def test_headers_carry_the_unit() -> None:
    assert header("expected_cost", "USD") == "expected cost (USD m)"
    assert header("delta_expected_cost_per_period", "EUR", "yr") == \
        "Δ expected cost per year (EUR m/yr)"
    assert header("shortage_t[jp-ban-2026]") == "shortage in jp-ban-2026 (t)"
    assert header("china_share_of_deliveries_refining") == \
        "China's share of deliveries, refining (%)"
    # a column nobody described yet is read by its name
    assert spec("delta_cash_per_year").kind == "delta_money_rate"
    assert header("stock_held_t") == "stock held (t)"
    assert spec("china_share_of_deliveries_mining").kind == "share"
    assert period_word(365) == "yr" and period_word(365.25) == "yr"
    assert period_word(91) == "period"


def test_markdown_has_units_and_no_e_notation_and_the_csv_keeps_exact_numbers(
        tmp_path: Path) -> None:
    table = pd.DataFrame({"policy": ["none", "crma|65"], "status": ["optimal"] * 2,
                          "expected_cost": [9464019809.175299, 11137070000.5],
                          "expected_shortage_t": [138.94750000000002, 330.1],
                          "china_share_of_deliveries_refining": [0.21146093371956437, 0.33411],
                          "delta_expected_cost_per_period": [0.0, 2.39007e8]})
    md = markdown_table(table, "USD", "yr")
    assert not E_NOTATION.search(md), md
    lines = md.splitlines()
    assert "expected cost (USD m)" in lines[0] and "(USD m/yr)" in lines[0]
    assert "9,464.0" in md and "138.9" in md and "| crma\\|65" in md and "+239.0" in md
    assert lines[1].count("--:") == 4           # numbers right-aligned, text left
    write_csv(tmp_path / "t.csv", table)
    back = pd.read_csv(tmp_path / "t.csv")
    assert back.expected_cost.tolist() == table.expected_cost.tolist()


def test_no_two_columns_share_a_header() -> None:
    """A header names one column: the shares table once showed the refining country
    under the mining country's header (both were "country"), one column lost."""
    from model.output.formatting import COLUMNS, format_frame

    labels = [c.label for c in COLUMNS if not c.name.endswith("[")]
    assert len(labels) == len(set(labels)), sorted(x for x in labels if labels.count(x) > 1)
    assert header("max_share_of_demand_mining_country") == "mining country"
    assert header("max_share_of_demand_refining_country") == "refining country"
    # were two labels ever the same, both columns stay, each under its own name
    table = pd.DataFrame({"a_b": ["x"], "a b": ["y"], "policy": ["p"]})
    shown = format_frame(table)
    assert list(shown.columns) == ["a b [a_b]", "a b [a b]", "policy"]
    assert shown.iloc[0].tolist() == ["x", "y", "p"]
