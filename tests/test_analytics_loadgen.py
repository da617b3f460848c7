"""The household load generator (specs/analytics.md section 3)."""

from __future__ import annotations

import datetime

import numpy as np
import pytest

from protocols.analytics.data import MAX_DAYS, MAX_METERS
from protocols.analytics.loadgen import APPLIANCES, Events, daylight, generate, generate_with_events, seed_to_int
from protocols.errors import ParameterError

A = {name: i for i, name in enumerate(APPLIANCES)}


@pytest.fixture(scope="module")
def year() -> tuple:
    """120 households over 2025 with their events, 30-minute readings."""
    return generate_with_events(120, 365, seed=7)


def test_same_seed_same_data_other_seed_other_data():
    a = generate(6, 10, seed=3)
    b = generate(6, 10, seed=3)
    assert np.array_equal(a.kwh, b.kwh) and a.meters == b.meters == tuple(f"H{i:06d}" for i in range(6))
    assert not np.array_equal(a.kwh, generate(6, 10, seed=4).kwh)
    assert np.array_equal(generate(3, 2, seed="x").kwh, generate(3, 2, seed="x").kwh)
    assert not np.array_equal(generate(3, 2, seed="x").kwh, generate(3, 2, seed="y").kwh)
    assert seed_to_int("x") != seed_to_int("y")


def test_events_do_not_change_the_load():
    plain = generate(5, 9, seed=11, interval_minutes=15)
    data, events = generate(5, 9, seed=11, interval_minutes=15, with_events=True)
    assert np.array_equal(plain.kwh, data.kwh)
    assert isinstance(events, Events) and len(events) > 0


def test_one_minute_load_is_exactly_the_sum_of_the_events():
    data, ev = generate_with_events(4, 6, interval_minutes=1, seed=5)
    minutes = 6 * 1440
    watts = np.rint(ev.minute_load_kw(4, minutes) * 1000).astype(np.int64)
    assert np.array_equal(watts, np.rint(data.kwh.reshape(4, minutes) * 60000).astype(np.int64))
    assert np.all(np.abs(data.kwh.reshape(4, minutes) * 60 - watts / 1000) < 1e-9)
    # every event is inside the horizon, lasts at least a minute and draws whole watts
    assert ev.start_minute.min() >= 0 and (ev.start_minute + ev.duration_minutes).max() <= minutes
    assert ev.duration_minutes.min() >= 1 and ev.power_kw.min() > 0
    assert np.all(np.abs(ev.power_kw * 1000 - np.rint(ev.power_kw * 1000)) < 1e-3)
    assert ev.meter.dtype == np.int32 and ev.appliance.dtype == np.int16 and ev.start_minute.dtype == np.int64
    assert ev.duration_minutes.dtype == np.int32 and ev.power_kw.dtype == np.float32
    assert set(np.unique(ev.appliance)) <= set(range(len(APPLIANCES)))
    # one standby event per meter spanning everything
    standby = ev.appliance == A["standby"]
    assert np.array_equal(np.sort(ev.meter[standby]), np.arange(4))
    assert np.all(ev.duration_minutes[standby] == minutes)


def test_events_sum_to_the_interval_energy(year):
    data, ev = year
    first = ev.meter < 3
    sub = Events(ev.meter[first], ev.appliance[first], ev.start_minute[first], ev.duration_minutes[first],
                 ev.power_kw[first])
    minute = sub.minute_load_kw(3, 365 * 1440)
    assert np.allclose(minute.reshape(3, 365, 48, 30).sum(axis=3) / 60, data.kwh[:3], rtol=0, atol=1e-9)


def test_median_daily_consumption_is_uk_like(year):
    data, _ = year
    daily = data.kwh.sum(axis=2)
    assert 6.0 <= float(np.median(daily)) <= 10.0
    assert np.all(data.kwh >= 0)
    # heterogeneity: households differ clearly
    per_home = daily.mean(axis=1)
    assert per_home.max() > 2 * per_home.min()


