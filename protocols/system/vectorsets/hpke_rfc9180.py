"""Vector family ``hpke-rfc9180``: RFC 9180's published vector for the HPKE
profile of key delivery (specs/issuance.md section 7.1 and 13).

RFC 9180 Appendix A.2.1: DHKEM(X25519, HKDF-SHA256), HKDF-SHA256,
ChaCha20Poly1305, Base mode -- its setup (every key and key-schedule
intermediate), its six encryptions (A.2.1.1) and three exported values
(A.2.1.2).  The appendix text is kept verbatim below (:data:`RFC_TEXT`,
copied from the RFC's plain text) and :func:`transcribe` parses the values
from it, never retyped; the file is pinned by its digest.

Beside the published vector the transcriber derives negative vectors from
it (one change each to sequence 0's inputs: ciphertext, enc, info, aad,
lengths), each naming the error ``OpenBase`` must raise.  They are not in
the RFC and are labelled so.

Verification runs the published values through the code path of key
delivery (:func:`protocols.schemes.hpke.SealBase` with the RFC's ikmE as its one
random draw, :func:`~protocols.schemes.hpke.OpenBase`, and the sender and
recipient contexts of ``SetupBaseS`` / ``SetupBaseR``), and recomputes the
key-schedule intermediates with a separate, plain implementation of RFC 9180
sections 4, 4.1 and 5.1 written here on ``hmac``/``hashlib`` (so the
intermediates pyhpke keeps private are checked too).
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Callable, Mapping
from typing import Any

from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305

from protocols import errors
from protocols.schemes import hpke
from protocols.errors import UsappError, VectorMismatchError
from protocols.primitives.rand import ReplayRandom
from protocols.system.vectorsets import VectorFamily
from protocols.system.vectorsets._fields import (
    bytes_field,
    dispatch,
    expect,
    expect_refusal,
    field,
    small_int_field,
    str_field,
    vector_result,
)

PROTOCOL = "hpke-rfc9180"
SUITE = hpke.HPKE_SUITE_NAME
FILE = "hpke_rfc9180.json"

RFC_TEXT = """\
A.2.  DHKEM(X25519, HKDF-SHA256), HKDF-SHA256, ChaCha20Poly1305

A.2.1.  Base Setup Information

   mode: 0
   kem_id: 32
   kdf_id: 1
   aead_id: 3
   info: 4f6465206f6e2061204772656369616e2055726e
   ikmE:
   909a9b35d3dc4713a5e72a4da274b55d3d3821a37e5d099e74a647db583a904b
   pkEm:
   1afa08d3dec047a643885163f1180476fa7ddb54c6a8029ea33f95796bf2ac4a
   skEm:
   f4ec9b33b792c372c1d2c2063507b684ef925b8c75a42dbcbf57d63ccd381600
   ikmR:
   1ac01f181fdf9f352797655161c58b75c656a6cc2716dcb66372da835542e1df
   pkRm:
   4310ee97d88cc1f088a5576c77ab0cf5c3ac797f3d95139c6c84b5429c59662a
   skRm:
   8057991eef8f1f1af18f4a9491d16a1ce333f695d4db8e38da75975c4478e0fb
   enc:
   1afa08d3dec047a643885163f1180476fa7ddb54c6a8029ea33f95796bf2ac4a
   shared_secret:
   0bbe78490412b4bbea4812666f7916932b828bba79942424abb65244930d69a7
   key_schedule_context: 00431df6cd95e11ff49d7013563baf7f11588c75a6611e
   e2a4404a49306ae4cfc5b69c5718a60cc5876c358d3f7fc31ddb598503f67be58ea1
   e798c0bb19eb9796
   secret:
   5b9cd775e64b437a2335cf499361b2e0d5e444d5cb41a8a53336d8fe402282c6
   key:
   ad2744de8e17f4ebba575b3f5f5a8fa1f69c2a07f6e7500bc60ca6e3e3ec1c91
   base_nonce: 5c4d98150661b848853b547f
   exporter_secret:
   a3b010d4994890e2c6968a36f64470d3c824c8f5029942feb11e7a74b2921922

