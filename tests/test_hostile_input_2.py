"""Hostile input, second round (issue 21): workbooks that exhaust memory, look-alike
countries that dodge caps, a verifier that can be fooled, lost folders, silent errors.

Each attack file is crafted here. Where an attack allocates, the command runs in a
subprocess whose address space is capped (RLIMIT_AS, 2 GiB), so a regression fails
the test instead of taking the machine down.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import resource
import shutil
import signal
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any, Callable

import pandas as pd
import pytest
import yaml
from typer.testing import CliRunner

from model.cli import app

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "instances" / "example.yaml"
CAP_BYTES = 2 * 1024 ** 3


def _cli(*args: Any, env: dict[str, str] | None = None) -> Any:
    return CliRunner().invoke(app, [str(a) for a in args], catch_exceptions=True, env=env)


def _capped() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (CAP_BYTES, CAP_BYTES))


def _sub(args: list[Any], cwd: Path, env: dict[str, str] | None = None,
         timeout: float = 240) -> Any:
    """The command line in a subprocess with its memory capped."""
    base = {k: v for k, v in os.environ.items() if k != "SOURCING_DEBUG"}
    return subprocess.run([sys.executable, "-m", "model.cli", *map(str, args)], cwd=cwd,
                          capture_output=True, text=True, timeout=timeout,
                          env={**base, **(env or {})}, preexec_fn=_capped)


def _code(result: Any) -> int:
    return result.exit_code if hasattr(result, "exit_code") else result.returncode


def _one_error(result: Any, *fragments: str) -> str:
    """Exit 2, one `error:` line holding every fragment, no traceback."""
    err = result.stderr
    assert _code(result) == 2, (_code(result), result.stdout, err[-2000:])
    assert "Traceback" not in err + result.stdout
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:"), err[-2000:]
    for fragment in fragments:
        assert fragment in err.replace("\n", ""), (fragment, err)
    return err


# --------------------------------------------------------------------------- workbooks
@pytest.fixture(scope="module")
def book(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("book") / "example.xlsx"
    assert _code(_cli("export-instance", EXAMPLE, "--out", out)) == 0
    return out


def _sheet_part(z: zipfile.ZipFile, name: str) -> str:
    wb = z.read("xl/workbook.xml").decode()
    rid = re.search(r'<sheet [^>]*name="%s"[^>]*r:id="([^"]+)"' % name, wb).group(1)
    rels = z.read("xl/_rels/workbook.xml.rels").decode()
    m = re.search(r'<Relationship [^>]*Id="%s"[^>]*/>' % rid, rels).group(0)
    target = re.search(r'Target="([^"]+)"', m).group(1)
    return target.lstrip("/") if target.startswith("/") else "xl/" + target


def _craft(src: Path, dst: Path, edits: dict[str, Callable[[str], str]],
           extra: dict[str, bytes] | None = None) -> Path:
    """A copy of workbook `src` with the XML of some parts edited; `edits` keys are sheet
    names (their worksheet part) or part names."""
    zin = zipfile.ZipFile(src)
    parts = {(_sheet_part(zin, k) if not k.startswith(("xl/", "[")) else k): fn
             for k, fn in edits.items()}
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as zout:
        for info in zin.infolist():
            data = zin.read(info)
            if info.filename in parts:
                data = parts[info.filename](data.decode()).encode()
            zout.writestr(info.filename, data)
        for name, data in (extra or {}).items():
            zout.writestr(name, data)
    dst.write_bytes(out.getvalue())
    return dst


def _rows_appended(xml: str, rows: str) -> str:
    return xml.replace("</sheetData>", rows + "</sheetData>", 1)


def test_a_merged_range_of_the_whole_sheet_costs_nothing(book: Path, tmp_path: Path) -> None:
    """A1:XFD1048576 merged in the (never read) about sheet: openpyxl's normal mode made
    17 billion cell objects inside load_workbook."""
    bad = _craft(book, tmp_path / "merged.xlsx", {"about": lambda x: x.replace(
        "</sheetData>", '</sheetData><mergeCells count="1"><mergeCell ref="A1:XFD1048576"/>'
                        "</mergeCells>", 1)})
    assert bad.stat().st_size < 20_000
    proc = _sub(["build", "from-xlsx", bad, "--out", tmp_path / "out.yaml"], tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert yaml.safe_load((tmp_path / "out.yaml").read_text())["name"] == "japan-magnets-2026"


def test_one_cell_at_the_last_cell_of_a_sheet_costs_nothing(book: Path, tmp_path: Path
                                                            ) -> None:
    bad = _craft(book, tmp_path / "far.xlsx", {"instance": lambda x: _rows_appended(
        x, '<row r="1048576"><c r="XFD1048576" t="inlineStr"><is><t>x</t></is></c></row>')})
    proc = _sub(["build", "from-xlsx", bad, "--out", tmp_path / "out.yaml"], tmp_path)
    _one_error(proc, "instance!XFD1048576", "a value without a key")


def test_a_workbook_of_too_many_cells_is_refused_before_it_is_read(book: Path,
                                                                   tmp_path: Path) -> None:
    """Many small cells that compress well (under the unpacked limit) would cost GBs."""
    rows = "".join(f'<row r="{r}"><c r="Z{r}"><v>1</v></c></row>' for r in range(5, 45_000))
    bad = _craft(book, tmp_path / "many.xlsx", {"groups": lambda x: _rows_appended(x, rows)})
    assert bad.stat().st_size < 1_000_000
    proc = _sub(["build", "from-xlsx", bad, "--out", tmp_path / "out.yaml"], tmp_path)
    _one_error(proc, "groups", "1,000,000 cells")
    assert not (tmp_path / "out.yaml").exists()


def test_the_unpacked_size_and_each_part_are_bounded(book: Path, tmp_path: Path) -> None:
    from model.input.workbook import MAX_PART_BYTES, MAX_UNZIPPED_BYTES

    huge = _craft(book, tmp_path / "huge.xlsx", {}, {"xl/media/pad.bin":
                                                     b"\0" * (MAX_UNZIPPED_BYTES + 1)})
    _one_error(_cli("build", "from-xlsx", huge, "--out", tmp_path / "o.yaml"),
               f"{MAX_UNZIPPED_BYTES // 1024 ** 2} MiB")
    styles = _craft(book, tmp_path / "styles.xlsx", {"xl/styles.xml": lambda x: x.replace(
        "</styleSheet>", "<!--" + " " * MAX_PART_BYTES + "--></styleSheet>")})
    _one_error(_cli("build", "from-xlsx", styles, "--out", tmp_path / "o.yaml"),
               "xl/styles.xml", f"{MAX_PART_BYTES // 1024 ** 2} MiB")


def test_a_formula_is_read_by_its_saved_value_with_a_warning(book: Path, tmp_path: Path
                                                             ) -> None:
    """=1500*2 saved with the stale value 30: it is read as 30, and the workbook says so."""
    bad = _craft(book, tmp_path / "stale.xlsx", {"demand": lambda x: re.sub(
        r'<c r="B2"( [^>]*)?>.*?</c>', '<c r="B2"><f>1500*2</f><v>30</v></c>', x, count=1)})
    result = _cli("build", "from-xlsx", bad, "--out", tmp_path / "out.yaml")
    assert result.exit_code == 0, result.stderr
    assert "demand!B2 holds the formula '=1500*2': read as 30" in result.stderr
    assert yaml.safe_load((tmp_path / "out.yaml").read_text())["demand"]["Nd"] == 30


def test_links_to_other_workbooks_are_refused(book: Path, tmp_path: Path) -> None:
    linked = _craft(book, tmp_path / "linked.xlsx", {"demand": lambda x: re.sub(
        r'<c r="B2"( [^>]*)?>.*?</c>', '<c r="B2"><f>[1]Sheet1!A1</f><v>3000</v></c>', x,
        count=1)})
    _one_error(_cli("build", "from-xlsx", linked, "--out", tmp_path / "o.yaml"),
               "demand!B2", "another workbook")
    part = _craft(book, tmp_path / "part.xlsx", {},
                  {"xl/externalLinks/externalLink1.xml": b"<externalLink/>"})
    _one_error(_cli("build", "from-xlsx", part, "--out", tmp_path / "o.yaml"),
               "external links")


def test_hidden_sheets_rows_and_columns_are_named(book: Path, tmp_path: Path) -> None:
    def hide_row(x: str) -> str:
        return x.replace('<row r="3"', '<row r="3" hidden="1"', 1)

    def hide_sheet(x: str) -> str:
        return re.sub(r'(<sheet [^>]*name="scenarios")', r'\1 state="veryHidden"', x)

    def hide_column(x: str) -> str:
        return x.replace("<sheetData>", '<cols><col min="2" max="2" hidden="1"/></cols>'
                         "<sheetData>", 1) if "<cols>" not in x else \
            re.sub(r"<cols>", '<cols><col min="2" max="2" hidden="1"/>', x, count=1)

    bad = _craft(book, tmp_path / "hidden.xlsx", {"supply": hide_row,
                                                  "xl/workbook.xml": hide_sheet,
                                                  "sources": hide_column})
    result = _cli("build", "from-xlsx", bad, "--out", tmp_path / "out.yaml")
    assert result.exit_code == 0, result.stderr
    assert "sheet 'scenarios' is very hidden" in result.stderr
    assert "sheet 'supply': hidden row(s) 3 hold values" in result.stderr
    assert "sheet 'sources': hidden column(s) B hold values" in result.stderr


# --------------------------------------------------------------------------- YAML
BOMB = "[" + ", ".join(["&a0 [x, x, x, x, x, x, x, x, x, x]"] +
                       [f"&a{i} [*a{i - 1}, *a{i - 1}, *a{i - 1}, *a{i - 1}, *a{i - 1}, "
                        f"*a{i - 1}, *a{i - 1}, *a{i - 1}, *a{i - 1}, *a{i - 1}]"
                        for i in range(1, 10)]) + "]"


def test_an_alias_bomb_in_set_or_values_is_refused(tmp_path: Path) -> None:
    assert len(BOMB) < 1500
    proc = _sub(["validate", EXAMPLE, "--set", f"demand.Nd={BOMB}"], tmp_path)
    err = _one_error(proc, "--set demand.Nd", "alias bomb")
    assert len(err) < 600
    proc = _sub(["sweep", EXAMPLE, "--param", "demand.Nd", "--values", BOMB], tmp_path)
    err = _one_error(proc, "--values", "alias bomb")
    assert len(err) < 600


def test_an_alias_bomb_in_a_workbook_cell_is_refused(book: Path, tmp_path: Path) -> None:
    bomb = BOMB.replace("&", "&amp;")
    bad = _craft(book, tmp_path / "bomb.xlsx", {"scenario_rules": lambda x: re.sub(
        r'<c r="C2"( [^>]*)?>.*?</c>', f'<c r="C2" t="inlineStr"><is><t>{bomb}</t></is></c>',
        x, count=1)})
    proc = _sub(["build", "from-xlsx", bad, "--out", tmp_path / "o.yaml"], tmp_path)
    _one_error(proc, "scenario_rules!C2", "alias bomb")


def test_a_value_error_never_shows_an_expansion(tmp_path: Path) -> None:
    """Within the node limit, a wrong value is quoted in a few characters."""
    small = "&a [&b [x, x, x, x, x, x, x, x], *b, *b, *b, *b, *b, *b, *b]"
    result = _cli("validate", EXAMPLE, "--set", f"demand.Nd={small}")
    err = _one_error(result, "demand.Nd")
    assert len(err) < 800 and "..." in err


# --------------------------------------------------------------------------- sizes
def test_the_model_size_is_bounded_before_anything_is_built(tmp_path: Path) -> None:
    """300 elements x 300 periods x 300 scenarios through `default`, a 20 KB file."""
    inst = yaml.safe_load(EXAMPLE.read_text())
    inst.update(elements=[f"E{i}" for i in range(300)], groups={},
                periods=list(range(2026, 2326)), demand={"default": 10},
                shortage_penalty={"default": 1e6}, stock={}, policies={},
                sources=[{"id": "cn", "mined_in": "CN", "refined_in": "CN", "mode": "spot",
                          "supply": {"default": {"capacity": 100, "price": 10}}}],
                scenarios=[{"id": f"w{i}", "probability": 0.5 if i < 2 else 0.0}
                           for i in range(300)])
    path = tmp_path / "big.yaml"
    path.write_text(yaml.safe_dump(inst))
    assert path.stat().st_size < 40_000
    for command in (["validate"], ["solve", "--out", tmp_path / "run"]):
        proc = _sub([command[0], path, *command[1:]], tmp_path)
        _one_error(proc, "1 sources", "300 elements", "300 periods", "300 scenarios",
                   "27,000,000", "5,000,000")
    assert not (tmp_path / "run").exists()


def test_the_api_bounds_the_model_too() -> None:
    from model.errors import UsageError
    from model.input.data import problem_data
    from model.input.instance import load_instance

    loaded = load_instance(EXAMPLE)
    inst = loaded.instance.model_copy(update={"elements": [f"E{i}" for i in range(2000)],
                                              "periods": list(range(1000))})
    with pytest.raises(UsageError, match="too large to build"):
        problem_data(inst)


# --------------------------------------------------------------------------- countries
@pytest.mark.parametrize("place, value", [("mined_in", "\u0421N"), ("refined_in", "CN\u200b"),
                                          ("home", "\u0408P"), ("mined_in", "XX"),
                                          ("home", "EU")])
def test_country_codes_are_iso_3166_alpha_2(tmp_path: Path, place: str, value: str) -> None:
    inst = yaml.safe_load(EXAMPLE.read_text())
    if place == "home":
        inst["home"] = value
    else:
        next(s for s in inst["sources"] if s["id"] == "china-spot")[place] = value
    path = tmp_path / "x.yaml"
    path.write_text(yaml.safe_dump(inst, allow_unicode=True))
    err = _one_error(_cli("validate", path), "ISO 3166-1 alpha-2")
    if not value.isascii():
        assert "not ASCII" in err


def test_every_bundled_country_is_an_iso_code() -> None:
    from model.input.instance import load_instance
    from model.safety import ISO_3166_ALPHA2

    assert len(ISO_3166_ALPHA2) == 249
    for path in sorted(p for p in (ROOT / "instances").glob("*.yaml")
                       if not p.name.endswith(".ranges.yaml")):    # ranges files
        inst = load_instance(path).instance
        homes = {inst.home} if inst.buyers is None else {c for b in inst.buyers for c in b.home}
        used = homes | {s.mined_in for s in inst.sources} | \
            {s.refined_in for s in inst.sources}
        assert used <= ISO_3166_ALPHA2 and {"JP", "CN", "AU", "MY", "US", "FR", "NA"} <= \
            ISO_3166_ALPHA2


# --------------------------------------------------------------------------- verify
@pytest.fixture(scope="module")
def run_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("runs") / "resilient"
    result = _cli("solve", EXAMPLE, "--policy", "resilient", "--out", out)
    assert result.exit_code == 0, result.stderr
    return out


def _copy(folder: Path, tmp_path: Path, name: str = "copy") -> Path:
    out = tmp_path / name
    shutil.copytree(folder, out)
    return out


def _rehash(folder: Path, *names: str) -> None:
    """What a forger does after editing files: record their new SHA-256 in summary.json."""
    summary = json.loads((folder / "summary.json").read_text())
    for name in names:
        digest = hashlib.sha256((folder / name).read_bytes()).hexdigest()
        summary["files"][name] = digest
        if name == "instance.yaml":
            summary["instance_sha256"] = digest
    (folder / "summary.json").write_text(json.dumps(summary))


def _verify_fails(folder: Path, *fragments: str) -> str:
    result = _cli("verify", folder)
    assert result.exit_code == 1, (result.exit_code, result.stdout, result.stderr)
    for fragment in fragments:
        assert fragment in result.stderr, (fragment, result.stderr)
    return result.stderr


def test_the_folder_verifies(run_folder: Path) -> None:
    assert _cli("verify", run_folder).exit_code == 0


def test_a_duplicated_allocation_row_fails(run_folder: Path, tmp_path: Path) -> None:
    """The last duplicate used to win: 999,999 t in it, the checked first row honest."""
    folder = _copy(run_folder, tmp_path)
    table = pd.read_csv(folder / "allocation.csv", keep_default_na=False)
    fake = table.iloc[[0]].assign(contracted_t=999_999.0)
    pd.concat([table, fake]).to_csv(folder / "allocation.csv", index=False)
    _rehash(folder, "allocation.csv")
    _verify_fails(folder, f"allocation.csv row {len(table) + 2}: duplicate of row 2")


def test_a_duplicated_balance_row_fails(run_folder: Path, tmp_path: Path) -> None:
    folder = _copy(run_folder, tmp_path)
    table = pd.read_csv(folder / "balance.csv", keep_default_na=False)
    hit = table.shortage_t.idxmax()
    fake = table.iloc[[hit]].assign(shortage_t=0.0)
    pd.concat([fake, table]).to_csv(folder / "balance.csv", index=False)
    _rehash(folder, "balance.csv")
    _verify_fails(folder, f"balance.csv row {hit + 3}: duplicate of row 2")


def test_the_information_rule_comes_from_the_hashed_instance(tmp_path: Path) -> None:
    """A clairvoyant plan passed off as history: instance.yaml says history (and is
    re-hashed), summary.json still says clairvoyant; verify checks history."""
    inst = yaml.safe_load(EXAMPLE.read_text())
    ban = inst["scenarios"][1]                     # the news arrives in 2027
    ban["disruptions"][0]["periods"] = [2027]
    ban["price_shocks"][0]["periods"] = ban["demand_shocks"][0]["periods"] = [2027, 2028]
    clair = tmp_path / "clair.yaml"
    clair.write_text(yaml.safe_dump({**inst, "information": "clairvoyant"}))
    folder = tmp_path / "run"
    assert _cli("solve", clair, "--out", folder).exit_code == 0
    assert _cli("verify", folder).exit_code == 0
    (folder / "instance.yaml").write_text(yaml.safe_dump({**inst, "information": "history"}))
    _rehash(folder, "instance.yaml")
    err = _verify_fails(folder, "history:")
    for a, b in re.findall(r"between scenarios (\S+) .*? and (\S+) ", err):
        assert a != b


def test_a_policy_the_instance_does_not_define_fails(run_folder: Path, tmp_path: Path
                                                     ) -> None:
    folder = _copy(run_folder, tmp_path)
    summary = json.loads((folder / "summary.json").read_text())
    summary["policy"] = "resilient".replace("e", "\u0435")      # Cyrillic e
    (folder / "summary.json").write_text(json.dumps(summary))
    _verify_fails(folder, "does not define")


def test_scenarios_and_duals_are_checked(run_folder: Path, tmp_path: Path) -> None:
    folder = _copy(run_folder, tmp_path, "scen")
    table = pd.read_csv(folder / "scenarios.csv", keep_default_na=False)
    table.loc[1, "cost"] = table.loc[1, "cost"] / 2
    table.to_csv(folder / "scenarios.csv", index=False)
    _rehash(folder, "scenarios.csv")
    _verify_fails(folder, "scenarios.csv row 3")
    folder = _copy(run_folder, tmp_path, "duals")
    duals = pd.read_csv(folder / "duals.csv", keep_default_na=False, dtype=str)
    pd.concat([duals, duals.iloc[[0]]]).to_csv(folder / "duals.csv", index=False)
    _rehash(folder, "duals.csv")
    _verify_fails(folder, f"duals.csv row {len(duals) + 2}: duplicate of row 2")


@pytest.mark.parametrize("name", ["allocation.xlsx", "tree.png", "scenarios.csv"])
def test_every_file_is_covered_by_its_sha256(run_folder: Path, tmp_path: Path,
                                             name: str) -> None:
    folder = _copy(run_folder, tmp_path)
    with open(folder / name, "ab") as fh:
        fh.write(b"\0")
    _verify_fails(folder, f"{name} has SHA-256")


def test_a_file_without_a_recorded_hash_fails(run_folder: Path, tmp_path: Path) -> None:
    folder = _copy(run_folder, tmp_path)
    summary = json.loads((folder / "summary.json").read_text())
    del summary["files"]["allocation.xlsx"]
    (folder / "summary.json").write_text(json.dumps(summary))
    _verify_fails(folder, "allocation.xlsx: no SHA-256 recorded")


def test_report_records_its_own_hash(run_folder: Path, tmp_path: Path) -> None:
    folder = _copy(run_folder, tmp_path)
    assert _cli("report", folder).exit_code == 0
    assert _cli("verify", folder).exit_code == 0
    (folder / "report.html").write_text("<p>all fine</p>")
    _verify_fails(folder, "report.html has SHA-256")


# --------------------------------------------------------------------------- report, verify
def test_a_crafted_balance_is_not_pivoted(run_folder: Path, tmp_path: Path) -> None:
    """40,000 elements and scenarios in a 1.7 MB balance.csv made a 40k x 40k pivot."""
    folder = _copy(run_folder, tmp_path)
    n = 40_000
    pd.DataFrame({"scenario": [f"w{i}" for i in range(n)], "probability": 1.0,
                  "element": [f"e{i}" for i in range(n)], "period": "2026",
                  "shortage_t": 1.0, "stock_t": 0.0}).to_csv(folder / "balance.csv",
                                                              index=False)
    for command in ("report", "verify"):
        proc = _sub([command, folder], tmp_path)
        _one_error(proc, "balance.csv", "bytes")


@pytest.mark.parametrize("command, name", [("report", "tree.png"),
                                           ("verify", "allocation.csv")])
def test_sparse_huge_files_are_not_read(run_folder: Path, tmp_path: Path, command: str,
                                        name: str) -> None:
    folder = _copy(run_folder, tmp_path)
    with open(folder / name, "r+b") as fh:
        fh.truncate(1_900_000_000)           # sparse: no disk used
    proc = _sub([command, folder], tmp_path)
    _one_error(proc, name, "MiB")


def test_exit_2_for_summaries_and_tables_that_are_not_ours(run_folder: Path,
                                                           tmp_path: Path) -> None:
    deep = _copy(run_folder, tmp_path, "deep")
    (deep / "summary.json").write_text(
        '{"instance": 1, "instance_sha256": 2, "version": 3, "status": "optimal", "x": '
        + "[" * 200_000 + "]" * 200_000 + "}")
    for command in ("verify", "report"):
        _one_error(_cli(command, deep), "summary.json", "nested too deep")
    riskless = _copy(run_folder, tmp_path, "riskless")
    summary = json.loads((riskless / "summary.json").read_text())
    del summary["risk"]
    (riskless / "summary.json").write_text(json.dumps(summary))
    for command in ("verify", "report"):
        _one_error(_cli(command, riskless), "risk")
    binary = _copy(run_folder, tmp_path, "binary")
    data = (binary / "balance.csv").read_bytes()
    (binary / "balance.csv").write_bytes(data[:100] + b"\xff" + data[100:])
    for command in ("verify", "report"):
        _one_error(_cli(command, binary), "balance.csv", "not a table written by sourcing")


# --------------------------------------------------------------------------- the rest
def test_an_infinite_gap_is_refused(tmp_path: Path) -> None:
    _one_error(_cli("solve", EXAMPLE, "--engine", "mpisppy", "--gap", "inf", "--out",
                    tmp_path / "r"), "--gap", "finite")
    from model.errors import UsageError
    from model.distributed import DecompositionSettings

    with pytest.raises(UsageError):
        DecompositionSettings(gap=float("inf"))


def test_an_alpha_too_close_to_1_is_refused_not_a_crash(tmp_path: Path) -> None:
    _one_error(_cli("solve", EXAMPLE, "--lambda", "1", "--alpha", "0.9999999999999999",
                    "--out", tmp_path / "r"), "--alpha", "0.999999")
    result = _cli("solve", EXAMPLE, "--lambda", "1", "--alpha", "0.999999", "--out",
                  tmp_path / "ok")
    assert result.exit_code == 0, result.stderr


def test_values_are_not_rounded_and_maps_can_be_listed() -> None:
    from model.studies.sweep import parse_values

    assert parse_values("1e-11:3e-11:1e-11") == [1e-11, 2e-11, 3e-11]
    assert parse_values("1.0:0.3:0.35") == [1.0, 0.65, 0.3]
    assert parse_values("{2026: 1, 2027: 2}, {2026: 3, 2027: 4}") == \
        [{2026: 1, 2027: 2}, {2026: 3, 2027: 4}]


def test_a_broken_values_list_is_exit_2(tmp_path: Path) -> None:
    _one_error(_cli("sweep", EXAMPLE, "--param", "demand.Dy", "--values", "{2026: 1, 2027",
                    "--out", tmp_path / "s"), "--values")


@pytest.mark.parametrize("variable", ["SLURM_PROCID", "PMI_RANK", "OMPI_COMM_WORLD_RANK"])
def test_rank_variables_do_not_silence_errors(tmp_path: Path, variable: str) -> None:
    proc = _sub(["validate", tmp_path / "missing.yaml"], tmp_path, env={variable: "3"},
                timeout=120)
    _one_error(proc, "no such file")


def test_an_interrupt_between_the_renames_of_force_loses_nothing(
        run_folder: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """SIGINT right after the old folder moved aside: it waits until the new one is in."""
    from model.output import export

    target = _copy(run_folder, tmp_path, "target")
    renames = []
    real_rename = os.rename

    def rename(a: Any, b: Any) -> None:
        real_rename(a, b)
        renames.append((a, b))
        if str(b).endswith("old"):
            os.kill(os.getpid(), signal.SIGINT)     # held back until both renames are done

    def fill(tmp: Path) -> None:
        (tmp / "summary.json").write_text((run_folder / "summary.json").read_text())
        (tmp / "new.txt").write_text("new")

    monkeypatch.setattr(os, "rename", rename)
    # Python's own SIGINT handler, whatever an earlier test of this worker process left
    # (a library that initialises MPI, say, may install its own)
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        with pytest.raises(KeyboardInterrupt):
            export.write_run_folder(target, fill, force=True)
    finally:
        signal.signal(signal.SIGINT, previous)
    assert len(renames) == 2
    assert (target / "new.txt").read_text() == "new"
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []
    assert target in export.PUBLISHED


def test_a_failed_second_rename_puts_the_old_folder_back(
        run_folder: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from model.errors import UsageError
    from model.output import export

    target = _copy(run_folder, tmp_path, "target")
    before = sorted(p.name for p in target.iterdir())
    real_rename = os.rename

    def rename(a: Any, b: Any) -> None:
        if str(a).endswith(".tmp"):
            raise OSError(28, "No space left on device")
        real_rename(a, b)

    monkeypatch.setattr(os, "rename", rename)
    with pytest.raises(UsageError, match="old folder is back in place"):
        export.write_run_folder(target, lambda tmp: (tmp / "x").write_text("x"), force=True)
    assert sorted(p.name for p in target.iterdir()) == before
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []
