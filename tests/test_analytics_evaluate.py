"""Evaluation metrics, the ensemble rule and the scores file (specs/analytics.md sections 7 and 9)."""

from __future__ import annotations

import datetime

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.metrics import average_precision_score, roc_auc_score

from protocols.analytics import detect, evaluate
from protocols.analytics.data import Labels
from protocols.errors import DecodeError, ParameterError

START = datetime.date(2025, 1, 1)


@st.composite
def scored(draw: st.DrawFn) -> tuple[np.ndarray, np.ndarray]:
    """Scores from a small set of values (many ties) and labels with both classes."""
    n = draw(st.integers(2, 60))
    values = draw(st.lists(st.integers(-5, 5), min_size=n, max_size=n))
    truth = draw(st.lists(st.booleans(), min_size=n, max_size=n))
    truth[0], truth[1] = True, False
    return np.array(values, dtype=float) / 2, np.array(truth)


@settings(max_examples=200, deadline=None)
@given(scored())
def test_roc_auc_matches_sklearn(case: tuple[np.ndarray, np.ndarray]) -> None:
    scores, truth = case
    assert evaluate.roc_auc(scores, truth) == pytest.approx(roc_auc_score(truth, scores), abs=1e-12)


@settings(max_examples=200, deadline=None)
@given(scored())
def test_average_precision_matches_sklearn(case: tuple[np.ndarray, np.ndarray]) -> None:
    scores, truth = case
    assert evaluate.average_precision(scores, truth) == pytest.approx(
        average_precision_score(truth, scores), abs=1e-12)


@settings(max_examples=100, deadline=None)
@given(scored(), st.floats(-3, 3), st.floats(0.1, 10))
def test_auc_is_invariant_under_increasing_maps(case: tuple[np.ndarray, np.ndarray], shift: float,
                                                 scale: float) -> None:
    scores, truth = case
    auc = evaluate.roc_auc(scores, truth)
    assert evaluate.roc_auc(scale * scores + shift, truth) == pytest.approx(auc, abs=1e-12)
    assert evaluate.roc_auc(np.exp(scores), truth) == pytest.approx(auc, abs=1e-12)
    assert evaluate.roc_auc(-scores, truth) == pytest.approx(1 - auc, abs=1e-12)


def test_auc_by_hand() -> None:
    # positives 0.9 and 0.5; negatives 0.5 and 0.1: pairs (0.9>0.5, 0.9>0.1, 0.5=0.5 -> 1/2, 0.5>0.1) = 3.5/4
    assert evaluate.roc_auc([0.9, 0.5, 0.5, 0.1], [True, True, False, False]) == 0.875
    assert evaluate.roc_auc([1, 1, 1, 1], [True, False, True, False]) == 0.5


def test_map_at_k_by_hand() -> None:
    scores = np.array([10, 9, 8, 7, 6, 5], dtype=float)
    truth = np.array([True, False, True, False, False, True])
    # within the top 4: positives at positions 1 and 3: (1/1 + 2/3) / 2
    assert evaluate.map_at_k(scores, truth, 4) == pytest.approx((1 + 2 / 3) / 2)
    # top 6: positions 1, 3, 6: (1 + 2/3 + 3/6) / 3
    assert evaluate.map_at_k(scores, truth, 6) == pytest.approx((1 + 2 / 3 + 0.5) / 3)
    assert evaluate.map_at_k(scores, truth, 100) == evaluate.map_at_k(scores, truth, 6)
    assert evaluate.map_at_k(scores, truth, 1) == 1.0 and evaluate.map_at_k(-scores, truth, 1) == 1.0
    assert evaluate.map_at_k(scores, np.zeros(6, bool), 3) == 0.0


def test_map_at_k_ties_put_normal_first() -> None:
    scores = np.array([1.0, 1.0, 0.0])
    assert evaluate.map_at_k(scores, np.array([True, False, False]), 2) == 0.5
    assert evaluate.map_at_k(scores, np.array([False, True, False]), 2) == 0.5


@settings(max_examples=100, deadline=None)
@given(scored(), st.integers(1, 80))
def test_map_is_one_when_positives_lead(case: tuple[np.ndarray, np.ndarray], k: int) -> None:
    _, truth = case
    perfect = truth.astype(float) + np.linspace(0, 0.5, truth.size)
    assert evaluate.map_at_k(perfect, truth, k) == 1.0
    value = evaluate.map_at_k(case[0], truth, k)
    assert 0.0 <= value <= 1.0


