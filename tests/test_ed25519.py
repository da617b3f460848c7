"""The edwards25519 group of FROST(Ed25519, SHA-512) (protocols/primitives/ed25519.py;
RFC 9591 section 6.1, RFC 8032 sections 5.1.2-5.1.3).

libsodium's arithmetic is held equal to a plain pure-Python reference of the
RFC 8032 formulas below; the decoders are driven with every kind of bad
encoding and must raise the exact typed error.
"""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from protocols.errors import DecodeError, ParameterError
from protocols.primitives import ed25519 as G
from protocols.primitives.ed25519 import Element

# --------------------------------------------------------------------------
# A plain reference: RFC 8032 section 5.1.4 formulas in extended coordinates


P, L, D = G.P, G.L, G.D


def ref_add(A, B):
    X1, Y1, Z1, T1 = A
    X2, Y2, Z2, T2 = B
    a = (Y1 - X1) * (Y2 - X2) % P
    b = (Y1 + X1) * (Y2 + X2) % P
    c = T1 * 2 * D * T2 % P
    d = Z1 * 2 * Z2 % P
    e, f, g, h = b - a, d - c, d + c, b + a
    return (e * f % P, g * h % P, f * g % P, e * h % P)


def ref_mul(k, A):
    Q = (0, 1, 1, 0)
    while k:
        if k & 1:
            Q = ref_add(Q, A)
        A = ref_add(A, A)
        k >>= 1
    return Q


def ref_encode(A):
    X, Y, Z, _ = A
    zi = pow(Z, P - 2, P)
    x, y = X * zi % P, Y * zi % P
    return (y | ((x & 1) << 255)).to_bytes(32, "little")


def ref_point(encoding):
    x, y = G._decode_rfc8032(encoding)
    return (x, y, 1, x * y % P)


REF_B = ref_point(G.BASE_ENCODING)

scalars = st.integers(min_value=0, max_value=2**256 - 1)


@settings(max_examples=15, deadline=None)
@given(k=scalars, m=scalars)
def test_libsodium_arithmetic_equals_the_reference(k, m):
    A = G.ScalarBaseMult(k)
    ref_A = ref_mul(k % L, REF_B)
    assert A.encoding == ref_encode(ref_A)
    assert G.ScalarMult(A, m).encoding == ref_encode(ref_mul(m % L, ref_A))
    B = G.ScalarBaseMult(m)
    assert (A + B).encoding == ref_encode(ref_add(ref_A, ref_mul(m % L, REF_B)))
    assert A - B + B == A
    assert A + (-A) == G.Identity()


def test_rfc8032_test_1_public_key():
    """RFC 8032 section 7.1, TEST 1: the public key from the clamped secret scalar."""
    secret = bytes.fromhex("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60")
    h = bytearray(hashlib.sha512(secret).digest()[:32])
    h[0] &= 248
    h[31] &= 127
    h[31] |= 64
    pk = G.ScalarBaseMult(int.from_bytes(h, "little"))
    assert G.SerializeElement(pk).hex() == "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a"
    assert G.DeserializeElement(pk.encoding) == pk


def test_identity_is_explicit_where_libsodium_refuses():
    B = G.Generator()
    assert G.ScalarBaseMult(0) == G.Identity()
    assert G.ScalarBaseMult(L) == G.Identity()
    assert G.ScalarBaseMult(L + 1) == B
    assert G.ScalarMult(B, 0) == G.Identity()
    assert G.ScalarMult(B, L) == G.Identity()
    assert G.ScalarMult(G.Identity(), 5) == G.Identity()
    assert G.Identity() + B == B and B + G.Identity() == B
    assert B - B == G.Identity() and -G.Identity() == G.Identity()
    assert G.ScalarMult(B, -1) == -B


def test_no_untyped_exception_escapes_from_libsodium():
    not_on_curve = _not_on_curve()
    bogus = Element(not_on_curve)  # unchecked construction, for the test only
    with pytest.raises(ParameterError):
        G.ScalarMult(bogus, 3)
    with pytest.raises(ParameterError):
        bogus + G.Generator()
    with pytest.raises(ParameterError):
        G.ScalarMult("not an element", 3)
    with pytest.raises(ParameterError):
        G.ScalarBaseMult(True)
    with pytest.raises(ParameterError):
        Element(b"short")


def test_serialize_element_refuses_the_identity():
    with pytest.raises(ParameterError, match="identity"):
        G.SerializeElement(G.Identity())


# --------------------------------------------------------------------------
# DeserializeElement: RFC 8032 5.1.3 plus RFC 9591 6.1 checks

