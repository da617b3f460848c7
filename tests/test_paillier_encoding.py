"""Tests of protocols.schemes.paillier_encoding (specs/paillier.md sections 8-10).

Properties named here:

- phe agreement: EncodedNumber.encode/decode give python-paillier's
  (encoding, exponent) and values, and encrypted numbers move between the two
  libraries both ways, through arithmetic too (``test_*_agrees_with_phe*``);
- packing: pack/unpack round trip and slot-wise sums within the headroom,
  overflow refused beyond it (``test_pack*``, ``test_packed_*``);
- phe JSON: round trips, and interop both ways with phe's own command-line
  tool ``pheutil`` (``test_pheutil_*``);
- strict decoding: every malformed input raises the named error.
"""

from __future__ import annotations

import base64
import functools
import json
import math
import sys
from fractions import Fraction

import gmpy2
import phe  # type: ignore[import-untyped]
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from protocols.errors import (
    DecodeError,
    EncodingOverflowError,
    InvalidCiphertextError,
    KeyMismatchError,
    ParameterError,
)
from protocols.primitives.drbg import HmacDrbg
from protocols.primitives.numtheory import random_prime
from protocols.schemes.paillier import FastEncryptor, PrivateKey, PublicKey, RandomiserPool
from protocols.schemes.paillier_encoding import (
    MAX_EXPONENT_MAGNITUDE,
    EncodedNumber,
    EncryptedNumber,
    PackedCiphertext,
    PackingLayout,
    decrypt_number,
    decrypt_packed,
    encrypt_number,
    encrypt_packed,
    from_phe_json,
    sum_packed,
    to_phe_json,
)

FLOATS = st.floats(allow_nan=False, allow_infinity=False)
INTS = st.one_of(st.integers(), st.integers(min_value=-(2**2100), max_value=2**2100))
NUMBERS = st.one_of(INTS, FLOATS)
MODERATE = st.one_of(
    st.integers(min_value=-(2**200), max_value=2**200),
    st.floats(min_value=-1e30, max_value=1e30, allow_nan=False),
)
SCALARS = st.one_of(
    st.integers(min_value=-(2**64), max_value=2**64),
    st.floats(min_value=-1e6, max_value=1e6, allow_nan=False),
)
PRECISION = st.none() | st.floats(min_value=1e-40, max_value=1e40)
MAX_EXPONENT = st.none() | st.integers(min_value=-80, max_value=80)

CHEAP = settings(max_examples=300, deadline=None)
CRYPTO = settings(max_examples=20, deadline=None)


@pytest.fixture(scope="module")
def phe_keys(paillier_key):
    """The session key as python-paillier objects."""
    ppk = phe.PaillierPublicKey(int(paillier_key.public_key.n))
    return ppk, phe.PaillierPrivateKey(ppk, int(paillier_key.p), int(paillier_key.q))


@pytest.fixture(scope="module")
def fast_encryptor(paillier_key):
    return FastEncryptor.create(paillier_key.public_key, HmacDrbg.from_seed("test_paillier_encoding/djn"))


@functools.lru_cache(maxsize=None)
def small_key() -> PrivateKey:
    rng = HmacDrbg.from_seed("test_paillier_encoding/small-key")
    return PrivateKey.from_factors(random_prime(512, rng), random_prime(512, rng), min_bits=1024)


def ours_encode(pk, value, **kwargs):
    try:
        encoded = EncodedNumber.encode(pk, value, **kwargs)
    except EncodingOverflowError:
        return "overflow"
    return int(encoded.encoding), encoded.exponent


def phe_encode(ppk, value, **kwargs):
    try:
        encoded = phe.EncodedNumber.encode(ppk, value, **kwargs)
    except ValueError:
        return "overflow"
    return int(encoded.encoding), encoded.exponent


def ours_decrypt(sk, number):
    try:
        return decrypt_number(sk, number)
    except EncodingOverflowError:
        return "overflow"


def phe_decrypt(phe_sk, number):
    try:
        return phe_sk.decrypt(number)
    except OverflowError:
        return "overflow"


def to_phe(ppk, number: EncryptedNumber) -> phe.EncryptedNumber:
    return phe.EncryptedNumber(ppk, int(number.ciphertext.c), number.exponent)


# ---------------------------------------------------------------------------
# Section 8: encoding agrees with phe
# ---------------------------------------------------------------------------


@CHEAP
@given(value=NUMBERS)
def test_encode_agrees_with_phe(paillier_key, phe_keys, value):
    pk, (ppk, _) = paillier_key.public_key, phe_keys
    ours = ours_encode(pk, value)
    assert ours == phe_encode(ppk, value)
    if isinstance(value, int) and abs(value) <= pk.max_int:
        assert ours == (value % pk.n, 0)


@CHEAP
@given(value=NUMBERS, precision=PRECISION, max_exponent=MAX_EXPONENT)
def test_encode_with_precision_and_max_exponent_agrees_with_phe(paillier_key, phe_keys, value, precision,
                                                                max_exponent):
    pk, (ppk, _) = paillier_key.public_key, phe_keys
    kwargs = {"precision": precision, "max_exponent": max_exponent}
    assert ours_encode(pk, value, **kwargs) == phe_encode(ppk, value, **kwargs)


@CHEAP
@given(sign=st.sampled_from([1, -1]), offset=st.integers(min_value=-(2**20), max_value=2**20),
       max_exponent=MAX_EXPONENT)
