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


def _at(name: str) -> int:
    return next(i for i, v in enumerate(FILE["vectors"]) if v["name"] == name)


@pytest.mark.parametrize("path", [
    (), ("vectors", 0), ("vectors", 0, "parameters"), ("vectors", 0, "directory"), ("vectors", 0, "messages"),
    ("vectors", 0, "utility"), ("vectors", 0, "release"), ("vectors", 0, "pairs", 0),
    ("vectors", 0, "meter_keys", "sm-000"), ("vectors", 0, "round_meters", "sm-000"),
    ("complete-graph/meter-accept_bundle",), ("complete-graph/meter-accept_bundle", "directory"),
    ("complete-graph/meter-accept_bundle", "state_before"), ("complete-graph/meter-accept_bundle", "state_after"),
    ("complete-graph/meter-accept_bundle/truncated",),
    ("complete-graph/meter-accept_bundle/truncated", "state_before"),
    ("complete-graph/utility-receive", "state_before", "round"),
    ("complete-graph/aggregator-aggregate", "state_before"),
    ("complete-graph/aggregator-aggregate", "state_after", "retained"),
    ("complete-graph/meter-accept_bundle/truncated", "directory"),
    ("complete-graph/meter-advertise", "draws", 0), ("complete-graph/meter-advertise", "intermediates"),
    ("complete-graph/meter-advertise", "intermediates", "boxes", 0), ("complete-graph/meter-report", "intermediates"),
    ("complete-graph/meter-report", "intermediates", "pairs", "sm-001"),
    ("complete-graph/meter-report/replay", "draws", 0), ("complete-graph/utility-audit/audit-dropped",),
    ("complete-graph/utility-finish", "intermediates"),
    ("complete-graph/utility-finish", "intermediates", "secrets", "sm-000"),
])
def test_an_undocumented_field_fails_the_schema(path: tuple) -> None:
    document = copy.deepcopy(FILE)
    if path and path[0] != "vectors":
        path = ("vectors", _at(path[0])) + path[1:]
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
    results = Counter((v["operation"], v.get("result", "valid")) for v in FILE["vectors"])
    assert results == {("round", "valid"): 4, ("step", "valid"): 14, ("refusal", "invalid"): 55}
    steps = {(v["role"], v["step"]) for v in FILE["vectors"] if v["operation"] == "step"}
    assert steps == {(role, step) for role, names in family.ROLE_STEPS.items() for step in names
                     if step != "receive_then_finish"}  # every step of every role (spec 12.2)
    refusals = [v for v in FILE["vectors"] if v.get("result") == "invalid"]
    assert {v["role"] for v in refusals} == {"meter", "committee", "aggregator", "utility"}
    assert all("stage" not in v and "setup" not in v and "state_before" in v for v in refusals)
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


def _vector(name: str) -> dict:
    return copy.deepcopy(next(v for v in FILE["vectors"] if v["name"] == name))


def test_the_state_objects_are_the_base_rounds_states() -> None:
    """The per-role states agree with the valid round: the meter's held shares are what its neighbours'
    boxes carry (round_meters.*_shares at this meter's point), the directory is the round's."""
    step = _vector("complete-graph/meter-accept_bundle")
    valid = _vector(step["base"])
    assert step["directory"]["cbor"] == valid["directory"]["cbor"]
    assert step["state_before"]["held"] == {} and step["state_before"]["advertised"] == step["round"]
    after = step["state_after"]
    me = step["party"]
    for peer, (eps, sigma) in after["held"].items():
        x = valid["directory"]["neighbours"][peer].index(me)
        assert [eps, sigma] == [valid["round_meters"][peer]["epsilon_shares"][x],
                                valid["round_meters"][peer]["sigma_shares"][x]]
    assert after["bundle"] == valid["round_meters"][me]["bundle"]


@pytest.mark.parametrize("role_step", ["meter-accept_bundle", "meter-unmask", "committee-sign_commit"])
def test_a_replay_refusal_starts_from_the_valid_steps_state_after(role_step: str) -> None:
    step = _vector(f"complete-graph/{role_step}")
    replay = _vector(f"complete-graph/{role_step}/replay")
    assert replay["state_before"] == step["state_after"] and replay["input"] == step["input"]


