"""Tests of protocols.schemes.paillier (specs/paillier.md sections 3-7).

Security and correctness properties named here:

- correctness: Dec(Enc(m)) = m for standard, fast (DJN) and pooled encryption
  (``test_decrypt_inverts_*``);
- homomorphism: E(a) E(b) = E(a + b), E(a)^k = E(k a), E(a)^-1 = E(-a),
  E(a)(1 + k n) = E(a + k) (``test_homomorphic_*``);
- re-randomisation keeps the plaintext and changes the ciphertext;
- a randomiser is used once (``test_pool_*``);
- strict decoding: every malformed key or ciphertext raises the named error of
  protocols.errors (``test_*_raises_*``);
- reproducible key generation from a seeded DRBG.

Independent references: the textbook decryption L(c^lambda mod n^2) mu mod n,
``gmpy2.powmod`` beside the fixed-base table, and python-paillier (``phe``)
for raw encryption and decryption.
"""

from __future__ import annotations

import functools

import gmpy2
import phe
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from protocols.errors import (
    DecodeError,
    InvalidCiphertextError,
    KeyMismatchError,
    ParameterError,
    RandomnessError,
    StateError,
)
from protocols.primitives.drbg import HmacDrbg
from protocols.primitives.numtheory import random_prime
from protocols.primitives.rand import ReplayRandom
from protocols.schemes.paillier import (
    Ciphertext,
    FastEncryptor,
    FixedBaseTable,
    ParallelDecryptor,
    PrivateKey,
    PublicKey,
    RandomiserPool,
    djn_exponent_bits,
    generate_keypair,
    sum_ciphertexts,
)

PLAINTEXT = st.integers(min_value=0, max_value=2**2048)
"""Reduced mod n inside each test (n is the session key's)."""
ANY_INT = st.one_of(
    st.integers(),
    st.integers(min_value=-(2**4200), max_value=2**4200),
)
SEED = st.binary(min_size=1, max_size=16)

FAST = settings(max_examples=25, deadline=None)


class RecordingRandom:
    """Wraps a source and records every draw, to replay it with ReplayRandom."""

    def __init__(self, source):
        self.source = source
        self.draws: list[bytes] = []

    def random_bytes(self, n: int) -> bytes:
        chunk = self.source.random_bytes(n)
        self.draws.append(chunk)
        return chunk


