"""The NILM attacker of battery load hiding (specs/battery.md section 5): protocols/analytics/nilm.py."""

from __future__ import annotations

import datetime
import math
from dataclasses import dataclass

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from protocols.analytics.data import LoadData
from protocols.analytics.nilm import (
    MAX_SAMPLES,
    DetectorConfig,
    LeakageConfig,
    MatchConfig,
    detect_edges,
    entropy,
    kw_from_data,
    leakage,
    leakage_from_data,
    match_edges,
    mutual_information,
    slow_attacker,
)
from protocols.errors import ParameterError

MIN_STEP = DetectorConfig().min_step_kw


@dataclass(frozen=True)
class Ev:
    """A stand-in for loadgen.Events (same five arrays)."""

    meter: np.ndarray
    appliance: np.ndarray
    start_minute: np.ndarray
    duration_minutes: np.ndarray
    power_kw: np.ndarray


def make_events(rows: list[tuple[int, int, int, int, float]]) -> Ev:
    r: list[tuple[float, ...]] = list(zip(*rows)) if rows else [(), (), (), (), ()]
    return Ev(np.array(r[0], dtype=np.int32), np.array(r[1], dtype=np.int16), np.array(r[2], dtype=np.int64),
              np.array(r[3], dtype=np.int32), np.array(r[4], dtype=np.float32))


def synthesise(events: Ev, meters: int, samples: int, standby: float = 0.08) -> np.ndarray:
    """1-minute load: standby plus each event's power over its duration (the loadgen contract)."""
    load = np.full((meters, samples), standby)
    for m, s, d, p in zip(events.meter, events.start_minute, events.duration_minutes, events.power_kw):
        load[m, s:s + d] += float(p)
    return load


def household(meters: int, days: int, seed: int) -> tuple[np.ndarray, Ev]:
    """Appliances with distinct sizes and durations; events 12 minutes apart, each off 4 minutes before the next."""
    rng = np.random.default_rng(seed)
    kinds = [(0.12, 20), (0.5, 120), (2.0, 25), (2.8, 3), (8.5, 8), (1.2, 90)]
    rows = []
    for m in range(meters):
        for day in range(days):
            slots = rng.choice(np.arange(10, 1400, 12), size=2 * len(kinds), replace=False)
            for k, t in enumerate(sorted(slots)):
                a = int(rng.integers(len(kinds)))
                p, d = kinds[a]
                d = min(d, 8)   # clean steps: at least L + 1 = 4 minutes between any two switchings
                rows.append((m, a, day * 1440 + int(t), d, p * float(rng.uniform(0.95, 1.05))))
    ev = make_events(rows)
    return synthesise(ev, meters, days * 1440), ev


# --------------------------------------------------------------------------- 5.1 edges


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.integers(5, 390), st.floats(MIN_STEP, 5.0)), min_size=1, max_size=8),
       st.floats(0.0, 2.0))
def test_known_steps_detected_exactly(steps: list[tuple[int, float]], base: float) -> None:
    """Steps of known size at known times (at least 4 minutes apart) are found at that time, with that size."""
    times = sorted({t * 4 for t, _ in steps})
    sizes = [s * (1 if k % 2 == 0 else -1) for k, (_, s) in enumerate(steps[:len(times)])]
    x = np.zeros(1600)
    level = base + 6.0
    x[:] = level
    for t, s in zip(times, sizes):
        x[t:] += s
    e = detect_edges(x)
    assert e.index.tolist() == times
    assert np.allclose(e.delta_kw, sizes[:len(times)], atol=1e-9)
    assert e.sign.tolist() == [1 if s > 0 else -1 for s in sizes]
    assert (e.length == 1).all()


@settings(max_examples=30, deadline=None)
@given(st.lists(st.tuples(st.integers(1, 399), st.floats(-MIN_STEP + 1e-3, MIN_STEP - 1e-3)), max_size=10),
       st.floats(0, 3))
def test_subthreshold_steps_not_detected(steps: list[tuple[int, float]], base: float) -> None:
    x = np.full(1600, base + 0.2)
    for t, s in dict(steps).items():
        x[4 * t:4 * t + 2] += s      # isolated blips below min_step
    assert len(detect_edges(x)) == 0


