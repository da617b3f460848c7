"""Theft attacks h1..h6, meter faults and their injection (specs/analytics.md section 4).

Every function here works on one meter-day: a 1-D array of ``T`` non-negative
readings in kWh, ``T = 1440 / interval`` (section 2.1), and returns a new
array; the input is never written.  The six attacks are those of Jokar,
Arianpoo and Leung, "Electricity Theft Detection in AMI Using Customers'
Consumption Patterns", IEEE Trans. Smart Grid 7(1), 2016 (section 4.1); the
faults stuck-at, zeros and spikes are this project's (section 4.2).
:func:`inject` picks meter-days, applies a kind to each and returns the
modified copy of the data with its :class:`Labels` (section 4.3).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from protocols.analytics.data import seed_int  # noqa: F401  (re-exported: section 4.3)
from protocols.analytics.data import (
    ATTACKS,
    FAULTS,
    INTERVALS_MINUTES,
    LABEL_NAMES,
    MAX_KWH_PER_MINUTE,
    Labels,
    LoadData,
)
from protocols.errors import ParameterError

ATTACK_NAMES = LABEL_NAMES[1:7]
"""("h1", ..., "h6"): names of the label codes 1..6 (section 4.1)."""
FAULT_NAMES = LABEL_NAMES[7:10]
"""("stuck-at", "zeros", "spikes"): names of the label codes 7..9 (section 4.2)."""
KINDS = ATTACKS + FAULTS
"""Every kind :func:`inject` accepts: label codes 1..9."""

_SLOTS_TO_INTERVAL = {1440 // i: i for i in INTERVALS_MINUTES}


# --------------------------------------------------------------------------- parameters


def _check_range(name: str, value: float, low: float, high: float) -> None:
    if (isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.integer, np.floating))
            or not math.isfinite(value)):
        raise ParameterError(f"{name} must be a finite number, not {value!r}")
    if not low <= value <= high:
        raise ParameterError(f"{name} must be in [{low}, {high}], not {value}")


@dataclass(frozen=True)
class AttackParams:
    """Parameters of h1..h6 (section 4.1); the defaults are the paper's where it gives them.

    ``low``/``high``: the range of the uniform factors alpha (h1) and gamma_t (h3, h4),
    U(0.1, 0.8) in the paper.  ``h2_min_hours``/``h2_max_hours``: bounds of the length of
    the zeroed window of h2 (section 4.1 says which of these the sources confirm).
    """

    low: float = 0.1
    high: float = 0.8
    h2_min_hours: float = 4.0
    h2_max_hours: float = 24.0

    def __post_init__(self) -> None:
        _check_range("low", self.low, 0.0, 1.0)
        _check_range("high", self.high, 0.0, 1.0)
        if self.low > self.high:
            raise ParameterError(f"low ({self.low}) must not exceed high ({self.high})")
        _check_range("h2_min_hours", self.h2_min_hours, 0.0, 24.0)
        _check_range("h2_max_hours", self.h2_max_hours, 0.0, 24.0)
        if not 0 < self.h2_min_hours <= self.h2_max_hours:
            raise ParameterError(f"need 0 < h2_min_hours ({self.h2_min_hours}) <= h2_max_hours "
                                 f"({self.h2_max_hours})")

    def h2_slots(self, slots: int) -> tuple[int, int]:
        """The smallest and largest h2 window, in slots of a day of ``slots`` readings."""
        minutes = 1440 // slots
        shortest = max(1, math.ceil(self.h2_min_hours * 60 / minutes - 1e-9))
        longest = min(slots, math.floor(self.h2_max_hours * 60 / minutes + 1e-9))
        if shortest > longest:
            raise ParameterError(f"no h2 window of {self.h2_min_hours}..{self.h2_max_hours} hours fits "
                                 f"{minutes}-minute slots")
        return shortest, longest


@dataclass(frozen=True)
class FaultParams:
    """Parameters of the faults (section 4.2).

    ``stuck_min_hours``: a stuck meter repeats its last good reading for at least this long, to
    the end of the day.  ``zeros_whole_day``: probability that a zeros fault covers the whole
    day; otherwise the meter reports 0 from a random slot to the end of the day, for at least
    ``zeros_min_hours``.  ``spike_count``: least and most spiked readings in a day.
    ``spike_level``: a spike is set to this fraction (uniform in the range) of the largest
    valid reading, ``MAX_KWH_PER_MINUTE * interval``.
    """

    stuck_min_hours: float = 2.0
    zeros_whole_day: float = 0.5
    zeros_min_hours: float = 2.0
    spike_count: tuple[int, int] = (1, 3)
    spike_level: tuple[float, float] = (0.5, 1.0)

    def __post_init__(self) -> None:
        _check_range("stuck_min_hours", self.stuck_min_hours, 0.0, 23.0)
        _check_range("zeros_whole_day", self.zeros_whole_day, 0.0, 1.0)
        _check_range("zeros_min_hours", self.zeros_min_hours, 0.0, 23.0)
        if self.stuck_min_hours <= 0 or self.zeros_min_hours <= 0:
            raise ParameterError("stuck_min_hours and zeros_min_hours must be positive")
        lo, hi = self.spike_count
        if (isinstance(lo, bool) or isinstance(hi, bool) or not isinstance(lo, int)
                or not isinstance(hi, int) or not 1 <= lo <= hi <= 24):
            raise ParameterError(f"spike_count must be integers 1 <= least <= most <= 24, not {self.spike_count}")
        a, b = self.spike_level
        _check_range("spike_level[0]", a, 0.0, 1.0)
        _check_range("spike_level[1]", b, 0.0, 1.0)
        if not 0 < a <= b:
            raise ParameterError(f"spike_level must satisfy 0 < low <= high <= 1, not {self.spike_level}")


def _tail_start_bounds(hours: float, slots: int, what: str) -> tuple[int, int]:
    """First slot of a fault that lasts from there to the end of the day, at least ``hours`` long:
    the start is drawn from ``1 .. slots - m`` (slot 0 is the last good reading)."""
    minutes = 1440 // slots
    m = max(1, math.ceil(hours * 60 / minutes - 1e-9))
    if slots - m < 1:
        raise ParameterError(f"a {what} fault of at least {hours} hours does not fit a day of {slots} slots")
    return 1, slots - m


# --------------------------------------------------------------------------- input checks


def _day(day_kwh: np.ndarray) -> np.ndarray:
    """Check one meter-day: 1-D, a supported number of slots, finite, non-negative, valid."""
    if not isinstance(day_kwh, np.ndarray) or day_kwh.ndim != 1:
        raise ParameterError("a day must be a 1-D array of readings")
    if day_kwh.shape[0] not in _SLOTS_TO_INTERVAL:
        raise ParameterError(f"a day has {sorted(_SLOTS_TO_INTERVAL)} slots, not {day_kwh.shape[0]}")
    x = np.asarray(day_kwh, dtype=np.float64)
    cap = MAX_KWH_PER_MINUTE * _SLOTS_TO_INTERVAL[x.shape[0]]
    bad = ~np.isfinite(x) | (x < 0) | (x > cap)
    if bad.any():
        slot = int(np.argmax(bad))
        raise ParameterError(f"reading at slot {slot} is {x[slot]!r}: readings must be finite, in [0, {cap}] kWh")
    return x


def _cap(slots: int) -> float:
    return MAX_KWH_PER_MINUTE * _SLOTS_TO_INTERVAL[slots]


# --------------------------------------------------------------------------- h1..h6 with explicit parameters


def h1(x: np.ndarray, alpha: float) -> np.ndarray:
    """h1(x_t) = alpha * x_t: the whole day scaled by one factor (section 4.1)."""
    return np.asarray(x, dtype=np.float64) * alpha


def h2(x: np.ndarray, start: int, stop: int) -> np.ndarray:
    """h2(x_t) = beta_t * x_t, beta_t = 0 for start <= t < stop, else 1 (section 4.1)."""
    if not 0 <= start < stop <= len(x):
        raise ParameterError(f"h2 window [{start}, {stop}) is not inside a day of {len(x)} slots")
    y = np.array(x, dtype=np.float64)
    y[start:stop] = 0.0
    return y


def _factors(x: np.ndarray, gamma: np.ndarray) -> np.ndarray:
    g = np.asarray(gamma, dtype=np.float64)
    if g.shape != np.shape(x):
        raise ParameterError(f"need one factor per reading: {g.shape} factors for {np.shape(x)} readings")
    return g


def h3(x: np.ndarray, gamma: np.ndarray) -> np.ndarray:
    """h3(x_t) = gamma_t * x_t: each reading scaled by its own factor (section 4.1)."""
    return np.asarray(x, dtype=np.float64) * _factors(x, gamma)


def h4(x: np.ndarray, gamma: np.ndarray) -> np.ndarray:
    """h4(x_t) = gamma_t * mean(x): each reading replaced by a fraction of the day's mean (section 4.1)."""
    return _factors(x, gamma) * float(np.mean(x))


