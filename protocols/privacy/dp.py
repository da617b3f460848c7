"""Exact differential-privacy noise for aggregation (specs/dp.md).

Samplers (specs/dp.md section 3), after C. L. Canonne, G. Kamath, T. Steinke,
"The Discrete Gaussian for Differential Privacy", NeurIPS 2020 [CKS20]:

* :func:`bernoulli` - Bernoulli(p) for a rational p (section 3.2);
* :func:`bernoulli_exp` - Bernoulli(exp(-gamma)) for a rational gamma >= 0,
  [CKS20] Algorithm 1 (section 3.3);
* :func:`discrete_laplace` - the discrete Laplace distribution on the
  integers, P(X = x) proportional to exp(-|x| / scale), [CKS20] Algorithm 2
  (section 3.4).

No floating-point number enters a sampler: every probability is a
:class:`fractions.Fraction` and every random value an integer drawn with
:func:`protocols.primitives.rand.random_below` from the injected ``rng``, so a
seeded HMAC_DRBG reproduces every sample (specs/dp.md section 7).

Distributed noise (sections 4-6), after E. Shi, T.-H. H. Chan, E. Rieffel,
R. Chow, D. Song, "Privacy-Preserving Aggregation of Time-Series Data", NDSS
2011 [SCRCS11]: each of N meters adds, with probability beta, one full
discrete-Laplace noise of scale sensitivity / epsilon, so the aggregate
carries at least one full noise except with probability at most delta.

Distributed Skellam noise (section 4.5), after N. Agarwal, P. Kairouz,
Z. Liu, "The Skellam Mechanism for Differentially Private Federated
Learning", NeurIPS 2021 [AKL21]: each meter adds Poisson(lam) -
Poisson(lam), lam = mu / (gamma N), so that any gamma N honest meters' shares
sum to exactly the central Skellam(mu) noise (:mod:`.skellam`), with mu
calibrated per household-day by :mod:`.accounting`.  ``NoiseShareConfig``'s
``mechanism`` chooses; its default stays [SCRCS11].

The accuracy figures (section 6) are floats: they are reported, never sampled.
"""

from __future__ import annotations

import enum
import functools
import math
from dataclasses import dataclass
from decimal import Decimal, localcontext
from fractions import Fraction
from types import MappingProxyType

from protocols.errors import ParameterError
from protocols.primitives.rand import RandomSource, random_below
from protocols.privacy.skellam import PoissonSampler

BETA_DENOMINATOR = 1 << 32
"""Section 4.3: beta is a multiple of 1/2^32, rounded up."""

CLAMP_FACTOR = 64
"""Section 5: shares are clamped to [-B, B] with B = ceil(64 * scale)."""

MAX_DELTA_BITS = 1024
"""Section 4.2: delta's numerator and denominator have at most 1024 bits."""

MAX_SENSITIVITY = 1 << 48
"""Section 4.2, limits: the largest sensitivity Delta.  It keeps scale = Delta /
epsilon below 2^52, where the reported figures of sections 5 and 6 (floats)
are finite and 1 - exp(-1/scale) is not 0."""

MAX_PARTICIPANTS = 1 << 32
"""Section 4.2, limits: the largest number of meters N (a float holds beta * N exactly)."""

MAX_FRACTION_BITS = MAX_DELTA_BITS
"""Section 4.2, limits: honest_fraction's numerator and denominator have at most 1024 bits."""

MAX_RATIONAL_BITS = 4096
"""Section 3.1, limits: a sampler's rational input (p, gamma, scale) has a
numerator and denominator of at most 4096 bits, checked before any draw."""

_LN_DIGITS = (50, 100, 200, 400, 800)
"""Section 4.3: decimal precisions tried, in order, to pin ceil(2^32 L / h)."""

_FLOAT_REFUSED = (
    "a float has already been rounded to a binary fraction, so the value the "
    "sampler would use differs silently from the one intended; pass a "
    "fractions.Fraction or an int (specs/dp.md section 3.1)"
)


# -- exact rational inputs (section 3.1) ------------------------------------


def _rational(value: object, what: str) -> Fraction:
    """A Fraction or an int (not a bool) as a Fraction; floats are refused."""
    if isinstance(value, bool):
        raise ParameterError(f"{what} must be a Fraction or int, not bool")
    if isinstance(value, Fraction):
        result = value
    elif isinstance(value, int):
        result = Fraction(value)
    elif isinstance(value, float):
        raise ParameterError(f"{what} must not be a float: {_FLOAT_REFUSED}")
    else:
        raise ParameterError(f"{what} must be a Fraction or int, not {type(value).__name__}")
    if max(abs(result.numerator).bit_length(), result.denominator.bit_length()) > MAX_RATIONAL_BITS:
        raise ParameterError(f"{what}'s numerator and denominator must have at most {MAX_RATIONAL_BITS} bits")
    return result


