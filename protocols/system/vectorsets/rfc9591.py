"""Vector family ``rfc9591``: RFC 9591 Appendix E.1, FROST(Ed25519, SHA-512)
(specs/frost.md section 8).

One vector: the trusted dealer's shares from the published coefficient, every
round-one nonce randomness, nonce, commitment, binding factor input and
binding factor, every signature share and the final signature.  The file is
transcribed by :func:`transcribe` from the project's checked copy of the
appendix (``reference-vectors/rfc9591_frost_ed25519.json``; values copied by
script, never retyped) and pinned by its digest.  :func:`verify_vector`
recomputes every value and names the first field that differs; it also checks
the signature with an independent RFC 8032 verifier (``cryptography``).
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from protocols.errors import VectorMismatchError
from protocols.primitives import ed25519 as G
from protocols.schemes import frost
from protocols.system.vectorsets import VectorFamily
from protocols.system.vectorsets._fields import (
    MAX_PARTIES,
    UINT64,
    bytes_field,
    derived_negative,
    dispatch,
    expect,
    expect_refusal,
    field,
    list_field,
    recompute,
    small_int_field,
    str_field,
)

PROTOCOL = "rfc9591"
SUITE = "FROST(Ed25519, SHA-512)"
FILE = "rfc9591.json"


# -- reading fields ------------------------------------------------------------------


def _mapping(vector: Mapping[str, Any], name: str) -> Mapping[str, Any]:
    value = field(vector, name)
    if not isinstance(value, dict):
        raise VectorMismatchError(f"field {name!r} must be an object")
    return value


def _scalar(vector: Mapping[str, Any], name: str, label: str | None = None) -> int:
    label = name if label is None else label
    return recompute(label, lambda: G.DeserializeScalar(bytes_field(vector, name)))


def _keys(value: Mapping[str, Any], name: str, expected: list[int]) -> None:
    if sorted(value) != sorted(str(i) for i in expected):
        raise VectorMismatchError(f"field {name!r} must have exactly the keys {[str(i) for i in expected]}")


def _hex(data: bytes) -> str:
    return data.hex()


# -- recomputation -----------------------------------------------------------------


def _frost_sign(v: Mapping[str, Any]) -> None:
    expect("context_string", str_field(v, "context_string"), frost.CONTEXT_STRING.decode("ascii"))
    config = _mapping(v, "config")
    MAX = small_int_field(config, "MAX_PARTICIPANTS", low=1, high=MAX_PARTIES)
    MIN = small_int_field(config, "MIN_PARTICIPANTS", low=1, high=MAX_PARTIES)
    NUM = small_int_field(config, "NUM_PARTICIPANTS", low=1, high=MAX_PARTIES)
    recompute("config", lambda: frost.check_parameters(MIN, MAX))
    if not MIN <= NUM <= MAX:
        raise VectorMismatchError("field 'config.NUM_PARTICIPANTS' is not in [MIN, MAX]")

    # Group input parameters: the dealer (Appendix C) with the given coefficients.
    group_secret_key = _scalar(v, "group_secret_key")
    group_public_key = recompute("group_public_key", lambda: G.ScalarBaseMult(group_secret_key))
    expect("group_public_key", bytes_field(v, "group_public_key"),
           recompute("group_public_key", lambda: G.SerializeElement(group_public_key)))
    raw_coeffs = field(v, "share_polynomial_coefficients")
    if not isinstance(raw_coeffs, list) or len(raw_coeffs) != MIN - 1:
        raise VectorMismatchError("field 'share_polynomial_coefficients' must list MIN_PARTICIPANTS - 1 scalars")
    coefficients = [_scalar({"c": c}, "c", f"share_polynomial_coefficients[{k + 1}]")
                    for k, c in enumerate(raw_coeffs)]
    shares, coeffs = recompute("participant_shares",
                                lambda: frost.secret_share_shard(group_secret_key, coefficients, MAX))
    stored_shares = _mapping(v, "participant_shares")
    _keys(stored_shares, "participant_shares", list(range(1, MAX + 1)))
    for i, sk_i in shares:
        expect(f"participant_shares.{i}", bytes_field(stored_shares, str(i)), G.SerializeScalar(sk_i))
    vss_commitment = frost.vss_commit(coeffs)
    key_packages, group_info = recompute(
        "participant_shares", lambda: frost.key_packages_from_dealer(shares, vss_commitment, MAX, MIN))
    expect("group_public_key", group_info.group_public_key, group_public_key)

    message = bytes_field(v, "message")
    participants = field(v, "participant_list")
    if (not isinstance(participants, list) or len(participants) != NUM
            or not all(isinstance(i, int) and not isinstance(i, bool) and 1 <= i <= MAX for i in participants)
            or participants != sorted(set(participants))):
        raise VectorMismatchError("field 'participant_list' must be NUM_PARTICIPANTS sorted distinct identifiers")

    # Round one.
    round_one = _mapping(v, "round_one")
    _keys(round_one, "round_one", participants)
    nonces: dict[int, frost.SigningNonces] = {}
    commitment_list = []
    for i in participants:
        r = _mapping(round_one, str(i))
        where = f"round_one.{i}"
        def commit(r: Mapping[str, Any] = r, i: int = i) -> tuple[frost.SigningNonces, frost.SigningCommitments]:
            return frost.commit_with_randomness(i, shares[i - 1][1], bytes_field(r, "hiding_nonce_randomness"),
                                                bytes_field(r, "binding_nonce_randomness"))

        n, c = recompute(f"{where}.hiding_nonce_randomness", commit)
        expect(f"{where}.hiding_nonce", bytes_field(r, "hiding_nonce"), G.SerializeScalar(n.hiding_nonce))
        expect(f"{where}.binding_nonce", bytes_field(r, "binding_nonce"), G.SerializeScalar(n.binding_nonce))
        expect(f"{where}.hiding_nonce_commitment", bytes_field(r, "hiding_nonce_commitment"),
               G.SerializeElement(c.hiding_nonce_commitment))
        expect(f"{where}.binding_nonce_commitment", bytes_field(r, "binding_nonce_commitment"),
               G.SerializeElement(c.binding_nonce_commitment))
        nonces[i] = n
        commitment_list.append(c)
    inputs = frost.compute_binding_factor_inputs(group_public_key, commitment_list, message)
    factors = frost.compute_binding_factors(group_public_key, commitment_list, message)
    for (i, rho_input), (_, rho) in zip(inputs, factors):
        r = _mapping(round_one, str(i))
        expect(f"round_one.{i}.binding_factor_input", bytes_field(r, "binding_factor_input"), rho_input)
        expect(f"round_one.{i}.binding_factor", bytes_field(r, "binding_factor"), G.SerializeScalar(rho))

    # Round two.
    round_two = _mapping(v, "round_two")
    _keys(round_two, "round_two", participants)
    sig_shares = []
    for i in participants:
        kp = key_packages[i - 1]
        share = frost.sign(i, kp.secret_share, group_public_key, nonces[i], message, commitment_list)
        expect(f"round_two.{i}.sig_share", bytes_field(_mapping(round_two, str(i)), "sig_share"), share.to_bytes())
        def verify_share(share: Any = share, i: int = i) -> None:
            frost.verify_signature_share(i, group_info.public_key(i), commitment_list[participants.index(i)],
                                         share.share, commitment_list, group_public_key, message)

        recompute(f"round_two.{i}.sig_share", verify_share)
        sig_shares.append(share)

    # Final output.
    final = _mapping(v, "final_output")
    signature = recompute("final_output.sig", lambda: frost.aggregate_and_verify(
        group_info, commitment_list, message, sig_shares))
    sig = bytes_field(final, "sig")
    expect("final_output.sig", sig, signature.to_bytes())
    try:
        Ed25519PublicKey.from_public_bytes(G.SerializeElement(group_public_key)).verify(sig, message)
    except (InvalidSignature, ValueError):
        raise VectorMismatchError("field 'final_output.sig' does not verify under RFC 8032 (cryptography)") from None


def _verify_rejects(v: Mapping[str, Any]) -> None:
    """The group's signature check (RFC 9591 section 6.1, RFC 8032 5.1.7) MUST refuse (message, sig)."""
    derived_negative(v, "E.1")
    group_public_key, message, sig = (bytes_field(v, name) for name in ("group_public_key", "message", "sig"))
    expect_refusal(v, lambda: frost.verify(message, sig, group_public_key))