def test_encode_near_max_int_agrees_with_phe(paillier_key, phe_keys, sign, offset, max_exponent):
    pk, (ppk, _) = paillier_key.public_key, phe_keys
    value = sign * int(pk.max_int) + offset
    ours = ours_encode(pk, value, max_exponent=max_exponent)
    assert ours == phe_encode(ppk, value, max_exponent=max_exponent)
    if max_exponent is None or max_exponent >= 0:
        assert (ours == "overflow") == (abs(value) > pk.max_int)


@CHEAP
@given(encoding=st.integers(min_value=0, max_value=2**2048), exponent=st.integers(min_value=-300, max_value=40))
def test_decode_agrees_with_phe(paillier_key, phe_keys, encoding, exponent):
    """Against the exact rational value (correctly rounded to a float), and phe.

    phe (with gmpy2) divides mpz by int and so returns an mpfr, which has no
    float range limit and no subnormals: it is compared where it is a normal
    float, and its overflow-region detection must be ours."""
    pk, (ppk, _) = paillier_key.public_key, phe_keys
    encoding %= pk.n
    if encoding <= pk.max_int:
        mantissa = encoding
    elif encoding >= pk.n - pk.max_int:
        mantissa = encoding - pk.n
    else:
        mantissa = None
    try:
        ours = EncodedNumber(pk, gmpy2.mpz(encoding), exponent).decode()
    except EncodingOverflowError:
        ours = "overflow"
    try:
        theirs = phe.EncodedNumber(ppk, encoding, exponent).decode()
    except OverflowError:
        theirs = "overflow"
    if mantissa is None:
        assert ours == theirs == "overflow"
        return
    assert theirs != "overflow"
    exact = Fraction(int(mantissa)) * Fraction(16) ** exponent
    if exponent >= 0:
        assert type(ours) is int and ours == exact == theirs
        return
    try:
        expected = float(exact)
    except OverflowError:
        expected = "overflow"
    assert ours == expected
    if expected != "overflow" and (expected == 0 or abs(expected) >= sys.float_info.min):
        assert type(ours) is float and ours == float(theirs)


def test_encode_rounds_half_to_even_on_the_exact_value(paillier_key, phe_keys):
    pk, (ppk, _) = paillier_key.public_key, phe_keys
    cases = {2.5: 2, 3.5: 4, 0.5: 0, 1.5: 2, -2.5: -2, -3.5: -4, 7: 7}
    for value, mantissa in cases.items():
        encoded = EncodedNumber.encode(pk, value, precision=1)
        assert encoded.exponent == 0 and encoded.mantissa() == mantissa
        assert int(encoded.encoding) == phe.EncodedNumber.encode(ppk, value, precision=1).encoding
    # With precision 0.1 the exponent is floor(log_16 0.1) = -1: halves of 1/16 round to even.
    for value, mantissa in {2.5 / 16: 2, 3.5 / 16: 4, -0.5 / 16: 0, 0.1: 2}.items():
        encoded = EncodedNumber.encode(pk, value, precision=0.1)
        assert encoded.exponent == -1 and encoded.mantissa() == mantissa
    assert EncodedNumber.encode(pk, 5, precision=0.01).exponent == -2