@settings(max_examples=100, deadline=None)
@given(scored(), st.floats(0, 1))
def test_threshold_at_fpr_is_the_lowest_admissible(case: tuple[np.ndarray, np.ndarray], fpr: float) -> None:
    scores, truth = case
    th = evaluate.threshold_at_fpr(scores, truth, fpr)
    flagged = scores >= th.threshold
    assert th.fp == int((flagged & ~truth).sum()) and th.tp == int((flagged & truth).sum())
    assert th.tp + th.fn == truth.sum() and th.fp + th.tn == (~truth).sum()
    assert th.fpr <= fpr + 1e-12
    lower = scores[scores < th.threshold]
    if lower.size:  # the next threshold down breaks the bound
        nxt = scores >= lower.max()
        assert (nxt & ~truth).sum() > fpr * (~truth).sum()


def test_thresholds_by_hand() -> None:
    scores = np.array([0.9, 0.8, 0.7, 0.6, 0.5, 0.4])
    truth = np.array([True, True, False, True, False, False])
    th = evaluate.threshold_at_fpr(scores, truth, 0.0)
    assert (th.threshold, th.tp, th.fp) == (0.8, 2, 0)
    f1 = evaluate.threshold_max_f1(scores, truth)
    assert f1.threshold == 0.6 and f1.f1 == pytest.approx(2 * 0.75 * 1 / 1.75)
    p = evaluate.threshold_at_precision(scores, truth, 1.0)
    assert p.threshold == 0.8
    nothing = evaluate.threshold_at_precision(-scores, truth, 1.0)
    assert nothing.threshold == np.inf and nothing.tp == 0


def test_per_kind_auc_uses_only_normal_as_negatives() -> None:
    codes = np.array([0, 0, 0, 5, 5, 6, 6])
    scores = np.array([0.0, 0.1, 0.2, 1.0, 2.0, -1.0, 0.15])
    result = evaluate.per_kind_auc(scores, codes)
    assert result[5] == (2, 1.0)
    assert result[6][0] == 2 and result[6][1] == pytest.approx(roc_auc_score([0, 0, 0, 1, 1],
                                                                              [0.0, 0.1, 0.2, -1.0, 0.15]))


def test_detection_delay() -> None:
    truth = np.array([[0, 1, 1, 1, 0, 1], [0, 0, 0, 0, 0, 0]], dtype=bool)
    flagged = np.array([[1, 0, 0, 1, 0, 0], [1, 1, 0, 0, 0, 0]], dtype=bool)
    delay = evaluate.detection_delay(flagged, truth)
    assert (delay.episodes, delay.detected, delay.median_days) == (2, 1, 2.0)


def _labels(codes: np.ndarray) -> Labels:
    return Labels(tuple(f"H{m:06d}" for m in range(codes.shape[0])), START, codes)


def test_report_on_a_grid() -> None:
    rng = np.random.default_rng(1)
    codes = np.zeros((30, 40), dtype=np.int64)
    codes[rng.random(codes.shape) < 0.15] = 3
    codes[rng.random(codes.shape) < 0.05] = 6
    scores = rng.normal(size=codes.shape) + 3 * (codes == 3) + 0.5 * (codes == 6)
    rep = evaluate.report(scores, _labels(codes), precision=0.9)
    assert rep.at_precision is not None and rep.at_precision.precision >= 0.9
    assert rep.items == 1200 and rep.anomalous == int((codes != 0).sum())
    assert rep.per_kind["h3"][1] > 0.95 and 0.5 < rep.per_kind["h6"][1] < 0.8
    assert rep.auc == pytest.approx(roc_auc_score((codes != 0).ravel(), scores.ravel()))
    assert rep.at_fpr is not None and rep.at_fpr.fpr <= 0.01
    text = evaluate.format_report(rep, "toy")
    assert "h3" in text and "MAP@50" in text and f"{rep.auc:.4f}" in text and "at precision >= 0.9" in text


