"""The battery model of specs/battery.md section 2: limits, losses, the energy identity."""

from __future__ import annotations

import math
from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from protocols.analytics.battery import BatteryConfig, BatteryState, step
from protocols.errors import ParameterError

INTERVALS = (1, 5, 10, 15, 30, 60)


@st.composite
def configs(draw: st.DrawFn, lossless: bool = False) -> BatteryConfig:
    lo = draw(st.floats(0, 0.4))
    hi = draw(st.floats(lo + 0.05, 1.0))
    eff = st.just(1.0) if lossless else st.floats(0.5, 1.0)
    return BatteryConfig(
        capacity_kwh=draw(st.floats(0.05, 50)),
        max_charge_kw=draw(st.floats(0.05, 20)),
        max_discharge_kw=draw(st.floats(0.05, 20)),
        charge_efficiency=draw(eff),
        discharge_efficiency=draw(eff),
        soc_min=lo, soc_max=hi,
        initial_soc=draw(st.floats(lo, hi)),
        self_discharge_per_hour=0.0 if lossless else draw(st.sampled_from([0.0, 0.001, 0.05])),
    )


requests = st.lists(st.floats(-40, 40), min_size=1, max_size=40)


@settings(max_examples=300, deadline=None)
@given(configs(), requests, st.sampled_from(INTERVALS))
def test_every_step_conserves_energy_and_respects_limits(cfg: BatteryConfig, reqs: list[float],
                                                         minutes: int) -> None:
    state = cfg.initial_state()
    dt = minutes / 60
    for r in reqs:
        new, res = step(cfg, state, r, minutes)
        # spec 2.1: soc_end - soc_start = -battery - loss, exactly up to rounding of the SoC update
        err = (Fraction(new.soc_kwh) - Fraction(state.soc_kwh)) + Fraction(res.battery_kwh) + Fraction(res.loss_kwh)
        assert abs(err) <= Fraction(2) ** -50 * max(1, cfg.capacity_kwh)
        assert res.loss_kwh >= 0
        assert -cfg.max_charge_kw * dt <= res.battery_kwh <= cfg.max_discharge_kw * dt
        # the battery never does more than asked, nor the other way
        assert 0 <= res.battery_kwh <= max(r * dt, 0) or max(r * dt, -cfg.max_charge_kw * dt) <= res.battery_kwh <= 0
        assert new.soc_kwh <= cfg.soc_max_kwh
        assert new.soc_kwh >= 0
        if cfg.self_discharge_per_hour == 0:
            assert new.soc_kwh >= cfg.soc_min_kwh
        state = new


@settings(max_examples=80, deadline=None)
@given(configs(lossless=True), requests, st.sampled_from(INTERVALS))
def test_efficiency_one_loses_nothing(cfg: BatteryConfig, reqs: list[float], minutes: int) -> None:
    state = cfg.initial_state()
    for r in reqs:
        state, res = step(cfg, state, r, minutes)
        assert res.loss_kwh == 0.0


@settings(max_examples=80, deadline=None)
@given(configs(), st.floats(-40, 40), st.sampled_from(INTERVALS))
def test_losses_follow_the_efficiencies(cfg: BatteryConfig, r: float, minutes: int) -> None:
    cfg = BatteryConfig(cfg.capacity_kwh, cfg.max_charge_kw, cfg.max_discharge_kw, cfg.charge_efficiency,
                        cfg.discharge_efficiency, cfg.soc_min, cfg.soc_max, cfg.initial_soc)
    state = cfg.initial_state()
    new, res = step(cfg, state, r, minutes)
    b = res.battery_kwh
    if b > 0:  # discharge: the store gives delivered / eta_d
        assert math.isclose(res.loss_kwh, b / cfg.discharge_efficiency - b, rel_tol=1e-9, abs_tol=1e-15)
    elif b < 0:  # charge: the bus gives stored / eta_c, the store keeps eta_c of it
        assert math.isclose(res.loss_kwh, -b * (1 - cfg.charge_efficiency), rel_tol=1e-9, abs_tol=1e-15)
    else:  # nothing moved, or a crumb of the store too small to deliver anything went to heat
        assert res.loss_kwh == state.soc_kwh - new.soc_kwh