def test_flat_trace_has_no_events() -> None:
    assert len(detect_edges(np.full(1440, 1.7))) == 0
    assert len(detect_edges(np.zeros(1))) == 0


def test_step_split_across_two_samples_is_one_edge() -> None:
    x = np.full(100, 0.1)
    x[50] = 1.1          # half a minute of a 2 kW appliance
    x[51:] = 2.1
    e = detect_edges(x)
    assert e.index.tolist() == [50] and e.length.tolist() == [2]
    assert e.delta_kw[0] == pytest.approx(2.0)


def test_slow_ramp_fools_fast_detector_not_slow_one() -> None:
    x = np.concatenate((np.full(60, 0.2), np.linspace(0.2, 2.2, 9)[1:], np.full(60, 2.2)))  # 2 kW over 8 min
    assert len(detect_edges(x)) == 0          # each minute moves 0.25 kW but the transition is too long
    slow = detect_edges(x, config=DetectorConfig(window_minutes=10))
    assert len(slow) == 1 and slow.delta_kw[0] == pytest.approx(2.0, rel=0.15)
    # a ramp slower than min_step per window is invisible even to the slow detector
    y = np.concatenate((np.full(60, 0.2), 0.2 + 0.004 * np.arange(1, 501)))
    assert len(detect_edges(y, config=DetectorConfig(window_minutes=10))) == 0


@settings(max_examples=30, deadline=None)
@given(st.lists(st.tuples(st.integers(2, 150), st.floats(MIN_STEP, 5.0)), min_size=1, max_size=8))
def test_slow_detector_keeps_fast_edges_without_duplicates(steps: list[tuple[int, float]]) -> None:
    """Multi-scale: on clean steps the slow detector reports exactly the fast detector's edges."""
    x = np.full(1000, 6.0)
    for k, (t, s) in enumerate(sorted(dict(steps).items())):
        x[6 * t:] += s if k % 2 == 0 else -s
    fast = detect_edges(x)
    slow = detect_edges(x, config=DetectorConfig(window_minutes=10))
    assert slow.index.tolist() == fast.index.tolist()
    assert np.array_equal(slow.delta_kw, fast.delta_kw)
    alone = detect_edges(x, config=DetectorConfig(window_minutes=10, also_fast=False))
    assert len(alone) <= len(fast)


def test_one_sample_spike_is_a_transient_and_median_filter_removes_short_pulses() -> None:
    x = np.full(200, 0.5)
    x[100] = 3.0
    assert len(detect_edges(x)) == 0          # a transition with no net change of steady level
    x[101] = 3.0                              # a 2-minute pulse: an on-edge and an off-edge
    assert detect_edges(x).index.tolist() == [100, 102]
    assert len(detect_edges(x, config=DetectorConfig(median_minutes=5))) == 0


def test_coarser_interval_converts_minutes() -> None:
    x = np.full(96, 0.3)
    x[40:] = 1.3
    e = detect_edges(x, interval_minutes=15)
    assert e.index.tolist() == [40]


# --------------------------------------------------------------------------- 5.2 matching


def test_matching_tolerances_respected() -> None:
    x = np.full(400, 0.1)
    x[100:200] += 2.0       # on at 100, off at 200
    e = detect_edges(x)
    power = np.array([2.0])
    for start, ok in ((98, True), (102, True), (97, False), (103, False)):
        m = match_edges(e, np.array([start]), np.array([100]), power)
        assert bool(m.on_edge[0] >= 0) == ok
    m = match_edges(e, np.array([100]), np.array([100]), power, match=MatchConfig(tolerance_minutes=0))
    assert m.on_edge[0] >= 0 and m.off_edge[0] >= 0
    # size: within 25 % of 2 kW (a 1.6 kW event matches, 1.5 does not)
    assert match_edges(e, np.array([100]), np.array([100]), np.array([1.6])).on_edge[0] >= 0
    assert match_edges(e, np.array([100]), np.array([100]), np.array([1.5])).on_edge[0] < 0
    # below min_step: not eligible, never matched
    m = match_edges(e, np.array([100]), np.array([100]), np.array([0.05]), min_step_kw=0.1)
    assert not m.eligible[0] and m.on_edge[0] < 0