def test_bad_inputs_are_refused() -> None:
    with pytest.raises(ParameterError, match="both"):
        evaluate.roc_auc([1.0, 2.0], [True, True])
    with pytest.raises(ParameterError, match="finite"):
        evaluate.roc_auc([1.0, np.nan], [True, False])
    with pytest.raises(ParameterError, match="one length"):
        evaluate.roc_auc([1.0, 2.0, 3.0], [True, False])
    with pytest.raises(ParameterError, match="boolean"):
        evaluate.roc_auc([1.0, 2.0], [2, 0])
    with pytest.raises(ParameterError, match="k must"):
        evaluate.map_at_k([1.0, 2.0], [True, False], 0)
    with pytest.raises(ParameterError, match="fpr"):
        evaluate.threshold_at_fpr([1.0, 2.0], [True, False], 1.5)


# --------------------------------------------------------------------------
# The ensemble (section 7.2), on stand-in detectors with known blind spots


def test_robust_z_and_combine() -> None:
    z = detect.robust_z(np.array([1.0, 2.0, 3.0, 4.0, 100.0]))
    assert z[2] == 0 and z[4] > 50
    assert (detect.robust_z(np.ones(5)) == 0).all()
    a, b = np.array([[0.0, 5.0]]), np.array([[5.0, 0.0]])
    assert detect.combine([a, b], "mean-rank").shape == (1, 2)
    with pytest.raises(ParameterError):
        detect.combine([a, np.zeros((2, 2))])
    with pytest.raises(ParameterError):
        detect.combine([a], "median")


def test_max_z_catches_what_either_detector_catches() -> None:
    """Detector A is blind to h5, B to h6 (the pilot's finding); both see h1 weakly."""
    rng = np.random.default_rng(7)
    codes = np.zeros((100, 60), dtype=np.int64)
    draw = rng.random(codes.shape)
    codes[draw < 0.05] = 5
    codes[(draw >= 0.05) & (draw < 0.10)] = 6
    codes[(draw >= 0.10) & (draw < 0.15)] = 1
    a = rng.gamma(2.0, size=codes.shape) + 4 * (codes == 6) + 1.5 * (codes == 1)
    b = 10 * rng.normal(size=codes.shape) + 40 * (codes == 5) + 15 * (codes == 1)
    labels = _labels(codes)
    aucs = {rule: evaluate.report(detect.combine([a, b], rule), labels).per_kind for rule in detect.ENSEMBLE_RULES}
    blind = {rule: min(kinds["h5"][1], kinds["h6"][1]) for rule, kinds in aucs.items()}
    assert blind["max-z"] > 0.95
    assert blind["max-z"] > blind["mean-z"] > blind["mean-rank"]
    # the price: on h1, which both see weakly, the max adds less evidence than the mean
    assert aucs["mean-z"]["h1"][1] > aucs["max-z"]["h1"][1]
    assert evaluate.report(a, labels).per_kind["h5"][1] < 0.6
    assert evaluate.report(b, labels).per_kind["h6"][1] < 0.6


# --------------------------------------------------------------------------
# The scores file (section 9)


def test_scores_file_round_trip(tmp_path) -> None:
    rng = np.random.default_rng(3)
    codes = np.zeros((3, 5), dtype=np.int64)
    labels = _labels(codes)
    scores = rng.normal(size=codes.shape) * 1e3
    path = tmp_path / "scores.csv"
    detect.write_scores(path, labels, scores)
    meters, start, grid = detect.read_scores(path)
    assert meters == labels.meters and start == START
    assert np.array_equal(grid, scores)
    assert path.read_text().splitlines()[0] == "meter,day,score"
    # rows in another order and meters in another order align by (meter, day)
    lines = path.read_text().splitlines()
    path.write_text("\n".join([lines[0]] + lines[:0:-1]) + "\n")
    meters, start, grid = detect.read_scores(path)
    assert meters == tuple(reversed(labels.meters))
    assert np.array_equal(detect.align(meters, start, grid, labels), scores)