def test_decode_overflow_region_raises_encoding_overflow_error(paillier_key):
    pk = paillier_key.public_key
    n, max_int = pk.n, pk.max_int
    assert EncodedNumber(pk, max_int, 0).decode() == max_int
    assert EncodedNumber(pk, n - max_int, 0).decode() == -max_int
    assert EncodedNumber(pk, n - 1, 2).decode() == -256
    for encoding in (max_int + 1, n // 2, n - max_int - 1):
        with pytest.raises(EncodingOverflowError):
            EncodedNumber(pk, encoding, 0).decode()
    with pytest.raises(EncodingOverflowError):  # beyond the float range
        EncodedNumber(pk, max_int, -1).decode()
    with pytest.raises(DecodeError):  # not reduced mod n
        EncodedNumber(pk, n, 0).decode()


def test_decrypt_number_of_overflowed_plaintext_raises_encoding_overflow_error(paillier_key):
    pk = paillier_key.public_key
    number = EncryptedNumber(pk.encrypt(pk.n // 2), 0)
    with pytest.raises(EncodingOverflowError):
        decrypt_number(paillier_key, number)
    big = encrypt_number(pk, int(pk.max_int))
    with pytest.raises(EncodingOverflowError):  # max_int + max_int overflows
        decrypt_number(paillier_key, big + big)


@pytest.mark.parametrize("bad", ["max_int+1", "-max_int-1", 2**3000, -(2**3000)])
def test_encode_of_too_large_int_raises_encoding_overflow_error(paillier_key, bad):
    pk = paillier_key.public_key
    value = {"max_int+1": int(pk.max_int) + 1, "-max_int-1": -int(pk.max_int) - 1}.get(bad, bad)
    with pytest.raises(EncodingOverflowError):
        EncodedNumber.encode(pk, value)
    with pytest.raises(EncodingOverflowError):
        encrypt_number(pk, value)


def test_encode_of_float_overflowing_its_max_exponent_raises_encoding_overflow_error(paillier_key):
    with pytest.raises(EncodingOverflowError):
        EncodedNumber.encode(paillier_key.public_key, 1e300, max_exponent=-300)


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf, "1", None, True, False, 1j, b"1", [1]])
def test_encode_of_non_numbers_raises_parameter_error(paillier_key, bad):
    with pytest.raises(ParameterError) as info:
        EncodedNumber.encode(paillier_key.public_key, bad)
    assert type(info.value) is ParameterError


@pytest.mark.parametrize("precision", [0, -1.0, -1e-9, math.nan, math.inf, True, "0.1"])
def test_encode_with_bad_precision_raises_parameter_error(paillier_key, precision):
    with pytest.raises(ParameterError):
        EncodedNumber.encode(paillier_key.public_key, 1.5, precision=precision)


def test_decrease_exponent_upwards_raises_parameter_error(paillier_key):
    pk = paillier_key.public_key
    encoded = EncodedNumber.encode(pk, 1.25)
    with pytest.raises(ParameterError):
        encoded.decrease_exponent_to(encoded.exponent + 1)
    assert encoded.decrease_exponent_to(encoded.exponent) == encoded
    lower = encoded.decrease_exponent_to(encoded.exponent - 3)
    assert lower.exponent == encoded.exponent - 3 and lower.decode() == 1.25
    number = encrypt_number(pk, 1.25)
    with pytest.raises(ParameterError):
        number.decrease_exponent_to(number.exponent + 1)
    assert decrypt_number(paillier_key, number.decrease_exponent_to(number.exponent - 5)) == 1.25


# ---------------------------------------------------------------------------
# Section 8: encrypted numbers, both ways with phe
# ---------------------------------------------------------------------------


@settings(max_examples=40, deadline=None)
@given(value=NUMBERS, precision=PRECISION)
def test_encrypt_number_round_trip_and_phe_decrypts_it(paillier_key, phe_keys, fast_encryptor, value, precision):
    pk, (ppk, phe_sk) = paillier_key.public_key, phe_keys
    if ours_encode(pk, value, precision=precision) == "overflow":
        return
    number = encrypt_number(pk, value, precision=precision, encryptor=fast_encryptor)
    encoded = phe.EncodedNumber.encode(ppk, value, precision=precision)
    assert number.exponent == encoded.exponent
    try:
        expected = encoded.decode()
    except OverflowError:  # e.g. a huge int encoded with a fractional precision
        expected = "overflow"
    assert ours_decrypt(paillier_key, number) == expected
    assert phe_decrypt(phe_sk, to_phe(ppk, number)) == expected
    if precision is None:
        assert expected == value  # the default encoding is exact


@CRYPTO
@given(value=st.one_of(st.integers(min_value=-(2**1000), max_value=2**1000), FLOATS))
def test_phe_ciphertexts_decrypt_with_us(paillier_key, phe_keys, value):
    pk, (ppk, phe_sk) = paillier_key.public_key, phe_keys
    encrypted = ppk.encrypt(value)
    ours = EncryptedNumber(pk.ciphertext(encrypted.ciphertext()), encrypted.exponent)
    assert decrypt_number(paillier_key, ours) == phe_sk.decrypt(encrypted) == value


@CRYPTO
@given(a=MODERATE, b=MODERATE, k=SCALARS)
def test_encrypted_arithmetic_agrees_with_phe(paillier_key, phe_keys, fast_encryptor, a, b, k):
    pk, (ppk, phe_sk) = paillier_key.public_key, phe_keys
    ea = encrypt_number(pk, a, encryptor=fast_encryptor)
    eb = encrypt_number(pk, b, encryptor=fast_encryptor)
    pa, pb = to_phe(ppk, ea), to_phe(ppk, eb)
    cases = {
        "a + b": (lambda x, y: x + y),
        "a - b": (lambda x, y: x - y),
        "a * k": (lambda x, y: x * k),
        "k * b": (lambda x, y: k * y),
        "a + k": (lambda x, y: x + k),
        "a - k": (lambda x, y: x - k),
        "k - a": (lambda x, y: k - x),
        "-a": (lambda x, y: x * -1),
        "(a + b) * k + a": (lambda x, y: (x + y) * k + x),
    }
    for name, operation in cases.items():
        try:
            theirs = operation(pa, pb)
        except ValueError:
            # phe refuses to lower an exponent by a factor 16^d above max_int
            # (e.g. after multiplying by a subnormal float) or to encode an
            # oversized scalar: the result would wrap mod n.  So must we.
            with pytest.raises(EncodingOverflowError):
                operation(ea, eb)
            continue
        ours = operation(ea, eb)
        assert ours.exponent == theirs.exponent, name
        # Spec 8.5: the same ciphertext integers as phe's operations.
        assert ours.ciphertext.c == theirs.ciphertext(be_secure=False), name
        value = ours_decrypt(paillier_key, ours)
        assert value == phe_decrypt(phe_sk, theirs), name
        assert phe_decrypt(phe_sk, to_phe(ppk, ours)) == value, name
    assert (-ea).ciphertext == (ea * -1).ciphertext
    assert ours_decrypt(paillier_key, ea + eb) == phe_decrypt(phe_sk, pa + pb) != "overflow"


def test_lowering_an_encrypted_exponent_too_far_raises_encoding_overflow_error(paillier_key, phe_keys):
    """(E(1e300) + E(2.0)) * 5e-324 + E(1e300) needs E(1e300) (exponent 236) lowered to
    exponent -295, by 16^531 > max_int: phe raises, so must we (a silent wrap mod n
    would decrypt to a wrong value)."""
    pk, (ppk, _) = paillier_key.public_key, phe_keys
    a, b = encrypt_number(pk, 1e300), encrypt_number(pk, 2.0)
    assert (a.exponent, b.exponent) == (236, -13)
    with pytest.raises(ValueError):
        (to_phe(ppk, a) + to_phe(ppk, b)) * 5e-324 + to_phe(ppk, a)
    with pytest.raises(EncodingOverflowError):
        (a + b) * 5e-324 + a
    with pytest.raises(EncodingOverflowError):
        a.decrease_exponent_to(a.exponent - 600)


def test_encrypted_arithmetic_with_mixed_exponents(paillier_key, phe_keys):
    pk, (ppk, phe_sk) = paillier_key.public_key, phe_keys
    a = encrypt_number(pk, 3)  # exponent 0
    b = encrypt_number(pk, 0.5)  # exponent -13
    c = encrypt_number(pk, 2.0, max_exponent=-30)
    assert (a.exponent, b.exponent, c.exponent) == (0, -14, -30)
    assert decrypt_number(paillier_key, a + b) == 3.5
    assert decrypt_number(paillier_key, b + c - a) == -0.5
    assert (a + c).exponent == -30
    assert decrypt_number(paillier_key, a * 0.25) == 0.75
    assert phe_sk.decrypt(to_phe(ppk, b + c - a)) == -0.5


def test_encrypted_number_with_other_key_raises_key_mismatch(paillier_key, other_paillier_key):
    mine = encrypt_number(paillier_key.public_key, 1)
    theirs = encrypt_number(other_paillier_key.public_key, 2)
    with pytest.raises(KeyMismatchError):
        mine + theirs
    with pytest.raises(KeyMismatchError):
        mine - theirs
    with pytest.raises(KeyMismatchError):
        decrypt_number(paillier_key, theirs)


def test_encrypted_numbers_cannot_be_multiplied(paillier_key):
    a = encrypt_number(paillier_key.public_key, 2)
    with pytest.raises(ParameterError):
        a * a
    with pytest.raises(TypeError):
        a * "2"


@pytest.mark.parametrize("value", [1, -1, 0.5])
@pytest.mark.parametrize("target_modulus", ["smaller", "larger"])
@pytest.mark.parametrize("kind", ["fast", "pool"])
def test_encrypt_number_with_encryptor_of_another_key_raises_key_mismatch(paillier_key, other_paillier_key, kind,
                                                                          target_modulus, value):
    """The target key's n is the smaller or the larger of the two session keys'."""
    smaller, larger = sorted((paillier_key, other_paillier_key), key=lambda sk: sk.public_key.n)
    target, foreign = (smaller, larger) if target_modulus == "smaller" else (larger, smaller)
    encryptor = FastEncryptor.create(foreign.public_key, HmacDrbg.from_seed("foreign"))
    if kind == "pool":
        encryptor = RandomiserPool(foreign.public_key, encryptor)
        encryptor.refill(1)
    with pytest.raises(KeyMismatchError):
        encrypt_number(target.public_key, value, encryptor=encryptor)


def test_encrypt_number_refused_for_another_key_spends_no_pool_randomiser(paillier_key, other_paillier_key):
    pool = RandomiserPool(other_paillier_key.public_key)
    pool.refill(1)
    with pytest.raises(KeyMismatchError):
        encrypt_number(paillier_key.public_key, 1, encryptor=pool)
    assert len(pool) == 1


def test_encrypt_number_with_pool(paillier_key, fast_encryptor):
    pool = RandomiserPool(paillier_key.public_key, fast_encryptor)
    pool.refill(2)
    first = encrypt_number(paillier_key.public_key, -7.5, encryptor=pool)
    second = encrypt_number(paillier_key.public_key, -7.5, encryptor=pool)
    assert first.ciphertext != second.ciphertext and len(pool) == 0
    assert decrypt_number(paillier_key, first) == decrypt_number(paillier_key, second) == -7.5


# ---------------------------------------------------------------------------
# Section 9: packing
# ---------------------------------------------------------------------------


@st.composite
def layouts(draw, key_bits=2048):
    value_bits = draw(st.integers(min_value=1, max_value=64))
    max_summands = draw(st.one_of(st.integers(min_value=1, max_value=40), st.integers(min_value=1, max_value=2**20)))
    headroom = (max_summands - 1).bit_length()
    max_slots = (key_bits - 1) // (value_bits + headroom)
    slots = draw(st.integers(min_value=1, max_value=max_slots))
    return PackingLayout(value_bits, slots, max_summands)


def slot_vectors(layout, min_size=1):
    return st.lists(
        st.integers(min_value=0, max_value=(1 << layout.value_bits) - 1),
        min_size=min_size,
        max_size=layout.slots,
    )


@CHEAP
@given(layout=layouts(), data=st.data())
def test_pack_unpack_round_trip(paillier_key, layout, data):
    layout.check_key(paillier_key.public_key)
    values = data.draw(slot_vectors(layout))
    packed = layout.pack(values)
    assert 0 <= packed < paillier_key.public_key.n
    assert layout.unpack(packed, len(values)) == values
    assert layout.unpack(packed) == values + [0] * (layout.slots - len(values))


@CHEAP
@given(layout=layouts(), data=st.data())
def test_packed_plaintext_sum_at_full_headroom_is_slot_wise(paillier_key, layout, data):
    """max_summands vectors of the largest values still add without carries."""
    count = data.draw(st.integers(min_value=1, max_value=min(layout.max_summands, 8)))
    vectors = [data.draw(slot_vectors(layout, min_size=layout.slots)) for _ in range(count)]
    top = (1 << layout.value_bits) - 1
    # Pad the sum to max_summands vectors with all-maximal ones: the worst case.
    total = sum(layout.pack(v) for v in vectors) + (layout.max_summands - count) * layout.pack([top] * layout.slots)
    assert total < paillier_key.public_key.n
    expected = [sum(column) + (layout.max_summands - count) * top for column in zip(*vectors)]
    assert layout.unpack(total) == expected


@CRYPTO
@given(layout=layouts(), data=st.data())
def test_packed_ciphertext_sum_equals_slot_wise_sums(paillier_key, fast_encryptor, layout, data):
    pk = paillier_key.public_key
    count = data.draw(st.integers(min_value=1, max_value=min(layout.max_summands, 5)))
    vectors = [data.draw(slot_vectors(layout)) for _ in range(count)]
    items = [encrypt_packed(pk, layout, v, encryptor=fast_encryptor) for v in vectors]
    width = max(len(v) for v in vectors)
    expected = [sum(v[i] if i < len(v) else 0 for v in vectors) for i in range(width)]
    total = sum_packed(items)
    assert total.summands == count
    assert decrypt_packed(paillier_key, total, width) == expected
    folded = functools.reduce(lambda x, y: x + y, items)
    assert folded.summands == count and folded.ciphertext == total.ciphertext
    assert decrypt_packed(paillier_key, folded, width) == expected


@CHEAP
@given(value_bits=st.integers(min_value=1, max_value=2000), max_summands=st.integers(min_value=1, max_value=2**40))
def test_fit_gives_the_most_slots(paillier_key, value_bits, max_summands):
    pk = paillier_key.public_key
    probe = PackingLayout(value_bits, 1, max_summands)
    if probe.slot_bits >= pk.bits:
        with pytest.raises(ParameterError):
            PackingLayout.fit(pk, value_bits, max_summands)
        return
    layout = PackingLayout.fit(pk, value_bits, max_summands)
    assert (layout.value_bits, layout.max_summands) == (value_bits, max_summands)
    layout.check_key(pk)
    assert layout.total_bits < pk.bits
    with pytest.raises(ParameterError):
        PackingLayout(value_bits, layout.slots + 1, max_summands).check_key(pk)


def test_fit_example_numbers(paillier_key):
    layout = PackingLayout.fit(paillier_key.public_key, 32, 1000)
    assert (layout.slot_bits, layout.slots, layout.total_bits) == (42, 48, 2016)
    assert PackingLayout(16, 4, 1).slot_bits == 16
    assert PackingLayout(16, 4, 2).slot_bits == 17
    assert PackingLayout(16, 4, 1024).slot_bits == 26
    assert PackingLayout(16, 4, 1025).slot_bits == 27


def test_packed_sum_beyond_max_summands_raises_encoding_overflow_error(paillier_key, fast_encryptor):
    pk = paillier_key.public_key
    layout = PackingLayout(8, 4, 2)
    a, b, c = (encrypt_packed(pk, layout, [255, 1], encryptor=fast_encryptor) for _ in range(3))
    assert decrypt_packed(paillier_key, a + b, 2) == [510, 2]
    with pytest.raises(EncodingOverflowError):
        (a + b) + c
    with pytest.raises(EncodingOverflowError):
        sum_packed([a, b, c])
    with pytest.raises(EncodingOverflowError):
        sum_packed([a + b, c])
    single = PackingLayout(8, 4, 1)
    d = encrypt_packed(pk, single, [1], encryptor=fast_encryptor)
    with pytest.raises(EncodingOverflowError):
        d + d


@pytest.mark.parametrize("bad", [256, 1000, -1, 1.0, True, "1", None])
def test_pack_value_out_of_range_raises_encoding_overflow_error(paillier_key, bad):
    layout = PackingLayout(8, 4, 16)
    with pytest.raises(EncodingOverflowError):
        layout.pack([1, bad])
    with pytest.raises(EncodingOverflowError):
        encrypt_packed(paillier_key.public_key, layout, [bad])


def test_pack_wrong_count_raises_parameter_error():
    layout = PackingLayout(8, 4, 16)
    with pytest.raises(ParameterError):
        layout.pack([])
    with pytest.raises(ParameterError):
        layout.pack([1] * 5)
    for count in (0, 5, -1):
        with pytest.raises(ParameterError):
            layout.unpack(0, count)


def test_unpack_overflowed_integer_raises_encoding_overflow_error():
    layout = PackingLayout(8, 4, 16)
    assert layout.unpack((1 << layout.total_bits) - 1) == [(1 << 12) - 1] * 4
    for packed in (-1, 1 << layout.total_bits):
        with pytest.raises(EncodingOverflowError):
            layout.unpack(packed)


def test_layout_too_large_for_key_raises_parameter_error(paillier_key):
    pk = paillier_key.public_key
    too_big = PackingLayout(64, 32, 1)  # 2048 bits: not below the 2048-bit n
    with pytest.raises(ParameterError):
        too_big.check_key(pk)
    with pytest.raises(ParameterError):
        encrypt_packed(pk, too_big, [1])
    with pytest.raises(ParameterError):
        PackingLayout.fit(small_key().public_key, 1024, 1)


@pytest.mark.parametrize("fields", [(0, 1, 1), (1, 0, 1), (1, 1, 0), (-8, 4, 4), (True, 4, 4), (8.0, 4, 4),
                                    (8, 4, "4")])
def test_bad_layout_fields_raise_parameter_error(fields):
    with pytest.raises(ParameterError):
        PackingLayout(*fields)


def test_mismatched_layouts_raise_parameter_error(paillier_key, fast_encryptor):
    pk = paillier_key.public_key
    a = encrypt_packed(pk, PackingLayout(8, 4, 16), [1, 2], encryptor=fast_encryptor)
    b = encrypt_packed(pk, PackingLayout(8, 4, 17), [1, 2], encryptor=fast_encryptor)
    with pytest.raises(ParameterError):
        a + b
    with pytest.raises(ParameterError):
        sum_packed([a, b])
    with pytest.raises(ParameterError):
        sum_packed([])
    with pytest.raises(TypeError):
        a + 1


def test_packed_ciphertexts_under_different_keys_raise_key_mismatch(paillier_key, other_paillier_key):
    layout = PackingLayout(8, 4, 16)
    a = encrypt_packed(paillier_key.public_key, layout, [1])
    b = encrypt_packed(other_paillier_key.public_key, layout, [1])
    with pytest.raises(KeyMismatchError):
        a + b
    with pytest.raises(KeyMismatchError):
        sum_packed([a, b])


def test_encrypt_packed_with_encryptor_of_another_key_raises_key_mismatch(paillier_key, other_paillier_key):
    foreign = FastEncryptor.create(other_paillier_key.public_key, HmacDrbg.from_seed("foreign"))
    with pytest.raises(KeyMismatchError):
        encrypt_packed(paillier_key.public_key, PackingLayout(8, 4, 16), [1, 2], encryptor=foreign)


def test_encrypt_packed_with_pool(paillier_key):
    pool = RandomiserPool(paillier_key.public_key)
    pool.refill(2)
    layout = PackingLayout(10, 8, 4)
    a = encrypt_packed(paillier_key.public_key, layout, [1, 2, 3], encryptor=pool)
    b = encrypt_packed(paillier_key.public_key, layout, [1023, 0, 5, 7], encryptor=pool)
    assert isinstance(a + b, PackedCiphertext)
    assert decrypt_packed(paillier_key, a + b) == [1024, 2, 8, 7, 0, 0, 0, 0]


# ---------------------------------------------------------------------------
# Section 10: phe JSON
# ---------------------------------------------------------------------------


def test_phe_json_public_key_round_trip_and_phe_reads_it(paillier_key):
    pk = paillier_key.public_key
    text = to_phe_json(pk, kid="meter 7")
    doc = json.loads(text)
    assert doc["kty"] == "DAJ" and doc["alg"] == "PAI-GN1" and doc["key_ops"] == ["encrypt"]
    assert doc["kid"] == "meter 7"
    assert phe.util.base64_to_int(doc["n"]) == pk.n
    assert doc["n"] == phe.util.int_to_base64(int(pk.n))
    back = from_phe_json(text)
    assert isinstance(back, PublicKey) and back == pk
    assert from_phe_json(text.encode()) == pk


def test_phe_json_private_key_round_trip(paillier_key):
    text = to_phe_json(paillier_key)
    doc = json.loads(text)
    assert doc["key_ops"] == ["decrypt"] and doc["pub"]["key_ops"] == ["encrypt"]
    assert phe.util.base64_to_int(doc["p"]) * phe.util.base64_to_int(doc["q"]) == paillier_key.public_key.n
    back = from_phe_json(text)
    assert isinstance(back, PrivateKey) and back == paillier_key and back.q == paillier_key.q
    small = small_key()
    assert from_phe_json(to_phe_json(small), min_bits=1024) == small


@CHEAP
@given(c=st.integers(min_value=1, max_value=2**4096),
       exponent=st.integers(min_value=-MAX_EXPONENT_MAGNITUDE, max_value=MAX_EXPONENT_MAGNITUDE))
def test_phe_json_encrypted_number_round_trip(paillier_key, c, exponent):
    pk = paillier_key.public_key
    c %= pk.nsquare
    if c == 0 or gmpy2.gcd(c, pk.n) != 1:
        return
    number = EncryptedNumber(pk.ciphertext(c), exponent)
    text = to_phe_json(number)
    assert json.loads(text) == {"v": str(c), "e": exponent}
    assert from_phe_json(text, pk) == number


def test_phe_json_value_list_round_trip(paillier_key):
    pk = paillier_key.public_key
    numbers = [encrypt_number(pk, v) for v in (1, -2.5, 10**30)]
    text = to_phe_json(numbers)
    doc = json.loads(text)
    assert doc["public_key"] == {"g": int(pk.n) + 1, "n": int(pk.n)}
    key, back = from_phe_json(text)
    assert key == pk and back == numbers
    key, back = from_phe_json(text, pk)
    assert [decrypt_number(paillier_key, x) for x in back] == [1, -2.5, 10**30]


def test_to_phe_json_refuses_other_objects(paillier_key, other_paillier_key):
    mine = encrypt_number(paillier_key.public_key, 1)
    theirs = encrypt_number(other_paillier_key.public_key, 1)
    with pytest.raises(KeyMismatchError):
        to_phe_json([mine, theirs])
    for bad in ([], [1], 5, "x", None, mine.ciphertext):
        with pytest.raises(ParameterError):
            to_phe_json(bad)


# -- interop with pheutil, phe's command-line tool ---------------------------

def pheutil(*args) -> None:
    """Run phe's command-line tool in-process (it needs click: phe[cli])."""
    click_testing = pytest.importorskip("click.testing")
    cli = pytest.importorskip("phe.command_line").cli
    result = click_testing.CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False)
    assert result.exit_code == 0, result.output


