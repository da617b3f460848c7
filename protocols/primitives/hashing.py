"""Hashing with operation counts: thin wrappers over hashlib and hmac (specs/costs.md section 2.1).

Every hash the protocols compute goes through this module, so that a step run inside
:func:`protocols.primitives.opcount.counting` records its compression-function blocks as
``hash_block:{alg}``.  The outputs are hashlib's, byte for byte.

The number of blocks follows from the total input length alone (the padding rules):

* SHA-1, SHA-224, SHA-256 (FIPS 180-4 section 5.1.1): a 0x80 byte and a 64-bit length are
  appended and the result padded to 64-byte blocks: ``(L + 9 + 63) // 64`` blocks.
  SHA-224 is SHA-256's compression function, so it is recorded as ``sha256``.
* SHA-384, SHA-512 (section 5.1.2): a 0x80 byte and a 128-bit length, 128-byte blocks:
  ``(L + 17 + 127) // 128``; SHA-384 is recorded as ``sha512``.
* SHAKE256 (FIPS 202 sections 4, 5.1, 6.2): rate 136 bytes; pad10*1 adds at least one byte,
  so absorbing takes ``L // 136 + 1`` permutations, and squeezing d bytes ``ceil(d / 136) - 1``
  more.  A unit of ``hash_block:shake256`` is one Keccak-f[1600] permutation.
* HMAC (RFC 2104, FIPS 198-1): the inner hash is over ``B + len(message)`` bytes and the outer
  over ``B + outlen`` bytes (B the block size); a key longer than B is hashed first.

When no counter is open, :func:`sha256` and its siblings return hashlib's own object, so the
off path costs one ContextVar lookup.  A hash object counts when it is created inside a counter
and its digest is taken inside one; it records once per ``digest()``/``hexdigest()`` call.
"""

from __future__ import annotations

import hashlib
import hmac as _hmac
from dataclasses import dataclass
from typing import Any

from protocols.errors import ParameterError
from protocols.primitives import opcount
from protocols.primitives.opcount import open_counters

__all__ = ["ALGORITHMS", "blocks", "compare_digest", "hkdf_sha256", "hmac_blocks", "hmac_digest",
           "hmac_new", "new", "sha256", "sha384", "sha512", "shake_256"]

compare_digest = _hmac.compare_digest
"""Constant-time comparison (hmac.compare_digest); it hashes nothing and is not counted."""


@dataclass(frozen=True)
class Algorithm:
    """A hash function's counting parameters (FIPS 180-4 / FIPS 202)."""

    hashlib_name: str
    key: str
    """The opcount key, ``hash_block:{family}``."""
    block_bytes: int
    """Block size B (the rate for SHAKE)."""
    length_bytes: int
    """Bytes of the appended length field; 0 for the sponge."""
    digest_bytes: int
    """Output length (0 for an extendable-output function)."""


ALGORITHMS: dict[str, Algorithm] = {
    a.hashlib_name: a for a in (
        Algorithm("sha1", "hash_block:sha1", 64, 8, 20),
        Algorithm("sha224", "hash_block:sha256", 64, 8, 28),
        Algorithm("sha256", "hash_block:sha256", 64, 8, 32),
        Algorithm("sha384", "hash_block:sha512", 128, 16, 48),
        Algorithm("sha512", "hash_block:sha512", 128, 16, 64),
        Algorithm("shake_256", "hash_block:shake256", 136, 0, 0),
    )
}
"""Supported algorithms by hashlib name (read-only by convention; never mutated)."""


def _algorithm(name: str) -> Algorithm:
    try:
        return ALGORITHMS[name]
    except (KeyError, TypeError):
        raise ParameterError(f"unsupported hash {name!r}; supported: {', '.join(ALGORITHMS)}") from None