def _count(value: object, what: str, maximum: int) -> int:
    """An int in [1, maximum] (not a bool)."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise ParameterError(f"{what} must be an int, not {type(value).__name__}")
    if not 1 <= value <= maximum:
        raise ParameterError(f"{what} must be in [1, {maximum}]")
    return value


def _ceil(x: Fraction) -> int:
    return -((-x.numerator) // x.denominator)


# -- samplers (section 3) ----------------------------------------------------


def _bernoulli(p: Fraction, rng: RandomSource | None) -> bool:
    """Bernoulli(n/d), n/d in lowest terms: RandomBelow(d) < n (section 3.2)."""
    return random_below(rng, p.denominator) < p.numerator


def bernoulli(p: Fraction | int, rng: RandomSource | None = None) -> bool:
    """True with probability exactly p, 0 <= p <= 1 (specs/dp.md section 3.2).

    With p = n/d in lowest terms, draws x = RandomBelow(rng, d) and returns
    x < n ([CKS20], as described after Algorithm 1).  p = 0 and p = 1 (d = 1) draw nothing.
    """
    p = _rational(p, "p")
    if not 0 <= p <= 1:
        raise ParameterError("p must be in [0, 1]")
    return _bernoulli(p, rng)


def _bernoulli_exp_unit(gamma: Fraction, rng: RandomSource | None) -> bool:
    """[CKS20] Algorithm 1 for gamma in [0, 1] (von Neumann): draw
    A_k = Bernoulli(gamma / k) for k = 1, 2, ... until one is 0 at k = K;
    return K odd (section 3.3, ExpUnit)."""
    k = 1
    while _bernoulli(gamma / k, rng):
        k += 1
    return k % 2 == 1


def bernoulli_exp(gamma: Fraction | int, rng: RandomSource | None = None) -> bool:
    """True with probability exactly exp(-gamma), gamma >= 0 rational
    (specs/dp.md section 3.3; [CKS20] Algorithm 1 and the extension after it).

    For gamma > 1: floor(gamma) draws of Bernoulli(exp(-1)), stopping at the
    first False, then one of Bernoulli(exp(-(gamma - floor(gamma)))).
    """
    gamma = _rational(gamma, "gamma")
    if gamma < 0:
        raise ParameterError("gamma must be >= 0")
    return _bernoulli_exp(gamma, rng)


def _bernoulli_exp(gamma: Fraction, rng: RandomSource | None) -> bool:
    whole = gamma.numerator // gamma.denominator
    for _ in range(whole):
        if not _bernoulli_exp_unit(Fraction(1), rng):
            return False
    return _bernoulli_exp_unit(gamma - whole, rng)


def _check_scale(scale: object) -> Fraction:
    scale = _rational(scale, "scale")
    if scale <= 0:
        raise ParameterError("scale must be > 0")
    return scale


def discrete_laplace(scale: Fraction | int, rng: RandomSource | None = None) -> int:
    """One sample X with P(X = x) = (1 - a)/(1 + a) * a^|x|, a = exp(-1/scale)
    (specs/dp.md section 3.4; [CKS20] Algorithm 2 with scale = t/s in lowest terms).

    ``scale`` is a positive Fraction or int; a float is refused
    (``ParameterError``) because it hides rounding (section 3.1).
    """
    scale = _check_scale(scale)
    return _discrete_laplace(scale, rng)


def _discrete_laplace(scale: Fraction, rng: RandomSource | None) -> int:
    t, s = scale.numerator, scale.denominator
    half = Fraction(1, 2)
    while True:
        u = random_below(rng, t)
        if not _bernoulli_exp(Fraction(u, t), rng):
            continue
        v = 0
        while _bernoulli_exp_unit(Fraction(1), rng):
            v += 1
        y = (u + t * v) // s
        negative = _bernoulli(half, rng)
        if negative and y == 0:
            continue
        return -y if negative else y


# -- privacy levels (section 4.1) --------------------------------------------


class Mechanism(enum.Enum):
    """How the meters share the noise (specs/dp.md section 4): [SCRCS11]'s
    sparse full noises, or exact Skellam shares [AKL21]."""

    SCRCS11 = "scrcs11"
    SKELLAM = "skellam"


MAX_RELEASES = 1 << 16
"""Section 4.5, limits: the most releases one household-day enters (slots per day)."""


class PrivacyLevel(enum.Enum):
    """This project's named privacy levels (specs/dp.md section 4.1)."""

    NONE = "none"
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"

    @property
    def epsilon(self) -> Fraction | None:
        """The epsilon of the level; None for NONE (no noise)."""
        return LEVEL_EPSILON[self]


