"""Vector family ``rfc9474``: RFC 9474 Appendix A, RSA blind signatures
(RSABSSA-SHA384, all four named variants; specs/blind_rsa.md section 8).

``vectors/rfc9474.json`` is transcribed, not generated: :func:`transcribe`
copies the values of the project's checked reference set
``reference-vectors/rfc9474_vectors.json`` (parsed by script from the
appendix of draft-irtf-cfrg-rsa-blind-signatures-14, the text published as
RFC 9474; never retyped), and the file is pinned by its digest.  One vector
per variant (A.1 to A.4), each with the RFC's field names and encodings: every
value is the RFC's hex string (byte strings; p, q, n, e, d, inv read with
OS2IP), so a vendor can diff them against the RFC.

Given the key (p, q, n, e, d), msg, msg_prefix, salt and inv,
:func:`verify_vector` recomputes prepared_msg (4.1), encoded_msg
(EMSA-PSS-ENCODE), blinded_msg (4.2 with r = inv^-1 mod n), blind_sig (4.3),
sig (4.4, which checks it with both this implementation's RSASSA-PSS-VERIFY
and pyca ``cryptography``'s), and the computed intermediate r; any difference
is a VectorMismatchError naming the field.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from protocols.errors import VectorMismatchError
from protocols.primitives.numtheory import invert
from protocols.schemes import blind_rsa
from protocols.system.vectorsets import VectorFamily
from protocols.system.vectorsets._fields import (
    MAX_MODULUS_BITS,
    bytes_field,
    derived_negative,
    dispatch,
    expect,
    expect_refusal,
    field,
    recompute,
    str_field,
)

PROTOCOL = "rfc9474"
SUITE = "RSABSSA-SHA384"
FILE = "rfc9474.json"

SECTIONS = {
    "RSABSSA-SHA384-PSS-Randomized": "A.1",
    "RSABSSA-SHA384-PSSZERO-Randomized": "A.2",
    "RSABSSA-SHA384-PSS-Deterministic": "A.3",
    "RSABSSA-SHA384-PSSZERO-Deterministic": "A.4",
}
"""Appendix A subsection of each variant's test vector."""

KEY_FIELDS = ("p", "q", "n", "e", "d")
INPUT_FIELDS = ("msg", "msg_prefix", "salt", "inv")
COMPUTED_FIELDS = ("prepared_msg", "encoded_msg", "blinded_msg", "blind_sig", "sig")


