"""HPKE (RFC 9180) in Base mode with one fixed profile.

DHKEM(X25519, HKDF-SHA256), HKDF-SHA256, ChaCha20Poly1305: the KEM, KDF and
AEAD of RFC 9180 section 7 with ids 0x0020, 0x0001, 0x0003.  The profile is
the one issuance delivers keys with (specs/issuance.md section 7.1) and the
group key controller seals resyncs with (specs/groupkeys.md); both reproduce
RFC 9180 appendix A.2.1 (``vectors/hpke_rfc9180.json``).

The HPKE arithmetic is pyhpke's; this module adds the validation the
project's conventions ask for (lengths, small-order public keys, typed
errors) and draws the ephemeral key from an injected ``rng`` so that vectors
can pin it.  Function names follow RFC 9180.
"""

from __future__ import annotations

from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from pyhpke import AEADId, CipherSuite, KDFId, KEMId, OpenError
from pyhpke import ContextInterface as HpkeContext

from protocols.errors import DecodeError, ParameterError, VerificationError
from protocols.primitives import hashing, opcount
from protocols.primitives.rand import RandomSource, resolve

__all__ = [
    "HPKE_AEAD_ID", "HPKE_IKM_BYTES", "HPKE_KDF_ID", "HPKE_KEM_ID", "HPKE_MODE_BASE", "HPKE_PRIVATE_BYTES",
    "HPKE_PUBLIC_BYTES", "HPKE_SUITE_NAME", "HPKE_TAG_BYTES", "DeriveKeyPair", "HpkeContext", "OpenBase",
    "SealBase", "SetupBaseR", "SetupBaseS", "check_public_key", "public_key",
]

HPKE_PUBLIC_BYTES = 32
HPKE_PRIVATE_BYTES = 32
HPKE_IKM_BYTES = 32
HPKE_TAG_BYTES = 16

# RFC 9180 section 7 identifiers of the profile.
HPKE_MODE_BASE = 0x00
HPKE_KEM_ID = 0x0020
HPKE_KDF_ID = 0x0001
HPKE_AEAD_ID = 0x0003
HPKE_SUITE_NAME = "DHKEM(X25519, HKDF-SHA256), HKDF-SHA256, ChaCha20Poly1305"
_HPKE = CipherSuite.new(KEMId.DHKEM_X25519_HKDF_SHA256, KDFId.HKDF_SHA256, AEADId.CHACHA20_POLY1305)

def DeriveKeyPair(ikm: bytes) -> tuple[bytes, bytes]:
    """RFC 9180 section 7.1.3 for DHKEM(X25519, HKDF-SHA256): (skm, pkm), 32 bytes each."""
    if not isinstance(ikm, (bytes, bytearray)) or len(ikm) < HPKE_PRIVATE_BYTES:
        raise ParameterError(f"DeriveKeyPair needs at least {HPKE_PRIVATE_BYTES} bytes of ikm")
    if opcount.active():
        opcount.record("x25519")  # pk(sk)
        opcount.record("hash_block:sha256", _derive_key_pair_blocks(len(ikm)))
    pair = _HPKE.kem.derive_key_pair(bytes(ikm))
    return pair.private_key.to_private_bytes(), pair.public_key.to_public_bytes()


def check_public_key(pkm: bytes, what: str) -> None:
    """RFC 9180 sections 7.1.1, 7.1.4: 32 bytes, and not a point whose DH output is all zero."""
    if not isinstance(pkm, (bytes, bytearray)) or len(pkm) != HPKE_PUBLIC_BYTES:
        raise DecodeError(f"{what} must be {HPKE_PUBLIC_BYTES} bytes")
    # A clamped X25519 scalar is a multiple of 8, so any one of them maps a
    # small-order point to zero, which cryptography refuses (ValueError).
    opcount.record("x25519")  # a full ladder, counted: the check is a DH
    try:
        X25519PrivateKey.from_private_bytes(bytes(32)).exchange(X25519PublicKey.from_public_bytes(bytes(pkm)))
    except ValueError:
        raise DecodeError(f"{what} is a small-order X25519 point (RFC 9180 section 7.1.4)") from None