LEVEL_EPSILON = MappingProxyType(
    {
        PrivacyLevel.NONE: None,
        PrivacyLevel.LOW: Fraction(1),
        PrivacyLevel.MEDIUM: Fraction(1, 2),
        PrivacyLevel.HIGH: Fraction(1, 10),
    }
)
"""Section 4.1, the levels table ([SCRCS11] shares: epsilon per release)."""

DAY_EPSILON = MappingProxyType(
    {
        PrivacyLevel.NONE: None,
        PrivacyLevel.LOW: Fraction(10),
        PrivacyLevel.MEDIUM: Fraction(1),
        PrivacyLevel.HIGH: Fraction(1, 10),
    }
)
"""Section 4.5.3: epsilon per household-day of the Skellam levels."""


# -- distributed noise shares (sections 4 and 5) -----------------------------


def _ln_bounds(delta: Fraction, digits: int) -> tuple[Fraction, Fraction]:
    """Rational bounds low <= ln(1/delta) <= high (section 4.3).

    ln(d) and ln(n) (delta = n/d) are computed with ``decimal`` at ``digits``
    significant digits, each correctly rounded (error at most half a unit in
    the last place, 0.5 * 10^(1 - digits) relative); the bounds allow 20 times
    that.  The subtraction is exact (Fractions).
    """
    with localcontext() as ctx:
        ctx.prec = digits
        ln_d = Fraction(Decimal(delta.denominator).ln())
        ln_n = Fraction(Decimal(delta.numerator).ln())
    err = (abs(ln_d) + abs(ln_n)) * Fraction(1, 10 ** (digits - 2))
    middle = ln_d - ln_n
    return middle - err, middle + err


def smallest_beta(delta: Fraction, honest: Fraction) -> Fraction:
    """The smallest k / 2^32 with exp(-(k / 2^32) * honest) <= delta, clamped
    to 1 (section 4.3); ``honest`` = gamma * N > 0, 0 < delta < 1.

    k is ceil(2^32 ln(1/delta) / honest).  It is computed from rational
    bounds on ln(1/delta) at increasing decimal precision until the bounds
    give the same k; ln(1/delta) is irrational (Lindemann), so they do.  If
    800 digits do not settle it, the upper bound's k is used (never too small).
    """
    factor = BETA_DENOMINATOR / honest
    for digits in _LN_DIGITS:
        low, high = _ln_bounds(delta, digits)
        k_low, k_high = _ceil(low * factor), _ceil(high * factor)
        if k_low == k_high:
            break
    return min(Fraction(1), Fraction(k_high, BETA_DENOMINATOR))


