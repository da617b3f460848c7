"""``usapp bench dp`` (bench/dp.py; specs/dp.md 6.3-6.4): the JSON rows of the noise table and
the plot of error against N for every level and mechanism.  No timing is asserted."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from protocols.privacy.dp import Mechanism, PrivacyLevel
from protocols.system import benchmark

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def dp_bench():
    """bench/dp.py of this checkout (an installed usapp_bench may point at another one)."""
    spec = importlib.util.spec_from_file_location("dp_bench_under_test", REPO / "bench" / "dp.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _config(tmp_path: Path) -> benchmark.BenchConfig:
    return benchmark.BenchConfig(repeats=1, quick=True, progress=lambda _: None, results_dir=tmp_path)


def test_noise_rows_carry_the_issue_fields_and_intervals(dp_bench, tmp_path, monkeypatch):
    monkeypatch.setattr(dp_bench, "SIZES", (10, 2000))
    monkeypatch.setattr(dp_bench, "LEVELS", (PrivacyLevel.MEDIUM,))
    rows = dp_bench._noise_rows(_config(tmp_path))
    assert [(r["mechanism"], r["n"]) for r in rows] == [("skellam", 10), ("skellam", 2000),
                                                        ("scrcs11", 10), ("scrcs11", 2000)]
    for row in rows:
        assert row["level"] == "medium" and row["gamma"] == "1/2" and row["trials"] == 200
        assert row["ci95_low"] < row["sd_ratio_to_central"] < row["ci95_high"]
        assert row["ci95"] == [row["ci95_low"], row["ci95_high"]]
        assert ("shares" in row) == (row["n"] <= 100)    # --quick: shares drawn up to N = 100
    skellam = [r for r in rows if r["mechanism"] == "skellam"]
    assert all(r["closed_form"] == pytest.approx(2 ** 0.5) for r in skellam)
    assert all(1.15 < r["sd_ratio_to_central"] < 1.7 for r in skellam)
    assert 1.15 < skellam[0]["shares"]["sd_ratio_to_central"] < 1.7
    assert [r for r in rows if r["mechanism"] == "scrcs11"][1]["sd_ratio_to_central"] > 3.5


def test_plot_draws_error_against_n_for_every_level_and_mechanism(dp_bench, tmp_path, monkeypatch):
    pytest.importorskip("matplotlib")
    drawn: dict[str, list[str]] = {}
    real_save = dp_bench.save_plot

    def capture(config, pyplot, figure, filename):
        left, right = figure.axes[:2]
        drawn["left"] = [line.get_label() for line in left.get_lines()]
        drawn["right"] = [c.get_label() for c in right.containers]
        drawn["xscale"] = [left.get_xscale()]
        drawn["markers"] = [str(len(c.get_offsets())) for c in left.collections]
        return real_save(config, pyplot, figure, filename)

    monkeypatch.setattr(dp_bench, "save_plot", capture)
    rows = [{"mechanism": m.value, "level": level.value, "n": n, "sd_ratio_to_central": 1.4,
             "ci95": [1.3, 1.5]} for m in Mechanism for level in dp_bench.LEVELS for n in (10, 1000)]
    error = [{"level": level.value, "n": n, "simulated_relative_error": 1 / n}
             for level in dp_bench.LEVELS for n in dp_bench.ERROR_SIZES]
    files = dp_bench.plot(_config(tmp_path), rows, error)
    path = Path(files["plot"])
    assert path.parent == tmp_path and path.name == "dp.png"
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    pairs = {f"{m.value} {level.value}" for m in Mechanism for level in dp_bench.LEVELS}
    assert {label.split(" (")[0] for label in drawn["left"]} == pairs and len(drawn["left"]) == 6
    assert set(drawn["right"]) == pairs and drawn["xscale"] == ["log"]
    assert drawn["markers"] == [str(len(dp_bench.ERROR_SIZES))] * len(dp_bench.LEVELS)   # simulated Skellam points
