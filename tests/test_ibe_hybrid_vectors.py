"""The bf-rfc5091 hybrid suite's vectors (specs/ibe.md 3.13.4): every value a vendor needs is in
the file, the seal reproduces from its draws alone (no DRBG), the intermediates follow the
spec's text, and every invalid vector is refused with exactly its error."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305

from protocols.errors import VectorMismatchError
from protocols.primitives import cbor
from protocols.primitives.rand import ReplayRandom
from protocols.schemes import bf
from protocols.schemes import ibe_hybrid as hy
from protocols.system.vectorsets import ibe_hybrid as family

ENVELOPE = json.loads((Path(__file__).parent.parent / "vectors" / "ibe_hybrid.json").read_text())
VECTORS = ENVELOPE["vectors"]
BY_NAME = {v["name"]: v for v in VECTORS}
INVALID = [v for v in VECTORS if v["result"] == "invalid"]


def test_every_vector_verifies():
    for vector in VECTORS:
        family.verify_vector(vector)


def test_counts_roles_and_flags():
    assert sum(v["result"] == "valid" for v in VECTORS) == 9
    assert len(INVALID) == 27
    assert {v["role"] for v in VECTORS} == {"pkg", "sender", "device"}
    assert {f for v in VECTORS for f in v["flags"]} == set(ENVELOPE["notes"]) == set(family.NOTES)
    required = {"Truncated", "TrailingBytes", "TamperedCiphertext", "TamperedTag", "WrongIdentity", "InvalidPoint",
                "OutOfRange", "WrongSubgroup", "WrongEpoch", "WrongSuite"}
    assert required <= {f for v in INVALID for f in v["flags"]}


def test_seal_reproduces_from_the_draws_alone():
    """A vendor without a DRBG: the recorded draws, in order, give the envelope byte for byte."""
    for name in ("seal-0", "seal-1", "seal-2"):
        v = BY_NAME[name]
        assert [d["name"] for d in v["draws"]] == ["key", "rho"]
        params = bf.BFPublicParameters.from_der(bytes.fromhex(v["public_parameters"]))
        replay = ReplayRandom([bytes.fromhex(d["hex"]) for d in v["draws"]])
        envelope = hy.seal(hy.Rfc5091Sender(params), bytes.fromhex(v["identity"]), v["epoch"],
                           bytes.fromhex(v["plaintext"]), bytes.fromhex(v["aad"]), replay)
        assert replay.exhausted and envelope.hex() == v["envelope"]


def test_intermediates_follow_the_spec_text():
    """Sections 3.13.1-3.13.2 from the fields: V = w XOR rho, W = HashBytes XOR key, the aad
    layout, the AEAD with the zero nonce, the envelope map."""
    v = BY_NAME["seal-1"]
    key, rho = (bytes.fromhex(d["hex"]) for d in v["draws"])
    assert v["kem_key"] == key.hex() and v["rho"] == rho.hex()
    w = bytes.fromhex(v["w"])
    assert bytes(a ^ b for a, b in zip(w, rho)).hex() == v["V"]
    params = bf.BFPublicParameters.from_der(bytes.fromhex(v["public_parameters"]))
    mask = bf.HashBytes(32, rho, params.hashfcn)
    assert bytes(a ^ b for a, b in zip(mask, key)).hex() == v["W"]
    header = bytes.fromhex(v["header"])
    assert cbor.decode(header) == {1: 1, 2: "bf-rfc5091", 3: bytes.fromhex(v["identity"]), 4: v["epoch"],
                                   5: bytes.fromhex(v["enc"])}
    aad = bytes.fromhex(v["aad"])
    assert v["aead_aad"] == (b"usapp-ibe-hybrid-v1" + header + len(aad).to_bytes(4, "big") + aad).hex()
    assert v["aead_nonce"] == "00" * 12
    sealed = ChaCha20Poly1305(key).encrypt(bytes(12), bytes.fromhex(v["plaintext"]), bytes.fromhex(v["aead_aad"]))
    assert sealed.hex() == v["aead_ciphertext"] + v["aead_tag"]
    assert cbor.decode(bytes.fromhex(v["envelope"])) == {**cbor.decode(header), 6: sealed}
    opened = BY_NAME["open-1"]
    assert (opened["kem_key"], opened["rho"], opened["l"], opened["t"]) == (v["kem_key"], v["rho"], v["l"], v["t"])


@pytest.mark.parametrize("vector", INVALID, ids=lambda v: v["name"])
def test_invalid_vector_with_another_error_is_a_mismatch(vector):
    other = "StateError" if vector["error"] != "StateError" else "DecodeError"
    with pytest.raises(VectorMismatchError, match="error"):
        family.verify_vector({**vector, "error": other})


def test_accepting_an_invalid_vector_is_a_mismatch():
    v = BY_NAME["open-invalid-wrong-epoch"]
    with pytest.raises(VectorMismatchError, match="accepted"):
        family.verify_vector({**v, "epoch": BY_NAME["seal-1"]["epoch"]})


def test_edited_outputs_and_draws_are_mismatches():
    v = BY_NAME["seal-1"]
    for field in ("l", "theta_l", "aead_tag", "envelope"):
        changed = dict(v)
        changed[field] = ({k: "1" for k in v[field]} if isinstance(v[field], dict)
                          else ("1" if field == "l" else "00" + v[field][2:]))
        with pytest.raises(VectorMismatchError):
            family.verify_vector(changed)
    draws = [dict(d) for d in v["draws"]]
    draws[1]["hex"] = "00" + draws[1]["hex"][2:]
    with pytest.raises(VectorMismatchError):
        family.verify_vector({**v, "draws": draws})
    with pytest.raises(VectorMismatchError):
        family.verify_vector({**v, "draws": [v["draws"][1], v["draws"][0]]})
    with pytest.raises(VectorMismatchError, match="neither an input nor an output"):
        family.verify_vector({**BY_NAME["open-1"], "extra": "00"})
    with pytest.raises(VectorMismatchError, match="not an input of an invalid vector"):
        family.verify_vector({**BY_NAME["open-invalid-truncated"], "plaintext": ""})


def test_the_device_adversary_through_the_real_classes():
    """Adversary: controls the network and rewrites the envelope of seal-1 (what every open-invalid
    vector does) — each rewrite is refused by Rfc5091Recipient.open with the vector's error."""
    from protocols.system.vectorsets._fields import spec_error_name
    for v in [x for x in INVALID if x["operation"] == "open"]:
        params = bf.BFPublicParameters.from_der(bytes.fromhex(v["public_parameters"]))
        recipient = hy.Rfc5091Recipient(params, bytes.fromhex(v["identity"]),
                                         bf.BFPrivateKey.from_der(bytes.fromhex(v["private_key"]), params))
        with pytest.raises(Exception) as caught:
            hy.open_envelope(recipient, bytes.fromhex(v["envelope"]), v["epoch"], bytes.fromhex(v["aad"]))
        assert spec_error_name(caught.value) == v["error"], v["name"]
