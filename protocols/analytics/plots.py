"""PNG plots of an evaluation (specs/analytics.md sections 7.1, 8 and 9): matplotlib on the Agg backend,
imported only when a plot is drawn.

Each function writes one file into ``directory`` (created if needed) and returns its path.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

from protocols.analytics import evaluate
from protocols.analytics.data import LABEL_NAMES
from protocols.analytics.privacy_study import StudyRow
from protocols.errors import ParameterError

DPI = 120


def _pyplot() -> ModuleType:
    try:
        import matplotlib
    except ModuleNotFoundError:
        raise ParameterError("plots need matplotlib: pip install matplotlib") from None
    matplotlib.use("Agg")
    import matplotlib.pyplot as pyplot

    return pyplot


def _save(pyplot: ModuleType, figure: Any, directory: str | os.PathLike[str], name: str) -> str:
    folder = Path(directory)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    figure.tight_layout()
    figure.savefig(path, dpi=DPI)
    pyplot.close(figure)
    return str(path)


Curves = Mapping[str, tuple[np.ndarray, np.ndarray]]
"""Detector name -> (scores, truth), 1-D."""


def roc_plot(curves: Curves, directory: str | os.PathLike[str], name: str = "roc.png") -> str:
    """ROC curve of each detector, with its AUC in the legend."""
    pyplot = _pyplot()
    figure, axis = pyplot.subplots(figsize=(5, 5))
    for label, (scores, truth) in curves.items():
        fpr, tpr, _ = evaluate.roc_curve(scores, truth)
        axis.plot(fpr, tpr, label=f"{label} (AUC {evaluate.roc_auc(scores, truth):.3f})")
    axis.plot([0, 1], [0, 1], color="grey", linestyle=":", linewidth=1)
    axis.set(xlabel="false-positive rate", ylabel="true-positive rate", title="ROC", xlim=(0, 1), ylim=(0, 1.01))
    axis.legend(loc="lower right")
    return _save(pyplot, figure, directory, name)


def pr_plot(curves: Curves, directory: str | os.PathLike[str], name: str = "pr.png") -> str:
    """Precision-recall curve of each detector, with its average precision in the legend."""
    pyplot = _pyplot()
    figure, axis = pyplot.subplots(figsize=(5, 5))
    for label, (scores, truth) in curves.items():
        precision, recall, _ = evaluate.pr_curve(scores, truth)
        axis.step(np.r_[0.0, recall], np.r_[precision[0], precision], where="pre",
                  label=f"{label} (AP {evaluate.average_precision(scores, truth):.3f})")
    axis.set(xlabel="recall", ylabel="precision", title="precision-recall", xlim=(0, 1), ylim=(0, 1.01))
    axis.legend(loc="lower left")
    return _save(pyplot, figure, directory, name)


def per_kind_plot(reports: Mapping[str, evaluate.Report], directory: str | os.PathLike[str],
                  name: str = "per_kind_auc.png") -> str:
    """Bars: each label kind's AUC against normal meter-days, one bar per detector."""
    pyplot = _pyplot()
    kinds = sorted({kind for rep in reports.values() for kind in rep.per_kind},
                   key=LABEL_NAMES.index)
    figure, axis = pyplot.subplots(figsize=(max(5, 0.9 * len(kinds) * max(1, len(reports))), 4))
    width = 0.8 / max(1, len(reports))
    for i, (label, rep) in enumerate(reports.items()):
        values = [rep.per_kind[k][1] if k in rep.per_kind else np.nan for k in kinds]
        axis.bar(np.arange(len(kinds)) + i * width, values, width, label=label)
    axis.set_xticks(np.arange(len(kinds)) + 0.4 - width / 2, kinds)
    axis.axhline(0.5, color="grey", linestyle=":", linewidth=1)
    axis.set(ylabel="AUC against normal meter-days", ylim=(0, 1.02), title="AUC per label kind")
    axis.legend(loc="lower right")
    return _save(pyplot, figure, directory, name)


def histogram_plot(scores: np.ndarray, truth: np.ndarray, directory: str | os.PathLike[str],
                   name: str = "score_histogram.png", title: str = "") -> str:
    """Score histograms of normal and anomalous meter-days (density, shared bins)."""
    s, t = np.asarray(scores, dtype=float).ravel(), np.asarray(truth, dtype=bool).ravel()
    pyplot = _pyplot()
    figure, axis = pyplot.subplots(figsize=(6, 4))
    bins = np.histogram_bin_edges(s, bins=60)
    axis.hist(s[~t], bins=bins, density=True, alpha=0.6, label=f"normal ({int((~t).sum())})")
    axis.hist(s[t], bins=bins, density=True, alpha=0.6, label=f"anomalous ({int(t.sum())})")
    axis.set(xlabel="score (higher = more anomalous)", ylabel="density", title=title or "scores")
    axis.legend()
    return _save(pyplot, figure, directory, name)


