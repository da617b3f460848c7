"""Evaluation of anomaly scores against labels (specs/analytics.md section 7.1).

Every function takes ``scores`` (float, higher = more anomalous) and ``truth``
(bool, True = anomalous) as 1-D arrays of the same length; :func:`report` takes
the meters x days grids of a detector and a :class:`~protocols.analytics.data.Labels`.
ROC AUC is computed here from ranks (ties get their average rank), not by a
library, and cross-checked against scikit-learn in the tests.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
from scipy.stats import rankdata

from protocols.analytics.data import LABEL_NAMES, MAX_DAYS, MAX_METERS, Labels
from protocols.errors import ParameterError

MAX_ITEMS = MAX_METERS * MAX_DAYS
"""The most scored items one call accepts (every meter-day of the largest grid)."""
DEFAULT_FPR = 0.01
"""Section 7.1: the false-positive rate at which :func:`report` sets its threshold."""
DEFAULT_K = 50
"""Section 7.1: the N of MAP@N in :func:`report` (the issue's target is MAP@50)."""


def _vectors(scores: object, truth: object) -> tuple[np.ndarray, np.ndarray]:
    """``scores`` as finite float64 and ``truth`` as bool, both 1-D and of one length."""
    s = np.asarray(scores, dtype=np.float64)
    t = np.asarray(truth)
    if s.ndim != 1 or t.ndim != 1 or s.shape != t.shape:
        raise ParameterError(f"scores and truth must be 1-D arrays of one length, not {s.shape} and {t.shape}")
    if s.size > MAX_ITEMS:
        raise ParameterError(f"at most {MAX_ITEMS} scored items, not {s.size}")
    if t.dtype != np.bool_:
        if t.size and not np.isin(t, (0, 1)).all():
            raise ParameterError("truth must be boolean (or 0/1)")
        t = t.astype(bool)
    bad = np.flatnonzero(~np.isfinite(s))
    if bad.size:
        raise ParameterError(f"score {bad[0]} is not a finite number: {s[bad[0]]}")
    return s, t


def _both_classes(t: np.ndarray) -> tuple[int, int]:
    positives = int(t.sum())
    negatives = int(t.size - positives)
    if positives == 0 or negatives == 0:
        raise ParameterError(f"needs both anomalous and normal items ({positives} anomalous, {negatives} normal)")
    return positives, negatives


def roc_auc(scores: object, truth: object) -> float:
    """Area under the ROC curve: the probability that a random anomalous item
    scores above a random normal one, ties counting one half (Mann-Whitney U
    from average ranks; section 7.1)."""
    s, t = _vectors(scores, truth)
    positives, negatives = _both_classes(t)
    ranks = rankdata(s, method="average")
    u = float(ranks[t].sum()) - positives * (positives + 1) / 2
    return u / (positives * negatives)


def _sorted_counts(s: np.ndarray, t: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Distinct score thresholds in decreasing order and, for each, the true and
    false positives of the rule ``score >= threshold``."""
    order = np.argsort(-s, kind="stable")
    s_sorted, t_sorted = s[order], t[order]
    last = np.r_[np.flatnonzero(np.diff(s_sorted) != 0), s_sorted.size - 1]  # last index of each tie group
    tp = np.cumsum(t_sorted)[last]
    fp = (last + 1) - tp
    return s_sorted[last], tp.astype(np.int64), fp.astype(np.int64)


def roc_curve(scores: object, truth: object) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(fpr, tpr, thresholds)``, one point per distinct score (decreasing), starting at (0, 0)
    with threshold +inf."""
    s, t = _vectors(scores, truth)
    positives, negatives = _both_classes(t)
    thresholds, tp, fp = _sorted_counts(s, t)
    return (np.r_[0.0, fp / negatives], np.r_[0.0, tp / positives], np.r_[np.inf, thresholds])


def pr_curve(scores: object, truth: object) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(precision, recall, thresholds)``, one point per distinct score (decreasing threshold)."""
    s, t = _vectors(scores, truth)
    positives, _ = _both_classes(t)
    thresholds, tp, fp = _sorted_counts(s, t)
    return tp / (tp + fp), tp / positives, thresholds


def average_precision(scores: object, truth: object) -> float:
    """Average precision: sum over distinct thresholds of (recall gained) x precision
    (the step-wise area under the PR curve, no interpolation; section 7.1)."""
    precision, recall, _ = pr_curve(scores, truth)
    return float(np.sum(np.diff(np.r_[0.0, recall]) * precision))


def map_at_k(scores: object, truth: object, k: int) -> float:
    """MAP@N of Zheng et al. (2018), N = ``k`` (section 7.1).

    Items are ranked by decreasing score; among equal scores normal items come
    first (a tie never flatters the detector).  With r the number of anomalous
    items among the first k and k_1 < ... < k_r their positions,
    MAP@k = (1/r) sum_i P@k_i where P@k_i = i / k_i; 0 when r = 0.
    """
    s, t = _vectors(scores, truth)
    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise ParameterError(f"k must be a positive integer, not {k!r}")
    order = np.lexsort((t, -s))  # by decreasing score, then normal (False) before anomalous
    top = t[order[:k]]
    positions = np.flatnonzero(top) + 1
    if positions.size == 0:
        return 0.0
    return float(np.mean(np.arange(1, positions.size + 1) / positions))


@dataclass(frozen=True)
class Threshold:
    """A decision rule ``score >= threshold`` and its confusion counts."""

    threshold: float
    tp: int
    fp: int
    tn: int
    fn: int

    @property
    def fpr(self) -> float:
        return self.fp / (self.fp + self.tn) if self.fp + self.tn else 0.0

    @property
    def tpr(self) -> float:
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else 0.0

    @property
    def precision(self) -> float:
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else 1.0

    @property
    def f1(self) -> float:
        p, r = self.precision, self.tpr
        return 2 * p * r / (p + r) if p + r else 0.0


def _threshold(thresholds: np.ndarray, tp: np.ndarray, fp: np.ndarray, i: int, positives: int,
               negatives: int) -> Threshold:
    if i < 0:  # flag nothing
        return Threshold(math.inf, 0, 0, negatives, positives)
    return Threshold(float(thresholds[i]), int(tp[i]), int(fp[i]), negatives - int(fp[i]), positives - int(tp[i]))


def _fraction(value: float, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 1:
        raise ParameterError(f"{what} must be a number in [0, 1], not {value!r}")
    return float(value)


def threshold_at_fpr(scores: object, truth: object, fpr: float) -> Threshold:
    """The lowest threshold (most detections) whose false-positive rate is at most
    ``fpr``; +inf (flag nothing) when even the top score exceeds it (section 7.1)."""
    fpr = _fraction(fpr, "fpr")
    s, t = _vectors(scores, truth)
    positives, negatives = _both_classes(t)
    thresholds, tp, fp = _sorted_counts(s, t)
    allowed = np.flatnonzero(fp <= fpr * negatives)
    return _threshold(thresholds, tp, fp, int(allowed[-1]) if allowed.size else -1, positives, negatives)


def threshold_max_f1(scores: object, truth: object) -> Threshold:
    """The threshold of the PR curve with the largest F1 (the highest such threshold on a tie)."""
    s, t = _vectors(scores, truth)
    positives, negatives = _both_classes(t)
    thresholds, tp, fp = _sorted_counts(s, t)
    f1 = 2 * tp / (tp + fp + positives)
    return _threshold(thresholds, tp, fp, int(np.argmax(f1)), positives, negatives)


def threshold_at_precision(scores: object, truth: object, precision: float) -> Threshold:
    """The lowest threshold (most recall) whose precision is at least ``precision``;
    +inf when no threshold reaches it."""
    precision = _fraction(precision, "precision")
    s, t = _vectors(scores, truth)
    positives, negatives = _both_classes(t)
    thresholds, tp, fp = _sorted_counts(s, t)
    ok = np.flatnonzero(tp >= precision * (tp + fp))
    return _threshold(thresholds, tp, fp, int(ok[-1]) if ok.size else -1, positives, negatives)


def per_kind_auc(scores: object, codes: object) -> dict[int, tuple[int, float]]:
    """For each label code present other than 0: (its count, the AUC of its items
    against the normal (code 0) items only) (section 7.1)."""
    c = np.asarray(codes)
    if c.ndim != 1 or not np.issubdtype(c.dtype, np.integer):
        raise ParameterError("codes must be a 1-D integer array")
    s, _ = _vectors(scores, c != 0)
    normal = c == 0
    if not normal.any():
        raise ParameterError("per-kind AUC needs normal items")
    result: dict[int, tuple[int, float]] = {}
    for kind in sorted(int(k) for k in np.unique(c) if k != 0):
        chosen = (c == kind) | normal
        result[kind] = (int((c == kind).sum()), roc_auc(s[chosen], c[chosen] == kind))
    return result


@dataclass(frozen=True)
class Delay:
    """Detection delay over attack episodes (runs of consecutive anomalous days of one meter)."""

    episodes: int
    detected: int
    median_days: float | None
    """Median, over detected episodes, of days from an episode's first day to its first flagged day."""


def detection_delay(flagged: np.ndarray, truth: np.ndarray) -> Delay:
    """Section 7.1: per meter (row), each run of consecutive anomalous days is an
    episode; its delay is the index, within the run, of the first flagged day."""
    f, t = np.asarray(flagged, dtype=bool), np.asarray(truth, dtype=bool)
    if f.ndim != 2 or f.shape != t.shape:
        raise ParameterError("flagged and truth must be meters x days arrays of one shape")
    delays: list[int] = []
    episodes = 0
    padded = np.pad(t, ((0, 0), (1, 1))).astype(np.int8)
    for row in range(t.shape[0]):
        edges = np.diff(padded[row])
        for start, stop in zip(np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)):
            episodes += 1
            hits = np.flatnonzero(f[row, start:stop])
            if hits.size:
                delays.append(int(hits[0]))
    return Delay(episodes, len(delays), float(np.median(delays)) if delays else None)


@dataclass(frozen=True)
class Report:
    """Section 7.1: what :func:`report` measures for one detector's scores."""

    items: int
    anomalous: int
    auc: float
    average_precision: float
    k: int
    map_at_k: float
    """MAP@k over meter-days."""
    meter_map_at_k: float
    """MAP@k over meters, a meter scored by its highest meter-day score, anomalous if any day is."""
    per_kind: dict[str, tuple[int, float]] = field(default_factory=dict)
    """Label name -> (meter-days, AUC against the normal meter-days)."""
    at_fpr: Threshold | None = None
    best_f1: Threshold | None = None
    target_fpr: float = DEFAULT_FPR
    delay: Delay | None = None
    """Detection delay at the ``at_fpr`` threshold."""
    at_precision: Threshold | None = None
    target_precision: float | None = None


def report(scores: np.ndarray, labels: Labels, *, fpr: float = DEFAULT_FPR, k: int = DEFAULT_K,
           precision: float | None = None) -> Report:
    """Every figure of section 7.1 for a meters x days score grid aligned with ``labels`` (the
    threshold at a target ``precision`` too, when one is given)."""
    grid = np.asarray(scores, dtype=np.float64)
    if grid.shape != labels.codes.shape:
        raise ParameterError(f"scores have shape {grid.shape}, labels {labels.codes.shape}")
    s, codes = grid.ravel(), labels.codes.ravel()
    truth = codes != 0
    at_fpr = threshold_at_fpr(s, truth, fpr)
    meter_truth = labels.anomalous.any(axis=1)
    meter_scores = grid.max(axis=1)
    return Report(
        items=int(s.size), anomalous=int(truth.sum()), auc=roc_auc(s, truth),
        average_precision=average_precision(s, truth), k=k, map_at_k=map_at_k(s, truth, k),
        meter_map_at_k=map_at_k(meter_scores, meter_truth, k),
        per_kind={LABEL_NAMES[kind]: value for kind, value in per_kind_auc(s, codes).items()},
        at_fpr=at_fpr, best_f1=threshold_max_f1(s, truth), target_fpr=fpr,
        delay=detection_delay(grid >= at_fpr.threshold, labels.anomalous),
        at_precision=None if precision is None else threshold_at_precision(s, truth, precision),
        target_precision=precision,
    )


def _threshold_line(name: str, th: Threshold) -> str:
    return (f"{name}: score >= {th.threshold:.6g}: TP {th.tp}, FP {th.fp}, TN {th.tn}, FN {th.fn}; "
            f"TPR {th.tpr:.4f}, FPR {th.fpr:.4f}, precision {th.precision:.4f}, F1 {th.f1:.4f}")


def format_report(rep: Report, title: str = "") -> str:
    """The report as a plain-text table (what ``usapp analytics evaluate`` prints)."""
    lines = [title] if title else []
    lines += [
        f"meter-days {rep.items}, anomalous {rep.anomalous} ({rep.anomalous / rep.items:.1%})",
        f"ROC AUC            {rep.auc:.4f}",
        f"average precision  {rep.average_precision:.4f}",
        f"MAP@{rep.k:<14} {rep.map_at_k:.4f}  (meter-days)",
        f"MAP@{rep.k:<14} {rep.meter_map_at_k:.4f}  (meters, by their highest day)",
        "",
        f"{'kind':<10}  {'meter-days':>10}  {'AUC vs normal':>13}",
        f"{'-' * 10}  {'-' * 10}  {'-' * 13}",
    ]
    lines += [f"{name:<10}  {count:>10}  {auc:>13.4f}" for name, (count, auc) in rep.per_kind.items()]
    lines.append("")
    if rep.at_fpr is not None:
        lines.append(_threshold_line(f"at FPR <= {rep.target_fpr:g}", rep.at_fpr))
    if rep.best_f1 is not None:
        lines.append(_threshold_line("at max F1", rep.best_f1))
    if rep.at_precision is not None:
        lines.append(_threshold_line(f"at precision >= {rep.target_precision:g}", rep.at_precision))
    if rep.delay is not None:
        d = rep.delay
        median = "-" if d.median_days is None else f"{d.median_days:g}"
        lines.append(f"detection delay (at FPR <= {rep.target_fpr:g}): {d.detected} of {d.episodes} episodes "
                     f"detected, median {median} day(s) after the episode's first day")
    return "\n".join(lines) + "\n"
