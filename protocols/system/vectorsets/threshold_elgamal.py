"""Vector family ``threshold_elgamal``: seal, decryption shares and combination (specs/threshold_elgamal.md).

Each vector (operation ``open``): the authorities' key from the FROST DKG
(``groupkeys.operator_ceremony(operators, threshold, group, HMAC_DRBG(dkg_seed))``,
specs/frost.md section 7), a plaintext sealed under the label ``aad`` with the
explicit scalar ``r`` and proof nonce ``s`` (``seal_with_randomness``), and the
listed authorities' decryption shares with explicit proof nonces ``k``
(``decryption_share_with_nonce``, which first checks the blob's proof under
``aad``), bound to ``context``; outputs: the group public key and each
authority's verifying share, the sealed blob (R || R2 || e || f || ct), every
share (D || c || z) and the opened plaintext.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from protocols import groupkeys
from protocols.errors import VectorMismatchError
from protocols.primitives import ed25519
from protocols.primitives.drbg import HmacDrbg
from protocols.schemes import frost
from protocols.schemes import threshold_elgamal as te
from protocols.system.vectorsets import VectorFamily
from protocols.system.vectorsets._fields import (
    MAX_PARTIES,
    bytes_field,
    dispatch,
    edit_bytes,
    expect_outputs,
    expect_refusal,
    field,
    hexint,
    int_field,
    list_field,
    recompute,
    small_int_field,
    str_field,
)

PROTOCOL = "threshold-elgamal"
SUITE = te.SUITE
FILE = "threshold_elgamal.json"
SEED = "usapp-vectors/threshold-elgamal/"
_INPUTS = ("operation", "name", "group", "operators", "threshold", "dkg_seed", "aad", "plaintext", "r", "s",
           "context", "shares")
_REFUSE_INPUTS = _INPUTS + ("result", "error", "flags", "target", "change", "comment")
_MASK253 = (1 << 253) - 1

NOTES = {
    "Truncated": "a sealed blob or share shorter than its encoding (DecodeError)",
    "TrailingBytes": "a decryption share with a byte appended (DecodeError)",
    "Tampered": "one byte of the blob (e, f, ct) or of a share's proof flipped (VerificationError)",
    "NonCanonical": "an element or scalar that is not a canonical encoding (DecodeError)",
    "WrongLabel": "the blob checked or opened under another label (aad) (VerificationError)",
    "WrongContext": "a share verified against another request (context) (VerificationError)",
    "TooFewShares": "fewer than t shares (RecoveryError)",
    "DuplicateShare": "the same authority's share twice (VerificationError)",
}


def _scalar_ok(data: bytes) -> bool:
    return (int.from_bytes(data, "big") & _MASK253) < ed25519.L


class _Recorder:
    def __init__(self, source) -> None:
        self.source = source
        self.draws: list[bytes] = []

    def random_bytes(self, n: int) -> bytes:
        data = self.source.random_bytes(n)
        self.draws.append(data)
        return data


def _dkg(v: Mapping[str, Any]):
    """The authorities' DKG from dkg_seed, with its draws named (specs/frost.md section 7.1)."""
    n, t = small_int_field(v, "operators"), small_int_field(v, "threshold")
    if not 2 <= t <= n <= 8:
        raise VectorMismatchError("fields 'operators' and 'threshold': need 2 <= threshold <= operators <= 8")
    recorder = _Recorder(HmacDrbg.from_seed(str_field(v, "dkg_seed")))
    operators, info = groupkeys.operator_ceremony(n, t, bytes_field(v, "group"), recorder)
    named, position = [], 0
    for i in range(1, n + 1):
        for name in [f"authority{i}.a{j}" for j in range(t)] + [f"authority{i}.k"]:
            while True:
                if position >= len(recorder.draws):
                    raise VectorMismatchError("dkg: fewer draws than the schedule of specs/frost.md 7.1")
                data = recorder.draws[position]
                position += 1
                ok = _scalar_ok(data)
                named.append({"name": name if ok else name + "/rejected", "hex": data.hex()})
                if ok:
                    break
    if position != len(recorder.draws):
        raise VectorMismatchError("dkg: more draws than the schedule of specs/frost.md 7.1")
    return operators, info, named


