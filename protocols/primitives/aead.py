"""AEAD with operation counts: thin wrappers over pyca ``cryptography`` (specs/costs.md section 2.1).

:class:`ChaCha20Poly1305` (RFC 8439), the only AEAD the protocols use, has the call shape of the
library's class (``Cls(key).encrypt(nonce, data, associated_data)`` and ``.decrypt(...)``) and return the
library's output byte for byte; exceptions (``InvalidTag``) pass through unchanged.  Each seal or
open records ``aead_call:{alg}`` once and ``aead_byte:{alg}`` per plaintext byte (the ciphertext
length minus the 16-byte tag on open, whether or not the tag verifies: the work is done).
Associated data is not counted (a Poly1305 / GHASH pass over it, short in every protocol here).
"""

from __future__ import annotations

from cryptography.hazmat.primitives.ciphers import aead as _aead

from protocols.primitives import opcount

__all__ = ["TAG_BYTES", "ChaCha20Poly1305"]

TAG_BYTES = 16
"""Tag length of ChaCha20-Poly1305 (RFC 8439 section 2.8)."""

_Data = bytes | bytearray | memoryview


class ChaCha20Poly1305:
    """``cryptography``'s ChaCha20Poly1305, counted as ``aead_*:chacha20poly1305``."""

    __slots__ = ("_cipher",)
    ALG = "chacha20poly1305"

    def __init__(self, key: _Data) -> None:
        self._cipher = _aead.ChaCha20Poly1305(key)

    def encrypt(self, nonce: _Data, data: _Data, associated_data: _Data | None) -> bytes:
        if opcount.active():
            _count(self.ALG, memoryview(data).nbytes)
        return self._cipher.encrypt(nonce, data, associated_data)

    def decrypt(self, nonce: _Data, data: _Data, associated_data: _Data | None) -> bytes:
        if opcount.active():
            _count(self.ALG, memoryview(data).nbytes - TAG_BYTES)
        return self._cipher.decrypt(nonce, data, associated_data)


def _count(alg: str, plaintext_bytes: int) -> None:
    opcount.record(f"aead_call:{alg}")
    opcount.record(f"aead_byte:{alg}", max(0, plaintext_bytes))