def parse_number(text: str) -> int | float:
    """pheutil prints an int for exponent >= 0 and a float otherwise."""
    text = text.strip()
    try:
        return int(text)
    except ValueError:
        return float(text)


def test_pheutil_key_decrypts_our_ciphertexts(tmp_path):
    priv_file, pub_file = tmp_path / "priv.json", tmp_path / "pub.json"
    pheutil("genpkey", "--keysize", "512", priv_file)
    pheutil("extract", priv_file, pub_file)
    sk = from_phe_json(priv_file.read_text(), min_bits=512)
    pk = from_phe_json(pub_file.read_text(), min_bits=512)
    assert isinstance(sk, PrivateKey) and pk == sk.public_key and pk.bits == 512
    with pytest.raises(ParameterError):  # the default minimum refuses such a key
        from_phe_json(pub_file.read_text())
    for value in (42, -17, 3.25, -0.5, 10**40):
        ct_file, out_file = tmp_path / "ct.json", tmp_path / "out.txt"
        ct_file.write_text(to_phe_json(encrypt_number(pk, value)))
        pheutil("decrypt", priv_file, ct_file, "--output", out_file)
        assert parse_number(out_file.read_text()) == value
    # pheutil's own arithmetic on our ciphertext comes back to us.
    ct_file.write_text(to_phe_json(encrypt_number(pk, 6)))
    pheutil("multiply", pub_file, ct_file, "2.5", "--output", out_file)
    assert decrypt_number(sk, from_phe_json(out_file.read_text(), pk)) == 15.0
    pheutil("add", pub_file, ct_file, "0.75", "--output", out_file)
    assert decrypt_number(sk, from_phe_json(out_file.read_text(), pk)) == 6.75