def _outputs(v: Mapping[str, Any]) -> dict:
    operators, info, draws = _dkg(v)
    n = info.MAX_PARTICIPANTS
    aad, context = bytes_field(v, "aad"), bytes_field(v, "context")
    r, s = int_field(v, "r"), int_field(v, "s")
    X = info.group_public_key
    sealed = te.seal_with_randomness(X, aad, bytes_field(v, "plaintext"), r, s)
    R = ed25519.ScalarBaseMult(r)
    S = ed25519.ScalarMult(X, r)
    sealer: dict[str, Any] = {"role": "sealer", "action": "seal",
              "intermediates": {"R": _el(R), "S": _el(S), "key": te.derive_key(S, R, aad).hex(),
                                "R2": _el(ed25519.ScalarMult(te.B2, r)), "W": _el(ed25519.ScalarBaseMult(s)),
                                "W2": _el(ed25519.ScalarMult(te.B2, s)), "e": sealed[64:96].hex(),
                                "f": sealed[96:128].hex(), "ct": sealed[128:].hex()},
              "output": sealed.hex()}
    shares: list[Any] = []
    out_shares: list[dict[str, Any]] = []
    roles: list[dict[str, Any]] = [sealer]
    for i, item in enumerate(list_field(v, "shares", max_items=MAX_PARTIES)):
        if not isinstance(item, dict):
            raise VectorMismatchError(f"shares[{i}] must be an object")
        identifier = small_int_field(item, "identifier", low=0, high=MAX_PARTIES)
        if not 1 <= identifier <= n:
            raise VectorMismatchError(f"shares[{i}].identifier is not an authority")
        k = int_field(item, "k")
        share = te.decryption_share_with_nonce(operators[identifier - 1].state.signer.key_package, sealed, aad,
                                               context, k)
        shares.append(share)
        out_shares.append({"identifier": identifier, "k": item.get("k"), "share": share.to_bytes().hex()})
        roles.append({"role": "authority", "identifier": identifier, "action": "decryption_share",
                      "input": sealed.hex(),
                      "intermediates": {"D": _el(share.D), "A1": _el(ed25519.ScalarBaseMult(k)),
                                        "A2": _el(ed25519.ScalarMult(R, k)), "c": ed25519.SerializeScalar(share.c).hex(),
                                        "z": ed25519.SerializeScalar(share.z).hex()},
                      "output": share.to_bytes().hex()})
    ids = sorted(sh.identifier for sh in shares)
    opened = te.combine(info, sealed, aad, context, shares)
    roles.append({"role": "combiner", "action": "combine",
                  "intermediates": {"lambda": {str(i): ed25519.SerializeScalar(
                      frost.derive_interpolating_value(ids, i)).hex() for i in ids}, "S": _el(S)},
                  "output": opened.hex()})
    return {
        "dkg_draws": draws,
        "group_public_key": _el(X),
        "secret_shares": [ed25519.SerializeScalar(op.state.signer.key_package.secret_share).hex() for op in operators],
        "verifying_shares": [_el(pk) for pk in info.participant_public_keys],
        "sealed": sealed.hex(),
        "shares": out_shares,
        "roles": roles,
        "opened": opened.hex(),
    }


def _el(element) -> str:
    return ed25519.SerializeElement(element).hex()


def _change(data: bytes, change: Mapping[str, Any]) -> bytes:
    return edit_bytes(data, change, "change", negative_flip=False, replace=True)


