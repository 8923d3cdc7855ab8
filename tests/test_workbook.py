"""Excel workbooks (issue 16, item 4): formatted run, comparison and sweep workbooks,
and instances written to and read back from a workbook exactly."""

from __future__ import annotations

import io
import json
import math
import subprocess
import sys
from pathlib import Path
from typing import Any

import openpyxl
import pandas as pd
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from openpyxl.utils import get_column_letter

from model.input.builders import instance_to_dict, synthetic_instance
from model.errors import InstanceError, UsageError
from model.input.instance import instance_from_dict, load_instance
from model.input.workbook import _ESCAPED, instance_workbook, read_instance_workbook

ROOT = Path(__file__).resolve().parents[1]
CLI = [sys.executable, "-m", "model.cli"]
EXAMPLE = ROOT / "instances" / "example.yaml"
JAPAN = ROOT / "instances" / "japan_2026.yaml"


def _run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([*CLI, *args], capture_output=True, text=True, timeout=300)


def _round_trip(inst: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    blob = instance_workbook(inst)
    back = read_instance_workbook(io.BytesIO(blob), "t.xlsx").validate()
    return instance_to_dict(inst), instance_to_dict(back.instance)


def _sheet_rows(sheet: Any) -> list[tuple[Any, ...]]:
    return [tuple(r) for r in sheet.iter_rows(values_only=True)]


def _table_at(sheet: Any, first: str) -> tuple[int, list[Any], list[tuple[Any, ...]]]:
    """(header row number, header, rows below it) of the table whose header starts `first`."""
    rows = _sheet_rows(sheet)
    i = next(i for i, r in enumerate(rows) if r and r[0] == first)
    return i + 1, list(rows[i]), [r for r in rows[i + 1:] if any(v is not None for v in r)]


# --------------------------------------------------------------------------- instances
EDGE: dict[str, Any] = {
    # what a workbook finds awkward: text periods (one that looks like a number),
    # map keys of another type than the labels, empty maps and windows, empty texts,
    # ids that YAML would read as numbers or null, floats needing 17 digits,
    # control characters in free text, selectors as one id or a list, a policy
    # without rules, an exclusion that matches everything
    "schema": 1, "name": "edge  case", "description": "line one\r\nline two \x01 =1+1 \t tab",
    "currency": "EUR", "home": "JP", "periods": ["2026", "Q2", 7], "discount_rate": 0.1 + 0.2,
    "elements": ["Nd", "1e3", "x41_"], "groups": {"g": ["x41_", "Nd"], "NO": ["1e3"]},
    "demand": {"Nd": {2026: 1.0, "Q2": 2.0, 7: 0.0},
               "1e3": {"2026": 0.1 + 0.2, "Q2": 1e-7, 7: 123456789.12345679}, "default": 5},
    "shortage_penalty": {"default": 1e6},
    "stock": {"initial": {"default": 0.0}, "holding_cost": {"Nd": 3.3}},
    "resale_price": {"Nd": 2.5},
    "sources": [
        {"id": "true", "name": "", "mined_in": "NO", "refined_in": "CN", "mode": "contract",
         "reservation_fee": 0.05, "lead_time": 1, "min_take": 0.5, "available": {},
         "supply": {"Nd": {"capacity": {}, "price": {"2026": 1, "Q2": 2, 7: 3}},
                    "default": {"capacity": 10, "price": 4.5, "committed": {"Q2": 1.5},
                                "price_floor": 1, "price_cap": 9}}},
        {"id": "null", "mined_in": "AU", "refined_in": "AU", "mode": "spot", "recycled": True,
         "available": {"from": "Q2"}, "supply": {"1e3": {"capacity": {"Q2": 5}, "price": 7}}},
    ],
    "projects": [
        {"id": "p1", "source": "true", "capacity": {"Nd": 3, "1e3": {"Q2": 1}}, "cost": 1e6,
         "decide": {"until": 7}, "integer": True, "fixed_cost": 5, "max_size": 2,
         "build_time": 1},
        {"id": "0x1A", "name": "less", "reduces": {"Nd": {"2026": 0.5}}, "cost": 2,
         "decide": {}},
    ],
    "scenarios": [
        {"id": "a", "probability": 0.1 + 0.2, "description": ""},
        {"id": "b", "probability": 1 - (0.1 + 0.2), "description": "  spaced  ",
         "disruptions": [{"match": {"id": ["true", "null"], "mined_in": "NO"}, "elements": [],
                          "periods": ["2026", 7], "availability": 0.5, "emergency": True},
                         {"availability": 0.9}],
         "price_shocks": [{"match": {"mode": ["spot"], "recycled": False}, "multiplier": 2}],
         "demand_shocks": [{"elements": ["Nd"], "multiplier": 1.5}]},
    ],
    "policies": {
        "empty": {},
        "caps": {"max_single_country_share": [
            {"share": 0.5, "countries": ["CN"], "per": "group", "applies_to": "plan"},
            {"share": 0.7, "stages": ["refining"]}],
            "min_domestic_share": {"share": 0.1, "stage": "refining", "periods": [7]},
            "min_recycled_share": {"share": 0.0, "elements": ["1e3"]}},
        "other": {"exclude": [{"project": ["p1"]}, {"id": "null", "recycled": True}, {}],
                  "min_stock_days": {"days": 30, "refill": 2, "deficit_cost": 10},
                  "budget": {"amount": 1e12}, "build": {"project": "0x1A", "min_size": 0.5}},
    },
    "risk": {"lambda": 0.25, "alpha": 0.9}, "period_days": 91.25, "information": "clairvoyant",
}


# every field added for the briefing questions (issue 22): indices with a multiplier and
# a default path, supplies on them, notes and citations, a life, terminal values, a
# phased share, a policy with build_stock only, period maps with `default`
BRIEFING = {
    "schema": 1, "name": "briefing", "home": "JP", "periods": [2026, 2027, 2028],
    "elements": ["Nd", "Dy"], "discount_rate": 0.05,
    "demand": {"Nd": {2026: 100, "default": 120}, "Dy": 10},
    "shortage_penalty": {"default": 1e6},
    "stock": {"initial": {"Dy": 3}, "terminal_value": {"Dy": 2.0e5, "default": 5e4}},
    "indices": {"cn": {"Nd": {2026: 1.8e5, 2027: 1.9e5, "default": 2e5}, "default": 3e5,
                       "multiplier": 1.25}},
    "sources": [
        {"id": "cn", "mined_in": "CN", "refined_in": "CN", "mode": "spot",
         "supply": {"Nd": {"capacity": 500, "index": "cn", "premium": 1.08},
                    "Dy": {"capacity": 50, "index": "cn"}},
         "notes": "line one, with a comma: and a colon\nline two\ttabbed",
         "sources": ["[P1] SMM, 13 Feb 2026: https://example.org/a,b", "DOMAIN 7: China row"]},
        {"id": "au", "mined_in": "AU", "refined_in": "MY",
         "supply": {"default": {"capacity": 40, "price": {2026: 1e5, "default": 1.1e5}}}}],
    "projects": [{"id": "plant", "source": "au", "capacity": {"Dy": 5}, "cost": 1e7,
                  "build_time": 1, "life": 20, "notes": "estimate", "sources": ["one"]}],
    "scenarios": [{"id": "a", "probability": 0.5, "notes": "why 0.5", "sources": ["x"]},
                  {"id": "b", "probability": 0.5,
                   "price_shocks": [{"match": {"index": "cn"}, "multiplier": 2.0}]}],
    "policies": {"no-stock": {"build_stock": False, "notes": "what holding stock is worth"},
                 "phased": {"max_single_country_share": {"share": {2027: 0.8, 2028: 0.65}},
                            "sources": ["CRMA Art. 5"], "build_stock": False}},
}


def _instances() -> list[Any]:
    return [
        pytest.param(lambda: instance_from_dict(BRIEFING).instance, id="briefing-fields"),
        pytest.param(lambda: load_instance(EXAMPLE).instance, id="example"),
        pytest.param(lambda: load_instance(JAPAN).instance, id="japan_2026"),
        pytest.param(lambda: instance_from_dict(synthetic_instance(6, 5, 4, 7, 1)).instance,
                     id="synthetic-history"),
        pytest.param(lambda: instance_from_dict(synthetic_instance(
            4, 3, 5, 6, 2, information="clairvoyant")).instance, id="synthetic-clairvoyant"),
        pytest.param(lambda: instance_from_dict(EDGE).instance, id="edge"),
        pytest.param(lambda: instance_from_dict({k: v for k, v in EDGE.items()
                                                 if k != "scenarios"}).instance,
                     id="no-scenarios"),
    ]


@pytest.mark.parametrize("make", _instances())
def test_instance_round_trips_exactly(make: Any) -> None:
    want, got = _round_trip(make())
    assert got == want


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(demand=st.floats(0, 1e15), capacity=st.floats(0, 1e15), price=st.floats(0, 1e15),
       probability=st.floats(0, 1), days=st.floats(0, 3000),
       description=st.text(st.characters(blacklist_categories=("Cs", "Cn")), max_size=40))
def test_any_numbers_and_text_round_trip(demand: float, capacity: float, price: float,
                                         probability: float, days: float,
                                         description: str) -> None:
    assume(not _ESCAPED.search(description))
    data = instance_to_dict(load_instance(EXAMPLE).instance)
    data["description"] = description
    data["demand"]["Nd"] = demand
    data["sources"][0]["supply"]["Nd"]["capacity"] = capacity
    data["sources"][1]["supply"]["Dy"]["price"] = {2026: price, 2027: price / 3, 2028: 0.0}
    data["scenarios"][0]["probability"] = probability
    data["scenarios"][1]["probability"] = 1.0 - probability
    data["policies"]["resilient"]["min_stock_days"][0]["days"] = days
    want, got = _round_trip(instance_from_dict(data).instance)
    assert got == want


def test_a_text_that_looks_escaped_is_refused() -> None:
    data = instance_to_dict(load_instance(EXAMPLE).instance)
    data["sources"][0]["name"] = "Lynas _x000D_ plant"
    with pytest.raises(UsageError, match=r"sources\[0\]\.name holds '_x000D_'"):
        instance_workbook(instance_from_dict(data).instance)


def test_cli_export_and_read_back(tmp_path: Path) -> None:
    book, back = tmp_path / "japan.xlsx", tmp_path / "japan.yaml"
    proc = _run("export-instance", str(JAPAN), "--out", str(book))
    assert proc.returncode == 0, proc.stderr
    wb = openpyxl.load_workbook(book)
    assert wb.sheetnames == ["about", "instance", "elements", "groups", "demand", "indices",
                             "sources", "supply", "projects", "project_effects", "scenarios",
                             "scenario_rules", "policies"]
    # the common edits are plain cells: a demand, a capacity, a price, a probability
    assert _sheet_rows(wb["demand"])[1][:3] == ("Nd", None, 4461.6)
    supply = _sheet_rows(wb["supply"])
    assert ("china-spot", "Tb", "premium", "x index", 1.08) in [r[:5] for r in supply]
    indices = _sheet_rows(wb["indices"])
    assert ("cn-fob", "Dy", "USD/t", 305000) in [r[:4] for r in indices]
    assert ("jp-ban-2026", 0.1) in [r[:2] for r in _sheet_rows(wb["scenarios"])]
    proc = _run("build", "from-xlsx", str(book), "--out", str(back))
    assert proc.returncode == 0, proc.stderr
    assert instance_to_dict(load_instance(back).instance) == \
        instance_to_dict(load_instance(JAPAN).instance)
    # an existing output needs --force; a workbook must be called .xlsx
    before = book.read_bytes()
    proc = _run("export-instance", str(JAPAN), "--out", str(book))
    assert proc.returncode == 2 and "--force" in proc.stderr and book.read_bytes() == before
    assert _run("export-instance", str(JAPAN), "--out", str(book), "--force").returncode == 0
    proc = _run("export-instance", str(JAPAN), "--out", str(tmp_path / "j.xls"))
    assert proc.returncode == 2 and ".xlsx" in proc.stderr
    assert not (tmp_path / "j.xls").exists()


def _edited(tmp_path: Path, edit: Any) -> Path:
    book = tmp_path / "in.xlsx"
    book.write_bytes(instance_workbook(load_instance(EXAMPLE).instance))
    wb = openpyxl.load_workbook(book)
    edit(wb)
    wb.save(book)
    return book


def test_bad_workbook_names_sheet_and_cell_and_writes_nothing(tmp_path: Path) -> None:
    def negative_capacity(wb: Any) -> None:
        assert wb["supply"]["B2"].value == "Nd" and wb["supply"]["C2"].value == "capacity"
        wb["supply"]["E2"] = -5

    book = _edited(tmp_path, negative_capacity)
    out = tmp_path / "out.yaml"
    proc = _run("build", "from-xlsx", str(book), "--out", str(out))
    assert proc.returncode == 2
    assert f"{book}: supply!E2: must be non-negative, got -5" in proc.stderr.replace("\n", "")
    assert "Traceback" not in proc.stderr and not out.exists()
    assert list(tmp_path.iterdir()) == [book]


@pytest.mark.parametrize("edit, place, words", [
    (lambda wb: wb["scenarios"].cell(2, 2, "0.7"), "scenarios!B2", "must be a number"),
    (lambda wb: wb["scenarios"].cell(2, 2, 0.6), "scenarios!B1", "probabilities sum to 0.9"),
    (lambda wb: wb["demand"].cell(4, 2, 5), "demand!C4", "not both"),
    (lambda wb: wb["demand"].cell(1, 4, 2099), "demand!D1", "unknown period '2099'"),
    (lambda wb: wb["supply"].cell(3, 1, "lynas"), "supply!A3", "unknown source 'lynas'"),
    (lambda wb: wb["supply"].cell(1, 9, "notes"), "supply!I1", "unknown period 'notes'"),
    (lambda wb: wb["sources"].cell(1, 12, "avaliable"), "sources!L1",
     "unknown column 'avaliable' (did you mean 'available_from'?)"),
    (lambda wb: wb["sources"].cell(2, 6, "yes"), "sources!F2", "must be TRUE or FALSE"),
    (lambda wb: wb.create_sheet("notes"), "notes", "unknown sheet 'notes'"),
    (lambda wb: wb["instance"].cell(3, 1, "nmae"), "instance!A3",
     "unknown key 'nmae' (did you mean 'name'?)"),
    (lambda wb: wb["scenario_rules"].cell(2, 3, "{mined_in: [CN"), "scenario_rules!C2",
     "not valid YAML text"),
    (lambda wb: wb["scenario_rules"].cell(2, 4, "Dy, Xx"), "scenario_rules!D2",
     "unknown element 'Xx'"),
    (lambda wb: wb["policies"].cell(2, 2, "max_share"), "policies!B2", "unknown rule"),
    (lambda wb: wb["policies"].cell(2, 3, 1.5), "policies!C2", "must be at most 1"),
    (lambda wb: wb["demand"].cell(2, 2, "=1500*2"), "demand!B2",
     "a formula without a computed value"),
    # a number typed with thousands separators is text: say what to write instead
    (lambda wb: wb["elements"].cell(2, 2, "305,000"), "elements!B2",
     "'305,000' is text with a thousands separator: write 305000"),
    (lambda wb: wb["supply"].cell(2, 5, "1,500"), "supply!E2",      # all_periods: not a list
     "'1,500' is text with a thousands separator: write 1500"),
    (lambda wb: wb["demand"].cell(4, 3, "1,234.5"), "demand!C4", "write 1234.5"),
])
def test_bad_cells_are_named(tmp_path: Path, edit: Any, place: str, words: str) -> None:
    book = _edited(tmp_path, edit)
    with pytest.raises(InstanceError) as err:
        read_instance_workbook(book).validate()
    assert err.value.place == place and err.value.file == str(book)
    assert words in err.value.message


def test_not_a_workbook(tmp_path: Path) -> None:
    path = tmp_path / "x.xlsx"
    path.write_text("schema: 1\n")
    with pytest.raises(InstanceError, match="not an Excel workbook"):
        read_instance_workbook(path)


def test_rows_and_columns_can_be_added_and_reordered(tmp_path: Path) -> None:
    """An analyst's edits: a new source with its supply, columns in another order,
    blank rows in between, a formula with its computed value (as a spreadsheet saves it)."""
    def edit(wb: Any) -> None:
        src = wb["sources"]
        src.append([])
        src.append(["au-new", "A new mine", "AU", "AU", "spot"])
        sup = wb["supply"]
        sup.append(["au-new", "Dy", "capacity", None, 12])
        sup.append(["au-new", "Dy", "price", None, None, 500000, 510000, 520000])
        sc = wb["scenarios"]
        sc.move_range("A1:A3", cols=3)        # id moved to column D
        sc.delete_cols(1)

    book = _edited(tmp_path, edit)
    inst = read_instance_workbook(book).validate().instance
    new = inst.sources[-1]
    assert (new.id, new.name, new.mode) == ("au-new", "A new mine", "spot")
    assert new.supply["Dy"].capacity == 12.0
    assert new.supply["Dy"].price == {2026: 500000.0, 2027: 510000.0, 2028: 520000.0}
    assert [w.id for w in inst.scenarios] == ["normal", "china-heavy-ban"]


# --------------------------------------------------------------------------- outputs
@pytest.fixture(scope="module")
def japan_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from model.api import solve_instance
    from model.output.export import save_run

    run = solve_instance(JAPAN)
    return save_run(run, tmp_path_factory.mktemp("japan") / "run", charts=False)


def test_run_workbook_is_formatted(japan_run: Path) -> None:
    summary = json.loads((japan_run / "summary.json").read_text())
    wb = openpyxl.load_workbook(japan_run / "allocation.xlsx")
    assert wb.sheetnames[:2] == ["summary", "contracts"]
    alloc = wb["allocation"]
    header = [c.value for c in alloc[1]]
    n = len(pd.read_csv(japan_run / "allocation.csv"))
    assert alloc.freeze_panes == "A2"
    assert alloc.auto_filter.ref == f"A1:{get_column_letter(len(header))}{n + 1}"
    tonnes = header.index("contracted (t)") + 1
    share = header.index("share_of_demand (%)") + 1
    assert alloc.cell(2, tonnes).number_format == "#,##0.0"
    assert alloc.cell(2, share).number_format == "0.0%"
    assert alloc.cell(2, header.index("price (USD/t)") + 1).number_format == "#,##0"
    assert alloc.cell(2, header.index("period") + 1).number_format == "0"
    assert alloc.column_dimensions[get_column_letter(1)].width >= len("lynas-jare-ndpr")
    cost = wb["scenarios"][1][[c.value for c in wb["scenarios"][1]].index("cost (USD)")]
    assert wb["scenarios"].cell(2, cost.column).number_format == "#,##0"

    _, head, rows = _table_at(wb["summary"], "item")
    assert head[:3] == ["item", "value", "unit"]
    items = {r[0]: r for r in rows}
    assert items["status"][1] == "optimal"
    assert math.isclose(items["expected cost"][1], summary["expected_cost"], rel_tol=1e-15)
    assert items["expected cost"][2] == "USD"
    summed = items["expected shortage, all elements summed"]
    assert math.isclose(summed[1], summary["expected_shortage_t"], rel_tol=1e-15) \
        and summed[2] == "t"
    for e, t in summary["expected_shortage_by_element_t"].items():
        assert math.isclose(items[f"expected shortage of {e}"][1], t, rel_tol=1e-15, abs_tol=0)
    assert math.isclose(items["expected shortage at the penalty prices"][1],
                        summary["expected_shortage_value"], rel_tol=1e-15)
    assert items["largest third-country share, refining"][2] == "%"
    assert "build gbd-conversion" in items


def test_contracts_sheet_is_the_allocation_pivot(japan_run: Path) -> None:
    alloc = pd.read_csv(japan_run / "allocation.csv", keep_default_na=False, na_values=[""])
    alloc["x"] = alloc["contracted_t"] * alloc["node_probability"]
    want = alloc.groupby(["source", "element", "period"])["x"].sum()
    wb = openpyxl.load_workbook(japan_run / "allocation.xlsx")
    sheet = wb["contracts"]
    head_row, head, rows = _table_at(sheet, "source")
    assert sheet.freeze_panes == f"C{head_row + 1}"
    assert any("expected contract" in str(r[0]) for r in _sheet_rows(sheet)[:head_row])
    periods = [h for h in head if h not in ("source", "element", "mined_in", "refined_in",
                                            "total")]
    assert periods == [str(p) for p in range(2026, 2033)]
    contracted_from = set(alloc.loc[(alloc["mode"] == "contract") | (alloc["x"] > 0),
                                    "source"])
    assert {r[0] for r in rows} == contracted_from
    seen = 0
    for r in rows:
        values = dict(zip(head, r))
        for p in periods:
            key = (values["source"], values["element"], int(p))
            if key in want.index:
                assert math.isclose(values[p], want[key], rel_tol=1e-12, abs_tol=1e-9), key
                seen += 1
            else:
                assert values[p] is None, key
        assert math.isclose(values["total"], sum(values[p] or 0.0 for p in periods),
                            rel_tol=1e-12, abs_tol=1e-9)
    assert seen == len(want[want.index.get_level_values(0).isin(contracted_from)])
    # the lead-time source is decided at several nodes: its pivot is the expectation
    china = alloc[(alloc.source == "china-contract") & (alloc.period == 2027)]
    assert china["node"].nunique() > 1


def test_comparison_workbook_has_a_summary(tmp_path: Path) -> None:
    from model.studies.compare import compare_policies
    from model.output.export import save_comparison

    loaded = load_instance(EXAMPLE)
    table, runs = compare_policies(loaded, ["none", "crma"])
    folder = save_comparison(table, runs, loaded, tmp_path / "cmp")
    wb = openpyxl.load_workbook(folder / "comparison.xlsx")
    assert wb.sheetnames == ["summary", "contracts", "comparison", "cost_by_year"]
    _, head, rows = _table_at(wb["summary"], "measure")
    assert head == ["measure", "unit", "none", "crma"]
    measures = {r[0]: r for r in rows}
    ban = measures["shortage in china-heavy-ban (all elements summed)"]
    assert ban[1] == "t" and list(ban[2:]) == pytest.approx(
        table["shortage_t[china-heavy-ban]"].tolist(), rel=1e-15)
    avoided = measures["shortage avoided in china-heavy-ban vs none (all elements summed)"]
    assert list(avoided[2:]) == pytest.approx(
        table["avoided_shortage_t[china-heavy-ban]"].tolist(), rel=1e-15)
    per_period = measures["extra expected cost per period vs none"]
    assert per_period[1] == "USD" and per_period[3] == pytest.approx(
        table["delta_expected_cost_per_period"].iloc[1], rel=1e-15)
    assert "China's share of expected deliveries, refining" in measures
    # the headline cost split: money spent and shortage penalty per year, on the
    # cost's (discounted) basis, then undiscounted
    cash = measures["extra money spent per year vs none (discounted)"]
    penalty = measures["extra shortage penalty per year vs none (discounted)"]
    assert cash[3] == pytest.approx(table["delta_cash_per_year"].iloc[1], rel=1e-15)
    assert penalty[3] == pytest.approx(table["delta_penalty_per_year"].iloc[1], rel=1e-15)
    cash = measures["extra money spent per year vs none (undiscounted)"]
    assert cash[3] == pytest.approx(table["delta_cash_per_year_undiscounted"].iloc[1],
                                    rel=1e-15)
    for e in loaded.instance.elements:
        assert measures[f"expected shortage of {e}"][2:] == pytest.approx(
            table[f"expected_shortage_t[{e}]"].tolist(), rel=1e-15)
    by_year = pd.read_excel(folder / "comparison.xlsx", sheet_name="cost_by_year")
    assert len(by_year) == len(pd.read_csv(folder / "cost_by_year.csv"))
    assert "what binds (saving per t of relaxation)" in measures
    full = wb["comparison"]
    assert full.freeze_panes == "A2" and full.auto_filter.ref.startswith("A1:")
    # which suppliers and how much: contracted tonnes over the horizon per policy
    _, head, rows = _table_at(wb["contracts"], "source")
    assert head == ["source", "element", "none (t)", "crma (t)"]
    for i, policy in enumerate(["none", "crma"]):
        alloc = runs[policy].tables["allocation"]
        want = (alloc["contracted_t"] * alloc["node_probability"]).groupby(
            [alloc["source"], alloc["element"]]).sum()
        got = {(r[0], r[1]): r[2 + i] for r in rows}
        assert got == pytest.approx({k: v for k, v in want.items() if k in got}, rel=1e-15)
        assert {k for k, v in want.items() if v > 0} <= set(got)


def test_sweep_writes_a_workbook(tmp_path: Path) -> None:
    from model.studies.sweep import sweep_cap
    from model.output.export import save_sweep
    from model.input.folders import why_not_replaceable

    loaded = load_instance(EXAMPLE)
    frontier = sweep_cap(loaded, [1.0, 0.5])
    folder = save_sweep(frontier, {"policy": "none", "stage": "both", "per": "element",
                                   "caps": [1.0, 0.5]}, loaded, tmp_path / "sweep")
    wb = openpyxl.load_workbook(folder / "frontier.xlsx")
    assert wb.sheetnames == ["summary", "frontier"]
    _, head, rows = _table_at(wb["summary"], "cap (%)")
    assert head[:4] == ["cap (%)", "status", "expected_cost (USD)", "cvar (USD)"]
    assert [r[0] for r in rows] == [1.0, 0.5]
    assert [r[2] for r in rows] == pytest.approx(frontier["expected_cost"].tolist(), rel=1e-15)
    assert wb["summary"].cell(len(_sheet_rows(wb["summary"])), 1).number_format == "0.0%"
    assert why_not_replaceable(folder) is None     # --force may replace it


def test_long_tables_stay_in_csv(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import model.output.excel as excel

    monkeypatch.setattr(excel, "EXCEL_MAX_ROWS", 2)
    excel.write_excel(tmp_path / "t.xlsx", {"small": pd.DataFrame({"a_t": [1.0]}),
                                            "big": pd.DataFrame({"a_t": [1.0, 2.0, 3.0]})})
    wb = openpyxl.load_workbook(tmp_path / "t.xlsx")
    assert wb.sheetnames == ["small", "notes"]
    assert _sheet_rows(wb["notes"])[1] == ("big", 3, "over 2 rows: see big.csv")


def test_run_summary_shows_money_per_year_when_the_run_has_costs_by_year() -> None:
    from model.output.excel import run_summary_sheet

    by_year = pd.DataFrame({"scenario": ["expected", "expected", "ban"],
                            "period": [2026, 2027, 2026], "cash": [100.0, 300.0, 7.0],
                            "penalty": [10.0, 0.0, 5.0], "cash_discounted": [100.0, 200.0, 7.0],
                            "penalty_discounted": [10.0, 0.0, 5.0]})
    summary = {"instance": "x", "policy": "none", "status": "optimal", "currency": "USD",
               "objective": 1.0, "expected_cost": 1.0, "cvar": 1.0,
               "expected_shortage_t": 0.0, "worst_shortage_t": 0.0,
               "risk": {"lambda": 0.0, "alpha": 0.95}}
    rows = {r[0].value: r for r in run_summary_sheet(summary, by_year, "year").rows}
    assert rows["money spent per year, expected"][1].value == 150.0        # discounted
    assert rows["money spent per year, expected, undiscounted"][1].value == 200.0
    assert rows["shortage penalty per year, expected"][1].value == 5.0
    assert rows["money spent per year, expected"][2].value == "USD"
    assert "money spent per period, expected" not in \
        {r[0].value for r in run_summary_sheet(summary).rows}

