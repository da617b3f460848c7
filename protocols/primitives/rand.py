"""Injected randomness (docs/architecture.md section 3.3, "Randomness is injected"; specs/conventions.md section 3).

Every function that draws randomness takes an ``rng`` argument: any object with
a ``random_bytes(n) -> bytes`` method.  ``None`` means the operating system's
CSPRNG.  Integers are drawn from bytes by one fixed rule (section 3.2), so a
vendor who feeds the same bytes gets the same integers, and vectors generated
from a seeded HMAC-DRBG are reproducible byte for byte.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

from protocols.errors import ParameterError, RandomnessError
from protocols.primitives import opcount


@runtime_checkable
class RandomSource(Protocol):
    """Anything that yields uniformly random bytes."""

    def random_bytes(self, n: int) -> bytes:  # pragma: no cover - protocol
        ...


@dataclass(frozen=True)
class SystemRandom:
    """The operating system's CSPRNG (``os.urandom``)."""

    def random_bytes(self, n: int) -> bytes:
        """n bytes of os.urandom, counted as ``random_byte`` (specs/costs.md 2.1)."""
        opcount.record("random_byte", n)
        return os.urandom(n)


def resolve(rng: RandomSource | None) -> RandomSource:
    """Return ``rng``, or the OS CSPRNG when it is ``None`` (never ``or``)."""
    return SystemRandom() if rng is None else rng


def random_below(rng: RandomSource | None, n: int) -> int:
    """Uniform integer in [0, n) by rejection sampling (conventions section 3.2).

    Let k be the bit length of n - 1 (k >= 1).  Draw ceil(k/8) bytes, read them
    big-endian, keep the low k bits; accept if the value is < n, else draw again.
    """
    if n < 1:
        raise ParameterError("random_below needs n >= 1")
    if n == 1:
        return 0
    source = resolve(rng)
    k = (n - 1).bit_length()
    nbytes = (k + 7) // 8
    mask = (1 << k) - 1
    while True:
        value = int.from_bytes(source.random_bytes(nbytes), "big") & mask
        if value < n:
            return value


def random_range(rng: RandomSource | None, low: int, high: int) -> int:
    """Uniform integer in [low, high), drawn as ``low + random_below(high - low)``."""
    if high <= low:
        raise ParameterError("random_range needs low < high")
    return low + random_below(rng, high - low)


def random_bits(rng: RandomSource | None, k: int) -> int:
    """Uniform k-bit string as an integer in [0, 2^k), drawn as random_below(2^k)."""
    if k < 1:
        raise ParameterError("random_bits needs k >= 1")
    return random_below(rng, 1 << k)


@dataclass
class ReplayRandom:
    """Replays recorded byte strings, one per call, in order.

    It fails loudly (``RandomnessError``) when exhausted or when asked for a
    length other than the one recorded, so a vector that pins its randomness
    cannot silently draw different values.
    """

    draws: list[bytes]
    _position: int = field(default=0, repr=False)

    def random_bytes(self, n: int) -> bytes:
        if self._position >= len(self.draws):
            raise RandomnessError(f"replayed randomness exhausted after {self._position} draws")
        chunk = self.draws[self._position]
        if len(chunk) != n:
            raise RandomnessError(
                f"draw {self._position} holds {len(chunk)} bytes but {n} were asked for"
            )
        self._position += 1
        opcount.record("random_byte", n)
        return chunk

    @property
    def exhausted(self) -> bool:
        return self._position == len(self.draws)