def heatmap_plot(scores: np.ndarray, directory: str | os.PathLike[str], name: str = "score_heatmap.png",
                 truth: np.ndarray | None = None, max_meters: int = 200) -> str:
    """Scores as a meters x days image (the first ``max_meters`` meters), coloured by each score's
    percentile among all meter-days (raw scores span orders of magnitude); anomalous meter-days,
    when ``truth`` is given, are marked by dots."""
    from scipy.stats import rankdata

    raw = np.asarray(scores, dtype=float)
    if raw.ndim != 2:
        raise ParameterError("a heat map needs a meters x days grid")
    grid = (100 * rankdata(raw, method="average").reshape(raw.shape) / raw.size)[:max_meters]
    pyplot = _pyplot()
    figure, axis = pyplot.subplots(figsize=(8, max(3, min(10, 0.05 * grid.shape[0] + 2))))
    image = axis.imshow(grid, aspect="auto", interpolation="nearest", cmap="viridis", vmin=0, vmax=100)
    if truth is not None:
        rows, cols = np.nonzero(np.asarray(truth, dtype=bool)[:max_meters])
        axis.scatter(cols, rows, s=2, c="red", marker=".", label="anomalous")
        axis.legend(loc="upper right")
    figure.colorbar(image, ax=axis, label="score percentile")
    axis.set(xlabel="day", ylabel="meter", title="scores, meters x days")
    return _save(pyplot, figure, directory, name)


def privacy_plot(rows: Sequence[StudyRow], directory: str | os.PathLike[str],
                 name: str = "privacy_auc.png") -> str:
    """Section 8: AUC against epsilon (DP noise, log scale; no noise drawn as a line) and
    against the neighbourhood size N."""
    pyplot = _pyplot()
    figure, (left, right) = pyplot.subplots(1, 2, figsize=(10, 4))
    dp = sorted((r for r in rows if r.setting == "dp" and r.epsilon is not None and r.auc is not None),
                key=lambda r: r.epsilon or 0.0)
    if dp:
        left.plot([r.epsilon for r in dp], [r.auc for r in dp], marker="o", label="all anomalies")
    for r in rows:
        if r.setting == "dp" and r.epsilon is None and r.auc is not None:
            left.axhline(r.auc, color="green", linestyle="--", linewidth=1, label="no noise")
    left.axhline(0.5, color="grey", linestyle=":", linewidth=1, label="chance")
    left.set_xscale("log")
    left.set(xlabel="epsilon per household-day", ylabel="ROC AUC", ylim=(0, 1.02), title="individual data with DP noise")
    left.legend(loc="lower right")
    agg = sorted((r for r in rows if r.setting == "aggregate" and r.auc is not None), key=lambda r: r.size)
    if agg:
        right.plot([r.size for r in agg], [r.auc for r in agg], marker="o")
    right.axhline(0.5, color="grey", linestyle=":", linewidth=1)
    right.set_xscale("log")
    right.set(xlabel="neighbourhood size N", ylabel="ROC AUC", ylim=(0, 1.02), title="neighbourhood sums")
    return _save(pyplot, figure, directory, name)


def evaluation_plots(curves: Curves, reports: Mapping[str, evaluate.Report], grids: Mapping[str, np.ndarray],
                     truth: np.ndarray, directory: str | os.PathLike[str]) -> list[str]:
    """Every plot of an evaluation: ROC, PR, per-kind bars, and per detector a histogram and a heat map."""
    paths = [roc_plot(curves, directory), pr_plot(curves, directory), per_kind_plot(reports, directory)]
    for label, grid in grids.items():
        safe = "".join(ch if ch.isalnum() or ch in "-_" else "_" for ch in label)
        paths.append(histogram_plot(grid, truth, directory, f"score_histogram_{safe}.png", title=label))
        paths.append(heatmap_plot(grid, directory, f"score_heatmap_{safe}.png", truth=truth))
    return paths


def attack_examples_plot(clean: Any, attacked: Any, codes: np.ndarray, directory: str | os.PathLike[str],
                         name: str = "attack_examples.png") -> str:
    """For each label kind present, its first meter-day (meters, then days, in order): the clean
    readings and the attacked ones drawn over them (``clean`` and ``attacked`` are LoadData)."""
    c = np.asarray(codes)
    kinds = [int(k) for k in np.unique(c) if k != 0]
    if not kinds:
        raise ParameterError("no attacked meter-day to draw")
    pyplot = _pyplot()
    columns = min(3, len(kinds))
    rows = -(-len(kinds) // columns)
    figure, axes = pyplot.subplots(rows, columns, figsize=(4.5 * columns, 3 * rows), squeeze=False)
    hours = np.arange(clean.slots) * clean.interval_minutes / 60
    for axis, kind in zip(axes.ravel(), kinds):
        m, d = (int(v) for v in np.argwhere(c == kind)[0])
        axis.step(hours, clean.kwh[m, d], where="post", label="clean", color="grey")
        axis.step(hours, attacked.kwh[m, d], where="post", label=LABEL_NAMES[kind], color="red")
        axis.set(title=f"{LABEL_NAMES[kind]}: {clean.meters[m]} {clean.day(d).isoformat()}", xlabel="hour",
                 ylabel="kWh per reading")
        axis.legend(loc="upper left")
    for axis in axes.ravel()[len(kinds):]:
        axis.set_visible(False)
    return _save(pyplot, figure, directory, name)
