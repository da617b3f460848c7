"""The vector families of the ECCSI suites (issue 21): vectors/issuance_eccsi.json (specs/issuance.md
10.4, 13.1), vectors/issuance_eccsi_threshold.json (10.5, 13.2) and vectors/integrity_eccsi.json
(specs/integrity.md 3.3, 12.4).

* every vector recomputes and each file passes its whole-file check;
* every negative vector, fed straight to the step it names, raises exactly its error class;
* a changed value is caught by recomputation, naming the field (not only by the whole-file check);
* the arithmetic the specs state (HS, SSK, HE, s, the commitments, the DRBGs of v and u_i) is redone
  here from the stored hash inputs with hashlib and integers, independently of the scheme code.
"""

from __future__ import annotations

import copy
import hashlib
import random
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from protocols import errors
from protocols import integrity as ig
from protocols import issuance_eccsi as ie
from protocols.errors import VectorMismatchError
from protocols.primitives.drbg import HmacDrbg
from protocols.schemes import eccsi
from protocols.schemes import eccsi_threshold as et
from protocols.system import vectors
from protocols.system.vectorsets import families, integrity_eccsi, issuance_eccsi, issuance_eccsi_threshold

VECTORS = Path(__file__).resolve().parent.parent / "vectors"
FILES = {"issuance_eccsi.json": issuance_eccsi, "issuance_eccsi_threshold.json": issuance_eccsi_threshold,
         "integrity_eccsi.json": integrity_eccsi}
Q = eccsi.q


@pytest.fixture(scope="module", params=sorted(FILES))
def family(request):
    return FILES[request.param], vectors.load_envelope(VECTORS / request.param)


def _valid(envelope):
    return [v for v in envelope["vectors"] if v.get("result", "valid") == "valid"]


def _invalid(envelope):
    return [v for v in envelope["vectors"] if v.get("result") == "invalid"]


def test_the_families_are_registered_and_generated():
    registered = families()
    for module in FILES.values():
        assert module.FAMILY in registered and module.FAMILY.generated
    keys = [(f.protocol, f.suite) for f in registered]
    assert len(keys) == len(set(keys))                      # (protocol, suite) picks one family


def test_a_protocol_name_still_names_its_first_family():
    """``usapp vectors describe issuance`` (and integrity) finds the original family: the new files
    share its protocol, so their modules are registered after it; each is found by its file stem."""
    assert vectors.find_family_by_name("issuance").file == "issuance.json"
    assert vectors.find_family_by_name("integrity").file == "integrity.json"
    for name, module in FILES.items():
        assert vectors.find_family_by_name(name.removesuffix(".json")) is module.FAMILY


@pytest.mark.parametrize("name", sorted(FILES))
def test_every_vector_recomputes_and_the_file_is_what_the_generator_writes(name):
    [result] = vectors.verify_paths([VECTORS / name])
    assert result.ok, [str(f) for f in result.failures]
    assert result.whole_file == vectors.WHOLE_FILE_GENERATED


def test_each_file_has_valid_runs_and_negatives_naming_spec_errors(family):
    _, envelope = family
    assert len(_valid(envelope)) >= 2 and len(_invalid(envelope)) >= 10
    for vector in _invalid(envelope):
        assert vector["error"] in {"DecodeError", "VerificationError", "ParameterError", "RecoveryError"}
        assert set(vector["flags"]) <= set(envelope["notes"])


# --------------------------------------------------------------------------
# Negatives straight to the step


