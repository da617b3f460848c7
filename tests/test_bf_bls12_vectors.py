"""The bf_bls12 and rfc5091 vector families (specs/ibe.md 3.8, 4.8): every edit of a valid vector's
value, of an invalid vector's error name, or an undocumented flag or field is a VectorMismatchError;
an invalid vector whose input is made valid again (accepted) is a mismatch too."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

from protocols.errors import VectorMismatchError
from protocols.system.vectorsets import bf_bls12, rfc5091

ROOT = Path(__file__).resolve().parent.parent / "vectors"
BF = json.loads((ROOT / "bf_bls12.json").read_text())
RFC = json.loads((ROOT / "rfc5091.json").read_text())


def _by_name(doc: dict, name: str) -> dict:
    return copy.deepcopy(next(v for v in doc["vectors"] if v["name"] == name))


def test_every_flag_is_documented_and_every_invalid_vector_names_an_error():
    for doc in (BF, RFC):
        for v in doc["vectors"]:
            assert set(v.get("flags", [])) <= set(doc["notes"])
            assert (v.get("result", "valid") == "invalid") == ("error" in v)


@pytest.mark.parametrize("name, field", [("encapsulate-0", "theta"), ("encapsulate-0", "key"),
                                         ("decapsulate-1", "sigma"), ("dkg-0-deal-2", "c"),
                                         ("dkg-1-combine-key-shares", "d_id"), ("pairing-0", "e_optimal_ate"),
                                         ("hybrid-1", "aead_aad"), ("setup-0", "master_secret")])
def test_an_edited_output_is_reported(name, field):
    v = _by_name(BF, name)
    v[field] = v[field][:-1] + ("0" if v[field][-1] != "0" else "1")
    with pytest.raises(VectorMismatchError, match=field):
        bf_bls12.verify_vector(v)


def test_edited_draws_are_reported():
    v = _by_name(BF, "dkg-0-deal-1")
    v["draws"][0]["hex"] = "00" * 32
    with pytest.raises(VectorMismatchError):
        bf_bls12.verify_vector(v)


def test_a_wrong_error_name_or_an_accepted_invalid_vector_is_reported():
    v = _by_name(BF, "decapsulate-invalid-u-wrong-subgroup")
    v["error"] = "VerificationError"
    with pytest.raises(VectorMismatchError, match="error"):
        bf_bls12.verify_vector(v)
    v = _by_name(BF, "decapsulate-invalid-v-bit-flipped")
    v["enc"] = _by_name(BF, "encapsulate-0")["enc"]
    with pytest.raises(VectorMismatchError, match="accepted"):
        bf_bls12.verify_vector(v)
    v = _by_name(RFC, "bf-decrypt-invalid-v-flipped")
    v["ciphertext"] = _by_name(RFC, "bf-decrypt-7.6")["ciphertext"]
    with pytest.raises(VectorMismatchError, match="accepted"):
        rfc5091.verify_vector(v)


def test_undocumented_flags_and_fields_are_reported():
    v = _by_name(BF, "decapsulate-0")
    v["flags"] = ["NotAFlag"]
    with pytest.raises(VectorMismatchError, match="flag"):
        bf_bls12.verify_vector(v)
    v = _by_name(BF, "decapsulate-0")
    v["extra"] = "00"
    with pytest.raises(VectorMismatchError, match="extra"):
        bf_bls12.verify_vector(v)
    v = _by_name(RFC, "bb1-decrypt-7.8")
    v["extra"] = "00"
    with pytest.raises(VectorMismatchError, match="extra"):
        rfc5091.verify_vector(v)


def test_the_counts_stated_in_the_report():
    count = lambda doc, r: sum(v.get("result", "valid") == r for v in doc["vectors"])  # noqa: E731
    assert (count(BF, "valid"), count(BF, "invalid")) == (44, 27)
    assert (count(RFC, "valid"), count(RFC, "invalid")) == (10, 15)