def test_each_edge_matches_at_most_one_event() -> None:
    x = np.full(400, 0.1)
    x[100:] += 1.0
    e = detect_edges(x)
    m = match_edges(e, np.array([100, 101]), np.array([50, 50]), np.array([1.0, 1.0]))
    assert sorted(m.on_edge.tolist()) == [-1, 0]
    assert m.on_edge[0] == 0        # the nearer event in time wins


def test_recall_one_unmasked_zero_flat() -> None:
    load, ev = household(2, 2, seed=3)
    rep = leakage(load, load, ev, 1)
    assert rep.recall == 1.0 and rep.off_recall == 1.0 and rep.precision == 1.0
    assert all(v == 1.0 for v in rep.recall_by_appliance.values())
    assert rep.detectable_events_per_day == pytest.approx(rep.eligible / 4)
    assert rep.chance_recall == 0.0       # starts are 12 minutes apart; moved 45 minutes they meet no edge
    flat = np.full_like(load, load.mean())
    rep = leakage(load, flat, ev, 1)
    assert rep.recall == 0.0 and rep.detected == 0 and rep.edges_per_day == 0.0
    assert rep.recall_load == 1.0
    assert rep.mi_bits == 0.0 and rep.mi_edges_bits == 0.0
    assert rep.class_recall == 0.0


def test_leakage_classifier_on_unmasked_load() -> None:
    load, ev = household(4, 2, seed=5)
    rep = leakage(load, load, ev, 1, appliance_names=("fridge", "tv", "kettle-ish", "kettle", "shower", "oven"))
    assert rep.split == "meters" and rep.train_edges > 0
    assert rep.class_recall is not None and rep.class_recall > 0.9
    assert set(rep.recall_by_appliance) == {"tv", "kettle-ish", "kettle", "shower", "oven"}   # fridge < MIN_STEP
    one = leakage(load[:1], load[:1], make_events([r for r in zip(ev.meter, ev.appliance, ev.start_minute,
                                                                   ev.duration_minutes, ev.power_kw)
                                                    if r[0] == 0]), 1)
    assert one.split == "days" and one.class_recall is not None


def test_leakage_held_trace_hides_most_events() -> None:
    load, ev = household(2, 2, seed=7)
    held = load.reshape(2, -1, 30).mean(axis=2).repeat(30, axis=1)   # 30-minute average held for 30 minutes
    rep = leakage(load, held, ev, 1)
    assert rep.recall < 0.3 and rep.mi_bits < rep.h_load_bits
    assert slow_attacker().detector.window_minutes == 10


def test_leakage_from_data_matches_kw() -> None:
    load, ev = household(1, 2, seed=2)
    data = LoadData(("H000000",), datetime.date(2025, 1, 1), 1, (load / 60).reshape(1, 2, 1440))
    assert np.allclose(kw_from_data(data), load)
    a = leakage_from_data(data, data, ev)
    b = leakage(load, load, ev, 1)
    assert a.recall == b.recall and a.mi_bits == pytest.approx(b.mi_bits)


# --------------------------------------------------------------------------- 5.4 MI


def test_mi_identical_is_entropy() -> None:
    rng = np.random.default_rng(1)
    x = rng.choice([0.1, 0.5, 2.1, 3.0], size=5000, p=[0.4, 0.3, 0.2, 0.1])
    h = entropy(x, miller_madow=False)
    p = np.array([0.4, 0.3, 0.2, 0.1])
    assert h == pytest.approx(float(-(p * np.log2(p)).sum()), abs=0.02)
    assert mutual_information(x, x) == pytest.approx(entropy(x))
    assert mutual_information(x, x, miller_madow=False) == pytest.approx(h)


def test_mi_independent_near_zero_and_flat_zero() -> None:
    rng = np.random.default_rng(2)
    x, y = rng.standard_normal(20000), rng.standard_normal(20000)
    assert 0.0 <= mutual_information(x, y, bin_width=0.2) < 0.03
    assert mutual_information(x, np.full(20000, 1.0)) == 0.0


@pytest.mark.parametrize("rho", [0.5, 0.8, 0.95])
def test_mi_gaussian_pair(rho: float) -> None:
    rng = np.random.default_rng(3)
    x = rng.standard_normal(20000)
    y = rho * x + math.sqrt(1 - rho ** 2) * rng.standard_normal(20000)
    assert mutual_information(x, y, bin_width=0.2) == pytest.approx(-0.5 * math.log2(1 - rho ** 2), abs=0.05)


