"""Type-1 pairing arithmetic of RFC 5091 (IBCS #1, December 2007), over gmpy2.

The supersingular curve E/F_p: y^2 = x^3 + 1 with p = 11 mod 12 ("type-1",
RFC 5091 section 2.1), its order-q subgroup, the modified Tate pairing and the
encodings that the BF and BB1 cryptosystems (``protocols.schemes.bf``,
``protocols.schemes.bb1``) are built on.  Specified in ``specs/ibe.md``
sections 3.1 to 3.3.

| RFC 5091 section | algorithm | here |
|---|---|---|
| 2.1 | F_p^2 = F_p[i], i^2 = -1 | :class:`Fp2` |
| 2.1, 5.1.2 | a type-1 curve and its subgroup of order q | :class:`Type1Curve` |
| 3.1.1 | PointDouble1, PointAdd1 | :func:`PointDouble1`, :func:`PointAdd1` |
| 3.2 | SignedWindowDecomposition, PointMultiply | :func:`SignedWindowDecomposition`, :func:`PointMultiply` |
| 3.4.1 | EvalVertical1, EvalTangent1, EvalLine1 | :func:`EvalVertical1`, :func:`EvalTangent1`, :func:`EvalLine1` |
| 3.5 | Tate, TateMillerSolinas | :func:`Tate`, :func:`TateMillerSolinas`, :func:`miller_binary` |
| 4.3 | Canonical, Canonical1 | :func:`Canonical`, :func:`canonical_decode` |
| 4.5 | Pairing, Pairing1 and the distortion map phi | :func:`Pairing`, :func:`Pairing1`, :func:`phi` |
| 4.6 | PairingRatio, PairingRatio1 | :func:`PairingRatio`, :func:`PairingRatio1` |
| 8 | FpPoint and the DER it is written in | :func:`der_fp_point`, :class:`DerReader` |

Intentional departures from the RFC text, each labelled where it occurs and
listed with its evidence in specs/ibe.md section 3.9:

* the F_p^2 product is a*b = (a_0 b_0 - a_1 b_1, a_0 b_1 + a_1 b_0) (section 2.1
  prints the real part the wrong way round);
* the cube root of unity of the distortion map is zeta = -1/2 - (sqrt(3)/2) i
  with sqrt(3) = 3^((p+1)/4) mod p (section 4.5.2 prints b_zeta = 3^((p+1)/4));
* TateMillerSolinas (3.5.2) normalises V_a = (x_V/z_V^2, y_V/z_V^3) (step 3(b)
  prints s * x_V / z_V^3) and omits step 4(c) (an extra division by the
  vertical at A that the published pairing value 7.3 does not contain);
* SignedWindowDecomposition (3.2.1) carries into bit t + 1 (step 3(b)iii.B
  increments from bit j, which does not preserve k);
* points of E(F_p) are kept in affine coordinates; the Jacobian formulas of
  section 3.3 are an optimisation that yields the same points (3.3.2 also
  prints lambda_6 = lambda_4 - lambda_5 where y_A - lambda_5 is meant), and
  are not used.

Nothing here is constant time (specs/ibe.md section 3.10.4).  Module state is
immutable constants only; curves, points and field elements are frozen
dataclasses.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TypeGuard

import gmpy2
from gmpy2 import mpz

from protocols.errors import DecodeError, ParameterError, UsappError
from protocols.primitives import opcount
from protocols.primitives.numtheory import is_probable_prime
from protocols.primitives.rand import RandomSource, random_below

MIN_P_BITS = 1024
"""Smallest p accepted by default: the 112-bit level of RFC 5091 sections 5.1.2
and 9 (n = 2048).  The RFC's own section 7 data use 132- and 192-bit p; they
are checked with the minimum lowered explicitly (``min_p_bits=``)."""

MIN_Q_BITS = 224
"""Smallest q accepted by default (112-bit level, RFC 5091 section 9 Table 1)."""

MAX_P_BITS = 7680
"""Largest p accepted (the 256-bit level, RFC 5091 section 9 Table 1;
specs/ibe.md section 3.1.1, limits): checked before any primality test, so
parameters from the wire cannot make the reader test a 20 KB number."""

MAX_Q_BITS = 512
"""Largest q accepted (the 256-bit level, RFC 5091 section 9 Table 1)."""

MAX_OID_BYTES = 64
"""Longest OBJECT IDENTIFIER content :meth:`DerReader.oid` reads (specs/ibe.md
section 3.1.1, limits); every OID of RFC 5091 section 8 is under 12 bytes."""

TYPE1_CURVE_OID = "2.16.840.1.114334.1.1.1.1"
"""RFC 5091 sections 5.1.2 step 6 and 8: ``type1curve``, E: y^2 = x^3 + 1."""

WINDOW_BITS = 5
"""PointMultiply's window size r (RFC 5091 section 3.2.2 step 1(a), "e.g., r = 5")."""

MAX_DER_BYTES = 1 << 20
"""Longest DER input a decoder accepts (1 MiB); anything longer is a DecodeError."""


def _is_int(value: object) -> TypeGuard[int]:
    return isinstance(value, (int, type(mpz(0)))) and not isinstance(value, bool)


# ---------------------------------------------------------------------------
# F_p^2 (RFC 5091 section 2.1)
# ---------------------------------------------------------------------------


def _f2_mul(a0: mpz, a1: mpz, b0: mpz, b1: mpz, p: mpz) -> tuple[mpz, mpz]:
    """(a0 + a1 i)(b0 + b1 i) with i^2 = -1.  RFC 5091 section 2.1 prints the
    real part as a_1 b_1 - a_0 b_0; the product is a_0 b_0 - a_1 b_1."""
    return (a0 * b0 - a1 * b1) % p, (a0 * b1 + a1 * b0) % p


def _f2_sqr(a0: mpz, a1: mpz, p: mpz) -> tuple[mpz, mpz]:
    return ((a0 + a1) * (a0 - a1)) % p, (2 * a0 * a1) % p