def h5(x: np.ndarray) -> np.ndarray:
    """h5(x_t) = mean(x): the day's mean reported at every slot (section 4.1)."""
    return np.full(len(x), float(np.mean(x)))


def h6(x: np.ndarray) -> np.ndarray:
    """h6(x_t) = x_{T+1-t} (1-based): the day reported in reverse order (section 4.1)."""
    return np.array(x[::-1], dtype=np.float64)


# --------------------------------------------------------------------------- faults with explicit parameters


def stuck_at(x: np.ndarray, start: int) -> np.ndarray:
    """From slot ``start`` (>= 1) to the end of the day, repeat the reading of slot start - 1 (section 4.2)."""
    if not 1 <= start < len(x):
        raise ParameterError(f"stuck-at start {start} is not in 1..{len(x) - 1}")
    y = np.array(x, dtype=np.float64)
    y[start:] = y[start - 1]
    return y


def zeros(x: np.ndarray, start: int) -> np.ndarray:
    """From slot ``start`` (0 = the whole day) to the end of the day, report 0 (section 4.2)."""
    if not 0 <= start < len(x):
        raise ParameterError(f"zeros start {start} is not in 0..{len(x) - 1}")
    y = np.array(x, dtype=np.float64)
    y[start:] = 0.0
    return y