def _refusal(v: Mapping[str, Any]) -> Callable[[], None]:
    """Set up the DKG, the seal and the shares; the step that runs the target on the changed value
    (run by :func:`expect_refusal`)."""
    operators, info, _ = _dkg(v)
    aad, context = bytes_field(v, "aad"), bytes_field(v, "context")
    sealed = te.seal_with_randomness(info.group_public_key, aad, bytes_field(v, "plaintext"), int_field(v, "r"),
                                     int_field(v, "s"))
    items = list_field(v, "shares", max_items=MAX_PARTIES)
    if not items or any(not isinstance(it, dict) or small_int_field(it, "identifier") not in
                        range(1, len(operators) + 1) for it in items):
        raise VectorMismatchError("field 'shares' must list authorities by identifier")
    shares = [te.decryption_share_with_nonce(operators[small_int_field(it, "identifier") - 1].state.signer.key_package,
                                             sealed, aad, context, int_field(it, "k")) for it in items]
    target, change = str_field(v, "target"), field(v, "change")
    def step() -> None:
        if target == "check_sealed":
            te.check_sealed(_change(sealed, change), aad)
        elif target == "check_sealed_label":
            te.check_sealed(sealed, _change(aad, change))
        elif target == "share_decode":
            te.DecryptionShare.from_bytes(shares[0].identifier, _change(shares[0].to_bytes(), change))
        elif target == "verify_share":
            bad = te.DecryptionShare.from_bytes(shares[0].identifier, _change(shares[0].to_bytes(), change))
            te.verify_decryption_share(info, sealed, context, bad)
        elif target == "verify_share_context":
            te.verify_decryption_share(info, sealed, _change(context, change), shares[0])
        elif target == "combine":
            count = change.get("shares") if isinstance(change, dict) else None
            if change == {"duplicate": True}:
                te.combine(info, sealed, aad, context, shares + shares[:1])
            elif type(count) is int and 0 <= count <= len(shares):
                te.combine(info, sealed, aad, context, shares[:count])
            else:
                raise VectorMismatchError("field 'change': combine takes {shares: k} or {duplicate: true}")
        else:
            raise VectorMismatchError(f"field 'target': unknown target {target!r}")
    return step


def _refuse(v: Mapping[str, Any]) -> None:
    for key in v:
        if key not in _REFUSE_INPUTS:
            raise VectorMismatchError(f"field {key!r} is neither an input nor an output")
    expect_refusal(v, _refusal(v))


def _open(v: Mapping[str, Any]) -> None:
    expect_outputs(v, recompute("run", lambda: _outputs(v)), _INPUTS)


OPERATIONS = {"open": _open, "refuse": _refuse}


def verify_vector(vector: Mapping[str, Any]) -> None:
    dispatch(OPERATIONS, vector)


def _case(name: str, operators: int, threshold: int, signers: list[int], plaintext: bytes) -> dict:
    draws = HmacDrbg.from_seed(SEED + name + "/randomness")
    v: dict[str, Any] = {
        "operation": "open", "name": name, "group": b"escrow-authorities".hex(), "operators": operators,
        "threshold": threshold, "dkg_seed": SEED + name + "/dkg", "aad": b"usapp-escrow-v1 link".hex(),
        "plaintext": plaintext.hex(), "r": hexint(int.from_bytes(draws.random_bytes(64), "little") % ed25519.L),
        "s": hexint(int.from_bytes(draws.random_bytes(64), "little") % ed25519.L),
        "context": b"reid-request 0001".hex(),
        "shares": [{"identifier": i, "k": hexint(int.from_bytes(draws.random_bytes(64), "little") % ed25519.L)}
                   for i in signers],
    }
    v.update(_outputs(v))
    return v


def _negative(name: str, base: dict, target: str, change: dict, error: str, flags: list[str]) -> dict:
    v = {k: base[k] for k in _INPUTS if k in base}
    v.update({"operation": "refuse", "name": name, "result": "invalid", "error": error, "flags": flags,
              "target": target, "change": change})
    expect_refusal(v, _refusal(v))
    return v


