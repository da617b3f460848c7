"""Exact Poisson and Skellam samplers for distributed noise (specs/dp.md section 3.5).

* :func:`bernoulli_bits` - Bernoulli(n/d) for a rational with a large
  denominator, comparing one lazily drawn uniform byte string with n/d
  (section 3.5.1); it draws about two bytes whatever the size of d;
* :func:`poisson` - Poisson(lam) for a rational lam >= 0 (section 3.5.2):
  lam < 16 as a sum of ceil(2 lam) Poisson(lam / ceil(2 lam)) draws, each by
  rejection from von Neumann's run length (the loop of [CKS20] Algorithm 1)
  with a rational acceptance probability; lam >= 16 by rejection from a
  uniform core of width 2w + 1 around the mode with halving tails, accepting
  k with the exact rational probability P(k) / P(mode) (times 2^v in a tail);
* :func:`skellam` - Poisson(lam) - Poisson(lam) (section 3.5.3).

Only integers, :class:`fractions.Fraction` and bytes from the injected rng are
used: no float enters a sampler.  The Skellam family is closed under sums
(Poisson(a) + Poisson(b) = Poisson(a + b)), which is why the honest meters'
shares sum to exactly the central Skellam noise (section 4.5).
"""

from __future__ import annotations

import math
from fractions import Fraction

from protocols.errors import ParameterError
from protocols.primitives.rand import RandomSource, random_below, resolve

LARGE_MEAN = 16
"""Section 3.5.2: Poisson(lam) with lam >= 16 uses the core-and-tails rejection."""

MAX_MEAN = Fraction(1 << 64)
"""Section 3.5.2, limits: the largest Poisson mean (about 1.8 * 10^19)."""

MAX_MEAN_BITS = 256
"""Section 3.5.2, limits: numerator and denominator of lam have at most 256 bits."""


def _mean(lam: object) -> Fraction:
    if isinstance(lam, bool) or not isinstance(lam, (int, Fraction)):
        if isinstance(lam, float):
            raise ParameterError("lam must not be a float: pass a fractions.Fraction or an int "
                                 "(specs/dp.md section 3.1)")
        raise ParameterError(f"lam must be a Fraction or int, not {type(lam).__name__}")
    lam = Fraction(lam)
    if lam < 0 or lam > MAX_MEAN:
        raise ParameterError("lam must be in [0, 2^64]")
    if max(lam.numerator.bit_length(), lam.denominator.bit_length()) > MAX_MEAN_BITS:
        raise ParameterError(f"lam's numerator and denominator must have at most {MAX_MEAN_BITS} bits")
    return lam


# -- section 3.5.1: Bernoulli(n/d) by lazy comparison -------------------------


def bernoulli_bits(numerator: int, denominator: int, rng: RandomSource | None = None) -> bool:
    """True with probability exactly n/d, 0 <= n <= d (specs/dp.md section 3.5.1).

    Draws one byte at a time, x_j = the first j bytes read big-endian (a
    uniform U in [0, 1) to j bytes), and stops at the first j where x_j
    differs from floor(256^j n / d): U < n/d iff x_j is the smaller.  If
    x_j * d = 256^j n exactly, U >= n/d and the result is False.  n = 0 and
    n = d draw nothing.
    """
    if isinstance(numerator, bool) or isinstance(denominator, bool) \
            or not isinstance(numerator, int) or not isinstance(denominator, int):
        raise ParameterError("bernoulli_bits takes int numerator and denominator")
    if denominator < 1 or not 0 <= numerator <= denominator:
        raise ParameterError("bernoulli_bits needs 0 <= n <= d, d >= 1")
    return _bernoulli_bits(numerator, denominator, rng)


def _bernoulli_bits(n: int, d: int, rng: RandomSource | None) -> bool:
    if n == 0:
        return False
    if n == d:
        return True
    source = resolve(rng)
    x = 0
    scaled = n  # 256^j * n
    while True:
        x = (x << 8) | source.random_bytes(1)[0]
        scaled <<= 8
        low = x * d
        if low + d <= scaled:  # (x + 1) d <= 256^j n: x < floor(256^j n / d)
            return True
        if low >= scaled:      # x d >= 256^j n: U >= n / d
            return False


