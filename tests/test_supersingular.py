"""Type-1 pairing arithmetic of RFC 5091 (protocols/primitives/supersingular.py,
specs/ibe.md sections 3.1-3.3 and 3.9).

The RFC's section 7 values are the known answers (7.1 PointMultiply, 7.3
Pairing); the slips of the RFC text that the code departs from are each
demonstrated; properties (field laws, bilinearity, non-degeneracy, the
optimised algorithms equal to plain references) are hypothesis tests; every
validation failure raises the typed error named.
"""

from __future__ import annotations

import gmpy2
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from protocols.errors import DecodeError, InvalidCiphertextError, ParameterError
from protocols.primitives.supersingular import (
    INFINITY,
    MIN_P_BITS,
    TYPE1_CURVE_OID,
    Canonical,
    DerReader,
    EvalVertical1,
    Fp2,
    Pairing,
    PairingRatio,
    Point,
    PointAdd1,
    PointDouble1,
    PointMultiply,
    PointNegate,
    SignedWindowDecomposition,
    Tate,
    TateMillerSolinas,
    Type1Curve,
    canonical_decode,
    der_fp_point,
    der_integer,
    der_octet_string,
    der_oid,
    der_sequence,
    miller_binary,
    phi,
    point_multiply_plain,
    read_der,
)

TOY = {"min_p_bits": 64, "min_q_bits": 64}
"""The RFC's section 7 parameters are toy-sized: the minimum is lowered explicitly."""

# RFC 5091 section 7.1 / 7.3 (transcribed in vectors/rfc5091.json)
P_71 = 0xBFFFFFFFFFFFFFFFFFFFFFFFFFFCFFFF3
Q_71 = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFBFFFF
A_71 = (0x489A03C58DCF7FCFC97E99FFEF0BB4634, 0x510C6972D795EC0C2B081B81DE767F808)
L_71 = 0xB8BBBC0089098F2769B32373ADE8F0DAF
LA_71 = (0x073734B32A882CC97956B9F7E54A2D326, 0x9C4B891AAB199741A44A5B6B632B949F7)
B_73 = (0x40E98B9382E0B1FA6747DCB1655F54F75, 0xB497A6A02E7611511D0DB2FF133B32A3F)
E_73 = (0x8B2CAC13CBD422658F9E5757B85493818, 0xBC6AF59F54D0A5D83C8EFD8F5214FAD3C)

# RFC 5091 sections 7.4-7.6: the 192-bit curve and its generator.
P_74 = 0xA6A0FFD016103FFFFFFFFFF595F002FE9EF195F002FE9EFB
Q_74 = 0xFFFFFFFFFFFFFFFFFFFFFFEFFFFFFFFFFFF
G_74 = (0x6924C354256ACF5A0FF7F61BE4F0495B54540A5BF6395B3D,
        0x024FD8E2EB7C09104BCA116F41C035219955237C0EAC19AB)

# Small curves (96-bit p, 64-bit q) for each Solinas form q = 2^a + s 2^b + c,
# and one q with no Solinas form (found by search; p = 12 r q - 1 prime).
SMALL_CURVES = {
    "s=-1,c=-1": (0x8000007BFFFFFF7F7FFF8383, 0xFFFFFFFFFFFFFEFF),
    "s=-1,c=+1": (0x800002DFFFFFFE007FF482DF, 0xFFFFFFFFFFFFFC01),
    "s=+1,c=-1": (0x80000028000000FF00004FAF, 0x80000000000000FF),
    "s=+1,c=+1": (0x800000B8000800010B80016F, 0x8000000000080001),
    "not Solinas": (0x8000003108A3BB7A1F1C817B, 0xB5C3A1F2E4D6988F),
}


@pytest.fixture(scope="module")
def E71() -> Type1Curve:
    return Type1Curve(P_71, Q_71, **TOY)


@pytest.fixture(scope="module")
def E74() -> Type1Curve:
    return Type1Curve(P_74, Q_74, **TOY)


