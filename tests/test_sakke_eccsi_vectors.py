"""The SAKKE / ECCSI vector families (protocols/system/vectorsets/rfc6507.py,
rfc6508.py, sakke_eccsi.py; specs/sakke_eccsi.md section 9).

* every vector of vectors/rfc6507.json, rfc6508.json and sakke_eccsi.json
  recomputes through the scheme code, and each file passes its whole-file check;
* a changed value is caught by recomputation (not only by the pinned digest),
  for every value of the RFC files and for sampled values of the generated one,
  with the mismatch naming the field;
* every negative vector, fed straight to the scheme function it names, raises
  exactly its error class.
"""

from __future__ import annotations

import copy
from pathlib import Path

import pytest

from protocols import errors
from protocols.errors import VectorMismatchError
from protocols.primitives.rand import ReplayRandom
from protocols.primitives.sakke_curve import PARAMETER_SET_1 as PS1
from protocols.schemes import eccsi, sakke
from protocols.system import vectors
from protocols.system.vectorsets import families, rfc6507, rfc6508, sakke_eccsi

ROOT = Path(__file__).resolve().parent.parent
VECTORS = ROOT / "vectors"
FILES = {"rfc6507.json": rfc6507, "rfc6508.json": rfc6508, "sakke_eccsi.json": sakke_eccsi}


def load(name: str) -> dict:
    return vectors.load_envelope(VECTORS / name)


@pytest.fixture(scope="module")
def generated() -> dict:
    return load("sakke_eccsi.json")


def test_families_are_registered():
    registered = families()
    for module in FILES.values():
        assert module.FAMILY in registered
    assert rfc6507.FAMILY.pinned_sha256 and rfc6508.FAMILY.pinned_sha256
    assert sakke_eccsi.FAMILY.generated


@pytest.mark.parametrize("name", sorted(FILES))
def test_every_vector_recomputes_and_the_file_passes(name):
    module = FILES[name]
    envelope = load(name)
    for vector in envelope["vectors"]:
        module.verify_vector(vector)
    [result] = vectors.verify_paths([VECTORS / name])
    assert result.ok, [str(f) for f in result.failures]
    assert result.whole_file in (vectors.WHOLE_FILE_PINNED, vectors.WHOLE_FILE_GENERATED)


# --------------------------------------------------------------------------
# A changed value is caught by recomputation, naming the field


def _leaves(node, path=()):
    if isinstance(node, dict):
        for key, value in node.items():
            yield from _leaves(value, (*path, key))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from _leaves(value, (*path, index))
    else:
        yield path


def _changed(vector: dict, path: tuple) -> dict:
    out = copy.deepcopy(vector)
    parent = out
    for part in path[:-1]:
        parent = parent[part]
    value = parent[path[-1]]
    if isinstance(value, str) and value:
        last = value[-1]
        parent[path[-1]] = value[:-1] + ("1" if last == "0" else "0")
    elif isinstance(value, str):
        parent[path[-1]] = "00"
    elif isinstance(value, bool):
        parent[path[-1]] = not value
    else:
        parent[path[-1]] = value + 1
    return out


FREE_TEXT = {"name", "origin"}
"""Free text that nothing recomputes (the pinned digest catches a change)."""


def _rfc_cases(name: str) -> list[tuple[int, tuple]]:
    envelope = load(name)
    return [(index, path) for index, vector in enumerate(envelope["vectors"])
            for path in _leaves(vector) if path[0] not in FREE_TEXT]


CHOSEN = {
    "rfc6507.json": {"operation", "section", "kms.KSAK", "identifier.period", "identifier.uri", "construct.v",
                     "sign.M", "sign.j"},
    "rfc6508.json": {"operation", "section", "s", "n", "kms.z", "identifier.period", "identifier.uri",
                     "sender.SSV"},
}
"""The values each RFC vector chooses (and its selectors); every other value is computed."""


@pytest.mark.parametrize("name", ["rfc6507.json", "rfc6508.json"])
def test_every_value_of_the_rfc_files_is_recomputed(name):
    """Every value of RFC Appendix A, chosen or computed, changed alone, fails
    recomputation; a computed one is named by its field."""
    module = FILES[name]
    envelope = load(name)
    computed = 0
    for index, path in _rfc_cases(name):
        with pytest.raises(VectorMismatchError) as caught:
            module.verify_vector(_changed(envelope["vectors"][index], path))
        dotted = ".".join(str(p) for p in path if not isinstance(p, int))
        if dotted not in CHOSEN[name]:
            assert caught.value.field == dotted, (path, str(caught.value))
            computed += 1
    assert computed >= 20


