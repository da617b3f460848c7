"""Tests of protocols.primitives.numtheory: inverses, CRT, primality and prime
generation (specs/paillier.md section 3.1, the prime-generation rule).

Independent references: brute force over small moduli for ``crt`` and
``crt_pair``; ``gmpy2.is_prime`` and published strong pseudoprimes and
Carmichael numbers for ``is_probable_prime``.
"""

from __future__ import annotations

import math

import gmpy2
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from protocols.errors import ParameterError, RandomnessError
from protocols.primitives.drbg import HmacDrbg
from protocols.primitives.numtheory import (
    crt,
    crt_pair,
    invert,
    is_probable_prime,
    random_prime,
)
from protocols.primitives.rand import ReplayRandom


class RecordingRandom:
    """Wraps a source and records every draw, to replay it with ReplayRandom."""

    def __init__(self, source):
        self.source = source
        self.draws: list[bytes] = []

    def random_bytes(self, n: int) -> bytes:
        chunk = self.source.random_bytes(n)
        self.draws.append(chunk)
        return chunk


SMALL_PRIMES = [p for p in range(2, 60) if gmpy2.is_prime(p)]

# Strong pseudoprimes to base 2 (the least ones passing Miller-Rabin for all
# prime bases up to 7, 11, 13, 17, 23, 37 and 41; OEIS A014233).
STRONG_PSEUDOPRIMES_BASE_2 = [
    3215031751,
    2152302898747,
    3474749660383,
    341550071728321,
    3825123056546413051,
    318665857834031151167461,
    3317044064679887385961981,
]

CARMICHAEL_SMALL = [561, 1105, 1729, 2465, 2821, 6601, 8911, 41041, 825265]


def chernick_carmichael(count: int, min_factor: int) -> list[int]:
    """Carmichael numbers (6k+1)(12k+1)(18k+1) with all three factors prime
    and above ``min_factor`` (so trial division by small primes cannot reject them)."""
    found = []
    k = 1
    while len(found) < count:
        factors = (6 * k + 1, 12 * k + 1, 18 * k + 1)
        if factors[0] > min_factor and all(gmpy2.is_prime(f) for f in factors):
            found.append(math.prod(factors))
        k += 1
    return found


# ---------------------------------------------------------------------------
# invert
# ---------------------------------------------------------------------------


@settings(max_examples=200, deadline=None)
@given(a=st.integers(min_value=-(2**300), max_value=2**300), m=st.integers(min_value=2, max_value=2**300))
def test_invert_is_the_modular_inverse_or_parameter_error(a, m):
    if math.gcd(a, m) == 1:
        inverse = invert(a, m)
        assert 0 <= inverse < m
        assert (a * inverse) % m == 1
    else:
        with pytest.raises(ParameterError):
            invert(a, m)


@pytest.mark.parametrize("a, m", [(0, 7), (6, 9), (14, 21), (10, 10), (2**64, 2**80)])
def test_invert_of_non_invertible_element_raises_parameter_error(a, m):
    with pytest.raises(ParameterError):
        invert(a, m)


@pytest.mark.parametrize("m", [1, 0, -7])
def test_invert_with_modulus_below_two_raises_parameter_error(m):
    with pytest.raises(ParameterError):
        invert(3, m)


# ---------------------------------------------------------------------------
# crt and crt_pair, against brute force
# ---------------------------------------------------------------------------


def brute_force_crt(residues, moduli):
    product = math.prod(moduli)
    matches = [x for x in range(product) if all((x - r) % m == 0 for r, m in zip(residues, moduli))]
    assert len(matches) == 1  # the reference's own sanity check
    return matches[0]