def test_clamps_and_flags() -> None:
    cfg = BatteryConfig(1.0, 2.0, 3.0, 0.9, 0.8, soc_min=0.1, soc_max=0.9, initial_soc=0.5)
    # 6 kW asked for one minute: the 3 kW limit binds
    s, r = step(cfg, cfg.initial_state(), 6.0, 1)
    assert r.power_limited and not r.soc_limited and r.battery_kwh == 3.0 / 60
    # a full hour at 3 kW: the store can give only (0.5 - 0.1) * 0.8 kWh
    s, r = step(cfg, cfg.initial_state(), 3.0, 60)
    assert r.soc_limited and s.soc_kwh == pytest.approx(0.1) and r.battery_kwh == pytest.approx(0.32)
    # charging for an hour: the store takes 0.4 kWh, the bus gives 0.4 / 0.9
    s, r = step(cfg, cfg.initial_state(), -2.0, 60)
    assert r.soc_limited and s.soc_kwh == pytest.approx(0.9) and r.battery_kwh == pytest.approx(-0.4 / 0.9)
    assert r.loss_kwh == pytest.approx(0.4 / 0.9 - 0.4)
    # empty: nothing to give; full: nothing to take
    assert step(cfg, BatteryState(0.1), 1.0, 1)[1].battery_kwh == 0
    assert step(cfg, BatteryState(0.9), -1.0, 1)[1].battery_kwh == 0


def test_self_discharge_is_a_loss() -> None:
    cfg = BatteryConfig(10.0, 1.0, 1.0, 1.0, 1.0, initial_soc=0.5, self_discharge_per_hour=0.01)
    s, r = step(cfg, cfg.initial_state(), 0.0, 60)
    assert r.loss_kwh == pytest.approx(0.05) and s.soc_kwh == pytest.approx(4.95) and r.battery_kwh == 0


@pytest.mark.parametrize("field, value", [
    ("capacity_kwh", -1.0), ("capacity_kwh", 0.0), ("capacity_kwh", float("nan")), ("capacity_kwh", 1e9),
    ("max_charge_kw", 0.0), ("max_charge_kw", 101.0), ("max_discharge_kw", -2.0),
    ("max_discharge_kw", float("inf")), ("charge_efficiency", 0.0), ("charge_efficiency", 1.01),
    ("discharge_efficiency", -0.5), ("discharge_efficiency", float("nan")), ("soc_min", -0.1),
    ("soc_max", 1.5), ("initial_soc", 0.95), ("self_discharge_per_hour", -0.01), ("capacity_kwh", True),
    ("max_charge_kw", "3"),
])
def test_bad_parameters_are_refused_by_name(field: str, value: object) -> None:
    kwargs: dict[str, object] = dict(capacity_kwh=5.0, max_charge_kw=3.0, max_discharge_kw=3.0, soc_max=0.9)
    kwargs[field] = value
    with pytest.raises(ParameterError, match=field):
        BatteryConfig(**kwargs)  # type: ignore[arg-type]


def test_inverted_soc_window_refused() -> None:
    with pytest.raises(ParameterError, match="soc_min"):
        BatteryConfig(5.0, 3.0, 3.0, soc_min=0.8, soc_max=0.2)


def test_bad_step_inputs_refused() -> None:
    cfg = BatteryConfig.simple(5.0, 3.0, 0.9)
    with pytest.raises(ParameterError, match="interval_minutes"):
        step(cfg, cfg.initial_state(), 1.0, 7)
    with pytest.raises(ParameterError, match="requested_kw"):
        step(cfg, cfg.initial_state(), float("nan"), 1)
    with pytest.raises(ParameterError, match="requested_kw"):
        step(cfg, cfg.initial_state(), 1e6, 1)
    with pytest.raises(ParameterError, match="soc_kwh"):
        step(cfg, BatteryState(6.0), 1.0, 1)