def test_pheutil_encrypts_for_our_key(tmp_path, paillier_key):
    pub_file, priv_file = tmp_path / "pub.json", tmp_path / "priv.json"
    pub_file.write_text(to_phe_json(paillier_key.public_key))
    priv_file.write_text(to_phe_json(paillier_key))
    for value in ("3.5", "-2", "1e-3", "123456789"):
        ct_file = tmp_path / "ct.json"
        pheutil("encrypt", pub_file, "--output", ct_file, "--", value)
        number = from_phe_json(ct_file.read_text(), paillier_key.public_key)
        assert number.exponent == -32
        assert decrypt_number(paillier_key, number) == float(value)
    # pheutil reads our private key file as well, and extracts our public key.
    ours = tmp_path / "ours.json"
    ours.write_text(to_phe_json(encrypt_number(paillier_key.public_key, -12.125)))
    out_file = tmp_path / "out.txt"
    pheutil("decrypt", priv_file, ours, "--output", out_file)
    assert parse_number(out_file.read_text()) == -12.125
    extracted = tmp_path / "extracted.json"
    pheutil("extract", priv_file, extracted)
    assert from_phe_json(extracted.read_text()) == paillier_key.public_key


def test_pheutil_adds_our_ciphertexts(tmp_path, paillier_key):
    pk = paillier_key.public_key
    pub_file, a_file, b_file, out_file = (tmp_path / name for name in ("pub.json", "a.json", "b.json", "sum.json"))
    pub_file.write_text(to_phe_json(pk))
    a_file.write_text(to_phe_json(encrypt_number(pk, 1234)))
    b_file.write_text(to_phe_json(encrypt_number(pk, -0.25)))
    pheutil("addenc", pub_file, a_file, b_file, "--output", out_file)
    total = from_phe_json(out_file.read_text(), pk)
    assert isinstance(total, EncryptedNumber)
    assert decrypt_number(paillier_key, total) == 1233.75