def spikes(x: np.ndarray, slots: np.ndarray, levels: np.ndarray) -> np.ndarray:
    """Readings at ``slots`` set to ``levels`` kWh, each at most the valid maximum (section 4.2)."""
    y = np.array(x, dtype=np.float64)
    if y.ndim != 1 or len(y) not in _SLOTS_TO_INTERVAL:
        raise ParameterError(f"a day has {sorted(_SLOTS_TO_INTERVAL)} slots, not {y.shape}")
    slots = np.asarray(slots, dtype=np.int64)
    levels = np.asarray(levels, dtype=np.float64)
    if slots.shape != levels.shape or slots.ndim != 1 or len(np.unique(slots)) != len(slots):
        raise ParameterError("spike slots must be distinct and match the levels one to one")
    if slots.size and (slots.min() < 0 or slots.max() >= len(y)):
        raise ParameterError(f"spike slots must be in 0..{len(y) - 1}")
    if levels.size and not (np.all(np.isfinite(levels)) and levels.min() >= 0 and levels.max() <= _cap(len(y))):
        raise ParameterError(f"spike levels must be in [0, {_cap(len(y))}] kWh")
    y[slots] = levels
    return y


# --------------------------------------------------------------------------- random draws (section 4.3 gives the order)


def _draw_attack(x: np.ndarray, kind: int, rng: np.random.Generator, p: AttackParams) -> np.ndarray:
    t = len(x)
    if kind == 1:
        return h1(x, float(rng.uniform(p.low, p.high)))
    if kind == 2:
        shortest, longest = p.h2_slots(t)
        length = int(rng.integers(shortest, longest + 1))
        start = int(rng.integers(0, t - length + 1))
        return h2(x, start, start + length)
    if kind == 3:
        return h3(x, rng.uniform(p.low, p.high, size=t))
    if kind == 4:
        return h4(x, rng.uniform(p.low, p.high, size=t))
    if kind == 5:
        return h5(x)
    return h6(x)


def _draw_fault(x: np.ndarray, kind: int, rng: np.random.Generator, p: FaultParams) -> np.ndarray:
    t = len(x)
    if kind == 7:
        first, last = _tail_start_bounds(p.stuck_min_hours, t, "stuck-at")
        return stuck_at(x, int(rng.integers(first, last + 1)))
    if kind == 8:
        if rng.random() < p.zeros_whole_day:
            return zeros(x, 0)
        first, last = _tail_start_bounds(p.zeros_min_hours, t, "zeros")
        return zeros(x, int(rng.integers(first, last + 1)))
    least, most = p.spike_count
    count = int(rng.integers(least, min(most, t) + 1))
    where = np.sort(rng.choice(t, size=count, replace=False))
    levels = rng.uniform(p.spike_level[0], p.spike_level[1], size=count) * _cap(t)
    return spikes(x, where, levels)


def apply_attack(day_kwh: np.ndarray, kind: int, rng: np.random.Generator,
                 params: AttackParams = AttackParams()) -> np.ndarray:
    """Attack ``kind`` (1..6 = h1..h6) on one day, its random parameters drawn from ``rng`` (section 4.1)."""
    if isinstance(kind, bool) or not isinstance(kind, (int, np.integer)) or int(kind) not in ATTACKS:
        raise ParameterError(f"attack kind must be one of {ATTACKS}, not {kind!r}")
    return _draw_attack(_day(day_kwh), int(kind), rng, params)


def apply_fault(day_kwh: np.ndarray, kind: int, rng: np.random.Generator,
                params: FaultParams = FaultParams()) -> np.ndarray:
    """Fault ``kind`` (7 stuck-at, 8 zeros, 9 spikes) on one day, drawn from ``rng`` (section 4.2)."""
    if isinstance(kind, bool) or not isinstance(kind, (int, np.integer)) or int(kind) not in FAULTS:
        raise ParameterError(f"fault kind must be one of {FAULTS}, not {kind!r}")
    return _draw_fault(_day(day_kwh), int(kind), rng, params)


