"""Tests of protocols.primitives.shamir: Shamir secret sharing over GF(p)
(Shamir, "How to share a secret", CACM 1979; specs/aggregation.md 5.6, 8.4).

Independent references: a known-answer example over GF(17) worked by hand
below, and a plain-int Vandermonde solver (Gaussian elimination mod p) for
the interpolating polynomial.
"""

from __future__ import annotations

import gmpy2
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from protocols.errors import ParameterError, RandomnessError, RecoveryError, VerificationError
from protocols.primitives.drbg import HmacDrbg
from protocols.primitives.rand import ReplayRandom
from protocols.primitives.shamir import (
    P25519,
    Share,
    check_consistent,
    lagrange_at_zero,
    recover,
    split,
)


class RecordingRandom:
    """Wraps a source and records every draw, to replay it with ReplayRandom."""

    def __init__(self, source):
        self.source = source
        self.draws: list[bytes] = []

    def random_bytes(self, n: int) -> bytes:
        chunk = self.source.random_bytes(n)
        self.draws.append(chunk)
        return chunk


PRIMES = [P25519, 3, 5, 17, 257, 65537, 2**61 - 1, 2**127 - 1]


def coefficient_bytes(c: int, p: int) -> bytes:
    """The draw that random_below(rng, p) turns into c (conventions 3.2): c < p
    big-endian in ceil(bitlen(p - 1) / 8) bytes, accepted at the first draw."""
    return c.to_bytes(((p - 1).bit_length() + 7) // 8, "big")


def horner(coefficients: list[int], x: int, p: int) -> int:
    return sum(a * pow(x, k, p) for k, a in enumerate(coefficients)) % p


def interpolate(points: list[tuple[int, int]], p: int) -> list[int]:
    """Coefficients c_0..c_{n-1} of the polynomial of degree < n through n
    points with distinct x: solve the Vandermonde system mod p by Gaussian
    elimination (no code shared with the module)."""
    n = len(points)
    rows = [[pow(x, k, p) for k in range(n)] + [y % p] for x, y in points]
    for col in range(n):
        pivot = next(r for r in range(col, n) if rows[r][col] % p)
        rows[col], rows[pivot] = rows[pivot], rows[col]
        inv = pow(rows[col][col], -1, p)
        rows[col] = [v * inv % p for v in rows[col]]
        for r in range(n):
            if r != col and rows[r][col]:
                factor = rows[r][col]
                rows[r] = [(a - factor * b) % p for a, b in zip(rows[r], rows[col])]
    return [rows[k][n] for k in range(n)]


@st.composite
def sharing(draw, min_threshold=1, spare=0):
    """(prime, threshold, xs, secret, seed) with len(xs) >= threshold + spare."""
    p = draw(st.sampled_from([q for q in PRIMES if q - 1 >= min_threshold + spare]))
    n = draw(st.integers(min_value=min_threshold + spare, max_value=min(10, p - 1)))
    t = draw(st.integers(min_value=min_threshold, max_value=n - spare))
    xs = draw(st.lists(st.integers(min_value=1, max_value=p - 1), min_size=n, max_size=n, unique=True))
    secret = draw(st.integers(min_value=0, max_value=p - 1))
    seed = draw(st.binary(max_size=8))
    return p, t, xs, secret, seed


# ---------------------------------------------------------------------------
# Known answer over GF(17), by hand
# ---------------------------------------------------------------------------
#
# p = 17, t = 3, secret s = 13.  random_below(rng, 17) keeps the low
# bitlen(16) = 5 bits of one byte and rejects values >= 17.  Draws:
#   0x0a -> 10          accepted: a_1 = 10
#   0xf1 -> 241 & 31 = 17   rejected (17 >= 17)
#   0x02 -> 2           accepted: a_2 = 2
# f(x) = 13 + 10x + 2x^2 mod 17:
#   f(1) = 25  = 8,   f(2) = 41  = 7,   f(3) = 61 = 10,
#   f(4) = 85  = 0,   f(5) = 113 = 11                      (mod 17)
# Lagrange at 0 for {1, 2, 3}: lambda_i = prod_{j != i} x_j / (x_j - x_i)
#   lambda_1 = 2*3 / ((2-1)(3-1)) = 6/2 = 3
#   lambda_2 = 1*3 / ((1-2)(3-2)) = -3  = 14
#   lambda_3 = 1*2 / ((1-3)(2-3)) = 2/2 = 1      (sum 18 = 1)
#   3*8 + 14*7 + 1*10 = 132 = 13 (mod 17)
# for {2, 4, 5} (2^-1 = 9, 3^-1 = 6, 6^-1 = 3 mod 17):
#   lambda_2 = 4*5 / ((4-2)(5-2)) = 20/6 = 3*3  = 9
#   lambda_4 = 2*5 / ((2-4)(5-4)) = 10/-2 = -5  = 12
#   lambda_5 = 2*4 / ((2-5)(4-5)) = 8/3  = 8*6  = 14   (sum 35 = 1)
#   9*7 + 12*0 + 14*11 = 217 = 13 (mod 17)

KAT_SHARES = [Share(1, 8), Share(2, 7), Share(3, 10), Share(4, 0), Share(5, 11)]


def test_known_answer_split_over_gf17():
    rng = ReplayRandom([b"\x0a", b"\xf1", b"\x02"])
    assert split(13, 3, [1, 2, 3, 4, 5], rng, prime=17) == KAT_SHARES
    assert rng.exhausted


def test_known_answer_lagrange_and_recover_over_gf17():
    assert lagrange_at_zero([1, 2, 3], prime=17) == [3, 14, 1]
    assert lagrange_at_zero([2, 4, 5], prime=17) == [9, 12, 14]
    assert recover(KAT_SHARES[:3], 3, prime=17) == 13
    assert recover([KAT_SHARES[1], KAT_SHARES[3], KAT_SHARES[4]], 3, prime=17) == 13
    check_consistent(KAT_SHARES, 3, prime=17)
    with pytest.raises(VerificationError):
        check_consistent(KAT_SHARES[:4] + [Share(5, 12)], 3, prime=17)


# ---------------------------------------------------------------------------
# Properties
# ---------------------------------------------------------------------------


@settings(max_examples=150, deadline=None)
@given(case=sharing(), data=st.data())
def test_any_threshold_subset_in_any_order_recovers_the_secret(case, data):
    p, t, xs, secret, seed = case
    shares = split(secret, t, xs, HmacDrbg.from_seed(seed), prime=p)
    assert [s.x for s in shares] == xs
    assert all(type(s.x) is int and type(s.y) is int and 0 <= s.y < p for s in shares)
    subset = data.draw(st.permutations(shares))[:t]
    result = recover(subset, t, prime=p)
    assert type(result) is int and result == secret


@settings(max_examples=100, deadline=None)
@given(case=sharing(min_threshold=2), data=st.data())
def test_threshold_minus_one_shares_fit_every_candidate_secret(case, data):
    # Perfect privacy: for any candidate s', the t points (0, s') and t - 1
    # shares lie on exactly one polynomial of degree < t, and split would have
    # produced those very shares from s' had the rng drawn its coefficients.
    p, t, xs, secret, seed = case
    shares = split(secret, t, xs, HmacDrbg.from_seed(seed), prime=p)
    seen = data.draw(st.permutations(shares))[: t - 1]
    candidate = data.draw(st.integers(min_value=0, max_value=p - 1))
    coefficients = interpolate([(0, candidate)] + [(s.x, s.y) for s in seen], p)
    assert coefficients[0] == candidate
    assert all(horner(coefficients, s.x, p) == s.y for s in seen)
    replay = ReplayRandom([coefficient_bytes(c, p) for c in coefficients[1:]])
    spare = next(x for x in xs if x not in {s.x for s in seen})  # split needs >= t points
    assert split(candidate, t, [s.x for s in seen] + [spare], replay, prime=p)[:-1] == seen
    assert replay.exhausted


@settings(max_examples=50, deadline=None)
@given(case=sharing())
def test_split_is_deterministic_for_a_seeded_drbg(case):
    p, t, xs, secret, seed = case
    assert split(secret, t, xs, HmacDrbg.from_seed(seed), prime=p) == \
        split(secret, t, xs, HmacDrbg.from_seed(seed), prime=p)


def test_split_depends_on_the_seed():
    xs = list(range(1, 6))
    assert split(7, 3, xs, HmacDrbg.from_seed("a")) != split(7, 3, xs, HmacDrbg.from_seed("b"))


@settings(max_examples=50, deadline=None)
@given(case=sharing())
def test_split_draws_a1_to_at_minus_1_in_order(case):
    # The draw rule vectors depend on: t - 1 calls of random_below(rng, p),
    # a_1 first, and nothing else.
    p, t, xs, secret, seed = case
    recorder = RecordingRandom(HmacDrbg.from_seed(seed))
    shares = split(secret, t, xs, recorder, prime=p)
    replay = ReplayRandom(list(recorder.draws))
    assert split(secret, t, xs, replay, prime=p) == shares and replay.exhausted
    mask = (1 << (p - 1).bit_length()) - 1
    accepted = [v for v in (int.from_bytes(d, "big") & mask for d in recorder.draws) if v < p]
    assert len(accepted) == t - 1
    assert shares == [Share(x, horner([secret] + accepted, x, p)) for x in xs]


@settings(max_examples=100, deadline=None)
@given(case=sharing(), data=st.data())
def test_lagrange_coefficients_interpolate_at_zero(case, data):
    p, _, xs, _, _ = case
    lambdas = lagrange_at_zero(xs, prime=p)
    assert all(type(c) is int and 0 <= c < p for c in lambdas)
    assert sum(lambdas) % p == 1  # the constant polynomial f = 1
    coefficients = data.draw(st.lists(st.integers(min_value=0, max_value=p - 1),
                                      min_size=len(xs), max_size=len(xs)))
    assert sum(c * horner(coefficients, x, p) for c, x in zip(lambdas, xs)) % p == coefficients[0]


@settings(max_examples=100, deadline=None)
@given(case=sharing(spare=1), data=st.data())
def test_check_consistent_catches_a_single_altered_share(case, data):
    p, t, xs, secret, seed = case
    shares = split(secret, t, xs, HmacDrbg.from_seed(seed), prime=p)
    check_consistent(shares, t, prime=p)
    index = data.draw(st.integers(min_value=0, max_value=len(shares) - 1))
    delta = data.draw(st.integers(min_value=1, max_value=p - 1))
    altered = list(shares)
    altered[index] = Share(shares[index].x, (shares[index].y + delta) % p)
    with pytest.raises(VerificationError):
        check_consistent(altered, t, prime=p)


@settings(max_examples=50, deadline=None)
@given(case=sharing(), other=st.integers(min_value=0))
def test_shares_add_to_shares_of_the_sum(case, other):
    p, t, xs, secret, seed = case
    other %= p
    a = split(secret, t, xs, HmacDrbg.from_seed(seed), prime=p)
    b = split(other, t, xs, HmacDrbg.from_seed(seed + b"'"), prime=p)
    summed = [Share(s.x, (s.y + r.y) % p) for s, r in zip(a, b)]
    check_consistent(summed, t, prime=p)
    assert recover(summed, t, prime=p) == (secret + other) % p


def test_threshold_one_shares_are_the_secret_and_draw_nothing():
    assert split(5, 1, [1, 2, 3], ReplayRandom([])) == [Share(1, 5), Share(2, 5), Share(3, 5)]


def test_check_consistent_with_exactly_threshold_shares_passes():
    check_consistent([Share(1, 1), Share(2, 5)], 2, prime=17)


def test_recover_uses_only_the_first_threshold_shares():
    shares = KAT_SHARES[:3] + [Share(4, 1)]  # the last one is wrong but unused
    assert recover(shares, 3, prime=17) == 13


def test_accepts_a_range_of_points_as_the_aggregation_protocol_passes():
    shares = split(99, 3, range(1, 6), HmacDrbg.from_seed("range"))
    assert recover(shares[2:], 3) == 99


def test_lagrange_for_sixteen_points_matches_the_reference():
    xs = list(range(1, 17))
    lambdas = lagrange_at_zero(xs)
    for i, xi in enumerate(xs):
        num = den = 1
        for xj in xs:
            if xj != xi:
                num, den = num * xj % P25519, den * (xj - xi) % P25519
        assert lambdas[i] == num * pow(den, -1, P25519) % P25519


def test_share_repr_does_not_show_the_value():
    secret_y = 0xDEADBEEFCAFE
    assert str(secret_y) not in repr(Share(3, secret_y)) and "3" in repr(Share(3, secret_y))


def test_p25519_is_the_documented_prime():
    assert P25519 == 2**255 - 19 and gmpy2.is_prime(P25519) and P25519.bit_length() == 255


# ---------------------------------------------------------------------------
# Validation: the exact typed error, and nothing drawn before it
# ---------------------------------------------------------------------------

BAD_SPLITS = {
    "threshold 0": dict(threshold=0),
    "threshold negative": dict(threshold=-1),
    "threshold bool": dict(threshold=True),
    "threshold float": dict(threshold=2.0),
    "threshold above points": dict(threshold=4),
    "secret negative": dict(secret=-1),
    "secret equal to p": dict(secret=17),
    "secret bool": dict(secret=True),
    "secret float": dict(secret=5.0),
    "secret str": dict(secret="5"),
    "secret mpz": dict(secret=gmpy2.mpz(5)),
    "x zero": dict(xs=[0, 1, 2]),
    "x equal to p": dict(xs=[1, 2, 17]),
    "x negative": dict(xs=[1, 2, -1]),
    "x bool": dict(xs=[True, 2, 3]),
    "x float": dict(xs=[1.0, 2, 3]),
    "x duplicate": dict(xs=[1, 2, 2]),
    "xs empty": dict(xs=[], threshold=1),
    "xs a str": dict(xs="123"),
    "xs a set": dict(xs={1, 2, 3}),
    "xs None": dict(xs=None),
    "prime 2": dict(prime=2, secret=1, xs=[1], threshold=1),
    "prime 1": dict(prime=1),
    "prime negative": dict(prime=-17),
    "prime bool": dict(prime=True),
    "prime float": dict(prime=17.0),
    "prime composite": dict(prime=21),
}


@pytest.mark.parametrize("override", BAD_SPLITS.values(), ids=BAD_SPLITS.keys())
def test_split_validation_raises_parameter_error_before_drawing(override):
    args = dict(secret=13, threshold=3, xs=[1, 2, 3], prime=17) | override
    with pytest.raises(ParameterError):
        split(args["secret"], args["threshold"], args["xs"], ReplayRandom([]), prime=args["prime"])


def test_split_with_valid_input_does_draw():
    with pytest.raises(RandomnessError):
        split(13, 3, [1, 2, 3], ReplayRandom([]), prime=17)


BAD_POINTS = {
    "empty": dict(xs=[]),
    "zero": dict(xs=[0, 1]),
    "equal to p": dict(xs=[1, 17]),
    "duplicate": dict(xs=[3, 3]),
    "bool": dict(xs=[1, True]),
    "float": dict(xs=[1, 2.0]),
    "not a sequence": dict(xs=5),
    "prime 2": dict(prime=2, xs=[1]),
    "prime composite": dict(prime=15),
    "prime bool": dict(prime=False),
}


@pytest.mark.parametrize("override", BAD_POINTS.values(), ids=BAD_POINTS.keys())
def test_lagrange_validation_raises_parameter_error(override):
    args = dict(xs=[1, 2, 3], prime=17) | override
    with pytest.raises(ParameterError):
        lagrange_at_zero(args["xs"], prime=args["prime"])


BAD_SHARES = {
    "threshold 0": dict(threshold=0),
    "threshold bool": dict(threshold=True),
    "threshold str": dict(threshold="3"),
    "x zero": dict(shares=[Share(0, 1), Share(2, 7), Share(3, 10)]),
    "x equal to p": dict(shares=[Share(17, 1), Share(2, 7), Share(3, 10)]),
    "y equal to p": dict(shares=[Share(1, 17), Share(2, 7), Share(3, 10)]),
    "y negative": dict(shares=[Share(1, -1), Share(2, 7), Share(3, 10)]),
    "x duplicate": dict(shares=[Share(1, 8), Share(1, 8), Share(3, 10)]),
    "duplicate beyond threshold": dict(shares=KAT_SHARES[:3] + [Share(1, 8)]),
    "not Share": dict(shares=[(1, 8), (2, 7), (3, 10)]),
    "not a sequence": dict(shares=None),
    "prime 2": dict(prime=2),
    "prime composite": dict(prime=18),
}


@pytest.mark.parametrize("function", [recover, check_consistent])
@pytest.mark.parametrize("override", BAD_SHARES.values(), ids=BAD_SHARES.keys())
def test_share_validation_raises_parameter_error(function, override):
    args = dict(shares=KAT_SHARES[:3], threshold=3, prime=17) | override
    with pytest.raises(ParameterError):
        function(args["shares"], args["threshold"], prime=args["prime"])


@pytest.mark.parametrize("function", [recover, check_consistent])
@pytest.mark.parametrize("shares, threshold", [(KAT_SHARES[:2], 3), ([], 1), ([], 3), (KAT_SHARES, 6)])
def test_fewer_than_threshold_shares_raise_recovery_error(function, shares, threshold):
    with pytest.raises(RecoveryError):
        function(shares, threshold, prime=17)


@pytest.mark.parametrize("x, y", [(True, 1), (1, False), (1.0, 1), (1, 1.5), ("1", 1), (1, None)])
def test_share_with_non_int_coordinates_raises_parameter_error(x, y):
    with pytest.raises(ParameterError):
        Share(x, y)


def test_error_messages_do_not_carry_share_values():
    secret_y = 123456789
    with pytest.raises(ParameterError) as info:
        recover([Share(1, secret_y)], 1, prime=17)
    assert str(secret_y) not in str(info.value)
    with pytest.raises(VerificationError) as info:
        check_consistent([Share(1, 5), Share(2, 6), Share(3, 11)], 2, prime=17)
    assert "11" not in str(info.value)