def _share_rejects(v: Mapping[str, Any]) -> None:
    """verify_signature_share (RFC 9591 section 5.3) MUST refuse sig_share of ``identifier``."""
    derived_negative(v, "E.1")
    group_public_key, message = bytes_field(v, "group_public_key"), bytes_field(v, "message")
    identifier = small_int_field(v, "identifier", low=0, high=UINT64)
    verifying_share, sig_share = bytes_field(v, "verifying_share"), bytes_field(v, "sig_share")
    raw = list_field(v, "commitments", max_items=MAX_PARTIES)
    def commitment(c: Mapping[str, Any]) -> frost.SigningCommitments:
        return frost.SigningCommitments(
            small_int_field(c, "identifier", low=0, high=UINT64),
            G.DeserializeElement(bytes_field(c, "hiding_nonce_commitment")),
            G.DeserializeElement(bytes_field(c, "binding_nonce_commitment")))

    commitments = [recompute("commitments", functools.partial(commitment, c)) for c in raw]
    mine = [c for c in commitments if c.identifier == identifier]
    if len(mine) != 1:
        raise VectorMismatchError("field 'identifier' must name one entry of commitments", field="identifier")

    def attempt() -> None:
        frost.verify_signature_share(identifier, G.DeserializeElement(verifying_share), mine[0],
                                     G.DeserializeScalar(sig_share), commitments,
                                     G.DeserializeElement(group_public_key), message)

    expect_refusal(v, attempt)


