"""Spec 4.1 and 4.3: the packed plaintext of a report and its unpacking."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from protocols.aggregation.schedule import TAG_PRIME
from protocols.errors import AggregateMismatchError, ParameterError


@dataclass(frozen=True)
class Layout:
    """Spec 4.1: S signed value slots of w bits, then an unsigned tag field.

    The sum of ``summands`` values in [-bound, bound] fits a slot; the sum of
    their tags (each < q) fits the tag field; the whole packed sum has
    absolute value below n / 4, so it is recovered exactly from its residue.
    """

    slots: int
    value_bits: int
    noise_bound: int
    summands: int
    modulus_bits: int

    def __post_init__(self) -> None:
        for name in ("slots", "value_bits", "summands", "modulus_bits"):
            value = getattr(self, name)
            if type(value) is not int or value < 1:
                raise ParameterError(f"layout {name} must be a positive integer")
        if type(self.noise_bound) is not int or self.noise_bound < 0:
            raise ParameterError("layout noise_bound must be a non-negative integer")
        if self.total_bits > self.modulus_bits - 2:
            raise ParameterError(
                f"layout needs {self.total_bits} bits but the key allows {self.modulus_bits - 2}: "
                f"use at most {self.max_slots(self.value_bits, self.noise_bound, self.summands, self.modulus_bits)} slots"
            )

    @property
    def bound(self) -> int:
        """Largest absolute value one meter puts in a slot: reading plus noise share."""
        return (1 << self.value_bits) - 1 + self.noise_bound

    @property
    def slot_bits(self) -> int:
        return (self.summands * self.bound).bit_length() + 1

    @property
    def tag_bits(self) -> int:
        return (self.summands * (TAG_PRIME - 1)).bit_length()

    @property
    def total_bits(self) -> int:
        return self.slots * self.slot_bits + self.tag_bits

    @staticmethod
    def max_slots(value_bits: int, noise_bound: int, summands: int, modulus_bits: int) -> int:
        bound = (1 << value_bits) - 1 + noise_bound
        slot_bits = (summands * bound).bit_length() + 1
        tag_bits = (summands * (TAG_PRIME - 1)).bit_length()
        return max(0, (modulus_bits - 2 - tag_bits) // slot_bits)

    def physical_range(self, reporting: int) -> tuple[int, int]:
        """Spec 8.5 step 6: the interval every honest slot sum over ``reporting`` meters lies in."""
        return -reporting * self.noise_bound, reporting * self.bound

    def pack(self, values: Sequence[int], tag: int) -> int:
        """Spec 4.1: sum of v_s * 2^(s w) + tag * 2^(S w); values may be negative."""
        w = self.slot_bits
        packed = tag << (self.slots * w)
        for s, value in enumerate(values):
            packed += value << (s * w)
        return packed

    def unpack(self, residue: int, n: int) -> tuple[list[int], int]:
        """Spec 4.3: the slot sums and the tag sum from the decrypted residue mod n."""
        total = int(residue)
        if total > n // 2:
            total -= n
        w = self.slot_bits
        half, full = 1 << (w - 1), 1 << w
        values = []
        for _ in range(self.slots):
            v = total & (full - 1)
            if v >= half:
                v -= full
            values.append(v)
            total = (total - v) >> w
        if not 0 <= total < (1 << self.tag_bits):
            raise AggregateMismatchError("the decrypted sum overflows the tag field")
        return values, total