# -- negative phe JSON --------------------------------------------------------


def _jwk(paillier_key) -> dict:
    return json.loads(to_phe_json(paillier_key.public_key))


def _priv(paillier_key) -> dict:
    return json.loads(to_phe_json(paillier_key))


@pytest.mark.parametrize("text", ["", "{", "not json", b"\xff\xfe", "[1, 2]", "3", "null", '"kty"', 5, None])
def test_phe_json_invalid_json_raises_decode_error(text):
    with pytest.raises(DecodeError):
        from_phe_json(text)


@pytest.mark.parametrize(
    "field, value",
    [("kty", "RSA"), ("kty", None), ("alg", "PAI-GN2"), ("alg", None), ("key_ops", ["sign"]),
     ("key_ops", "encrypt"), ("key_ops", ["encrypt", "decrypt"]), ("n", 12345), ("n", ""), ("n", None)],
)
def test_phe_json_public_key_wrong_fields_raise_decode_error(paillier_key, field, value):
    doc = _jwk(paillier_key)
    if value is None:
        del doc[field]
    else:
        doc[field] = value
    with pytest.raises(DecodeError):
        from_phe_json(json.dumps(doc))


@pytest.mark.parametrize(
    "mutate",
    [
        lambda d, k: d.__setitem__("kty", "RSA"),
        lambda d, k: d["pub"].__setitem__("alg", "X"),
        lambda d, k: d.__setitem__("pub", "n"),
        lambda d, k: d.pop("pub"),
        lambda d, k: d.pop("p"),
        lambda d, k: d.__setitem__("q", 7),
        lambda d, k: d.__setitem__("key_ops", ["decrypt", "encrypt"]),
    ],
)
def test_phe_json_private_key_wrong_fields_raise_decode_error(paillier_key, mutate):
    doc = _priv(paillier_key)
    mutate(doc, paillier_key)
    with pytest.raises(DecodeError):
        from_phe_json(json.dumps(doc))


