"""Spec 7.1 step 3: the aggregator's product and its one unit check (specs/aggregation.md 7.1).

``fold_product`` checks gcd(product, n) once instead of gcd(c, n) per
factor; these tests hold it equal to the per-factor reference: the same
product, and the same first non-unit named.
"""

from __future__ import annotations

import gmpy2
import pytest
from gmpy2 import mpz
from hypothesis import given, settings
from hypothesis import strategies as st

from protocols.aggregation.aggregator import fold_product
from protocols.schemes.paillier import PublicKey

P, Q = mpz(18446744073709551557), mpz(18446744073709551533)  # the two largest primes below 2^64
KEY = PublicKey(P * Q, min_bits=64)


def reference(values, pk):
    """Spec 7.1 step 3 factor by factor: one reduction per product, one gcd per factor."""
    acc = mpz(1)
    for c in values:
        acc = acc * c % pk.nsquare
    bad = next((i for i, c in enumerate(values) if gmpy2.gcd(c, pk.n) != 1), None)
    return acc, bad


units = st.integers(1, int(KEY.nsquare) - 1).filter(lambda c: gmpy2.gcd(c, KEY.n) == 1).map(mpz)
non_units = st.tuples(st.sampled_from([P, Q, P * Q]), st.integers(1, int(P) - 1)).map(
    lambda pair: pair[0] * pair[1] % KEY.nsquare).filter(lambda c: c != 0)


@settings(max_examples=200, deadline=None)
@given(st.lists(units, min_size=1, max_size=40))
def test_units_fold_to_the_reference_product(values):
    assert fold_product(values, KEY) == reference(values, KEY)
    assert fold_product(values, KEY)[1] is None


@settings(max_examples=200, deadline=None)
@given(st.lists(units, max_size=20), st.lists(st.one_of(units, non_units), max_size=20), non_units)
def test_the_first_non_unit_is_named(before, after, bad):
    values = [*before, bad, *after]
    product, index = fold_product(values, KEY)
    assert (product, index) == reference(values, KEY)
    assert index == len(before)


def test_two_thread_product_equals_the_reference(paillier_key):
    """From 256 factors product_mod runs in two threads (spec 7.3); the result is the same."""
    pk = paillier_key.public_key
    rng = gmpy2.random_state(7)
    values = [gmpy2.mpz_random(rng, pk.nsquare - 1) + 1 for _ in range(300)]
    assert fold_product(values, pk) == reference(values, pk)


@pytest.mark.parametrize("position", [0, 150, 299])
def test_non_unit_named_in_a_long_product(paillier_key, position):
    pk = paillier_key.public_key
    rng = gmpy2.random_state(position)
    values = [gmpy2.mpz_random(rng, pk.nsquare - 1) + 1 for _ in range(300)]
    values = [c if gmpy2.gcd(c, pk.n) == 1 else c + 1 for c in values]
    values[position] = paillier_key.p * (position + 1)
    assert fold_product(values, pk) == reference(values, pk)
    assert fold_product(values, pk)[1] == position