def small_curve(name: str) -> tuple[Type1Curve, Point]:
    p, q = SMALL_CURVES[name]
    E = Type1Curve(p, q, min_p_bits=8, min_q_bits=8)
    y = 5
    while True:
        G = PointMultiply(E, E.cofactor, Point(E.cube_root(y * y - 1), y))
        if not G.infinity:
            return E, G
        y += 1


scalars = st.integers(min_value=1, max_value=Q_74 - 1)


# ---------------------------------------------------------------------------
# RFC 5091 section 7 known answers


def test_point_multiply_rfc5091_7_1(E71):
    A = E71.point(*A_71)
    assert PointMultiply(E71, L_71, A) == Point(*LA_71)
    assert point_multiply_plain(E71, L_71, A) == Point(*LA_71)


def test_pairing_rfc5091_7_3(E71):
    A, B = E71.point(*A_71), E71.point(*B_73)
    expected = E71.fp2(*E_73)
    assert Pairing(E71, A, B) == expected
    # Both Miller loops give it.
    assert TateMillerSolinas(E71, A, phi(E71, B)) == expected
    assert miller_binary(E71, A, phi(E71, B)) == expected
    assert E71.solinas == (128, -1, 18, -1)


def test_rfc5091_section7_curves_validate(E71, E74):
    assert E71.p.bit_length() == 132 and E71.q.bit_length() == 128
    assert E74.p.bit_length() == 192 and E74.q.bit_length() == 140
    assert E74.check_point(E74.point(*G_74)) is not None
    assert E71.octets == 17 and E74.octets == 24


# ---------------------------------------------------------------------------
# The RFC's slips: each departure is forced by the published values