def _nonempty_int(vector: Mapping[str, Any], name: str) -> int:
    value = bytes_field(vector, name, max_len=MAX_MODULUS_BITS // 8)
    if not value:
        raise VectorMismatchError(f"field {name!r} must not be empty")
    return int(blind_rsa.OS2IP(value))


def _intermediates(vector: Mapping[str, Any]) -> Mapping[str, Any]:
    value = field(vector, "computed_intermediates")
    if not isinstance(value, dict) or set(value) != {"r"}:
        raise VectorMismatchError("field 'computed_intermediates' must be an object with exactly ['r']")
    return value


def _rsabssa(v: Mapping[str, Any]) -> None:
    variant = recompute("variant", lambda: blind_rsa.variant(str_field(v, "variant")))
    expect("section", str_field(v, "section"), SECTIONS[variant.name])
    p, q, n, e, d = (_nonempty_int(v, name) for name in KEY_FIELDS)
    sk = recompute("p", lambda: blind_rsa.load_private_key(n, e, d, p, q))
    pk = sk.public
    k = pk.modulus_len

    # 4.1 Prepare, with the recorded msg_prefix.
    msg, msg_prefix, salt = bytes_field(v, "msg"), bytes_field(v, "msg_prefix"), bytes_field(v, "salt")
    prepared = recompute("msg_prefix", lambda: blind_rsa.Prepare_with_prefix(msg, msg_prefix, variant))
    expect("prepared_msg", bytes_field(v, "prepared_msg"), prepared)

    # 4.2 Blind, step 1 (EMSA-PSS-ENCODE with the recorded salt).
    encoded = recompute("salt", lambda: blind_rsa.encode_message(pk, prepared, variant, salt))
    expect("encoded_msg", bytes_field(v, "encoded_msg"), encoded)

    # 4.2 Blind, steps 3-12, with r = inv^-1 mod n.
    inv_bytes = bytes_field(v, "inv")
    if len(inv_bytes) != k:
        raise VectorMismatchError(f"field 'inv' must be {k} bytes")
    inv = int(blind_rsa.OS2IP(inv_bytes))
    if not 1 <= inv < pk.n:
        raise VectorMismatchError("field 'inv' must satisfy 1 <= inv < n")
    r = recompute("inv", lambda: invert(inv, pk.n))
    expect("computed_intermediates.r", bytes_field(_intermediates(v), "r"), blind_rsa.I2OSP(r, k))
    blinded_msg, inv_again = recompute(
        "blinded_msg", lambda: blind_rsa.Blind_with_randomness(pk, prepared, variant, salt, r))
    expect("blinded_msg", bytes_field(v, "blinded_msg"), blinded_msg)
    expect("inv", inv_bytes, blind_rsa.I2OSP(inv_again, k))

    # 4.3 BlindSign, 4.4 Finalize (which runs 4.5 Verify with both verifiers).
    blind_sig = recompute("blind_sig", lambda: blind_rsa.BlindSign(sk, blinded_msg))
    expect("blind_sig", bytes_field(v, "blind_sig"), blind_sig)
    sig = recompute("sig", lambda: blind_rsa.Finalize(pk, prepared, blind_sig, inv, variant))
    stored_sig = bytes_field(v, "sig")
    expect("sig", stored_sig, sig)
    recompute("sig", lambda: blind_rsa.Verify(pk, prepared, stored_sig, variant))


def _public(v: Mapping[str, Any]) -> blind_rsa.PublicKey:
    n, e = _nonempty_int(v, "n"), _nonempty_int(v, "e")
    return recompute("n", lambda: blind_rsa.load_private_key(
        n, e, _nonempty_int(v, "d"), _nonempty_int(v, "p"), _nonempty_int(v, "q"))).public


def _verify_rejects(v: Mapping[str, Any]) -> None:
    """4.5 Verify MUST refuse (prepared_msg, sig) with ``error``."""
    derived_negative(v, "A.1")
    variant = recompute("variant", lambda: blind_rsa.variant(str_field(v, "variant")))
    pk = _public(v)
    prepared, sig = bytes_field(v, "prepared_msg"), bytes_field(v, "sig")
    expect_refusal(v, lambda: blind_rsa.Verify(pk, prepared, sig, variant))


def _blind_sign_rejects(v: Mapping[str, Any]) -> None:
    """4.3 BlindSign MUST refuse blinded_msg with ``error``."""
    derived_negative(v, "A.1")
    p, q, n, e, d = (_nonempty_int(v, name) for name in KEY_FIELDS)
    sk = recompute("p", lambda: blind_rsa.load_private_key(n, e, d, p, q))
    blinded = bytes_field(v, "blinded_msg")
    expect_refusal(v, lambda: blind_rsa.BlindSign(sk, blinded))


def _finalize_rejects(v: Mapping[str, Any]) -> None:
    """4.4 Finalize MUST refuse (blind_sig, inv) with ``error``."""
    derived_negative(v, "A.1")
    variant = recompute("variant", lambda: blind_rsa.variant(str_field(v, "variant")))
    pk = _public(v)
    prepared, blind_sig = bytes_field(v, "prepared_msg"), bytes_field(v, "blind_sig")
    inv = int(blind_rsa.OS2IP(bytes_field(v, "inv")))
    expect_refusal(v, lambda: blind_rsa.Finalize(pk, prepared, blind_sig, inv, variant))


OPERATIONS = {
    "rsabssa": _rsabssa,
    "verify-rejects": _verify_rejects,
    "blind-sign-rejects": _blind_sign_rejects,
    "finalize-rejects": _finalize_rejects,
}


def verify_vector(vector: Mapping[str, Any]) -> None:
    dispatch(OPERATIONS, vector)


NOTES = {
    "TamperedSignature": "one bit of the signature or blind signature is flipped",
    "WrongMessage": "the message verified is not the prepared message that was signed (one bit flipped)",
    "WrongVariant": "verified under another variant (PSSZERO, sLen 0) than the one it was made with (PSS, sLen 48)",
    "WrongLength": "a value is not modulus_len (512) bytes",
    "OutOfRange": "a value's integer is outside its range (>= n, or inv = 0)",
}
"""The flags of the derived negative vectors (the file's top-level notes)."""


def _flip_last(hex_bytes: str) -> str:
    return hex_bytes[:-2] + format(int(hex_bytes[-2:], 16) ^ 1, "02x")


def derive_negatives(valid: list[dict]) -> list[dict]:
    """Invalid vectors derived from A.1 (RSABSSA-SHA384-PSS-Randomized) by one
    change each: Verify (4.5), BlindSign (4.3) and Finalize (4.4) MUST refuse
    them with the named error (specs/blind_rsa.md)."""
    base = next(v for v in valid if v["section"] == "A.1")
    key = {name: base[name] for name in ("n", "e", "d", "p", "q")}
    n_bytes = base["n"]

    def negative(operation: str, name: str, change: str, fields: dict, error: str, flags: list[str]) -> dict:
        return {"name": f"A.1-{operation}-{name}", "operation": operation, "section": "A.1",
                "origin": "derived from the transcribed vector A.1 by one change (not in the RFC)",
                "change": change, **key, **fields, "result": "invalid", "flags": flags, "error": error}

    verify = {"variant": base["variant"], "prepared_msg": base["prepared_msg"], "sig": base["sig"]}
    finalize = {"variant": base["variant"], "prepared_msg": base["prepared_msg"],
                "blind_sig": base["blind_sig"], "inv": base["inv"]}
    return [
        negative("verify-rejects", "tampered-sig", "the last byte of sig XOR 0x01",
                 {**verify, "sig": _flip_last(base["sig"])}, "VerificationError", ["TamperedSignature"]),
        negative("verify-rejects", "wrong-message", "the last byte of prepared_msg XOR 0x01",
                 {**verify, "prepared_msg": _flip_last(base["prepared_msg"])}, "VerificationError",
                 ["WrongMessage"]),
        negative("verify-rejects", "wrong-variant", "verified as RSABSSA-SHA384-PSSZERO-Randomized",
                 {**verify, "variant": "RSABSSA-SHA384-PSSZERO-Randomized"}, "VerificationError", ["WrongVariant"]),
        negative("verify-rejects", "sig-511-bytes", "sig without its last byte",
                 {**verify, "sig": base["sig"][:-2]}, "VerificationError", ["WrongLength"]),
        negative("verify-rejects", "sig-equals-n", "sig = I2OSP(n, 512)",
                 {**verify, "sig": n_bytes}, "VerificationError", ["OutOfRange"]),
        negative("blind-sign-rejects", "blinded-msg-equals-n", "blinded_msg = I2OSP(n, 512)",
                 {"blinded_msg": n_bytes}, "DecodeError", ["OutOfRange"]),
        negative("blind-sign-rejects", "blinded-msg-511-bytes", "blinded_msg without its last byte",
                 {"blinded_msg": base["blinded_msg"][:-2]}, "DecodeError", ["WrongLength"]),
        negative("finalize-rejects", "tampered-blind-sig", "the last byte of blind_sig XOR 0x01",
                 {**finalize, "blind_sig": _flip_last(base["blind_sig"])}, "VerificationError",
                 ["TamperedSignature"]),
        negative("finalize-rejects", "inv-zero", "inv = 0 (512 zero bytes)",
                 {**finalize, "inv": "00" * 512}, "ParameterError", ["OutOfRange"]),
    ]


# --------------------------------------------------------------------------
# Transcription from the shared reference set


_A4_NOTE = (
    "A.4 as printed in draft-irtf-cfrg-rsa-blind-signatures-14 (the text published as RFC 9474). "
    "cloudflare/blindrsa-ts's RFC-labelled JSON has the same key, msg, encoded_msg and sig for this "
    "variant but another inv, hence another blinded_msg and blind_sig; both sets are self-consistent "
    "(the signature is deterministic). Not resolved against the RFC text itself "
    "(reference-vectors/rfc9474_vectors.json, other_variants_note).")


def transcribe(reference: Mapping[str, Any]) -> dict:
    """Build the envelope from ``reference-vectors/rfc9474_vectors.json``:
    the RFC's fields are copied unchanged; ``computed_intermediates.r``
    (inv^-1 mod n, as modulus_len bytes) is computed here.  Every vector must
    verify before the envelope is returned."""
    vectors = []
    for ref in [*reference["vectors"], *reference["other_variants"]]:
        name = ref["name"]
        section = SECTIONS[name]
        n = int(ref["n"], 16)
        k = (n.bit_length() + 7) // 8
        r = invert(int(ref["inv"], 16), n)
        vector = {
            "name": f"{section} {name}",
            "operation": "rsabssa",
            "variant": name,
            "section": section,
            "origin": (f"RFC 9474 Appendix {section}, '{name} Test Vector', transcribed; "
                       "reproduced byte for byte"),
            **{key: ref[key] for key in (*KEY_FIELDS, *INPUT_FIELDS, *COMPUTED_FIELDS)},
            "computed_intermediates": {"r": blind_rsa.I2OSP(r, k).hex()},
        }
        if section == "A.4":
            vector["note"] = _A4_NOTE
        vectors.append(vector)
    envelope: dict[str, Any] = {
        "protocol": PROTOCOL,
        "suite": SUITE,
        "source": ("RFC 9474 (Denis, Jacobs, Wood, 'RSA Blind Signatures', October 2023), Appendix A "
                   "(A.1-A.4); values from the Test Vectors appendix of "
                   "draft-irtf-cfrg-rsa-blind-signatures-14 (github.com/cfrg/draft-irtf-cfrg-blind-signatures, "
                   "tag draft-irtf-cfrg-rsa-blind-signatures-14), the text published as RFC 9474, as checked "
                   "into reference-vectors/rfc9474_vectors.json"),
        "generated_by": ("transcribed by protocols.system.vectorsets.rfc9474.transcribe from "
                         "reference-vectors/rfc9474_vectors.json (values copied by script, never retyped; "
                         "computed_intermediates.r computed)"),
        "description": ("RFC 9474 known answers for the four RSABSSA-SHA384 variants with the appendix's "
                        "4096-bit key: PrepareRandomize / PrepareIdentity with the given msg_prefix, "
                        "EMSA-PSS-ENCODE with the given salt (MGF1-SHA-384), Blind with r = inv^-1 mod n, "
                        "BlindSign, Finalize. Every value is the RFC's hex (I2OSP, big-endian)."),
        "parameters": {"hash": "SHA-384", "mgf": "MGF1-SHA-384", "msg_prefix_len": blind_rsa.MSG_PREFIX_LEN,
                       "modulus_bits": 4096},
        "notes": NOTES,
        "vectors": vectors + derive_negatives(vectors),
    }
    for vector in envelope["vectors"]:
        verify_vector(vector)
    return envelope


PINNED_SHA256 = "e549791ecfb74410fedc1d6adffbd5f5976d36023b426413e4a2690f3d52e7a7"

FAMILY = VectorFamily(file=FILE, protocol=PROTOCOL, suite=SUITE, verify_vector=verify_vector,
                      pinned_sha256=PINNED_SHA256)
