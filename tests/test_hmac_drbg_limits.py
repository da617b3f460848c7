"""The SP 800-90A limits of HMAC_DRBG as invalid vectors (specs/conventions.md section 3.3):
the 2^19-bit request, the 2^35-bit inputs (expressed by a declared length, no 4 GiB string),
and the 2^48 reseed interval, each refused with its typed error."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from protocols.errors import ParameterError, VectorMismatchError
from protocols.primitives import drbg
from protocols.primitives.drbg import MAX_INPUT_BYTES, RESEED_INTERVAL, HmacDrbg
from protocols.system.vectorsets import hmac_drbg as family

ENVELOPE = json.loads((Path(__file__).parent.parent / "vectors" / "hmac_drbg.json").read_text())
BY_FLAG: dict[str, list[dict]] = {}
for _v in ENVELOPE["vectors"]:
    for _flag in _v.get("flags", []):
        BY_FLAG.setdefault(_flag, []).append(_v)


def test_every_limit_has_an_invalid_vector():
    assert {"OversizedRequest", "ReseedRequired", "OversizedInput", "ReseedIntervalTooLarge"} <= set(BY_FLAG)
    targets = {v["oversized_input"] for v in BY_FLAG["OversizedInput"]}
    assert targets == {"entropy_input", "personalization_string", "additional_input[0]",
                       "entropy_input_reseed", "additional_input_reseed"}
    for v in BY_FLAG["OversizedInput"]:
        assert v["declared_bytes"] == MAX_INPUT_BYTES + 1 == 2**32 + 1
        assert v["error"] == "ParameterError"
    assert BY_FLAG["OversizedRequest"][0]["requested_bytes"] * 8 > 2**19
    assert BY_FLAG["ReseedIntervalTooLarge"][0]["reseed_interval"] == RESEED_INTERVAL + 1


@pytest.mark.parametrize("vector", [v for f in ("OversizedInput", "ReseedIntervalTooLarge", "OversizedRequest",
                                                "ReseedRequired") for v in BY_FLAG[f]], ids=lambda v: v["name"])
def test_limit_vectors_are_refused_with_their_error(vector):
    family.verify_vector(vector)  # refused with exactly vector["error"], else VectorMismatchError
    with pytest.raises(VectorMismatchError, match="error"):
        family.verify_vector({**vector, "error": "StateError"})


def test_declared_length_is_what_the_drbg_checks():
    big = family.DeclaredLength(MAX_INPUT_BYTES + 1)
    assert len(big) == MAX_INPUT_BYTES + 1 and bytes(big) == b""
    with pytest.raises(ParameterError, match="2\\^35"):
        HmacDrbg("SHA-256").instantiate(bytes(32), bytes(16), big)
    d = HmacDrbg.from_seed("limits")
    with pytest.raises(ParameterError, match="2\\^35"):
        d.generate(1, big)
    with pytest.raises(ParameterError, match="2\\^35"):
        d.reseed(bytes(32), big)
    # exactly 2^35 bits is allowed by the length check (content empty: accepted)
    HmacDrbg("SHA-256").instantiate(bytes(32), bytes(16), family.DeclaredLength(MAX_INPUT_BYTES))


def test_an_implementation_without_the_length_check_fails_the_vectors(monkeypatch):
    """Adversary: an implementation that omits the 2^35-bit maximum (it keeps every other check,
    the entropy minimum included).  It reads the empty content, accepts the run, and every
    OversizedInput vector is reported as a mismatch."""
    def no_length_check(value, what):
        if isinstance(value, (bytes, bytearray)):
            return value
        raise ParameterError(what)
    monkeypatch.setattr(drbg, "_as_bytes", no_length_check)
    for vector in BY_FLAG["OversizedInput"]:
        with pytest.raises(VectorMismatchError, match="accepted"):
            family.verify_vector(vector)


def test_malformed_declared_length_fields_are_mismatches():
    vector = BY_FLAG["OversizedInput"][0]
    for change in ({"oversized_input": "returned_bits"}, {"declared_bytes": -1}, {"declared_bytes": True}):
        with pytest.raises(VectorMismatchError):
            family.verify_vector({**vector, **change})
    plain = next(v for v in BY_FLAG["OversizedInput"] if v["oversized_input"] == "entropy_input")
    with pytest.raises(VectorMismatchError, match="does not reseed"):
        family.verify_vector({**plain, "oversized_input": "entropy_input_reseed"})
    valid = next(v for v in ENVELOPE["vectors"] if v.get("result", "valid") == "valid")
    with pytest.raises(VectorMismatchError, match="invalid vector only"):
        family.verify_vector({**valid, "declared_bytes": 5})