def _bernoulli(p: Fraction, rng: RandomSource | None) -> bool:
    """Bernoulli(n/d) of specs/dp.md section 3.2 (RandomBelow(d) < n)."""
    return random_below(rng, p.denominator) < p.numerator


# -- section 3.5.2: Poisson --------------------------------------------------


def _poisson_small_pass(lam: Fraction, rng: RandomSource | None) -> int | None:
    """One pass of PoissonSmall (section 3.5.2): j with probability exactly
    (1 - lam) lam^j / j!, or None (rejected, probability 1 - (1 - lam) e^lam).

    J = K - 1 for the first K with Bernoulli(lam / K) false has
    P(J = j) = lam^j / j! * (1 - lam / (j + 1)); accepting j with probability
    (1 - lam)(j + 1) / (j + 1 - lam) leaves (1 - lam) lam^j / j!.
    """
    k = 1
    while _bernoulli(lam / k, rng):
        k += 1
    j = k - 1
    return j if _bernoulli((1 - lam) * (j + 1) / (j + 1 - lam), rng) else None


def _poisson_small(lam: Fraction, rng: RandomSource | None) -> int:
    """Poisson(lam) for 0 <= lam <= 1/2: passes until one accepts (section 3.5.2)."""
    while True:
        j = _poisson_small_pass(lam, rng)
        if j is not None:
            return j