A.2.1.1.  Encryptions

   sequence number: 0
   pt: 4265617574792069732074727574682c20747275746820626561757479
   aad: 436f756e742d30
   nonce: 5c4d98150661b848853b547f
   ct: 1c5250d8034ec2b784ba2cfd69dbdb8af406cfe3ff938e131f0def8c8b60b4db
   21993c62ce81883d2dd1b51a28

   sequence number: 1
   pt: 4265617574792069732074727574682c20747275746820626561757479
   aad: 436f756e742d31
   nonce: 5c4d98150661b848853b547e
   ct: 6b53c051e4199c518de79594e1c4ab18b96f081549d45ce015be002090bb119e
   85285337cc95ba5f59992dc98c

   sequence number: 2
   pt: 4265617574792069732074727574682c20747275746820626561757479
   aad: 436f756e742d32
   nonce: 5c4d98150661b848853b547d
   ct: 71146bd6795ccc9c49ce25dda112a48f202ad220559502cef1f34271e0cb4b02
   b4f10ecac6f48c32f878fae86b

   sequence number: 4
   pt: 4265617574792069732074727574682c20747275746820626561757479
   aad: 436f756e742d34
   nonce: 5c4d98150661b848853b547b
   ct: 63357a2aa291f5a4e5f27db6baa2af8cf77427c7c1a909e0b37214dd47db122b
   b153495ff0b02e9e54a50dbe16

   sequence number: 255
   pt: 4265617574792069732074727574682c20747275746820626561757479
   aad: 436f756e742d323535
   nonce: 5c4d98150661b848853b5480
   ct: 18ab939d63ddec9f6ac2b60d61d36a7375d2070c9b683861110757062c52b888
   0a5f6b3936da9cd6c23ef2a95c

   sequence number: 256
   pt: 4265617574792069732074727574682c20747275746820626561757479
   aad: 436f756e742d323536
   nonce: 5c4d98150661b848853b557f
   ct: 7a4a13e9ef23978e2c520fd4d2e757514ae160cd0cd05e556ef692370ca53076
   214c0c40d4c728d6ed9e727a5b

A.2.1.2.  Exported Values

   exporter_context:
   L: 32
   exported_value:
   4bbd6243b8bb54cec311fac9df81841b6fd61f56538a775e7c80a9f40160606e

   exporter_context: 00
   L: 32
   exported_value:
   8c1df14732580e5501b00f82b10a1647b40713191b7c1240ac80e2b68808ba69

   exporter_context: 54657374436f6e74657874
   L: 32
   exported_value:
   5acb09211139c43b3090489a9da433e8a30ee7188ba8b0a9a1ccf0c229283e53

A.2.2.  PSK Setup Information
"""
"""RFC 9180 Appendix A.2.1 as printed in the RFC's plain text (page breaks
removed), from its heading to the next section's heading."""

MAX_SEQUENCE = 4096
"""Largest sequence number a vector may list (verification seals every number up to it)."""

_SETUP_FIELDS = ("mode", "kem_id", "kdf_id", "aead_id", "info", "ikmE", "pkEm", "skEm", "ikmR", "pkRm",
                 "skRm", "enc", "shared_secret", "key_schedule_context", "secret", "key", "base_nonce",
                 "exporter_secret")
_SMALL = ("mode", "kem_id", "kdf_id", "aead_id")
_ENCRYPTION_FIELDS = ("sequence number", "pt", "aad", "nonce", "ct")
_EXPORT_FIELDS = ("exporter_context", "L", "exported_value")


# -- transcription -------------------------------------------------------------------


def _section(text: str, start: str, end: str) -> str:
    if text.count(start) != 1 or text.count(end) != 1:
        raise ValueError(f"headings {start!r} and {end!r} must occur once each")
    begin = text.index(start) + len(start)
    return text[begin:text.index(end, begin)]


