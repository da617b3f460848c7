"""Accounting per household-day and month (specs/dp.md section 4.6), cross-checked
against OpenDP (a test dependency) to 1e-9 where OpenDP has the mechanism.

Cross-checked with OpenDP, for every level of both mechanisms:

- [SCRCS11] / central discrete Laplace: epsilon per release (OpenDP's
  ``make_laplace`` on integers, a discrete Laplace, mapped at Delta) and per
  household-day and month (``make_composition`` of T and 30 T of them);
- Skellam: the zCDP rho of its Gaussian term per household-day and month
  (``make_gaussian`` on integers, a discrete Gaussian of variance 2 mu,
  composed), and the zCDP-to-(epsilon, delta) conversion of that rho
  (``make_zCDP_to_approxDP`` then ``make_fix_delta``).

Not in OpenDP: the [AKL21] correction term of the Skellam RDP; it is checked
here against the exact Renyi divergence of two shifted Skellam pmfs instead.
"""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import opendp.prelude as odp
import pytest
from scipy import stats
from scipy.special import logsumexp

from protocols.errors import ParameterError
from protocols.privacy import accounting
from protocols.privacy.dp import Mechanism, NoiseShareConfig, PrivacyLevel

odp.enable_features("contrib")
INTS = (odp.atom_domain(T=int), odp.absolute_distance(T=int))
NOISY = [PrivacyLevel.LOW, PrivacyLevel.MEDIUM, PrivacyLevel.HIGH]
TOL = 1e-9
DELTA = Fraction(1, 10**6)
RELEASES = 24


def _close(ours: float, theirs: float) -> bool:
    return abs(ours - theirs) <= TOL * max(1.0, abs(theirs))


@pytest.mark.parametrize("level", NOISY)
def test_scrcs11_levels_equal_opendp_discrete_laplace(level):
    config = NoiseShareConfig(level, 4095, 500, Fraction(1, 2), DELTA, releases=RELEASES)
    acc = accounting.account(config)
    laplace = odp.m.make_laplace(*INTS, scale=float(config.scale))
    assert _close(acc.epsilon_release, laplace.map(4095))
    assert _close(acc.epsilon_day, odp.c.make_composition([laplace] * RELEASES).map(4095))
    month = odp.c.make_composition([laplace] * (RELEASES * accounting.DAYS_PER_MONTH)).map(4095)
    assert _close(acc.epsilon_month, month)
    assert acc.delta_day == pytest.approx(RELEASES * acc.delta_release, rel=1e-12)


@pytest.mark.parametrize("level", NOISY)
def test_skellam_gaussian_term_and_conversion_equal_opendp(level):
    config = NoiseShareConfig(level, 4095, 500, Fraction(1, 2), DELTA, Mechanism.SKELLAM, RELEASES)
    gaussian = odp.m.make_gaussian(*INTS, scale=math.sqrt(2 * config.mu))
    for count, delta in ((RELEASES, 1e-6), (RELEASES * accounting.DAYS_PER_MONTH, 30e-6)):
        composed = odp.c.make_composition([gaussian] * count)
        rho = count * accounting.gaussian_rho(config.mu, 4095)
        assert _close(rho, composed.map(4095))
        theirs = odp.c.make_fix_delta(odp.c.make_zCDP_to_approxDP(composed), delta).map(4095)[0]
        assert _close(accounting.zcdp_to_dp(rho, delta), theirs)


@pytest.mark.parametrize("level", NOISY)
def test_skellam_day_meets_the_level_and_exceeds_the_gaussian_term(level):
    config = NoiseShareConfig(level, 4095, 500, Fraction(1, 2), DELTA, Mechanism.SKELLAM, RELEASES)
    acc = accounting.account(config)
    gaussian_only = accounting.zcdp_to_dp(RELEASES * accounting.gaussian_rho(config.mu, 4095), 1e-6)
    assert gaussian_only < acc.epsilon_day <= float(config.epsilon)
    assert acc.epsilon_day < acc.epsilon_month
    assert acc.delta_month == pytest.approx(30 * acc.delta_day, rel=1e-9)


@pytest.mark.parametrize("mu,shift", [(30, 1), (60, 3), (200, 5), (500, 20)])
@pytest.mark.parametrize("alpha", [2.0, 5.0, 17.0])
def test_akl21_bound_covers_the_exact_renyi_divergence(mu, shift, alpha):
    """D_alpha(Sk(mu) || Sk(mu) + c) summed over the pmf (both directions are equal by symmetry)."""
    width = int(12 * math.sqrt(2 * mu)) + 60
    xs = np.arange(-width, width + 1)
    log_p = stats.skellam.logpmf(xs, mu, mu)
    log_q = stats.skellam.logpmf(xs - shift, mu, mu)
    exact = float(logsumexp(alpha * log_p + (1 - alpha) * log_q)) / (alpha - 1)
    bound = accounting.skellam_rdp(alpha, mu, shift)
    assert exact <= bound
    assert bound - exact < 0.5 * bound  # the bound is informative, not vacuous


def test_bad_accounting_inputs():
    with pytest.raises(ParameterError):
        accounting.skellam_rdp(1.0, 10, 1)
    with pytest.raises(ParameterError):
        accounting.rdp_to_dp(lambda a: a, 0.0)
    with pytest.raises(ParameterError):
        accounting.calibrate_mu(1, 1, 0.0, 1e-6)
    with pytest.raises(ParameterError):
        accounting.account("not a config")


def test_none_level_claims_nothing():
    acc = accounting.account(NoiseShareConfig(PrivacyLevel.NONE, 1, 10, Fraction(1, 2), DELTA, Mechanism.SKELLAM))
    assert acc.epsilon_day is None and acc.accountant == "none"
