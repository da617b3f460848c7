"""``usapp analytics hide``, ``leakage``, ``hiding-study`` and ``generate --events`` end to end
(specs/battery.md section 6), through ``main()``."""

from __future__ import annotations

import csv

import numpy as np
import pytest

from protocols.analytics import dataset
from protocols.system.cli import main

POLICIES = ("best-effort", "nill", "stepping", "lookahead")
CAPACITY, POWER, EFFICIENCY, SOC_START = 5.0, 3.0, 0.9, 0.4


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    status = main(["analytics", *argv])
    out, err = capsys.readouterr()
    return status, out, err


@pytest.fixture(scope="module")
def work(tmp_path_factory: pytest.TempPathFactory):
    """Two 1-minute households over one day, their events, and each policy's METERED.csv."""
    d = tmp_path_factory.mktemp("battery")
    assert main(["analytics", "generate", "--households", "2", "--days", "1", "--interval", "1min", "--seed", "3",
                 "--out", str(d / "in.csv"), "--events", str(d / "events.csv")]) == 0
    for policy in POLICIES:
        assert main(["analytics", "hide", str(d / "in.csv"), "--policy", policy, "--capacity-kwh", str(CAPACITY),
                     "--power-kw", str(POWER), "--efficiency", str(EFFICIENCY), "--soc-start", str(SOC_START),
                     "--out", str(d / f"{policy}.csv")]) == 0
    return d


def test_generate_events_leaves_the_readings_unchanged(work, tmp_path) -> None:
    assert main(["analytics", "generate", "--households", "2", "--days", "1", "--interval", "1min", "--seed", "3",
                 "--out", str(tmp_path / "plain.csv")]) == 0
    assert (tmp_path / "plain.csv").read_bytes() == (work / "in.csv").read_bytes()
    with open(work / "events.csv", newline="") as handle:
        rows = list(csv.reader(handle))
    assert rows[0] == ["meter", "start", "duration_minutes", "appliance", "power_kw"]
    assert {r[0] for r in rows[1:]} == {"H000000", "H000001"} and "kettle" in {r[3] for r in rows[1:]}


@pytest.mark.parametrize("policy", POLICIES)
def test_metered_rows_obey_the_battery_model(work, policy: str) -> None:
    with open(work / f"{policy}.csv", newline="") as handle:
        rows = list(csv.reader(handle))
    assert rows[0] == ["meter", "timestamp", "kwh_load", "kwh_grid", "kwh_battery", "kwh_loss", "soc_kwh"]
    data = dataset.read_long_csv(work / "in.csv")
    assert len(rows) - 1 == 2 * 1440
    assert [r[1] for r in rows[1:3]] == ["2025-01-01T00:00", "2025-01-01T00:01"]
    dt = 1 / 60
    for m, meter in enumerate(data.meters):
        mine = [r for r in rows[1:] if r[0] == meter]
        v = np.array([[float(x) for x in r[2:]] for r in mine])
        load, grid, bat, loss, soc = v.T
        assert np.array_equal(load, data.kwh[m].reshape(-1))            # the input, at full precision
        prev = np.concatenate(([CAPACITY * SOC_START], soc[:-1]))
        assert np.allclose(grid, load - bat, rtol=0, atol=1e-12)        # spec 2.1: the meter
        assert np.allclose(prev - soc, bat + loss, rtol=0, atol=1e-12)  # spec 2.1: the store
        assert (soc >= 0).all() and (soc <= CAPACITY).all() and (loss >= 0).all()
        assert (np.abs(bat) <= POWER * dt + 1e-12).all() and (grid >= -1e-12).all()   # no export
        assert abs(grid.sum() - (load.sum() + loss.sum() + soc[-1] - CAPACITY * SOC_START)) <= 1e-6
        charge, discharge = bat < 0, bat > 0   # losses as the efficiency says (no self-discharge here)
        assert np.allclose(loss[charge], -bat[charge] * (1 - EFFICIENCY), rtol=1e-9, atol=1e-15)
        assert np.allclose(loss[discharge], bat[discharge] * (1 / EFFICIENCY - 1), rtol=1e-9, atol=1e-15)