@st.composite
def coprime_system(draw):
    """Pairwise coprime moduli (products of distinct small primes), and residues."""
    primes = draw(st.lists(st.sampled_from(SMALL_PRIMES), min_size=1, max_size=6, unique=True))
    count = draw(st.integers(min_value=1, max_value=min(3, len(primes))))
    groups = [[] for _ in range(count)]
    for i, p in enumerate(primes):
        groups[i % count].append(p)
    moduli = []
    for group in groups:  # keep the brute force small: product of moduli <= 20000
        if math.prod(moduli) * math.prod(group) <= 20000:
            moduli.append(math.prod(group))
    moduli = moduli or [primes[0]]
    if draw(st.booleans()):
        moduli.append(1)
    residues = [draw(st.integers(min_value=-1000, max_value=1000)) for _ in moduli]
    return residues, moduli


@settings(max_examples=200, deadline=None)
@given(system=coprime_system())
def test_crt_matches_brute_force(system):
    residues, moduli = system
    x = crt(residues, moduli)
    assert x == brute_force_crt(residues, moduli)


@settings(max_examples=200, deadline=None)
@given(
    pq=st.lists(st.sampled_from(SMALL_PRIMES[1:]), min_size=2, max_size=2, unique=True),
    data=st.data(),
)
def test_crt_pair_matches_brute_force(pq, data):
    p, q = pq
    a_p = data.draw(st.integers(min_value=0, max_value=p - 1))
    a_q = data.draw(st.integers(min_value=0, max_value=q - 1))
    x = crt_pair(a_p, a_q, p, q, invert(q, p))
    assert x == brute_force_crt([a_p, a_q], [p, q])
    assert 0 <= x < p * q


@settings(max_examples=100, deadline=None)
@given(
    bits=st.integers(min_value=16, max_value=200),
    seed=st.binary(max_size=8),
    a=st.integers(min_value=0),
    b=st.integers(min_value=0),
)
def test_crt_pair_and_crt_agree_on_large_primes(bits, seed, a, b):
    rng = HmacDrbg.from_seed(seed)
    p, q = random_prime(bits, rng), random_prime(bits, rng)
    if p == q:
        return
    a_p, a_q = a % p, b % q
    x = crt_pair(a_p, a_q, p, q, invert(q, p))
    assert x % p == a_p and x % q == a_q and 0 <= x < p * q
    assert x == crt([a_p, a_q], [p, q])


@pytest.mark.parametrize(
    "residues, moduli",
    [([1, 2], [4, 6]), ([0, 0], [9, 3]), ([1, 1, 1], [3, 5, 9]), ([1, 1], [7, 7])],
)
def test_crt_with_non_coprime_moduli_raises_parameter_error(residues, moduli):
    with pytest.raises(ParameterError):
        crt(residues, moduli)


@pytest.mark.parametrize(
    "residues, moduli",
    [([], []), ([1], [3, 5]), ([1, 2], [3]), ([1], [0]), ([1, 2], [3, -5])],
)
def test_crt_with_malformed_input_raises_parameter_error(residues, moduli):
    with pytest.raises(ParameterError):
        crt(residues, moduli)


def test_crt_pair_needs_coprime_factors_for_its_constant():
    # crt_pair takes q^-1 mod p precomputed; for non-coprime p, q it cannot exist.
    with pytest.raises(ParameterError):
        invert(6, 9)


# ---------------------------------------------------------------------------
# is_probable_prime
# ---------------------------------------------------------------------------


@settings(max_examples=300, deadline=None)
@given(n=st.integers(min_value=-50, max_value=2**256), seed=st.binary(max_size=8))
def test_is_probable_prime_agrees_with_gmpy2_on_random_numbers(n, seed):
    expected = n >= 2 and bool(gmpy2.is_prime(n))
    assert is_probable_prime(n, HmacDrbg.from_seed(seed)) is expected


@settings(max_examples=150, deadline=None)
@given(n=st.integers(min_value=0, max_value=2**512), seed=st.binary(max_size=8))
def test_is_probable_prime_accepts_primes_and_rejects_their_products(n, seed):
    p = gmpy2.next_prime(n)
    q = gmpy2.next_prime(p)
    rng = HmacDrbg.from_seed(seed)
    assert is_probable_prime(p, rng) is True
    assert is_probable_prime(p * q, rng) is False
    assert is_probable_prime(p * p, rng) is False


