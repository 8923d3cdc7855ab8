"""Hostile and careless input (issue 12): nothing is written outside the output
folder, no folder is emptied, no markup or escape sequence is injected.

Most commands run in-process through typer's CliRunner (fast); the tests that
need a process of their own (signals, a FIFO, the console entry point) use a
subprocess. Each class of the issue has its own section.
"""

from __future__ import annotations

import base64
import hashlib
import json
import math
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import yaml
from typer.testing import CliRunner

from conftest import base_instance, spot, write_instance
from model.cli import app

ROOT = Path(__file__).resolve().parents[1]
CLI = [sys.executable, "-m", "model.cli"]
ESC = "\x1b"


def _cli(*args: Any) -> Any:
    """Run the command line in this process; returns exit_code, stdout, stderr."""
    return CliRunner().invoke(app, [str(a) for a in args], catch_exceptions=True)


def _sub(args: list[Any], cwd: Path, timeout: float = 120, **kw: Any) -> Any:
    env = {k: v for k, v in os.environ.items() if k != "SOURCING_DEBUG"}
    return subprocess.run([*CLI, *map(str, args)], cwd=cwd, capture_output=True, text=True,
                          timeout=timeout, env=env, **kw)


def _code(result: Any) -> int:
    return result.exit_code if hasattr(result, "exit_code") else result.returncode


def _input_error(result: Any, *fragments: str) -> str:
    """Exit 2 with one `error:` message holding every fragment; no traceback, no escapes."""
    err = result.stderr
    assert _code(result) == 2, (_code(result), result.stdout, err,
                                getattr(result, "exception", None))
    assert "Traceback" not in err + result.stdout
    assert err.startswith("error:"), err
    assert ESC not in err
    for fragment in fragments:
        assert fragment in err, (fragment, err)
    return err


def _ok(result: Any) -> Any:
    assert _code(result) == 0, (_code(result), result.stdout, result.stderr,
                                getattr(result, "exception", None))
    assert "Traceback" not in result.stderr
    return result


def _good(**overrides: Any) -> dict[str, Any]:
    """One element, two scenarios, one spot and one contract source, a policy `cap`."""
    inst = base_instance(
        sources=[spot("cn", "CN", {"Nd": {"capacity": 100, "price": 10}}),
                 {"id": "au", "mined_in": "AU", "refined_in": "AU", "mode": "contract",
                  "supply": {"Nd": {"capacity": 60, "price": 20}}}],
        scenarios=[{"id": "normal", "probability": 0.8},
                   {"id": "ban", "probability": 0.2,
                    "disruptions": [{"match": {"mined_in": "CN"}, "availability": 0.0}]}],
        policies={"cap": {"max_single_country_share": {"share": 0.5}}})
    inst.update(overrides)
    return inst


def _write(tmp_path: Path, inst: dict[str, Any], name: str = "inst.yaml") -> Path:
    return write_instance(tmp_path, inst, name)