def test_heating_homes_use_more_in_winter(year):
    data, ev = year
    heating = np.unique(ev.meter[ev.appliance == A["heating"]])
    assert heating.size >= 3
    months = np.array([data.day(i).month for i in range(data.days)])
    daily = data.kwh.sum(axis=2)
    winter = daily[heating][:, np.isin(months, (1, 2, 12))].mean(axis=1)
    summer = daily[heating][:, np.isin(months, (6, 7, 8))].mean(axis=1)
    assert np.all(winter > 1.5 * summer)
    others = np.setdiff1d(np.arange(120), heating)
    # lighting (and tumble-drying) make even unheated homes use more in winter, but far less so
    w = daily[others][:, np.isin(months, (1, 2, 12))].mean()
    s = daily[others][:, np.isin(months, (6, 7, 8))].mean()
    assert s < w < 1.5 * s


def test_lighting_follows_daylight(year):
    _, ev = year
    light = ev.appliance == A["lighting"]
    day = ev.start_minute[light] // 1440
    energy = (ev.power_kw[light] * ev.duration_minutes[light]).astype(np.float64)
    december = np.bincount(day, weights=energy, minlength=365)[334:365].sum()
    june = np.bincount(day, weights=energy, minlength=365)[151:181].sum()
    assert december > 2 * june
    rise, sset = daylight(np.array([172.0, 355.0]))
    assert sset[0] - rise[0] > 16 * 60 and sset[1] - rise[1] < 8 * 60


def test_fridge_cycling_is_visible_at_night():
    data, ev = generate_with_events(3, 2, interval_minutes=1, seed=9)
    for m in range(3):
        fridge = (ev.meter == m) & (ev.appliance == A["fridge"])
        watts = int(round(float(ev.power_kw[fridge][0]) * 1000))
        standby = int(round(float(ev.power_kw[(ev.meter == m) & (ev.appliance == A["standby"])][0]) * 1000))
        night = np.rint(data.kwh[m, 1, 120:300] * 60000).astype(np.int64)  # 02:00-05:00 of day 2
        rises = np.diff(night)
        assert np.count_nonzero(rises == watts) >= 2  # the compressor switches on at least twice
        assert night.min() >= standby


def test_weekends_start_later():
    data, ev = generate_with_events(40, 14, seed=2, start=datetime.date(2025, 6, 2))  # a Monday
    kettle = ev.appliance == A["kettle"]
    day = ev.start_minute[kettle] // 1440
    first = {}
    for m, d, s in zip(ev.meter[kettle], day, ev.start_minute[kettle] % 1440):
        first[(m, d)] = min(first.get((m, d), 1440), s)
    weekday = np.mean([v for (m, d), v in first.items() if d % 7 < 5])
    weekend = np.mean([v for (m, d), v in first.items() if d % 7 >= 5])
    assert weekend > weekday + 30


def test_progress_is_reported_per_chunk():
    calls: list[tuple[int, int]] = []
    generate(30, 200, seed=1, progress=lambda done, total: calls.append((done, total)))
    assert len(calls) >= 2 and calls[-1] == (30, 30)
    assert all(b[0] > a[0] for a, b in zip(calls, calls[1:])) and all(t == 30 for _, t in calls)


@pytest.mark.parametrize("kwargs", [
    {"households": 0}, {"households": MAX_METERS + 1}, {"households": True}, {"households": 2.0},
    {"days": 0}, {"days": MAX_DAYS + 1}, {"interval_minutes": 7}, {"interval_minutes": 1440},
    {"seed": -1}, {"seed": 1.5}, {"start": "2025-01-01"}, {"start": datetime.date(9999, 12, 31)},
    {"households": 70_000, "days": 320},  # 1.07e9 readings at 30 minutes: over MAX_OUTPUT_CELLS
    {"households": 6000, "days": 350, "with_events": True},  # 2.1e6 household-days with events
])
def test_bounds_are_refused(kwargs):
    args = {"households": 2, "days": 2, **kwargs}
    households, days = args.pop("households"), args.pop("days")
    with pytest.raises(ParameterError):
        generate(households, days, **args)


@pytest.mark.parametrize("interval", [5, 10, 15, 30, 60])
def test_the_interval_only_sums_the_same_minutes(interval):
    minute = generate(3, 3, interval_minutes=1, seed="sum")
    coarse = generate(3, 3, interval_minutes=interval, seed="sum")
    assert coarse.interval_minutes == interval and coarse.kwh.shape == (3, 3, 1440 // interval)
    assert np.allclose(minute.kwh.reshape(3, 3, -1, interval).sum(axis=3), coarse.kwh, rtol=0, atol=1e-12)
