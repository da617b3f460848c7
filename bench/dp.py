"""Distributed DP noise (specs/dp.md sections 4.5, 6): accuracy against N and sampling cost.

- ``noise``: for each mechanism (Skellam shares, [SCRCS11] shares), level and N from 10 to
  10^6 at gamma = 1/2, the standard deviation of the sum of N shares (one release) measured by
  simulation, with a 95 % confidence interval (chi-square on the sample variance), divided by
  the central mechanism's: central Skellam(mu) for Skellam (same epsilon and delta per
  household-day), one discrete Laplace of the same scale for [SCRCS11] (same epsilon per
  release).  Up to ``SHARE_LIMIT`` meters every trial adds N real shares
  (``clamped_noise_share``); above it a closed form stands in for the N draws: the sum of N
  Poisson(lam) is Poisson(N lam), drawn with the same exact sampler; for [SCRCS11] the
  number of noisy meters is drawn Binomial(N, beta) (numpy) and each noise with the real
  discrete-Laplace sampler.
- ``error``: the expected relative error of a neighbourhood's daily sum (24 hourly releases,
  Delta = 4095 Wh, 10 kWh per household-day) for N = 50, 500, 5,000, 50,000 per level, in
  closed form (``accounting.daily_error``) and simulated (the day's noise is Skellam(24 N lam)).
- cost: one share per reading, Skellam against [SCRCS11] at the same level and N (the ratio is
  scrcs11 time / Skellam time; the issue's target, Skellam at most 2x, is a ratio of at least 0.5).
- a plot of the daily sum's relative error against N per level and mechanism.
"""

from __future__ import annotations

import functools
import math
from fractions import Fraction
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
SHARE_LIMIT = 1000
"""Largest N whose trials draw every share (``--quick``: 100)."""


def _config(mechanism: Mechanism, level: PrivacyLevel, n: int) -> NoiseShareConfig:
    return NoiseShareConfig(level, SENSITIVITY, n, GAMMA, DELTA, mechanism, RELEASES)


def _central_sd(config: NoiseShareConfig) -> float:
    if config.mechanism is Mechanism.SKELLAM:
        return math.sqrt(2 * config.mu)
    return math.sqrt(dp.single_noise_variance(config))


def _sum_of_shares(config: NoiseShareConfig, n: int, rng: HmacDrbg, np_rng: np.random.Generator,
                   limit: int) -> int:
    if n <= limit:
        return sum(dp.clamped_noise_share(config, rng) for _ in range(n))
    if config.mechanism is Mechanism.SKELLAM:
        lam = config.share_mean * n
        return skellam.poisson(lam, rng) - skellam.poisson(lam, rng)
    noisy = int(np_rng.binomial(n, float(config.beta)))
    bound = dp.clamp_bound(config)
    return sum(max(-bound, min(bound, dp.discrete_laplace(config.scale, rng))) for _ in range(noisy))


def _sd_interval(values: list[int]) -> tuple[float, float, float]:
    m = len(values)
    sd = float(np.std(values, ddof=1))
    low = sd * math.sqrt((m - 1) / stats.chi2.ppf(0.975, m - 1))
    high = sd * math.sqrt((m - 1) / stats.chi2.ppf(0.025, m - 1))
    return sd, low, high


