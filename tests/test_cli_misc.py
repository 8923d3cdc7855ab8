"""Smaller command-line contracts: verify on every folder kind, events errors, YAML 1.2."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import yaml

from conftest import base_instance, spot, write_instance
from model.studies.sweep import sweep_cap
from model.input.instance import instance_from_dict, load_instance
from model.input.schema import json_schema

ROOT = Path(__file__).resolve().parents[1]
CLI = [sys.executable, "-m", "model.cli"]


def _run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([*CLI, *args], capture_output=True, text=True, timeout=300)


def test_norway_is_a_country_not_a_boolean(tmp_path: Path) -> None:
    text = yaml.safe_dump(base_instance(sources=[spot("no", "SE", {"Nd": {
        "capacity": 10, "price": 5}})])).replace("mined_in: SE", "mined_in: NO")
    path = tmp_path / "no.yaml"
    path.write_text(text)
    assert load_instance(path).instance.sources[0].mined_in == "NO"


def test_json_schema_accepts_a_rule_or_a_list() -> None:
    cap = json_schema()["$defs"]["Policy"]["properties"]["max_single_country_share"]
    kinds = {json.dumps(option, sort_keys=True) for option in cap["anyOf"]}
    assert any('"type": "array"' in k for k in kinds)
    assert any('"$ref": "#/$defs/CountryCapRule"' in k and "array" not in k for k in kinds)


def test_verify_on_comparison_sweep_and_infeasible_folders(tmp_path: Path) -> None:
    inst = str(ROOT / "instances" / "example.yaml")
    assert _run("compare", inst, "-p", "none", "-p", "crma", "--out",
                str(tmp_path / "cmp")).returncode == 0
    proc = _run("verify", str(tmp_path / "cmp"))
    assert proc.returncode == 0 and proc.stdout.count("ok ") == 2, proc.stdout
    assert _run("sweep", inst, "--cap", "1,0.5", "--out", str(tmp_path / "sw")).returncode == 0
    proc = _run("verify", str(tmp_path / "sw"))
    assert proc.returncode == 2 and "sweep folder" in proc.stderr
    bad = write_instance(tmp_path, base_instance(
        sources=[spot("cn", "CN", {"Nd": {"capacity": 10, "price": 5}})],
        policies={"rec": {"min_recycled_share": {"share": 0.5}}}))
    proc = _run("solve", str(bad), "--policy", "rec", "--out", str(tmp_path / "inf"))
    assert proc.returncode == 3
    summary = json.loads((tmp_path / "inf" / "summary.json").read_text())
    assert summary["status"] == "infeasible" and "recycled sources" in summary["message"]
    proc = _run("verify", str(tmp_path / "inf"))
    assert proc.returncode == 0 and "not optimal" in proc.stdout


def test_bad_event_is_reported_in_the_events_file(tmp_path: Path) -> None:
    events = tmp_path / "events.yaml"
    events.write_text("events:\n  - id: ban\n    probability: 0.2\n    disruptions:\n"
                      "      - match: {mined_in: CN}\n        elements: [Dy, Xx]\n"
                      "        availability: 0\n")
    proc = _run("build", "scenarios", str(ROOT / "instances" / "example.yaml"),
                "--events", str(events), "--out", str(tmp_path / "out.yaml"))
    assert proc.returncode == 2
    assert f"{events}:6: events[0].disruptions[0].elements[1]: unknown element 'Xx'" \
        in proc.stderr.replace("\n", "")
    assert not (tmp_path / "out.yaml").exists()


def test_sweep_on_an_infeasible_policy_reports_every_point() -> None:
    inst = base_instance(sources=[spot("cn", "CN", {"Nd": {"capacity": 10, "price": 5}})],
                         policies={"rec": {"min_recycled_share": {"share": 0.5}}})
    frontier = sweep_cap(instance_from_dict(inst), [1.0, 0.5], "rec")
    assert frontier.status.tolist() == ["infeasible", "infeasible"]
    assert "recycled sources" in frontier.message.iloc[0]


def test_report_out_needs_force(tmp_path: Path) -> None:
    inst = str(ROOT / "instances" / "example.yaml")
    assert _run("solve", inst, "--out", str(tmp_path / "run")).returncode == 0
    page = tmp_path / "page.html"
    page.write_text("mine")
    proc = _run("report", str(tmp_path / "run"), "--out", str(page))
    assert proc.returncode == 2 and page.read_text() == "mine"
    assert _run("report", str(tmp_path / "run"), "--out", str(page), "--force").returncode == 0
    assert page.read_text().startswith("<!DOCTYPE html>")


def test_excel_sheets_hold_the_csv_tables(tmp_path: Path) -> None:
    """Every CSV table of a run folder reads back from its sheet of allocation.xlsx
    (numbers as numbers), under its header with the unit added."""
    import numpy as np
    import pandas as pd

    from model.output.export import write_excel
    from model.output.excel import excel_header

    table = pd.DataFrame({"source": ["AU-mine", "NO", "1e3"],
                          "period": pd.Series([2026, 2027, 2028], dtype=object),
                          "contracted_t": [1.5, np.nan, np.inf], "flag": [True, False, True]})
    write_excel(tmp_path / "t.xlsx", {"allocation": table}, "USD")
    back = pd.read_excel(tmp_path / "t.xlsx", sheet_name=None)
    assert list(back) == ["allocation"]
    got = back["allocation"]
    assert list(got.columns) == ["source", "period", "contracted (t)", "flag"]
    assert got["source"].tolist() == ["AU-mine", "NO", "1e3"]     # strings stay strings
    assert got["period"].tolist() == [2026, 2027, 2028]           # numbers stay numbers
    assert got["contracted (t)"].iloc[0] == 1.5 and got["contracted (t)"].iloc[1:].isna().all()
    assert got["flag"].tolist() == [True, False, True]

    run = tmp_path / "run"
    assert _run("solve", "--out", str(run)).returncode == 0
    currency = json.loads((run / "summary.json").read_text())["currency"]
    sheets = pd.read_excel(run / "allocation.xlsx", sheet_name=None, keep_default_na=False,
                           na_values=[""])   # NA is Namibia, not a missing value
    assert list(sheets)[:2] == ["summary", "contracts"]
    csvs = sorted(run.glob("*.csv"))
    assert len(csvs) >= 6
    for path in csvs:
        name = path.stem
        csv = pd.read_csv(path, keep_default_na=False, na_values=[""])
        if name not in sheets:   # a long table stays in its CSV, and the notes say so
            assert len(csv) > 20_000 and name in sheets["notes"]["table"].tolist(), name
            continue
        sheet = sheets[name]
        assert len(sheet) == len(csv), name
        headers = [excel_header(c, name, currency) if c not in sheet.columns else c
                   for c in csv.columns]
        assert headers == list(sheet.columns), name
        for col, head in zip(csv.columns, headers):
            if pd.api.types.is_numeric_dtype(csv[col]):
                assert pd.api.types.is_numeric_dtype(sheet[head]), (name, col)
                assert np.allclose(sheet[head].astype(float), csv[col].astype(float),
                                   equal_nan=True), (name, col)
            else:
                assert sheet[head].fillna("").astype(str).tolist() == \
                    csv[col].fillna("").astype(str).tolist(), (name, col)