@pytest.mark.parametrize("field, wanted", [("sign", "sign.HE"), ("verify", "verify.Y"), ("construct", "construct.SSK")])
def test_rfc6507_mismatch_names_the_field(field, wanted):
    vector = load("rfc6507.json")["vectors"][0]
    key = wanted.split(".")[1]
    with pytest.raises(VectorMismatchError) as caught:
        rfc6507.verify_vector(_changed(vector, (field, key)))
    assert caught.value.field == wanted


@pytest.mark.parametrize("path, wanted", [
    (("sender", "H"), "sender.H"),
    (("receiver", "w"), "receiver.w"),
    (("rsk", "Kby"), "rsk.Kby"),
    (("rsk", "computed_intermediates", "inverse"), "rsk.computed_intermediates.inverse"),
    (("rsk_validation", "computed_intermediates", "pairing"), "rsk_validation.computed_intermediates.pairing"),
])
def test_rfc6508_mismatch_names_the_field(path, wanted):
    vector = load("rfc6508.json")["vectors"][1]
    with pytest.raises(VectorMismatchError) as caught:
        rfc6508.verify_vector(_changed(vector, path))
    assert caught.value.field == wanted


def test_a_changed_rfc_file_fails_verify(tmp_path):
    for name in ("rfc6507.json", "rfc6508.json"):
        envelope = load(name)
        envelope["source"] += "."
        target = tmp_path / name
        target.write_text(vectors.dump_envelope(envelope), encoding="utf-8")
        [result] = vectors.verify_paths([target])
        assert not result.ok


@pytest.mark.parametrize("operation, field", [
    ("eccsi", "HE"), ("eccsi", "Y"), ("eccsi", "SSK"), ("eccsi", "signature"),
    ("sakke", "R"), ("sakke", "H"), ("sakke", "w"), ("sakke", "rsk_pairing"), ("sakke", "TEST"),
])
def test_generated_run_mismatch_names_the_field(generated, operation, field):
    vector = next(v for v in generated["vectors"] if v["operation"] == operation)
    with pytest.raises(VectorMismatchError) as caught:
        sakke_eccsi.verify_vector(_changed(vector, (field,)))
    assert caught.value.field == field


@pytest.mark.parametrize("operation", ["eccsi", "sakke"])
def test_generated_draws_are_pinned(generated, operation):
    """A changed draw, a renamed one, or a missing one is a mismatch of 'draws'
    (or of a value the draw gives)."""
    vector = next(v for v in generated["vectors"] if v["operation"] == operation)
    changed = _changed(vector, ("draws", 0, "hex"))
    with pytest.raises(VectorMismatchError):
        sakke_eccsi.verify_vector(changed)
    renamed = copy.deepcopy(vector)
    renamed["draws"][0]["name"] = "other"
    with pytest.raises(VectorMismatchError) as caught:
        sakke_eccsi.verify_vector(renamed)
    assert caught.value.field == "draws"
    short = copy.deepcopy(vector)
    short["draws"].pop()
    with pytest.raises(VectorMismatchError):
        sakke_eccsi.verify_vector(short)


def test_a_changed_generated_file_fails_verify(tmp_path, generated):
    envelope = copy.deepcopy(generated)
    invalid = next(v for v in envelope["vectors"] if v.get("result") == "invalid")
    invalid["comment"] += "."
    target = tmp_path / "sakke_eccsi.json"
    target.write_text(vectors.dump_envelope(envelope), encoding="utf-8")
    [result] = vectors.verify_paths([target])
    assert not result.ok


def test_an_invalid_vector_with_another_error_or_a_valid_input_is_caught(generated):
    invalid = next(v for v in generated["vectors"] if v["name"] == "eccsi-verify-invalid-r-zero")
    other_error = {**invalid, "error": "DecodeError"}
    with pytest.raises(VectorMismatchError) as caught:
        sakke_eccsi.verify_vector(other_error)
    assert caught.value.field == "error"
    run = next(v for v in generated["vectors"] if v["name"] == "eccsi-0")
    accepted = {**invalid, "signature": run["signature"]}
    with pytest.raises(VectorMismatchError) as caught:
        sakke_eccsi.verify_vector(accepted)
    assert caught.value.field == "result"


