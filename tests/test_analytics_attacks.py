"""Attacks h1..h6, faults and injection (specs/analytics.md section 4)."""

from __future__ import annotations

import datetime

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from protocols.analytics.attacks import (
    ATTACK_NAMES,
    FAULT_NAMES,
    AttackParams,
    FaultParams,
    apply_attack,
    apply_fault,
    h1,
    h2,
    h3,
    h4,
    h5,
    h6,
    inject,
    seed_int,
    spikes,
    stuck_at,
    zeros,
)
from protocols.analytics.data import ATTACKS, FAULTS, MAX_KWH_PER_MINUTE, LoadData
from protocols.errors import ParameterError

SLOTS = (24, 48, 96, 144, 288, 1440)


def days(min_value: float = 0.0) -> st.SearchStrategy[np.ndarray]:
    """One meter-day of a supported length, readings in [min_value, the valid maximum] kWh."""
    return st.sampled_from(SLOTS).flatmap(lambda t: arrays(
        np.float64, t, elements=st.floats(min_value, MAX_KWH_PER_MINUTE * (1440 // t), allow_nan=False,
                                              allow_subnormal=False)))


def positive_day(t: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).uniform(0.01, min(2.0, MAX_KWH_PER_MINUTE * (1440 // t)), size=t)


def grid(meters: int = 40, ndays: int = 30, interval: int = 30, seed: int = 7) -> LoadData:
    rng = np.random.default_rng(seed)
    kwh = rng.uniform(0.01, 1.5, size=(meters, ndays, 1440 // interval))
    return LoadData(tuple(f"H{i:06d}" for i in range(meters)), datetime.date(2025, 1, 1), interval, kwh)


def test_names() -> None:
    assert ATTACK_NAMES == ("h1", "h2", "h3", "h4", "h5", "h6")
    assert FAULT_NAMES == ("stuck-at", "zeros", "spikes")


# ------------------------------------------------------------------ 4.1 h1..h6


@settings(max_examples=60, deadline=None)
@given(days(), st.integers(0, 2**32), st.sampled_from((1, 3, 4)))
def test_h1_h3_h4_never_increase_the_total_and_stay_non_negative(x, seed, kind):
    y = apply_attack(x, kind, np.random.default_rng(seed))
    assert y.shape == x.shape and np.all(y >= 0)
    assert y.sum() <= 0.8 * x.sum() * (1 + 1e-12) + 1e-12
    assert y.sum() >= 0.1 * x.sum() * (1 - 1e-12) - 1e-12


@settings(max_examples=60, deadline=None)
@given(days(), st.integers(0, 2**32))
def test_h1_is_one_factor_for_the_day(x, seed):
    y = apply_attack(x, 1, np.random.default_rng(seed))
    pos = x > 0
    if pos.any():
        ratio = y[pos] / x[pos]
        assert np.allclose(ratio, ratio[0]) and 0.1 <= ratio[0] <= 0.8
    assert np.all(y[~pos] == 0)


@settings(max_examples=60, deadline=None)
@given(days(min_value=1e-3), st.integers(0, 2**32))
def test_h3_factors_per_reading_in_range(x, seed):
    y = apply_attack(x, 3, np.random.default_rng(seed))
    ratio = y / x
    assert np.all((ratio >= 0.1 - 1e-12) & (ratio <= 0.8 + 1e-12))
    if len(x) > 1:
        assert len(np.unique(ratio)) > 1  # one factor per reading, not per day


@settings(max_examples=60, deadline=None)
@given(days(), st.integers(0, 2**32))
def test_h4_is_a_fraction_of_the_mean(x, seed):
    y = apply_attack(x, 4, np.random.default_rng(seed))
    mean = x.mean()
    assert np.all(y >= 0.1 * mean * (1 - 1e-12)) and np.all(y <= 0.8 * mean * (1 + 1e-12))


@settings(max_examples=60, deadline=None)
@given(days())
def test_h5_preserves_total_with_zero_variance(x):
    y = apply_attack(x, 5, np.random.default_rng(0))
    assert y.sum() == pytest.approx(x.sum(), rel=1e-12, abs=1e-12)
    assert np.ptp(y) == 0
    assert np.array_equal(y, h5(x))


@settings(max_examples=60, deadline=None)
@given(days())
def test_h6_reverses_and_preserves_the_readings(x):
    y = apply_attack(x, 6, np.random.default_rng(0))
    assert np.array_equal(np.sort(y), np.sort(x))
    assert np.array_equal(y, x[::-1])
    assert np.array_equal(h6(y), x)
    assert y[0] == x[-1] and y[-1] == x[0]


@settings(max_examples=80, deadline=None)
@given(days(min_value=1e-3), st.integers(0, 2**32))
def test_h2_zeros_exactly_one_window(x, seed):
    y = apply_attack(x, 2, np.random.default_rng(seed))
    zero = np.flatnonzero(y == 0)
    assert zero.size > 0
    assert np.array_equal(zero, np.arange(zero[0], zero[-1] + 1))  # one contiguous window
    shortest, longest = AttackParams().h2_slots(len(x))
    assert shortest <= zero.size <= longest
    keep = y != 0
    assert np.array_equal(y[keep], x[keep])


def test_h2_window_bounds_in_slots():
    p = AttackParams()
    assert p.h2_slots(24) == (4, 24)
    assert p.h2_slots(48) == (8, 48)
    assert p.h2_slots(1440) == (240, 1440)
    assert AttackParams(h2_min_hours=0.25, h2_max_hours=0.25).h2_slots(96) == (1, 1)
    with pytest.raises(ParameterError):
        AttackParams(h2_min_hours=0.25, h2_max_hours=0.25).h2_slots(24)  # no 15-minute window in hours


def test_explicit_attack_functions():
    x = np.array([1.0, 2.0, 3.0, 4.0] * 6)
    assert np.array_equal(h1(x, 0.5), x / 2)
    y = h2(x, 3, 7)
    assert np.all(y[3:7] == 0) and np.array_equal(y[:3], x[:3]) and np.array_equal(y[7:], x[7:])
    assert np.allclose(h4(x, np.full(24, 0.5)), 1.25)
    assert np.allclose(h5(x), 2.5)
    for bad in ((5, 5), (-1, 3), (20, 25)):
        with pytest.raises(ParameterError):
            h2(x, *bad)


def test_attacks_do_not_write_their_input():
    x = positive_day(48, 1)
    before = x.copy()
    for kind in ATTACKS:
        apply_attack(x, kind, np.random.default_rng(kind))
    for kind in FAULTS:
        apply_fault(x, kind, np.random.default_rng(kind))
    assert np.array_equal(x, before)


def test_attack_and_fault_arguments_refused():
    x = positive_day(48, 2)
    rng = np.random.default_rng(0)
    for kind in (0, 7, 10, True, "h1"):
        with pytest.raises(ParameterError):
            apply_attack(x, kind, rng)  # type: ignore[arg-type]
    for kind in (0, 6, 10, False):
        with pytest.raises(ParameterError):
            apply_fault(x, kind, rng)
    for day in (np.ones(50), np.ones((2, 24)), np.array([1.0] * 23 + [-0.1]),
                np.array([1.0] * 23 + [np.nan]), np.array([1.0] * 23 + [MAX_KWH_PER_MINUTE * 60 * 1.01])):
        with pytest.raises(ParameterError):
            apply_attack(day, 1, rng)


def test_params_bounded():
    for kwargs in ({"low": -0.1}, {"high": 1.5}, {"low": 0.9, "high": 0.2}, {"h2_min_hours": 0},
                   {"h2_min_hours": 5, "h2_max_hours": 4}, {"h2_max_hours": 25}, {"low": float("nan")}):
        with pytest.raises(ParameterError):
            AttackParams(**kwargs)  # type: ignore[arg-type]
    for fkwargs in ({"stuck_min_hours": 0}, {"zeros_whole_day": 1.5}, {"spike_count": (0, 2)},
                    {"spike_count": (3, 2)}, {"spike_level": (0.0, 0.5)}, {"spike_level": (0.5, 1.2)}):
        with pytest.raises(ParameterError):
            FaultParams(**fkwargs)  # type: ignore[arg-type]


# ------------------------------------------------------------------ 4.2 faults


@settings(max_examples=60, deadline=None)
@given(st.sampled_from(SLOTS), st.integers(0, 2**32))
def test_stuck_at_repeats_the_last_good_reading_to_the_end_of_day(t, seed):
    x = positive_day(t, seed % 1000)
    y = apply_fault(x, 7, np.random.default_rng(seed))
    changed = np.flatnonzero(y != x)
    start = changed[0]
    assert start >= 1 and np.array_equal(y[:start], x[:start])
    assert np.all(y[start:] == x[start - 1])
    assert t - start >= round(2 * 60 / (1440 // t))  # at least two hours stuck


@settings(max_examples=60, deadline=None)
@given(st.sampled_from(SLOTS), st.integers(0, 2**32))
def test_zeros_is_whole_day_or_a_tail(t, seed):
    x = positive_day(t, seed % 1000)
    y = apply_fault(x, 8, np.random.default_rng(seed))
    zero = np.flatnonzero(y == 0)
    assert zero.size > 0 and zero[-1] == t - 1 and np.array_equal(zero, np.arange(zero[0], t))
    assert np.array_equal(y[: zero[0]], x[: zero[0]])
    assert zero.size == t or zero.size >= round(2 * 60 / (1440 // t))


def test_zeros_whole_day_share():
    x = positive_day(48, 3)
    rng = np.random.default_rng(5)
    whole = sum(int(np.all(apply_fault(x, 8, rng) == 0)) for _ in range(400))
    assert 150 <= whole <= 250  # default probability 0.5
    assert all(np.all(apply_fault(x, 8, rng, FaultParams(zeros_whole_day=1.0)) == 0) for _ in range(20))


@settings(max_examples=60, deadline=None)
@given(st.sampled_from(SLOTS), st.integers(0, 2**32))
def test_spikes_are_few_high_and_valid(t, seed):
    x = positive_day(t, seed % 1000)
    y = apply_fault(x, 9, np.random.default_rng(seed))
    cap = MAX_KWH_PER_MINUTE * (1440 // t)
    changed = np.flatnonzero(y != x)
    assert 1 <= changed.size <= 3
    assert np.all(y[changed] >= 0.5 * cap) and np.all(y[changed] <= cap)
    assert np.all(y <= cap)


def test_explicit_fault_functions():
    x = np.arange(1.0, 25.0)
    assert np.array_equal(stuck_at(x, 10), np.r_[x[:10], np.full(14, 10.0)])
    assert np.array_equal(zeros(x, 0), np.zeros(24))
    assert np.array_equal(zeros(x, 20), np.r_[x[:20], np.zeros(4)])
    assert np.array_equal(spikes(x, np.array([2]), np.array([50.0])), np.r_[x[:2], 50.0, x[3:]])
    for call in (lambda: stuck_at(x, 0), lambda: zeros(x, 24), lambda: spikes(x, np.array([1, 1]), np.ones(2)),
                 lambda: spikes(x, np.array([3]), np.array([101.0]))):
        with pytest.raises(ParameterError):
            call()


# ------------------------------------------------------------------ 4.3 injection


@pytest.mark.parametrize("interval", [15, 30, 60])
def test_inject_labels_exactly_the_modified_meter_days(interval):
    data = grid(interval=interval)
    before = data.kwh.copy()
    out, labels = inject(data, fraction=0.2, kinds=tuple(range(1, 10)), seed=3)
    assert np.array_equal(data.kwh, before)  # input untouched
    assert out.meters == data.meters and out.start == data.start and out.interval_minutes == interval
    assert labels.meters == data.meters and labels.start == data.start
    changed = np.any(out.kwh != data.kwh, axis=2)
    assert np.array_equal(changed, labels.anomalous)
    for m, d in np.argwhere(~labels.anomalous)[:200]:
        assert out.kwh[m, d].tobytes() == data.kwh[m, d].tobytes()
    assert set(np.unique(labels.codes)) == set(range(10))
    assert np.all(out.kwh >= 0) and np.all(out.kwh <= MAX_KWH_PER_MINUTE * interval)


@settings(max_examples=25, deadline=None)
@given(st.floats(0.0, 1.0), st.integers(0, 2**20))
def test_inject_fraction_exact(fraction, seed):
    data = grid(meters=13, ndays=11)
    _, labels = inject(data, fraction=fraction, seed=seed)
    assert int(labels.anomalous.sum()) == int(np.floor(fraction * 13 * 11 + 0.5))
    assert set(np.unique(labels.codes)) <= {0, *ATTACKS}


def test_inject_kinds_restrict_labels_and_are_roughly_uniform():
    data = grid(meters=60, ndays=40)
    _, labels = inject(data, fraction=0.5, kinds=(2, 5, 8), seed=1)
    counts = np.bincount(labels.codes.ravel(), minlength=10)
    assert set(np.flatnonzero(counts)) == {0, 2, 5, 8}
    assert all(abs(counts[k] - 400) < 80 for k in (2, 5, 8))


def test_inject_deterministic_by_seed():
    data = grid()
    a, la = inject(data, seed=11)
    b, lb = inject(data, seed=11)
    c, lc = inject(data, seed=12)
    assert np.array_equal(a.kwh, b.kwh) and np.array_equal(la.codes, lb.codes)
    assert not np.array_equal(la.codes, lc.codes)
    s1, l1 = inject(data, seed="run-1")
    s2, l2 = inject(data, seed="run-1")
    assert np.array_equal(s1.kwh, s2.kwh) and np.array_equal(l1.codes, l2.codes)
    assert seed_int("run-1") == int.from_bytes(
        __import__("hashlib").sha256(b"run-1").digest(), "big")


def test_inject_thieves_attack_one_contiguous_run_with_one_kind():
    data = grid(meters=50, ndays=30)
    out, labels = inject(data, fraction=0.3, meters_fraction=0.2, seed=4)
    rows = labels.anomalous.any(axis=1)
    assert rows.sum() == 10
    for m in np.flatnonzero(rows):
        attacked = np.flatnonzero(labels.codes[m])
        assert attacked.size == 9 and np.array_equal(attacked, np.arange(attacked[0], attacked[0] + 9))
        assert len(set(labels.codes[m, attacked])) == 1
    assert np.array_equal(np.any(out.kwh != data.kwh, axis=2), labels.anomalous)
    _, whole = inject(data, fraction=1.0, meters_fraction=0.1, seed=4)
    assert sorted(whole.anomalous.sum(axis=1).tolist()) == [0] * 45 + [30] * 5
    _, none = inject(data, fraction=0.0, meters_fraction=0.5, seed=4)
    assert not none.anomalous.any()


def test_inject_parameters_refused():
    data = grid(meters=3, ndays=2)
    bad_calls = [
        {"fraction": -0.01}, {"fraction": 1.01}, {"fraction": float("nan")}, {"fraction": "0.1"},
        {"kinds": ()}, {"kinds": (0,)}, {"kinds": (10,)}, {"kinds": (1, 1)}, {"kinds": ("h1",)},
        {"kinds": (True,)}, {"kinds": "123"}, {"meters_fraction": 1.5}, {"meters_fraction": -1},
        {"seed": -1}, {"seed": 1.5}, {"seed": True},
        {"attack_params": AttackParams(h2_min_hours=0.25, h2_max_hours=0.25), "kinds": (2,)},
    ]
    for kwargs in bad_calls:
        with pytest.raises(ParameterError):
            inject(data, **kwargs)  # type: ignore[arg-type]
    with pytest.raises(ParameterError):
        inject("not data")  # type: ignore[arg-type]


@pytest.mark.parametrize("value", [-0.5, np.nan, np.inf, MAX_KWH_PER_MINUTE * 30 * 2])
def test_inject_refuses_invalid_readings_naming_the_cell(value):
    data = grid(meters=3, ndays=2)
    data.kwh[1, 1, 5] = value
    with pytest.raises(ParameterError, match=r"H000001, day 2025-01-02, slot 5"):
        inject(data)


def test_inject_one_minute_interval():
    data = grid(meters=2, ndays=3, interval=1)
    out, labels = inject(data, fraction=0.5, kinds=tuple(range(1, 10)), seed=9)
    assert labels.anomalous.sum() == 3
    assert np.array_equal(np.any(out.kwh != data.kwh, axis=2), labels.anomalous)


def test_inject_follows_the_documented_draw_order():
    """Replay section 4.3's draws with a fresh generator and get the same data and labels."""
    data = grid(meters=9, ndays=7, interval=60)
    kinds = (1, 2, 3, 4, 5, 6, 7, 8, 9)
    out, labels = inject(data, fraction=0.4, kinds=kinds, seed=21)
    rng = np.random.default_rng(21)
    n = int(np.floor(0.4 * 9 * 7 + 0.5))
    cells = np.sort(rng.choice(9 * 7, size=n, replace=False))
    drawn = np.asarray(kinds)[rng.integers(0, len(kinds), size=n)]
    expect = data.kwh.copy()
    codes = np.zeros((9, 7), dtype=int)
    for cell, kind in zip(cells, drawn):
        m, d = divmod(int(cell), 7)
        apply = apply_attack if kind in ATTACKS else apply_fault
        expect[m, d] = apply(data.kwh[m, d], int(kind), rng)
        codes[m, d] = kind
    assert np.array_equal(labels.codes, codes)
    assert np.array_equal(out.kwh, expect)


def test_inject_thieves_follow_the_documented_draw_order():
    data = grid(meters=12, ndays=10, interval=60)
    out, labels = inject(data, fraction=0.3, meters_fraction=0.25, kinds=(1, 6, 9), seed="s")
    rng = np.random.default_rng(seed_int("s"))
    thieves = np.sort(rng.choice(12, size=3, replace=False))
    plan = [(int(m), (1, 6, 9)[int(rng.integers(0, 3))], int(rng.integers(0, 10 - 3 + 1))) for m in thieves]
    expect = data.kwh.copy()
    codes = np.zeros((12, 10), dtype=int)
    for m, kind, first in plan:
        for d in range(first, first + 3):
            apply = apply_attack if kind in ATTACKS else apply_fault
            expect[m, d] = apply(data.kwh[m, d], kind, rng)
            codes[m, d] = kind
    assert np.array_equal(labels.codes, codes)
    assert np.array_equal(out.kwh, expect)


def test_kinds_as_numpy_array_and_numpy_numbers():
    data = grid(meters=4, ndays=5)
    a, la = inject(data, kinds=np.array([1, 2]), fraction=np.float64(0.5), seed=np.int64(3))
    b, lb = inject(data, kinds=(1, 2), fraction=0.5, seed=3)
    assert np.array_equal(la.codes, lb.codes) and np.array_equal(a.kwh, b.kwh)


def test_explicit_functions_check_factor_shapes():
    x = np.ones(24)
    for f in (h3, h4):
        with pytest.raises(ParameterError):
            f(x, np.ones(23))
    with pytest.raises(ParameterError):
        spikes(np.ones(25), np.array([1]), np.array([1.0]))