def _attempt(vector):
    h = bytes.fromhex
    op = vector["operation"]
    if op == "check-key":
        return lambda: ie.check_key(h(vector["KPAK"]), h(vector["Z"]), vector["identity"].encode(), h(vector["key"]))
    if op == "verify-record":
        key = ig.EccsiRecordKey(h(vector["KPAK"]), vector["meter"].encode())
        return lambda: ig.verify_record(ig.decode_record(h(vector["record"])), key)
    kms = et.ThresholdKms(vector["threshold"], tuple(vector["nodes"]), h(vector["KPAK"]),
                          {int(k): h(x) for k, x in vector["node_keys"].items()})
    S = vector["session"]
    target = vector["target"]

    def nodes(name):
        return {int(k): h(x) for k, x in vector[name].items()}

    if target == "check-publics":
        return lambda: et.check_publics(kms)
    if target == "session":
        return lambda: et.session(kms, S)
    if target == "share-verifier":
        return lambda: ie.threshold_eccsi_share_verifier(kms, S, vector["node"])(vector["identity"].encode(),
                                                                                 h(vector["share"]))
    ID = h(vector["identifier"])
    if target == "combine-pvt":
        return lambda: et.combine_pvt(kms, ID, S, nodes("commitments"), nodes("reveals"))
    if target == "verify-response":
        return lambda: et.verify_response(kms, ID, S, nodes("reveals"), vector["node"],
                                          nodes("answers").get(vector["node"], b""))
    assert target == "combine"
    return lambda: et.combine(kms, ID, S, nodes("reveals"), nodes("answers"))


def test_every_negative_raises_exactly_its_error(family):
    _, envelope = family
    for vector in _invalid(envelope):
        expected = getattr(errors, vector["error"])
        with pytest.raises(errors.UsappError) as caught:
            _attempt(vector)()
        assert type(caught.value) is expected, (vector["name"], type(caught.value).__name__)


def test_a_negative_whose_error_is_changed_fails(family):
    module, envelope = family
    vector = copy.deepcopy(_invalid(envelope)[0])
    vector["error"] = "StateError" if vector["error"] != "StateError" else "DecodeError"
    with pytest.raises(VectorMismatchError, match="error"):
        module.verify_vector(vector)


# --------------------------------------------------------------------------
# A changed value fails by recomputation


def _leaves(node, path=()):
    if isinstance(node, dict):
        for key in sorted(node):
            yield from _leaves(node[key], (*path, key))
    elif isinstance(node, list):
        for index, item in enumerate(node):
            yield from _leaves(item, (*path, index))
    else:
        yield path


def _changed(vector, path):
    out = copy.deepcopy(vector)
    parent = out
    for part in path[:-1]:
        parent = parent[part]
    value = parent[path[-1]]
    if isinstance(value, bool):
        parent[path[-1]] = not value
    elif isinstance(value, int):
        parent[path[-1]] = value + 1
    elif value is None:
        parent[path[-1]] = 0
    elif value and all(c in "0123456789abcdef" for c in value):
        parent[path[-1]] = value[:-1] + ("1" if value[-1] == "0" else "0")
    else:
        parent[path[-1]] = value + "x"
    return out


IGNORED = {"name", "comment", "flags"}
"""Labels a mutation may change without changing what is verified (flags are checked against notes)."""


@pytest.mark.parametrize("name", sorted(FILES))
def test_a_changed_value_of_a_valid_run_is_a_mismatch(name):
    """12 sampled leaves of each file's first run (every leaf: the whole-file mutation test)."""
    module = FILES[name]
    vector = _valid(vectors.load_envelope(VECTORS / name))[0]
    leaves = [p for p in _leaves(vector) if p[0] not in IGNORED]
    for path in random.Random(name).sample(leaves, 12):
        with pytest.raises(VectorMismatchError):
            module.verify_vector(_changed(vector, path))


ALL_LEAVES = [(name, index, path)
              for name in sorted(FILES)
              for index, vector in enumerate(vectors.load_envelope(VECTORS / name)["vectors"])
              for path in _leaves(vector) if path[0] not in IGNORED]