def test_leakage_with_events_and_plots(capsys, work, tmp_path) -> None:
    status, out, err = _run(capsys, "leakage", str(work / "in.csv"), str(work / "nill.csv"),
                            "--events", str(work / "events.csv"), "--plots", str(tmp_path / "p"))
    assert status == 0, err
    assert out.startswith("# events: true events from ")
    lines = {line.split("  ")[0]: line.split() for line in out.splitlines()}
    assert "recall (metered trace)" in lines and "MI load;metered (bits)" in lines
    assert "chance recall (events moved 45 min)" in lines and "detectable events per day" in lines
    assert "kettle" in lines  # a per-appliance row
    recall_load = float(lines["recall on the load (ceiling)"][-2])
    assert float(lines["recall (metered trace)"][-2]) < recall_load
    assert (tmp_path / "p" / "hiding_day.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "hiding_day.png" in err


def test_leakage_without_events_says_so(capsys, work) -> None:
    status, out, err = _run(capsys, "leakage", str(work / "in.csv"), str(work / "best-effort.csv"))
    assert status == 0, err
    assert "no --events: the load's own on-edges stand in" in out and "load-edge" in out
    ceiling = next(x for x in out.splitlines() if x.startswith("recall on the load")).split()
    assert ceiling[-2:] == ["1.000", "1.000"]  # by construction in this mode


def test_the_unmasked_load_leaks_everything_it_can(capsys, work, tmp_path) -> None:
    """A METERED.csv whose grid is the load itself (an idle battery) gives recall = recall on the load."""
    with open(work / "nill.csv", newline="") as handle:
        rows = list(csv.reader(handle))
    soc = "2.5"
    idle = [rows[0]] + [[r[0], r[1], r[2], r[2], "0.0", "0.0", soc] for r in rows[1:]]
    with open(tmp_path / "idle.csv", "w", newline="") as handle:
        csv.writer(handle).writerows(idle)
    status, out, err = _run(capsys, "leakage", str(work / "in.csv"), str(tmp_path / "idle.csv"),
                            "--events", str(work / "events.csv"))
    assert status == 0, err
    line = next(x for x in out.splitlines() if x.startswith("recall (metered trace)")).split()
    ceiling = next(x for x in out.splitlines() if x.startswith("recall on the load")).split()
    assert line[-2:] == ceiling[-2:] and float(line[-2]) > 0.5


def test_hiding_study_table_and_plot(capsys, tmp_path) -> None:
    status, out, err = _run(capsys, "hiding-study", "--households", "2", "--days", "1", "--capacities", "1,10",
                            "--policies", "best-effort,stepping", "--plots", str(tmp_path))
    assert status == 0, err
    table = [line.split() for line in out.splitlines() if line and not line.startswith(("#", "-"))]
    assert table[0][:4] == ["policy", "kWh", "kW", "recall"]
    assert [row[:2] for row in table[1:6]] == [["none", "0"], ["best-effort", "1"], ["best-effort", "10"],
                                               ["stepping", "1"], ["stepping", "10"]]
    assert (tmp_path / "hiding_study.png").read_bytes()[:4] == b"\x89PNG"


# --------------------------------------------------------------------------
# Refusals: one line, exit 2, naming the parameter


@pytest.mark.parametrize("options, message", [
    (["--capacity-kwh", "-1"], "--capacity-kwh: capacity_kwh must be in (0, 10000]"),
    (["--capacity-kwh", "0"], "--capacity-kwh: capacity_kwh"),
    (["--capacity-kwh", "nan"], "--capacity-kwh: capacity_kwh must be finite"),
    (["--efficiency", "0"], "--efficiency: charge_efficiency must be in (0, 1]"),
    (["--efficiency", "1.01"], "--efficiency: charge_efficiency must be in (0, 1]"),
    (["--power-kw", "150"], "--power-kw: max_charge_kw must be in (0, 100] kW"),
    (["--power-kw", "-3"], "--power-kw: max_charge_kw"),
    (["--soc-start", "1.5"], "--soc-start: initial_soc must be in [soc_min, soc_max]"),
    (["--policy", "greedy"], "argument --policy: invalid choice: 'greedy'"),
    (["--policy", "stepping", "--power-kw", "0.3"], "--power-kw: 0.3 kW is below the stepping policy's 0.5 kW step"),
    (["--capacity-kwh", "lots"], "argument --capacity-kwh: invalid float value: 'lots'"),
])
def test_hide_refuses_bad_parameters(capsys, work, tmp_path, options: list[str], message: str) -> None:
    base = {"--policy": "nill", "--capacity-kwh": "5", "--power-kw": "3"}
    for key, value in zip(options[::2], options[1::2]):
        base[key] = value
    argv = ["hide", str(work / "in.csv"), *[x for kv in base.items() for x in kv], "--out", str(tmp_path / "o.csv")]
    status, out, err = _run(capsys, *argv)
    assert status == 2 and out == ""
    assert err.count("\n") == 1 and err.startswith("usapp: error: ") and message in err, err
    assert not (tmp_path / "o.csv").exists()


def _rewrite(src, dst, edit) -> None:
    lines = src.read_text().splitlines()
    edit(lines)
    dst.write_text("\n".join(lines) + "\n")


def test_leakage_refuses_a_bad_metered_file(capsys, work, tmp_path) -> None:
    bad = tmp_path / "bad.csv"

    def header(lines: list[str]) -> None:
        lines[0] = "meter,timestamp,kwh,kwh_grid,kwh_battery,kwh_loss,soc_kwh"

    _rewrite(work / "nill.csv", bad, header)
    status, _, err = _run(capsys, "leakage", str(work / "in.csv"), str(bad))
    assert status == 2 and "bad.csv: line 1: the header must be meter,timestamp,kwh_load," in err

    def load(lines: list[str]) -> None:  # row 101 no longer IN.csv's reading; the identities still hold
        c = lines[100].split(",")
        c[2], c[3] = repr(float(c[2]) + 0.5), repr(float(c[3]) + 0.5)
        lines[100] = ",".join(c)

    _rewrite(work / "nill.csv", bad, load)
    status, _, err = _run(capsys, "leakage", str(work / "in.csv"), str(bad))
    assert status == 2 and "METERED.csv line 101 (meter 'H000000'): kwh_load" in err and "differs from IN.csv" in err

    def drop_meter(lines: list[str]) -> None:
        del lines[1441:]

    _rewrite(work / "nill.csv", bad, drop_meter)
    status, _, err = _run(capsys, "leakage", str(work / "in.csv"), str(bad))
    assert status == 2 and "the same meters" in err

    status, _, err = _run(capsys, "leakage", str(work / "in.csv"), str(work / "nill.csv"), "--events",
                          str(tmp_path / "missing.csv"))
    assert status == 2 and "missing.csv: No such file or directory" in err


def test_study_refusals(capsys) -> None:
    for argv, message in ((["--capacities", "1,x"], "--capacities: '1,x' is not"),
                          (["--capacities", "1,-2"], "--capacities: capacity_kwh must be in (0"),
                          (["--policies", "nill,greedy"], "--policies: policies must be among"),
                          (["--households", "200", "--days", "10"], "at most 1000")):
        status, _, err = _run(capsys, "hiding-study", *argv)
        assert status == 2 and err.startswith("usapp: error: ") and message in err, err
