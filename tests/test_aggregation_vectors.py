"""The aggregation vectors (specs/aggregation.md section 12): schema, flags and the refusals (issue 15)."""

from __future__ import annotations

import copy
import json
from collections import Counter
from pathlib import Path

import jsonschema
import pytest

from protocols.errors import VectorMismatchError
from protocols.system.vectorsets import aggregation as family

ROOT = Path(__file__).resolve().parent.parent
FILE = json.loads((ROOT / "vectors" / "aggregation.json").read_text())
SCHEMA = json.loads((ROOT / "vectors" / "schema" / "aggregation.json").read_text())
VALIDATOR = jsonschema.Draft202012Validator(SCHEMA)


def _refusal(name: str) -> dict:
    return copy.deepcopy(next(v for v in FILE["vectors"] if v["name"] == name))


def test_the_schema_is_valid_and_the_file_validates() -> None:
    jsonschema.Draft202012Validator.check_schema(SCHEMA)
    assert [e.message for e in VALIDATOR.iter_errors(FILE)] == []


@pytest.mark.parametrize("path", [
    (), ("vectors", 0), ("vectors", 0, "parameters"), ("vectors", 0, "directory"), ("vectors", 0, "messages"),
    ("vectors", 0, "utility"), ("vectors", 0, "release"), ("vectors", 0, "pairs", 0),
    ("vectors", 0, "meter_keys", "sm-000"), ("vectors", 0, "round_meters", "sm-000"),
    ("vectors", 4), ("vectors", 4, "setup"),
])
def test_an_undocumented_field_fails_the_schema(path: tuple) -> None:
    document = copy.deepcopy(FILE)
    node = document
    for key in path:
        node = node[key]
    node["undocumented"] = 1
    assert not VALIDATOR.is_valid(document)


def test_every_description_says_input_or_computed() -> None:
    def walk(node, where):
        if isinstance(node, dict):
            props = node.get("properties")
            if isinstance(props, dict):
                for key, sub in props.items():
                    assert "description" in sub, f"{where}.{key} has no description"
            for key, sub in node.items():
                walk(sub, f"{where}.{key}")
        elif isinstance(node, list):
            for i, sub in enumerate(node):
                walk(sub, f"{where}[{i}]")
    walk(SCHEMA, "$")


def test_counts_flags_and_roles() -> None:
    results = Counter(v.get("result", "valid") for v in FILE["vectors"])
    assert results["valid"] == 4 and results["invalid"] >= 40
    refusals = [v for v in FILE["vectors"] if v.get("result") == "invalid"]
    assert {v["role"] for v in refusals} == {"meter", "committee", "aggregator", "utility"}
    used = {flag for v in refusals for flag in v["flags"]}
    assert used <= set(FILE["notes"]) and set(FILE["notes"]) <= used
    assert FILE["notes"] == family.NOTES
    for flag in ("truncated", "trailing-bytes", "non-canonical", "oversized"):  # every decoder the roles run
        assert {v["step"] for v in refusals if flag in v["flags"]} == {"accept_bundle", "unmask", "sign_commit",
                                                                        "aggregate", "receive"}


@pytest.mark.parametrize("name", [
    "complete-graph/meter-accept_bundle/low-order-mask-key",
    "complete-graph/meter-unmask/replay",
    "complete-graph/aggregator-aggregate/stranger",
    "complete-graph/utility-finish/tampered-share",
])
def test_a_refusal_verifies_and_each_change_is_a_mismatch_naming_it(name: str) -> None:
    vector = _refusal(name)
    family.verify_vector(vector)

    other_error = copy.deepcopy(vector)
    other_error["error"] = "StateError" if vector["error"] != "StateError" else "DecodeError"
    with pytest.raises(VectorMismatchError, match="field 'error'") as caught:
        family.verify_vector(other_error)
    assert name in str(caught.value)

    not_invalid = copy.deepcopy(vector)
    not_invalid["result"] = "valid"
    with pytest.raises(VectorMismatchError, match="result"):
        family.verify_vector(not_invalid)


def test_the_untampered_input_is_accepted_hence_a_mismatch() -> None:
    vector = _refusal("complete-graph/meter-accept_bundle/bad-mac")
    valid = next(v for v in FILE["vectors"] if v["name"] == vector["base"])
    vector["input"] = [valid["messages"]["bundles"][vector["party"]]]
    with pytest.raises(VectorMismatchError, match="accepted") as caught:
        family.verify_vector(vector)
    assert vector["name"] in str(caught.value)


def test_a_refusal_replays_exactly_the_valid_round() -> None:
    """The replay reaches the valid vector's messages: the stored setup is the base round's inputs."""
    vector = _refusal("complete-graph/utility-receive/bad-mac")
    valid = next(v for v in FILE["vectors"] if v["name"] == vector["base"])
    p, t = family._replay(vector["setup"], "responded")
    assert {m: raw.hex() for m, raw in t.responses.items()} == valid["messages"]["unmask_responses"]
    assert {m: raw.hex() for m, raw in t.aggregate_reports.items()} == valid["messages"]["aggregate_reports"]