# --------------------------------------------------------------------------
# Every negative vector raises its error through the real code


def _attempt(vector: dict):
    h = bytes.fromhex
    op = vector["operation"]
    if op == "eccsi-verify":
        return lambda: eccsi.Verify(h(vector["KPAK"]), h(vector["ID"]), h(vector["message"]), h(vector["signature"]))
    if op == "eccsi-validate":
        return lambda: eccsi.ValidateSsk(h(vector["KPAK"]), h(vector["ID"]), h(vector["SSK"]), h(vector["PVT"]))
    if op == "sakke-encapsulate":
        return lambda: sakke.Encapsulate(PS1, h(vector["Z"]), h(vector["b"]), ReplayRandom([]))
    if op == "sakke-validate-rsk":
        return lambda: sakke.ValidateRSK(PS1, h(vector["Z"]), h(vector["b"]), h(vector["RSK"]))
    assert op == "sakke-decapsulate"
    key = sakke.ValidateRSK(PS1, h(vector["Z"]), h(vector["b"]), h(vector["RSK"]))
    return lambda: sakke.Decapsulate(key, h(vector["encapsulated"]))


INVALID = [v for v in load("sakke_eccsi.json")["vectors"] if v.get("result") == "invalid"]


@pytest.mark.parametrize("vector", INVALID, ids=[v["name"] for v in INVALID])
def test_negative_vector_raises_exactly_its_error(vector):
    wanted = getattr(errors, vector["error"])
    with pytest.raises(wanted) as caught:
        _attempt(vector)()
    assert type(caught.value) is wanted
    assert set(vector["flags"]) <= set(sakke_eccsi.NOTES)


def test_negative_vectors_cover_every_refusal():
    """One negative vector per refusal listed in specs/sakke_eccsi.md section 8."""
    names = {v["name"] for v in INVALID}
    for wanted in ("eccsi-verify-invalid-pvt-off-curve", "eccsi-verify-invalid-pvt-identity-zero",
                   "eccsi-verify-invalid-signature-truncated", "eccsi-verify-invalid-signature-trailing-byte",
                   "eccsi-verify-invalid-r-zero", "eccsi-verify-invalid-r-p", "eccsi-verify-invalid-s-zero",
                   "eccsi-verify-invalid-s-q", "eccsi-verify-invalid-s-max",
                   "eccsi-verify-invalid-another-identity", "eccsi-verify-invalid-another-period",
                   "eccsi-verify-invalid-another-message", "eccsi-validate-invalid-ssk-of-another-identity",
                   "eccsi-validate-invalid-ssk-q", "eccsi-validate-invalid-ssk-truncated",
                   "sakke-encapsulate-invalid-z-outside-subgroup", "sakke-encapsulate-invalid-z-order-2",
                   "sakke-validate-rsk-invalid-rsk-of-another-identity",
                   "sakke-validate-rsk-invalid-rsk-outside-subgroup", "sakke-decapsulate-invalid-r-off-curve",
                   "sakke-decapsulate-invalid-r-outside-subgroup", "sakke-decapsulate-invalid-r-identity",
                   "sakke-decapsulate-invalid-truncated", "sakke-decapsulate-invalid-trailing-byte",
                   "sakke-decapsulate-invalid-h-bit-flipped", "sakke-decapsulate-invalid-for-another-identity"):
        assert wanted in names
    assert {v["error"] for v in INVALID} == {"DecodeError", "VerificationError", "ParameterError",
                                             "InvalidCiphertextError"}


def test_valid_runs_cover_several_identities_periods_and_messages(generated):
    runs = [v for v in generated["vectors"] if v.get("result") == "valid"]
    eccsi_runs = [v for v in runs if v["operation"] == "eccsi"]
    assert len({v["uri"] for v in eccsi_runs}) == len(eccsi_runs) >= 3
    assert len({v["period"] for v in eccsi_runs}) == len(eccsi_runs)
    assert len({v["message"] for v in eccsi_runs}) == len(eccsi_runs)
    assert len([v for v in runs if v["operation"] == "sakke"]) == 2
    for run in eccsi_runs:  # each run's signature verifies with the identity alone
        eccsi.Verify(bytes.fromhex(run["KPAK"]), bytes.fromhex(run["ID"]), bytes.fromhex(run["message"]),
                     bytes.fromhex(run["signature"]))
