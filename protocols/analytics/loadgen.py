"""Bottom-up household load generator (specs/analytics.md section 3).

Each household gets a size, a working pattern and a set of appliances
(section 3.1); each day a wake time, a bed time and an absence; appliance
switching events follow from those, from daylight and from the outdoor
temperature (sections 3.2, 3.3).  Every event is a rectangle of whole watts
over whole minutes, so the 1-minute load is exactly the sum of the events
(section 3.4) and the reported energy is that load summed over each interval.
Work is vectorised over a chunk of households at a time, so memory is bounded
by the chunk, not by the number of households.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass
from typing import Callable, Literal, overload

import numpy as np

from protocols.analytics.data import INTERVALS_MINUTES, MAX_DAYS, MAX_METERS, LoadData
from protocols.analytics.data import seed_int as seed_to_int
from protocols.errors import ParameterError

APPLIANCES = ("standby", "fridge", "freezer", "lighting", "cooking", "microwave", "kettle", "electronics",
              "washing", "tumble-dryer", "dishwasher", "electric-shower", "heating")
"""Appliance names; ``Events.appliance`` indexes this tuple (spec 3.2)."""
_A = {name: i for i, name in enumerate(APPLIANCES)}

LATITUDE_DEGREES = 51.5
"""Latitude used for daylight (London, like the LCL data set; spec 3.3)."""
MINUTE_CELLS_PER_CHUNK = 1 << 22
"""Upper bound on households x minutes held at once (32 MiB of float64, spec 3.5)."""

MAX_OUTPUT_CELLS = 1 << 30
"""At most this many readings (households x days x slots, 8 GiB of float64) per call (spec 3)."""
MAX_EVENT_HOUSEHOLD_DAYS = 1 << 21
"""With the events record, at most this many household-days (about 100 million events, spec 3.4)."""

ProgressFn = Callable[[int, int], None]


@dataclass(frozen=True)
class Events:
    """The true switching events, one row per event (spec 3.4).

    ``start_minute`` counts minutes from 00:00 of the first day; an event adds
    ``power_kw`` (a whole number of watts) to its meter's load for minutes
    ``start_minute .. start_minute + duration_minutes - 1``.
    """

    meter: np.ndarray
    appliance: np.ndarray
    start_minute: np.ndarray
    duration_minutes: np.ndarray
    power_kw: np.ndarray

    def __len__(self) -> int:
        return int(self.meter.shape[0])

    def minute_load_kw(self, meters: int, minutes: int) -> np.ndarray:
        """The meters x minutes load in kW these events add up to (float64, spec 3.4)."""
        watts = np.rint(self.power_kw.astype(np.float64) * 1000.0)
        row = minutes + 1
        base = self.meter.astype(np.int64) * row
        diff = np.bincount(base + self.start_minute, weights=watts, minlength=meters * row)
        diff -= np.bincount(base + self.start_minute + self.duration_minutes, weights=watts,
                            minlength=meters * row)
        return np.cumsum(diff.reshape(meters, row)[:, :minutes], axis=1) / 1000.0


def daylight(day_of_year: np.ndarray, latitude: float = LATITUDE_DEGREES) -> tuple[np.ndarray, np.ndarray]:
    """Sunrise and sunset in minutes after local midnight, solar noon at 12:00 (spec 3.3)."""
    decl = np.radians(23.44) * np.sin(2 * np.pi * (284 + day_of_year) / 365.0)
    cos_h = np.clip(-np.tan(np.radians(latitude)) * np.tan(decl), -1.0, 1.0)
    half_day = np.degrees(np.arccos(cos_h)) / 15.0 * 60.0
    return 720.0 - half_day, 720.0 + half_day


def mean_temperature(day_of_year: np.ndarray) -> np.ndarray:
    """Seasonal mean daily outdoor temperature in deg C (London-like, spec 3.3)."""
    return 10.75 - 6.75 * np.cos(2 * np.pi * (day_of_year - 20) / 365.0)


class _Sink:
    """Collects events of one chunk as flat arrays."""

    def __init__(self) -> None:
        self.parts: list[tuple[np.ndarray, ...]] = []

    def add(self, appliance: str, meter: np.ndarray, start: np.ndarray, dur: np.ndarray, watts: np.ndarray,
            mask: np.ndarray | None = None) -> None:
        shape = np.broadcast_shapes(meter.shape, start.shape, dur.shape, watts.shape,
                                    () if mask is None else mask.shape)
        m, s, d, w = (np.broadcast_to(a, shape) for a in (meter, start, dur, watts))
        keep = d > 0
        if mask is not None:
            keep &= np.broadcast_to(mask, shape)
        self.parts.append((m[keep].astype(np.int64), np.full(int(keep.sum()), _A[appliance], np.int16),
                           s[keep].astype(np.int64), d[keep].astype(np.int64), w[keep].astype(np.int64)))

    def arrays(self, horizon: int) -> tuple[np.ndarray, ...]:
        meter, app, start, dur, watts = (np.concatenate([p[i] for p in self.parts]) for i in range(5))
        keep = (start < horizon) & (start >= 0) & (watts > 0)
        meter, app, start, dur, watts = meter[keep], app[keep], start[keep], dur[keep], watts[keep]
        dur = np.minimum(dur, horizon - start)
        order = np.lexsort((app, start, meter))
        return meter[order], app[order], start[order], dur[order], watts[order]


def _uniform_int(rng: np.random.Generator, low: float, high: float, shape: tuple[int, ...]) -> np.ndarray:
    return np.floor(rng.uniform(low, high, shape)).astype(np.int64)


def _chunk(rng: np.random.Generator, n: int, days: int, start: datetime.date,
           weather: np.ndarray) -> tuple[np.ndarray, ...]:
    """Events of ``n`` households over ``days`` days, meters numbered 0..n-1 (spec 3.1-3.3)."""
    horizon = days * 1440
    sink = _Sink()
    hh = np.arange(n)[:, None]                       # (n, 1)
    day0 = (np.arange(days, dtype=np.int64) * 1440)[None, :]  # (1, days)
    dates = [start + datetime.timedelta(days=i) for i in range(days)]
    doy = np.array([d.timetuple().tm_yday for d in dates], dtype=np.float64)
    weekend = np.array([d.weekday() >= 5 for d in dates])[None, :]
    sunrise, sunset = daylight(doy)
    sunrise_m = np.rint(sunrise).astype(np.int64)[None, :]
    sunset_m = np.rint(sunset).astype(np.int64)[None, :]
    winter = (0.5 + 0.5 * np.cos(2 * np.pi * (doy - 20) / 365.0))[None, :]  # 1 mid-January, 0 mid-July

    # -- 3.1 households
    size = rng.choice(np.arange(1, 6), size=n, p=[0.29, 0.35, 0.16, 0.14, 0.06])[:, None]
    worker = (rng.random(n) < np.where(size[:, 0] == 1, 0.45, 0.7))[:, None]
    owns = {name: rng.random(n)[:, None] < p for name, p in (
        ("freezer", 0.5), ("cooking", 0.6), ("microwave", 0.8), ("tumble-dryer", 0.55),
        ("dishwasher", 0.45), ("electric-shower", 0.35), ("heating", 0.1))}
    standby_w = np.rint(np.clip(rng.lognormal(np.log(85.0), 0.4, n), 20, 300)).astype(np.int64)[:, None]

    # -- 3.1 occupancy, per household-day
    wake_base = np.where(worker, rng.normal(400, 25, (n, 1)), rng.normal(450, 45, (n, 1)))
    bed_base = rng.normal(1370, 40, (n, 1))
    wake = np.rint(wake_base + np.where(weekend, 70, 0) + rng.normal(0, 20, (n, days))).astype(np.int64)
    wake = np.clip(wake, 300, 660)
    bed = np.rint(bed_base + np.where(weekend, 30, 0) + rng.normal(0, 25, (n, days))).astype(np.int64)
    bed = np.clip(bed, wake + 600, 1500)
    commute = worker & ~weekend
    out = rng.random((n, days)) < 0.5
    leave = np.where(commute, wake + _uniform_int(rng, 45, 90, (n, days)), _uniform_int(rng, 600, 840, (n, days)))
    away = np.where(commute, np.rint(rng.normal(570, 45, (n, days))), np.where(out, _uniform_int(
        rng, 60, 240, (n, days)), 0)).astype(np.int64)
    leave = np.minimum(leave, bed - 60)
    ret = np.minimum(leave + np.maximum(away, 0), bed - 30)
    home_a = leave - wake                            # minutes at home before the absence
    home_b = bed - ret                               # after it

    def home_time(u: np.ndarray) -> np.ndarray:
        """Map u in [0, 1) (shape (n, days) or (n, days, k)) to a minute when someone is awake at home."""
        a, b, w, r = ((x if u.ndim == 2 else x[..., None]) for x in (home_a, home_b, wake, ret))
        t = u * (a + b)
        return np.where(t < a, w + t, r + (t - a)).astype(np.int64)

    # -- 3.2 appliances. Cold appliances: regular cycles over the whole horizon.
    for name, p_lo, p_hi, w_lo, w_hi, duty_lo, duty_hi in (("fridge", 40, 70, 70, 130, 0.3, 0.45),
                                                           ("freezer", 50, 90, 80, 150, 0.35, 0.5)):
        period = _uniform_int(rng, p_lo, p_hi, (n,))
        watts = _uniform_int(rng, w_lo, w_hi, (n,))
        on = np.rint(period * rng.uniform(duty_lo, duty_hi, n)).astype(np.int64)
        phase = np.floor(rng.random(n) * period).astype(np.int64)
        cycles = horizon // int(p_lo) + 2
        k = np.arange(cycles, dtype=np.int64)[None, :]
        starts = phase[:, None] + k * period[:, None]
        jitter = rng.integers(-1, 2, (n, cycles))
        mask = owns["freezer"] if name == "freezer" else np.ones((n, 1), bool)
        sink.add(name, hh, starts, on[:, None] + jitter, watts[:, None], mask)
    sink.add("standby", np.arange(n), np.zeros(n, np.int64), np.full(n, horizon, np.int64), standby_w[:, 0])

    # Lighting: the dark part of the waking day at home (spec 3.3), one main and one extra level.
    light_w = np.rint(40 + 35 * size + rng.normal(0, 20, (n, 1))).clip(30, 400).astype(np.int64)
    dawn = sunrise_m + 20
    dusk = sunset_m - 30
    for s, e in ((wake, np.minimum(dawn, leave)), (np.maximum(wake, ret), dawn),
                 (np.maximum(dusk, wake), np.minimum(leave, bed)), (np.maximum(dusk, ret), bed)):
        sink.add("lighting", hh, day0 + s, np.maximum(e - s, 0), light_w)
    extra_on = rng.random((n, days)) < 0.6
    extra_s = np.maximum(dusk, ret) + _uniform_int(rng, 0, 60, (n, days))
    extra_d = np.minimum(_uniform_int(rng, 60, 180, (n, days)), np.maximum(bed - extra_s, 0))
    sink.add("lighting", hh, day0 + extra_s, extra_d, _uniform_int(rng, 40, 150, (n, 1)), extra_on)

    # Cooking: evening meal (and weekend lunch) in homes with an electric cooker.
    cook_w = _uniform_int(rng, 1500, 2600, (n, 1))
    meal = np.minimum(np.maximum(ret, 1020) + _uniform_int(rng, 0, 90, (n, days)), bed - 60)
    sink.add("cooking", hh, day0 + meal, _uniform_int(rng, 20, 60, (n, days)), cook_w,
             owns["cooking"] & (rng.random((n, days)) < 0.75))
    lunch = _uniform_int(rng, 720, 810, (n, days))
    sink.add("cooking", hh, day0 + lunch, _uniform_int(rng, 15, 45, (n, days)), cook_w,
             owns["cooking"] & weekend & (rng.random((n, days)) < 0.35) & ((lunch < leave) | (lunch >= ret)))
    sink.add("microwave", hh[..., None], day0[..., None] + home_time(rng.random((n, days, 2))),
             _uniform_int(rng, 2, 7, (n, days, 2)), _uniform_int(rng, 800, 1200, (n, 1, 1)),
             owns["microwave"][..., None] & (rng.random((n, days, 2)) < 0.4))

    # Kettle: first use soon after waking, further uses at random home times.
    kettle_w = _uniform_int(rng, 2200, 3000, (n, 1, 1))
    k_times = home_time(rng.random((n, days, 6)))
    k_times[..., 0] = wake + _uniform_int(rng, 5, 25, (n, days))
    p_kettle = np.broadcast_to(np.minimum(0.25 + 0.1 * size, 0.8)[..., None], (n, 1, 6)).copy()
    p_kettle[..., 0] = 0.85  # the morning hot drink
    sink.add("kettle", hh[..., None], day0[..., None] + k_times, _uniform_int(rng, 2, 5, (n, days, 6)), kettle_w,
             rng.random((n, days, 6)) < p_kettle)

    # Electronics (television, computers): evening at home.
    tv_s = np.maximum(ret, 1080) + _uniform_int(rng, 0, 60, (n, days))
    sink.add("electronics", hh, day0 + tv_s, np.maximum(bed - _uniform_int(rng, 0, 30, (n, days)) - tv_s, 0),
             _uniform_int(rng, 80, 220, (n, 1)), rng.random((n, days)) < 0.85)
    day_tv = home_time(rng.random((n, days)))
    sink.add("electronics", hh, day0 + day_tv, np.minimum(_uniform_int(rng, 30, 180, (n, days)),
                                                          np.maximum(np.where(day_tv < leave, leave, bed) - day_tv, 0)),
             _uniform_int(rng, 60, 150, (n, 1)), rng.random((n, days)) < 0.5)

    # Washing machine: heating phase then motor phase; a tumble-dryer run may follow.
    wash = np.minimum(home_time(rng.random((n, days))), bed - 120)
    wash_heat = _uniform_int(rng, 12, 22, (n, days))
    wash_motor = _uniform_int(rng, 50, 80, (n, days))
    washing = rng.random((n, days)) < np.minimum(0.12 + 0.08 * size, 0.6)
    sink.add("washing", hh, day0 + wash, wash_heat, _uniform_int(rng, 1800, 2300, (n, 1)), washing)
    sink.add("washing", hh, day0 + wash + wash_heat, wash_motor, _uniform_int(rng, 150, 300, (n, 1)), washing)
    dry = wash + wash_heat + wash_motor + _uniform_int(rng, 0, 30, (n, days))
    sink.add("tumble-dryer", hh, day0 + dry, _uniform_int(rng, 40, 80, (n, days)),
             _uniform_int(rng, 2000, 2700, (n, 1)),
             washing & owns["tumble-dryer"] & (rng.random((n, days)) < 0.3 + 0.5 * winter))

    # Dishwasher: after the evening meal.
    dish = np.minimum(np.maximum(ret, 1110) + _uniform_int(rng, 30, 150, (n, days)), bed)
    dish_heat = _uniform_int(rng, 15, 25, (n, days))
    dishing = owns["dishwasher"] & (rng.random((n, days)) < np.minimum(0.3 + 0.1 * size, 0.8))
    sink.add("dishwasher", hh, day0 + dish, dish_heat, _uniform_int(rng, 1800, 2200, (n, 1)), dishing)
    sink.add("dishwasher", hh, day0 + dish + dish_heat, _uniform_int(rng, 60, 90, (n, days)),
             _uniform_int(rng, 80, 150, (n, 1)), dishing)

    # Electric shower: one chance per person, one after the other after waking.
    shower_w = rng.choice(np.array([8500, 9500, 10500]), size=(n, 1, 1))
    person = np.arange(5)[None, None, :]
    shower_t = wake[..., None] + 10 + 15 * person + _uniform_int(rng, 0, 5, (n, days, 5))
    sink.add("electric-shower", hh[..., None], day0[..., None] + shower_t, _uniform_int(rng, 4, 10, (n, days, 5)),
             shower_w, owns["electric-shower"][..., None] & (person < size[..., None]) &
             (rng.random((n, days, 5)) < 0.6))

    # Electric space heating: thermostat duty in each occupied half hour, by outdoor temperature (3.3).
    demand = np.clip((15.5 - weather) / 12.0, 0.0, 1.0)[None, :, None]
    heaters = np.where(size >= 3, 2, 1)[..., None]
    heat_w = _uniform_int(rng, 2000, 3000, (n, 1, 1)) * heaters
    half = (np.arange(48, dtype=np.int64) * 30)[None, None, :]
    occupied = (((half >= wake[..., None]) & (half < leave[..., None])) |
                ((half >= ret[..., None]) & (half < bed[..., None])))
    duty = np.clip(demand * rng.uniform(0.7, 1.3, (n, days, 48)), 0.0, 1.0)
    heat_d = np.rint(30 * duty).astype(np.int64)
    heat_off = np.floor(rng.random((n, days, 48)) * (31 - heat_d)).astype(np.int64)
    sink.add("heating", hh[..., None], day0[..., None] + half + heat_off, heat_d, heat_w,
             owns["heating"][..., None] & occupied)
    return sink.arrays(horizon)


def _check(households: int, days: int, interval_minutes: int, with_events: bool) -> None:
    for name, value, hi in (("households", households, MAX_METERS), ("days", days, MAX_DAYS)):
        if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= hi:
            raise ParameterError(f"{name} must be an int in 1..{hi}, not {value!r}")
    if isinstance(interval_minutes, bool) or interval_minutes not in INTERVALS_MINUTES:
        raise ParameterError(f"interval_minutes must be one of {INTERVALS_MINUTES}, not {interval_minutes!r}")
    cells = households * days * (1440 // interval_minutes)
    if cells > MAX_OUTPUT_CELLS:
        raise ParameterError(f"{households} households x {days} days x {1440 // interval_minutes} slots = {cells} "
                             f"readings; at most {MAX_OUTPUT_CELLS} per call")
    if with_events and households * days > MAX_EVENT_HOUSEHOLD_DAYS:
        raise ParameterError(f"the events record is limited to {MAX_EVENT_HOUSEHOLD_DAYS} household-days")


def generate_with_events(households: int, days: int, *, interval_minutes: int = 30, seed: int | str = 0,
                         start: datetime.date = datetime.date(2025, 1, 1),
                         progress: ProgressFn | None = None) -> tuple[LoadData, Events]:
    """The load and its true switching events (spec 3.4)."""
    data, events = _generate(households, days, interval_minutes, seed, start, progress, True)
    assert events is not None
    return data, events


@overload
def generate(households: int, days: int, *, interval_minutes: int = ..., seed: int | str = ...,
             start: datetime.date = ..., progress: ProgressFn | None = ...,
             with_events: Literal[False] = ...) -> LoadData: ...


@overload
def generate(households: int, days: int, *, interval_minutes: int = ..., seed: int | str = ...,
             start: datetime.date = ..., progress: ProgressFn | None = ...,
             with_events: Literal[True]) -> tuple[LoadData, Events]: ...


@overload
def generate(households: int, days: int, *, interval_minutes: int = ..., seed: int | str = ...,
             start: datetime.date = ..., progress: ProgressFn | None = ...,
             with_events: bool = ...) -> LoadData | tuple[LoadData, Events]: ...


def generate(households: int, days: int, *, interval_minutes: int = 30, seed: int | str = 0,
             start: datetime.date = datetime.date(2025, 1, 1), progress: ProgressFn | None = None,
             with_events: bool = False) -> LoadData | tuple[LoadData, Events]:
    """``households`` synthetic meters ``H000000``.. over ``days`` days from ``start`` (spec 3)."""
    data, events = _generate(households, days, interval_minutes, seed, start, progress, with_events)
    return (data, events) if events is not None else data


def _generate(households: int, days: int, interval_minutes: int, seed: int | str, start: datetime.date,
              progress: ProgressFn | None, with_events: bool) -> tuple[LoadData, Events | None]:
    _check(households, days, interval_minutes, with_events)
    if not isinstance(start, datetime.date) or isinstance(start, datetime.datetime):
        raise ParameterError("start must be a datetime.date")
    if days > (datetime.date.max - start).days:
        raise ParameterError("the generated days run past the last representable date")
    rng = np.random.default_rng(seed_to_int(seed))
    doy = np.array([(start + datetime.timedelta(days=i)).timetuple().tm_yday for i in range(days)], np.float64)
    weather = mean_temperature(doy) + rng.normal(0.0, 2.0, days)
    minutes = days * 1440
    slots = 1440 // interval_minutes
    per_chunk = max(1, MINUTE_CELLS_PER_CHUNK // minutes)
    kwh = np.empty((households, days, slots), dtype=np.float64)
    parts: list[tuple[np.ndarray, ...]] = []
    for lo in range(0, households, per_chunk):
        n = min(per_chunk, households - lo)
        meter, app, s, d, w = _chunk(rng, n, days, start, weather)
        row = minutes + 1
        base = meter * row
        diff = np.bincount(base + s, weights=w, minlength=n * row)
        diff -= np.bincount(base + s + d, weights=w, minlength=n * row)
        load_w = np.cumsum(diff.reshape(n, row)[:, :minutes], axis=1)  # exact: integer watts in float64
        kwh[lo:lo + n] = load_w.reshape(n, days, slots, interval_minutes).sum(axis=3) / 60000.0
        if with_events:
            parts.append((meter + lo, app, s, d, w))
        if progress is not None:
            progress(lo + n, households)
    data = LoadData(tuple(f"H{i:06d}" for i in range(households)), start, interval_minutes, kwh)
    if not with_events:
        return data, None
    events = Events(meter=np.concatenate([p[0] for p in parts]).astype(np.int32),
                    appliance=np.concatenate([p[1] for p in parts]).astype(np.int16),
                    start_minute=np.concatenate([p[2] for p in parts]).astype(np.int64),
                    duration_minutes=np.concatenate([p[3] for p in parts]).astype(np.int32),
                    power_kw=(np.concatenate([p[4] for p in parts]) / 1000.0).astype(np.float32))
    return data, events