def test_the_valid_steps_release_the_rounds_sums_and_send_its_messages() -> None:
    valid = _vector("complete-graph")
    finish = _vector("complete-graph/utility-finish")
    assert finish["release"] == valid["release"]
    unmask = _vector("complete-graph/meter-unmask")
    assert unmask["output"] == {unmask["party"]: valid["messages"]["unmask_responses"][unmask["party"]]}
    bundles = _vector("complete-graph/utility-bundles")
    assert bundles["output"] == valid["messages"]["bundles"]


@pytest.mark.parametrize("path, value", [
    (("state_after", "last_unmasked"), -1),
    (("state_after", "last_reported"), 6),
    (("output", "sm-000"), "00"),
])
def test_an_edited_step_is_a_mismatch(path: tuple, value: object) -> None:
    vector = _vector("complete-graph/meter-unmask")
    vector[path[0]][path[1]] = value
    with pytest.raises(VectorMismatchError):
        family.verify_vector(vector)


def test_a_state_that_already_answered_refuses_the_honest_request() -> None:
    """The per-role state is what decides: the honest request, given to a meter whose state says it answered
    round r, is a ReplayError; given to the state before that answer, it is accepted (hence a mismatch)."""
    vector = _vector("complete-graph/meter-unmask/replay")
    family.verify_vector(vector)
    vector["state_before"] = _vector("complete-graph/meter-unmask")["state_before"]
    with pytest.raises(VectorMismatchError, match="accepted"):
        family.verify_vector(vector)


def test_an_inconsistent_state_is_a_mismatch_not_a_crash() -> None:
    vector = _vector("complete-graph/meter-unmask/replay")
    vector["state_before"]["last_unmasked"] = -1  # answered (no held shares) yet not marked answered
    with pytest.raises(VectorMismatchError, match="state_before"):
        family.verify_vector(vector)


def test_a_directory_that_does_not_reencode_is_a_mismatch() -> None:
    vector = _vector("complete-graph/aggregator-aggregate/stranger")
    vector["directory"]["cbor"] += "00"
    with pytest.raises(VectorMismatchError, match="directory"):
        family.verify_vector(vector)


def test_the_meter_steps_draw_what_the_round_drew() -> None:
    """The per-role setup, advertise and report steps replay the base round's draws: their outputs and
    intermediates are the round's (spec 12.2), so a meter-only vendor checks the same values."""
    valid = _vector("complete-graph")
    me = "sm-000"
    commit, reveal = _vector("complete-graph/meter-commit"), _vector("complete-graph/meter-reveal")
    assert commit["output"] == {me: valid["meter_keys"][me]["graph_commitment"]}
    assert commit["draws"] == [{"name": "graph_nonce", "hex": valid["meter_keys"][me]["graph_nonce"]}]
    assert reveal["output"] == {me: valid["meter_keys"][me]["graph_nonce"]}
    assert reveal["input"] == [valid["directory"]["cbor"]]
    assert reveal["state_after"]["directory"] == valid["directory"]["digest"]
    advertise = _vector("complete-graph/meter-advertise")
    assert advertise["output"] == {me: valid["messages"]["adverts"][me]}
    assert [d["name"] for d in advertise["draws"]] == ["epsilon", "sigma", "epsilon_coefficient_1",
                                                       "epsilon_coefficient_2", "sigma_coefficient_1",
                                                       "sigma_coefficient_2"]
    inter, mine = advertise["intermediates"], valid["round_meters"][me]
    assert (inter["epsilon"], inter["sigma"], inter["mask_public"]) == (mine["epsilon"], mine["sigma"],
                                                                         mine["mask_public"])
    assert [b["epsilon_share"] for b in inter["boxes"]] == mine["epsilon_shares"]
    report = _vector("complete-graph/meter-report")
    assert report["output"] == {me: valid["messages"]["meter_reports"][me]}
    for name in ("noise", "values", "beta", "tag", "packed", "self_mask", "masked", "paillier_r", "confirmations"):
        assert report["intermediates"][name] == mine[name], name
    noisy = _vector("differential-privacy/meter-report")
    noisy_round = _vector("differential-privacy")
    assert noisy["intermediates"]["noise"] == noisy_round["round_meters"][me]["noise"] != [0, 0]
    assert {d["name"] for d in noisy["draws"]} == {"noise_0", "noise_1", "paillier_r"}