@dataclass(frozen=True)
class NoiseShareConfig:
    """Parameters of the distributed noise of specs/dp.md section 4.2.

    ``sensitivity`` (Delta) is one household's largest contribution to the
    aggregate, in the aggregate's integer unit; ``participants`` is N;
    ``honest_fraction`` (gamma) the fraction of the N that is assumed to
    follow the protocol and keep its coins secret; ``delta`` the target
    probability that the aggregate carries no full noise.
    """

    level: PrivacyLevel
    sensitivity: int
    participants: int
    honest_fraction: Fraction
    delta: Fraction
    mechanism: Mechanism = Mechanism.SCRCS11
    releases: int = 1
    """Section 4.5: releases per household-day (the slots of a day); the
    Skellam noise is calibrated so that all of them together meet the level's
    per-household-day budget.  [SCRCS11] shares ignore it (epsilon per release)."""

    def __post_init__(self) -> None:
        if not isinstance(self.level, PrivacyLevel):
            raise ParameterError(f"level must be a PrivacyLevel, not {type(self.level).__name__}")
        if not isinstance(self.mechanism, Mechanism):
            raise ParameterError(f"mechanism must be a Mechanism, not {type(self.mechanism).__name__}")
        _count(self.releases, "releases", MAX_RELEASES)
        _count(self.sensitivity, "sensitivity", MAX_SENSITIVITY)
        _count(self.participants, "participants", MAX_PARTICIPANTS)
        gamma = _rational(self.honest_fraction, "honest_fraction")
        if not 0 < gamma <= 1:
            raise ParameterError("honest_fraction must be in (0, 1]")
        if gamma.denominator.bit_length() > MAX_FRACTION_BITS:
            raise ParameterError(f"honest_fraction's denominator must have at most {MAX_FRACTION_BITS} bits")
        delta = _rational(self.delta, "delta")
        if not 0 < delta < 1:
            raise ParameterError("delta must be in (0, 1)")
        if delta.denominator.bit_length() > MAX_DELTA_BITS:
            raise ParameterError(f"delta's denominator must have at most {MAX_DELTA_BITS} bits")
        object.__setattr__(self, "honest_fraction", gamma)
        object.__setattr__(self, "delta", delta)

    @property
    def epsilon(self) -> Fraction | None:
        """The level's epsilon (None for NONE): per release for [SCRCS11]
        (section 4.1), per household-day for Skellam (section 4.5)."""
        if self.mechanism is Mechanism.SKELLAM:
            return DAY_EPSILON[self.level]
        return self.level.epsilon

    @property
    def scale(self) -> Fraction:
        """Delta / epsilon, the scale of one full [SCRCS11] noise; 0 for NONE or Skellam."""
        epsilon = self.epsilon
        if epsilon is None or self.mechanism is Mechanism.SKELLAM:
            return Fraction(0)
        return self.sensitivity / epsilon

    @functools.cached_property
    def beta(self) -> Fraction:
        """Probability that one meter adds a full noise (section 4.3); 0 for NONE; 1 for Skellam."""
        if self.epsilon is None:
            return Fraction(0)
        if self.mechanism is Mechanism.SKELLAM:
            return Fraction(1)
        return smallest_beta(self.delta, self.honest_fraction * self.participants)

    @functools.cached_property
    def mu(self) -> int:
        """Section 4.5: the central Skellam parameter (Poisson(mu) - Poisson(mu)),
        the smallest integer meeting the level's budget; 0 for NONE or [SCRCS11]."""
        if self.epsilon is None or self.mechanism is not Mechanism.SKELLAM:
            return 0
        from protocols.privacy.accounting import calibrate_mu  # accounting imports this module
        return calibrate_mu(self.sensitivity, self.releases, float(self.epsilon), float(self.delta))

    @functools.cached_property
    def share_mean(self) -> Fraction:
        """Section 4.5: lam = mu / (gamma N), each Poisson's mean in one share."""
        return Fraction(self.mu) / (self.honest_fraction * self.participants)

    @functools.cached_property
    def share_sampler(self) -> PoissonSampler:
        """Section 4.5: the Poisson(lam) sampler of the shares, prepared once
        (specs/dp.md section 3.5.5; it draws exactly what ``skellam.poisson`` draws)."""
        return PoissonSampler.of(self.share_mean)

    @functools.cached_property
    def _skellam_bound(self) -> int:
        """Section 5.3: B = 64 (isqrt(ceil(2 lam)) + 1) of a Skellam share."""
        return CLAMP_FACTOR * (math.isqrt(_ceil(2 * self.share_mean)) + 1)


def _check_config(config: object) -> NoiseShareConfig:
    if not isinstance(config, NoiseShareConfig):
        raise ParameterError(f"config must be a NoiseShareConfig, not {type(config).__name__}")
    return config


def noise_share(config: NoiseShareConfig, rng: RandomSource | None = None) -> int:
    """One meter's noise share: [SCRCS11] (section 4.2), with probability beta a
    discrete-Laplace sample of scale Delta/epsilon, else 0; Skellam (section
    4.5), Poisson(lam) - Poisson(lam).  NONE draws nothing."""
    config = _check_config(config)
    if config.epsilon is None:
        return 0
    if config.mechanism is Mechanism.SKELLAM:
        return config.share_sampler.skellam(rng)
    if not _bernoulli(config.beta, rng):
        return 0
    return _discrete_laplace(config.scale, rng)


def clamp_bound(config: NoiseShareConfig) -> int:
    """B = ceil(64 * scale) for [SCRCS11] (section 5); B = 64 (isqrt(ceil(2 lam)) + 1)
    for Skellam (section 5.3); 0 for NONE."""
    config = _check_config(config)
    if config.mechanism is Mechanism.SKELLAM:
        if config.epsilon is None:
            return 0
        return config._skellam_bound
    return _ceil(CLAMP_FACTOR * config.scale)


def clamped_noise_share(config: NoiseShareConfig, rng: RandomSource | None = None) -> int:
    """:func:`noise_share` clamped to [-B, B] (section 5); same draws."""
    if isinstance(config, NoiseShareConfig) and config.mechanism is Mechanism.SKELLAM \
            and config.level is not PrivacyLevel.NONE:
        bound = config._skellam_bound
        return max(-bound, min(bound, config.share_sampler.skellam(rng)))
    bound = clamp_bound(config)
    return max(-bound, min(bound, noise_share(config, rng)))