SMALL_ORDER = [
    "0100000000000000000000000000000000000000000000000000000000000000",  # identity (order 1)
    "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",  # order 2
    "0000000000000000000000000000000000000000000000000000000000000000",  # order 4
    "0000000000000000000000000000000000000000000000000000000000000080",  # order 4
    "26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05",  # order 8
    "26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc85",  # order 8
    "c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a",  # order 8
    "c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac03fa",  # order 8
]


def _not_on_curve() -> bytes:
    for y in range(2, 100):
        u, v = (y * y - 1) % P, (D * y * y + 1) % P
        if pow(u * pow(v, P - 2, P) % P, (P - 1) // 2, P) not in (0, 1):
            return y.to_bytes(32, "little")
    raise AssertionError("no non-square found")  # pragma: no cover


@pytest.mark.parametrize("encoding", SMALL_ORDER)
def test_small_order_points_are_rejected(encoding):
    point = bytes.fromhex(encoding)
    assert ref_encode(ref_mul(8, ref_point(point))) == G.IDENTITY_ENCODING  # really small order
    with pytest.raises(DecodeError, match="identity|small order"):
        G.DeserializeElement(point)


def test_identity_is_rejected():
    with pytest.raises(DecodeError, match="identity"):
        G.DeserializeElement(G.IDENTITY_ENCODING)


def test_mixed_order_point_is_rejected():
    """B + T with T of order 8: on the curve, canonical, not in the prime-order subgroup."""
    T = ref_point(bytes.fromhex(SMALL_ORDER[4]))
    mixed = ref_encode(ref_add(REF_B, T))
    with pytest.raises(DecodeError, match="prime-order subgroup"):
        G.DeserializeElement(mixed)


@pytest.mark.parametrize(
    ("encoding", "message"),
    [
        ((P + 1).to_bytes(32, "little"), "not canonical"),  # y = 1 + p
        ((2**255 - 1).to_bytes(32, "little"), "not canonical"),  # y = 2^255 - 1 >= p
        (bytes([1]) + bytes(30) + bytes([0x80]), "not canonical"),  # y = 1, x = 0 with sign bit
        (_not_on_curve(), "not a point"),
    ],
)
def test_non_canonical_and_off_curve_encodings_are_rejected(encoding, message):
    with pytest.raises(DecodeError, match=message):
        G.DeserializeElement(encoding)


@pytest.mark.parametrize("length", [0, 31, 33, 64])
def test_element_wrong_length(length):
    with pytest.raises(DecodeError, match="32 bytes"):
        G.DeserializeElement(G.BASE_ENCODING[:length] + bytes(max(0, length - 32)))


def test_element_wrong_type():
    with pytest.raises(DecodeError):
        G.DeserializeElement("58" * 32)


@settings(max_examples=15, deadline=None)
@given(k=st.integers(min_value=1, max_value=L - 1))
def test_element_round_trip(k):
    A = G.ScalarBaseMult(k)
    assert G.DeserializeElement(G.SerializeElement(A)) == A


# --------------------------------------------------------------------------
# Scalars


@pytest.mark.parametrize("value", [L, L + 1, 2**253, 2**256 - 1])
def test_scalar_not_reduced_is_rejected(value):
    with pytest.raises(DecodeError, match=">= L"):
        G.DeserializeScalar(value.to_bytes(32, "little"))


@pytest.mark.parametrize("length", [0, 31, 33])
def test_scalar_wrong_length(length):
    with pytest.raises(DecodeError, match="32 bytes"):
        G.DeserializeScalar(bytes(length))


def test_scalar_edges_and_serialisation():
    assert G.DeserializeScalar(bytes(32)) == 0
    assert G.DeserializeScalar((L - 1).to_bytes(32, "little")) == L - 1
    assert G.SerializeScalar(1) == bytes([1]) + bytes(31)
    for bad in (L, -1):
        with pytest.raises(ParameterError):
            G.SerializeScalar(bad)
    with pytest.raises(ParameterError):
        G.SerializeScalar(True)


@settings(max_examples=20, deadline=None)
@given(s=st.integers(min_value=0, max_value=L - 1))
def test_scalar_round_trip(s):
    assert G.DeserializeScalar(G.SerializeScalar(s)) == s


def test_random_scalar_is_in_range():
    from protocols.primitives.drbg import HmacDrbg

    rng = HmacDrbg.from_seed("tests/ed25519/random-scalar")
    values = [G.RandomScalar(rng) for _ in range(20)]
    assert all(0 <= v < L for v in values) and len(set(values)) == 20