def _trials(config: BenchConfig, n: int, limit: int) -> int:
    """Trials per point: 2000 for closed-form sums; for share-level sums at most 10^5 shares
    per point (``--quick``: 100 trials everywhere)."""
    if config.quick:
        return 100
    return 2000 if n > limit else max(100, min(2000, 100_000 // n))


def _noise_rows(config: BenchConfig) -> list[dict[str, Any]]:
    limit = 100 if config.quick else SHARE_LIMIT
    rows = []
    for mechanism in (Mechanism.SKELLAM, Mechanism.SCRCS11):
        for level in LEVELS:
            for n in SIZES:
                cfg = _config(mechanism, level, n)
                config.progress(f"dp: {mechanism.value} {level.value} N={n}")
                rng = HmacDrbg.from_seed(f"usapp-bench/dp/{mechanism.value}/{level.value}/{n}")
                np_rng = np.random.default_rng(n)
                trials = _trials(config, n, limit)
                sums = [_sum_of_shares(cfg, n, rng, np_rng, limit) for _ in range(trials)]
                sd, low, high = _sd_interval(sums)
                central = _central_sd(cfg)
                closed = math.sqrt(dp.expected_noise_variance(cfg)) / central
                rows.append({"mechanism": mechanism.value, "level": level.value, "gamma": str(GAMMA), "n": n,
                             "sd_ratio_to_central": sd / central,
                             "ci95": [low / central, high / central], "closed_form": closed,
                             "trials": trials, "simulated": "shares" if n <= limit else "closed-form sum",
                             "meets_1_5": sd / central <= 1.5, "ci_below_1_5": high / central <= 1.5})
    return rows


def _error_rows(config: BenchConfig) -> list[dict[str, Any]]:
    trials = 200 if config.quick else 1000
    rows = []
    for level in LEVELS:
        for n in ERROR_SIZES:
            cfg = _config(Mechanism.SKELLAM, level, n)
            closed = accounting.daily_error(cfg)
            rng = HmacDrbg.from_seed(f"usapp-bench/dp/daily/{level.value}/{n}")
            lam = cfg.share_mean * n * RELEASES
            noise = [skellam.poisson(lam, rng) - skellam.poisson(lam, rng) for _ in range(trials)]
            simulated = float(np.mean(np.abs(noise))) / (n * accounting.HOUSEHOLD_DAY_WH)
            rows.append({"level": level.value, "epsilon_day": float(dp.DAY_EPSILON[level] or 0), "n": n, "mu": cfg.mu,
                         "relative_error": closed.relative, "simulated_relative_error": simulated,
                         "sd_wh": closed.sd, "trials": trials})
    return rows


def _cost(config: BenchConfig) -> list[Comparison]:
    results = []
    rng = HmacDrbg.from_seed("usapp-bench/dp/cost")
    for n in (10, 1000, 10**6):
        ours, theirs = _config(Mechanism.SKELLAM, PrivacyLevel.MEDIUM, n), _config(Mechanism.SCRCS11,
                                                                                   PrivacyLevel.MEDIUM, n)
        config.progress(f"dp: cost per share at N={n}")
        results.append(compare(
            f"noise share per reading, medium, N = {n}", functools.partial(dp.clamped_noise_share, ours, rng),
            functools.partial(dp.clamped_noise_share, theirs, rng), baseline_name="scrcs11 share (current sampler)",
            repeats=config.repeats, target=0.5, unit="share", min_time=config.min_time,
            setup_note=(f"ratio = scrcs11 time / Skellam time, target 0.5 = Skellam at most 2x; Skellam lam = "
                        f"{float(ours.share_mean):.4g}; scrcs11 beta = {float(theirs.beta):.4g}"),
            details={"lam": float(ours.share_mean), "beta": float(theirs.beta)}))
    return results


def _plot(config: BenchConfig, noise: list[dict[str, Any]]) -> dict[str, str]:
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
            left.plot(sizes, errors, style, label=f"{mechanism.value} {level.value} (eps/day {day_eps:g})")
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
        ("mechanism", "level", "N", "sd / central (95% CI)", "closed form", "simulated"),
        [(r["mechanism"], r["level"], str(r["n"]),
          f"{r['sd_ratio_to_central']:.3f} ({r['ci95'][0]:.3f}-{r['ci95'][1]:.3f})", f"{r['closed_form']:.3f}",
          r["simulated"]) for r in noise])) + "\n"
    error_text = "\n".join(format_columns(
        ("level", "eps/day", "N", "mu", "relative error (closed form)", "simulated"),
        [(r["level"], f"{r['epsilon_day']:g}", str(r["n"]), str(r["mu"]), f"{100 * r['relative_error']:.3g} %",
          f"{100 * r['simulated_relative_error']:.3g} %") for r in error])) + "\n"
    files = _plot(config, noise)
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