def blocks(name: str, length: int, output_bytes: int = 0) -> int:
    """Compression-function blocks (or sponge permutations) to hash ``length`` bytes with
    ``name``, producing ``output_bytes`` (used only for SHAKE)."""
    alg = _algorithm(name)
    if length < 0 or output_bytes < 0:
        raise ParameterError("hash input and output lengths must be >= 0")
    if alg.length_bytes:
        return (length + 1 + alg.length_bytes + alg.block_bytes - 1) // alg.block_bytes
    squeeze = max(0, -(-output_bytes // alg.block_bytes) - 1)
    return length // alg.block_bytes + 1 + squeeze


def hmac_blocks(name: str, key_length: int, message_length: int) -> int:
    """Compression blocks of one HMAC (RFC 2104): the key hash if the key is longer than B,
    the inner hash over B + message bytes, the outer over B + outlen bytes."""
    alg = _algorithm(name)
    if not alg.length_bytes:
        raise ParameterError(f"HMAC is not defined over {name}")
    key_hash = blocks(name, key_length) if key_length > alg.block_bytes else 0
    return (key_hash + blocks(name, alg.block_bytes + message_length)
            + blocks(name, alg.block_bytes + alg.digest_bytes))


class _Counted:
    """A hashlib object that records its blocks when its digest is taken."""

    __slots__ = ("_alg", "_h", "_length")

    def __init__(self, alg: Algorithm, h: Any, length: int) -> None:
        self._alg, self._h, self._length = alg, h, length

    @property
    def name(self) -> str:
        return str(self._h.name)

    @property
    def digest_size(self) -> int:
        return int(self._h.digest_size)

    @property
    def block_size(self) -> int:
        return int(self._h.block_size)

    def update(self, data: bytes | bytearray | memoryview) -> None:
        self._h.update(data)
        self._length += memoryview(data).nbytes

    def copy(self) -> _Counted:
        return _Counted(self._alg, self._h.copy(), self._length)

    def _record(self, output_bytes: int) -> None:
        opcount.record(self._alg.key, blocks(self._alg.hashlib_name, self._length, output_bytes))

    def digest(self, *length: int) -> bytes:
        out: bytes = self._h.digest(*length)
        self._record(len(out))
        return out

    def hexdigest(self, *length: int) -> str:
        out: str = self._h.hexdigest(*length)
        self._record(len(out) // 2)
        return out


def new(name: str, data: bytes | bytearray | memoryview = b"") -> Any:
    """``hashlib.new(name, data)``, counted (name one of :data:`ALGORITHMS`)."""
    alg = _algorithm(name)
    h = hashlib.new(name, data)
    if not open_counters():
        return h
    return _Counted(alg, h, memoryview(data).nbytes)


def sha256(data: bytes | bytearray | memoryview = b"") -> Any:
    """``hashlib.sha256(data)``, counted as ``hash_block:sha256``."""
    if not open_counters():
        return hashlib.sha256(data)
    return _Counted(ALGORITHMS["sha256"], hashlib.sha256(data), memoryview(data).nbytes)


def sha384(data: bytes | bytearray | memoryview = b"") -> Any:
    """``hashlib.sha384(data)``, counted as ``hash_block:sha512``."""
    if not open_counters():
        return hashlib.sha384(data)
    return _Counted(ALGORITHMS["sha384"], hashlib.sha384(data), memoryview(data).nbytes)


def sha512(data: bytes | bytearray | memoryview = b"") -> Any:
    """``hashlib.sha512(data)``, counted as ``hash_block:sha512``."""
    if not open_counters():
        return hashlib.sha512(data)
    return _Counted(ALGORITHMS["sha512"], hashlib.sha512(data), memoryview(data).nbytes)


def shake_256(data: bytes | bytearray | memoryview = b"") -> Any:
    """``hashlib.shake_256(data)``, counted as ``hash_block:shake256`` (permutations)."""
    if not open_counters():
        return hashlib.shake_256(data)
    return _Counted(ALGORITHMS["shake_256"], hashlib.shake_256(data), memoryview(data).nbytes)


class _CountedHmac:
    """An hmac.HMAC that records its blocks when its digest is taken."""

    __slots__ = ("_h", "_key_length", "_length", "_name")

    def __init__(self, name: str, h: _hmac.HMAC, key_length: int, length: int) -> None:
        self._name, self._h, self._key_length, self._length = name, h, key_length, length

    def update(self, data: bytes | bytearray | memoryview) -> None:
        self._h.update(data)
        self._length += memoryview(data).nbytes

    def digest(self) -> bytes:
        out = self._h.digest()
        opcount.record(ALGORITHMS[self._name].key, hmac_blocks(self._name, self._key_length, self._length))
        return out


def hmac_new(key: bytes | bytearray, msg: bytes | bytearray | memoryview = b"", digestmod: str = "sha256") -> Any:
    """``hmac.new(key, msg, digestmod)`` with ``digestmod`` a hashlib name, counted."""
    alg = _algorithm(digestmod)
    if not alg.length_bytes:
        raise ParameterError(f"HMAC is not defined over {digestmod}")
    h = _hmac.new(key, msg, digestmod)
    if not open_counters():
        return h
    return _CountedHmac(digestmod, h, len(key), memoryview(msg).nbytes)


def hmac_digest(key: bytes | bytearray, msg: bytes | bytearray | memoryview, digestmod: str = "sha256") -> bytes:
    """``hmac.digest(key, msg, digestmod)``, counted."""
    alg = _algorithm(digestmod)
    if not alg.length_bytes:
        raise ParameterError(f"HMAC is not defined over {digestmod}")
    if open_counters():
        opcount.record(alg.key, hmac_blocks(digestmod, len(key), memoryview(msg).nbytes))
    return _hmac.digest(key, msg, digestmod)


HKDF_SHA256_MAX_LENGTH = 255 * 32
"""RFC 5869 section 2.3: L <= 255 * HashLen."""


def hkdf_sha256(ikm: bytes, length: int, salt: bytes | None = None, info: bytes = b"") -> bytes:
    """HKDF-SHA256 (RFC 5869 sections 2.2-2.3), its HMACs counted; a missing salt is 32 zeros."""
    if not 0 <= length <= HKDF_SHA256_MAX_LENGTH:
        raise ParameterError(f"HKDF-SHA256 output length must be in [0, {HKDF_SHA256_MAX_LENGTH}]")
    prk = hmac_digest(b"\x00" * 32 if salt is None else salt, ikm, "sha256")
    okm, t = b"", b""
    for i in range(1, -(-length // 32) + 1):
        t = hmac_digest(prk, t + info + bytes([i]), "sha256")
        okm += t
    return okm[:length]