def _records(block: str, names: tuple[str, ...]) -> list[dict[str, str]]:
    """The ``name: value`` records of a block; a value may continue on the next
    lines (hex only) or start on the line after its name."""
    records = []
    for chunk in re.split(r"\n\s*\n", block.strip("\n")):
        record: dict[str, list[str]] = {}
        key = None
        for line in chunk.split("\n"):
            stripped = line.strip()
            head = re.fullmatch(r"([A-Za-z_ ]+):\s*([0-9a-f]*)", stripped)
            if head:
                key = head.group(1)
                if key not in names or key in record:
                    raise ValueError(f"unexpected or repeated field {key!r}")
                record[key] = [head.group(2)]
            elif key is not None and re.fullmatch(r"[0-9a-f]+", stripped):
                record[key].append(stripped)
            else:
                raise ValueError(f"unparsed line {stripped!r}")
        if tuple(record) != names:
            raise ValueError(f"record has fields {list(record)}, expected {list(names)}")
        records.append({k: "".join(parts) for k, parts in record.items()})
    return records


def _flip(hex_bytes: str, index: int) -> str:
    data = bytearray.fromhex(hex_bytes)
    data[index] ^= 0x01
    return data.hex()


def transcribe(text: str = RFC_TEXT) -> dict:
    """Build the envelope from the text of RFC 9180 Appendix A.2.1."""
    setup = _section(text, "A.2.1.  Base Setup Information\n", "A.2.1.1.  Encryptions\n")
    encryptions = _section(text, "A.2.1.1.  Encryptions\n", "A.2.1.2.  Exported Values\n")
    exports = _section(text, "A.2.1.2.  Exported Values\n", "A.2.2.  PSK Setup Information\n")
    (base,) = _records(setup, _SETUP_FIELDS)
    vector: dict[str, Any] = {"name": "A.2.1", "operation": "base", "section": "RFC 9180 A.2.1"}
    for name in _SETUP_FIELDS:
        vector[name] = int(base[name]) if name in _SMALL else base[name]
    vector["encryptions"] = [
        {"sequence_number": int(r["sequence number"]), "pt": r["pt"], "aad": r["aad"], "nonce": r["nonce"],
         "ct": r["ct"]} for r in _records(encryptions, _ENCRYPTION_FIELDS)]
    vector["exports"] = [{"exporter_context": r["exporter_context"], "L": int(r["L"]),
                          "exported_value": r["exported_value"]} for r in _records(exports, _EXPORT_FIELDS)]
    first = vector["encryptions"][0]
    if first["sequence_number"] != 0:
        raise ValueError("the first encryption must be sequence number 0")
    negative = {"skRm": vector["skRm"], "enc": vector["enc"], "info": vector["info"], "aad": first["aad"],
                "ct": first["ct"]}
    changes = [
        ("ct-last-byte", "the last byte of ct (the tag) XOR 0x01", {"ct": _flip(first["ct"], -1)},
         "VerificationError", ["TamperedTag"]),
        ("ct-first-byte", "the first byte of ct XOR 0x01", {"ct": _flip(first["ct"], 0)}, "VerificationError",
         ["TamperedCiphertext"]),
        ("enc-first-byte", "the first byte of enc XOR 0x01", {"enc": _flip(vector["enc"], 0)},
         "VerificationError", ["TamperedEnc"]),
        ("enc-small-order", "enc replaced by the all-zero (small-order) X25519 point", {"enc": "00" * 32},
         "VerificationError", ["SmallOrderPoint"]),
        ("info-last-byte", "the last byte of info XOR 0x01", {"info": _flip(vector["info"], -1)},
         "VerificationError", ["WrongInfo"]),
        ("aad-of-sequence-1", "aad of sequence number 1 with the ct of sequence number 0",
         {"aad": vector["encryptions"][1]["aad"]}, "VerificationError", ["WrongAad"]),
        ("ct-truncated-by-one", "ct without its last byte", {"ct": first["ct"][:-2]}, "VerificationError",
         ["Truncated"]),
        ("ct-shorter-than-tag", "ct cut to 15 bytes, shorter than the 16-byte tag", {"ct": first["ct"][:30]},
         "DecodeError", ["Truncated", "ShorterThanTag"]),
        ("enc-31-bytes", "enc without its last byte", {"enc": vector["enc"][:-2]}, "DecodeError",
         ["Truncated", "WrongLength"]),
    ]
    vectors = [vector]
    for name, what, change, error, flags in changes:
        vectors.append({"name": f"A.2.1-reject-{name}", "operation": "open-rejects",
                        "section": "derived from RFC 9180 A.2.1, sequence number 0 (not in the RFC)",
                        "change": what, **negative, **change, "result": "invalid", "flags": flags,
                        "error": error})
    return {
        "protocol": PROTOCOL,
        "suite": SUITE,
        "source": ("RFC 9180 (Hybrid Public Key Encryption), Appendix A.2.1 (Base Setup Information), "
                   "A.2.1.1 (Encryptions), A.2.1.2 (Exported Values); the RFC's plain text, kept verbatim "
                   "in protocols/system/vectorsets/hpke_rfc9180.py (RFC_TEXT)"),
        "generated_by": ("transcribed by protocols.system.vectorsets.hpke_rfc9180.transcribe (values parsed, "
                         "never retyped); negative vectors derived from A.2.1 by the same function"),
        "description": ("The HPKE profile of key delivery (specs/issuance.md 7.1): mode, ids, the two key "
                        "pairs from ikmE and ikmR, enc, every key-schedule intermediate, the encryptions at "
                        "sequence numbers 0, 1, 2, 4, 255, 256 and three exported values, all as the RFC "
                        "prints them (hex); then negative vectors, each one change to sequence 0's inputs "
                        "that OpenBase MUST reject with the named error."),
        "notes": NOTES,
        "vectors": vectors,
    }