def _f2_inv(a0: mpz, a1: mpz, p: mpz) -> tuple[mpz, mpz]:
    """(a0 + a1 i)^-1 = (a0 - a1 i) / (a0^2 + a1^2); ParameterError for 0."""
    norm = (a0 * a0 + a1 * a1) % p
    if norm == 0:
        raise ParameterError("0 has no inverse in F_p^2")
    inv = gmpy2.invert(norm, p)
    return (a0 * inv) % p, (-a1 * inv) % p


def _f2_pow(a0: mpz, a1: mpz, e: int, p: mpz) -> tuple[mpz, mpz]:
    """(a0 + a1 i)^e for e >= 0, left-to-right square and multiply."""
    r0, r1 = mpz(1), mpz(0)
    for bit in gmpy2.digits(mpz(e), 2) if e > 0 else "":
        r0, r1 = _f2_sqr(r0, r1, p)
        if bit == "1":
            r0, r1 = _f2_mul(r0, r1, a0, a1, p)
    return r0, r1


@dataclass(frozen=True)
class Fp2:
    """An element a0 + a1 * i of F_p^2 = F_p[i], i^2 = -1 (RFC 5091 section 2.1:
    the ordered pair (a_0, a_1)), with 0 <= a0, a1 < p.  Validated on
    construction (``ParameterError``)."""

    p: mpz
    a0: mpz
    a1: mpz

    def __post_init__(self) -> None:
        if not (_is_int(self.p) and _is_int(self.a0) and _is_int(self.a1)):
            raise ParameterError("an F_p^2 element is a pair of integers")
        p, a0, a1 = mpz(self.p), mpz(self.a0), mpz(self.a1)
        if p < 3 or not (0 <= a0 < p and 0 <= a1 < p):
            raise ParameterError("F_p^2 coordinates must lie in [0, p)")
        object.__setattr__(self, "p", p)
        object.__setattr__(self, "a0", a0)
        object.__setattr__(self, "a1", a1)

    @classmethod
    def one(cls, p: int) -> Fp2:
        return cls(p, 1, 0)

    def _check(self, other: Fp2) -> None:
        if not isinstance(other, Fp2) or other.p != self.p:
            raise ParameterError("F_p^2 operands must belong to the same field")

    def __add__(self, other: Fp2) -> Fp2:
        self._check(other)
        return Fp2(self.p, (self.a0 + other.a0) % self.p, (self.a1 + other.a1) % self.p)

    def __sub__(self, other: Fp2) -> Fp2:
        self._check(other)
        return Fp2(self.p, (self.a0 - other.a0) % self.p, (self.a1 - other.a1) % self.p)

    def __neg__(self) -> Fp2:
        return Fp2(self.p, -self.a0 % self.p, -self.a1 % self.p)

    def __mul__(self, other: Fp2) -> Fp2:
        self._check(other)
        return Fp2(self.p, *_f2_mul(self.a0, self.a1, other.a0, other.a1, self.p))

    def __truediv__(self, other: Fp2) -> Fp2:
        return self * other.inverse()

    def __pow__(self, e: int) -> Fp2:
        """self^e; counted as one ``gt_exp:ss{p bits}`` (specs/costs.md 2.1)."""
        if not _is_int(e):
            raise ParameterError("an F_p^2 exponent must be an integer")
        if opcount.active():
            opcount.record(f"gt_exp:{curve_label(self.p)}")
        base = self if e >= 0 else self.inverse()
        return Fp2(self.p, *_f2_pow(base.a0, base.a1, abs(int(e)), self.p))

    def inverse(self) -> Fp2:
        return Fp2(self.p, *_f2_inv(self.a0, self.a1, self.p))

    def conjugate(self) -> Fp2:
        """a0 - a1 i, which is also x^p (Frobenius, as p = 3 mod 4)."""
        return Fp2(self.p, self.a0, -self.a1 % self.p)

    def is_one(self) -> bool:
        return self.a0 == 1 and self.a1 == 0


# ---------------------------------------------------------------------------
# Points and the curve (RFC 5091 sections 2.1, 3.1)
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Point:
    """A point of E(F_p) in affine coordinates (x, y), or the point at infinity
    0 (``infinity=True``, coordinates ignored; use :data:`INFINITY`).

    A ``Point`` says nothing about which curve it lies on: a curve's
    :meth:`Type1Curve.check_point` validates it (RFC 5091 section 2.1: the
    elements of F_p are the integers 0 to p - 1)."""

    x: mpz
    y: mpz
    infinity: bool = False

    def __post_init__(self) -> None:
        if not (_is_int(self.x) and _is_int(self.y)) or not isinstance(self.infinity, bool):
            raise ParameterError("point coordinates must be integers")
        object.__setattr__(self, "x", mpz(self.x))
        object.__setattr__(self, "y", mpz(self.y))


INFINITY = Point(0, 1, True)
"""The null element 0 of E(F_p) (an immutable constant)."""


@dataclass(frozen=True)
class PointFp2:
    """A finite point of E(F_p^2) with coordinates in F_p^2: the second input
    of the Tate pairing (RFC 5091 section 3.5.1), here always phi(B)."""

    x: Fp2
    y: Fp2


def _solinas_form(q: int) -> tuple[int, int, int, int] | None:
    """(a, s, b, c) with q = 2^a + s 2^b + c, s, c in {-1, +1}, 0 <= b < a, or
    None.  Where two forms exist (q = 3 * 2^(a-1) + c), the one with s = -1 is
    taken; both give the same pairing (the result does not depend on the form)."""
    for c in (-1, 1):
        r = q - c
        for a, s in ((r.bit_length(), -1), (r.bit_length() - 1, 1)):
            d = (r - (1 << a)) * s
            if d > 0 and d & (d - 1) == 0:
                b = d.bit_length() - 1
                if b < a:
                    return a, s, b, c
    return None