OPERATIONS = {"frost_sign": _frost_sign, "verify-rejects": _verify_rejects, "share-rejects": _share_rejects}


def verify_vector(vector: Mapping[str, Any]) -> None:
    dispatch(OPERATIONS, vector)


NOTES = {
    "TamperedSignature": "z of the signature changed by one (z + 1 mod L, still canonical)",
    "WrongMessage": "the message's last byte XOR 0x01",
    "NonCanonical": "a scalar encoded as its value + L (>= L, so not reduced): DeserializeScalar refuses it",
    "WrongLength": "the signature is 63 bytes, not 64",
    "TamperedShare": "a signature share changed by one (z_i + 1 mod L)",
    "WrongIdentifier": "participant 3's valid share presented as participant 1's",
}
"""The flags of the derived negative vectors (the file's top-level notes)."""


def _le(value: int) -> str:
    return value.to_bytes(32, "little").hex()


def derive_negatives(valid: list[dict]) -> list[dict]:
    """Invalid vectors derived from E.1 by one change each (not in the RFC): the
    signature check and verify_signature_share MUST refuse them."""
    base = next(v for v in valid if v["name"] == "E.1")
    sig, message, gpk = base["final_output"]["sig"], base["message"], base["group_public_key"]
    z = int.from_bytes(bytes.fromhex(sig[64:]), "little")
    common = {"section": "E.1", "origin": "derived from the transcribed vector E.1 by one change (not in the RFC)",
              "group_public_key": gpk, "message": message}

    def negative(operation: str, name: str, change: str, fields: dict, error: str, flags: list[str]) -> dict:
        return {"name": f"E.1-{operation}-{name}", "operation": operation, "change": change, **common,
                **fields, "result": "invalid", "flags": flags, "error": error}

    participants = base["participant_list"]
    commitments = [{"identifier": i,
                    "hiding_nonce_commitment": base["round_one"][str(i)]["hiding_nonce_commitment"],
                    "binding_nonce_commitment": base["round_one"][str(i)]["binding_nonce_commitment"]}
                   for i in participants]
    first, last = participants[0], participants[-1]
    share_first = int.from_bytes(bytes.fromhex(base["round_two"][str(first)]["sig_share"]), "little")
    verifying_first = G.SerializeElement(G.ScalarBaseMult(
        int.from_bytes(bytes.fromhex(base["participant_shares"][str(first)]), "little"))).hex()
    share = {"identifier": first, "verifying_share": verifying_first, "commitments": commitments}
    return [
        negative("verify-rejects", "tampered-z", "z + 1 mod L", {"sig": sig[:64] + _le((z + 1) % G.L)},
                 "VerificationError", ["TamperedSignature"]),
        negative("verify-rejects", "wrong-message", "the last byte of message XOR 0x01",
                 {"message": message[:-2] + format(int(message[-2:], 16) ^ 1, "02x"), "sig": sig},
                 "VerificationError", ["WrongMessage"]),
        negative("verify-rejects", "z-not-reduced", "z encoded as z + L", {"sig": sig[:64] + _le(z + G.L)},
                 "DecodeError", ["NonCanonical"]),
        negative("verify-rejects", "sig-63-bytes", "sig without its last byte", {"sig": sig[:-2]},
                 "DecodeError", ["WrongLength"]),
        negative("share-rejects", "tampered-share", f"participant {first}'s share + 1 mod L",
                 {**share, "sig_share": _le((share_first + 1) % G.L)}, "VerificationError", ["TamperedShare"]),
        negative("share-rejects", "share-of-another", f"participant {last}'s share as participant {first}'s",
                 {**share, "sig_share": base["round_two"][str(last)]["sig_share"]}, "VerificationError",
                 ["WrongIdentifier"]),
        negative("share-rejects", "share-not-reduced", f"participant {first}'s share encoded as z_i + L",
                 {**share, "sig_share": _le(share_first + G.L)}, "DecodeError", ["NonCanonical"]),
    ]