def test_zeta_as_printed_is_not_a_cube_root_of_unity(E71):
    """RFC 5091 4.5.2 step 1(b) prints b_zeta = 3^((p+1)/4): a square root of 3."""
    p = E71.p
    sqrt3 = gmpy2.powmod(3, (p + 1) // 4, p)
    assert sqrt3 * sqrt3 % p == 3
    printed = Fp2(p, (p - 1) // 2, sqrt3)
    assert not (printed ** 3).is_one()
    zeta = E71.zeta
    assert (zeta ** 3).is_one() and not zeta.is_one()
    assert zeta.a0 == (p - 1) // 2 and (2 * zeta.a1 + sqrt3) % p == 0


def test_other_cube_root_gives_the_conjugate_pairing(E71):
    """zeta^2 = -1/2 + (sqrt 3 / 2) i gives the conjugate (inverse) of 7.3."""
    A, B = E71.point(*A_71), E71.point(*B_73)
    zeta2 = E71.zeta * E71.zeta
    from protocols.primitives.supersingular import PointFp2
    other = Tate(E71, A, PointFp2(zeta2 * E71.fp2(B.x, 0), E71.fp2(B.y, 0)))
    assert other == E71.fp2(*E_73).conjugate()
    assert other != E71.fp2(*E_73)


def test_rfc_step_4c_division_would_change_the_pairing(E71):
    """TateMillerSolinas step 4(c) divides by the vertical at A once more when
    c = -1; that factor does not vanish under the final power, so the RFC's
    own 7.3 value rules it out (specs/ibe.md 3.9.3)."""
    A, B = E71.point(*A_71), E71.point(*B_73)
    extra = EvalVertical1(E71, phi(E71, B), A) ** ((E71.p ** 2 - 1) // E71.q)
    assert not extra.is_one()
    assert Pairing(E71, A, B) / extra != E71.fp2(*E_73)


def test_fp2_product_formula_as_printed_is_wrong(E71):
    """RFC 5091 section 2.1 prints Re(a*b) = a_1 b_1 - a_0 b_0; i * i must be -1."""
    i = E71.fp2(0, 1)
    assert i * i == E71.fp2(E71.p - 1, 0)
    one = E71.fp2(1, 0)
    assert one * one == one                 # the printed formula would give -1


def _decomposition_as_printed(k: int, r: int) -> list[tuple[int, int]]:
    """Algorithm 3.2.1 read literally: step 3(b)iii.B increments the number
    (k_l, ..., k_j), i.e. adds 2^j."""
    l, j, pairs = k.bit_length(), 0, []
    while j <= l:
        if not (k >> j) & 1:
            j += 1
            continue
        t = min(l, j + r - 1)
        h = (k >> j) & ((1 << (t - j + 1)) - 1)
        if h > 1 << (r - 1):
            b, k = h - (1 << r), k + (1 << j)
        else:
            b = h
        pairs.append((b, j))
        j = t + 1
    return pairs


def test_signed_window_carry_goes_to_bit_t_plus_1():
    """Step 3(b)iii.B as printed (increment from bit j) does not preserve k."""
    k, r = 0b101, 3
    pairs = SignedWindowDecomposition(k, r)
    assert pairs == [(-3, 0), (1, 3)]
    assert sum(b << e for b, e in pairs) == k
    assert sum(b << e for b, e in _decomposition_as_printed(k, r)) != k


# ---------------------------------------------------------------------------
# F_p^2


elements = st.tuples(st.integers(0, P_71 - 1), st.integers(0, P_71 - 1))


@settings(max_examples=60, deadline=None)
@given(a=elements, b=elements, c=elements)
def test_fp2_field_laws(a, b, c):
    x, y, z = Fp2(P_71, *a), Fp2(P_71, *b), Fp2(P_71, *c)
    assert (x * y) * z == x * (y * z)
    assert x * (y + z) == x * y + x * z
    assert x * y == y * x
    assert x - x == Fp2(P_71, 0, 0)
    if x != Fp2(P_71, 0, 0):
        assert (x * x.inverse()).is_one()
        assert (x / x).is_one()
        assert x ** -1 == x.inverse()


@settings(max_examples=20, deadline=None)
@given(a=elements)
def test_fp2_frobenius_is_conjugation(a):
    x = Fp2(P_71, *a)
    assert x ** P_71 == x.conjugate()


def test_fp2_validation():
    with pytest.raises(ParameterError, match=r"\[0, p\)"):
        Fp2(P_71, P_71, 0)
    with pytest.raises(ParameterError, match=r"\[0, p\)"):
        Fp2(P_71, 0, -1)
    with pytest.raises(ParameterError, match="pair of integers"):
        Fp2(P_71, 1.0, 0)
    with pytest.raises(ParameterError, match="same field"):
        Fp2(P_71, 1, 1) * Fp2(P_74, 1, 1)
    with pytest.raises(ParameterError, match="no inverse"):
        Fp2(P_71, 0, 0).inverse()


# ---------------------------------------------------------------------------
# The group law and point multiplication


@settings(max_examples=60, deadline=None)
@given(k=st.integers(min_value=1, max_value=1 << 200), r=st.integers(min_value=1, max_value=8))
def test_signed_window_decomposition(k, r):
    pairs = SignedWindowDecomposition(k, r)
    assert sum(b << e for b, e in pairs) == k
    assert all(b % 2 == 1 and abs(b) < max(2, 1 << (r - 1)) for b, _ in pairs)
    exponents = [e for _, e in pairs]
    assert exponents == sorted(set(exponents))
    assert pairs[-1][0] > 0


@settings(max_examples=40, deadline=None)
@given(l=st.integers(min_value=-(1 << 160), max_value=1 << 160), r=st.integers(2, 6))
def test_point_multiply_equals_plain_reference(E74, l, r):
    G = E74.point(*G_74)
    assert PointMultiply(E74, l, G, r) == point_multiply_plain(E74, l, G)


@settings(max_examples=30, deadline=None)
@given(a=scalars, b=scalars)
def test_group_law(E74, a, b):
    G = E74.point(*G_74)
    A, B = PointMultiply(E74, a, G), PointMultiply(E74, b, G)
    assert PointAdd1(E74, A, B) == PointMultiply(E74, a + b, G)
    assert PointDouble1(E74, A) == PointAdd1(E74, A, A)
    assert PointAdd1(E74, A, PointNegate(E74, A)).infinity
    assert PointAdd1(E74, A, INFINITY) == A and PointAdd1(E74, INFINITY, A) == A
    assert E74.is_on_curve(A) and E74.in_subgroup(A)


def test_multiplication_edge_cases(E74):
    G = E74.point(*G_74)
    assert PointMultiply(E74, 0, G).infinity
    assert PointMultiply(E74, E74.q, G).infinity
    assert PointMultiply(E74, E74.q + 1, G) == G
    assert PointMultiply(E74, 5, INFINITY).infinity
    with pytest.raises(ParameterError, match="integer"):
        PointMultiply(E74, 2.0, G)
    with pytest.raises(ParameterError):
        SignedWindowDecomposition(0, 5)


def test_random_points_are_on_the_curve(E74):
    class Counter:
        def __init__(self):
            self.value = 0

        def random_bytes(self, n):
            self.value += 1
            return (self.value * 0x0123456789ABCDEF).to_bytes(n, "big")[-n:]

    rng = Counter()
    for _ in range(5):
        Pp = E74.random_point(rng)
        assert E74.is_on_curve(Pp)
        assert E74.in_subgroup(PointMultiply(E74, E74.cofactor, Pp))


# ---------------------------------------------------------------------------
# The pairing: bilinearity, non-degeneracy, the optimised loop equal to the plain one


@settings(max_examples=25, deadline=None)
@given(a=scalars, b=scalars)
def test_bilinearity(E74, a, b):
    G = E74.point(*G_74)
    base = Pairing(E74, G, G)
    assert Pairing(E74, PointMultiply(E74, a, G), PointMultiply(E74, b, G)) == base ** (a * b)


@settings(max_examples=15, deadline=None)
@given(a=scalars, b=scalars, c=scalars)
def test_linearity_in_each_argument(E74, a, b, c):
    assume((a + b) % E74.q and (b + c) % E74.q)  # a sum at infinity is not a pairing input
    G = E74.point(*G_74)
    A, B, C = (PointMultiply(E74, k, G) for k in (a, b, c))
    assert Pairing(E74, PointAdd1(E74, A, B), C) == Pairing(E74, A, C) * Pairing(E74, B, C)
    assert Pairing(E74, A, PointAdd1(E74, B, C)) == Pairing(E74, A, B) * Pairing(E74, A, C)


@settings(max_examples=15, deadline=None)
@given(a=scalars)
def test_non_degeneracy_and_order(E74, a):
    A = PointMultiply(E74, a, E74.point(*G_74))
    e = Pairing(E74, A, A)
    assert not e.is_one()                   # the modified pairing is non-degenerate on G1 x G1
    assert (e ** E74.q).is_one()            # ... with values of order q
    assert Pairing(E74, A, E74.point(*G_74)) == Pairing(E74, E74.point(*G_74), A)  # symmetric


@pytest.mark.parametrize("name", sorted(SMALL_CURVES))
def test_solinas_loop_equals_binary_loop_for_every_form(name):
    E, G = small_curve(name)
    if name == "not Solinas":
        assert E.solinas is None
        with pytest.raises(ParameterError, match="Solinas"):
            TateMillerSolinas(E, G, phi(E, G))
    else:
        assert E.solinas is not None
    for a, b in ((1, 1), (3, 7), (E.q - 1, 12345)):
        A, B = PointMultiply(E, a, G), PointMultiply(E, b, G)
        reference = miller_binary(E, A, phi(E, B))
        assert Tate(E, A, phi(E, B)) == reference
        if E.solinas is not None:
            assert TateMillerSolinas(E, A, phi(E, B)) == reference
        assert reference == Pairing(E, G, G) ** (a * b)
        assert not reference.is_one()


@settings(max_examples=10, deadline=None)
@given(a=scalars, b=scalars, c=scalars, d=scalars)
def test_pairing_ratio(E74, a, b, c, d):
    G = E74.point(*G_74)
    A, B, C, D = (PointMultiply(E74, k, G) for k in (a, b, c, d))
    assert PairingRatio(E74, A, B, C, D) == Pairing(E74, A, B) / Pairing(E74, C, D)


def test_tate_of_infinity_is_one(E74):
    G = E74.point(*G_74)
    assert Tate(E74, INFINITY, phi(E74, G)).is_one()
    with pytest.raises(ParameterError, match="finite"):
        phi(E74, INFINITY)


# ---------------------------------------------------------------------------
# Validation: exact typed errors


def off_curve_point(E: Type1Curve) -> Point:
    G = E.point(*G_74)
    return Point(G.x, (G.y + 1) % E.p)


def order_three_point() -> Point:
    return Point(0, 1)          # 1 = 0^3 + 1: on every type-1 curve, of order 3


def test_point_not_on_curve(E74):
    with pytest.raises(ParameterError, match="not on the curve"):
        E74.check_point(off_curve_point(E74))
    with pytest.raises(ParameterError, match="not on the curve"):
        Pairing(E74, off_curve_point(E74), E74.point(*G_74))


def test_point_not_in_subgroup(E74):
    with pytest.raises(ParameterError, match="not in the subgroup"):
        E74.check_point(order_three_point())
    # A random point of E(F_p) is almost never in the subgroup of order q.
    y = 2
    full = Point(E74.cube_root(y * y - 1), y)
    assert E74.is_on_curve(full)
    with pytest.raises(ParameterError, match="not in the subgroup"):
        E74.point(full.x, full.y)
    with pytest.raises(ParameterError, match="not in the subgroup"):
        Pairing(E74, E74.point(*G_74), full)


def test_point_at_infinity_refused(E74):
    with pytest.raises(ParameterError, match="point at infinity"):
        E74.check_point(INFINITY)
    with pytest.raises(ParameterError, match="point at infinity"):
        Pairing(E74, INFINITY, E74.point(*G_74))
    with pytest.raises(ParameterError, match="point at infinity"):
        PairingRatio(E74, *[E74.point(*G_74)] * 3, INFINITY)


def test_coordinates_out_of_range(E74):
    G = E74.point(*G_74)
    with pytest.raises(ParameterError, match=r"outside \[0, p\)"):
        E74.check_point(Point(G.x + E74.p, G.y))
    with pytest.raises(ParameterError, match=r"outside \[0, p\)"):
        E74.check_point(Point(G.x, -1))
    with pytest.raises(ParameterError, match="integers"):
        Point(1.5, 2)
    with pytest.raises(ParameterError, match="integers"):
        E74.point("1", 2)
    with pytest.raises(ParameterError, match="must be a point"):
        E74.check_point((G.x, G.y))


def test_check_point_raises_the_error_class_asked_for(E74):
    for bad, message in ((INFINITY, "point at infinity"), (off_curve_point(E74), "not on the curve"),
                         (order_three_point(), "not in the subgroup")):
        with pytest.raises(InvalidCiphertextError, match=message):
            E74.check_point(bad, "U", InvalidCiphertextError)


@pytest.mark.parametrize("p, q, message", [
    (P_74 + 12, Q_74, "divid"),                       # q no longer divides p + 1
    (P_74 - 2, Q_74, "11 mod 12"),
    (P_74, Q_74 + 2, "divid"),
    (P_74, 3, "prime > 3"),
    ((P_74 + 1) * 12 * Q_74 - 1, Q_74, "exactly once"),
])
def test_curve_validation(p, q, message):
    with pytest.raises(ParameterError, match=message):
        Type1Curve(p, q, min_p_bits=8, min_q_bits=2)


def test_curve_validation_composite_and_square_factor():
    p, q = SMALL_CURVES["s=-1,c=-1"]
    r = 1
    while gmpy2.is_prime(12 * r * q - 1):
        r += 1
    with pytest.raises(ParameterError, match="p is not prime"):
        Type1Curve(12 * r * q - 1, q, min_p_bits=8, min_q_bits=8)
    with pytest.raises(ParameterError, match="exactly once"):
        Type1Curve(12 * q * q - 1, q, min_p_bits=8, min_q_bits=8)
    with pytest.raises(ParameterError, match="q is not prime"):
        Type1Curve(p, (p + 1) // 12, min_p_bits=8, min_q_bits=8)


def test_curve_minimum_sizes_by_default():
    assert MIN_P_BITS == 1024
    with pytest.raises(ParameterError, match="below the minimum"):
        Type1Curve(P_74, Q_74)
    with pytest.raises(ParameterError, match="below the minimum"):
        Type1Curve(P_74, Q_74, min_p_bits=64, min_q_bits=160)
    with pytest.raises(ParameterError, match="integers"):
        Type1Curve(float(P_74), Q_74, **TOY)


def test_curve_equality(E74):
    assert E74 == Type1Curve(P_74, Q_74, **TOY)
    assert E74 != Type1Curve(P_71, Q_71, **TOY)
    assert hash(E74) == hash(Type1Curve(P_74, Q_74, **TOY))


# ---------------------------------------------------------------------------
# Canonical (4.3) and DER (section 8)


def test_canonical_orders_and_round_trip(E74):
    v = E74.fp2(0x0102, 0xABCDEF)
    zero0 = Canonical(E74, 0, v)
    one = Canonical(E74, 1, v)
    assert len(zero0) == len(one) == 2 * 24
    assert zero0 == (0x0102).to_bytes(24, "big") + (0xABCDEF).to_bytes(24, "big")
    assert one == zero0[24:] + zero0[:24]
    assert canonical_decode(E74, 0, zero0) == v and canonical_decode(E74, 1, one) == v


def test_canonical_rejections(E74):
    v = E74.fp2(1, 2)
    with pytest.raises(ParameterError, match="0 or 1"):
        Canonical(E74, 2, v)
    with pytest.raises(ParameterError, match="curve's F_p\\^2"):
        Canonical(E74, 0, Fp2(P_71, 1, 2))
    with pytest.raises(DecodeError, match="exactly 48 octets"):
        canonical_decode(E74, 0, Canonical(E74, 0, v)[:-1])
    with pytest.raises(DecodeError, match="not below p"):
        canonical_decode(E74, 0, E74.p.to_bytes(24, "big") + bytes(24))


def test_der_known_encodings():
    assert der_oid("1.3.14.3.2.26") == bytes.fromhex("06052b0e03021a")
    assert der_oid("2.16.840.1.101.3.4.2.1") == bytes.fromhex("0609608648016503040201")
    assert der_oid(TYPE1_CURVE_OID) == bytes.fromhex("060b6086480186fd1e01010101")
    assert der_integer(0) == bytes.fromhex("020100")
    assert der_integer(127) == bytes.fromhex("02017f")
    assert der_integer(128) == bytes.fromhex("02020080")
    assert der_octet_string(b"\x00" * 200)[:3] == bytes.fromhex("0481c8")
    assert der_fp_point(1, 2) == bytes.fromhex("3006020101020102")


@settings(max_examples=50, deadline=None)
@given(x=st.integers(0, 1 << 1100), y=st.integers(0, 1 << 64), blob=st.binary(max_size=300))
def test_der_round_trip(x, y, blob):
    data = der_sequence(der_fp_point(x, y), der_octet_string(blob), der_oid("1.3.14.3.2.26"))
    reader = read_der(data, "test")
    assert reader.fp_point() == (x, y)
    assert reader.octet_string() == blob
    assert reader.oid() == "1.3.14.3.2.26"
    reader.end()


@pytest.mark.parametrize("hex_data, message", [
    ("3006020101020102ff", "trailing"),
    ("30060201010201", "truncated"),
    ("300702020001020102", "non-minimal INTEGER"),   # 00 01 is not minimal
    ("3006020181020102", "negative"),
    ("308106020101020102", "non-minimal length"),
    ("3106020101020102", "tag 0x31"),
    ("30050200020102", "empty"),
    ("3009020101020102020103", "trailing"),
    ("", "truncated"),
])
def test_der_rejections(hex_data, message):
    with pytest.raises(DecodeError, match=message):
        reader = read_der(bytes.fromhex(hex_data), "test")
        reader.integer()
        reader.integer()
        reader.end()


def test_der_oid_rejections():
    with pytest.raises(ParameterError):
        der_oid("1")
    with pytest.raises(ParameterError):
        der_oid("1.03.4")
    with pytest.raises(DecodeError, match="malformed"):
        DerReader(bytes.fromhex("060180")).oid()
    with pytest.raises(DecodeError, match="non-minimal arc"):
        DerReader(bytes.fromhex("0603808001")).oid()
    with pytest.raises(DecodeError, match="must be bytes"):
        DerReader("3000")