@settings(max_examples=60, deadline=None)
@given(st.sampled_from(ALL_LEAVES))
def test_any_changed_value_is_a_mismatch_never_another_exception(leaf):
    """Hostile vector files: a changed value of a valid run makes verify_vector raise VectorMismatchError;
    of a negative vector, either that or (when the changed input is refused with the same error, for
    example another wrong meter) nothing, which the whole-file check then catches.  Never a bare
    ValueError, KeyError or TypeError from the code it drives."""
    name, index, path = leaf
    vector = vectors.load_envelope(VECTORS / name)["vectors"][index]
    changed = _changed(vector, path)
    if vector.get("result", "valid") == "valid":
        with pytest.raises(VectorMismatchError):
            FILES[name].verify_vector(changed)
        return
    try:
        FILES[name].verify_vector(changed)
    except VectorMismatchError:
        pass


def test_a_session_naming_a_node_without_a_reveal_is_a_typed_refusal():
    """Found by the every-leaf mutation test: verify_response with a session node whose U_i is missing
    raised a bare KeyError; it is a RecoveryError (and a node without a published key a ParameterError)."""
    envelope = vectors.load_envelope(VECTORS / "issuance_eccsi_threshold.json")
    vector = copy.deepcopy(next(v for v in _invalid(envelope) if v["name"] == "refuse-answer-truncated"))
    vector["session"] = [2 if n == vector["session"][1] else n for n in vector["session"]]
    with pytest.raises(errors.RecoveryError):
        _attempt(vector)()
    with pytest.raises(VectorMismatchError, match="error"):
        issuance_eccsi_threshold.verify_vector(vector)


def test_a_negative_that_is_no_longer_refused_fails():
    """The negative's changed input put back: the step accepts, so the vector fails (result)."""
    envelope = vectors.load_envelope(VECTORS / "integrity_eccsi.json")
    run = _valid(envelope)[0]
    vector = copy.deepcopy(next(v for v in _invalid(envelope) if v["name"].endswith("register-changed")))
    vector["record"] = run["records"][0]["record"]
    with pytest.raises(VectorMismatchError, match="accepted"):
        integrity_eccsi.verify_vector(vector)


# --------------------------------------------------------------------------
# The stated arithmetic, redone from the stored inputs


def sha256(hex_input: str) -> str:
    return hashlib.sha256(bytes.fromhex(hex_input)).hexdigest()


def _check_signing(signing: dict, SSK: int, HS: str) -> None:
    r, j = int(signing["r"], 16), int(signing["j"], 16)
    assert signing["HE_input"] == HS + signing["r"] + signing["HE_input"][128:]
    assert signing["HE"] == sha256(signing["HE_input"])
    s_prime = pow(int(signing["HE"], 16) + r * SSK, -1, Q) * j % Q
    assert int(signing["s_prime"], 16) == s_prime == int(signing["s"], 16)


def _check_v(setup: dict, outputs: list[str], v: str) -> None:
    drbg = HmacDrbg("SHA-256")
    drbg.instantiate(bytes.fromhex(setup["entropy_input"]), bytes.fromhex(setup["nonce"]),
                     bytes.fromhex(setup["personalization"]))
    assert [drbg.random_bytes(32).hex() for _ in outputs] == outputs
    assert int(v, 16) == 1 + int(outputs[-1], 16)            # RandomRange(1, q) = 1 + the accepted draw


def test_issuance_arithmetic_as_the_spec_states_it():
    for run in _valid(vectors.load_envelope(VECTORS / "issuance_eccsi.json")):
        ID = bytes.fromhex(run["identifier"])
        period = ie.period_of_epoch(run["epoch"])
        assert ID == f"{period}\0urn:usapp:{run['namespace']}:{run['role']}:{run['serial']}\0".encode()
        assert run["v_drbg"] == {"entropy_input": run["KSAK"], "nonce": run["identifier"],
                                 "personalization": b"usapp-eccsi-v/v1".hex()}
        _check_v(run["v_drbg"], run["v_drbg_outputs"], run["v"])
        G = eccsi.encode_point(eccsi.G()).hex()
        assert run["HS_input"] == G + run["KPAK"] + run["identifier"] + run["PVT"]
        assert run["HS"] == sha256(run["HS_input"])
        SSK = (int(run["KSAK"], 16) + int(run["HS"], 16) * int(run["v"], 16)) % Q
        assert int(run["SSK"], 16) == SSK
        assert run["key"] == run["SSK"] + run["PVT"] + run["RSK"]
        assert [d["name"] for d in run["draws"]] == ["challenge_nonce", "device_ikm", "pkg_ikm_e", "SSV", "j"]
        assert run["SSV"] == run["draws"][3]["hex"] == run["decapsulated_SSV"]
        assert int(run["signing"]["j"], 16) == 1 + int(run["draws"][4]["hex"], 16)
        _check_signing(run["signing"], SSK, run["HS"])