NOTES = {
    "TamperedTag": "a bit of the AEAD tag (the last 16 bytes of ct) is flipped: Open MUST fail authentication",
    "TamperedCiphertext": "a bit of the ciphertext body is flipped: Open MUST fail authentication",
    "TamperedEnc": "a bit of enc is flipped: a different shared secret, so Open MUST fail authentication",
    "SmallOrderPoint": "enc is a small-order X25519 point: DH gives the all-zero value, refused (RFC 9180 7.1.4)",
    "WrongInfo": "info differs from the sender's: a different key schedule, so Open MUST fail authentication",
    "WrongAad": "aad differs from the sender's: Open MUST fail authentication",
    "Truncated": "an input is shorter than the one the sender produced",
    "ShorterThanTag": "ct is shorter than the 16-byte tag: malformed, refused before any decryption",
    "WrongLength": "enc is not Nenc = 32 bytes: malformed, refused before any decapsulation",
}
"""The flags of the negative vectors (the file's top-level notes)."""


# -- an independent key schedule (RFC 9180 sections 4, 4.1, 5.1, 7.1.3) ----------------

_KEM_SUITE_ID = b"KEM" + hpke.HPKE_KEM_ID.to_bytes(2, "big")
_HPKE_SUITE_ID = (b"HPKE" + hpke.HPKE_KEM_ID.to_bytes(2, "big") + hpke.HPKE_KDF_ID.to_bytes(2, "big")
                  + hpke.HPKE_AEAD_ID.to_bytes(2, "big"))


def _extract(salt: bytes, ikm: bytes) -> bytes:
    return hmac.new(salt, ikm, hashlib.sha256).digest()


def _expand(prk: bytes, info: bytes, length: int) -> bytes:
    out, block, counter = b"", b"", 1
    while len(out) < length:
        block = hmac.new(prk, block + info + bytes([counter]), hashlib.sha256).digest()
        out += block
        counter += 1
    return out[:length]


def _labeled_extract(suite_id: bytes, salt: bytes, label: bytes, ikm: bytes) -> bytes:
    return _extract(salt, b"HPKE-v1" + suite_id + label + ikm)


def _labeled_expand(suite_id: bytes, prk: bytes, label: bytes, info: bytes, length: int) -> bytes:
    return _expand(prk, length.to_bytes(2, "big") + b"HPKE-v1" + suite_id + label + info, length)