# -- reported figures (sections 5 and 6): floats, never used to sample -------


def _decay(scale: Fraction) -> tuple[float, float]:
    """(a, 1 - a) with a = exp(-1/scale), 1 - a without cancellation."""
    x = float(1 / scale)
    return math.exp(-x), -math.expm1(-x)


def clamp_tail_probability(config: NoiseShareConfig) -> float:
    """P(|X| > B) = 2 a^(B+1) / (1 + a) for one full noise X (section 5); for a
    Skellam share the Chernoff bound 2 exp(-tB + 2 lam (cosh t - 1)), t = 64 / B
    (section 5.3); 0.0 for NONE."""
    config = _check_config(config)
    if config.epsilon is None:
        return 0.0
    if config.mechanism is Mechanism.SKELLAM:
        bound = clamp_bound(config)
        t = CLAMP_FACTOR / bound
        return 2 * math.exp(-t * bound + 2 * float(config.share_mean) * (math.cosh(t) - 1))
    a, _ = _decay(config.scale)
    tail = math.exp(-float((clamp_bound(config) + 1) / config.scale))
    return 2 * tail / (1 + a)


def clamp_delta_cost(config: NoiseShareConfig) -> float:
    """What clamping adds to delta: (1 + e^epsilon) * beta * N * P(|X| > B) (section 5.2)."""
    config = _check_config(config)
    if config.epsilon is None:
        return 0.0
    noisy = float(config.beta * config.participants)
    return (1 + math.exp(float(config.epsilon))) * noisy * clamp_tail_probability(config)


def single_noise_variance(config: NoiseShareConfig) -> float:
    """Variance of one full noise, 2a / (1 - a)^2 with a = exp(-1/scale) (section 6);
    for Skellam the variance of one share, 2 lam (section 4.5); 0.0 for NONE."""
    config = _check_config(config)
    if config.epsilon is None:
        return 0.0
    if config.mechanism is Mechanism.SKELLAM:
        return float(2 * config.share_mean)
    a, one_minus_a = _decay(config.scale)
    return 2 * a / one_minus_a**2


def expected_noisy_participants(config: NoiseShareConfig) -> Fraction:
    """beta * N, the expected number of meters that add a full noise (section 6)."""
    config = _check_config(config)
    return config.beta * config.participants


def expected_noise_variance(config: NoiseShareConfig) -> float:
    """Variance of the sum of the N (unclamped) shares: beta * N * 2a / (1 - a)^2
    (section 6); for Skellam (beta = 1) N * 2 lam = 2 mu / gamma."""
    return float(expected_noisy_participants(config)) * single_noise_variance(config)


def accuracy_rows(
    sensitivity: int = 4000,
    participants: int = 1000,
    honest_fraction: Fraction = Fraction(1, 2),
    delta: Fraction = Fraction(1, 10**6),
) -> list[dict[str, object]]:
    """One row per privacy level: the figures of the accuracy table (section 6)."""
    rows: list[dict[str, object]] = []
    for level in PrivacyLevel:
        config = NoiseShareConfig(level, sensitivity, participants, honest_fraction, delta)
        total = expected_noise_variance(config)
        rows.append({
            "level": level.value,
            "epsilon": config.epsilon,
            "scale": config.scale,
            "clamp_bound": clamp_bound(config),
            "beta": config.beta,
            "noisy": float(expected_noisy_participants(config)),
            "single_sd": math.sqrt(single_noise_variance(config)),
            "total_sd": math.sqrt(total),
            "per_meter_sd": math.sqrt(total) / participants,
            "clamp_tail": clamp_tail_probability(config),
        })
    return rows


def accuracy_table_markdown(**parameters: object) -> str:
    """The accuracy table of specs/dp.md section 6 as Markdown (see there for the command)."""
    rows = accuracy_rows(**parameters)  # type: ignore[arg-type]
    lines = [
        "| level | epsilon | scale | B | beta | E[noisy meters] | sd of one noise "
        "| sd of the aggregate noise | sd per meter | P(\\|X\\| > B) |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        beta = r["beta"]
        if not isinstance(beta, Fraction):
            raise ParameterError("an accuracy row's beta is a Fraction")
        lines.append(
            f"| {r['level']} | {r['epsilon'] if r['epsilon'] is not None else '-'} | {r['scale']} "
            f"| {r['clamp_bound']} | {float(beta):.6f} | {r['noisy']:.2f} | {r['single_sd']:.1f} "
            f"| {r['total_sd']:.1f} | {r['per_meter_sd']:.3f} | {r['clamp_tail']:.2e} |"
        )
    return "\n".join(lines)