def _core_width(lam: Fraction) -> int:
    """w = isqrt(ceil(lam)) + 1, so w^2 > lam (section 3.5.2)."""
    return math.isqrt(-((-lam.numerator) // lam.denominator)) + 1


def _ratio_to_mode(lam: Fraction, m: int, k: int) -> tuple[int, int]:
    """P(k) / P(m) = lam^(k - m) m! / k! as (numerator, denominator), not reduced."""
    a, b = lam.numerator, lam.denominator
    if k >= m:
        d = k - m
        return a**d, b**d * math.perm(k, d)
    d = m - k
    return math.perm(m, d) * b**d, a**d


_BOUND_BITS = 128
"""Section 3.5.2: fixed-point precision of the bounds that decide most comparisons."""


def _fixed(n: int, d: int, up: bool) -> int:
    """floor (or ceil, ``up``) of 2^128 n / d."""
    return -((-n << _BOUND_BITS) // d) if up else (n << _BOUND_BITS) // d


def _fixed_mul(x: int, y: int, up: bool) -> int:
    return -((-x * y) >> _BOUND_BITS) if up else (x * y) >> _BOUND_BITS


def _fixed_pow(x: int, e: int, up: bool) -> int:
    """x^e in 2^-128 fixed point, every product rounded down (or up)."""
    result = 1 << _BOUND_BITS
    while e:
        if e & 1:
            result = _fixed_mul(result, x, up)
        e >>= 1
        if e:
            x = _fixed_mul(x, x, up)
    return result


def _ratio_low(lam: Fraction, m: int, k: int) -> int:
    """Fixed-point lo <= P(k) / P(m) (section 3.5.2): for k > m the AM-GM bound
    prod_{i=1..d} (m + i) <= (m + (d + 1)/2)^d; for k < m the pairing bound
    (m - i)(m - d + 1 + i) >= m (m - d + 1) on prod_{i=0..d-1} (m - i)."""
    a, b = lam.numerator, lam.denominator
    if k >= m:
        return _fixed_pow(_fixed(2 * a, b * (2 * m + k - m + 1), False), k - m, False)
    d = m - k
    lo = _fixed_pow(_fixed(b * b * m * (m - d + 1), a * a, False), d // 2, False)
    if d % 2:
        lo = _fixed_mul(lo, _fixed(b * (2 * m - d + 1), 2 * a, False), False)
    return lo


def _ratio_high(lam: Fraction, m: int, k: int) -> int:
    """Fixed-point hi >= P(k) / P(m): the mirror images of :func:`_ratio_low`'s bounds."""
    a, b = lam.numerator, lam.denominator
    if k >= m:
        d = k - m
        hi = _fixed_pow(_fixed(a * a, b * b * (m + 1) * (m + d), True), d // 2, True)
        if d % 2:
            hi = _fixed_mul(hi, _fixed(2 * a, b * (2 * m + d + 1), True), True)
        return hi
    d = m - k
    return _fixed_pow(_fixed(b * (2 * m - d + 1), 2 * a, True), d, True)


def _ratio_bounds(lam: Fraction, m: int, k: int) -> tuple[int, int]:
    """(lo, hi) in 2^-128 fixed point with lo <= P(k) / P(m) <= hi."""
    return _ratio_low(lam, m, k), _ratio_high(lam, m, k)


def _accept(lam: Fraction, m: int, k: int, v: int, rng: RandomSource | None) -> bool:
    """Bernoulli(2^v P(k) / P(m)) drawn exactly as :func:`bernoulli_bits` draws it
    (section 3.5.1): the bounds only decide when the exact rule would stop; hi is
    computed only when lo did not decide the first step."""
    lo = _ratio_low(lam, m, k) << v
    hi = -1
    source = resolve(rng)
    x, scale = 0, 1
    while True:
        x = (x << 8) | source.random_bytes(1)[0]
        scale <<= 8
        if (x + 1) << _BOUND_BITS <= lo * scale:   # U's interval below lo <= ratio: exact rule says True
            return True
        if hi < 0:
            hi = _ratio_high(lam, m, k) << v
        if x << _BOUND_BITS >= hi * scale:         # U's interval at or above hi >= ratio: False
            return False
        if not (x << _BOUND_BITS < lo * scale and (x + 1) << _BOUND_BITS > hi * scale):
            break                                  # undecided by the bounds: finish exactly
    n, d = _ratio_to_mode(lam, m, k)
    n <<= v
    if n > d:  # excluded by the envelope of section 3.5.2; a failure here is a bug
        raise ParameterError("internal: Poisson envelope violated")
    scaled = n * scale
    while True:
        low = x * d
        if low + d <= scaled:
            return True
        if low >= scaled:
            return False
        x = (x << 8) | source.random_bytes(1)[0]
        scaled <<= 8


def _poisson_large(lam: Fraction, rng: RandomSource | None) -> int:
    """Poisson(lam) for lam >= 16 (section 3.5.2, PoissonLarge)."""
    m = lam.numerator // lam.denominator
    w = _core_width(lam)
    while True:
        c = random_below(rng, 6 * w + 1)
        v = 0
        if c <= 2 * w:
            k = m - w + c
        else:
            c -= 2 * w + 1
            upper = c < 2 * w
            u = c % w
            while _bernoulli(Fraction(1, 2), rng):
                v += 1
            k = m + w + 1 + v * w + u if upper else m - w - 1 - v * w - u
            if k < 0:
                continue
        if _accept(lam, m, k, v, rng):
            return k


def poisson(lam: Fraction | int, rng: RandomSource | None = None) -> int:
    """One sample of Poisson(lam), lam >= 0 rational (specs/dp.md section 3.5.2)."""
    lam = _mean(lam)
    return _poisson(lam, rng)


def _poisson(lam: Fraction, rng: RandomSource | None) -> int:
    if lam >= LARGE_MEAN:
        return _poisson_large(lam, rng)
    pieces = max(1, -((-2 * lam.numerator) // lam.denominator))
    part = lam / pieces
    return sum(_poisson_small(part, rng) for _ in range(pieces))


def skellam(lam: Fraction | int, rng: RandomSource | None = None) -> int:
    """Poisson(lam) - Poisson(lam), the first drawn first (specs/dp.md section 3.5.3)."""
    lam = _mean(lam)
    return _skellam(lam, rng)


def _skellam(lam: Fraction, rng: RandomSource | None) -> int:
    first = _poisson(lam, rng)
    return first - _poisson(lam, rng)
