"""`sourcing schema` prints JSON Schema derived from the validation model."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_schema_is_json_schema_of_the_instance() -> None:
    proc = subprocess.run([sys.executable, "-m", "model.cli", "schema"], capture_output=True,
                          text=True, check=True)
    schema = json.loads(proc.stdout)
    assert schema["$schema"].startswith("https://json-schema.org/")
    props = schema["properties"]
    for key in ("schema", "home", "periods", "elements", "demand", "shortage_penalty",
                "sources", "scenarios", "policies", "risk"):
        assert key in props
    assert set(schema["required"]) >= {"schema", "name", "periods", "elements"}
    # one buyer needs home, demand and a shortage penalty; several buyers give their own
    assert {"required": ["home", "demand", "shortage_penalty"]} in schema["anyOf"]
    assert {"required": ["buyers"]} in schema["anyOf"]
    assert schema["additionalProperties"] is False
    policy = schema["$defs"]["Policy"]["properties"]
    assert "max_single_country_share" in policy and "budget" in policy


def test_bundled_instances_validate_against_the_schema_keys() -> None:
    """Every top-level key of every bundled instance is a schema property."""
    from model.input.instance import load_instance

    proc = subprocess.run([sys.executable, "-m", "model.cli", "schema"], capture_output=True,
                          text=True, check=True)
    props = set(json.loads(proc.stdout)["properties"])
    for path in (p for p in (ROOT / "instances").glob("*.yaml")
                 if not p.name.endswith(".ranges.yaml")):    # ranges files: no instances
        inst = load_instance(path)
        assert set(inst.instance.model_dump(by_alias=True)) <= props
