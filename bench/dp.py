"""Distributed DP noise (specs/dp.md sections 4.5, 6): accuracy against N and sampling cost.

- ``noise``: for each mechanism (Skellam shares, [SCRCS11] shares), level and N from 10 to
  10^6 at gamma = 1/2, the standard deviation of the sum of N shares (one release) measured by
  simulation, with a 95 % confidence interval (chi-square on the sample variance), divided by
  the central mechanism's: central Skellam(mu) for Skellam (same epsilon and delta per
  household-day), one discrete Laplace of the same scale for [SCRCS11] (same epsilon per
  release).  The main figure draws the aggregate noise directly, ``TRIALS`` times: the sum of
  N independent Poisson(lam) is Poisson(N lam), drawn with the same exact sampler; for
  [SCRCS11] the number of noisy meters is drawn Binomial(N, beta) (numpy) and each noise with
  the real discrete-Laplace sampler.  Up to ``SHARE_LIMIT`` meters a cross-check (``shares``)
  adds N real shares (``clamped_noise_share``) per trial, up to ``SHARE_BUDGET`` shares per point.
- ``error``: the expected relative error of a neighbourhood's daily sum (24 hourly releases,
  Delta = 4095 Wh, 10 kWh per household-day) for N = 50, 500, 5,000, 50,000 per level, in
  closed form (``accounting.daily_error``) and simulated (the day's noise is Skellam(24 N lam)).
- cost: one share per reading, Skellam against [SCRCS11] at the same level and N (``COST_CASES``; the ratio is
  scrcs11 time / Skellam time; the issue's target, Skellam at most 2x, is a ratio of at least 0.5).
- a plot of the daily sum's relative error against N per level and mechanism.
"""

from __future__ import annotations

import functools
import math
from fractions import Fraction
from collections.abc import Sequence
from typing import Any

import numpy as np
from scipy import stats

from protocols.primitives.drbg import HmacDrbg
from protocols.privacy import accounting, dp, skellam
from protocols.privacy.dp import Mechanism, NoiseShareConfig, PrivacyLevel
from protocols.system.benchmark import (BenchConfig, Benchmark, Comparison, Figures, compare, format_columns,
                                        pyplot_or_none, save_plot)

GAMMA = Fraction(1, 2)
DELTA = Fraction(1, 10**6)
SENSITIVITY = 4095
RELEASES = 24
LEVELS = (PrivacyLevel.LOW, PrivacyLevel.MEDIUM, PrivacyLevel.HIGH)
SIZES = (10, 100, 1000, 10**4, 10**5, 10**6)
ERROR_SIZES = (50, 500, 5000, 50000)
SHARE_LIMIT = 100
"""Largest N with a share-level cross-check: at N = 1000 the budget affords only 100 sums, too
few to say anything (the sampler's per-share variance is checked in tests/test_dp_skellam.py)."""
TRIALS = {Mechanism.SKELLAM: 20_000, Mechanism.SCRCS11: 1000}
"""Trials of the main figure per point (``--quick``: 200); [SCRCS11] draws about 28 discrete
Laplace noises a trial, so it gets fewer (it is the comparison, not the target)."""
SHARE_BUDGET = 100_000
"""Shares drawn per point by the cross-check: N x trials, at most ``SHARE_TRIALS`` trials
(``--quick``: 2,000 shares)."""
SHARE_TRIALS = 2000


def _config(mechanism: Mechanism, level: PrivacyLevel, n: int) -> NoiseShareConfig:
    return NoiseShareConfig(level, SENSITIVITY, n, GAMMA, DELTA, mechanism, RELEASES)


def _central_sd(config: NoiseShareConfig) -> float:
    if config.mechanism is Mechanism.SKELLAM:
        return math.sqrt(2 * config.mu)
    return math.sqrt(dp.single_noise_variance(config))


def _sum_of_shares(config: NoiseShareConfig, n: int, rng: HmacDrbg) -> int:
    return sum(dp.clamped_noise_share(config, rng) for _ in range(n))


def _aggregate(config: NoiseShareConfig, n: int, rng: HmacDrbg, np_rng: np.random.Generator,
               sampler: skellam.PoissonSampler | None) -> int:
    """The sum of n unclamped shares drawn as one variable: Skellam(n lam) for Skellam shares
    (``sampler`` is Poisson(n lam)), Binomial(n, beta) full noises for [SCRCS11]."""
    if sampler is not None:
        return sampler.skellam(rng)
    noisy = int(np_rng.binomial(n, float(config.beta)))
    bound = dp.clamp_bound(config)
    return sum(max(-bound, min(bound, dp.discrete_laplace(config.scale, rng))) for _ in range(noisy))