@pytest.mark.parametrize("body, message", [
    ("meter,day\n", "header"),
    ("meter,day,score\nH1,2025-01-01\n", "line 2: expected 3"),
    ("meter,day,score\nH1,2025-13-01,1\n", "line 2: day"),
    ("meter,day,score\nH1,2025-01-01,abc\n", "line 2: score"),
    ("meter,day,score\nH1,2025-01-01,nan\n", "line 2: score 'nan' is not finite"),
    ("meter,day,score\nH1,2025-01-01,1\nH1,2025-01-01,2\n", "line 3: meter H1 day 2025-01-01 repeats line 2"),
    ("meter,day,score\nH1,2025-01-01,1\nH1,2025-01-03,2\n", "no row for meter H1 day 2025-01-02"),
    ("meter,day,score\n,2025-01-01,1\n", "line 2: bad meter"),
    ("meter,day,score\n", "no rows"),
])
def test_bad_scores_files(tmp_path, body: str, message: str) -> None:
    path = tmp_path / "scores.csv"
    path.write_text(body)
    with pytest.raises(DecodeError, match=message):
        detect.read_scores(path)


def test_align_names_the_first_missing_pair() -> None:
    labels = _labels(np.zeros((2, 3), dtype=np.int64))
    grid = np.zeros((2, 3))
    with pytest.raises(ParameterError, match="no row for meter H000001 day 2025-01-01"):
        detect.align(("H000000", "X"), START, grid, labels)
    with pytest.raises(ParameterError, match="labels have no row for meter X"):
        detect.align(("H000000", "H000001", "X"), START, np.zeros((3, 3)), labels)
    with pytest.raises(ParameterError, match="scores have no row for meter H000000 day 2025-01-03"):
        detect.align(labels.meters, START, np.zeros((2, 2)), labels)
    with pytest.raises(ParameterError, match="labels have no row for meter H000000 day 2024-12-31"):
        detect.align(labels.meters, START - datetime.timedelta(days=1), np.zeros((2, 4)), labels)


# --------------------------------------------------------------------------
# Detection under privacy (section 8), with a stand-in detector


def _toy_data(meters: int = 40, days: int = 30, seed: int = 5):
    from protocols.analytics.data import LoadData

    rng = np.random.default_rng(seed)
    kwh = rng.gamma(2.0, 0.1, size=(meters, days, 48)) * (1 + rng.random((meters, 1, 1)))
    kwh *= rng.lognormal(0, 0.15, size=(meters, days, 1))
    codes = np.zeros((meters, days), dtype=np.int64)
    codes[rng.random(codes.shape) < 0.05] = 1
    codes[rng.random(codes.shape) < 0.05] = 2
    kwh[codes == 1] *= 0.3
    kwh[codes == 2] *= 0.85
    names = tuple(f"H{m:06d}" for m in range(meters))
    return LoadData(names, START, 30, kwh), Labels(names, START, codes)


def _drop_detector(data) -> np.ndarray:
    """Stand-in detector: how far a day's total falls below its meter's median day."""
    totals = data.kwh.sum(axis=2)
    return -totals / np.maximum(np.median(totals, axis=1, keepdims=True), 1e-9)


def test_discrete_laplace_moments() -> None:
    from protocols.analytics import privacy_study as ps

    x = ps.discrete_laplace_np(np.random.default_rng(0), 3.0, (200_000,))
    a = np.exp(-1 / 3)
    assert abs(x.mean()) < 0.05
    assert x.var() == pytest.approx(2 * a / (1 - a) ** 2, rel=0.03)
    assert (x == 0).mean() == pytest.approx((1 - a) / (1 + a), rel=0.03)


def test_epsilon_of_levels() -> None:
    from protocols.analytics import privacy_study as ps

    assert ps.epsilon_of("none") is None and ps.epsilon_of("LOW") == 1.0 and ps.epsilon_of("high") == 0.1
    assert ps.epsilon_of("2.5") == 2.5 and ps.epsilon_of(10) == 10.0
    for bad in ("loud", "-1", 0, float("nan"), True):
        with pytest.raises(ParameterError):
            ps.epsilon_of(bad)


def test_aggregate_sums_and_labels() -> None:
    from protocols.analytics import privacy_study as ps

    data, labels = _toy_data(meters=11)
    hoods = ps.neighbourhoods(11, 5, np.random.default_rng(1))
    assert hoods.groups.shape == (2, 5) and len(set(hoods.groups.ravel())) == 10
    summed, counts = ps.aggregate(data, labels, hoods)
    assert np.allclose(summed.kwh[1], data.kwh[hoods.groups[1]].sum(axis=0))
    assert (counts.sum(axis=-1) == 5).all()
    assert (counts[0, :, 1] == (labels.codes[hoods.groups[0]] == 1).sum(axis=0)).all()
    with pytest.raises(ParameterError, match="at least 12"):
        ps.neighbourhoods(11, 12, np.random.default_rng(1))


