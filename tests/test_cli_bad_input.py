"""Bad input through the command line: exit 2, one message, no traceback, nothing written."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from conftest import base_instance, spot

GOOD_SOURCE = spot("cn", "CN", {"Nd": {"capacity": 100, "price": 10}})


def _good() -> dict:
    return base_instance(sources=[dict(GOOD_SOURCE)],
                         policies={"cap": {"max_single_country_share": {"share": 0.5}}})


def _with(path: list, value) -> str:
    inst = _good()
    node = inst
    for key in path[:-1]:
        node = node[key]
    if value is _DELETE:
        del node[path[-1]]
    else:
        node[path[-1]] = value
    return yaml.safe_dump(inst, sort_keys=False)


_DELETE = object()

CASES = {
    # name: (file text, [fragments the one message must contain])
    "malformed yaml": ("schema: 1\nname: [unclosed\n", ["not valid YAML", ":"]),
    "empty file": ("", ["empty"]),
    "not a mapping": ("- 1\n- 2\n", ["top level must be a mapping"]),
    "not utf-8": (b"\xff\xfe\x00bad".decode("latin-1"), ["not UTF-8"]),
    "unknown key with hint": (_with(["sources", 0, "supply", "Nd", "capacty"], 5),
                              ["sources[0].supply.Nd.capacty", "did you mean 'capacity'"]),
    "negative capacity": (_with(["sources", 0, "supply", "Nd", "capacity"], -5),
                          ["sources[0].supply.Nd.capacity", "non-negative"]),
    "nan price": (_with(["sources", 0, "supply", "Nd", "price"], float("nan")),
                  ["sources[0].supply.Nd.price", "finite"]),
    "infinite demand": (_with(["demand", "Nd"], float("inf")), ["demand.Nd", "finite"]),
    "string number": (_with(["demand", "Nd"], "lots"), ["demand.Nd", "number"]),
    "unknown element in supply": (_with(["sources", 0, "supply", "Xx"],
                                        {"capacity": 1, "price": 1}),
                                  ["sources[0].supply.Xx", "unknown element 'Xx'"]),
    "duplicate source id": (_with(["sources"], [GOOD_SOURCE, GOOD_SOURCE]),
                            ["sources[1].id", "duplicate id 'cn'"]),
    "probabilities": (_with(["scenarios"], [{"id": "a", "probability": 0.5},
                                            {"id": "b", "probability": 0.4}]),
                      ["scenarios", "sum to 0.9"]),
    "probability above one": (_with(["scenarios"], [{"id": "a", "probability": 1.5}]),
                              ["scenarios[0].probability", "at most 1"]),
    "share above one": (_with(["policies", "cap", "max_single_country_share"],
                              {"share": 1.2}),
                        ["policies.cap.max_single_country_share[0].share", "at most 1"]),
    "window outside the periods": (_with(["sources", 0, "available"], {"from": 2026, "until": 2025}),
                         ["unknown period '2025'"]),
    "missing penalty": (_with(["shortage_penalty"], _DELETE),
                        ["missing required key 'shortage_penalty'"]),
    "price map missing a period": (
        _with(["periods"], [2026, 2027]).replace("price: 10", "price: {2026: 10}"),
        ["sources[0].supply.Nd.price", "missing 2027"]),
    "unknown period key": (_with(["sources", 0, "supply", "Nd", "capacity"], {2030: 5}),
                           ["sources[0].supply.Nd.capacity.2030", "unknown period"]),
    "unknown scenario selector id": (
        _with(["scenarios"], [{"id": "a", "probability": 1.0,
                               "disruptions": [{"match": {"id": "nope"}, "availability": 0}]}]),
        ["scenarios[0].disruptions[0].match.id", "unknown source id 'nope'"]),
    "fee on spot": (_with(["sources", 0, "reservation_fee"], 0.1),
                    ["sources[0].reservation_fee", "contract sources only"]),
    "wrong schema": (_with(["schema"], 2), ["schema", "must be 1"]),
    "bad country": (_with(["home"], "Japan"), ["home", "ISO 3166-1"]),
    "redefined none": (_with(["policies", "none"], {}), ["policies.none", "built in"]),
    "alias bomb": ("a: &a [x, x, x, x, x, x, x, x, x, x]\n" + "".join(
        f"{chr(98 + i)}: &{chr(98 + i)} [*{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, "
        f"*{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, "
        f"*{chr(97 + i)}, *{chr(97 + i)}]\n" for i in range(8)), ["alias"]),
}


def _run(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "SOURCING_DEBUG"}
    return subprocess.run([sys.executable, "-m", "model.cli", *args], cwd=cwd,
                          capture_output=True, text=True, env=env, timeout=120)


def _assert_one_message(proc: subprocess.CompletedProcess, fragments: list[str]) -> None:
    assert proc.returncode == 2, (proc.returncode, proc.stdout, proc.stderr)
    assert "Traceback" not in proc.stderr + proc.stdout
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    text = " ".join(lines)
    assert text.startswith("error:"), proc.stderr
    for frag in fragments:
        assert frag in text, (frag, text)


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_instance_solve(tmp_path: Path, case: str) -> None:
    text, fragments = CASES[case]
    path = tmp_path / "bad.yaml"
    path.write_bytes(text.encode("latin-1") if case == "not utf-8" else text.encode())
    out = tmp_path / "run"
    proc = _run(["solve", str(path), "--out", str(out)], tmp_path)
    _assert_one_message(proc, [str(path), *fragments])
    assert not out.exists()
    assert not (tmp_path / "results").exists()
    assert [p.name for p in tmp_path.iterdir()] == ["bad.yaml"]


def test_bad_instance_validate(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(CASES["unknown key with hint"][0])
    proc = _run(["validate", str(path)], tmp_path)
    _assert_one_message(proc, ["did you mean 'capacity'", f"{path}:"])


@pytest.mark.parametrize("args, fragment", [
    (["solve", "{inst}", "--policy", "xyz"], "unknown policy 'xyz' (policies: none, cap)"),
    # a near miss: the nearest name is suggested, by every command
    (["solve", "{inst}", "--policy", "cpa"], "unknown policy 'cpa' (did you mean 'cap'? "
                                             "policies: none, cap)"),
    (["compare", "{inst}", "-p", "none", "-p", "Cap", "--out", "{out}"],
     "did you mean 'cap'?"),
    (["sweep", "{inst}", "--policy", "nnoe", "--cap", "1", "--out", "{out}"],
     "did you mean 'none'?"),
    (["bench", "--policy", "crma56"], "did you mean 'crma65'?"),
    (["solve", "{inst}", "--lambda", "1.5"], "--lambda"),
    (["solve", "{inst}", "--alpha", "1"], "--alpha"),
    (["solve", "{missing}"], "no such file"),
])
def test_bad_usage(tmp_path: Path, args: list[str], fragment: str) -> None:
    inst = tmp_path / "inst.yaml"
    inst.write_text(yaml.safe_dump(_good()))
    args = [a.format(inst=inst, missing=tmp_path / "missing.yaml", out=tmp_path / "out")
            for a in args]
    proc = _run(args, tmp_path)
    _assert_one_message(proc, [fragment])
    assert not (tmp_path / "results").exists() and not (tmp_path / "out").exists()


def test_existing_out_needs_force(tmp_path: Path) -> None:
    inst = tmp_path / "inst.yaml"
    inst.write_text(yaml.safe_dump(_good()))
    out = tmp_path / "run"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    proc = _run(["solve", str(inst), "--out", str(out)], tmp_path)
    _assert_one_message(proc, ["already exists", "--force"])
    assert (out / "keep.txt").read_text() == "mine"
    # --force replaces only a folder that sourcing wrote (issue 12): not this one
    proc = _run(["solve", str(inst), "--out", str(out), "--force"], tmp_path)
    _assert_one_message(proc, ["not a folder written by sourcing"])
    assert (out / "keep.txt").read_text() == "mine"
    (out / "keep.txt").unlink()
    out.rmdir()
    assert _run(["solve", str(inst), "--out", str(out)], tmp_path).returncode == 0
    first = out.stat().st_ino
    proc = _run(["solve", str(inst), "--out", str(out), "--force"], tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert out.stat().st_ino != first and (out / "summary.json").exists()   # a new folder