@dataclass(frozen=True, eq=False)
class Type1Curve:
    """A type-1 curve E/F_p: y^2 = x^3 + 1 with its subgroup of prime order q
    (RFC 5091 sections 2.1 and 5.1.2).  Validated on construction
    (``ParameterError``):

    * p is prime, p = 11 mod 12, bitlen(p) >= ``min_p_bits``;
    * q is prime, q > 3, q divides p + 1 but q^2 does not (so the points of
      order q form one cyclic subgroup G1 = {A : [q]A = 0}),
      bitlen(q) >= ``min_q_bits``.

    Derived constants: the cofactor (p + 1) / q, zeta (the cube root of unity
    of the distortion map, 4.5.2, corrected), the octet length l =
    Ceiling(lg(p) / 8) of F_p elements (4.3.2), and the Solinas form of q when
    it has one (3.5.2).  Primality is tested with the project's
    ``is_probable_prime`` (BPSW and 40 Miller-Rabin rounds with bases from the
    OS CSPRNG)."""

    p: mpz
    q: mpz
    min_p_bits: int = field(default=MIN_P_BITS, repr=False)
    min_q_bits: int = field(default=MIN_Q_BITS, repr=False)
    cofactor: mpz = field(init=False, repr=False)
    zeta: Fp2 = field(init=False, repr=False)
    octets: int = field(init=False, repr=False)
    solinas: tuple[int, int, int, int] | None = field(init=False, repr=False)

    def __post_init__(self) -> None:
        if not (_is_int(self.p) and _is_int(self.q)):
            raise ParameterError("curve parameters p and q must be integers")
        p, q = mpz(self.p), mpz(self.q)
        if p.bit_length() > MAX_P_BITS or q.bit_length() > MAX_Q_BITS:
            raise ParameterError(f"p and q have at most {MAX_P_BITS} and {MAX_Q_BITS} bits (RFC 5091 section 9)")
        if p.bit_length() < self.min_p_bits:
            raise ParameterError(
                f"p of {p.bit_length()} bits is below the minimum of {self.min_p_bits}")
        if q.bit_length() < self.min_q_bits:
            raise ParameterError(
                f"q of {q.bit_length()} bits is below the minimum of {self.min_q_bits}")
        if p % 12 != 11:
            raise ParameterError("a type-1 curve needs p = 11 mod 12")
        if q <= 3 or (p + 1) % q != 0 or ((p + 1) // q) % q == 0:
            raise ParameterError("q must be a prime > 3 dividing p + 1 exactly once")
        if not is_probable_prime(q):
            raise ParameterError("q is not prime")
        if not is_probable_prime(p):
            raise ParameterError("p is not prime")
        object.__setattr__(self, "p", p)
        object.__setattr__(self, "q", q)
        object.__setattr__(self, "cofactor", (p + 1) // q)
        object.__setattr__(self, "octets", (p.bit_length() + 7) // 8)
        object.__setattr__(self, "solinas", _solinas_form(int(q)))
        # RFC 5091 section 4.5.2 step 1(b), corrected (specs/ibe.md 3.9.2): the RFC
        # prints b_zeta = 3^((p+1)/4), which is a square root of 3, not the
        # imaginary part of a cube root of unity.  zeta = (-1 - sqrt(-3)) / 2
        # with sqrt(-3) = sqrt(3) * i; a_zeta = (p - 1)/2 = -1/2 as printed.
        sqrt3 = gmpy2.powmod(3, (p + 1) // 4, p)
        zeta = Fp2(p, (p - 1) // 2, (-sqrt3 * gmpy2.invert(2, p)) % p)
        if zeta.is_one() or not Fp2(p, *_f2_pow(zeta.a0, zeta.a1, 3, p)).is_one():
            raise ParameterError("no primitive cube root of unity of the expected form")
        object.__setattr__(self, "zeta", zeta)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Type1Curve) and self.p == other.p and self.q == other.q

    def __hash__(self) -> int:
        return hash(("type1-curve", int(self.p), int(self.q)))

    # -- points --------------------------------------------------------------

    def is_on_curve(self, A: Point) -> bool:
        """A = 0, or 0 <= x, y < p and y^2 = x^3 + 1 (mod p)."""
        if A.infinity:
            return True
        p = self.p
        return 0 <= A.x < p and 0 <= A.y < p and (A.y * A.y - A.x * A.x * A.x - 1) % p == 0

    def in_subgroup(self, A: Point) -> bool:
        """[q]A = 0 (for a point on the curve)."""
        return PointMultiply(self, self.q, A).infinity

    def check_point(self, A: object, what: str = "point",
                    error: type[UsappError] = ParameterError) -> Point:
        """Validate ``A`` as an element of order q of E(F_p): a :class:`Point`,
        not 0, coordinates in [0, p), on the curve, and [q]A = 0.  Each failure
        raises ``error`` (``ParameterError`` unless told) naming ``what``."""
        if not isinstance(A, Point):
            raise error(f"{what} must be a point")
        if A.infinity:
            raise error(f"{what} is the point at infinity")
        if not (0 <= A.x < self.p and 0 <= A.y < self.p):
            raise error(f"{what} has a coordinate outside [0, p)")
        if not self.is_on_curve(A):
            raise error(f"{what} is not on the curve y^2 = x^3 + 1")
        if not self.in_subgroup(A):
            raise error(f"{what} is not in the subgroup of order q")
        return A

    def point(self, x: int, y: int, what: str = "point",
              error: type[UsappError] = ParameterError) -> Point:
        """The validated point (x, y) of order q (see :meth:`check_point`)."""
        if not (_is_int(x) and _is_int(y)):
            raise error(f"{what} coordinates must be integers")
        return self.check_point(Point(x, y), what, error)

    def fp2(self, a0: int, a1: int) -> Fp2:
        """The element a0 + a1 i of this curve's F_p^2."""
        return Fp2(self.p, a0, a1)

    def random_point(self, rng: RandomSource | None) -> Point:
        """A uniformly random finite point of E(F_p) (RFC 5091 section 5.1.2
        step 4(a)): y = RandomBelow(rng, p), x = (y^2 - 1)^((2p - 1)/3).  As p
        = 2 mod 3, cubing is a bijection of F_p, so every y gives exactly one
        point (section 2.1)."""
        y = mpz(random_below(rng, int(self.p)))
        return Point(self.cube_root((y * y - 1) % self.p), y)

    def cube_root(self, v: int) -> mpz:
        """The unique cube root of v in F_p: v^((2p - 1)/3) (RFC 5091 4.4.2 step 2)."""
        return gmpy2.powmod(mpz(v) % self.p, (2 * self.p - 1) // 3, self.p)

    def encode_fp(self, value: int) -> bytes:
        """An F_p element as the big-endian zero-padded string of l =
        Ceiling(lg(p) / 8) octets (RFC 5091 sections 4.3.2 steps 1-4, 6.4.1 step 5(b))."""
        if not (_is_int(value) and 0 <= value < self.p):
            raise ParameterError("an F_p element lies in [0, p)")
        return int(value).to_bytes(self.octets, "big")


# ---------------------------------------------------------------------------
# The group law (RFC 5091 section 3.1.1) and point multiplication (3.2)
# ---------------------------------------------------------------------------


def PointNegate(E: Type1Curve, A: Point) -> Point:
    """-A = (x, -y); -0 = 0."""
    return A if A.infinity else Point(A.x, (-A.y) % E.p)


def PointDouble1(E: Type1Curve, A: Point) -> Point:
    """RFC 5091 Algorithm 3.1.1 (PointDouble1): [2]A on y^2 = x^3 + 1."""
    p = E.p
    if A.infinity or A.y == 0:
        return INFINITY
    lam = (3 * A.x * A.x * gmpy2.invert(2 * A.y, p)) % p
    x = (lam * lam - 2 * A.x) % p
    return Point(x, ((A.x - x) * lam - A.y) % p)


def PointAdd1(E: Type1Curve, A: Point, B: Point) -> Point:
    """RFC 5091 Algorithm 3.1.2 (PointAdd1): A + B on y^2 = x^3 + 1."""
    if A.infinity:
        return B
    if B.infinity:
        return A
    p = E.p
    if A.x == B.x:
        if (A.y + B.y) % p == 0:
            return INFINITY
        return PointDouble1(E, A)
    lam = ((B.y - A.y) * gmpy2.invert(B.x - A.x, p)) % p
    x = (lam * lam - A.x - B.x) % p
    return Point(x, ((A.x - x) * lam - A.y) % p)


def SignedWindowDecomposition(k: int, r: int) -> list[tuple[int, int]]:
    """RFC 5091 Algorithm 3.2.1: the pairs (b_i, e_i), i = 0 .. d - 1, with
    k = Sum(b_i * 2^(e_i)), each b_i odd and |b_i| < 2^(r-1), e_i increasing.

    Intentional departure (specs/ibe.md 3.9.5): when a window value h_d exceeds
    2^(r-1), b_d = h_d - 2^r and the carry 2^r * 2^j = 2^(t+1) is added to k.
    Step 3(b)iii.B says to increment "(k_l, ..., k_j)", i.e. add 2^j, which
    does not preserve k.  (The RFC's output line "b_i = +/- 2^j" is also a
    slip: the b_i are odd.)"""
    if not (_is_int(k) and _is_int(r)) or k <= 0 or r <= 0:
        raise ParameterError("SignedWindowDecomposition needs integers k > 0 and r > 0")
    k, r = int(k), int(r)
    l = k.bit_length()          # k = Sum(k_j 2^j, j = 0 .. l) with k_l = 0
    pairs: list[tuple[int, int]] = []
    j = 0
    while j <= l:
        if not (k >> j) & 1:
            j += 1
            continue
        t = min(l, j + r - 1)
        h = (k >> j) & ((1 << (t - j + 1)) - 1)
        if h > 1 << (r - 1):
            b = h - (1 << r)
            k += 1 << (t + 1)
        else:
            b = h
        pairs.append((b, j))
        j = t + 1
    return pairs


def curve_label(p: int) -> str:
    """The opcount curve name of the type-1 curve over F_p: ``ss`` and p's size class (section 2.2)."""
    return f"ss{opcount.size_class(int(p).bit_length())}"


def PointMultiply(E: Type1Curve, l: int, A: Point, r: int = WINDOW_BITS) -> Point:
    """RFC 5091 Algorithm 3.2.2 (PointMultiply): [l]A by the signed 2^r-ary
    window method.  Extended to every integer l: [0]A = 0, [-l]A = [l](-A).
    Counted as one ``point_mul:ss{p bits}`` (specs/costs.md 2.1)."""
    if opcount.active():
        opcount.record(f"point_mul:{curve_label(E.p)}")
    return point_multiply_uncounted(E, l, A, r)


def point_multiply_uncounted(E: Type1Curve, l: int, A: Point, r: int = WINDOW_BITS) -> Point:
    """:func:`PointMultiply` without the count, for a caller that counts a larger unit
    (the cofactor clearing inside HashToPoint, counted as ``hash_to_curve``)."""
    if not _is_int(l):
        raise ParameterError("a scalar must be an integer")
    if l == 0 or A.infinity:
        return INFINITY
    if l < 0:
        return point_multiply_uncounted(E, -l, PointNegate(E, A), r)
    if r < 2:
        raise ParameterError("PointMultiply needs a window of at least 2 bits")
    digits = SignedWindowDecomposition(l, r)
    # Step 2: precompute the odd multiples A_1, A_3, ..., A_(2^(r-1) - 1).
    A2 = PointDouble1(E, A)
    table = {1: A}
    for i in range(1, 1 << (r - 2)):
        table[2 * i + 1] = PointAdd1(E, table[2 * i - 1], A2)
    # Step 3: main loop, from the most significant pair down.
    b_top, e_top = digits[-1]
    Q = table[b_top]            # b_(d-1) > 0 (specs/ibe.md 3.9.5)
    e_prev = e_top
    for b, e in reversed(digits[:-1]):
        for _ in range(e_prev - e):
            Q = PointDouble1(E, Q)
        Q = PointAdd1(E, Q, table[b] if b > 0 else PointNegate(E, table[-b]))
        e_prev = e
    for _ in range(e_prev):
        Q = PointDouble1(E, Q)
    return Q


def point_multiply_plain(E: Type1Curve, l: int, A: Point) -> Point:
    """[l]A by plain left-to-right double-and-add: the reference that
    :func:`PointMultiply` is tested against."""
    if l < 0:
        return point_multiply_plain(E, -l, PointNegate(E, A))
    Q = INFINITY
    for bit in bin(int(l))[2:]:
        Q = PointDouble1(E, Q)
        if bit == "1":
            Q = PointAdd1(E, Q, A)
    return Q


# ---------------------------------------------------------------------------
# Line functions (RFC 5091 section 3.4.1), evaluated at a point of E(F_p^2)
# ---------------------------------------------------------------------------
#
# The Miller loops below work on raw (a0, a1) pairs for speed; B is given as
# (xb0, xb1, yb0, yb1).  The public Eval* functions wrap them.

_Raw = tuple[mpz, mpz]
_RawPoint = tuple[mpz, mpz, mpz, mpz]


def _eval_vertical(p: mpz, Bq: _RawPoint, xA: mpz) -> _Raw:
    return (Bq[0] - xA) % p, Bq[1]


def _eval_line_abc(p: mpz, Bq: _RawPoint, a: mpz, b: mpz, c: mpz) -> _Raw:
    return (a * Bq[0] + b * Bq[2] + c) % p, (a * Bq[1] + b * Bq[3]) % p


def _eval_tangent(p: mpz, Bq: _RawPoint, A: Point) -> _Raw:
    if A.infinity:
        return mpz(1), mpz(0)
    if A.y == 0:
        return _eval_vertical(p, Bq, A.x)
    a = -3 * A.x * A.x
    b = 2 * A.y
    return _eval_line_abc(p, Bq, a, b, -b * A.y - a * A.x)


def _eval_line(p: mpz, Bq: _RawPoint, A1: Point, A2: Point) -> _Raw:
    if A1.infinity:
        return _eval_vertical(p, Bq, A2.x)
    if A2.infinity:
        return _eval_vertical(p, Bq, A1.x)
    if A1.x == A2.x and (A1.y + A2.y) % p == 0:
        return _eval_vertical(p, Bq, A1.x)
    if A1 == A2:
        return _eval_tangent(p, Bq, A1)
    a = A1.y - A2.y
    b = A2.x - A1.x
    return _eval_line_abc(p, Bq, a, b, -b * A1.y - a * A1.x)


def _raw(B: PointFp2) -> _RawPoint:
    return B.x.a0, B.x.a1, B.y.a0, B.y.a1


def EvalVertical1(E: Type1Curve, B: PointFp2, A: Point) -> Fp2:
    """RFC 5091 Algorithm 3.4.1: the vertical line through A, at B: x_B - x_A."""
    return Fp2(E.p, *_eval_vertical(E.p, _raw(B), A.x))


def EvalTangent1(E: Type1Curve, B: PointFp2, A: Point) -> Fp2:
    """RFC 5091 Algorithm 3.4.2: the tangent at A, at B (1 for A = 0; the
    vertical for y_A = 0)."""
    return Fp2(E.p, *_eval_tangent(E.p, _raw(B), A))


def EvalLine1(E: Type1Curve, B: PointFp2, A1: Point, A2: Point) -> Fp2:
    """RFC 5091 Algorithm 3.4.3: the line through A' and A'', at B."""
    return Fp2(E.p, *_eval_line(E.p, _raw(B), A1, A2))


# ---------------------------------------------------------------------------
# The Tate pairing (RFC 5091 section 3.5)
# ---------------------------------------------------------------------------


def _final_exponentiation(E: Type1Curve, num: _Raw, den: _Raw) -> Fp2:
    """(num / den)^eta with eta = (p^2 - 1)/q (RFC 5091 3.5.2 steps 5-6).

    Computed as f^(p-1) = conj(f) / f (the Frobenius of F_p^2 is conjugation)
    followed by the power (p + 1)/q: the same value, with one inversion."""
    p = E.p
    f0, f1 = _f2_mul(num[0], num[1], den[0], (-den[1]) % p, p)   # num * conj(den)
    i0, i1 = _f2_inv(f0, f1, p)
    g0, g1 = _f2_mul(f0, (-f1) % p, i0, i1, p)                  # conj(f) / f
    return Fp2(p, *_f2_pow(g0, g1, int((p + 1) // E.q), p))


def _miller_solinas(E: Type1Curve, A: Point, Bq: _RawPoint) -> tuple[_Raw, _Raw]:
    """Steps 1-4 of TateMillerSolinas: (v_num, v_den) before the final power.  Each Miller loop
    is counted as one ``pairing:ss{p bits}`` (specs/costs.md 2.1)."""
    if opcount.active():
        opcount.record(f"pairing:{curve_label(E.p)}")
    if E.solinas is None:  # the callers check first; kept so the unpacking is well typed
        raise ParameterError("q has no Solinas form: use the generic Miller loop")
    a, s, b, c = E.solinas
    p = E.p
    one = (mpz(1), mpz(0))
    v_num, v_den, t_num, t_den = one, one, one, one
    V = A

    def double_step(t_num: _Raw, t_den: _Raw, V: Point) -> tuple[_Raw, _Raw, Point]:
        t_num = _f2_sqr(*t_num, p)
        t_den = _f2_sqr(*t_den, p)
        t_num = _f2_mul(*t_num, *_eval_tangent(p, Bq, V), p)
        V = PointDouble1(E, V)
        t_den = _f2_mul(*t_den, *_eval_vertical(p, Bq, V.x), p)
        return t_num, t_den, V

    # Step 2: the s * 2^b contribution.
    for _ in range(b):
        t_num, t_den, V = double_step(t_num, t_den, V)
    V_b = Point(V.x, (s * V.y) % p)
    if s == -1:
        v_num = _f2_mul(*v_num, *t_den, p)
        v_den = _f2_mul(*v_den, *_f2_mul(*t_num, *_eval_vertical(p, Bq, V.x), p), p)
    else:
        v_num = _f2_mul(*v_num, *t_num, p)
        v_den = _f2_mul(*v_den, *t_den, p)
    # Step 3: the 2^a contribution; V_a = [2^a]A (corrected 3(b): no factor s).
    for _ in range(b, a):
        t_num, t_den, V = double_step(t_num, t_den, V)
    V_a = V
    v_num = _f2_mul(*v_num, *t_num, p)
    v_den = _f2_mul(*v_den, *t_den, p)
    # Step 4 (corrected): the line through V_a and V_b; the vertical at
    # V_a + V_b = A only when c = -1.
    v_num = _f2_mul(*v_num, *_eval_line(p, Bq, V_a, V_b), p)
    if c == -1:
        v_den = _f2_mul(*v_den, *_eval_vertical(p, Bq, A.x), p)
    return v_num, v_den


def _miller_binary(E: Type1Curve, A: Point, Bq: _RawPoint) -> tuple[_Raw, _Raw]:
    """The plain binary Miller loop: (numerator, denominator) of f_(q,A)(B), counted as one
    ``pairing:ss{p bits}``."""
    if opcount.active():
        opcount.record(f"pairing:{curve_label(E.p)}")
    p = E.p
    num, den = (mpz(1), mpz(0)), (mpz(1), mpz(0))
    T = A
    for bit in bin(int(E.q))[3:]:
        num = _f2_mul(*_f2_sqr(*num, p), *_eval_tangent(p, Bq, T), p)
        den = _f2_sqr(*den, p)
        T = PointDouble1(E, T)
        if not T.infinity:
            den = _f2_mul(*den, *_eval_vertical(p, Bq, T.x), p)
        if bit == "1":
            num = _f2_mul(*num, *_eval_line(p, Bq, T, A), p)
            T = PointAdd1(E, T, A)
            if not T.infinity:
                den = _f2_mul(*den, *_eval_vertical(p, Bq, T.x), p)
    return num, den


def _miller(E: Type1Curve, A: Point, Bq: _RawPoint) -> tuple[_Raw, _Raw]:
    if E.solinas is not None:
        return _miller_solinas(E, A, Bq)
    return _miller_binary(E, A, Bq)


def TateMillerSolinas(E: Type1Curve, A: Point, B: PointFp2) -> Fp2:
    """RFC 5091 Algorithm 3.5.2 (TateMillerSolinas): e(A, B) for q = 2^a +
    s 2^b + c, A of order q in E(F_p), B of order q in E(F_p^2).

    Follows the RFC's steps with V in affine coordinates, and with two
    intentional corrections (specs/ibe.md 3.9.3).  The RFC's own q all have
    s = c = -1, and for them both corrections are forced by the published
    value 7.3; the c = +1 and s = +1 cases are derived the same way and
    tested against :func:`miller_binary`:

    * step 3(b): V_a = (x_V/z_V^2, y_V/z_V^3) = [2^a]A; the RFC prints
      (x_V/z_V^2, s * x_V/z_V^3);
    * step 4: f_q = f_(2^a) * f_(s 2^b) * l_(V_a,V_b) / v_(V_a+V_b) when
      c = -1 (V_a + V_b = [q + 1]A = A), and f_(2^a) * f_(s 2^b) * l_(V_a,V_b)
      when c = +1 (V_a + V_b = -A, and f_q = f_(q-1) * v_A).  The RFC divides
      by v_(V_a+V_b) in both cases and, for c = -1, by v_A once more (step
      4(c)); with that division the 7.3 value does not reproduce.
    """
    if E.solinas is None:
        raise ParameterError("q is not a Solinas prime 2^a +/- 2^b +/- 1")
    if A.infinity:
        return Fp2.one(E.p)
    return _final_exponentiation(E, *_miller_solinas(E, A, _raw(B)))


def miller_binary(E: Type1Curve, A: Point, B: PointFp2) -> Fp2:
    """e(A, B) by the plain binary Miller loop over the bits of q, for any q:
    the reference that :func:`TateMillerSolinas` is tested against, and the
    loop :func:`Tate` uses when q has no Solinas form."""
    if A.infinity:
        return Fp2.one(E.p)
    return _final_exponentiation(E, *_miller_binary(E, A, _raw(B)))


def Tate(E: Type1Curve, A: Point, B: PointFp2) -> Fp2:
    """RFC 5091 Algorithm 3.5.1 (Tate): the reduced Tate pairing e(A, B) =
    f_(q,A)(B)^((p^2 - 1)/q), by TateMillerSolinas when q has a Solinas form
    (as RFC 5091's setup makes it), else by the binary loop.  e(0, B) = 1."""
    if A.infinity:
        return Fp2.one(E.p)
    return _final_exponentiation(E, *_miller(E, A, _raw(B)))


# ---------------------------------------------------------------------------
# The modified pairing (RFC 5091 sections 4.5, 4.6)
# ---------------------------------------------------------------------------


def phi(E: Type1Curve, B: Point) -> PointFp2:
    """The distortion map phi(x, y) = (zeta * x, y) of RFC 5091 Algorithm 4.5.2
    step 1, with the corrected zeta of :class:`Type1Curve` (zeta^3 = 1, zeta != 1),
    mapping E(F_p) into E(F_p^2)."""
    if B.infinity:
        raise ParameterError("phi is applied to finite points only")
    return PointFp2(E.fp2(E.zeta.a0 * B.x % E.p, E.zeta.a1 * B.x % E.p), E.fp2(B.y, 0))


def Pairing1(E: Type1Curve, A: Point, B: Point) -> Fp2:
    """RFC 5091 Algorithm 4.5.2 (Pairing1): e'(A, B) = e(A, phi(B)), for points
    the caller has already validated as elements of order q (the schemes
    validate every input once, then call this).  :func:`Pairing` validates."""
    return Tate(E, A, phi(E, B))


def Pairing(E: Type1Curve, A: Point, B: Point) -> Fp2:
    """RFC 5091 Algorithms 4.5.1/4.5.2 (Pairing, Pairing1): the modified Tate
    pairing e'(A, B) = e(A, phi(B)) in F_p^2, for A and B of order q in E(F_p).

    Both points are validated first (:meth:`Type1Curve.check_point`,
    ``ParameterError``): the point at infinity is refused, as it is not of
    order q."""
    E.check_point(A, "pairing input A")
    E.check_point(B, "pairing input B")
    return Pairing1(E, A, B)


def PairingRatio1(E: Type1Curve, A: Point, B: Point, C: Point, D: Point) -> Fp2:
    """RFC 5091 Algorithm 4.6.2 (PairingRatio1) on points the caller has
    validated (:func:`PairingRatio` validates): the Miller values of e(A, phi(B)) and
    e(-C, phi(D)) are multiplied and share one final exponentiation (the
    saving that section 4.6.1 describes)."""
    p = E.p
    num1, den1 = _miller(E, A, _raw(phi(E, B)))
    num2, den2 = _miller(E, PointNegate(E, C), _raw(phi(E, D)))
    return _final_exponentiation(E, _f2_mul(*num1, *num2, p), _f2_mul(*den1, *den2, p))


def PairingRatio(E: Type1Curve, A: Point, B: Point, C: Point, D: Point) -> Fp2:
    """RFC 5091 Algorithms 4.6.1/4.6.2 (PairingRatio, PairingRatio1):
    e'(A, B) / e'(C, D) = e'(A, B) * e'(-C, D), for four points of order q
    (validated, ``ParameterError``).  Section 4.6.2 leaves the optimised
    algorithm out of the specification; this computes the product of the two
    pairings, which it allows."""
    for name, X in (("A", A), ("B", B), ("C", C), ("D", D)):
        E.check_point(X, f"pairing-ratio input {name}")
    return PairingRatio1(E, A, B, C, D)


# ---------------------------------------------------------------------------
# Canonical encodings (RFC 5091 section 4.3)
# ---------------------------------------------------------------------------


def Canonical(E: Type1Curve, o: int, v: Fp2) -> bytes:
    """RFC 5091 Algorithms 4.3.1/4.3.2 (Canonical, Canonical1): v = a + b i as
    a_(256^l) || b_(256^l) (o = 0) or b_(256^l) || a_(256^l) (o = 1), each
    big-endian and zero-padded to l = Ceiling(lg(p) / 8) octets.  BF uses
    o = 0 (5.4.1 step 9), BB1 o = 1 (6.4.1 step 5(a))."""
    if o not in (0, 1) or isinstance(o, bool):
        raise ParameterError("the ordering parameter o must be 0 or 1")
    if not isinstance(v, Fp2) or v.p != E.p:
        raise ParameterError("Canonical encodes an element of the curve's F_p^2")
    a, b = E.encode_fp(v.a0), E.encode_fp(v.a1)
    return a + b if o == 0 else b + a


def canonical_decode(E: Type1Curve, o: int, data: bytes) -> Fp2:
    """The inverse of :func:`Canonical`: exactly 2l octets, each half < p
    (``DecodeError`` otherwise)."""
    if o not in (0, 1) or isinstance(o, bool):
        raise ParameterError("the ordering parameter o must be 0 or 1")
    if not isinstance(data, (bytes, bytearray)) or len(data) != 2 * E.octets:
        raise DecodeError(f"a canonical F_p^2 element is exactly {2 * E.octets} octets")
    first = int.from_bytes(data[: E.octets], "big")
    second = int.from_bytes(data[E.octets:], "big")
    a, b = (first, second) if o == 0 else (second, first)
    if a >= E.p or b >= E.p:
        raise DecodeError("a canonical F_p^2 coordinate is not below p")
    return Fp2(E.p, a, b)


# ---------------------------------------------------------------------------
# DER (RFC 5091 section 8): the subset its ASN.1 module uses
# ---------------------------------------------------------------------------
#
# INTEGER (non-negative only: every integer in the module is), OCTET STRING,
# OBJECT IDENTIFIER and SEQUENCE, in DER (ITU-T X.690): definite, minimal
# lengths; minimal integer contents.

_TAG_INTEGER, _TAG_OCTET_STRING, _TAG_OID, _TAG_SEQUENCE = 0x02, 0x04, 0x06, 0x30
_TAG_BIT_STRING = 0x03


def _der_tlv(tag: int, content: bytes) -> bytes:
    n = len(content)
    if n < 0x80:
        return bytes([tag, n]) + content
    size = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([tag, 0x80 | len(size)]) + size + content


def der_integer(value: int) -> bytes:
    """A non-negative INTEGER."""
    if not _is_int(value) or value < 0:
        raise ParameterError("only non-negative integers are encoded")
    return _der_tlv(_TAG_INTEGER, int(value).to_bytes(int(value).bit_length() // 8 + 1, "big"))


def der_octet_string(value: bytes) -> bytes:
    if not isinstance(value, (bytes, bytearray)):
        raise ParameterError("an OCTET STRING holds bytes")
    return _der_tlv(_TAG_OCTET_STRING, bytes(value))


def der_oid(dotted: str) -> bytes:
    """An OBJECT IDENTIFIER from its dotted form ("1.3.14.3.2.26")."""
    arcs = _parse_oid(dotted)
    body = bytearray()
    for arc in [40 * arcs[0] + arcs[1], *arcs[2:]]:
        chunk = [arc & 0x7F]
        arc >>= 7
        while arc:
            chunk.append(0x80 | (arc & 0x7F))
            arc >>= 7
        body.extend(reversed(chunk))
    return _der_tlv(_TAG_OID, bytes(body))


def _parse_oid(dotted: str) -> list[int]:
    parts = dotted.split(".") if isinstance(dotted, str) else []
    if len(parts) < 2 or not all(part.isdigit() and part.isascii() and
                                 (part == "0" or not part.startswith("0")) for part in parts):
        raise ParameterError(f"not a dotted object identifier: {dotted!r}")
    arcs = [int(part) for part in parts]
    if arcs[0] > 2 or (arcs[0] < 2 and arcs[1] > 39):
        raise ParameterError(f"not a valid object identifier: {dotted!r}")
    return arcs


def der_sequence(*items: bytes) -> bytes:
    return _der_tlv(_TAG_SEQUENCE, b"".join(items))


def der_fp_point(x: int, y: int) -> bytes:
    """FpPoint ::= SEQUENCE { x INTEGER, y INTEGER } (RFC 5091 section 8); an
    F_p^2 element a0 + a1 i is written with x = a0, y = a1."""
    return der_sequence(der_integer(x), der_integer(y))


class DerReader:
    """A strict reader of DER elements from ``data`` (``DecodeError`` on any
    fault: truncation, a non-minimal length or integer, a negative integer,
    an unexpected tag, trailing bytes at :meth:`end`)."""

    def __init__(self, data: bytes, what: str = "DER input") -> None:
        if not isinstance(data, (bytes, bytearray)):
            raise DecodeError(f"{what} must be bytes")
        if len(data) > MAX_DER_BYTES:
            raise DecodeError(f"{what} is longer than {MAX_DER_BYTES} bytes")
        self._data = bytes(data)
        self._pos = 0
        self._what = what

    def _fail(self, message: str) -> DecodeError:
        return DecodeError(f"{self._what}: {message} at offset {self._pos}")

    def _read(self, tag: int, name: str) -> bytes:
        data, pos = self._data, self._pos
        if pos + 2 > len(data):
            raise self._fail(f"truncated, {name} expected")
        if data[pos] != tag:
            raise self._fail(f"tag 0x{data[pos]:02x} where {name} (0x{tag:02x}) was expected")
        first = data[pos + 1]
        pos += 2
        if first < 0x80:
            length = first
        else:
            count = first & 0x7F
            if count == 0 or count > 4 or pos + count > len(data):
                raise self._fail(f"bad length of {name}")
            length = int.from_bytes(data[pos:pos + count], "big")
            if length < 0x80 or data[pos] == 0:
                raise self._fail(f"non-minimal length of {name}")
            pos += count
        if pos + length > len(data):
            raise self._fail(f"truncated {name}")
        self._pos = pos + length
        return data[pos:pos + length]

    def integer(self, name: str = "INTEGER") -> mpz:
        """A non-negative INTEGER with minimal contents."""
        content = self._read(_TAG_INTEGER, name)
        if not content:
            raise self._fail(f"empty {name}")
        if len(content) > 1 and (content[0] == 0 and content[1] < 0x80
                                 or content[0] == 0xFF and content[1] >= 0x80):
            raise self._fail(f"non-minimal {name}")
        if content[0] >= 0x80:
            raise self._fail(f"negative {name}")
        return mpz(int.from_bytes(content, "big"))

    def octet_string(self, name: str = "OCTET STRING") -> bytes:
        return self._read(_TAG_OCTET_STRING, name)

    def oid(self, name: str = "OBJECT IDENTIFIER") -> str:
        content = self._read(_TAG_OID, name)
        if len(content) > MAX_OID_BYTES:  # bounds every arc below 2^512, so str() stays cheap
            raise self._fail(f"{name} longer than {MAX_OID_BYTES} bytes")
        if not content or content[-1] & 0x80:
            raise self._fail(f"malformed {name}")
        arcs: list[int] = []
        value, start = 0, True
        for byte in content:
            if start and byte == 0x80:
                raise self._fail(f"non-minimal arc in {name}")
            value = (value << 7) | (byte & 0x7F)
            start = not byte & 0x80
            if start:
                arcs.append(value)
                value = 0
        first = arcs[0]
        head = [0, first] if first < 40 else [1, first - 40] if first < 80 else [2, first - 80]
        return ".".join(str(arc) for arc in head + arcs[1:])

    def sequence(self, name: str = "SEQUENCE") -> DerReader:
        return DerReader(self._read(_TAG_SEQUENCE, name), f"{self._what}, {name}")

    def octet_aligned_bit_string(self, name: str = "BIT STRING") -> bytes:
        """A BIT STRING of whole octets: its first content octet (the unused-bit count) MUST be 0
        (a signature value is a whole number of octets, so DER leaves no unused bits)."""
        content = self._read(_TAG_BIT_STRING, name)
        if not content or content[0] != 0:
            raise self._fail(f"{name} must have 0 unused bits")
        return content[1:]

    def fp_point(self, name: str = "FpPoint") -> tuple[mpz, mpz]:
        inner = self.sequence(name)
        x, y = inner.integer(f"{name}.x"), inner.integer(f"{name}.y")
        inner.end()
        return x, y

    def end(self) -> None:
        if self._pos != len(self._data):
            raise self._fail(f"{len(self._data) - self._pos} trailing bytes")


def read_der(data: bytes, what: str) -> DerReader:
    """The contents of the single SEQUENCE that ``data`` must be exactly."""
    outer = DerReader(data, what)
    inner = outer.sequence(what)
    outer.end()
    return inner