def test_threshold_arithmetic_as_the_spec_states_it():
    for run in _valid(vectors.load_envelope(VECTORS / "issuance_eccsi_threshold.json")):
        S, t = run["session"], run["threshold"]
        ID = bytes.fromhex(run["identifier"])
        total_ssk, shares = 0, {int(k): int(x, 16) for k, x in run["node_shares"].items()}
        for item in run["enrollments"]:
            i = item["node"]
            personalization = b"usapp-eccsi-threshold-u/v1" + bytes([t]) + bytes(S)
            assert item["u_personalization"] == personalization.hex()
            setup = {"entropy_input": run["node_shares"][str(i)], "nonce": run["identifier"],
                     "personalization": item["u_personalization"]}
            _check_v(setup, item["u_drbg_outputs"], item["u"])
            assert item["commitment_input"] == (b"usapp-eccsi-threshold-commit/v1" + bytes([i])
                                                + len(ID).to_bytes(2, "big") + ID).hex() + item["U"]
            assert item["commitment"] == sha256(item["commitment_input"])
            lam = 1
            for k in S:
                if k != i:
                    lam = lam * (-k) * pow(i - k, -1, Q) % Q
            assert int(item["lambda"], 16) == lam
            ssk_i = (lam * shares[i] + int(run["HS"], 16) * int(item["u"], 16)) % Q
            assert int(item["SSK_i"], 16) == ssk_i
            assert item["share"] == item["SSK_i"] + "".join(x["U"] for x in run["enrollments"])
            total_ssk += ssk_i
        assert int(run["SSK"], 16) == total_ssk % Q
        assert [d["name"] for d in run["deal_draws"]] == ["KSAK"] + [f"a_{k}" for k in range(1, t)]
        _check_signing(run["signing"], total_ssk % Q, run["HS"])


def test_integrity_arithmetic_as_the_spec_states_it():
    for run in _valid(vectors.load_envelope(VECTORS / "integrity_eccsi.json")):
        keys = {k["period"]: k for k in run["keys"]}
        for record in run["records"]:
            key = keys[record["key_period"]]
            assert bytes.fromhex(record["identifier"]) == f"{record['key_period']}\0{run['meter']}\0".encode()
            _check_v(key["v_drbg"], key["v_drbg_outputs"], key["v"])
            SSK = (int(run["KSAK"], 16) + int(key["HS"], 16) * int(key["v"], 16)) % Q
            assert int(key["SSK"], 16) == SSK and key["HS"] == sha256(key["HS_input"])
            _check_signing(record["signing"], SSK, key["HS"])
            assert record["signing"]["HE_input"][128:] == record["tbs"]
            s = int(record["signing"]["s"], 16)
            final = int(record["signature"][64:128], 16)
            assert final == (Q - s if s > (Q - 1) // 2 else s) and final <= (Q - 1) // 2
            assert record["low_s_replaced"] == (final != s)
            assert record["signature"][:64] == record["signing"]["r"]
        assert run["verdict"]["kind"] == "agree"
        assert (run["forged_verdict"]["party"], run["forged_verdict"]["index"]) == ("utility", run["forge_index"])
    assert any(r["low_s_replaced"] for v in _valid(vectors.load_envelope(VECTORS / "integrity_eccsi.json"))
               for r in v["records"])
