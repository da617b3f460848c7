"""Privacy accounting per household-day and per month (specs/dp.md section 4.6).

The privacy unit is a household-day: everything one household's meter
reports in one day, that is, its readings in the ``releases`` slots of a
day, each entering one released neighbourhood sum with sensitivity Delta.

Accountants (stated per mechanism, section 4.6):

* [SCRCS11] shares: each release is (epsilon, delta + clamp cost)-DP
  (sections 4.4, 5.2); a day composes T releases by basic composition,
  (T epsilon, T delta'), and a month of D days (D T epsilon, D T delta').
* Skellam shares: the Renyi-DP bound of [AKL21] for Skellam(mu) with
  L1 = L2 = Delta per release, composed additively over T releases (and D T
  for a month), converted to (epsilon, delta) with the conversion of
  [CKS20] Proposition 12 (minimised over the order alpha); delta per
  household-day is the configuration's delta, per month D times it.

These are floats: reported and used to choose mu (an integer), never used
to sample.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

from protocols.errors import ParameterError
from protocols.privacy import dp

DAYS_PER_MONTH = 30
"""Section 4.6: a month is 30 household-days."""

_ALPHA_STEPS = 200
"""Ternary-search steps over log(alpha - 1) in :func:`rdp_to_dp`."""


# -- Renyi DP of one release -------------------------------------------------


def skellam_rdp(alpha: float, mu: float, sensitivity: float) -> float:
    """[AKL21] bound on the Renyi divergence of order alpha between Skellam(mu)
    and its shift by Delta (L1 = L2 = Delta), Skellam(mu) = Poisson(mu) -
    Poisson(mu), variance 2 mu (section 4.6):

        alpha Delta^2 / (4 mu) + min(((2 alpha - 1) Delta^2 + 6 Delta) / (16 mu^2), 3 Delta / (4 mu)).
    """
    if not alpha > 1 or not mu > 0 or not sensitivity > 0:
        raise ParameterError("skellam_rdp needs alpha > 1, mu > 0, sensitivity > 0")
    d = sensitivity
    correction = min(((2 * alpha - 1) * d * d + 6 * d) / (16 * mu * mu), 3 * d / (4 * mu))
    return alpha * d * d / (4 * mu) + correction


def gaussian_rho(mu: float, sensitivity: float) -> float:
    """rho = Delta^2 / (2 sigma^2) with sigma^2 = 2 mu: the zCDP of the Gaussian (or
    discrete Gaussian) of Skellam(mu)'s variance, the leading term of :func:`skellam_rdp`."""
    return sensitivity * sensitivity / (4 * mu)


def rdp_to_dp(rdp: Callable[[float], float], delta: float) -> float:
    """Smallest epsilon with (epsilon, delta)-DP from an RDP curve, by [CKS20]
    Proposition 12: epsilon = min over alpha > 1 of
    rdp(alpha) + (alpha ln(1 - 1/alpha) - ln(alpha - 1) - ln delta) / (alpha - 1).

    The minimum is found by ternary search over log(alpha - 1) in [-20, 40]
    (the objective is unimodal there for the curves used here)."""
    if not 0 < delta < 1:
        raise ParameterError("delta must be in (0, 1)")
    log_delta = math.log(delta)

    def objective(t: float) -> float:
        a = 1 + math.exp(t)
        return rdp(a) + (a * math.log1p(-1 / a) - math.log(a - 1) - log_delta) / (a - 1)

    low, high = -20.0, 40.0
    for _ in range(_ALPHA_STEPS):
        m1, m2 = low + (high - low) / 3, high - (high - low) / 3
        if objective(m1) <= objective(m2):
            high = m2
        else:
            low = m1
    return objective((low + high) / 2)


def zcdp_to_dp(rho: float, delta: float) -> float:
    """:func:`rdp_to_dp` of the zCDP curve alpha * rho."""
    return rdp_to_dp(lambda a: a * rho, delta)


def skellam_epsilon(mu: float, sensitivity: float, releases: int, delta: float) -> float:
    """Epsilon at ``delta`` of ``releases`` Skellam(mu) releases (RDP composed additively)."""
    return rdp_to_dp(lambda a: releases * skellam_rdp(a, mu, sensitivity), delta)


def calibrate_mu(sensitivity: int, releases: int, epsilon: float, delta: float) -> int:
    """The smallest integer mu >= 1 whose ``releases``-fold Skellam composition is
    (epsilon, delta)-DP by :func:`skellam_epsilon` (section 4.5.2)."""
    if not epsilon > 0 or not 0 < delta < 1:
        raise ParameterError("calibrate_mu needs epsilon > 0 and 0 < delta < 1")

    def ok(mu: int) -> bool:
        return skellam_epsilon(float(mu), sensitivity, releases, delta) <= epsilon

    high = 1
    while not ok(high):
        high *= 2
        if high > 1 << 80:
            raise ParameterError("no mu below 2^80 meets the budget")
    low = high // 2  # not ok (or 0)
    while high - low > 1:
        middle = (low + high) // 2
        if ok(middle):
            high = middle
        else:
            low = middle
    return high