@settings(max_examples=25, deadline=None)
@given(st.integers(0, 2 ** 32 - 1), st.floats(0.5, 4.0), st.floats(-3.0, 3.0))
def test_mi_invariant_to_scaling_by_bin(seed: int, k: float, shift: float) -> None:
    """MI is a function of the bin codes: scaling y and its bin by k leaves it unchanged; MI is symmetric."""
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 8, 500) * 0.25
    y = (x + rng.integers(0, 3, 500) * 0.25) * 1.0
    a = mutual_information(x, y, bin_width=0.25)
    assert a == pytest.approx(mutual_information(y, x, bin_width=0.25))
    assert 0.0 <= a <= entropy(x, bin_width=0.25) + 1e-9
    assert mutual_information(x + 0.125, y + 0.125, bin_width=0.25) == pytest.approx(a)


# --------------------------------------------------------------------------- refusals


def test_bad_input_refused() -> None:
    x = np.full(100, 0.5)
    ev = make_events([(0, 0, 10, 5, 1.0)])
    with pytest.raises(ParameterError, match="sample 3"):
        bad = x.copy()
        bad[3] = np.nan
        detect_edges(bad)
    with pytest.raises(ParameterError):
        leakage(np.full(100, -0.1), x, ev, 1)
    with pytest.raises(ParameterError, match="differ"):
        leakage(x, x[:99], ev, 1)
    with pytest.raises(ParameterError, match="differ"):
        mutual_information(x, x[:50])
    with pytest.raises(ParameterError):
        MatchConfig(tolerance_minutes=-1)
    with pytest.raises(ParameterError):
        MatchConfig(relative_tolerance=-0.1)
    with pytest.raises(ParameterError):
        DetectorConfig(min_step_kw=0.0)
    with pytest.raises(ParameterError):
        DetectorConfig(steady_tolerance_kw=0.2, min_step_kw=0.1)
    with pytest.raises(ParameterError):
        DetectorConfig(median_minutes=4)
    with pytest.raises(ParameterError):
        LeakageConfig(split="random")
    with pytest.raises(ParameterError):
        mutual_information(x, x, bin_width=0.0)
    with pytest.raises(ParameterError):
        mutual_information(x, x, bin_width=1e-300)
    with pytest.raises(ParameterError, match="sample 1"):
        mutual_information(x, np.array([0.0, np.inf] + [0.0] * 98))
    with pytest.raises(ParameterError, match="interval"):
        detect_edges(x, interval_minutes=7)
    with pytest.raises(ParameterError, match="samples"):
        detect_edges(np.zeros(MAX_SAMPLES + 1, dtype=np.float32))
    with pytest.raises(ParameterError, match="row 0: start_minute"):
        leakage(x, x, make_events([(0, 0, 100, 5, 1.0)]), 1)
    with pytest.raises(ParameterError, match="meter"):
        leakage(x, x, make_events([(1, 0, 10, 5, 1.0)]), 1)
    with pytest.raises(ParameterError, match="power_kw"):
        leakage(x, x, make_events([(0, 0, 10, 5, float("nan"))]), 1)
    with pytest.raises(ParameterError, match="length"):
        leakage(x, x, Ev(ev.meter, ev.appliance, ev.start_minute, ev.duration_minutes, np.zeros(2, np.float32)), 1)
    with pytest.raises(ParameterError):
        leakage(x, x, object(), 1)  # type: ignore[arg-type]


# --------------------------------------------------------------------------- more properties


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 300), st.sampled_from([-2.0, -1.0, -0.5, 0.5, 1.0, 2.0])),
                max_size=40), st.integers(1, 120))