def test_phe_json_private_key_factors_not_matching_n_raise_decode_error(paillier_key, other_paillier_key):
    doc = _priv(paillier_key)
    doc["p"] = _priv(other_paillier_key)["p"]
    with pytest.raises(DecodeError):
        from_phe_json(json.dumps(doc))
    doc = _priv(paillier_key)
    doc["pub"] = _jwk(other_paillier_key)
    with pytest.raises(DecodeError):
        from_phe_json(json.dumps(doc))


def test_phe_json_private_key_with_composite_factors_raises_parameter_error(paillier_key):
    # p * q == n holds, but the "factors" are 1 and n.
    doc = _priv(paillier_key)
    doc["p"] = phe.util.int_to_base64(1)
    doc["q"] = phe.util.int_to_base64(int(paillier_key.public_key.n))
    with pytest.raises(ParameterError):
        from_phe_json(json.dumps(doc))


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode()


def test_phe_json_non_canonical_base64_raises_decode_error(paillier_key):
    n_bytes = paillier_key.public_key.to_bytes()
    canonical = _jwk(paillier_key)["n"]
    assert _b64(n_bytes).rstrip("=") == canonical and _b64(n_bytes) != canonical
    # Spec section 10: trailing padding is tolerated (it is stripped before the comparison).
    for padded in (_b64(n_bytes), canonical + "=="):
        doc = _jwk(paillier_key)
        doc["n"] = padded
        assert from_phe_json(json.dumps(doc)) == paillier_key.public_key
    variants = {
        "leading zero byte": _b64(b"\x00" + n_bytes).rstrip("="),
        "standard alphabet": base64.b64encode(n_bytes).decode().rstrip("="),
        "embedded space": canonical[:10] + " " + canonical[10:],
        "invalid character": canonical[:10] + "!" + canonical[11:],
        "trailing bits set": canonical[:-1] + chr(ord(canonical[-1]) + 1),
    }
    for name, value in variants.items():
        if value == canonical:
            continue
        doc = _jwk(paillier_key)
        doc["n"] = value
        with pytest.raises(DecodeError):
            from_phe_json(json.dumps(doc))
        priv = _priv(paillier_key)
        priv["pub"]["n"] = value
        with pytest.raises(DecodeError):
            from_phe_json(json.dumps(priv))
    priv = _priv(paillier_key)
    priv["p"] = _b64(b"\x00" + int(paillier_key.p).to_bytes(128, "big")).rstrip("=")
    with pytest.raises(DecodeError):
        from_phe_json(json.dumps(priv))


