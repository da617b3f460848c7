"""Anomaly detectors (specs/analytics.md sections 5 and 6): time against data size.

- gmm: ``gmm.gmm_scores`` on generated data (features, K chosen by BIC, EM fit, scores of every
  meter-day: the whole detector as ``usapp analytics detect --method gmm`` runs it);
- rpca: ``rpca.rpca_scores`` on the same data (principal component pursuit, scores from the sparse part);

each against one principal-component pass over the same readings, measured in the same run: numpy's
thin SVD of the centred meter-day x slot matrix (the cost of the plainest linear method on that data,
so the ratio says how many such passes a detector costs).  Sizes: meters 50, 200, 1000 by days 90 and
365 at 30-minute readings (``--quick``: 20 and 50 meters by 30 days).  A figure table gives the
median seconds per size and the fitted growth exponent (slope of log time against log meter-days).
"""

from __future__ import annotations

import math

import numpy as np

from protocols.system.benchmark import (BenchConfig, Benchmark, Comparison, Figures, compare, format_columns,
                                        plot_spread, pyplot_or_none, save_plot)

FULL_SIZES = ((50, 90), (200, 90), (1000, 90), (50, 365), (200, 365), (1000, 365))
QUICK_SIZES = ((20, 30), (50, 30))
LARGE_METER_DAYS = 100_000
"""Above this many meter-days a case runs at most 3 repeats (each call takes seconds)."""
SEED = "bench-analytics"


def _svd_pass(kwh: np.ndarray) -> np.ndarray:
    matrix = kwh.reshape(-1, kwh.shape[2])
    return np.linalg.svd(matrix - matrix.mean(axis=0), full_matrices=False, compute_uv=False)


def _slope(points: list[tuple[int, float]]) -> float | None:
    """Least-squares slope of log(seconds) on log(meter-days); None with fewer than two sizes."""
    if len({x for x, _ in points}) < 2:
        return None
    xs = np.log([x for x, _ in points])
    ys = np.log([y for _, y in points])
    return float(np.polyfit(xs, ys, 1)[0])


def run(config: BenchConfig) -> list[Comparison | Figures]:
    from protocols.analytics import gmm, loadgen, rpca

    sizes = QUICK_SIZES if config.quick else FULL_SIZES
    results: list[Comparison | Figures] = []
    medians: dict[str, list[tuple[int, float]]] = {"gmm": [], "rpca": []}
    spreads: dict[str, list[dict[str, float]]] = {"gmm": [], "rpca": []}
    baseline_name = "numpy thin SVD of the centred meter-day x slot matrix (one PCA pass)"
    for meters, days in sizes:
        config.progress(f"analytics: generating {meters} meters x {days} days")
        data = loadgen.generate(meters, days, interval_minutes=30, seed=SEED)
        if isinstance(data, tuple):
            data = data[0]
        meter_days = meters * days
        repeats = min(config.repeats, 3) if meter_days > LARGE_METER_DAYS else config.repeats
        note = (f"{repeats} repeats of one call each (capped at 3 for this size)" if meter_days > LARGE_METER_DAYS
                else f"{repeats} repeats, calls per repeat calibrated")
        details = {"meters": meters, "days": days, "meter_days": meter_days, "slots": data.slots}
        cases = (("gmm", "GMM fit and score", lambda: gmm.gmm_scores(data, gmm.GmmConfig())),
                 ("rpca", "RPCA (principal component pursuit) and score",
                  lambda: rpca.rpca_scores(data, rpca.RpcaConfig())))
        for key, what, fn in cases:
            config.progress(f"analytics: {what}, {meters} meters x {days} days")
            result = compare(f"analytics: {what}, {meters} meters x {days} days", fn,
                             lambda: _svd_pass(data.kwh), baseline_name=baseline_name, repeats=repeats,
                             number=1 if meter_days > LARGE_METER_DAYS else None, min_time=config.min_time,
                             unit="data set", setup_note=note, details=details)
            results.append(result)
            medians[key].append((meter_days, result.ours.median))
            spreads[key].append({"median": result.ours.median, "min": result.ours.min, "max": result.ours.max})
    rows = []
    for index, (meters, days) in enumerate(sizes):
        rows.append((f"{meters} x {days}", f"{meters * days:,}", f"{medians['gmm'][index][1]:.3g}",
                     f"{medians['rpca'][index][1]:.3g}"))
    slopes = {key: _slope(points) for key, points in medians.items()}
    text = "\n".join(format_columns(("meters x days", "meter-days", "GMM s (median)", "RPCA s (median)"), rows))
    text += "\n" + ", ".join(f"{key} time ~ meter-days^{slope:.2f}" for key, slope in slopes.items()
                             if slope is not None and math.isfinite(slope)) + "\n"
    files: dict[str, str] = {}
    pyplot = pyplot_or_none(config, "analytics")
    if pyplot is not None:
        figure, axis = pyplot.subplots(figsize=(6, 4))
        for key, label in (("gmm", "GMM fit and score"), ("rpca", "RPCA and score")):
            order = sorted(range(len(sizes)), key=lambda i: medians[key][i][0])
            plot_spread(axis, [medians[key][i][0] for i in order], [spreads[key][i] for i in order],
                        marker="o", label=label)
        axis.set(xscale="log", yscale="log", xlabel="meter-days (30-minute readings)", ylabel="seconds",
                 title="anomaly detectors against data size")
        axis.legend()
        files["plot"] = save_plot(config, pyplot, figure, "analytics_detectors.png")
    results.append(Figures("analytics: detector time against data size",
                           {"sizes": [{"meters": m, "days": d} for m, d in sizes],
                            "median_seconds": {k: [s for _, s in v] for k, v in medians.items()},
                            "growth_exponent": slopes}, text, files))
    return results


BENCHMARK = Benchmark(
    name="analytics",
    description="GMM and RPCA anomaly detectors: seconds against meters x days, against one SVD pass",
    run=run,
)