def test_the_utility_steps_send_the_rounds_messages() -> None:
    valid = _vector("complete-graph")
    collect = _vector("complete-graph/utility-collect")
    assert collect["output"] == valid["messages"]["unmask_requests"]
    assert sorted(collect["input"]) == sorted(valid["messages"]["commit_signatures"].values())
    finish = _vector("complete-graph/utility-finish")
    for name in ("decrypted", "unmasked", "tag_sum"):
        assert finish["intermediates"][name] == valid["utility"][name], name
    assert finish["intermediates"]["sums"] == valid["release"]["sums"]
    assert {m: e["value"] for m, e in finish["intermediates"]["secrets"].items()} == {
        m: valid["round_meters"][m]["sigma"] for m in valid["release"]["reporting"]}
    audit = _vector("complete-graph/utility-audit")
    assert audit["output"] == {} and audit["release"] is None and audit["state_after"] == audit["state_before"]


@pytest.mark.parametrize("name, path, value", [
    ("complete-graph/meter-advertise", ("draws", 0, "hex"), "00" * 32),
    ("complete-graph/meter-advertise", ("draws", 5, "name"), "sigma"),
    ("complete-graph/meter-advertise", ("intermediates", "boxes", 1, "nonce"), "00"),
    ("complete-graph/meter-report", ("intermediates", "pairs", "sm-001", "mask"), "1"),
    ("complete-graph/meter-report", ("intermediates", "self_mask"), "1"),
    ("complete-graph/meter-report", ("readings",), [0]),
    ("differential-privacy/meter-report", ("intermediates", "noise", 0), 0),
    ("complete-graph/meter-commit", ("draws", 0, "hex"), "00" * 32),
    ("complete-graph/meter-reveal", ("state_before", "graph_nonce"), "00" * 32),
    ("complete-graph/utility-collect", ("output", "sm-000"), "00"),
    ("complete-graph/utility-finish", ("intermediates", "secrets", "sm-001", "self_mask"), "1"),
    ("complete-graph/utility-finish", ("intermediates", "decrypted"), "1"),
])
def test_an_edited_draw_or_intermediate_is_a_mismatch(name: str, path: tuple, value: object) -> None:
    vector = _vector(name)
    family.verify_vector(_vector(name))
    node = vector
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    with pytest.raises(VectorMismatchError):
        family.verify_vector(vector)


def test_a_draw_left_over_or_missing_is_a_mismatch() -> None:
    for draws in (lambda d: d + d[-1:], lambda d: d[:-1]):
        vector = _vector("complete-graph/meter-advertise")
        vector["draws"] = draws(vector["draws"])
        with pytest.raises(VectorMismatchError, match="draws"):
            family.verify_vector(vector)


@pytest.mark.parametrize("name", [
    "complete-graph/meter-commit/too-many-setups", "complete-graph/meter-reveal/second-directory",
    "complete-graph/meter-advertise/replay", "complete-graph/meter-report/reading-out-of-range",
    "complete-graph/utility-collect/bad-commit-signature", "complete-graph/utility-audit/audit-dropped",
])
def test_the_new_steps_refusals_verify_and_the_honest_input_is_accepted(name: str) -> None:
    vector = _vector(name)
    family.verify_vector(vector)
    honest = _vector(name.rsplit("/", 1)[0])
    for key in ("state_before", "input", "readings", "retained"):
        if key in honest:
            vector[key] = honest[key]
    with pytest.raises(VectorMismatchError, match="accepted"):
        family.verify_vector(vector)