def _sd_interval(values: list[int]) -> tuple[float, float, float]:
    m = len(values)
    sd = float(np.std(values, ddof=1))
    low = sd * math.sqrt((m - 1) / stats.chi2.ppf(0.975, m - 1))
    high = sd * math.sqrt((m - 1) / stats.chi2.ppf(0.025, m - 1))
    return sd, low, high


def _ratio_fields(sums: list[int], central: float) -> dict[str, Any]:
    sd, low, high = _sd_interval(sums)
    return {"sd_ratio_to_central": sd / central, "ci95": [low / central, high / central],
            "ci95_low": low / central, "ci95_high": high / central, "trials": len(sums)}


def _noise_rows(config: BenchConfig) -> list[dict[str, Any]]:
    limit = SHARE_LIMIT
    budget = 2_000 if config.quick else SHARE_BUDGET
    rows = []
    for mechanism in (Mechanism.SKELLAM, Mechanism.SCRCS11):
        trials = 200 if config.quick else TRIALS[mechanism]
        for level in LEVELS:
            for n in SIZES:
                cfg = _config(mechanism, level, n)
                config.progress(f"dp: {mechanism.value} {level.value} N={n}")
                rng = HmacDrbg.from_seed(f"usapp-bench/dp/{mechanism.value}/{level.value}/{n}")
                np_rng = np.random.default_rng(n)
                sampler = (skellam.PoissonSampler.of(cfg.share_mean * n) if mechanism is Mechanism.SKELLAM
                           else None)
                central = _central_sd(cfg)
                sums = [_aggregate(cfg, n, rng, np_rng, sampler) for _ in range(trials)]
                row = {"mechanism": mechanism.value, "level": level.value, "gamma": str(GAMMA), "n": n,
                       **_ratio_fields(sums, central),
                       "closed_form": math.sqrt(dp.expected_noise_variance(cfg)) / central,
                       "simulated": "aggregate drawn as one variable"}
                if n <= limit:
                    share_trials = min(SHARE_TRIALS, max(100, budget // n))
                    share_sums = [_sum_of_shares(cfg, n, rng) for _ in range(share_trials)]
                    row["shares"] = _ratio_fields(share_sums, central)
                row["meets_1_5"] = row["sd_ratio_to_central"] <= 1.5
                row["ci_below_1_5"] = row["ci95_high"] <= 1.5
                rows.append(row)
    return rows


def _error_rows(config: BenchConfig) -> list[dict[str, Any]]:
    trials = 200 if config.quick else 1000
    rows = []
    for level in LEVELS:
        for n in ERROR_SIZES:
            cfg = _config(Mechanism.SKELLAM, level, n)
            closed = accounting.daily_error(cfg)
            rng = HmacDrbg.from_seed(f"usapp-bench/dp/daily/{level.value}/{n}")
            sampler = skellam.PoissonSampler.of(cfg.share_mean * n * RELEASES)
            noise = [sampler.skellam(rng) for _ in range(trials)]
            simulated = float(np.mean(np.abs(noise))) / (n * accounting.HOUSEHOLD_DAY_WH)
            rows.append({"level": level.value, "epsilon_day": float(dp.DAY_EPSILON[level] or 0), "n": n, "mu": cfg.mu,
                         "relative_error": closed.relative, "simulated_relative_error": simulated,
                         "sd_wh": closed.sd, "trials": trials})
    return rows


COST_CASES = ((PrivacyLevel.MEDIUM, 10), (PrivacyLevel.MEDIUM, 1000), (PrivacyLevel.MEDIUM, 10**6),
              (PrivacyLevel.LOW, 10**6))
"""(level, N) of the cost comparison: lam from 8.3e8 down to 131, the smallest lam of the issue's
range (N <= 10^6, every level)."""


def _cost(config: BenchConfig) -> list[Comparison]:
    results = []
    rng = HmacDrbg.from_seed("usapp-bench/dp/cost")
    for level, n in COST_CASES:
        ours, theirs = _config(Mechanism.SKELLAM, level, n), _config(Mechanism.SCRCS11, level, n)
        config.progress(f"dp: cost per share, {level.value}, N={n}")
        results.append(compare(
            f"noise share per reading, {level.value}, N = {n}", functools.partial(dp.clamped_noise_share, ours, rng),
            functools.partial(dp.clamped_noise_share, theirs, rng), baseline_name="scrcs11 share (current sampler)",
            repeats=config.repeats, target=0.5, unit="share", min_time=config.min_time,
            setup_note=(f"ratio = scrcs11 time / Skellam time, target 0.5 = Skellam at most 2x; Skellam lam = "
                        f"{float(ours.share_mean):.4g}; scrcs11 beta = {float(theirs.beta):.4g}"),
            details={"lam": float(ours.share_mean), "beta": float(theirs.beta)}))
    return results


def plot(config: BenchConfig, noise: list[dict[str, Any]],
         error: Sequence[dict[str, Any]] = ()) -> dict[str, str]:
    """``dp.png`` in the results directory (``config.results_dir``): the daily sum's relative
    error against N for every level and mechanism (closed form, with the simulated points of
    ``error`` as markers), and the measured sd ratios of ``noise`` with their intervals; {}
    without matplotlib."""
    pyplot = pyplot_or_none(config, "dp")
    if pyplot is None:
        return {}
    figure, (left, right) = pyplot.subplots(1, 2, figsize=(11, 4))
    sizes = np.logspace(1, 6, 26)
    for mechanism in (Mechanism.SKELLAM, Mechanism.SCRCS11):
        for level in LEVELS:
            errors = [accounting.daily_error(_config(mechanism, level, int(n))).relative for n in sizes]
            style = "-" if mechanism is Mechanism.SKELLAM else "--"
            day_eps = (float(dp.DAY_EPSILON[level]) if mechanism is Mechanism.SKELLAM  # type: ignore[arg-type]
                       else RELEASES * float(level.epsilon))  # type: ignore[arg-type]
            line, = left.plot(sizes, errors, style, label=f"{mechanism.value} {level.value} (eps/day {day_eps:g})")
            simulated = [r for r in error if r["level"] == level.value and mechanism is Mechanism.SKELLAM]
            if simulated:
                left.scatter([r["n"] for r in simulated], [r["simulated_relative_error"] for r in simulated],
                             marker="x", color=line.get_color(), zorder=3)
            rows = [r for r in noise if r["mechanism"] == mechanism.value and r["level"] == level.value]
            right.errorbar([r["n"] for r in rows], [r["sd_ratio_to_central"] for r in rows],
                           yerr=[[r["sd_ratio_to_central"] - r["ci95"][0] for r in rows],
                                 [r["ci95"][1] - r["sd_ratio_to_central"] for r in rows]],
                           fmt="o" + style, label=f"{mechanism.value} {level.value}", capsize=2)
    left.set(xscale="log", yscale="log", xlabel="meters N", ylabel="E|noise| / daily sum",
             title="daily sum, 24 releases, 10 kWh per household")
    right.axhline(1.5, color="grey", lw=0.8)
    right.set(xscale="log", yscale="log", xlabel="meters N", ylabel="sd / central sd",
              title="one release, gamma = 1/2 (95 % CI)")
    left.legend(fontsize=6)
    right.legend(fontsize=6)
    return {"plot": save_plot(config, pyplot, figure, "dp.png")}


def run(config: BenchConfig) -> list[Comparison | Figures]:
    noise = _noise_rows(config)
    error = _error_rows(config)
    results: list[Comparison | Figures] = list(_cost(config))
    noise_text = "\n".join(format_columns(
        ("mechanism", "level", "N", "sd / central (95% CI)", "trials", "closed form",
         "every share drawn (95% CI, trials)"),
        [(r["mechanism"], r["level"], str(r["n"]),
          f"{r['sd_ratio_to_central']:.3f} ({r['ci95_low']:.3f}-{r['ci95_high']:.3f})", str(r["trials"]),
          f"{r['closed_form']:.3f}",
          (f"{r['shares']['sd_ratio_to_central']:.3f} ({r['shares']['ci95_low']:.3f}-"
           f"{r['shares']['ci95_high']:.3f}, {r['shares']['trials']})" if "shares" in r else "-"))
         for r in noise])) + "\n"
    error_text = "\n".join(format_columns(
        ("level", "eps/day", "N", "mu", "relative error (closed form)", "simulated"),
        [(r["level"], f"{r['epsilon_day']:g}", str(r["n"]), str(r["mu"]), f"{100 * r['relative_error']:.3g} %",
          f"{100 * r['simulated_relative_error']:.3g} %") for r in error])) + "\n"
    files = plot(config, noise, error)
    results.append(Figures("dp: aggregate noise sd against the central mechanism, gamma = 1/2",
                           {"noise": noise}, noise_text, files))
    results.append(Figures("dp: expected relative error of a neighbourhood's daily sum (Skellam)",
                           {"error": error}, error_text))
    return results


BENCHMARK = Benchmark(
    name="dp",
    description="distributed DP noise: sd of the aggregate against the central mechanism for N 10..10^6, "
                "daily-sum error per level, and Skellam share cost against the scrcs11 share",
    run=run,
)