def _plain_schedule(v: Mapping[str, Any]) -> dict[str, bytes]:
    """Every intermediate of Base mode, from the vector's keys, without pyhpke."""
    sk_e = _labeled_expand(_KEM_SUITE_ID, _labeled_extract(_KEM_SUITE_ID, b"", b"dkp_prk", bytes_field(v, "ikmE")),
                           b"sk", b"", 32)
    sk_r = _labeled_expand(_KEM_SUITE_ID, _labeled_extract(_KEM_SUITE_ID, b"", b"dkp_prk", bytes_field(v, "ikmR")),
                           b"sk", b"", 32)
    pk_e = X25519PrivateKey.from_private_bytes(sk_e).public_key().public_bytes_raw()
    pk_r = X25519PrivateKey.from_private_bytes(sk_r).public_key().public_bytes_raw()
    dh = X25519PrivateKey.from_private_bytes(sk_e).exchange(X25519PublicKey.from_public_bytes(pk_r))
    if dh != X25519PrivateKey.from_private_bytes(sk_r).exchange(X25519PublicKey.from_public_bytes(pk_e)):
        raise VectorMismatchError("X25519 does not agree between sender and recipient")
    eae_prk = _labeled_extract(_KEM_SUITE_ID, b"", b"eae_prk", dh)
    shared_secret = _labeled_expand(_KEM_SUITE_ID, eae_prk, b"shared_secret", pk_e + pk_r, 32)
    psk_id_hash = _labeled_extract(_HPKE_SUITE_ID, b"", b"psk_id_hash", b"")
    info_hash = _labeled_extract(_HPKE_SUITE_ID, b"", b"info_hash", bytes_field(v, "info"))
    context = bytes([hpke.HPKE_MODE_BASE]) + psk_id_hash + info_hash
    secret = _labeled_extract(_HPKE_SUITE_ID, shared_secret, b"secret", b"")
    return {
        "skEm": sk_e, "pkEm": pk_e, "skRm": sk_r, "pkRm": pk_r, "enc": pk_e, "shared_secret": shared_secret,
        "key_schedule_context": context, "secret": secret,
        "key": _labeled_expand(_HPKE_SUITE_ID, secret, b"key", context, 32),
        "base_nonce": _labeled_expand(_HPKE_SUITE_ID, secret, b"base_nonce", context, 12),
        "exporter_secret": _labeled_expand(_HPKE_SUITE_ID, secret, b"exp", context, 32),
    }


# -- verification ------------------------------------------------------------------


def _recompute(name: str, compute: Callable[[], Any]) -> Any:
    try:
        return compute()
    except UsappError as exc:
        raise VectorMismatchError(f"field {name!r}: the code raised {type(exc).__name__}: {exc}") from None


def _list_of_objects(v: Mapping[str, Any], name: str) -> list[Mapping[str, Any]]:
    value = field(v, name)
    if not isinstance(value, list) or not value or any(not isinstance(item, dict) for item in value):
        raise VectorMismatchError(f"field {name!r} must be a non-empty list of objects")
    return value


