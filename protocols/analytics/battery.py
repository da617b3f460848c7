"""A home battery, one interval at a time (specs/battery.md section 2).

Sign convention (stated once, in specs/battery.md section 2.1): ``battery_kwh`` is the energy the
battery delivers to the household bus in the interval, positive when discharging and negative when
charging; ``loss_kwh`` >= 0 is the energy turned into heat (conversion and self-discharge).  Then

    grid = load - battery                          (what the meter records)
    soc_end - soc_start = -battery - loss          (what the store gains)

and so ``grid = load + loss + (soc_end - soc_start)``.  Charging loses on the way in (drawn from
the bus = stored / charge_efficiency); discharging loses on the way out (taken from the store =
delivered / discharge_efficiency).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from protocols.analytics.data import INTERVALS_MINUTES, MAX_KWH_PER_MINUTE
from protocols.errors import ParameterError

MAX_CAPACITY_KWH = 10_000.0
"""Far above any home battery; a larger value is refused (section 2.2)."""
MAX_POWER_KW = MAX_KWH_PER_MINUTE * 60
"""100 kW, the connection bound of the data model: a battery cannot push more through the meter."""
MAX_SELF_DISCHARGE_PER_HOUR = 0.5


def _real(name: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ParameterError(f"{name} must be a number, not {type(value).__name__}")
    v = float(value)
    if not math.isfinite(v):
        raise ParameterError(f"{name} must be finite, not {v}")
    return v


@dataclass(frozen=True)
class BatteryConfig:
    """Capacity, power limits, one-way efficiencies, SoC window (fractions of capacity), leak (spec 2.2)."""

    capacity_kwh: float
    max_charge_kw: float
    max_discharge_kw: float
    charge_efficiency: float = 0.95
    discharge_efficiency: float = 0.95
    soc_min: float = 0.0
    soc_max: float = 1.0
    initial_soc: float = 0.5
    self_discharge_per_hour: float = 0.0

    def __post_init__(self) -> None:
        cap = _real("capacity_kwh", self.capacity_kwh)
        if not 0 < cap <= MAX_CAPACITY_KWH:
            raise ParameterError(f"capacity_kwh must be in (0, {MAX_CAPACITY_KWH:g}], not {cap}")
        for name in ("max_charge_kw", "max_discharge_kw"):
            p = _real(name, getattr(self, name))
            if not 0 < p <= MAX_POWER_KW:
                raise ParameterError(f"{name} must be in (0, {MAX_POWER_KW:g}] kW, not {p}")
        for name in ("charge_efficiency", "discharge_efficiency"):
            e = _real(name, getattr(self, name))
            if not 0 < e <= 1:
                raise ParameterError(f"{name} must be in (0, 1], not {e}")
        lo, hi = _real("soc_min", self.soc_min), _real("soc_max", self.soc_max)
        if not 0 <= lo < hi <= 1:
            raise ParameterError(f"soc_min and soc_max must satisfy 0 <= soc_min < soc_max <= 1, not "
                                 f"{lo}, {hi}")
        init = _real("initial_soc", self.initial_soc)
        if not lo <= init <= hi:
            raise ParameterError(f"initial_soc must be in [soc_min, soc_max] = [{lo}, {hi}], not {init}")
        sd = _real("self_discharge_per_hour", self.self_discharge_per_hour)
        if not 0 <= sd <= MAX_SELF_DISCHARGE_PER_HOUR:
            raise ParameterError(f"self_discharge_per_hour must be in [0, {MAX_SELF_DISCHARGE_PER_HOUR}], "
                                 f"not {sd}")

    @classmethod
    def simple(cls, capacity_kwh: float, power_kw: float, efficiency: float = 0.95) -> BatteryConfig:
        """The same power both ways and the same one-way efficiency both ways; full SoC window, half full."""
        return cls(capacity_kwh, power_kw, power_kw, efficiency, efficiency)

    @property
    def soc_min_kwh(self) -> float:
        return self.soc_min * self.capacity_kwh

    @property
    def soc_max_kwh(self) -> float:
        return self.soc_max * self.capacity_kwh

    @property
    def usable_kwh(self) -> float:
        return self.soc_max_kwh - self.soc_min_kwh

    def initial_state(self) -> BatteryState:
        return BatteryState(self.initial_soc * self.capacity_kwh)


@dataclass(frozen=True)
class BatteryState:
    """Energy in the store, kWh."""

    soc_kwh: float


@dataclass(frozen=True)
class StepResult:
    """One interval (spec 2.3): bus-side battery energy (+ discharge), loss, and which limit bound."""

    requested_kwh: float
    battery_kwh: float
    loss_kwh: float
    soc_kwh: float
    power_limited: bool
    soc_limited: bool


def interval_hours(interval_minutes: int) -> float:
    """The interval in hours; only the data model's intervals (data.INTERVALS_MINUTES) are allowed."""
    if isinstance(interval_minutes, bool) or interval_minutes not in INTERVALS_MINUTES:
        raise ParameterError(f"interval_minutes must be one of {INTERVALS_MINUTES}, not {interval_minutes!r}")
    return interval_minutes / 60


