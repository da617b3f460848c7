"""Battery hiding together with theft detection and aggregation (specs/battery.md section 8)."""

from __future__ import annotations

import numpy as np
import pytest

from protocols.analytics import attacks, detect, evaluate, hiding_together as ht, loadgen
from protocols.analytics.data import ATTACKS, LABEL_NAMES
from protocols.errors import ParameterError

SMALL = ht.TogetherConfig(households=8, days=3, seed=5, policies=("none", "best-effort", "nill"))


@pytest.fixture(scope="module")
def rows(paillier_key) -> list[ht.TogetherRow]:
    return ht.run(SMALL, key=paillier_key, detectors=("rpca",))


def test_table_structure(rows: list[ht.TogetherRow]) -> None:
    assert [r.policy for r in rows] == list(SMALL.policies)
    for r in rows:
        assert set(r.auc) == {"rpca"} and 0 <= r.auc["rpca"] <= 1
        assert set(r.auc_by_attack["rpca"]) <= {LABEL_NAMES[k] for k in ATTACKS}
        assert 0 <= r.recall <= 1 and r.mi_bits >= 0 and r.loss_pct >= 0
        assert len(r.aggregation.metered_sums) == 24 and len(r.aggregation.load_sums) == 24
    text = ht.format_table(SMALL, rows)
    header = text.splitlines()[2].split()
    assert header[:4] == ["policy", "loss", "%", "recall"] and "exact" in header
    assert len([line for line in text.splitlines() if line.startswith(("none ", "best-effort ", "nill "))]) == 6


def test_none_is_the_load_and_detection_on_the_load(rows: list[ht.TogetherRow]) -> None:
    load = loadgen.generate(SMALL.households, SMALL.days, interval_minutes=1, seed=SMALL.seed)
    metered = ht.hide_households(load, "none", SMALL.battery())
    assert np.array_equal(metered.grid, load.kwh) and metered.loss_kwh == 0
    # detection computed here directly on the load's 30-minute readings, attacks injected the same way
    readings = loadgen.generate(SMALL.households, SMALL.days, interval_minutes=30, seed=SMALL.seed)
    assert np.allclose(ht.to_readings(load, load.kwh).kwh, readings.kwh, atol=1e-12)
    attacked, labels = attacks.inject(ht.to_readings(load, load.kwh), fraction=SMALL.attack_fraction,
                                      kinds=ATTACKS, seed=SMALL.seed)
    scores = detect.detect(attacked, "rpca", seed=SMALL.seed)
    assert rows[0].auc["rpca"] == evaluate.roc_auc(scores.ravel(), labels.anomalous.ravel())
    a = rows[0].aggregation
    assert a.metered_sums == a.load_sums and a.max_change_wh == 0 and a.exact


def test_battery_changes_the_metered_trace(rows: list[ht.TogetherRow]) -> None:
    be = rows[1]
    assert be.loss_kwh > 0 and be.recall < rows[0].recall and be.mi_bits < rows[0].mi_bits
    assert be.aggregation.max_change_wh > 0


def test_aggregation_releases_the_true_sums_of_the_metered_readings(paillier_key) -> None:
    load = loadgen.generate(8, 1, interval_minutes=1, seed=7)
    metered = ht.hide_households(load, "best-effort", ht.TogetherConfig(households=8, days=1).battery())
    ids = load.meters
    hood = ht.Neighbourhood(ids, 7, paillier_key)
    result = ht.aggregate(hood, ids, load.kwh[:, 0], metered.grid[:, 0])
    wh = [ht.hourly_wh(metered.grid[i, 0]) for i in range(8)]
    assert result.metered_sums == tuple(int(v) for v in np.sum(wh, axis=0))  # through run_round, not summed here
    assert result.exact and hood.round == 2
    # another round over the same readings releases the same sums (fresh masks, same totals)
    assert hood.released({m: w for m, w in zip(ids, wh)}) == result.metered_sums
    moved = np.array(result.metered_sums) - np.array(result.load_sums)
    assert result.max_change_wh == int(np.abs(moved).max())
    assert result.peak_change_wh == int(moved[result.peak_hour])


def test_hourly_readings_are_rounded_whole_wh_and_bounded() -> None:
    day = np.full(1440, 0.0005)  # 0.5 Wh per minute: 30 Wh per hour
    day[:60] = 0.0104 / 60  # 10.4 Wh in the first hour
    assert ht.hourly_wh(day) == [10] + [30] * 23
    with pytest.raises(ParameterError, match="hourly reading"):
        ht.hourly_wh(np.full(1440, 5.0))  # 300 kWh in an hour: above 2^18 Wh


@pytest.mark.parametrize("options, field", [
    ({"households": 0}, "households"), ({"days": 0}, "days"), ({"households": 100, "days": 100}, "households x days"),
    ({"capacity_kwh": -1.0}, "capacity_kwh"), ({"power_kw": 0.0}, "max_charge_kw"),
    ({"efficiency": 1.5}, "efficiency"), ({"policies": ("teleport",)}, "policies"), ({"policies": ()}, "policies"),
    ({"attack_fraction": 1.0}, "attack_fraction"),
    ({"households": 5}, "hood_meters"), ({"hood_meters": 2}, "hood_meters"), ({"hood_day": 28}, "hood_day"),
    ({"seed": -1}, "seed"), ({"households": True}, "households"),
])
def test_bad_parameters_refused(options: dict[str, object], field: str) -> None:
    with pytest.raises(ParameterError, match=field):
        ht.TogetherConfig(**options)  # type: ignore[arg-type]


def test_bad_detectors_refused() -> None:
    with pytest.raises(ParameterError, match="detectors"):
        ht.run(SMALL, detectors=("svm",))


def test_cli_refuses_bad_options(capsys: pytest.CaptureFixture[str]) -> None:
    from protocols.system import cli

    assert cli.main(["analytics", "hiding-together", "--capacity-kwh", "-1"]) == 2
    assert "--capacity-kwh" in capsys.readouterr().err
    assert cli.main(["analytics", "hiding-together", "--households", "3"]) == 2
    assert "--households" in capsys.readouterr().err