def test_duration_feature_is_first_later_matching_off_edge(edges: list[tuple[int, float]], max_pair: int) -> None:
    """The vectorised pairing of section 5.3 equals the plain definition, edge by edge."""
    from protocols.analytics.nilm import Edges, _durations
    edges = sorted(dict(edges).items())
    idx = np.array([t for t, _ in edges], dtype=np.int64)
    d = np.array([s for _, s in edges])
    e = Edges(idx, d, np.sign(d).astype(np.int8), np.ones_like(idx))
    match = MatchConfig()
    got = _durations(e, 1, match, max_pair)
    want = []
    for i in np.flatnonzero(d > 0):
        later = [j for j in range(len(d)) if d[j] < 0 and idx[i] < idx[j] <= idx[i] + max_pair
                 and abs(-d[j] - d[i]) <= max(0.25 * d[i], 0.05) + 1e-9]
        want.append(float(idx[later[0]] - idx[i]) if later else float(max_pair))
    assert got.tolist() == want


@settings(max_examples=20, deadline=None)
@given(st.integers(0, 2 ** 32 - 1), st.integers(0, 500))
def test_matching_invariant_under_time_shift(seed: int, shift: int) -> None:
    """Delaying the trace and every event by the same minutes changes no count."""
    load, ev = household(1, 1, seed=seed % 1000)
    rng = np.random.default_rng(seed)
    metered = load + rng.integers(0, 3, load.shape) * 0.3 * (rng.random(load.shape) < 0.01)
    a = leakage(load, metered, ev, 1)
    pad = np.full((1, shift), 0.08)
    moved = Ev(ev.meter, ev.appliance, ev.start_minute + shift, ev.duration_minutes, ev.power_kw)
    b = leakage(np.hstack((pad, load)), np.hstack((pad, metered)), moved, 1)
    assert (a.detected, a.eligible) == (b.detected, b.eligible)
    assert a.off_recall == b.off_recall


def test_spurious_steps_lower_precision_not_recall() -> None:
    load, ev = household(1, 2, seed=11)
    metered = load.copy()
    for t in range(3, 2880, 97):              # extra 0.3 kW blocks of 2 minutes between events
        metered[0, t:t + 2] += 0.3
    clean = leakage(load, load, ev, 1)
    noisy = leakage(load, metered, ev, 1)
    assert clean.precision == 1.0 and noisy.precision < 0.9
    assert noisy.edges_per_day > clean.edges_per_day
    assert noisy.recall >= 0.8


def test_leakage_at_fifteen_minutes() -> None:
    load, ev = household(1, 2, seed=13)
    kw15 = load.reshape(1, -1, 15).mean(axis=2)
    rep = leakage(kw15, kw15, ev, 15)
    assert rep.eligible == clean_eligible(ev) and 0.0 <= rep.recall <= 1.0
    assert rep.meter_days == 2.0


def clean_eligible(ev: Ev) -> int:
    return int((ev.power_kw >= MIN_STEP).sum())


def test_random_steps_recall_is_chance() -> None:
    """A trace of random steps, independent of the events, is matched about as often as moved events."""
    load, ev = household(1, 8, seed=17)
    rng = np.random.default_rng(5)
    change = rng.random((load.shape[1],)) < 0.25  # a new random level at a quarter of the minutes
    random_steps = (rng.integers(0, 20, int(change.sum()) + 1) * 0.5)[np.cumsum(change)][None, :]
    rep = leakage(load, random_steps, ev, 1)
    assert rep.edges_per_day > 200 and rep.precision < 0.1
    assert rep.chance_recall > 0 and abs(rep.recall - rep.chance_recall) < 0.1


def test_leakage_without_events_uses_load_edges() -> None:
    """events=None: the load's own edges are the truth; the unmasked load then finds all of them."""
    load, ev = household(2, 2, seed=19)
    rep = leakage(load, load, None, 1)
    assert rep.eligible == rep.events > 0 and rep.recall == 1.0 and rep.precision == 1.0
    assert set(rep.recall_by_appliance) == {"load-edge"}
    flat = leakage(load, np.full_like(load, 1.0), None, 1)
    assert flat.recall == 0.0 and flat.mi_bits == 0.0
    # with clean steps the load's edges are exactly the true on-switchings
    assert rep.events == leakage(load, load, ev, 1).detected


def test_no_events_gives_nan_recall_not_an_error() -> None:
    load, _ = household(1, 1, seed=23)
    rep = leakage(load, load, make_events([]), 1)
    assert rep.events == 0 and math.isnan(rep.recall) and rep.recall_by_appliance == {}
    assert rep.class_recall is None and rep.mi_bits == pytest.approx(rep.h_load_bits)