@pytest.mark.parametrize(
    "v",
    ["12a", "-5", "+5", " 5", "5 ", "0x10", "1e5", "", "05", "007", "\u00b2", "\u0663", "\u0967\u0968", 5, None, ["5"]],
)
def test_phe_json_non_decimal_ciphertext_raises_decode_error(paillier_key, v):
    pk = paillier_key.public_key
    with pytest.raises(DecodeError) as info:
        from_phe_json(json.dumps({"v": v, "e": 0}), pk)
    assert type(info.value) is DecodeError


@pytest.mark.parametrize("e", [True, False, "0", 0.0, None, [0]])
def test_phe_json_bad_exponent_raises_decode_error(paillier_key, e):
    pk = paillier_key.public_key
    c = str(int(pk.encrypt(1).c))
    with pytest.raises(DecodeError):
        from_phe_json(json.dumps({"v": c, "e": e}), pk)
    with pytest.raises(DecodeError):
        from_phe_json(json.dumps({"public_key": {"g": int(pk.g), "n": int(pk.n)}, "values": [[c, e]]}))


def test_phe_json_encrypted_number_without_public_key_raises_parameter_error(paillier_key):
    text = to_phe_json(encrypt_number(paillier_key.public_key, 1))
    with pytest.raises(ParameterError) as info:
        from_phe_json(text)
    assert type(info.value) is ParameterError


def test_phe_json_ciphertext_out_of_range_raises_invalid_ciphertext_error(paillier_key):
    pk = paillier_key.public_key
    for c in (0, pk.nsquare, pk.nsquare + 1, pk.n, paillier_key.p):
        with pytest.raises(InvalidCiphertextError):
            from_phe_json(json.dumps({"v": str(int(c)), "e": 0}), pk)
        with pytest.raises(InvalidCiphertextError):
            from_phe_json(json.dumps({"public_key": {"g": int(pk.g), "n": int(pk.n)}, "values": [[str(int(c)), 0]]}))


def test_phe_json_value_list_errors(paillier_key, other_paillier_key):
    pk = paillier_key.public_key
    c = str(int(pk.encrypt(1).c))
    n, g = int(pk.n), int(pk.g)

    def doc(**overrides):
        base = {"public_key": {"g": g, "n": n}, "values": [[c, 0]]}
        base.update(overrides)
        return json.dumps(base)

    for bad_g in (n + 2, 2, n, -1):
        with pytest.raises(DecodeError):
            from_phe_json(doc(public_key={"g": bad_g, "n": n}))
    for bad_pk in ({"g": str(g), "n": n}, {"g": g, "n": str(n)}, {"n": n}, {"g": g}, [g, n], {"g": True, "n": n}):
        with pytest.raises(DecodeError):
            from_phe_json(doc(public_key=bad_pk))
    for bad_values in ("x", {"0": [c, 0]}, [[c]], [[c, 0, 0]], [c], [(c, 0, 1)]):
        with pytest.raises(DecodeError):
            from_phe_json(doc(values=bad_values))
    with pytest.raises(ParameterError):  # even modulus
        from_phe_json(doc(public_key={"g": n + 2, "n": n + 1}))
    with pytest.raises(KeyMismatchError):
        from_phe_json(doc(), other_paillier_key.public_key)
    small = small_key().public_key
    small_doc = doc(public_key={"g": int(small.g), "n": int(small.n)}, values=[])
    with pytest.raises(ParameterError):
        from_phe_json(small_doc)
    assert from_phe_json(small_doc, min_bits=1024) == (small, [])


@pytest.mark.parametrize(
    "doc",
    [{}, {"v": "5"}, {"e": 0}, {"v": "5", "e": 0, "x": 1}, {"values": []}, {"public_key": {}, "values": [], "x": 1}],
)
def test_phe_json_unrecognised_documents_raise_decode_error(paillier_key, doc):
    with pytest.raises(DecodeError):
        from_phe_json(json.dumps(doc), paillier_key.public_key)