@pytest.fixture(scope="module")
def run_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A solved run folder of the tiny instance (copy it before changing it)."""
    tmp = tmp_path_factory.mktemp("hostile")
    _ok(_cli("solve", _write(tmp, _good()), "--policy", "cap", "--out", tmp / "run"))
    return tmp / "run"


def _copy(folder: Path, tmp_path: Path, name: str = "copy") -> Path:
    return Path(shutil.copytree(folder, tmp_path / name, symlinks=True))


# --------------------------------------------------------------------------- 1. names as paths
BAD_IDS = ["../../../outside", "/tmp/sourcing-abs", "a/b", ".", "..", "", "-rf", "=1+1",
           "+SUM(A1)", "@cmd", "a b", "x" * 101, "[/]", "x\ty", "é-umlaut"]


@pytest.mark.parametrize("name", BAD_IDS, ids=repr)
def test_policy_names_must_be_safe_ids(tmp_path: Path, name: str) -> None:
    path = _write(tmp_path, _good(policies={name: {"budget": {"amount": 1e6}}}))
    err = _input_error(_cli("validate", path), str(path), "policies.", "an id (")
    assert "letters, digits" in err


@pytest.mark.parametrize("place, change", [
    ("scenarios[1].id", lambda i: i["scenarios"][1].update(id="=HYPERLINK(1)")),
    ("sources[0].id", lambda i: i["sources"][0].update(id="../cn")),
    ("elements[0]", lambda i: i.update(elements=["-Nd"])),
    ("groups.a/b", lambda i: i.update(groups={"a/b": ["Nd"]})),
    ("periods[0]", lambda i: i.update(periods=["@2026"])),
    ("scenarios[0].id", lambda i: i["scenarios"][0].update(id="[red]x[/red]")),
])
def test_ids_must_be_safe(tmp_path: Path, place: str, change: Any) -> None:
    inst = _good()
    change(inst)
    path = _write(tmp_path, inst)
    _input_error(_cli("validate", path), f"{path}:", place, "an id (")


def test_safe_ids_with_inner_punctuation_are_fine(tmp_path: Path) -> None:
    inst = _good(periods=["2026-H1", "2026-H2"], elements=["Nd_oxide"],
                 demand={"Nd_oxide": 10}, groups={"light.ree": ["Nd_oxide"]})
    inst["sources"][0]["id"] = "cn.spot_2"
    inst["sources"][0]["supply"] = {"Nd_oxide": {"capacity": 100, "price": 10}}
    inst["sources"][1]["supply"] = {"default": {"capacity": 60, "price": 20}}
    inst["scenarios"][1]["id"] = "china-ban+lynas-outage"
    inst["policies"] = {"crma65+v2": {"budget": {"amount": 1e9}}, "_draft": {}}
    _ok(_cli("validate", _write(tmp_path, inst)))


def test_policy_names_differing_only_in_case_are_refused(tmp_path: Path) -> None:
    """On macOS and Windows runs/CAP and runs/cap are one folder."""
    path = _write(tmp_path, _good(policies={"cap": {}, "CAP": {}}))
    _input_error(_cli("validate", path), "policies.CAP", "only in case")
    path = _write(tmp_path, _good(policies={"None": {}}))
    _input_error(_cli("validate", path), "policies.None", "only in case")


def test_compare_cannot_write_outside_its_folder(tmp_path: Path) -> None:
    path = _write(tmp_path, _good(policies={"../../../outside": {}}))
    _input_error(_cli("compare", path, "-p", "none", "-p", "../../../outside",
                      "--out", tmp_path / "cmp" / "out"), "policies.../../../outside")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["inst.yaml"]


def test_event_ids_become_scenario_ids_and_are_checked(tmp_path: Path) -> None:
    events = tmp_path / "events.yaml"
    events.write_text(yaml.safe_dump({"events": [{"id": "=cmd|' /C calc'!A0",
                                                 "probability": 0.5}]}))
    out = tmp_path / "out.yaml"
    _input_error(_cli("build", "scenarios", _write(tmp_path, _good()), "--events", events,
                      "--out", out), f"{events}:", "events[0].id", "an id (")
    assert not out.exists()


def test_default_run_folder_name_is_tame(tmp_path: Path,
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """The instance name is free text: the default folder name is a bounded slug."""
    path = _write(tmp_path, _good(name="../." + "n" * 150))
    monkeypatch.chdir(tmp_path)
    _ok(_cli("solve", path))
    (folder,) = (tmp_path / "results").iterdir()
    assert not folder.name.startswith(".") and len(folder.name) <= 120
    assert (folder / "summary.json").is_file()


# --------------------------------------------------------------------------- 2. --force
@pytest.mark.parametrize("command", [["solve"], ["compare", "-p", "none"], ["sweep", "--cap", "1"]])
def test_force_never_empties_a_folder_it_did_not_write(tmp_path: Path,
                                                       command: list[str]) -> None:
    home = tmp_path / "home"
    home.mkdir()
    (home / "thesis.tex").write_text("years of work")
    # refused before the instance is even read (it does not exist here)
    _input_error(_cli(command[0], tmp_path / "missing.yaml", *command[1:], "--out", home,
                      "--force"), str(home), "not a folder written by sourcing")
    _input_error(_cli(command[0], _write(tmp_path, _good()), *command[1:], "--out", home,
                      "--force"), "not a folder written by sourcing")
    assert [p.name for p in home.iterdir()] == ["thesis.tex"]
    assert (home / "thesis.tex").read_text() == "years of work"


def test_force_replaces_only_an_untouched_run_folder(tmp_path: Path, run_folder: Path) -> None:
    inst = _write(tmp_path, _good())
    out = _copy(run_folder, tmp_path, "run")
    _ok(_cli("solve", inst, "--out", out, "--force"))         # a run folder: replaced
    _ok(_cli("report", out))
    _ok(_cli("solve", inst, "--out", out, "--force"))         # with its report: replaced
    (out / "notes.txt").write_text("mine")
    _input_error(_cli("solve", inst, "--out", out, "--force"), "notes.txt")
    assert (out / "notes.txt").read_text() == "mine"
    (out / "notes.txt").unlink()
    (out / "summary.json").write_text('{"something": "else"}')
    _input_error(_cli("solve", inst, "--out", out, "--force"), "not a folder written")


def test_force_replaces_comparison_and_sweep_folders_it_wrote(tmp_path: Path) -> None:
    inst = _write(tmp_path, _good())
    for command in (["compare", inst, "-p", "none", "-p", "cap"], ["sweep", inst, "--cap", "1"]):
        out = tmp_path / command[0]
        _ok(_cli(*command, "--out", out))
        _ok(_cli("report", out))
        first = out.stat().st_ino
        _ok(_cli(*command, "--out", out, "--force"))
        assert out.stat().st_ino != first
    (tmp_path / "compare" / "runs" / "none" / "mine.txt").write_text("mine")
    _input_error(_cli("compare", inst, "-p", "none", "--out", tmp_path / "compare", "--force"),
                 "runs/none", "mine.txt")


def test_force_does_not_follow_a_link(tmp_path: Path, run_folder: Path) -> None:
    real = _copy(run_folder, tmp_path, "real")
    (tmp_path / "link").symlink_to(real)
    _input_error(_cli("solve", _write(tmp_path, _good()), "--out", tmp_path / "link",
                      "--force"), "symbolic link")
    assert (tmp_path / "link").is_symlink() and (real / "allocation.csv").exists()


def test_force_on_the_current_folder_leaves_no_debris(tmp_path: Path) -> None:
    work = tmp_path / "work"
    work.mkdir()
    _write(work, _good())
    proc = _sub(["solve", "inst.yaml", "--out", ".", "--force"], work)
    _input_error(proc)
    assert sorted(os.listdir(work)) == ["inst.yaml"]
    assert sorted(os.listdir(tmp_path)) == ["work"]


def test_force_on_the_root_folder_is_refused(tmp_path: Path) -> None:
    before = sorted(os.listdir("/"))
    _input_error(_cli("solve", _write(tmp_path, _good()), "--out", "/", "--force"))
    assert sorted(os.listdir("/")) == before


def test_report_out_force_replaces_only_a_file(tmp_path: Path, run_folder: Path) -> None:
    folder = _copy(run_folder, tmp_path)
    target_dir = tmp_path / "page.html"
    target_dir.mkdir()
    (target_dir / "keep").write_text("keep")
    _input_error(_cli("report", folder, "--out", target_dir, "--force"), "not a regular file")
    assert (target_dir / "keep").read_text() == "keep"
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    (tmp_path / "link.html").symlink_to(victim)
    _input_error(_cli("report", folder, "--out", tmp_path / "link.html", "--force"),
                 "symbolic link")
    assert victim.read_text() == "precious" and (tmp_path / "link.html").is_symlink()


def test_build_out_force_replaces_only_a_file(tmp_path: Path) -> None:
    folder = tmp_path / "syn.yaml"
    folder.mkdir()
    (folder / "keep").write_text("keep")
    _input_error(_cli("build", "synthetic", "--sources", "2", "--elements", "1", "--periods",
                      "1", "--scenarios", "1", "--out", folder, "--force"),
                 "not a regular file")
    assert (folder / "keep").read_text() == "keep"


# --------------------------------------------------------------------------- 3. links in a folder
def test_report_never_writes_through_a_planted_link(tmp_path: Path, run_folder: Path) -> None:
    folder = _copy(run_folder, tmp_path)
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    (folder / ".report.html.tmp").symlink_to(victim)
    result = _cli("report", folder)
    assert _code(result) in (0, 2) and "Traceback" not in result.stderr
    assert victim.read_text() == "precious"


def test_report_does_not_embed_a_linked_chart(tmp_path: Path, run_folder: Path) -> None:
    folder = _copy(run_folder, tmp_path)
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP-SECRET-" * 20)
    (folder / "allocation_by_country.png").unlink()
    (folder / "allocation_by_country.png").symlink_to(secret)
    _input_error(_cli("report", folder), "allocation_by_country.png", "symbolic link")
    page = folder / "report.html"
    assert not page.exists() or base64.b64encode(secret.read_bytes()).decode()[:40] \
        not in page.read_text()


def test_verify_does_not_follow_links_either(tmp_path: Path, run_folder: Path) -> None:
    folder = _copy(run_folder, tmp_path)
    other = _copy(run_folder, tmp_path, "other")
    (folder / "instance.yaml").unlink()
    (folder / "instance.yaml").symlink_to(other / "instance.yaml")
    _input_error(_cli("verify", folder), "instance.yaml", "symbolic link")


@pytest.mark.parametrize("summary", ['{"status": "optimal"', '[1, 2]', '{"kind": "run"}',
                                     '{"instance": "x", "instance_sha256": "0", "version": "1",'
                                     ' "kind": "bogus"}'])
def test_a_summary_not_written_by_sourcing_is_refused(tmp_path: Path, run_folder: Path,
                                                      summary: str) -> None:
    folder = _copy(run_folder, tmp_path)
    (folder / "summary.json").write_text(summary)
    for command in ("report", "verify"):
        _input_error(_cli(command, folder), "summary.json")


def test_report_holds_no_absolute_path(tmp_path: Path, run_folder: Path) -> None:
    folder = _copy(run_folder, tmp_path)
    _ok(_cli("report", folder))
    page = (folder / "report.html").read_text()
    assert str(tmp_path) not in page and str(folder.resolve()) not in page


def test_report_escapes_names(tmp_path: Path) -> None:
    inst = _good(name="<script>alert(1)</script>", description="<b onmouseover=x>",
                 currency="<i>")
    inst["sources"][0]["name"] = "<img src=x onerror=alert(2)>"
    inst["scenarios"][1]["description"] = "</td><script>alert(3)</script>"
    _ok(_cli("solve", _write(tmp_path, inst), "--out", tmp_path / "run"))
    _ok(_cli("report", tmp_path / "run"))
    page = (tmp_path / "run" / "report.html").read_text()
    for raw in ("<script>alert", "<img src=x", "<b onmouseover", "<i>"):
        assert raw not in page, raw


# --------------------------------------------------------------------------- 4. markup, escapes
MARKUP_NAME = "[red]x[/red]:100:[/][bold]$\\undefined{$"


def test_markup_in_names_is_printed_and_drawn_literally(tmp_path: Path) -> None:
    inst = _good(name=MARKUP_NAME, currency="US$[/]:100:$\\x$")
    inst["sources"][0]["name"] = "[/] :100: $\\y$"
    inst["scenarios"][1]["description"] = "[red]ban[/red] $\\z$"
    path = _write(tmp_path, inst)
    assert MARKUP_NAME in _ok(_cli("validate", path)).stdout
    result = _ok(_cli("solve", path, "--policy", "cap", "--out", tmp_path / "run"))
    assert MARKUP_NAME in result.stdout and "US$[/]:100:$\\x$" in result.stdout
    assert (tmp_path / "run" / "allocation_by_country.png").stat().st_size > 0
    _ok(_cli("compare", path, "-p", "none", "-p", "cap", "--out", tmp_path / "cmp"))
    _ok(_cli("sweep", path, "--cap", "1,0.5", "--out", tmp_path / "sw"))
    for name in ("run", "cmp", "sw"):
        _ok(_cli("report", tmp_path / name))
    for name in ("run", "cmp"):
        _ok(_cli("verify", tmp_path / name))
    page = (tmp_path / "run" / "report.html").read_text()
    assert "[red]x[/red]:100:[/][bold]" in page


def test_markup_in_a_policy_given_on_the_command_line(tmp_path: Path) -> None:
    err = _input_error(_cli("solve", _write(tmp_path, _good()), "--policy", "[/][red]x",
                            "--out", tmp_path / "run"), "unknown policy '[/][red]x'")
    assert not (tmp_path / "run").exists() and "\n" not in err.strip()


def test_markup_in_paths_is_printed_literally(tmp_path: Path, run_folder: Path) -> None:
    folder = _copy(run_folder, tmp_path, "[red]run:100:")
    result = _ok(_cli("verify", folder))
    assert f"ok {folder}:" in result.stdout
    assert f"wrote {folder}/report.html" in _ok(_cli("report", folder)).stdout.replace("\n", "")


def test_line_100_is_not_an_emoji(tmp_path: Path) -> None:
    path = tmp_path / "long.yaml"
    text = yaml.safe_dump(_good(), sort_keys=False)
    lines = text.count("\n")
    path.write_text("#\n" * (99 - lines) + text + "bogus: 1\n")
    _input_error(_cli("validate", path), f"{path}:100: bogus: unknown key")


@pytest.mark.parametrize("where, bad", [
    ("name", f"a{ESC}[31mred{ESC}]0;pwned\a"), ("currency", f"US{ESC}[2J"),
    ("sources[0].name", "line\nbreak"), ("name", "evil\u202etxt.exe")])
def test_control_characters_in_names_are_refused_and_shown_escaped(tmp_path: Path, where: str,
                                                                   bad: str) -> None:
    inst = _good()
    if where == "sources[0].name":
        inst["sources"][0]["name"] = bad
    else:
        inst[where] = bad
    err = _input_error(_cli("validate", _write(tmp_path, inst)), where, "control character")
    assert any(c in err for c in ("\\x1b", "\\n", "\\u202e"))


def test_escapes_in_arguments_and_paths_never_reach_the_terminal(tmp_path: Path) -> None:
    path = _write(tmp_path, _good())
    err = _input_error(_cli("solve", path, "--policy", f"{ESC}[2J{ESC}[31mx"),
                       "unknown policy '\\x1b[2J\\x1b[31mx'")
    assert ESC not in err
    weird = tmp_path / f"in{ESC}[31mst.yaml"
    shutil.copy(path, weird)
    result = _ok(_cli("validate", weird))
    assert ESC not in result.stdout + result.stderr and "\\x1b[31mst.yaml" in result.stdout


# --------------------------------------------------------------------------- 5. formula injection
def test_csv_text_cells_cannot_start_a_formula(tmp_path: Path) -> None:
    from model.output.export import write_csv

    table = pd.DataFrame({"text": ["=1+1", "+cmd", "-2+3", "@SUM(A1)", "\tx", "\rx", "ok",
                                   "a=b"],
                          "number": [-1.5, -2.0, 3.0, 0.0, -0.0, 1e-300, -1e15, 7.0],
                          "period": pd.Series([-1, 2026, "H1", 3, 4, 5, 6, 7], dtype=object)})
    write_csv(tmp_path / "t.csv", table)
    back = pd.read_csv(tmp_path / "t.csv", keep_default_na=False)
    assert back["text"].tolist() == ["'=1+1", "'+cmd", "'-2+3", "'@SUM(A1)", "'\tx", "'\rx",
                                     "ok", "a=b"]
    assert back["number"].tolist() == table["number"].tolist()     # numbers stay numbers
    assert back["period"].astype(str).tolist()[:2] == ["-1", "2026"]


# --------------------------------------------------------------------------- 6. numbers
@pytest.mark.parametrize("place, change, fragment", [
    ("sources[0].supply.Nd.capacity",
     lambda i: i["sources"][0]["supply"]["Nd"].update(capacity=1e20), "at most 1e+15"),
    ("sources[0].supply.Nd.price",
     lambda i: i["sources"][0]["supply"]["Nd"].update(price=1.5e15), "at most 1e+15"),
    ("demand.Nd", lambda i: i["demand"].update(Nd=10 ** 400), "at most 1e+15"),
    ("shortage_penalty.default", lambda i: i.update(shortage_penalty={"default": 10 ** 20}),
     "at most 1e+15"),
    ("discount_rate", lambda i: i.update(discount_rate=1e300), "at most 10"),
    ("scenarios[1].price_shocks[0].multiplier",
     lambda i: i["scenarios"][1].update(price_shocks=[{"multiplier": 1e6}]), "at most 100"),
    ("scenarios[1].demand_shocks[0].multiplier",
     lambda i: i["scenarios"][1].update(demand_shocks=[{"multiplier": 101}]), "at most 100"),
    ("policies.cap.budget[0].amount",
     lambda i: i["policies"]["cap"].update(budget={"amount": 1e300}), "at most 1e+15"),
    ("policies.cap.min_stock_days[0].days",
     lambda i: (i.update(period_days=1e-300),
                i["policies"]["cap"].update(min_stock_days={"days": 1})), "100 periods"),
    ("policies.cap.min_stock_days[0].days",
     lambda i: i["policies"]["cap"].update(min_stock_days={"days": 1e6}), "100 periods"),
])
def test_numbers_beyond_the_bounds_are_refused(tmp_path: Path, place: str, change: Any,
                                               fragment: str) -> None:
    inst = _good()
    change(inst)
    path = _write(tmp_path, inst)
    _input_error(_cli("validate", path), f"{path}:", place, fragment)


def test_discounting_must_stay_representable(tmp_path: Path) -> None:
    inst = _good(periods=list(range(400)), discount_rate=10)
    _input_error(_cli("validate", _write(tmp_path, inst)), "discount_rate", "1e-100")


def test_json_output_is_ascii(tmp_path: Path) -> None:
    result = _ok(_cli("solve", _write(tmp_path, _good(name="Zürich-東京", currency="€")),
                      "--out", tmp_path / "run", "--json"))
    assert result.stdout.isascii()
    assert json.loads(result.stdout)["instance"] == "Zürich-東京"


def test_an_integer_too_long_to_convert_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "long.yaml"
    path.write_text(yaml.safe_dump(_good(), sort_keys=False).replace(
        "Nd: 100", "Nd: " + "9" * 5000))
    _input_error(_cli("validate", path), f"{path}:", "digits")


def test_big_numbers_through_the_api_are_refused() -> None:
    from model.errors import InstanceError
    from model.input.instance import instance_from_dict

    inst = _good()
    inst["sources"][0]["supply"]["Nd"]["capacity"] = 1e20
    with pytest.raises(InstanceError, match="at most 1e\\+15"):
        instance_from_dict(inst)


# --------------------------------------------------------------------------- 7. YAML quirks
@pytest.mark.parametrize("change, fragment", [
    (lambda t: t + "name: again\n", "duplicate key 'name' (first on line 2)"),
    (lambda t: t.replace("demand:\n  Nd: 100\n", "demand:\n  Nd: 100\n  Nd: 7\n"),
     "demand: duplicate key 'Nd' (first on line"),
    (lambda t: t.replace("policies:\n", "policies:\n  cap: {}\n"),
     "policies: duplicate key 'cap' (first on line"),
])
def test_duplicate_keys_are_refused_with_their_line(tmp_path: Path, change: Any,
                                                    fragment: str) -> None:
    text = yaml.safe_dump(_good(), sort_keys=False)
    changed = change(text)
    assert changed != text
    path = tmp_path / "dup.yaml"
    path.write_text(changed)
    _input_error(_cli("validate", path), f"{path}:", fragment)


def test_deep_nesting_is_refused_not_a_recursion_error(tmp_path: Path) -> None:
    path = tmp_path / "deep.yaml"
    path.write_text("schema: 1\nname: " + "[" * 900 + "]" * 900 + "\n")
    _input_error(_cli("validate", path), f"{path}:2:", "nested more than 64 levels")


def test_integers_are_read_as_yaml_1_2(tmp_path: Path) -> None:
    from model.input.instance import load_instance

    text = yaml.safe_dump(_good(periods=[2026, 2027]), sort_keys=False)
    text = text.replace("Nd: 100", "Nd: {2026: 010, 2027: 0o17}").replace(
        "capacity: 60", "capacity: 0x1F").replace("price: 20", "price: +0020")
    path = tmp_path / "ints.yaml"
    path.write_text(text)
    inst = load_instance(path).instance
    assert inst.demand["Nd"] == {2026: 10.0, 2027: 15.0}
    assert inst.sources[1].supply["Nd"].capacity == 31.0
    assert inst.sources[1].supply["Nd"].price == 20.0
    for literal in ("1:20", "0b11", "0o9"):
        path.write_text(text.replace("capacity: 0x1F", f"capacity: {literal}"))
        _input_error(_cli("validate", path), "sources[1].supply.Nd.capacity",
                     "must be a number", repr(literal))


def test_norway_validates_and_yes_is_not_a_boolean(tmp_path: Path) -> None:
    text = yaml.safe_dump(_good(), sort_keys=False).replace("mined_in: AU", "mined_in: NO")
    path = tmp_path / "no.yaml"
    path.write_text(text)
    _ok(_cli("validate", path))
    path.write_text(text.replace("mode: contract", "mode: contract\n  recycled: yes"))
    _input_error(_cli("validate", path), "sources[1].recycled", "boolean")
    doc = (ROOT / "docs" / "instance-format.md").read_text()
    assert 'write `mined_in: "NO"`' not in doc      # the old, wrong advice


# --------------------------------------------------------------------------- 8. unbounded work
@pytest.mark.parametrize("cap, fragment", [
    ("0:1:1e-300", "at most 1,000"), ("0:inf:0.1", "finite"), ("nan,0.5", "finite"),
    ("1:0:0", "step > 0"), (",".join(["0.5"] * 1001), "at most 1,000")])
def test_cap_grids_are_bounded_up_front(tmp_path: Path, cap: str, fragment: str) -> None:
    _input_error(_cli("sweep", tmp_path / "missing.yaml", "--cap", cap), "--cap", fragment)


def test_a_fine_cap_grid_is_refused_by_the_api() -> None:
    from model.studies.sweep import parse_cap_range
    from model.errors import UsageError

    with pytest.raises(UsageError, match="1,000"):
        parse_cap_range("0:1:1e-6")


def test_a_fifo_is_not_read(tmp_path: Path) -> None:
    fifo = tmp_path / "pipe.yaml"
    os.mkfifo(fifo)
    _input_error(_sub(["validate", fifo], tmp_path, timeout=60), "not a regular file")


def test_a_device_is_not_read(tmp_path: Path) -> None:
    _input_error(_cli("validate", "/dev/zero"), "/dev/zero", "not a regular file")


@pytest.mark.parametrize("args, fragment", [
    (["build", "synthetic", "--scenarios", "100000000"], "--scenarios"),
    (["build", "synthetic", "--sources", "1000", "--elements", "1000", "--periods", "100",
      "--scenarios", "10"], "5,000,000"),
    (["bench", "--scenarios", "100000000"], "--scenarios"),
    (["bench", "--sweep", "100000"], "--sweep"),
])
def test_generator_sizes_are_bounded_up_front(tmp_path: Path, args: list[str],
                                              fragment: str) -> None:
    if args[0] == "build":
        args = [*args, "--out", str(tmp_path / "x.yaml")]
    _input_error(_cli(*args), fragment)
    assert not (tmp_path / "x.yaml").exists()


def test_sample_size_is_bounded_up_front(tmp_path: Path) -> None:
    events = tmp_path / "events.yaml"
    events.write_text(yaml.safe_dump({"events": [{"id": "ban", "probability": 0.5}]}))
    _input_error(_cli("build", "scenarios", _write(tmp_path, _good()), "--events", events,
                      "--sample", "1000000000", "--out", tmp_path / "x.yaml"),
                 "--sample", "100,000")


# --------------------------------------------------------------------------- 9. the API
def test_the_api_checks_its_settings() -> None:
    from model.studies.compare import compare_policies
    from model.studies.metrics import stochastic_metrics
    from model.studies.sweep import sweep_cap
    from model.api import solve_instance
    from model.errors import UsageError
    from model.input.instance import instance_from_dict
    from model.solve.solve import SolveOptions

    loaded = instance_from_dict(_good())
    for kw in ({"risk_lambda": math.nan}, {"risk_lambda": 5.0}, {"risk_lambda": -0.1},
               {"risk_alpha": 1.0}, {"risk_alpha": math.nan}):
        with pytest.raises(UsageError):
            solve_instance(loaded, "none", **kw)
        with pytest.raises(UsageError):
            compare_policies(loaded, ["none"], **kw)
        with pytest.raises(UsageError):
            sweep_cap(loaded, [0.5], **kw)
        with pytest.raises(UsageError):
            stochastic_metrics(loaded, **kw)
    for bad in (-1.0, 0.0, math.nan, math.inf):
        with pytest.raises(UsageError, match="time"):
            SolveOptions(time_limit_s=bad)
    with pytest.raises(UsageError, match="threads"):
        SolveOptions(threads=0)
    options = SolveOptions()
    options.time_limit_s = -5.0          # changed after construction: still caught
    with pytest.raises(UsageError, match="time"):
        solve_instance(loaded, "none", options=options)
    for caps in ([math.nan], [1.5], [], [0.5] * 1001):
        with pytest.raises(UsageError):
            sweep_cap(loaded, caps)
    assert issubclass(UsageError, ValueError)


@pytest.mark.parametrize("args, fragment", [
    (["solve", "{inst}", "--time-limit", "nan"], "--time-limit"),
    (["compare", "{inst}", "-p", "none", "--time-limit", "-1"], "--time-limit"),
    (["sweep", "{inst}", "--cap", "1", "--time-limit", "0"], "--time-limit"),
    (["compare", "{inst}", "-p", "none", "--lambda", "nan"], "--lambda"),
])
def test_the_cli_checks_every_setting_like_the_api(tmp_path: Path, args: list[str],
                                                   fragment: str) -> None:
    inst = _write(tmp_path, _good())
    _input_error(_cli(*[a.format(inst=inst) for a in args]), fragment)


# --------------------------------------------------------------------------- 10. smaller
@pytest.mark.parametrize("command", [["solve"], ["compare", "-p", "none"],
                                     ["sweep", "--cap", "1"], ["report"],
                                     ["build", "synthetic"]])
def test_unwritable_output_is_refused_before_any_work(tmp_path: Path,
                                                      command: list[str]) -> None:
    blocker = tmp_path / "file.txt"
    blocker.write_text("a file, not a folder")
    args = [command[0], *command[1:]] if command[0] == "build" else \
        [command[0], tmp_path / "missing.yaml", *command[1:]]
    _input_error(_cli(*args, "--out", blocker / "out"), str(blocker), "not a folder")
    assert blocker.read_text() == "a file, not a folder"


def test_run_folders_written_through_the_api_verify(tmp_path: Path) -> None:
    from model.api import solve_instance
    from model.output.export import save_run
    from model.input.instance import instance_from_dict
    from model.analysis.verify import verify_run

    run = solve_instance(instance_from_dict(_good()), "cap")
    folder = save_run(run, tmp_path / "run", charts=False)
    copy = (folder / "instance.yaml").read_bytes()
    assert hashlib.sha256(copy).hexdigest() == run.summary["instance_sha256"]
    assert json.loads((folder / "summary.json").read_text())["instance_sha256"] == \
        run.summary["instance_sha256"]
    assert verify_run(folder) == []
    _ok(_cli("verify", folder))


def test_verify_notices_an_edited_instance_copy(tmp_path: Path, run_folder: Path) -> None:
    folder = _copy(run_folder, tmp_path)
    with open(folder / "instance.yaml", "a") as fh:
        fh.write("# edited after the run\n")
    result = _cli("verify", folder)
    assert _code(result) == 1 and "SHA-256" in result.stderr, result.stderr


def test_the_chart_process_dies_quietly_on_sigterm(tmp_path: Path, run_folder: Path,
                                                   capfd: pytest.CaptureFixture[str],
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """The parent installs the CLI's handler; a SIGTERM right after the fork (or while
    drawing) ends the chart process without a traceback."""
    from model.output import charts, export
    from model.api import solve_instance
    from model.entry import on_signal
    from model.input.instance import instance_from_dict

    run = solve_instance(instance_from_dict(_good()), "cap")
    monkeypatch.setattr(charts, "allocation_by_country", lambda *a, **k: time.sleep(30))
    old = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        signal.signal(signal.SIGTERM, on_signal)
        for wait in (0.0, 0.5):
            proc = export._start_charts(run, tmp_path)
            time.sleep(wait)
            proc.terminate()
            proc.join(30)
            assert proc.exitcode is not None and proc.exitcode != 0
    finally:
        for s, handler in old.items():
            signal.signal(s, handler)
    err = capfd.readouterr().err
    assert "Traceback" not in err and "KeyboardInterrupt" not in err, err


# --------------------------------------------------------------------------- 11. entry point
SLOW_IMPORT = """
import importlib.abc, sys, time
class Slow(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name == "typer":
            sys.stderr.write("importing\\n"); sys.stderr.flush()
            time.sleep(20)
        return None
sys.meta_path.insert(0, Slow())
sys.argv = ["sourcing", "--help"]
"""


@pytest.mark.parametrize("start", [
    "from model.entry import main; main()",
    "import runpy; runpy.run_module('model.cli', run_name='__main__')"])
def test_an_interrupt_while_importing_is_clean(tmp_path: Path, start: str) -> None:
    proc = subprocess.Popen([sys.executable, "-c", SLOW_IMPORT + start], cwd=tmp_path,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stderr.readline() == "importing\n"
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, (proc.returncode, err)
    assert "interrupted; nothing was written" in err and "Traceback" not in err


def test_the_console_script_is_the_entry_module() -> None:
    text = (ROOT / "pyproject.toml").read_text()
    assert 'sourcing = "model.entry:main"' in text