def SetupBaseS(pkRm: bytes, info: bytes, ikmE: bytes) -> tuple[bytes, HpkeContext]:
    """RFC 9180 section 5.1.1 with the ephemeral key pair DeriveKeyPair(ikmE) (section 4).

    Returns (enc, sender context).  ``pkRm`` is validated first (``DecodeError``).
    """
    check_public_key(pkRm, "HPKE recipient public key")
    if not isinstance(info, (bytes, bytearray)):
        raise ParameterError("info must be bytes")
    if not isinstance(ikmE, (bytes, bytearray)) or len(ikmE) < HPKE_PRIVATE_BYTES:
        raise ParameterError(f"ikmE must be at least {HPKE_PRIVATE_BYTES} bytes")
    if opcount.active():  # Encap: pk(skE) and DH(skE, pkR) (RFC 9180 section 4.1), then KeySchedule
        opcount.record("x25519", 2)
        opcount.record("hash_block:sha256", _derive_key_pair_blocks(len(ikmE)) + _EAE_BLOCKS
                       + _key_schedule_blocks(len(info)))
    ephemeral = _HPKE.kem.derive_key_pair(bytes(ikmE))
    recipient = _HPKE.kem.deserialize_public_key(bytes(pkRm))
    enc, context = _HPKE.create_sender_context(recipient, bytes(info), eks=ephemeral)
    return enc, context


def SetupBaseR(enc: bytes, skRm: bytes, info: bytes) -> HpkeContext:
    """RFC 9180 section 5.1.1, the recipient.  A failed decapsulation is a ``VerificationError``."""
    if not isinstance(enc, (bytes, bytearray)) or len(enc) != HPKE_PUBLIC_BYTES:
        raise DecodeError(f"HPKE enc must be {HPKE_PUBLIC_BYTES} bytes")
    if not isinstance(skRm, (bytes, bytearray)) or len(skRm) != HPKE_PRIVATE_BYTES:
        raise ParameterError(f"HPKE private key must be {HPKE_PRIVATE_BYTES} bytes")
    if not isinstance(info, (bytes, bytearray)):
        raise ParameterError("info must be bytes")
    if opcount.active():  # Decap: DH(skR, pkE) and pk(skR) (RFC 9180 section 4.1), then KeySchedule
        opcount.record("x25519", 2)
        opcount.record("hash_block:sha256", _EAE_BLOCKS + _key_schedule_blocks(len(info)))
    try:
        return _HPKE.create_recipient_context(bytes(enc), _HPKE.kem.deserialize_private_key(bytes(skRm)),
                                              bytes(info))
    except ValueError:  # the DH output is all zero: enc is a small-order point (section 7.1.4)
        raise VerificationError("HPKE decapsulation failed (small-order enc)") from None


def SealBase(pkRm: bytes, info: bytes, aad: bytes, pt: bytes,
             rng: RandomSource | None = None) -> tuple[bytes, bytes]:
    """RFC 9180 section 6.1: single-shot Base-mode encryption; returns (enc, ct).

    Draws ikmE (32 bytes) from ``rng`` and uses DeriveKeyPair(ikmE) as the
    ephemeral key pair: RFC 9180 section 4 allows GenerateKeyPair() to be
    DeriveKeyPair(random(Nsk)), and it lets a vector pin the ephemeral key.
    """
    if not isinstance(aad, (bytes, bytearray)) or not isinstance(pt, (bytes, bytearray)):
        raise ParameterError("aad and pt must be bytes")
    check_public_key(pkRm, "HPKE recipient public key")
    ikmE = resolve(rng).random_bytes(HPKE_IKM_BYTES)
    enc, context = SetupBaseS(pkRm, info, ikmE)
    _count_aead(len(pt))
    return enc, context.seal(bytes(pt), bytes(aad))


def OpenBase(enc: bytes, skRm: bytes, info: bytes, aad: bytes, ct: bytes) -> bytes:
    """RFC 9180 section 6.1: single-shot Base-mode decryption.

    Malformed lengths are a ``DecodeError``; a failed decapsulation or AEAD
    open is a ``VerificationError`` (the two are not told apart).
    """
    if not isinstance(ct, (bytes, bytearray)) or len(ct) < HPKE_TAG_BYTES:
        raise DecodeError(f"HPKE ciphertext must be at least {HPKE_TAG_BYTES} bytes")
    if not isinstance(aad, (bytes, bytearray)):
        raise ParameterError("aad must be bytes")
    context = SetupBaseR(enc, skRm, info)
    _count_aead(len(ct) - HPKE_TAG_BYTES)
    try:
        return context.open(bytes(ct), bytes(aad))
    except OpenError:  # pyhpke wraps every AEAD failure in OpenError
        raise VerificationError("HPKE ciphertext does not open") from None