def _negatives(base: dict) -> list[dict]:
    non_canonical = (ed25519.P + 1).to_bytes(32, "little").hex()  # y = p + 1: not reduced
    unreduced = ed25519.L.to_bytes(32, "little").hex()
    return [
        _negative("sealed-truncated-below-144", base, "check_sealed", {"truncate": 143}, "DecodeError", ["Truncated"]),
        _negative("sealed-R-non-canonical", base, "check_sealed", {"replace": [0, non_canonical]}, "DecodeError",
                  ["NonCanonical"]),
        _negative("sealed-e-unreduced", base, "check_sealed", {"replace": [64, unreduced]}, "DecodeError",
                  ["NonCanonical"]),
        _negative("sealed-e-tampered", base, "check_sealed", {"flip": 64}, "VerificationError", ["Tampered"]),
        _negative("sealed-f-tampered", base, "check_sealed", {"flip": 96}, "VerificationError", ["Tampered"]),
        _negative("sealed-R2-tampered", base, "check_sealed", {"flip": 32}, "DecodeError", ["Tampered"]),
        _negative("sealed-ct-tampered", base, "check_sealed", {"flip": 128}, "VerificationError", ["Tampered"]),
        _negative("sealed-under-another-label", base, "check_sealed_label", {"flip": 0}, "VerificationError",
                  ["WrongLabel"]),
        _negative("share-truncated", base, "share_decode", {"truncate": 95}, "DecodeError", ["Truncated"]),
        _negative("share-trailing-byte", base, "share_decode", {"append": "00"}, "DecodeError", ["TrailingBytes"]),
        _negative("share-z-unreduced", base, "share_decode", {"replace": [64, unreduced]}, "DecodeError",
                  ["NonCanonical"]),
        _negative("share-c-tampered", base, "verify_share", {"flip": 32}, "VerificationError", ["Tampered"]),
        _negative("share-z-tampered", base, "verify_share", {"flip": 64}, "VerificationError", ["Tampered"]),
        _negative("share-for-another-request", base, "verify_share_context", {"flip": 0}, "VerificationError",
                  ["WrongContext"]),
        _negative("combine-one-share-of-two", base, "combine", {"shares": 1}, "RecoveryError", ["TooFewShares"]),
        _negative("combine-duplicate-share", base, "combine", {"duplicate": True}, "VerificationError",
                  ["DuplicateShare"]),
    ]


def build() -> dict:
    vectors = [
        _case("2-of-3-authorities-1-and-3", 3, 2, [1, 3], b"SM-00002 / epoch 0"),
        _case("3-of-5-authorities-2-4-5", 5, 3, [2, 4, 5], b"a link record"),
        _case("all-3-of-3", 3, 3, [1, 2, 3], b""),
    ]
    vectors += _negatives(vectors[0])
    return {
        "protocol": PROTOCOL,
        "suite": SUITE,
        "source": "generated by the USaPP reference implementation; procedures in specs/threshold_elgamal.md "
                  "(labelled seal with its proof of well-formedness, decryption share with its DLEQ proof, "
                  "combination) and specs/frost.md section 7 (the key)",
        "generated_by": (f"usapp vectors generate (the key: HMAC_DRBG SHA-256 from_seed(dkg_seed) through "
                         f"groupkeys.operator_ceremony; r, then s, then each k: 64 bytes from "
                         f"HMAC_DRBG({SEED}<name>/randomness), little-endian, mod L)"),
        "description": (
            "Operation 'open'. Inputs: group (hex, the DKG's context), operators, threshold, dkg_seed, aad, plaintext "
            "(hex), r and s (hex scalars for seal_with_randomness: the ephemeral scalar and the "
            "well-formedness proof's nonce), context (hex, the re-identification request the "
            "shares are bound to), shares (identifier and k, the proof nonce, hex). Outputs: group_public_key, "
            "verifying_shares (authorities 1..n), sealed (R || R2 || e || f || ct), each share (D || c || z) "
            "and opened (the plaintext combine returns); dkg_draws, secret_shares and per-role intermediates "
            "(sealer, authority, combiner). Operation 'refuse' (result invalid): the same inputs, a target step "
            "and a change; the step MUST fail with 'error'. Format: specs/threshold_elgamal.md section 10."),
        "notes": NOTES,
        "vectors": vectors,
    }


FAMILY = VectorFamily(file=FILE, protocol=PROTOCOL, suite=SUITE, verify_vector=verify_vector, build=build)