def _base(v: Mapping[str, Any]) -> None:
    for name, expected in (("mode", hpke.HPKE_MODE_BASE), ("kem_id", hpke.HPKE_KEM_ID),
                           ("kdf_id", hpke.HPKE_KDF_ID), ("aead_id", hpke.HPKE_AEAD_ID)):
        expect(name, small_int_field(v, name), expected)
    info = bytes_field(v, "info")
    # Key pairs through the protocol's DeriveKeyPair (RFC 9180 7.1.3).
    sk_e, pk_e = _recompute("skEm", lambda: hpke.DeriveKeyPair(bytes_field(v, "ikmE")))
    expect("skEm", bytes_field(v, "skEm"), sk_e)
    expect("pkEm", bytes_field(v, "pkEm"), pk_e)
    sk_r, pk_r = _recompute("skRm", lambda: hpke.DeriveKeyPair(bytes_field(v, "ikmR")))
    expect("skRm", bytes_field(v, "skRm"), sk_r)
    expect("pkRm", bytes_field(v, "pkRm"), pk_r)
    # Every intermediate through the plain key schedule.
    plain = _plain_schedule(v)
    for name, value in plain.items():
        expect(name, bytes_field(v, name), value)
    # Sequence 0 through the exact call key delivery makes: SealBase, one draw of ikmE.
    encryptions = _list_of_objects(v, "encryptions")
    first = encryptions[0]
    if small_int_field(first, "sequence_number") != 0:
        raise VectorMismatchError("field 'encryptions': the first must be sequence number 0")
    draws = ReplayRandom([bytes_field(v, "ikmE")])
    enc, ct0 = _recompute("ct", lambda: hpke.SealBase(pk_r, info, bytes_field(first, "aad"),
                                                          bytes_field(first, "pt"), draws))
    if not draws.exhausted:
        raise VectorMismatchError("SealBase did not draw exactly ikmE")
    expect("enc", bytes_field(v, "enc"), enc)
    expect("encryptions[0].ct", bytes_field(first, "ct"), ct0)
    expect("encryptions[0].pt", _recompute("pt", lambda: hpke.OpenBase(
        enc, sk_r, info, bytes_field(first, "aad"), ct0)), bytes_field(first, "pt"))
    # All sequence numbers through the sender and recipient contexts.
    enc_s, sender = _recompute("enc", lambda: hpke.SetupBaseS(pk_r, info, bytes_field(v, "ikmE")))
    expect("enc", enc_s, enc)
    recipient = _recompute("enc", lambda: hpke.SetupBaseR(enc, sk_r, info))
    aead = ChaCha20Poly1305(plain["key"])
    sequence = 0
    for i, item in enumerate(encryptions):
        seq = small_int_field(item, "sequence_number")
        if not sequence <= seq <= MAX_SEQUENCE:
            raise VectorMismatchError(f"field 'encryptions[{i}].sequence_number': must increase and be at "
                                      f"most {MAX_SEQUENCE}")
        while sequence < seq:                      # advance both contexts past unlisted numbers
            recipient.open(sender.seal(b"", b""), b"")
            sequence += 1
        pt, aad = bytes_field(item, "pt"), bytes_field(item, "aad")
        nonce = bytes(a ^ b for a, b in zip(plain["base_nonce"], seq.to_bytes(12, "big")))
        expect(f"encryptions[{i}].nonce", bytes_field(item, "nonce"), nonce)
        ct = sender.seal(pt, aad)
        expect(f"encryptions[{i}].ct", bytes_field(item, "ct"), ct)
        expect(f"encryptions[{i}].ct", ct, aead.encrypt(nonce, pt, aad))
        expect(f"encryptions[{i}].pt", recipient.open(ct, aad), pt)
        sequence += 1
    for i, item in enumerate(_list_of_objects(v, "exports")):
        context, length = bytes_field(item, "exporter_context"), small_int_field(item, "L")
        if not 1 <= length <= 255 * 32:
            raise VectorMismatchError(f"field 'exports[{i}].L' out of range")
        value = sender.export(context, length)
        expect(f"exports[{i}].exported_value", bytes_field(item, "exported_value"), value)
        expect(f"exports[{i}].exported_value", recipient.export(context, length), value)
        expect(f"exports[{i}].exported_value", value,
               _labeled_expand(_HPKE_SUITE_ID, plain["exporter_secret"], b"sec", context, length))


_ERRORS = {"DecodeError": errors.DecodeError, "VerificationError": errors.VerificationError}


def _open_rejects(v: Mapping[str, Any]) -> None:
    """An invalid vector: OpenBase MUST refuse it with exactly its ``error``."""
    wanted = str_field(v, "error")
    if wanted not in _ERRORS:
        raise VectorMismatchError(f"field 'error': unknown error {wanted!r}", field="error")
    if vector_result(v) != "invalid":
        raise VectorMismatchError("field 'result': an open-rejects vector is invalid", field="result")
    str_field(v, "change")
    inputs = [bytes_field(v, name) for name in ("enc", "skRm", "info", "aad", "ct")]
    expect_refusal(v, lambda: hpke.OpenBase(*inputs))


OPERATIONS: dict[str, Callable[[Mapping[str, Any]], None]] = {
    "base": _base,
    "open-rejects": _open_rejects,
}


def verify_vector(vector: Mapping[str, Any]) -> None:
    dispatch(OPERATIONS, vector)


PINNED_SHA256 = "2754e90431f758a03085b736cef138dd4c6c7a0d9c8fb51b6ca5cc020a9c24d1"

FAMILY = VectorFamily(file=FILE, protocol=PROTOCOL, suite=SUITE, verify_vector=verify_vector,
                      pinned_sha256=PINNED_SHA256)