def raw_step(cfg: BatteryConfig, soc: float, requested_kwh: float, dt_h: float) -> tuple[float, float, float, int]:
    """The step on plain floats: (soc_end, battery_kwh, loss_kwh, flags); flags bit 0 power, bit 1 SoC.

    Order within the interval (spec 2.3): the leak first (``soc * self_discharge * dt``), then the
    requested transfer, clamped to the power limit, then to the SoC window.
    """
    leak = soc * cfg.self_discharge_per_hour * dt_h
    s = soc - leak
    flags = 0
    if requested_kwh > 0:
        e = requested_kwh
        cap = cfg.max_discharge_kw * dt_h
        if e > cap:
            e, flags = cap, 1
        lo = cfg.soc_min * cfg.capacity_kwh
        avail = s - lo
        take = e / cfg.discharge_efficiency
        if take > avail:
            flags |= 2
            if avail <= 0:
                return s, 0.0, leak, flags
            take = avail
            e = min(e, avail * cfg.discharge_efficiency)
        return max(lo, s - take), e, leak + (take - e), flags
    if requested_kwh < 0:
        e = -requested_kwh
        cap = cfg.max_charge_kw * dt_h
        if e > cap:
            e, flags = cap, 1
        hi = cfg.soc_max * cfg.capacity_kwh
        room = hi - s
        stored = e * cfg.charge_efficiency
        if stored > room:
            flags |= 2
            if room <= 0:
                return s, 0.0, leak, flags
            stored = room
            e = min(e, room / cfg.charge_efficiency)
        return min(hi, s + stored), -e, leak + (e - stored), flags
    return s, 0.0, leak, flags


def step(cfg: BatteryConfig, state: BatteryState, requested_kw: float,
         interval_minutes: int) -> tuple[BatteryState, StepResult]:
    """Run one interval with ``requested_kw`` (+ discharge to the house, - charge) (spec 2.3).

    The battery delivers what its power limit and SoC window allow; the result says what it did.
    ``grid = load - result.battery_kwh`` and ``result.soc_kwh - state.soc_kwh = -battery - loss``
    to rounding of the SoC update (one unit in the last place of the stored energy).
    """
    dt_h = interval_hours(interval_minutes)
    req = _real("requested_kw", requested_kw)
    if abs(req) > MAX_POWER_KW:
        raise ParameterError(f"requested_kw must be within +-{MAX_POWER_KW:g} kW, not {req}")
    soc = _real("soc_kwh", state.soc_kwh)
    if not 0 <= soc <= cfg.capacity_kwh:
        raise ParameterError(f"soc_kwh must be in [0, {cfg.capacity_kwh}], not {soc}")
    soc_end, b, loss, flags = raw_step(cfg, soc, req * dt_h, dt_h)
    return BatteryState(soc_end), StepResult(req * dt_h, b, loss, soc_end, bool(flags & 1), bool(flags & 2))