@functools.lru_cache(maxsize=None)
def _textbook_constants(n: int, p: int, q: int) -> tuple[int, int]:
    lam = int(gmpy2.lcm(p - 1, q - 1))
    mu = int(gmpy2.invert((gmpy2.powmod(n + 1, lam, n * n) - 1) // n, n))
    return lam, mu


def textbook_decrypt(sk: PrivateKey, c: int) -> int:
    """Paillier 1999 decryption: m = L(c^lambda mod n^2) * mu mod n, without CRT."""
    n = int(sk.public_key.n)
    lam, mu = _textbook_constants(n, int(sk.p), int(sk.q))
    return int((gmpy2.powmod(c, lam, n * n) - 1) // n * mu % n)


@functools.lru_cache(maxsize=None)
def small_key() -> PrivateKey:
    """A 1024-bit key from two 512-bit primes, for the interop-size checks."""
    rng = HmacDrbg.from_seed("test_paillier/small-key")
    return PrivateKey.from_factors(random_prime(512, rng), random_prime(512, rng), min_bits=1024)


@pytest.fixture(scope="module")
def fast_encryptor(paillier_key):
    return FastEncryptor.create(paillier_key.public_key, HmacDrbg.from_seed("test_paillier/djn"))


# ---------------------------------------------------------------------------
# Correctness (spec 4, 5)
# ---------------------------------------------------------------------------


@FAST
@given(a=PLAINTEXT, seed=SEED)
def test_decrypt_inverts_encrypt(paillier_key, a, seed):
    pk = paillier_key.public_key
    a %= pk.n
    c = pk.encrypt(a, HmacDrbg.from_seed(seed))
    assert paillier_key.decrypt(c) == a
    assert textbook_decrypt(paillier_key, c.c) == a


def test_decrypt_inverts_encrypt_at_range_edges(paillier_key):
    pk = paillier_key.public_key
    for m in (0, 1, 2, pk.max_int, pk.n // 2, pk.n - 2, pk.n - 1):
        assert paillier_key.decrypt(pk.encrypt(m)) == m


@FAST
@given(a=PLAINTEXT, r=st.integers(min_value=1, max_value=2**2048))
def test_encrypt_with_r_is_the_textbook_formula_and_matches_phe(paillier_key, a, r):
    pk = paillier_key.public_key
    a, r = a % pk.n, r % pk.n
    if r == 0:
        r = 1
    n, n2 = int(pk.n), int(pk.nsquare)
    c = pk.encrypt_with_r(a, r)
    assert c.c == (1 + a * n) * pow(r, n, n2) % n2
    assert c.c == phe.PaillierPublicKey(n).raw_encrypt(int(a), int(r))
    assert paillier_key.decrypt(c) == a


@FAST
@given(seed=SEED)
def test_phe_ciphertexts_decrypt_with_us(paillier_key, seed):
    pk = paillier_key.public_key
    phe_pk = phe.PaillierPublicKey(int(pk.n))
    m = int(int.from_bytes(seed, "big") % pk.n)
    c = pk.ciphertext(phe_pk.raw_encrypt(m))
    assert paillier_key.decrypt(c) == m


def test_crt_constants_equal_phe(paillier_key, other_paillier_key):
    for sk in (paillier_key, other_paillier_key, small_key()):
        phe_pk = phe.PaillierPublicKey(int(sk.public_key.n))
        # phe is handed the factors in the wrong order: it orders them itself, as we do.
        phe_sk = phe.PaillierPrivateKey(phe_pk, int(sk.q), int(sk.p))
        assert (phe_sk.p, phe_sk.q) == (sk.p, sk.q)
        assert (phe_sk.hp, phe_sk.hq, phe_sk.p_inverse) == (sk.hp, sk.hq, sk.p_inverse)


@FAST
@given(seed=SEED)
def test_encryption_is_randomised(paillier_key, seed):
    pk = paillier_key.public_key
    rng = HmacDrbg.from_seed(seed)
    assert pk.encrypt(7, rng) != pk.encrypt(7, rng)


def test_encryption_is_reproducible_from_a_seeded_drbg(paillier_key):
    pk = paillier_key.public_key
    assert pk.encrypt(99, HmacDrbg.from_seed("e")) == pk.encrypt(99, HmacDrbg.from_seed("e"))


@FAST
@given(a=PLAINTEXT, seed=SEED)
def test_decrypt_raw_equals_decrypt_and_phe(paillier_key, a, seed):
    pk = paillier_key.public_key
    a %= pk.n
    c = pk.encrypt(a, HmacDrbg.from_seed(seed))
    assert paillier_key.decrypt_raw(c.c) == paillier_key.decrypt(c) == a
    phe_pk = phe.PaillierPublicKey(int(pk.n))
    phe_sk = phe.PaillierPrivateKey(phe_pk, int(paillier_key.p), int(paillier_key.q))
    assert phe_sk.raw_decrypt(int(c.c)) == a


@FAST
@given(c=st.integers(min_value=1, max_value=2**4096))
def test_decrypt_raw_of_any_unit_matches_the_textbook_decryption(paillier_key, c):
    """Every unit of Z_{n^2} is a ciphertext (Z_n x Z*_n is in bijection with it)."""
    pk = paillier_key.public_key
    c %= pk.nsquare
    if c == 0 or gmpy2.gcd(c, pk.n) != 1:
        return
    m = paillier_key.decrypt_raw(c)
    assert m == textbook_decrypt(paillier_key, c)
    assert paillier_key.decrypt(pk.ciphertext(c)) == m


@FAST
@given(a=PLAINTEXT)
def test_parallel_decryptor_equals_decrypt(paillier_key, fast_encryptor, a):
    pk = paillier_key.public_key
    a %= pk.n
    c = fast_encryptor.encrypt(a)
    with ParallelDecryptor(paillier_key) as decryptor:
        assert decryptor.decrypt(c) == paillier_key.decrypt(c) == a


# ---------------------------------------------------------------------------
# Homomorphic operations (spec 6)
# ---------------------------------------------------------------------------


@FAST
@given(a=PLAINTEXT, b=PLAINTEXT)
def test_homomorphic_addition(paillier_key, fast_encryptor, a, b):
    pk = paillier_key.public_key
    a, b = a % pk.n, b % pk.n
    ca, cb = pk.encrypt(a), fast_encryptor.encrypt(b)
    assert paillier_key.decrypt(ca + cb) == (a + b) % pk.n
    assert paillier_key.decrypt(cb + ca) == (a + b) % pk.n


@FAST
@given(a=PLAINTEXT, b=PLAINTEXT)
def test_homomorphic_subtraction(paillier_key, fast_encryptor, a, b):
    pk = paillier_key.public_key
    a, b = a % pk.n, b % pk.n
    ca, cb = pk.encrypt(a), fast_encryptor.encrypt(b)
    assert paillier_key.decrypt(ca - cb) == (a - b) % pk.n
    assert paillier_key.decrypt(cb - ca) == (b - a) % pk.n


@FAST
@given(a=PLAINTEXT, k=ANY_INT)
def test_homomorphic_scalar_multiplication_by_any_int(paillier_key, fast_encryptor, a, k):
    pk = paillier_key.public_key
    a %= pk.n
    c = fast_encryptor.encrypt(a)
    assert paillier_key.decrypt(c * k) == (k * a) % pk.n
    assert paillier_key.decrypt(k * c) == (k * a) % pk.n
    assert paillier_key.decrypt(c * gmpy2.mpz(k)) == (k * a) % pk.n


def test_scalar_multiplication_applies_the_sign_rule_then_the_reduction(paillier_key):
    """Spec 6.3 exactly (vectors depend on the integer, not only the plaintext)."""
    pk = paillier_key.public_key
    n, n2 = pk.n, pk.nsquare
    c = pk.encrypt(11, HmacDrbg.from_seed("mul"))
    inverse = gmpy2.invert(c.c, n2)
    assert (c * 5).c == gmpy2.powmod(c.c, 5, n2)
    assert (c * -3).c == gmpy2.powmod(inverse, 3, n2)
    assert (c * (n + 2)).c == gmpy2.powmod(c.c, 2, n2)
    assert (c * -(n + 2)).c == gmpy2.powmod(inverse, 2, n2)
    assert (c * 0).c == 1 and (c * n).c == 1
    assert (-c).c == inverse


def test_homomorphic_scalar_multiplication_edge_scalars(paillier_key):
    pk = paillier_key.public_key
    n = int(pk.n)
    c = pk.encrypt(5)
    for k in (0, 1, -1, n - 1, n, n + 1, -n, -n - 1, 2 * n + 3, -(n**2) - 7):
        assert paillier_key.decrypt(c * k) == (5 * k) % n


@FAST
@given(a=PLAINTEXT)
def test_homomorphic_negation(paillier_key, fast_encryptor, a):
    pk = paillier_key.public_key
    a %= pk.n
    c = fast_encryptor.encrypt(a)
    assert paillier_key.decrypt(-c) == (-a) % pk.n
    assert paillier_key.decrypt(c + (-c)) == 0


@FAST
@given(a=PLAINTEXT, k=ANY_INT)
def test_homomorphic_add_plain_with_any_int(paillier_key, fast_encryptor, a, k):
    pk = paillier_key.public_key
    a %= pk.n
    c = fast_encryptor.encrypt(a)
    assert paillier_key.decrypt(c.add_plain(k)) == (a + k) % pk.n
    assert paillier_key.decrypt(c + k) == (a + k) % pk.n
    assert paillier_key.decrypt(k + c) == (a + k) % pk.n
    assert paillier_key.decrypt(c - k) == (a - k) % pk.n
    assert paillier_key.decrypt(c.add_plain(gmpy2.mpz(k))) == (a + k) % pk.n


def test_plaintext_operands_may_be_mpz(paillier_key):
    """decrypt returns mpz, so mpz operands must work like ints in +, - and * alike."""
    pk = paillier_key.public_key
    c = pk.encrypt(10)
    k = paillier_key.decrypt(pk.encrypt(3))  # an mpz
    assert paillier_key.decrypt(c * k) == 30
    assert paillier_key.decrypt(c + k) == 13
    assert paillier_key.decrypt(k + c) == 13
    assert paillier_key.decrypt(c - k) == 7


@FAST
@given(a=PLAINTEXT, seed=SEED)
def test_rerandomise_keeps_plaintext_and_changes_ciphertext(paillier_key, fast_encryptor, a, seed):
    pk = paillier_key.public_key
    a %= pk.n
    c = fast_encryptor.encrypt(a)
    d = c.rerandomise(HmacDrbg.from_seed(seed))
    assert d != c and d.c != c.c
    assert paillier_key.decrypt(d) == a
    rn = fast_encryptor.randomiser()
    e = c.rerandomise(randomiser=rn)
    assert e.c == c.c * rn % pk.nsquare
    assert paillier_key.decrypt(e) == a


@FAST
@given(values=st.lists(PLAINTEXT, min_size=1, max_size=8))
def test_sum_ciphertexts_equals_the_fold_of_addition(paillier_key, fast_encryptor, values):
    pk = paillier_key.public_key
    values = [v % pk.n for v in values]
    cts = [fast_encryptor.encrypt(v) for v in values]
    folded = functools.reduce(lambda x, y: x + y, cts)
    total = sum_ciphertexts(iter(cts))
    assert total == folded
    assert paillier_key.decrypt(total) == sum(values) % pk.n


def test_sum_ciphertexts_of_nothing_raises_parameter_error():
    with pytest.raises(ParameterError):
        sum_ciphertexts([])


def test_operations_accept_an_equal_but_distinct_public_key_object(paillier_key):
    pk = paillier_key.public_key
    twin = PublicKey.from_bytes(pk.to_bytes())
    assert twin is not pk and twin == pk and hash(twin) == hash(pk)
    c = pk.encrypt(4) + twin.encrypt(5)
    assert paillier_key.decrypt(c) == 9
    assert paillier_key.decrypt(twin.encrypt(6)) == 6


# ---------------------------------------------------------------------------
# Fast encryption (spec 4.2) and the fixed-base table
# ---------------------------------------------------------------------------


@functools.lru_cache(maxsize=None)
def _table(n2: int, base: int, window: int) -> FixedBaseTable:
    return FixedBaseTable.build(base, n2, 1024, window)


@pytest.mark.parametrize("window", range(1, 9))
@settings(max_examples=12, deadline=None)
@given(e=st.integers(min_value=0, max_value=2**1024 - 1))
def test_fixed_base_table_power_equals_powmod(paillier_key, fast_encryptor, window, e):
    """The optimised fixed-base exponentiation beside the plain reference."""
    pk = paillier_key.public_key
    table = _table(int(pk.nsquare), int(fast_encryptor.h_s), window)
    assert table.power(e) == gmpy2.powmod(fast_encryptor.h_s, e, pk.nsquare)
    for edge in (0, 1, 2**1024 - 1, 2 ** (1024 - window)):
        assert table.power(edge) == gmpy2.powmod(fast_encryptor.h_s, edge, pk.nsquare)


def test_fixed_base_table_small_moduli_and_odd_exponent_lengths():
    for bits in (1, 2, 3, 7, 13):
        for window in (1, 2, 3, 5, 12):
            table = FixedBaseTable.build(12345, 1000003, bits, window)
            for e in range(1 << bits):
                assert table.power(e) == pow(12345, e, 1000003)


@pytest.mark.parametrize("e", [-1, 2**1024, 2**1025])
def test_fixed_base_table_exponent_out_of_range_raises_parameter_error(e):
    table = FixedBaseTable.build(3, 2**61 - 1, 1024, 4)
    with pytest.raises(ParameterError):
        table.power(e)


@pytest.mark.parametrize("window, exponent_bits", [(0, 64), (13, 64), (-1, 64), (4, 0), (4, -8)])
def test_fixed_base_table_bad_parameters_raise_parameter_error(window, exponent_bits):
    with pytest.raises(ParameterError):
        FixedBaseTable.build(3, 2**61 - 1, exponent_bits, window)


@FAST
@given(a=PLAINTEXT, seed=SEED)
def test_decrypt_inverts_fast_encryption(paillier_key, fast_encryptor, a, seed):
    pk = paillier_key.public_key
    a %= pk.n
    c = fast_encryptor.encrypt(a, HmacDrbg.from_seed(seed))
    assert paillier_key.decrypt(c) == a
    assert textbook_decrypt(paillier_key, c.c) == a


@FAST
@given(a=PLAINTEXT, e=st.integers(min_value=0, max_value=2**1024 - 1))
def test_fast_encryption_with_exponent_is_the_djn_formula(paillier_key, fast_encryptor, a, e):
    pk = paillier_key.public_key
    a %= pk.n
    c = fast_encryptor.encrypt_with_exponent(a, e)
    assert c.c == (1 + a * pk.n) * gmpy2.powmod(fast_encryptor.h_s, e, pk.nsquare) % pk.nsquare
    assert paillier_key.decrypt(c) == a


def test_phe_decrypts_fast_ciphertexts(paillier_key, fast_encryptor):
    pk = paillier_key.public_key
    phe_pk = phe.PaillierPublicKey(int(pk.n))
    phe_sk = phe.PaillierPrivateKey(phe_pk, int(paillier_key.p), int(paillier_key.q))
    for m in (0, 1, 2**1000 + 7, pk.n - 1):
        assert phe_sk.raw_decrypt(int(fast_encryptor.encrypt(m).c)) == m


def test_fast_encryptor_parameters(paillier_key, fast_encryptor):
    pk = paillier_key.public_key
    assert djn_exponent_bits(pk) == 1024
    assert fast_encryptor.table.exponent_bits == 1024
    # h_s is an n-th residue: it decrypts to 0 as a ciphertext.
    assert paillier_key.decrypt_raw(fast_encryptor.h_s) == 0
    again = FastEncryptor.create(pk, HmacDrbg.from_seed("test_paillier/djn"))
    assert again.h_s == fast_encryptor.h_s
    rebuilt = FastEncryptor.from_h_s(pk, fast_encryptor.h_s, window=6)
    assert rebuilt.encrypt_with_exponent(9, 12345) == fast_encryptor.encrypt_with_exponent(9, 12345)


def test_fast_encryptor_from_bad_h_s_raises_parameter_error(paillier_key):
    pk = paillier_key.public_key
    for h_s in (0, 1, pk.nsquare, pk.nsquare + 2, -3, paillier_key.p, pk.n):
        with pytest.raises(ParameterError):
            FastEncryptor.from_h_s(pk, h_s)


# ---------------------------------------------------------------------------
# Offline / online encryption (spec 4.3)
# ---------------------------------------------------------------------------


def test_reusing_a_randomiser_reveals_the_plaintext_difference(paillier_key):
    """Spec 4.3: why the pool spends each randomiser once (no private key used below)."""
    pk = paillier_key.public_key
    n, n2 = pk.n, pk.nsquare
    rn = pk.randomiser(HmacDrbg.from_seed("reuse"))
    m1, m2 = 1234, 987654321
    c1, c2 = pk.encrypt_with_randomiser(m1, rn), pk.encrypt_with_randomiser(m2, rn)
    quotient = c1.c * gmpy2.invert(c2.c, n2) % n2
    assert (quotient - 1) // n == (m1 - m2) % n
    pool = RandomiserPool(pk)
    pool.refill(2, HmacDrbg.from_seed("reuse"))
    d1, d2 = pool.encrypt(m1), pool.encrypt(m2)
    assert (d1.c * gmpy2.invert(d2.c, n2) % n2 - 1) // n != (m1 - m2) % n


@pytest.mark.parametrize("fast", [False, True], ids=["standard", "djn"])
def test_pool_ciphertexts_decrypt_and_each_randomiser_is_used_once(paillier_key, fast_encryptor, fast):
    pk = paillier_key.public_key
    pool = RandomiserPool(pk, fast_encryptor if fast else None)
    assert len(pool) == 0
    pool.refill(4, HmacDrbg.from_seed("pool"))
    assert len(pool) == 4
    c1 = pool.encrypt(42)
    assert len(pool) == 3
    c2 = pool.encrypt(42)
    assert len(pool) == 2
    assert c1 != c2
    assert paillier_key.decrypt(c1) == paillier_key.decrypt(c2) == 42
    m = pk.n - 1
    assert paillier_key.decrypt(pool.encrypt(m)) == m
    assert paillier_key.decrypt(pool.encrypt(0)) == 0
    assert len(pool) == 0
    with pytest.raises(StateError):
        pool.encrypt(1)


def test_pool_randomisers_are_distinct(paillier_key, fast_encryptor):
    pool = RandomiserPool(paillier_key.public_key, fast_encryptor)
    pool.refill(6)
    cts = [pool.encrypt(0) for _ in range(6)]
    assert len({c.c for c in cts}) == 6


def test_empty_pool_raises_state_error(paillier_key):
    with pytest.raises(StateError):
        RandomiserPool(paillier_key.public_key).encrypt(0)


def test_pool_refuses_bad_plaintext_without_spending_a_randomiser(paillier_key):
    pool = RandomiserPool(paillier_key.public_key)
    pool.refill(1)
    for m in (-1, paillier_key.public_key.n, 1.0, True):
        with pytest.raises(ParameterError):
            pool.encrypt(m)
    assert len(pool) == 1


def test_pool_refill_with_negative_count_raises_parameter_error(paillier_key):
    with pytest.raises(ParameterError):
        RandomiserPool(paillier_key.public_key).refill(-1)


def test_pool_with_encryptor_of_another_key_raises_key_mismatch(paillier_key, other_paillier_key):
    other = FastEncryptor.create(other_paillier_key.public_key, HmacDrbg.from_seed("other"))
    with pytest.raises(KeyMismatchError):
        RandomiserPool(paillier_key.public_key, other)


# ---------------------------------------------------------------------------
# Encodings (spec 7)
# ---------------------------------------------------------------------------


def test_public_key_round_trip(paillier_key, other_paillier_key):
    for sk in (paillier_key, other_paillier_key, small_key()):
        pk = sk.public_key
        data = pk.to_bytes()
        assert len(data) == (pk.bits + 7) // 8 and data[0] != 0
        assert PublicKey.from_bytes(data, min_bits=pk.min_bits).n == pk.n


def test_private_key_round_trip(paillier_key, other_paillier_key):
    for sk in (paillier_key, other_paillier_key):
        data = sk.to_bytes()
        assert len(data) == 2 * 128
        back = PrivateKey.from_bytes(data)
        assert back == sk and back.p == sk.p and back.q == sk.q and back.hp == sk.hp
    small = small_key()
    assert PrivateKey.from_bytes(small.to_bytes(), min_bits=1024) == small


@FAST
@given(a=PLAINTEXT)
def test_ciphertext_round_trip_and_fixed_length(paillier_key, fast_encryptor, a):
    pk = paillier_key.public_key
    c = fast_encryptor.encrypt(a % pk.n)
    data = c.to_bytes()
    assert len(data) == pk.ciphertext_length() == 512
    assert Ciphertext.from_bytes(pk, data) == c
    assert Ciphertext.from_bytes(pk, bytearray(data)) == c


def test_small_ciphertext_values_keep_the_fixed_length(paillier_key):
    pk = paillier_key.public_key
    for c in (1, 2, pk.n + 1, pk.nsquare - 1):
        ct = pk.ciphertext(c)
        data = ct.to_bytes()
        assert len(data) == pk.ciphertext_length()
        assert Ciphertext.from_bytes(pk, data).c == c


def test_reprs_do_not_show_the_factors(paillier_key):
    text = repr(paillier_key) + str(paillier_key)
    for secret in (paillier_key.p, paillier_key.q):
        assert str(int(secret)) not in text and f"{int(secret):x}" not in text


# ---------------------------------------------------------------------------
# Negative tests: ciphertexts
# ---------------------------------------------------------------------------


def test_invalid_ciphertext_integers_raise_invalid_ciphertext_error(paillier_key):
    pk = paillier_key.public_key
    bad = [0, pk.nsquare, pk.nsquare + 1, 2 * pk.nsquare, -1, -pk.n - 1,
           paillier_key.p, paillier_key.q, pk.n, 2 * pk.n, paillier_key.p * 7]
    for c in bad:
        with pytest.raises(InvalidCiphertextError):
            pk.ciphertext(c)


@pytest.mark.parametrize("c", [True, False, "5", 5.0, None, b"\x05"])
def test_non_integer_ciphertexts_raise_invalid_ciphertext_error(paillier_key, c):
    with pytest.raises(InvalidCiphertextError):
        paillier_key.public_key.ciphertext(c)


def test_invalid_ciphertext_is_a_decode_error():
    assert issubclass(InvalidCiphertextError, DecodeError)


def test_ciphertext_from_bytes_wrong_length_raises_decode_error(paillier_key):
    pk = paillier_key.public_key
    data = pk.encrypt(3).to_bytes()
    for wrong in (data[:-1], data[1:], b"\x00" + data, data + b"\x01", b"", data * 2):
        with pytest.raises(DecodeError) as info:
            Ciphertext.from_bytes(pk, wrong)
        assert type(info.value) is DecodeError
    with pytest.raises(DecodeError):
        Ciphertext.from_bytes(pk, data.hex())


def test_ciphertext_from_bytes_out_of_group_raises_invalid_ciphertext_error(paillier_key):
    pk = paillier_key.public_key
    length = pk.ciphertext_length()
    for c in (0, pk.nsquare, (1 << (8 * length)) - 1, pk.n, paillier_key.p):
        if c.bit_length() <= 8 * length:
            with pytest.raises(InvalidCiphertextError):
                Ciphertext.from_bytes(pk, int(c).to_bytes(length, "big"))


# ---------------------------------------------------------------------------
# Negative tests: keys
# ---------------------------------------------------------------------------


def test_public_key_from_bytes_with_leading_zero_raises_decode_error(paillier_key):
    data = paillier_key.public_key.to_bytes()
    with pytest.raises(DecodeError):
        PublicKey.from_bytes(b"\x00" + data)
    for bad in (b"", "00ff", None):
        with pytest.raises(DecodeError):
            PublicKey.from_bytes(bad)


def test_public_key_too_small_raises_parameter_error():
    small = small_key().public_key
    with pytest.raises(ParameterError):
        PublicKey(small.n)
    with pytest.raises(ParameterError):
        PublicKey.from_bytes(small.to_bytes())
    assert PublicKey(small.n, min_bits=1024) == small


def test_public_key_even_or_square_modulus_raises_parameter_error(paillier_key):
    p = paillier_key.p
    for n in (paillier_key.public_key.n + 1, 2 * paillier_key.public_key.n, 1 << 2048, p * p):
        assert n.bit_length() >= 2048
        with pytest.raises(ParameterError):
            PublicKey(n)
    for n in (9, 1, 4, -15, 0):
        with pytest.raises(ParameterError):
            PublicKey(n, min_bits=1)


def test_from_factors_rejects_bad_factors(paillier_key):
    rng = HmacDrbg.from_seed("test_paillier/factors")
    p, q = paillier_key.p, paillier_key.q
    with pytest.raises(ParameterError):
        PrivateKey.from_factors(p, p)
    with pytest.raises(ParameterError):  # unequal lengths
        PrivateKey.from_factors(p, random_prime(1000, rng))
    composite = random_prime(512, rng) * random_prime(512, rng)
    assert composite.bit_length() == q.bit_length()
    with pytest.raises(ParameterError):
        PrivateKey.from_factors(composite, q)
    with pytest.raises(ParameterError):
        PrivateKey.from_factors(p, q + 1)  # even
    with pytest.raises(ParameterError):  # valid factors, but n below the default minimum
        PrivateKey.from_factors(small_key().p, small_key().q)
    # The good case, in either order, gives the canonical p < q.
    assert PrivateKey.from_factors(q, p) == paillier_key
    assert PrivateKey.from_factors(q, p).p == p


def test_private_key_from_bytes_non_canonical_order_raises_decode_error(paillier_key):
    half = 128
    data = paillier_key.to_bytes()
    swapped = data[half:] + data[:half]  # q || p with p < q
    with pytest.raises(DecodeError):
        PrivateKey.from_bytes(swapped)


def test_private_key_from_bytes_wrong_length_raises_decode_error(paillier_key):
    data = paillier_key.to_bytes()
    half = len(data) // 2
    padded = b"\x00" + data[:half] + b"\x00" + data[half:]  # each factor one byte longer
    for bad in (data[:-1], data + b"\x00", padded, b"", b"\x01", "ab"):
        with pytest.raises(DecodeError):
            PrivateKey.from_bytes(bad)


def test_plaintext_out_of_range_or_not_int_raises_parameter_error(paillier_key):
    pk = paillier_key.public_key
    for m in (-1, pk.n, pk.n + 1, 2**4096, 1.0, 0.5, True, False, "1", None):
        with pytest.raises(ParameterError):
            pk.encrypt(m)
        with pytest.raises(ParameterError):
            pk.encrypt_with_r(m, 3)
    for r in (0, pk.n, paillier_key.p, pk.nsquare, -1):
        with pytest.raises(ParameterError):
            pk.encrypt_with_r(1, r)


def test_mismatched_keys_raise_key_mismatch_error(paillier_key, other_paillier_key):
    pk, other = paillier_key.public_key, other_paillier_key.public_key
    assert pk != other
    mine, theirs = pk.encrypt(1), other.encrypt(2)
    with pytest.raises(KeyMismatchError):
        mine + theirs
    with pytest.raises(KeyMismatchError):
        theirs + mine
    with pytest.raises(KeyMismatchError):
        mine - theirs
    with pytest.raises(KeyMismatchError):
        sum_ciphertexts([mine, mine, theirs])
    with pytest.raises(KeyMismatchError):
        paillier_key.decrypt(theirs)
    with ParallelDecryptor(paillier_key) as decryptor, pytest.raises(KeyMismatchError):
        decryptor.decrypt(theirs)


def test_unsupported_operand_types_raise_type_error(paillier_key):
    c = paillier_key.public_key.encrypt(1)
    for bad in (1.5, "2", True, None):
        with pytest.raises(TypeError):
            c + bad
        with pytest.raises(TypeError):
            c * bad


# ---------------------------------------------------------------------------
# Key generation (spec 3)
# ---------------------------------------------------------------------------


def check_generated_key(sk: PrivateKey, bits: int) -> None:
    p, q, n = sk.p, sk.q, sk.public_key.n
    assert n == p * q
    assert n.bit_length() == bits
    assert p.bit_length() == q.bit_length() == bits // 2
    assert p != q and p < q
    assert abs(p - q) >= 1 << (bits // 2 - 100)
    assert gmpy2.is_prime(p) and gmpy2.is_prime(q)
    assert gmpy2.gcd(n, (p - 1) * (q - 1)) == 1


def test_session_keys_pass_the_key_checks(paillier_key, other_paillier_key):
    check_generated_key(paillier_key, 2048)
    check_generated_key(other_paillier_key, 2048)


def test_generate_keypair_is_deterministic_for_a_seed(paillier_key):
    a = generate_keypair(2048, HmacDrbg.from_seed("usapp-tests/paillier-2048"))
    b = generate_keypair(2048, HmacDrbg.from_seed("usapp-tests/paillier-2048"))
    assert a == b == paillier_key and a.q == b.q
    c = generate_keypair(2048, HmacDrbg.from_seed("usapp-tests/paillier-2048-x"))
    assert c != a and c.public_key != a.public_key
    check_generated_key(c, 2048)


def test_generate_keypair_3072():
    sk = generate_keypair(3072, HmacDrbg.from_seed("test_paillier/3072"))
    check_generated_key(sk, 3072)
    pk = sk.public_key
    assert pk.ciphertext_length() == 768
    c = pk.encrypt(12345, HmacDrbg.from_seed("c"))
    assert sk.decrypt(c) == 12345
    assert PrivateKey.from_bytes(sk.to_bytes()) == sk


@pytest.mark.parametrize("bits", [0, 512, 1024, 2047, 2049, 4096, "2048"])
def test_generate_keypair_unsupported_size_raises_parameter_error(bits):
    with pytest.raises(ParameterError):
        generate_keypair(bits, HmacDrbg.from_seed("x"))


def test_keygen_replays_from_recorded_draws_and_fails_loudly_when_short():
    recorder = RecordingRandom(HmacDrbg.from_seed("test_paillier/replay"))
    sk = generate_keypair(2048, recorder)
    replay = ReplayRandom(list(recorder.draws))
    assert generate_keypair(2048, replay) == sk
    assert replay.exhausted
    with pytest.raises(RandomnessError):
        generate_keypair(2048, ReplayRandom(recorder.draws[:-1]))
    with pytest.raises(RandomnessError):
        generate_keypair(2048, ReplayRandom([]))
    with pytest.raises(RandomnessError):  # a draw of the wrong length
        generate_keypair(2048, ReplayRandom([recorder.draws[0] + b"\x00"] + recorder.draws[1:]))