@pytest.mark.parametrize("n", STRONG_PSEUDOPRIMES_BASE_2)
def test_strong_pseudoprimes_to_base_2_are_rejected(n):
    assert gmpy2.is_strong_prp(n, 2)  # the input really fools a base-2 Miller-Rabin test
    assert is_probable_prime(n) is False


@pytest.mark.parametrize("n", CARMICHAEL_SMALL + chernick_carmichael(5, 2000))
def test_carmichael_numbers_are_rejected(n):
    # Korselt: n composite, squarefree and p - 1 | n - 1 for every prime p | n.
    assert pow(2, n - 1, n) == 1 and not gmpy2.is_prime(n)
    assert is_probable_prime(n) is False


def test_is_probable_prime_draws_its_bases_from_the_injected_rng():
    p = gmpy2.next_prime(2**127)
    with pytest.raises(RandomnessError):
        is_probable_prime(p, ReplayRandom([]))
    # A composite caught before the random-base rounds draws nothing.
    assert is_probable_prime(p * gmpy2.next_prime(p), ReplayRandom([])) is False


@pytest.mark.parametrize("n", [-7, -2, 0, 1, 4, 1999 * 2003])
def test_is_probable_prime_small_and_negative_cases(n):
    assert is_probable_prime(n) is False


@pytest.mark.parametrize("n", [2, 3, 1999, 2003, 2**61 - 1, 2**127 - 1])
def test_is_probable_prime_known_primes(n):
    assert is_probable_prime(n) is True


# ---------------------------------------------------------------------------
# random_prime
# ---------------------------------------------------------------------------


@settings(max_examples=60, deadline=None)
@given(bits=st.integers(min_value=16, max_value=700), seed=st.binary(max_size=16))
def test_random_prime_has_exact_bits_and_two_top_bits(bits, seed):
    p = random_prime(bits, HmacDrbg.from_seed(seed))
    assert p.bit_length() == bits
    assert (p >> (bits - 2)) == 3
    assert p % 2 == 1
    assert gmpy2.is_prime(p)


@settings(max_examples=20, deadline=None)
@given(bits=st.integers(min_value=16, max_value=512), seed=st.binary(max_size=16))
def test_random_prime_product_has_exactly_twice_the_bits(bits, seed):
    rng = HmacDrbg.from_seed(seed)
    assert (random_prime(bits, rng) * random_prime(bits, rng)).bit_length() == 2 * bits


@settings(max_examples=20, deadline=None)
@given(bits=st.integers(min_value=16, max_value=512), seed=st.binary(max_size=16))
def test_random_prime_is_deterministic_for_a_seeded_drbg(bits, seed):
    assert random_prime(bits, HmacDrbg.from_seed(seed)) == random_prime(bits, HmacDrbg.from_seed(seed))


def test_random_prime_depends_on_the_seed():
    assert random_prime(256, HmacDrbg.from_seed("a")) != random_prime(256, HmacDrbg.from_seed("b"))


@settings(max_examples=15, deadline=None)
@given(bits=st.integers(min_value=16, max_value=512), seed=st.binary(max_size=16))
def test_random_prime_replays_from_recorded_draws(bits, seed):
    recorder = RecordingRandom(HmacDrbg.from_seed(seed))
    p = random_prime(bits, recorder)
    replay = ReplayRandom(list(recorder.draws))
    assert random_prime(bits, replay) == p
    assert replay.exhausted
    with pytest.raises(RandomnessError):
        random_prime(bits, ReplayRandom(recorder.draws[:-1]))


@pytest.mark.parametrize("bits", [15, 8, 1, 0, -1])
def test_random_prime_below_16_bits_raises_parameter_error(bits):
    with pytest.raises(ParameterError):
        random_prime(bits, HmacDrbg.from_seed("x"))
