"""The group key vectors and the choices specs/groupkeys.md pins for them (issue 15: G1-G4, schema, negatives)."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import jsonschema
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from protocols import groupkeys as gk
from protocols.errors import DecodeError, ResyncRequiredError, StateError, VectorMismatchError
from protocols.primitives.drbg import HmacDrbg
from protocols.schemes import frost, lkh
from protocols.system.vectorsets import groupkeys as family

ROOT = Path(__file__).resolve().parent.parent
FILE = json.loads((ROOT / "vectors" / "groupkeys.json").read_text())
SCHEMA = json.loads((ROOT / "vectors" / "schema" / "groupkeys.json").read_text())


def _vector(name: str) -> dict:
    return copy.deepcopy(next(v for v in FILE["vectors"] if v["name"] == name))


class _Calls:
    def __init__(self, seed: str) -> None:
        self.source, self.calls = HmacDrbg.from_seed(seed), []

    def random_bytes(self, n: int) -> bytes:
        self.calls.append(n)
        return self.source.random_bytes(n)


def test_the_file_validates_against_its_schema_and_an_undocumented_field_fails() -> None:
    validator = jsonschema.Draft202012Validator(SCHEMA)
    assert list(validator.iter_errors(FILE)) == []
    for path in [("vectors", 0), ("vectors", 0, "steps", 2), ("vectors", 0, "steps", 2, "intermediates"),
                 ("vectors", -1)]:
        edited = copy.deepcopy(FILE)
        node = edited
        for part in path:
            node = node[part]
        node["undocumented"] = 1
        assert list(validator.iter_errors(edited)), path


def test_every_flag_is_documented_and_every_invalid_vector_is_refused_with_its_error() -> None:
    invalid = [v for v in FILE["vectors"] if v.get("result") == "invalid"]
    assert len(invalid) >= 30
    for v in invalid:
        assert set(v["flags"]) <= set(FILE["notes"]), v["name"]
        family.verify_vector(v)
    wrong = copy.deepcopy(invalid[0])
    wrong["error"] = "StateError"
    with pytest.raises(VectorMismatchError) as refused:
        family.verify_vector(wrong)
    assert refused.value.field == "error"
    accepted = _vector("data-tampered-signature")
    genuine = bytes.fromhex(accepted["message"])
    accepted["message"] = (genuine[:-1] + bytes([genuine[-1] ^ 1])).hex()  # the flip undone: accepted
    with pytest.raises(VectorMismatchError):
        family.verify_vector(accepted)


@pytest.mark.parametrize("operation, count", [("operator-sign", 3), ("meter-provision", 8), ("controller-rekey", 7)])
def test_operator_provisioning_and_rekey_refusals_are_checked_through_the_real_code(operation: str,
                                                                                    count: int) -> None:
    """Spec 8.3, 8.6, 5.1: each refusal has its flags documented; another error name, or a vector whose
    cause is undone (so the real code accepts it), is a mismatch."""
    vectors = [copy.deepcopy(v) for v in FILE["vectors"] if v["operation"] == operation]
    assert len(vectors) == count
    for v in vectors:
        assert v["result"] == "invalid" and set(v["flags"]) <= set(FILE["notes"]), v["name"]
        family.verify_vector(v)
        wrong = copy.deepcopy(v)
        wrong["error"] = "RecoveryError"
        with pytest.raises(VectorMismatchError) as refused:
            family.verify_vector(wrong)
        assert refused.value.field == "error"
        as_valid = copy.deepcopy(v)
        as_valid["result"] = "valid"
        with pytest.raises(VectorMismatchError):
            family.verify_vector(as_valid)


def test_undoing_the_cause_of_a_refusal_makes_the_real_code_accept_it() -> None:
    """The refusals are caused by the flagged change alone (spec 8.3, 8.6, 5.1)."""
    unapproved = _vector("operator-signs-a-command-it-did-not-approve")
    spent = _vector("operator-signs-with-spent-nonces")
    unapproved["approved"], unapproved["spent"] = spent["approved"], spent["spent"]  # approved: the nonce check
    with pytest.raises(VectorMismatchError) as changed:
        family.verify_vector(unapproved)
    assert changed.value.field == "error"
    expired = _vector("provision-expired-checkpoint")
    expired["now"] = _vector("provision-tampered-signature")["now"]
    with pytest.raises(VectorMismatchError) as accepted:
        family.verify_vector(expired)
    assert accepted.value.field == "result"
    non_member = _vector("rekey-removes-a-non-member")
    non_member["leaves"] = [next(iter(non_member["members"]))]
    with pytest.raises(VectorMismatchError) as passed:  # a valid batch reaches its draws, which no vector supplies
        family.verify_vector(non_member)
    assert passed.value.field == "error" and "StateError" not in str(passed.value).split("refused with")[1][:12]


def test_a_run_replays_from_its_recorded_draws_alone_and_any_change_is_caught() -> None:
    v = _vector("two-nodes-per-level")
    family.verify_vector(v)
    edited = copy.deepcopy(v)
    draw = edited["steps"][1]["draws"][0]
    draw["hex"] = ("00" if draw["hex"][:2] != "00" else "01") + draw["hex"][2:]
    with pytest.raises(VectorMismatchError):
        family.verify_vector(edited)
    dropped = copy.deepcopy(v)
    dropped["steps"][-1]["draws"].append({"name": "extra", "hex": "00" * 32})
    with pytest.raises(VectorMismatchError):
        family.verify_vector(dropped)


def test_g1_a_fresh_tree_draws_one_call_per_level() -> None:
    """Spec 3.4: random_bytes(32 * o_l) for l = 0..h: 5 members, d = 2: 5, 3, 2, 1 occupied positions."""
    rng = _Calls("g1")
    tree = lkh.KeyTree.create(2, b"ctx", [b"m%d" % i for i in range(5)], rng)
    assert rng.calls == [160, 96, 64, 32]
    assert [tree.kids[level][0] for level in range(4)] == [1, 6, 9, 11] and tree.next_kid == 12


def test_g1b_two_nodes_of_one_level_are_rekeyed_with_their_own_wraps() -> None:
    """Spec 5.1: leavers 1 and 6 of 8 (d = 2) change (1, 0) and (1, 3), (2, 0) and (2, 1), then the root."""
    members = [b"m%d" % i for i in range(8)]
    tree = lkh.KeyTree.create(2, b"ctx", members, HmacDrbg.from_seed("g1b"))
    views = {m: tree.member_keys(m) for m in members}
    change = tree.rekey(leaves=[b"m1", b"m6"], rng=HmacDrbg.from_seed("g1b/rekey"))
    assert [(lv, p) for lv, p, _ in change.nodes] == [(0, 1), (0, 6), (1, 0), (1, 3), (2, 0), (2, 1), (3, 0)]
    by_node = {(lv, p): kid for lv, p, kid in change.nodes}
    keks = {kid: [w.kek for w in change.wraps if w.kid == kid] for kid in by_node.values() if kid}
    assert keks[by_node[(1, 0)]] == [views[b"m0"].path[0][0]]
    assert keks[by_node[(1, 3)]] == [views[b"m7"].path[0][0]]
    assert keks[by_node[(2, 0)]] == [by_node[(1, 0)], views[b"m2"].path[1][0]]
    assert keks[by_node[(2, 1)]] == [views[b"m4"].path[1][0], by_node[(1, 3)]]
    for m in members:
        if m in (b"m1", b"m6"):
            with pytest.raises(StateError):
                views[m].apply(change)
        else:
            assert views[m].apply(change).group_key == tree.group_key
    step = _vector("two-nodes-per-level")["steps"][1]
    assert [(p["level"], p["position"]) for p in step["intermediates"]["path_secrets"]] == [
        (1, 0), (1, 3), (2, 0), (2, 1), (3, 0)]


def test_g3_round_one_follows_the_listing_order_and_three_of_t_2_sign() -> None:
    """Spec 8.2: operators listed [3, 1] draw in that order; the commitment list is sorted; all 3 of t = 2 sign."""
    operators, info = gk.operator_ceremony(3, 2, b"nbh", HmacDrbg.from_seed("g3/dkg"))
    body = gk.command_body(b"nbh", 1, "disconnect-all", {}, epoch=0, not_after=100)
    for op in operators:
        op.approve(body)
    rng = family._Recorder(HmacDrbg.from_seed("g3/sign"))
    roles: list[dict] = []
    message = gk.sign_command(body, [family._RecordingOperator(operators[i - 1], roles) for i in (3, 1)],
                              info, rng)
    d = rng.log
    sk3 = operators[2].state.signer.key_package.secret_share
    _, expected3 = frost.commit_with_randomness(3, sk3, d[0], d[1])
    assert roles[0]["id"] == 3 and roles[0]["output"]["commitments"] == expected3.to_bytes().hex()
    assert [bytes.fromhex(c)[0] for c in roles[2]["input"]["commitment_list"]] == [1, 3]
    for op in operators:
        op.approve(body)  # an approval is used once (spec 8.3)
    everyone = gk.sign_command(body, operators, info, HmacDrbg.from_seed("g3/all"))
    for signed in (message, everyone):
        Ed25519PublicKey.from_public_bytes(gk.command_key(info)).verify(signed[-64:], gk.command_tbs(body))
    step = next(s for s in _vector("commands-and-recovery")["steps"] if s.get("action") == "disconnect-all")
    assert step["signers"] == [1, 2, 3] and len([r for r in step["roles"] if r["role"] == "operator"]) == 6


def test_g4_the_member_checks_height_then_its_leaf_then_the_path() -> None:
    """Spec 5.2: a shrinking rekey is DecodeError even for a leaver; a leaver is StateError before any wrap."""
    tree = lkh.KeyTree.create(2, b"ctx", [b"a", b"b", b"c"], HmacDrbg.from_seed("g4"))
    view = tree.member_keys(b"a")
    shrink = lkh.Rekey(1, ((0, 0, 0), (1, 0, 99)), ())
    with pytest.raises(DecodeError):
        view.apply(shrink)
    removed = lkh.Rekey(2, ((0, 0, 0), (1, 0, 98), (2, 0, 99)), ())
    with pytest.raises(StateError):
        view.apply(removed)
    missed = lkh.Rekey(2, ((0, 1, 0), (1, 0, 98), (2, 0, 99)), ())
    with pytest.raises(ResyncRequiredError):
        view.apply(missed)