def test_study_costs_detection_and_is_seeded() -> None:
    from protocols.analytics import privacy_study as ps

    data, labels = _toy_data()
    rows = ps.study(data, labels, _drop_detector, levels=("none", 1e6, "high"), sizes=(1, 5), seed="s")
    by = {(r.setting, r.parameter): r for r in rows}
    clear = by[("dp", "none")]
    assert clear.auc is not None and clear.auc > 0.8 and clear.per_kind["h1"] > clear.per_kind["h2"]
    assert by[("dp", "1e+06")].auc == pytest.approx(clear.auc, abs=0.02)
    high = by[("dp", "high")].auc
    assert high is not None and abs(high - 0.5) < 0.1       # a day's budget of 1/10 buries every reading
    assert by[("aggregate", "1")].auc == pytest.approx(clear.auc)  # N = 1: the same meter-days, permuted
    five = by[("aggregate", "5")]
    assert five.units == 8 * 30 and five.auc is not None and five.auc < clear.auc
    again = ps.study(data, labels, _drop_detector, levels=("none", 1e6, "high"), sizes=(1, 5), seed="s")
    assert again == rows
    text = ps.format_table(rows)
    assert "aggregate" in text and "AUC h6" in text and "n/a" in text


def test_noise_scale_is_readings_times_clip_over_epsilon() -> None:
    """Section 8.1: a reading gets discrete Laplace noise of scale S C / epsilon, after clipping to C."""
    from protocols.analytics import privacy_study as ps
    from protocols.analytics.data import LoadData

    names = tuple(f"H{m}" for m in range(50))
    kwh = np.ones((50, 40, 48))
    kwh[:, :, 0] = 5.0  # above the 3500 Wh bound of 7 kW over 30 minutes
    noisy = ps.noisy_data(LoadData(names, START, 30, kwh), 4800.0, np.random.default_rng(2))
    scale = 48 * 3500 / 4800  # 35 Wh
    a = np.exp(-1 / scale)
    noise = noisy.kwh[:, :, 1:] * 1000 - 1000
    assert np.allclose(noise, np.rint(noise))  # whole Wh
    assert noise.var() == pytest.approx(2 * a / (1 - a) ** 2, rel=0.05)
    assert abs(np.median(noisy.kwh[:, :, 0]) - 3.5) < 0.01  # clipped, then noised
    exact = ps.noisy_data(LoadData(names, START, 30, kwh), 1e9, np.random.default_rng(2))
    assert np.array_equal(exact.kwh[:, :, 1:], kwh[:, :, 1:]) and (exact.kwh[:, :, 0] == 3.5).all()


def test_plots_are_written(tmp_path) -> None:
    from protocols.analytics import plots
    from protocols.analytics import privacy_study as ps

    data, labels = _toy_data(meters=10, days=20)
    grid = _drop_detector(data)
    truth = labels.anomalous
    reports = {"drop": evaluate.report(grid, labels)}
    paths = plots.evaluation_plots({"drop": (grid.ravel(), truth.ravel())}, reports, {"drop": grid}, truth,
                                   tmp_path)
    rows = ps.study(data, labels, _drop_detector, levels=("none", 10.0), sizes=(1, 2))
    paths.append(plots.privacy_plot(rows, tmp_path))
    paths.append(plots.attack_examples_plot(data, data, labels.codes, tmp_path))
    assert len(paths) == 7
    for path in paths:
        with open(path, "rb") as handle:
            assert handle.read(8) == b"\x89PNG\r\n\x1a\n"


def test_scaled_progress_stays_inside_its_detector() -> None:
    calls: list[tuple[int, int]] = []
    inner = detect._scaled(lambda done, total: calls.append((done, total)), 1, 2000)
    inner(0, 4)
    inner(2, 4)
    inner(4, 4)
    assert calls == [(1000, 2000), (1500, 2000), (1999, 2000)]