def public_key(skRm: bytes) -> bytes:
    """The X25519 public key (32 bytes) of a private key (RFC 9180 section 7.1.1, SerializePublicKey)."""
    if not isinstance(skRm, (bytes, bytearray)) or len(skRm) != HPKE_PRIVATE_BYTES:
        raise ParameterError(f"HPKE private key must be {HPKE_PRIVATE_BYTES} bytes")
    opcount.record("x25519")
    return X25519PrivateKey.from_private_bytes(bytes(skRm)).public_key().public_bytes_raw()


# -- counting what pyhpke computes (specs/costs.md 2.1), by RFC 9180's formulas -------------------

_LABEL_PREFIX_BYTES = len(b"HPKE-v1")
_KEM_SUITE_ID_BYTES = len(b"KEM") + 2
"""suite_id of the KEM's own KDF calls, "KEM" || I2OSP(kem_id, 2) (RFC 9180 section 4.1)."""
_HPKE_SUITE_ID_BYTES = len(b"HPKE") + 6
"""suite_id of the key schedule, "HPKE" || kem_id || kdf_id || aead_id (RFC 9180 section 5.1)."""
_KEY_SCHEDULE_CONTEXT_BYTES = 1 + 32 + 32
"""mode || psk_id_hash || info_hash (RFC 9180 section 5.1)."""


def _labeled_extract_blocks(suite_id_bytes: int, label: bytes, ikm_bytes: int, salt_bytes: int = 0) -> int:
    """SHA-256 blocks of LabeledExtract(salt, label, ikm) = HMAC(salt, "HPKE-v1" || suite_id || label || ikm)."""
    return hashing.hmac_blocks("sha256", salt_bytes, _LABEL_PREFIX_BYTES + suite_id_bytes + len(label) + ikm_bytes)


def _labeled_expand_blocks(suite_id_bytes: int, label: bytes, info_bytes: int, length: int) -> int:
    """SHA-256 blocks of LabeledExpand(prk, label, info, L): HKDF-Expand (RFC 5869 section 2.3) of
    I2OSP(L, 2) || "HPKE-v1" || suite_id || label || info, one HMAC per 32 output bytes."""
    labeled_info = 2 + _LABEL_PREFIX_BYTES + suite_id_bytes + len(label) + info_bytes
    return sum(hashing.hmac_blocks("sha256", 32, (32 if i else 0) + labeled_info + 1)
               for i in range(-(-length // 32)))


def _derive_key_pair_blocks(ikm_bytes: int) -> int:
    """DeriveKeyPair for X25519 (RFC 9180 section 7.1.3): dkp_prk, then sk."""
    return (_labeled_extract_blocks(_KEM_SUITE_ID_BYTES, b"dkp_prk", ikm_bytes)
            + _labeled_expand_blocks(_KEM_SUITE_ID_BYTES, b"sk", 0, HPKE_PRIVATE_BYTES))


_EAE_BLOCKS = (_labeled_extract_blocks(_KEM_SUITE_ID_BYTES, b"eae_prk", 32)
               + _labeled_expand_blocks(_KEM_SUITE_ID_BYTES, b"shared_secret", 2 * HPKE_PUBLIC_BYTES, 32))
"""ExtractAndExpand(dh, enc || pkRm) of DHKEM (RFC 9180 section 4.1)."""


def _key_schedule_blocks(info_bytes: int) -> int:
    """KeySchedule in mode_base (RFC 9180 section 5.1): psk_id_hash, info_hash, secret, key,
    base_nonce and exporter_secret."""
    context = _KEY_SCHEDULE_CONTEXT_BYTES
    return (_labeled_extract_blocks(_HPKE_SUITE_ID_BYTES, b"psk_id_hash", 0)
            + _labeled_extract_blocks(_HPKE_SUITE_ID_BYTES, b"info_hash", info_bytes)
            + _labeled_extract_blocks(_HPKE_SUITE_ID_BYTES, b"secret", 0, salt_bytes=32)
            + _labeled_expand_blocks(_HPKE_SUITE_ID_BYTES, b"key", context, 32)
            + _labeled_expand_blocks(_HPKE_SUITE_ID_BYTES, b"base_nonce", context, 12)
            + _labeled_expand_blocks(_HPKE_SUITE_ID_BYTES, b"exp", context, 32))


def _count_aead(plaintext_bytes: int) -> None:
    """One ChaCha20-Poly1305 seal or open by pyhpke (specs/costs.md 2.1)."""
    opcount.record("aead_call:chacha20poly1305")
    opcount.record("aead_byte:chacha20poly1305", plaintext_bytes)
