"""The data every analytics module shares (specs/analytics.md section 2).

A :class:`LoadData` is a regular grid: meters x days x slots of energy per
interval in kWh (float64, never negative).  Days are calendar days starting at
``start``; a day has ``1440 // interval_minutes`` slots.  :class:`Labels` gives
each meter-day a class: 0 normal, 1..6 the theft attacks h1..h6 of Jokar,
Arianpoo and Leung (2016), 7..9 the faults stuck-at, zeros and spikes.
"""

from __future__ import annotations

import datetime
import hashlib
from dataclasses import dataclass

import numpy as np

from protocols.errors import ParameterError

INTERVALS_MINUTES = (1, 5, 10, 15, 30, 60)
"""Supported reading intervals: each divides a day."""
MAX_METERS = 1_000_000
MAX_DAYS = 3_660
MAX_KWH_PER_MINUTE = 100.0 / 60
"""100 kW: far above any household connection (an absurd value is refused, spec 2.3)."""

LABEL_NAMES = ("normal", "h1", "h2", "h3", "h4", "h5", "h6", "stuck-at", "zeros", "spikes")
"""Label code -> name (spec 2.2)."""
ATTACKS = tuple(range(1, 7))
FAULTS = (7, 8, 9)


def seed_int(seed: int | str) -> int:
    """A seed as a non-negative int: an int (or numpy integer) as itself, a str as the SHA-256 of
    its UTF-8 bytes read as a 256-bit big-endian integer (specs/analytics.md section 3.5)."""
    if isinstance(seed, str):
        return int.from_bytes(hashlib.sha256(seed.encode("utf-8")).digest(), "big")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ParameterError(f"seed must be a non-negative int or a str, not {seed!r}")
    return int(seed)


@dataclass(frozen=True)
class LoadData:
    """Readings of ``meters`` over ``kwh.shape[1]`` days from ``start``, every ``interval_minutes``."""

    meters: tuple[str, ...]
    start: datetime.date
    interval_minutes: int
    kwh: np.ndarray

    def __post_init__(self) -> None:
        if self.interval_minutes not in INTERVALS_MINUTES:
            raise ParameterError(f"interval must be one of {INTERVALS_MINUTES} minutes, not "
                                 f"{self.interval_minutes}")
        if not isinstance(self.kwh, np.ndarray) or self.kwh.ndim != 3:
            raise ParameterError("kwh must be a meters x days x slots array")
        m, d, s = self.kwh.shape
        if s != self.slots or m != len(self.meters) or not 1 <= m <= MAX_METERS or not 1 <= d <= MAX_DAYS:
            raise ParameterError(f"kwh has shape {self.kwh.shape}; expected ({len(self.meters)}, 1..{MAX_DAYS}, "
                                 f"{self.slots})")
        if len(set(self.meters)) != m:
            raise ParameterError("meter ids must be distinct")

    @property
    def slots(self) -> int:
        return 1440 // self.interval_minutes

    @property
    def days(self) -> int:
        return int(self.kwh.shape[1])

    def day(self, index: int) -> datetime.date:
        return self.start + datetime.timedelta(days=index)


@dataclass(frozen=True)
class Labels:
    """One label code per meter-day (0 normal; ``LABEL_NAMES``), same meters and days as the data."""

    meters: tuple[str, ...]
    start: datetime.date
    codes: np.ndarray

    def __post_init__(self) -> None:
        if not isinstance(self.codes, np.ndarray) or self.codes.ndim != 2 or self.codes.shape[0] != len(self.meters):
            raise ParameterError("codes must be a meters x days array")
        if self.codes.size and (self.codes.min() < 0 or self.codes.max() >= len(LABEL_NAMES)):
            raise ParameterError(f"label codes are 0..{len(LABEL_NAMES) - 1}")

    @property
    def anomalous(self) -> np.ndarray:
        """Boolean meters x days: any label but normal."""
        return self.codes != 0