# --------------------------------------------------------------------------- injection


def _kinds(kinds: Sequence[int]) -> tuple[int, ...]:
    if isinstance(kinds, np.ndarray) and kinds.ndim == 1:
        kinds = kinds.tolist()
    if isinstance(kinds, (str, bytes)) or not isinstance(kinds, Sequence):
        raise ParameterError(f"kinds must be a sequence of label codes, not {kinds!r}")
    out: list[int] = []
    for k in kinds:
        if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or int(k) not in KINDS:
            raise ParameterError(f"kinds: {k!r} is not a label code in {KINDS}")
        if int(k) in out:
            raise ParameterError(f"kinds: {int(k)} appears twice")
        out.append(int(k))
    if not out:
        raise ParameterError("kinds must name at least one kind")
    return tuple(out)


def _check_data(data: LoadData) -> None:
    if not isinstance(data, LoadData):
        raise ParameterError("data must be a LoadData")
    kwh = data.kwh
    cap = MAX_KWH_PER_MINUTE * data.interval_minutes
    with np.errstate(invalid="ignore"):
        bad = ~np.isfinite(kwh) | (kwh < 0) | (kwh > cap)
    if bad.any():
        m, d, s = (int(i) for i in np.argwhere(bad)[0])
        raise ParameterError(f"meter {data.meters[m]}, day {data.day(d).isoformat()}, slot {s}: reading "
                             f"{kwh[m, d, s]!r} is not in [0, {cap}] kWh")


def _round(x: float) -> int:
    return math.floor(x + 0.5)


def inject(data: LoadData, *, fraction: float = 0.15, kinds: Sequence[int] = ATTACKS, seed: int | str = 0,
           meters_fraction: float | None = None, attack_params: AttackParams = AttackParams(),
           fault_params: FaultParams = FaultParams()) -> tuple[LoadData, Labels]:
    """Attack or fault a share of the meter-days; return the modified copy and its labels (section 4.3).

    ``meters_fraction=None`` (default): ``round(fraction * meters * days)`` meter-days drawn
    uniformly without replacement, each given a kind drawn uniformly from ``kinds``.
    ``meters_fraction=p``: ``round(p * meters)`` thieves, each with one kind, attacking one
    contiguous run of ``round(fraction * days)`` days (at least 1 when ``fraction > 0``).
    """
    _check_data(data)
    _check_range("fraction", fraction, 0.0, 1.0)
    if meters_fraction is not None:
        _check_range("meters_fraction", meters_fraction, 0.0, 1.0)
    chosen_kinds = _kinds(kinds)
    if not isinstance(attack_params, AttackParams) or not isinstance(fault_params, FaultParams):
        raise ParameterError("attack_params / fault_params must be AttackParams / FaultParams")
    t = data.slots
    if any(k == 2 for k in chosen_kinds):
        attack_params.h2_slots(t)
    if 7 in chosen_kinds:
        _tail_start_bounds(fault_params.stuck_min_hours, t, "stuck-at")
    if 8 in chosen_kinds:
        _tail_start_bounds(fault_params.zeros_min_hours, t, "zeros")
    rng = np.random.default_rng(seed_int(seed))
    meters, days = data.kwh.shape[0], data.kwh.shape[1]
    choice = np.asarray(chosen_kinds, dtype=np.int8)

    cells: list[tuple[int, int, int]] = []  # (meter, day, kind), in application order
    if meters_fraction is None:
        n = _round(fraction * meters * days)
        flat = np.sort(rng.choice(meters * days, size=n, replace=False))
        drawn = choice[rng.integers(0, len(choice), size=n)]
        cells = [(int(i) // days, int(i) % days, int(k)) for i, k in zip(flat, drawn)]
    else:
        thieves = np.sort(rng.choice(meters, size=_round(meters_fraction * meters), replace=False))
        run = 0 if fraction == 0 else max(1, _round(fraction * days))
        for m in thieves:
            k = int(choice[rng.integers(0, len(choice))])
            first = int(rng.integers(0, days - run + 1))
            cells.extend((int(m), d, k) for d in range(first, first + run))

    kwh = np.array(data.kwh, dtype=np.float64, copy=True)
    codes = np.zeros((meters, days), dtype=np.int8)
    for m, d, k in cells:
        if k in ATTACKS:
            kwh[m, d] = _draw_attack(kwh[m, d], k, rng, attack_params)
        else:
            kwh[m, d] = _draw_fault(kwh[m, d], k, rng, fault_params)
        codes[m, d] = k
    out = LoadData(meters=data.meters, start=data.start, interval_minutes=data.interval_minutes, kwh=kwh)
    return out, Labels(meters=data.meters, start=data.start, codes=codes)