# -- household-day and month --------------------------------------------------


@dataclass(frozen=True)
class Account:
    """Epsilon and delta of one household-day and one month (section 4.6)."""

    mechanism: str
    level: str
    accountant: str
    releases: int
    epsilon_release: float | None
    delta_release: float | None
    epsilon_day: float | None
    delta_day: float | None
    epsilon_month: float | None
    delta_month: float | None


def account(config: dp.NoiseShareConfig) -> Account:
    """The accounting of section 4.6 for ``config`` (None figures for NONE: no guarantee)."""
    if not isinstance(config, dp.NoiseShareConfig):
        raise ParameterError(f"config must be a NoiseShareConfig, not {type(config).__name__}")
    t = config.releases
    days = DAYS_PER_MONTH
    delta = float(config.delta)
    clamp = dp.clamp_delta_cost(config)
    if config.epsilon is None:
        return Account(config.mechanism.value, config.level.value, "none", t, None, None, None, None, None, None)
    if config.mechanism is dp.Mechanism.SKELLAM:
        mu, sens = float(config.mu), float(config.sensitivity)
        per_release = skellam_epsilon(mu, sens, 1, delta)
        day = skellam_epsilon(mu, sens, t, delta)
        month = skellam_epsilon(mu, sens, days * t, days * delta)
        return Account(config.mechanism.value, config.level.value,
                       "Renyi DP [AKL21] composed additively, converted by [CKS20] Prop. 12", t,
                       per_release, delta + clamp, day, delta + t * clamp, month, days * (delta + t * clamp))
    eps = float(config.epsilon)
    per = delta + clamp
    return Account(config.mechanism.value, config.level.value, "basic composition of (epsilon, delta)-DP", t,
                   eps, per, t * eps, t * per, days * t * eps, days * t * per)


def honest_epsilon(config: dp.NoiseShareConfig, honest: int) -> float:
    """Epsilon per household-day when only ``honest`` shares stay secret and reach the sum
    (section 4.5.4): the noise left is Skellam(honest * lam), composed over the day's releases."""
    if not isinstance(config, dp.NoiseShareConfig) or config.mechanism is not dp.Mechanism.SKELLAM:
        raise ParameterError("honest_epsilon needs a Skellam NoiseShareConfig")
    if isinstance(honest, bool) or not isinstance(honest, int) or honest < 1:
        raise ParameterError("honest must be an int >= 1 (with no honest share there is no privacy)")
    if config.epsilon is None:
        raise ParameterError("level NONE has no privacy to account")
    mu = float(config.share_mean * honest)
    return skellam_epsilon(mu, float(config.sensitivity), config.releases, float(config.delta))


# -- expected error of a neighbourhood's daily sum (section 6.2) ---------------

HOUSEHOLD_DAY_WH = 10_000
"""Section 6.2: the household-day consumption the error table divides by (10 kWh, an
assumption of this table, not a measured figure; pass another to :func:`daily_error`)."""


@dataclass(frozen=True)
class DailyError:
    """Noise of a neighbourhood's daily sum (all T releases of one day added up)."""

    sd: float
    mean_abs: float
    relative: float


def daily_error(config: dp.NoiseShareConfig, reporting: int | None = None,
                household_day_wh: float = HOUSEHOLD_DAY_WH) -> DailyError:
    """Closed form (section 6.2): with R reporting meters (default N), the daily sum's
    noise is Skellam(T R lam) for Skellam shares, sd sqrt(2 T R lam), and E|noise| =
    sd sqrt(2/pi) (its Gaussian limit; within 10^-3 relative for T R lam >= 100); for
    [SCRCS11] shares sd = sqrt(T beta R Var(X)) and the same Gaussian E|noise| (an
    approximation: the noise is a sum of about beta R Laplace noises).  ``relative`` is
    E|noise| / (R * household_day_wh)."""
    if not isinstance(config, dp.NoiseShareConfig):
        raise ParameterError(f"config must be a NoiseShareConfig, not {type(config).__name__}")
    r = config.participants if reporting is None else reporting
    if isinstance(r, bool) or not isinstance(r, int) or r < 1:
        raise ParameterError("reporting must be an int >= 1")
    if not household_day_wh > 0:
        raise ParameterError("household_day_wh must be > 0")
    if config.mechanism is dp.Mechanism.SKELLAM:
        variance = 2 * config.releases * r * float(config.share_mean)
    else:
        variance = config.releases * float(config.beta) * r * dp.single_noise_variance(config)
    sd = math.sqrt(variance)
    mean_abs = sd * math.sqrt(2 / math.pi)
    return DailyError(sd, mean_abs, mean_abs / (r * household_day_wh))
