"""Hybrid encryption of arbitrary data to an identity: an IBE suite used as a
KEM, then ChaCha20-Poly1305 (specs/ibe.md 4.4).

The envelope binds the suite, the identity and the key epoch into the AEAD's
associated data, so a ciphertext cannot be moved to another suite, identity
or epoch without failing.  Two suites:

- ``usapp-bf-ibe-bls12381-v1`` (:mod:`protocols.schemes.bf_bls12`), a KEM;
- ``bf-rfc5091`` (:mod:`protocols.schemes.bf`), where the KEM is BFencrypt of
  a fresh 32-byte key (RFC 5091 section 5.4) and BFdecrypt (5.5).

Each AEAD key is fresh per envelope, so the all-zero nonce is never reused.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from cryptography.exceptions import InvalidTag

from protocols.errors import DecodeError, ParameterError, StateError, VerificationError, shown
from protocols.primitives import cbor
from protocols.primitives.aead import ChaCha20Poly1305
from protocols.primitives.rand import RandomSource, resolve
from protocols.schemes import bf, bf_bls12

VERSION = 1
DOMAIN = b"usapp-ibe-hybrid-v1"
NONCE = bytes(12)
KEY_BYTES = 32
RFC5091_SUITE = "bf-rfc5091"
_ENVELOPE = {1: int, 2: str, 3: bytes, 4: int, 5: bytes, 6: bytes}


# ---------------------------------------------------------------------------
# The two suites as KEMs
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Bls12Sender:
    params: bf_bls12.PublicParams
    suite: str = bf_bls12.SUITE

    def encapsulate(self, identity: bytes, rng: RandomSource | None) -> tuple[bytes, bytes]:
        return bf_bls12.encapsulate(self.params, identity, rng)


@dataclass(frozen=True)
class Bls12Recipient:
    key: bf_bls12.PrivateKey = field(repr=False)
    suite: str = bf_bls12.SUITE

    @property
    def identity(self) -> bytes:
        return self.key.identity

    def decapsulate(self, enc: bytes) -> bytes:
        return bf_bls12.decapsulate(self.key, enc)


@dataclass(frozen=True)
class Rfc5091Sender:
    params: bf.BFPublicParameters
    suite: str = RFC5091_SUITE

    def encapsulate(self, identity: bytes, rng: RandomSource | None) -> tuple[bytes, bytes]:
        key = resolve(rng).random_bytes(KEY_BYTES)
        return key, bf.BFencrypt(self.params, identity, key, rng).to_der()


@dataclass(frozen=True)
class Rfc5091Recipient:
    params: bf.BFPublicParameters
    identity: bytes
    key: bf.BFPrivateKey = field(repr=False)
    suite: str = RFC5091_SUITE

    def decapsulate(self, enc: bytes) -> bytes:
        key = bf.BFdecrypt(self.params, self.key, bf.BFCiphertext.from_der(enc, self.params))
        if len(key) != KEY_BYTES:
            raise VerificationError("the encapsulated key has the wrong length")
        return key


# ---------------------------------------------------------------------------
# Envelope
# ---------------------------------------------------------------------------


def _aad(header: dict, aad: bytes) -> bytes:
    return DOMAIN + cbor.encode(header) + len(aad).to_bytes(4, "big") + aad


def seal(sender, identity: bytes, epoch: int, plaintext: bytes, aad: bytes = b"",
         rng: RandomSource | None = None) -> bytes:
    """Encrypt ``plaintext`` to ``identity`` for key epoch ``epoch``."""
    if not isinstance(identity, (bytes, bytearray)) or not identity:
        raise ParameterError("identity must be non-empty bytes")
    if type(epoch) is not int or not 0 <= epoch < 1 << 32:
        raise ParameterError("epoch must be an int in [0, 2^32)")
    if not isinstance(plaintext, (bytes, bytearray)) or not isinstance(aad, (bytes, bytearray)):
        raise ParameterError("plaintext and aad must be bytes")
    key, enc = sender.encapsulate(bytes(identity), rng)
    header = {1: VERSION, 2: sender.suite, 3: bytes(identity), 4: epoch, 5: enc}
    ciphertext = ChaCha20Poly1305(key).encrypt(NONCE, bytes(plaintext), _aad(header, bytes(aad)))
    return cbor.encode({**header, 6: ciphertext})


def open_envelope(recipient, envelope: bytes, epoch: int, aad: bytes = b"") -> bytes:
    """Decrypt an envelope sealed for the recipient's identity and ``epoch``.

    DecodeError for a malformed envelope or another version; ParameterError
    for another suite; StateError for another epoch; VerificationError for
    another identity or any tampering.
    """
    if not isinstance(envelope, (bytes, bytearray)):
        raise DecodeError("an envelope must be bytes")
    message = cbor.decode_map(bytes(envelope), _ENVELOPE, name="ibe envelope")
    if message[1] != VERSION:
        raise DecodeError(f"ibe envelope: unknown version {shown(message[1])}")
    if message[2] != recipient.suite:
        raise ParameterError(f"envelope for suite {shown(message[2])}, recipient uses {recipient.suite!r}")
    if message[4] != epoch:
        raise StateError(f"envelope for key epoch {shown(message[4])}, not {shown(epoch)}")
    if message[3] != recipient.identity:
        raise VerificationError("envelope addressed to another identity")
    key = recipient.decapsulate(message[5])
    header = {k: message[k] for k in (1, 2, 3, 4, 5)}
    try:
        return ChaCha20Poly1305(key).decrypt(NONCE, message[6], _aad(header, bytes(aad)))
    except InvalidTag:
        raise VerificationError("the envelope does not authenticate") from None
