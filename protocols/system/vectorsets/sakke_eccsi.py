"""Vector family ``sakke-eccsi``: the SAKKE (RFC 6508, RFC 6509 Parameter Set 1)
and ECCSI (RFC 6507, P-256) suites with identifiers and key periods of RFC 6509
section 3.2, generated from fixed HMAC_DRBG seeds (specs/sakke_eccsi.md section 9).

Valid vectors play one whole run from one seed, recording every draw by name
in order (``draws``):

* ``eccsi``: the KMS's KeyGen (KSAK), ConstructSskPvt for the identifier
  (v), the signer's ValidateSsk, Sign of the message (j), and Verify, with
  every intermediate (RFC 6507 4.2, 5.1.1, 5.1.2, 5.2.1, 5.2.2);
* ``sakke``: the KMS's KeyGen (z), ExtractRSK, the receiver's ValidateRSK,
  Encapsulate (SSV; r derived from it) and Decapsulate, with every
  intermediate (RFC 6508 6.1, 6.1.1, 6.1.2, 6.2.1, 6.2.2).

Invalid vectors (``result: invalid``) hold only the inputs of one step and the
error it MUST raise: ``eccsi-verify`` (Verify), ``eccsi-validate``
(ValidateSsk), ``sakke-encapsulate`` (Encapsulate, refused before any draw),
``sakke-validate-rsk`` (ValidateRSK) and ``sakke-decapsulate`` (ValidateRSK of a
valid key, then Decapsulate).  :func:`verify_vector` replays each through the
real scheme code.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from protocols.errors import VectorMismatchError
from protocols.primitives.rand import ReplayRandom
from protocols.primitives.sakke_curve import PARAMETER_SET_1 as PS1
from protocols.primitives.sakke_curve import pairing, point_add, point_multiply
from protocols.primitives.supersingular import Point
from protocols.schemes import eccsi, sakke
from protocols.system.vectorsets import VectorFamily
from protocols.system.vectorsets._fields import (
    bytes_field,
    check_result,
    dispatch,
    expect,
    expect_outputs,
    list_field,
    recompute,
    str_field,
    vector_result,
)
from protocols.system.vectorsets.rfc6507 import Recorder

PROTOCOL = "sakke-eccsi"
SUITE = "SAKKE-RFC6509-ParameterSet1+ECCSI-P256-SHA256"
FILE = "sakke_eccsi.json"
SEED = "usapp-vectors/sakke-eccsi/"
COMMON = ("name", "operation", "role", "result", "flags", "error", "comment")
L = PS1.L
MAX_POINT = 2 * L + 2
"""Longest point field read (a 257-octet SAKKE point plus one trailing octet)."""

NOTES = {
    "Valid": "the whole run succeeds; every computed field must be reproduced byte for byte",
    "InvalidPoint": "a point that is not on the curve, or with a coordinate not below p",
    "WrongSubgroup": "a point of the SAKKE curve outside the subgroup of order q",
    "IdentityPoint": "the point at infinity written as 0x00 (SEC1) or as the affine (0, 0) some libraries use",
    "NonCanonical": "a compressed point (0x02 prefix) where RFC 6507/6508 section 3.2/4 require 0x04",
    "Truncated": "a field one octet (or more) shorter than its fixed length",
    "TrailingBytes": "a well-formed field with one octet appended",
    "OutOfRange": "an integer outside its range: r not in [1, p), s or SSK not in [1, q), an identifier not in [2, q)",
    "TamperedSignature": "r or s changed by one bit, staying in range",
    "WrongIdentity": "checked against another identifier (another URI, same period)",
    "WrongPeriod": "checked against the same URI in the next key period (RFC 6509 3.2)",
    "WrongMessage": "verified over another message",
    "WrongKms": "checked against another KMS's public key (KPAK or Z)",
    "WrongPvt": "a valid PVT of another identifier substituted",
    "PvtValidation": "KPAK != [SSK]G - [HS]PVT: the SSK and PVT fail RFC 6507 5.1.2 step 3",
    "RskValidation": "<[b]P + Z, K> != g: the RSK fails RFC 6508 6.1.2",
    "TamperedEncapsulation": "Encapsulated Data that parse but fail the check TEST = R_(b,S) (RFC 6508 6.2.2 step 5)",
    "EmptyIdentity": "the empty identifier",
}

# --------------------------------------------------------------------------
# Reading


def _point(v: Mapping[str, Any], name: str) -> bytes:
    return bytes_field(v, name, max_len=MAX_POINT)


def _id(v: Mapping[str, Any], name: str = "ID") -> bytes:
    return bytes_field(v, name, max_len=eccsi.MAX_ID_BYTES)


def _draws(v: Mapping[str, Any], names: tuple[str, ...]) -> list[bytes]:
    items = list_field(v, "draws", max_items=16)
    if not all(isinstance(d, dict) and set(d) == {"name", "hex"} for d in items):
        raise VectorMismatchError("field 'draws' must be a list of {name, hex}", field="draws")
    got = [d["name"] for d in items]
    if got != list(names):
        raise VectorMismatchError(f"field 'draws' must name {list(names)} in order", field="draws")
    return [bytes_field(d, "hex", max_len=L) for d in items]


def _identifier(v: Mapping[str, Any]) -> eccsi.Identifier:
    return recompute("period", lambda: eccsi.Identifier(str_field(v, "period", max_len=16),
                                                        str_field(v, "uri", max_len=eccsi.MAX_URI_BYTES)))


# --------------------------------------------------------------------------
# Valid runs

ECCSI_INPUTS = ("seed", "period", "uri", "message", "draws")


def _eccsi_run(v: Mapping[str, Any], rng: Any) -> dict[str, Any]:
    """KeyGen, ConstructSskPvt, ValidateSsk, Sign, Verify with ``rng``; every output."""
    ID = _identifier(v).encode()
    M = bytes_field(v, "message", max_len=eccsi.MAX_MESSAGE_BYTES)
    _label(rng, "KSAK")
    kms = eccsi.KeyGen(rng)
    _label(rng, "v")
    issued = eccsi.ConstructSskPvt(kms, ID, rng)
    key = eccsi.ValidateSsk(kms.KPAK, ID, issued.SSK, issued.PVT)
    _label(rng, "j")
    signature = eccsi.Sign(key, M, rng)
    return {"kms": kms, "ID": ID, "M": M, "issued": issued, "key": key, "signature": signature}


def _label(rng: Any, name: str) -> None:
    if isinstance(rng, Recorder):
        rng.label = name


def _op_eccsi(v: Mapping[str, Any]) -> tuple[tuple[str, ...], dict[str, Any]]:
    draws = _draws(v, ("KSAK", "v", "j"))
    replay = ReplayRandom(list(draws))
    run = _eccsi_run(v, replay)
    if not replay.exhausted:
        raise VectorMismatchError("field 'draws': not every draw is consumed", field="draws")
    recorder = Recorder(str_field(v, "seed"))
    again = _eccsi_run(v, recorder)
    if again["signature"] != run["signature"] or recorder.draws != list_field(v, "draws"):
        raise VectorMismatchError("field 'draws' is not what HMAC_DRBG(seed) yields", field="draws")
    kms, ID, M, issued, key = run["kms"], run["ID"], run["M"], run["issued"], run["key"]
    # the values the draws give (random_range(rng, 1, q) = 1 + the 32-octet draw), then every intermediate
    KSAK, v_scalar, j = (1 + int.from_bytes(d, "big") for d in draws)
    trace = eccsi.sign_with_j(key, M, j)
    expect("signature", trace.signature.hex(), run["signature"].hex())
    check = eccsi.verify_trace(kms.KPAK, ID, M, trace.signature)
    return ECCSI_INPUTS, {
        "ID": ID.hex(), "KSAK": eccsi.I2OSP_N(KSAK).hex(), "KPAK": kms.KPAK.hex(),
        "v": eccsi.I2OSP_N(v_scalar).hex(), "PVT": issued.PVT.hex(),
        "HS_input": eccsi.hs_input(kms.KPAK, ID, issued.PVT).hex(), "HS": key.HS.hex(), "SSK": issued.SSK.hex(),
        "j": eccsi.I2OSP_N(j).hex(), "J": trace.J.hex(), "r": eccsi.I2OSP_N(trace.r).hex(),
        "HE_input": eccsi.he_input(key.HS, trace.r, M).hex(), "HE": trace.HE.hex(),
        "s_prime": eccsi.I2OSP_N(trace.s_prime).hex(), "s": eccsi.I2OSP_N(trace.s).hex(),
        "signature": trace.signature.hex(), "verify_HS": check.HS.hex(), "verify_HE": check.HE.hex(),
        "Y": check.Y.hex(), "verify_J": check.J.hex()}


SAKKE_INPUTS = ("seed", "period", "uri", "draws")


def _sakke_run(v: Mapping[str, Any], rng: Any) -> dict[str, Any]:
    """KeyGen, ExtractRSK, ValidateRSK, Encapsulate, Decapsulate with ``rng``."""
    b = _identifier(v).encode()
    _label(rng, "z")
    kms = sakke.KeyGen(PS1, rng)
    rsk = sakke.ExtractRSK(kms, b)
    key = sakke.ValidateRSK(PS1, kms.public_key, b, rsk)
    _label(rng, "SSV")
    ssv, encapsulated = sakke.Encapsulate(PS1, kms.public_key, b, rng)
    if sakke.Decapsulate(key, encapsulated) != ssv:
        raise VectorMismatchError("field 'SSV': Decapsulate does not return the encapsulated SSV", field="SSV")
    return {"kms": kms, "b": b, "rsk": rsk, "key": key, "SSV": ssv, "encapsulated": encapsulated}


def _fp(value: int) -> str:
    return PS1.encode_fp(value).hex()


def _op_sakke(v: Mapping[str, Any]) -> tuple[tuple[str, ...], dict[str, Any]]:
    draws = _draws(v, ("z", "SSV"))
    replay = ReplayRandom(list(draws))
    run = _sakke_run(v, replay)
    if not replay.exhausted:
        raise VectorMismatchError("field 'draws': not every draw is consumed", field="draws")
    recorder = Recorder(str_field(v, "seed"))
    again = _sakke_run(v, recorder)
    if again["encapsulated"] != run["encapsulated"] or recorder.draws != list_field(v, "draws"):
        raise VectorMismatchError("field 'draws' is not what HMAC_DRBG(seed) yields", field="draws")
    kms, b, rsk, key = run["kms"], run["b"], run["rsk"], run["key"]
    q = int(PS1.q)
    inverse = pow((int.from_bytes(b, "big") + kms.z) % q, -1, q)
    trace = sakke.encapsulate_with_ssv(PS1, kms.public_key, b, int.from_bytes(run["SSV"], "big"))
    expect("encapsulated", trace.encapsulated.hex(), run["encapsulated"].hex())
    r_trace = sakke.hash_to_integer_range_trace(trace.SSV + b, q, PS1)
    dec = sakke.decapsulate_trace(key, trace.encapsulated)
    return SAKKE_INPUTS, {
        "b": b.hex(), "z": _fp(kms.z), "Z": kms.public_key.hex(), "rsk_inverse": _fp(inverse), "RSK": rsk.hex(),
        "bP_plus_Z": PS1.encode_point(key.base).hex(),
        "rsk_pairing": _fp(pairing(PS1.p, PS1.q, key.base, key.K)),
        "SSV": trace.SSV.hex(), "r_input": (trace.SSV + b).hex(), "r_A": r_trace.A.hex(),
        "r_v": [part.hex() for part in r_trace.v_parts], "r": _fp(trace.r), "R": trace.R.hex(),
        "g_r": _fp(trace.g_r), "mask": trace.mask.to_bytes(PS1.ssv_bytes, "big").hex(),
        "H": trace.H.to_bytes(PS1.ssv_bytes, "big").hex(), "encapsulated": trace.encapsulated.hex(),
        "w": _fp(dec.w), "decapsulated_SSV": dec.SSV.hex(), "decapsulated_r": _fp(dec.r),
        "TEST": dec.TEST.hex()}


# --------------------------------------------------------------------------
# Refusals (invalid vectors: inputs only)


def _eccsi_verify(v: Mapping[str, Any]) -> None:
    eccsi.Verify(_point(v, "KPAK"), _id(v), bytes_field(v, "message", max_len=eccsi.MAX_MESSAGE_BYTES),
                 bytes_field(v, "signature", max_len=eccsi.SIGNATURE_BYTES + 1))


def _eccsi_validate(v: Mapping[str, Any]) -> None:
    eccsi.ValidateSsk(_point(v, "KPAK"), _id(v), bytes_field(v, "SSK", max_len=eccsi.N + 1), _point(v, "PVT"))


def _sakke_encapsulate(v: Mapping[str, Any]) -> None:
    sakke.Encapsulate(PS1, _point(v, "Z"), _id(v, "b"), ReplayRandom([]))


def _sakke_validate(v: Mapping[str, Any]) -> None:
    sakke.ValidateRSK(PS1, _point(v, "Z"), _id(v, "b"), _point(v, "RSK"))


def _sakke_decapsulate(v: Mapping[str, Any]) -> None:
    key = recompute("RSK", lambda: sakke.ValidateRSK(PS1, _point(v, "Z"), _id(v, "b"), _point(v, "RSK")))
    sakke.Decapsulate(key, bytes_field(v, "encapsulated", max_len=MAX_POINT + PS1.ssv_bytes))


REFUSALS: dict[str, tuple[tuple[str, ...], Callable[[Mapping[str, Any]], None]]] = {
    "eccsi-verify": (("KPAK", "ID", "message", "signature"), _eccsi_verify),
    "eccsi-validate": (("KPAK", "ID", "SSK", "PVT"), _eccsi_validate),
    "sakke-encapsulate": (("Z", "b"), _sakke_encapsulate),
    "sakke-validate-rsk": (("Z", "b", "RSK"), _sakke_validate),
    "sakke-decapsulate": (("Z", "b", "RSK", "encapsulated"), _sakke_decapsulate),
}
RUNS: dict[str, Callable[[Mapping[str, Any]], tuple[tuple[str, ...], dict[str, Any]]]] = {
    "eccsi": _op_eccsi, "sakke": _op_sakke}
ROLES = {"eccsi": "kms+signer+verifier", "sakke": "kms+sender+receiver", "eccsi-verify": "verifier",
         "eccsi-validate": "signer", "sakke-encapsulate": "sender", "sakke-validate-rsk": "receiver",
         "sakke-decapsulate": "receiver"}


def _flags(v: Mapping[str, Any]) -> None:
    flags = list_field(v, "flags", max_items=8)
    if not flags or any(not isinstance(f, str) or f not in NOTES for f in flags):
        raise VectorMismatchError("field 'flags' must name flags documented in the file's notes", field="flags")


def _run_checked(operation: str) -> Callable[[Mapping[str, Any]], None]:
    def run(v: Mapping[str, Any]) -> None:
        expect("role", str_field(v, "role"), ROLES[operation])
        _flags(v)
        if vector_result(v) != "valid":
            raise VectorMismatchError(f"field 'result': {operation} vectors are valid", field="result")
        outcome: list[tuple[tuple[str, ...], dict[str, Any]]] = []
        check_result(v, lambda: outcome.append(RUNS[operation](v)))
        inputs, outputs = outcome[0]
        expect_outputs(v, outputs, (*COMMON, *inputs))
    return run


def _refusal_checked(operation: str) -> Callable[[Mapping[str, Any]], None]:
    inputs, attempt = REFUSALS[operation]

    def run(v: Mapping[str, Any]) -> None:
        expect("role", str_field(v, "role"), ROLES[operation])
        _flags(v)
        if vector_result(v) != "invalid":
            raise VectorMismatchError(f"field 'result': {operation} vectors are invalid", field="result")
        for key in v:
            if key not in (*COMMON, *inputs):
                raise VectorMismatchError(f"field {key!r} is not an input of {operation}", field=key)
        check_result(v, lambda: attempt(v))
    return run


OPERATIONS = {**{name: _run_checked(name) for name in RUNS}, **{name: _refusal_checked(name) for name in REFUSALS}}


def verify_vector(vector: Mapping[str, Any]) -> None:
    dispatch(OPERATIONS, vector)


# --------------------------------------------------------------------------
# Generation

ECCSI_CASES = (
    ("2026-01", "tel:+447700900123", b"billing record 2026-01-31 kWh=1234"),
    ("2026-02", "urn:usapp:meter:SM-0002", b""),
    ("2026-12", "tel:+15555550100", bytes(range(256))),
)
SAKKE_CASES = (
    ("2026-01", "urn:usapp:meter:SM-0001"),
    ("2026-02", "tel:+447700900123"),
)


def _vector(name: str, operation: str, inputs: dict[str, Any], flags: tuple[str, ...] = ("Valid",),
            error: str | None = None, comment: str | None = None) -> dict[str, Any]:
    vector: dict[str, Any] = {"name": name, "operation": operation, "role": ROLES[operation], **inputs}
    if operation in RUNS:
        vector.update(RUNS[operation](vector)[1])
        vector["result"] = "valid"
    else:
        vector["result"] = "invalid"
    vector["flags"] = list(flags)
    if error:
        vector["error"] = error
    if comment:
        vector["comment"] = comment
    if operation in REFUSALS:  # every invalid vector is refused with its error (a run's outputs are its own)
        OPERATIONS[operation](vector)
    return vector


def _run_vector(name: str, operation: str, seed: str, fields: dict[str, Any]) -> dict[str, Any]:
    recorder = Recorder(seed)
    probe = {"seed": seed, **fields, "draws": []}
    if operation == "eccsi":
        _eccsi_run(probe, recorder)
    else:
        _sakke_run(probe, recorder)
    return _vector(name, operation, {"seed": seed, **fields, "draws": recorder.draws})


def _flip(data: bytes, index: int) -> bytes:
    return data[:index] + bytes([data[index] ^ 1]) + data[index + 1:]


def _int32(value: int) -> bytes:
    return value.to_bytes(32, "big")


def _sakke_point(x: int, y: int) -> bytes:
    return b"\x04" + x.to_bytes(L, "big") + y.to_bytes(L, "big")


def outside_subgroup() -> bytes:
    """The point of E with the least x >= 3 whose order is not q (RFC 6508 section 3)."""
    p = int(PS1.p)
    x = 3
    while True:
        rhs = (x * x * x - 3 * x) % p
        y = pow(rhs, (p + 1) // 4, p)
        if y * y % p == rhs and not point_multiply(PS1.p, PS1.q, Point(x, y)).infinity:
            return _sakke_point(x, y)
        x += 1


def _eccsi_negatives(runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    base, other = runs[0], runs[1]
    KPAK, ID, M, sig = (bytes.fromhex(base[k]) for k in ("KPAK", "ID", "message", "signature"))
    r, s, PVT = sig[:32], sig[32:64], sig[64:]
    p, q = eccsi.p, eccsi.q
    off_curve = PVT[:-1] + bytes([PVT[-1] ^ 1])
    other_id = eccsi.Identifier(base["period"], other["uri"]).encode()
    next_id = eccsi.Identifier(eccsi.next_period(base["period"]), base["uri"]).encode()
    verify = {"KPAK": KPAK.hex(), "ID": ID.hex(), "message": M.hex(), "signature": sig.hex()}

    def with_sig(**parts: bytes) -> dict[str, Any]:
        new = parts.get("r", r) + parts.get("s", s) + parts.get("PVT", PVT)
        return {**verify, "signature": new.hex()}

    cases: list[tuple[str, dict[str, Any], tuple[str, ...], str, str]] = [
        ("pvt-off-curve", with_sig(PVT=off_curve), ("InvalidPoint",), "DecodeError", "last octet of PVT's y XOR 1"),
        ("pvt-x-not-below-p", with_sig(PVT=b"\x04" + _int32(p) + PVT[33:]), ("InvalidPoint", "OutOfRange"),
         "DecodeError", "PVT's x replaced by p"),
        ("pvt-identity-zero", with_sig(PVT=b"\x04" + bytes(64)), ("IdentityPoint", "InvalidPoint"), "DecodeError",
         "PVT = 0x04 || (0, 0)"),
        ("pvt-compressed", with_sig(PVT=b"\x02" + PVT[1:]), ("NonCanonical",), "DecodeError",
         "PVT's prefix 0x02"),
        ("kpak-off-curve", {**verify, "KPAK": (KPAK[:-1] + bytes([KPAK[-1] ^ 1])).hex()}, ("InvalidPoint",),
         "DecodeError", "last octet of KPAK's y XOR 1"),
        ("kpak-identity", {**verify, "KPAK": "00"}, ("IdentityPoint", "Truncated"), "DecodeError",
         "KPAK = 0x00, SEC1's point at infinity"),
        ("kpak-truncated", {**verify, "KPAK": KPAK[:-1].hex()}, ("Truncated",), "DecodeError", "KPAK of 64 octets"),
        ("signature-truncated", {**verify, "signature": sig[:-1].hex()}, ("Truncated",), "DecodeError",
         "128 octets"),
        ("signature-trailing-byte", {**verify, "signature": (sig + b"\x00").hex()}, ("TrailingBytes",),
         "DecodeError", "130 octets"),
        ("signature-pvt-identity", {**verify, "signature": (r + s + b"\x00").hex()}, ("IdentityPoint", "Truncated"),
         "DecodeError", "PVT = 0x00: 65 octets"),
        ("r-zero", with_sig(r=_int32(0)), ("OutOfRange",), "VerificationError", "r = 0"),
        ("r-p", with_sig(r=_int32(p)), ("OutOfRange",), "VerificationError", "r = p"),
        ("r-max", with_sig(r=_int32((1 << 256) - 1)), ("OutOfRange",), "VerificationError", "r = 2^256 - 1"),
        ("s-zero", with_sig(s=_int32(0)), ("OutOfRange",), "VerificationError", "s = 0"),
        ("s-q", with_sig(s=_int32(q)), ("OutOfRange",), "VerificationError", "s = q"),
        ("s-max", with_sig(s=_int32((1 << 256) - 1)), ("OutOfRange",), "VerificationError", "s = 2^256 - 1"),
        ("r-bit-flipped", with_sig(r=_flip(r, 31)), ("TamperedSignature",), "VerificationError", "r XOR 1"),
        ("s-bit-flipped", with_sig(s=_flip(s, 31)), ("TamperedSignature",), "VerificationError", "s XOR 1"),
        ("another-identity", {**verify, "ID": other_id.hex()}, ("WrongIdentity",), "VerificationError",
         "the same period, another URI"),
        ("another-period", {**verify, "ID": next_id.hex()}, ("WrongPeriod",), "VerificationError",
         "the same URI, the next month"),
        ("another-message", {**verify, "message": (M + b"\x00").hex()}, ("WrongMessage",), "VerificationError",
         "the message with 0x00 appended"),
        ("another-kms", {**verify, "KPAK": other["KPAK"]}, ("WrongKms",), "VerificationError",
         "another run's KPAK"),
        ("another-pvt", with_sig(PVT=bytes.fromhex(other["PVT"])), ("WrongPvt",), "VerificationError",
         "another run's valid PVT"),
        ("empty-identity", {**verify, "ID": ""}, ("EmptyIdentity",), "ParameterError", "ID of 0 octets"),
    ]
    out = [_vector(f"eccsi-verify-invalid-{label}", "eccsi-verify", inputs, flags, error, comment)
           for label, inputs, flags, error, comment in cases]
    SSK = bytes.fromhex(base["SSK"])
    validate = {"KPAK": KPAK.hex(), "ID": ID.hex(), "SSK": SSK.hex(), "PVT": PVT.hex()}
    vcases: list[tuple[str, dict[str, Any], tuple[str, ...], str, str]] = [
        ("ssk-of-another-identity", {**validate, "SSK": other["SSK"]}, ("PvtValidation",), "VerificationError",
         "another run's SSK"),
        ("ssk-plus-one", {**validate, "SSK": _int32(int.from_bytes(SSK, "big") % (q - 1) + 1).hex()},
         ("PvtValidation",), "VerificationError", "SSK + 1"),
        ("pvt-of-another-identity", {**validate, "PVT": other["PVT"]}, ("PvtValidation", "WrongPvt"),
         "VerificationError", "another run's PVT"),
        ("another-period", {**validate, "ID": next_id.hex()}, ("PvtValidation", "WrongPeriod"),
         "VerificationError", "the key checked for the next month's identifier"),
        ("another-kms", {**validate, "KPAK": other["KPAK"]}, ("PvtValidation", "WrongKms"), "VerificationError",
         "another run's KPAK"),
        ("ssk-zero", {**validate, "SSK": _int32(0).hex()}, ("OutOfRange",), "VerificationError", "SSK = 0"),
        ("ssk-q", {**validate, "SSK": _int32(q).hex()}, ("OutOfRange",), "VerificationError", "SSK = q"),
        ("ssk-truncated", {**validate, "SSK": SSK[:-1].hex()}, ("Truncated",), "DecodeError", "SSK of 31 octets"),
        ("ssk-trailing-byte", {**validate, "SSK": (SSK + b"\x00").hex()}, ("TrailingBytes",), "DecodeError",
         "SSK of 33 octets"),
        ("pvt-off-curve", {**validate, "PVT": off_curve.hex()}, ("InvalidPoint",), "DecodeError",
         "last octet of PVT's y XOR 1"),
        ("pvt-truncated", {**validate, "PVT": PVT[:-1].hex()}, ("Truncated",), "DecodeError", "PVT of 64 octets"),
        ("kpak-off-curve", {**validate, "KPAK": (KPAK[:-1] + bytes([KPAK[-1] ^ 1])).hex()}, ("InvalidPoint",),
         "DecodeError", "last octet of KPAK's y XOR 1"),
    ]
    out += [_vector(f"eccsi-validate-invalid-{label}", "eccsi-validate", inputs, flags, error, comment)
            for label, inputs, flags, error, comment in vcases]
    return out


def _sakke_negatives(runs: list[dict[str, Any]], extra: bytes) -> list[dict[str, Any]]:
    """Refusals of the sender and receiver of run 0; ``extra`` is Encapsulated Data
    of run 0's KMS to run 1's identifier."""
    base, other = runs[0], runs[1]
    Z, b, RSK, enc = (bytes.fromhex(base[k]) for k in ("Z", "b", "RSK", "encapsulated"))
    p, q = int(PS1.p), int(PS1.q)
    n_point = PS1.point_bytes
    R, H = enc[:n_point], enc[n_point:]
    off = Z[:-1] + bytes([Z[-1] ^ 1])
    order2 = _sakke_point(0, 0)
    outside = outside_subgroup()
    R_point = PS1.decode_point(R)
    R2 = PS1.encode_point(point_add(PS1.p, R_point, R_point))
    out: list[dict[str, Any]] = []
    ecases: list[tuple[str, dict[str, Any], tuple[str, ...], str, str]] = [
        ("z-off-curve", {"Z": off.hex()}, ("InvalidPoint",), "DecodeError", "last octet of Z's y XOR 1"),
        ("z-x-not-below-p", {"Z": (b"\x04" + p.to_bytes(L, "big") + Z[1 + L:]).hex()},
         ("InvalidPoint", "OutOfRange"), "DecodeError", "Z's x replaced by p"),
        ("z-order-2", {"Z": order2.hex()}, ("WrongSubgroup", "IdentityPoint"), "DecodeError",
         "Z = (0, 0), on E, of order 2"),
        ("z-outside-subgroup", {"Z": outside.hex()}, ("WrongSubgroup",), "DecodeError",
         "Z a point of E of order other than q"),
        ("z-identity", {"Z": "00"}, ("IdentityPoint", "Truncated"), "DecodeError", "Z = 0x00"),
        ("z-truncated", {"Z": Z[:-1].hex()}, ("Truncated",), "DecodeError", "Z of 256 octets"),
        ("z-trailing-byte", {"Z": (Z + b"\x00").hex()}, ("TrailingBytes",), "DecodeError", "Z of 258 octets"),
        ("b-below-2", {"b": "01"}, ("OutOfRange",), "ParameterError", "b = 1"),
        ("b-not-below-q", {"b": q.to_bytes(L, "big").hex()}, ("OutOfRange",), "ParameterError", "b = q"),
        ("b-empty", {"b": ""}, ("EmptyIdentity", "OutOfRange"), "ParameterError", "b of 0 octets (the integer 0)"),
    ]
    start = {"Z": Z.hex(), "b": b.hex()}
    out += [_vector(f"sakke-encapsulate-invalid-{label}", "sakke-encapsulate", {**start, **change}, flags, error,
                    comment) for label, change, flags, error, comment in ecases]
    rcases: list[tuple[str, dict[str, Any], tuple[str, ...], str, str]] = [
        ("rsk-of-another-identity", {"b": other["b"]}, ("RskValidation", "WrongIdentity"), "VerificationError",
         "run 0's RSK checked for run 1's identifier"),
        ("rsk-under-another-kms", {"Z": other["Z"]}, ("RskValidation", "WrongKms"), "VerificationError",
         "run 0's RSK checked against run 1's Z"),
        ("rsk-is-p", {"RSK": PS1.encode_point(PS1.P).hex()}, ("RskValidation",), "VerificationError",
         "RSK = P, in the subgroup but not the key"),
        ("rsk-off-curve", {"RSK": (RSK[:-1] + bytes([RSK[-1] ^ 1])).hex()}, ("InvalidPoint",), "DecodeError",
         "last octet of the RSK's y XOR 1"),
        ("rsk-order-2", {"RSK": order2.hex()}, ("WrongSubgroup", "IdentityPoint"), "DecodeError", "RSK = (0, 0)"),
        ("rsk-outside-subgroup", {"RSK": outside.hex()}, ("WrongSubgroup",), "DecodeError",
         "RSK a point of E of order other than q"),
        ("rsk-identity", {"RSK": "00" * n_point}, ("IdentityPoint",), "DecodeError", "RSK = 0x00 || zeros"),
        ("rsk-truncated", {"RSK": RSK[:-1].hex()}, ("Truncated",), "DecodeError", "RSK of 256 octets"),
        ("rsk-trailing-byte", {"RSK": (RSK + b"\x00").hex()}, ("TrailingBytes",), "DecodeError",
         "RSK of 258 octets"),
        ("b-below-2", {"b": "01"}, ("OutOfRange",), "ParameterError", "b = 1"),
    ]
    key = {"Z": Z.hex(), "b": b.hex(), "RSK": RSK.hex()}
    out += [_vector(f"sakke-validate-rsk-invalid-{label}", "sakke-validate-rsk", {**key, **change}, flags, error,
                    comment) for label, change, flags, error, comment in rcases]
    dcases: list[tuple[str, bytes, tuple[str, ...], str, str]] = [
        ("truncated", enc[:-1], ("Truncated",), "InvalidCiphertextError", "272 octets"),
        ("trailing-byte", enc + b"\x00", ("TrailingBytes",), "InvalidCiphertextError", "274 octets"),
        ("empty", b"", ("Truncated",), "InvalidCiphertextError", "0 octets"),
        ("r-off-curve", R[:-1] + bytes([R[-1] ^ 1]) + H, ("InvalidPoint",), "InvalidCiphertextError",
         "last octet of R_(b,S)'s y XOR 1"),
        ("r-x-not-below-p", b"\x04" + p.to_bytes(L, "big") + R[1 + L:] + H, ("InvalidPoint", "OutOfRange"),
         "InvalidCiphertextError", "R_(b,S)'s x replaced by p"),
        ("r-order-2", order2 + H, ("WrongSubgroup", "IdentityPoint"), "InvalidCiphertextError", "R_(b,S) = (0, 0)"),
        ("r-outside-subgroup", outside + H, ("WrongSubgroup",), "InvalidCiphertextError",
         "R_(b,S) a point of E of order other than q"),
        ("r-identity", bytes(n_point) + H, ("IdentityPoint",), "InvalidCiphertextError", "R_(b,S) = 0x00 || zeros"),
        ("r-compressed", b"\x02" + R[1:] + H, ("NonCanonical",), "InvalidCiphertextError", "R_(b,S)'s prefix 0x02"),
        ("h-bit-flipped", enc[:-1] + bytes([enc[-1] ^ 1]), ("TamperedEncapsulation",), "VerificationError",
         "last octet of H XOR 1"),
        ("r-doubled", R2 + H, ("TamperedEncapsulation",), "VerificationError",
         "R_(b,S) replaced by [2]R_(b,S), in the subgroup"),
        ("for-another-identity", extra, ("TamperedEncapsulation", "WrongIdentity"), "VerificationError",
         "Encapsulated Data of the same KMS to run 1's identifier"),
    ]
    out += [_vector(f"sakke-decapsulate-invalid-{label}", "sakke-decapsulate", {**key, "encapsulated": data.hex()},
                    flags, error, comment) for label, data, flags, error, comment in dcases]
    return out


def build() -> dict[str, Any]:
    eccsi_runs = [_run_vector(f"eccsi-{i}", "eccsi", f"{SEED}eccsi-{i}",
                              {"period": period, "uri": uri, "message": message.hex()})
                  for i, (period, uri, message) in enumerate(ECCSI_CASES)]
    sakke_runs = [_run_vector(f"sakke-{i}", "sakke", f"{SEED}sakke-{i}", {"period": period, "uri": uri})
                  for i, (period, uri) in enumerate(SAKKE_CASES)]
    extra = sakke.encapsulate_with_ssv(PS1, bytes.fromhex(sakke_runs[0]["Z"]), bytes.fromhex(sakke_runs[1]["b"]),
                                       int.from_bytes(bytes.fromhex(sakke_runs[0]["SSV"]), "big")).encapsulated
    vectors = [*eccsi_runs, *sakke_runs, *_eccsi_negatives(eccsi_runs), *_sakke_negatives(sakke_runs, extra)]
    return {
        "protocol": PROTOCOL,
        "suite": SUITE,
        "source": ("generated by the USaPP reference implementation; specs/sakke_eccsi.md sections 3, 4, 8 and 9 "
                   "(SAKKE: RFC 6508 on RFC 6509 Parameter Set 1; ECCSI: RFC 6507 on P-256; errors; vectors)"),
        "generated_by": (f"usapp vectors generate (HMAC_DRBG SHA-256 from_seed; each run from the seed in its "
                         f"'seed' field, {SEED}eccsi-<i> and {SEED}sakke-<i>)"),
        "description": ("Whole ECCSI runs (KeyGen, ConstructSskPvt, ValidateSsk, Sign, Verify) and SAKKE runs "
                        "(KeyGen, ExtractRSK, ValidateRSK, Encapsulate, Decapsulate) for RFC 6509 identifiers, with "
                        "every draw in order and every intermediate; and one invalid vector per refusal of the "
                        "verifier, the signer's key validation, the sender, and the receiver's RSK validation and "
                        "decapsulation, with the spec's error."),
        "parameters": {"eccsi_curve": "P-256", "hash": "SHA-256", "sakke_parameters": PS1.name,
                       "sakke_n": PS1.n, "sakke_L": L},
        "notes": NOTES,
        "vectors": vectors,
    }


FAMILY = VectorFamily(file=FILE, protocol=PROTOCOL, suite=SUITE, verify_vector=verify_vector, build=build)