# -- transcription --------------------------------------------------------------------


def transcribe(reference: Mapping[str, Any]) -> dict:
    """Build the envelope from ``reference-vectors/rfc9591_frost_ed25519.json``
    (the project's checked transcription of RFC 9591 Appendix E.1): values are
    copied by this function, grouped by round as the appendix groups them."""
    participants = list(reference["participant_list"])
    vector = {
        "name": "E.1",
        "operation": "frost_sign",
        "section": "E.1",
        "context_string": reference["context_string"],
        "config": dict(reference["config"]),
        "group_secret_key": reference["group_secret_key"],
        "group_public_key": reference["group_public_key"],
        "message": reference["message"],
        "share_polynomial_coefficients": list(reference["share_polynomial_coefficients"]),
        "participant_shares": dict(reference["participant_shares"]),
        "participant_list": participants,
        "round_one": {str(i): dict(reference["round_one"][str(i)]) for i in participants},
        "round_two": {str(i): {"sig_share": reference["sig_shares"][str(i)]} for i in participants},
        "final_output": {"sig": reference["sig"]},
    }
    return {
        "protocol": PROTOCOL,
        "suite": SUITE,
        "source": ("RFC 9591 (June 2024), Appendix E.1, FROST(Ed25519, SHA-512); values from the "
                   "'## FROST(Ed25519, SHA-512)' block of the Test Vectors appendix of draft-irtf-cfrg-frost-15 "
                   "(github.com/cfrg/draft-irtf-cfrg-frost, tag draft-irtf-cfrg-frost-15, commit "
                   "5d0ed9fc7cd5afb28db6bc6fafb01878449190d3), the text published as RFC 9591, as checked into "
                   "reference-vectors/rfc9591_frost_ed25519.json"),
        "generated_by": ("transcribed by protocols.system.vectorsets.rfc9591.transcribe from "
                         "reference-vectors/rfc9591_frost_ed25519.json (values copied by script, never retyped)"),
        "description": ("RFC 9591 known answer for FROST(Ed25519, SHA-512), 2-of-3 with participants 1 and 3: "
                        "the trusted dealer's shares (Appendix C) from the given coefficient, round one "
                        "(nonce randomness, nonces, commitments, binding factor inputs and binding factors), "
                        "round two (signature shares) and the final signature R || z. Scalars are 32-byte "
                        "little-endian hex, elements RFC 8032 compressed points, message is hex."),
        "notes": NOTES,
        "vectors": [vector, *derive_negatives([vector])],
    }


PINNED_SHA256 = "d3ea3c0363477e83b7ba9ba462276bab368292df98bd7a7211bc753c1f7978cb"

FAMILY = VectorFamily(file=FILE, protocol=PROTOCOL, suite=SUITE, verify_vector=verify_vector,
                      pinned_sha256=PINNED_SHA256)
