"""Shamir secret sharing over a prime field GF(p).

A. Shamir, "How to share a secret", Communications of the ACM 22(11),
612-613, 1979.  A secret s in [0, p) is the constant term of a random
polynomial f of degree t - 1; the share at point x is (x, f(x)).  Any t
shares give s by Lagrange interpolation at 0; any t - 1 shares are equally
consistent with every secret, so they reveal nothing about it.

Used by the aggregation protocol (specs/aggregation.md sections 5.6 and 8.4)
to share each meter's self-mask seed, and later by a distributed PKG.

Fixed rules that vectors depend on:

* ``split`` draws the coefficients a_1, ..., a_{t-1} in that order, each with
  ``random_below(rng, p)`` (conventions section 3.2), after validating its
  inputs; it draws nothing for t = 1.
* ``recover`` interpolates the *first* ``threshold`` shares it is given;
  ``check_consistent`` checks any further ones against them.

Share values are secret: they stay out of ``repr`` and exception messages
(evaluation points are public and may appear), and ``check_consistent``
compares them with ``hashing.compare_digest``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TypeGuard

import gmpy2
from gmpy2 import mpz

from protocols.errors import ParameterError, RecoveryError, VerificationError
from protocols.primitives import hashing
from protocols.primitives.numtheory import invert
from protocols.primitives.rand import RandomSource, random_below, resolve

P25519 = 2**255 - 19
"""The default field modulus 2^255 - 19.  It is simply a convenient 255-bit
prime (shares encode in 32 bytes); nothing here uses Curve25519."""


def _is_int(value: object) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool)


@dataclass(frozen=True)
class Share:
    """One share (x, y = f(x)): x in [1, p - 1], y in [0, p - 1].

    Ranges depend on the field and are checked where the field is known
    (``recover``, ``check_consistent``); the types are checked here.  ``y`` is
    kept out of ``repr``.
    """

    x: int
    y: int = field(repr=False)

    def __post_init__(self) -> None:
        if not _is_int(self.x) or not _is_int(self.y):
            raise ParameterError("share coordinates must be int (bool refused)")


# ---------------------------------------------------------------------------
# Validation (inputs first, then procedure; nothing is drawn before it passes)
# ---------------------------------------------------------------------------


def _check_prime(prime: object) -> mpz:
    if not _is_int(prime):
        raise ParameterError("prime must be an int (bool refused)")
    if prime < 3:
        raise ParameterError("prime must be >= 3")
    if prime != P25519 and not gmpy2.is_prime(prime):
        raise ParameterError("prime is not a prime: interpolation needs a field")
    return mpz(prime)


def _check_threshold(threshold: object) -> int:
    if not _is_int(threshold):
        raise ParameterError("threshold must be an int (bool refused)")
    if threshold < 1:
        raise ParameterError("threshold must be >= 1")
    return threshold


def _check_points(xs: object, p: mpz) -> list[mpz]:
    """Evaluation points: a non-empty sequence of distinct ints in [1, p - 1]."""
    if not isinstance(xs, Sequence) or isinstance(xs, (str, bytes, bytearray)):
        raise ParameterError("evaluation points must be a sequence of ints")
    points = []
    seen = set()
    for x in xs:
        if not _is_int(x):
            raise ParameterError("evaluation points must be int (bool refused)")
        if not 1 <= x < p:
            raise ParameterError(f"evaluation point {x} is not in [1, p - 1]")
        if x in seen:
            raise ParameterError(f"evaluation point {x} appears twice")
        seen.add(x)
        points.append(mpz(x))
    if not points:
        raise ParameterError("at least one evaluation point is needed")
    return points


def _check_shares(shares: object, p: mpz) -> tuple[list[mpz], list[mpz]]:
    """Shares: Share instances with x in [1, p - 1] distinct and y in [0, p - 1]."""
    if not isinstance(shares, Sequence):
        raise ParameterError("shares must be a sequence of Share")
    if not all(isinstance(s, Share) for s in shares):
        raise ParameterError("shares must be Share instances")
    if not shares:
        return [], []
    xs = _check_points([s.x for s in shares], p)
    ys = []
    for s in shares:
        if not 0 <= s.y < p:
            raise ParameterError(f"share value at point {s.x} is not in [0, p - 1]")
        ys.append(mpz(s.y))
    return xs, ys


# ---------------------------------------------------------------------------
# Lagrange interpolation
# ---------------------------------------------------------------------------


def _batch_invert(values: list[mpz], p: mpz) -> list[mpz]:
    """Inverses of non-zero values mod p with one modular inversion
    (Montgomery's trick: prefix products, invert the total, walk back)."""
    prefix = []
    acc = mpz(1)
    for v in values:
        prefix.append(acc)
        acc = acc * v % p
    inv = invert(acc, p)
    out = [mpz(0)] * len(values)
    for i in range(len(values) - 1, -1, -1):
        out[i] = inv * prefix[i] % p
        inv = inv * values[i] % p
    return out


def _lagrange_at(xs: list[mpz], point: mpz, p: mpz) -> list[mpz]:
    """lambda_i(point) = prod_{j != i} (point - x_j) / (x_i - x_j) mod p, for
    distinct xs none equal to ``point``: N / ((point - x_i) prod_{j != i} (x_i - x_j))
    with N = prod_j (point - x_j)."""
    numerator = mpz(1)
    for x in xs:
        numerator = numerator * (point - x) % p
    denominators = []
    for i, xi in enumerate(xs):
        d = (point - xi) % p
        for j, xj in enumerate(xs):
            if j != i:
                d = d * (xi - xj) % p
        denominators.append(d)
    return [numerator * inv % p for inv in _batch_invert(denominators, p)]


def lagrange_at_zero(xs: Sequence[int], prime: int = P25519) -> list[int]:
    """The coefficients lambda_i with sum_i lambda_i f(x_i) = f(0) mod p for
    every polynomial f of degree < len(xs) (Shamir 1979; one batched inversion)."""
    p = _check_prime(prime)
    points = _check_points(xs, p)
    return [int(c) for c in _lagrange_at(points, mpz(0), p)]


# ---------------------------------------------------------------------------
# Split, recover, check
# ---------------------------------------------------------------------------


def split(secret: int, threshold: int, xs: Sequence[int],
          rng: RandomSource | None = None, prime: int = P25519) -> list[Share]:
    """Shares of ``secret`` with threshold t, one per point of ``xs``, in order.

    f(x) = secret + a_1 x + ... + a_{t-1} x^{t-1} mod p, with a_1, ..., a_{t-1}
    drawn in that order by ``random_below(rng, p)`` (Shamir 1979).
    """
    p = _check_prime(prime)
    t = _check_threshold(threshold)
    if not _is_int(secret):
        raise ParameterError("secret must be an int (bool refused)")
    if not 0 <= secret < p:
        raise ParameterError("secret is not in [0, p)")
    points = _check_points(xs, p)
    if t > len(points):
        raise ParameterError(f"threshold {t} exceeds the {len(points)} evaluation points")
    source = resolve(rng)
    coefficients = [mpz(secret)] + [mpz(random_below(source, int(p))) for _ in range(t - 1)]
    shares = []
    for x in points:
        y = mpz(0)
        for a in reversed(coefficients):  # Horner
            y = (y * x + a) % p
        shares.append(Share(int(x), int(y)))
    return shares


def recover(shares: Sequence[Share], threshold: int, prime: int = P25519) -> int:
    """f(0) from the first ``threshold`` shares (Lagrange interpolation at 0).

    All given shares are validated; only the first ``threshold`` are used (call
    ``check_consistent`` to check the rest).  RecoveryError if fewer than
    ``threshold`` are given.
    """
    p = _check_prime(prime)
    t = _check_threshold(threshold)
    xs, ys = _check_shares(shares, p)
    if len(xs) < t:
        raise RecoveryError(f"{len(xs)} shares given, {t} needed")
    lambdas = _lagrange_at(xs[:t], mpz(0), p)
    return int(sum(l * y for l, y in zip(lambdas, ys[:t])) % p)


def check_consistent(shares: Sequence[Share], threshold: int, prime: int = P25519) -> None:
    """Raise VerificationError unless all shares lie on one polynomial of
    degree < ``threshold``: the polynomial through the first ``threshold``
    shares is evaluated at each further point.

    Detects any single altered share once more than ``threshold`` are given
    (the others determine f); with exactly ``threshold`` there is nothing to
    check.  RecoveryError if fewer than ``threshold`` are given.
    """
    p = _check_prime(prime)
    t = _check_threshold(threshold)
    xs, ys = _check_shares(shares, p)
    if len(xs) < t:
        raise RecoveryError(f"{len(xs)} shares given, {t} needed")
    width = (int(p).bit_length() + 7) // 8
    mismatches = 0
    for x, y in zip(xs[t:], ys[t:]):
        lambdas = _lagrange_at(xs[:t], x, p)
        expected = sum(l * v for l, v in zip(lambdas, ys[:t])) % p
        mismatches += not hashing.compare_digest(int(expected).to_bytes(width, "big"), int(y).to_bytes(width, "big"))
    if mismatches:
        raise VerificationError(
            f"{len(xs)} shares do not lie on one polynomial of degree < {t} "
            f"({mismatches} disagree with the first {t})"
        )
