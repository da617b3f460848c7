"""The curve, the field F_p^2 and the Tate-Lichtenbaum pairing of SAKKE (RFC 6508,
February 2012, sections 2.1, 3 and 4), with the public parameters of RFC 6509
Appendix A "Parameter Set 1", over gmpy2 (specs/sakke_eccsi.md section 2).

No installable library exposes this curve or this pairing: the pairing
libraries the project uses (py-arkworks-bls12381) are for BLS12-381, and the
RFC 5091 pairing of :mod:`protocols.primitives.supersingular` is on another
curve (y^2 = x^3 + 1, with another distortion map and no PF_p representation).
So it is written here, as RFC 6508 section 3.2 gives it.

| RFC 6508 section | what | here |
|---|---|---|
| 2.1, 2.3; RFC 6509 App. A | n, p, q, P, g, Hash | :class:`SakkeParameters`, :data:`PARAMETER_SET_1` |
| 2.1 | F_p^2 = F_p[i], i^2 + 1 = 0 | raw pairs (a, b) for a + i*b |
| 2.1 | PF_p: representative b/a, product (a + b)/(1 - a*b) | :func:`representative`, :func:`PFp_mul`, :func:`PFp_pow` |
| 3 | E: y^2 = x^3 - 3x, addition and doubling (P1363 A.10) | :func:`point_add`, :func:`point_multiply` |
| 3.1 | the distortion map [i](x, y) = (-x, i*y) | :func:`distortion_map` |
| 3.2 | the pairing <R, Q> = f_R([i]Q)^c / (F_p)*, c = (p + 1)/q | :func:`pairing`, :func:`pairing_affine` |
| 4 | F_p elements (L octets), points (2L + 1 octets) | ``SakkeParameters.encode_point``, ``decode_point`` |

Points are :class:`protocols.primitives.supersingular.Point` (affine, or the
point at infinity), shared with the RFC 5091 code; they carry no curve, and
:meth:`SakkeParameters.check_point` validates them (on E, not 0, [q]A = 0).

Two forms of each computation are kept, held equal by the tests:

* the pairing as the RFC's pseudocode writes it, in affine coordinates with a
  division per step (:func:`pairing_affine`), and the same Miller loop on
  Jacobian coordinates with every line multiplied by an F_p scalar so that no
  division is needed (:func:`pairing`); F_p scalars vanish in PF_p, so both
  give the same element (RFC 6508 3.2: "f_R is defined only up to scalars of
  F_p");
* g^r as RFC 6508 6.2.1 step 4(a) says, square and multiply with the PF_p
  product of RFC 6508 2.1 (:func:`PFp_pow_by_product`, one F_p division per
  product), and the same power taken in F_p^2 on the representative 1 + i*g
  (:func:`PFp_pow`, no division until the end);
* scalar multiplication by double-and-add in affine coordinates
  (:func:`point_multiply_affine`) and in Jacobian coordinates
  (:func:`point_multiply`).

Nothing here is constant time (specs/sakke_eccsi.md section 6).  Module state
is immutable constants only.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, TypeGuard

import gmpy2
from gmpy2 import mpz

from protocols.errors import DecodeError, ParameterError, UsappError
from protocols.primitives import hashing, opcount
from protocols.primitives.numtheory import is_probable_prime
from protocols.primitives.supersingular import INFINITY, Point

_Raw = tuple[mpz, mpz]
"""An element a + i*b of F_p^2 as the pair (a, b)."""
_Jac = tuple[mpz, mpz, mpz]
"""A point (X, Y, Z) in Jacobian coordinates: x = X/Z^2, y = Y/Z^3; Z = 0 is 0."""


def _is_int(value: object) -> TypeGuard[int]:
    return isinstance(value, (int, type(mpz(0)))) and not isinstance(value, bool)


def SHA256(data: bytes) -> bytes:
    """Hash of RFC 6509 Appendix A (FIPS 180-3 SHA-256), 32 octets."""
    return hashing.sha256(data).digest()


# ---------------------------------------------------------------------------
# Point arithmetic on E: y^2 = x^3 - 3x (RFC 6508 section 3, IEEE P1363 A.10)
# ---------------------------------------------------------------------------


def point_negate(p: int, A: Point) -> Point:
    """-A = (x, -y); -0 = 0."""
    return A if A.infinity else Point(A.x, (-A.y) % p)


def point_double(p: int, A: Point) -> Point:
    """[2]A in affine coordinates: lambda = (3x^2 - 3)/(2y)."""
    if A.infinity or A.y == 0:
        return INFINITY
    lam = (3 * (A.x * A.x - 1) * gmpy2.invert(2 * A.y, p)) % p
    x = (lam * lam - 2 * A.x) % p
    return Point(x, (lam * (A.x - x) - A.y) % p)


def point_add(p: int, A: Point, B: Point) -> Point:
    """A + B in affine coordinates (the chord rule; the tangent when A = B)."""
    if A.infinity:
        return B
    if B.infinity:
        return A
    if A.x == B.x:
        if (A.y + B.y) % p == 0:
            return INFINITY
        return point_double(p, A)
    lam = ((B.y - A.y) * gmpy2.invert(B.x - A.x, p)) % p
    x = (lam * lam - A.x - B.x) % p
    return Point(x, (lam * (A.x - x) - A.y) % p)


def point_multiply_affine(p: int, k: int, A: Point) -> Point:
    """[k]A by left-to-right double-and-add in affine coordinates: the plain
    reference that :func:`point_multiply` is tested against.  k < 0 gives [-k](-A)."""
    if k < 0:
        return point_multiply_affine(p, -k, point_negate(p, A))
    result = INFINITY
    for bit in bin(int(k))[2:]:
        result = point_double(p, result)
        if bit == "1":
            result = point_add(p, result, A)
    return result


def _jac_double(p: mpz, X: mpz, Y: mpz, Z: mpz) -> _Jac:
    """[2](X, Y, Z) for a = -3 (the doubling of P1363 A.10.4 / "dbl-2001-b")."""
    if Z == 0 or Y == 0:
        return mpz(1), mpz(1), mpz(0)
    delta = Z * Z % p
    gamma = Y * Y % p
    beta = X * gamma % p
    alpha = 3 * (X - delta) * (X + delta) % p
    X3 = (alpha * alpha - 8 * beta) % p
    Z3 = ((Y + Z) * (Y + Z) - gamma - delta) % p
    Y3 = (alpha * (4 * beta - X3) - 8 * gamma * gamma) % p
    return X3, Y3, Z3


def _jac_add_affine(p: mpz, X: mpz, Y: mpz, Z: mpz, x2: mpz, y2: mpz) -> _Jac:
    """(X, Y, Z) + (x2, y2), the second point affine and finite ("madd")."""
    if Z == 0:
        return x2, y2, mpz(1)
    Z2 = Z * Z % p
    U2 = x2 * Z2 % p
    S2 = y2 * Z * Z2 % p
    H = (U2 - X) % p
    rr = (S2 - Y) % p
    if H == 0:
        if rr == 0:
            return _jac_double(p, X, Y, Z)
        return mpz(1), mpz(1), mpz(0)
    HH = H * H % p
    HHH = H * HH % p
    V = X * HH % p
    X3 = (rr * rr - HHH - 2 * V) % p
    Y3 = (rr * (V - X3) - Y * HHH) % p
    return X3, Y3, Z * H % p


def _to_affine(p: mpz, X: mpz, Y: mpz, Z: mpz) -> Point:
    if Z == 0:
        return INFINITY
    zi = gmpy2.invert(Z, p)
    zi2 = zi * zi % p
    return Point(X * zi2 % p, Y * zi2 * zi % p)


def point_multiply(p: int, k: int, A: Point) -> Point:
    """[k]A by left-to-right double-and-add in Jacobian coordinates (the same
    points as :func:`point_multiply_affine`, one inversion at the end).
    k < 0 gives [-k](-A); [0]A = 0."""
    if not _is_int(k):
        raise ParameterError("a scalar must be an integer")
    if k < 0:
        return point_multiply(p, -k, point_negate(p, A))
    if k == 0 or A.infinity:
        return INFINITY
    if opcount.active():
        opcount.record(f"point_mul:sakke{opcount.size_class(int(p).bit_length())}")
    P = mpz(p)
    X, Y, Z = A.x, A.y, mpz(1)
    for bit in bin(int(k))[3:]:
        X, Y, Z = _jac_double(P, X, Y, Z)
        if bit == "1":
            X, Y, Z = _jac_add_affine(P, X, Y, Z, A.x, A.y)
    return _to_affine(P, X, Y, Z)


# ---------------------------------------------------------------------------
# F_p^2 and PF_p (RFC 6508 section 2.1)
# ---------------------------------------------------------------------------


def _f2_mul(a: _Raw, b: _Raw, p: mpz) -> _Raw:
    """(a0 + i a1)(b0 + i b1) with i^2 = -1."""
    return (a[0] * b[0] - a[1] * b[1]) % p, (a[0] * b[1] + a[1] * b[0]) % p


def _f2_sqr(a: _Raw, p: mpz) -> _Raw:
    return (a[0] + a[1]) * (a[0] - a[1]) % p, 2 * a[0] * a[1] % p


def _f2_pow(a: _Raw, e: int, p: mpz) -> _Raw:
    result = (mpz(1), mpz(0))
    for bit in bin(int(e))[2:] if e > 0 else "":
        result = _f2_sqr(result, p)
        if bit == "1":
            result = _f2_mul(result, a, p)
    return result


def representative(p: int, t: tuple[int, int]) -> mpz:
    """RFC 6508 section 3.2, "representative in F_p of elements of PF_p": for
    t = a + i*b, b/a.  ``ParameterError`` when a = 0 (the element of order 2 of
    PF_p, or t = 0), which has no representative."""
    a, b = mpz(t[0]) % p, mpz(t[1]) % p
    if a == 0:
        raise ParameterError("a + i*b with a = 0 has no representative in F_p (RFC 6508 2.1)")
    return b * gmpy2.invert(a, p) % p


def PFp_mul(p: int, a: int, b: int) -> mpz:
    """RFC 6508 section 2.1: the product in PF_p[q] of the elements that a and b
    represent is represented by (a + b)/(1 - a*b).  ``ParameterError`` when
    1 - a*b = 0 (the product is then the element of order 2, which no
    element of PF_p[q] can produce)."""
    P = mpz(p)
    den = (1 - mpz(a) * b) % P
    if den == 0:
        raise ParameterError("1 - a*b = 0: the operands are not both in PF_p[q]")
    return (mpz(a) + b) * gmpy2.invert(den, P) % P


def PFp_pow_by_product(p: int, g: int, r: int) -> mpz:
    """g^r in PF_p by square and multiply with :func:`PFp_mul`, as RFC 6508
    6.2.1 step 4(a) describes it (0 represents the identity); the plain
    reference that :func:`PFp_pow` is tested against."""
    result = mpz(0)
    for bit in bin(int(r))[2:] if r > 0 else "":
        result = PFp_mul(p, result, result)
        if bit == "1":
            result = PFp_mul(p, result, g)
    return result


def PFp_pow(p: int, g: int, r: int) -> mpz:
    """g^r in PF_p for r >= 0 (RFC 6508 6.2.1 step 4(a)): g represents the coset
    of 1 + i*g, so g^r is the representative of (1 + i*g)^r, computed in
    F_p^2 with one division at the end.  Equal to :func:`PFp_pow_by_product`."""
    if not _is_int(r) or r < 0:
        raise ParameterError("the exponent must be an integer >= 0")
    if opcount.active():
        opcount.record(f"gt_exp:sakke{opcount.size_class(int(p).bit_length())}")
    P = mpz(p)
    return representative(P, _f2_pow((mpz(1), mpz(g) % P), r, P))


# ---------------------------------------------------------------------------
# The distortion map and the pairing (RFC 6508 sections 3.1, 3.2)
# ---------------------------------------------------------------------------


def distortion_map(p: int, Q: Point) -> tuple[_Raw, _Raw]:
    """RFC 6508 section 3.1: [i]Q = (-Q_x, i*Q_y), a point of E(F_p^2)[q], as
    the pair of F_p^2 coordinates ((-Q_x, 0), (0, Q_y))."""
    if Q.infinity:
        raise ParameterError("the distortion map is applied to finite points only")
    return (mpz(-Q.x % p), mpz(0)), (mpz(0), mpz(Q.y % p))


def pairing_affine(p: int, q: int, R: Point, Q: Point) -> mpz:
    """RFC 6508 section 3.2 <R, Q>, step for step as its pseudocode (affine
    coordinates, one division per line), for R and Q in E(F_p)[q] that the
    caller has validated.  Returns the representative in F_p of t = v^c.

    The loop runs over the bits of q - 1 after the most significant; each line
    through C (and C or R) is evaluated at [i]Q = (-Q_x, i*Q_y) as
    l*(Q_x + C_x) + (i*Q_y - C_y), where C is the point *before* the doubling
    or addition (the pseudocode computes l from C and then replaces C)."""
    P, qq = mpz(p), mpz(q)
    c = (P + 1) // qq
    v = (mpz(1), mpz(0))
    C = R
    for bit in bin(int(qq - 1))[3:]:
        if C.infinity or C.y == 0:
            raise ParameterError("the Miller loop met a degenerate point: R is not of order q")
        l = 3 * (C.x * C.x - 1) * gmpy2.invert(2 * C.y, P) % P
        v = _f2_mul(_f2_sqr(v, P), ((l * (Q.x + C.x) - C.y) % P, Q.y % P), P)
        C = point_double(P, C)
        if bit == "1":
            if C.infinity or C.x == R.x:
                raise ParameterError("the Miller loop met a degenerate point: R is not of order q")
            l = (C.y - R.y) * gmpy2.invert(C.x - R.x, P) % P
            v = _f2_mul(v, ((l * (Q.x + C.x) - C.y) % P, Q.y % P), P)
            C = point_add(P, C, R)
    return representative(P, _f2_pow(v, c, P))


def pairing(p: int, q: int, R: Point, Q: Point) -> mpz:
    """RFC 6508 section 3.2 <R, Q> for R and Q in E(F_p)[q] that the caller has
    validated (:meth:`SakkeParameters.check_point`): the representative in F_p
    of f_R([i]Q)^c, c = (p + 1)/q.

    The same Miller loop as :func:`pairing_affine` with C in Jacobian
    coordinates (X, Y, Z); each line is multiplied by an F_p scalar (2*Y*Z^3 for
    the tangent, Z*(X - R_x Z^2) for the chord), which leaves its class in
    PF_p unchanged, so that no division is needed:

    * tangent at C: 3(X^2 - Z^4)(Q_x Z^2 + X) - 2Y^2 + i * 2 Y Z^3 Q_y;
    * chord through C and R: n (Q_x + R_x) - d R_y + i * d Q_y, with
      n = Y - R_y Z^3 and d = Z (X - R_x Z^2) (the line through C and R,
      evaluated from R's side).

    ``ParameterError`` if the loop meets a degenerate point (only possible when
    R is not of order q)."""
    if R.infinity or Q.infinity:
        raise ParameterError("the pairing is defined on finite points of order q")
    if opcount.active():
        opcount.record(f"pairing:sakke{opcount.size_class(int(p).bit_length())}")
    P, qq = mpz(p), mpz(q)
    c = (P + 1) // qq
    Qx, Qy = Q.x % P, Q.y % P
    Rx, Ry = R.x, R.y
    v = (mpz(1), mpz(0))
    X, Y, Z = Rx, Ry, mpz(1)
    for bit in bin(int(qq - 1))[3:]:
        if Z == 0 or Y == 0:
            raise ParameterError("the Miller loop met a degenerate point: R is not of order q")
        Z2 = Z * Z % P
        line = ((3 * (X * X - Z2 * Z2) * (Qx * Z2 + X) - 2 * Y * Y) % P, 2 * Y * Z2 * Z * Qy % P)
        v = _f2_mul(_f2_sqr(v, P), line, P)
        X, Y, Z = _jac_double(P, X, Y, Z)
        if bit == "1":
            Z2 = Z * Z % P
            num = (Y - Ry * Z2 * Z) % P
            den = Z * (X - Rx * Z2) % P
            if den == 0:
                raise ParameterError("the Miller loop met a degenerate point: R is not of order q")
            v = _f2_mul(v, ((num * (Qx + Rx) - den * Ry) % P, den * Qy % P), P)
            X, Y, Z = _jac_add_affine(P, X, Y, Z, Rx, Ry)
    return representative(P, _f2_pow(v, c, P))


# ---------------------------------------------------------------------------
# Public parameters (RFC 6508 sections 2.2, 2.3; RFC 6509 Appendix A)
# ---------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class SakkeParameters:
    """The public parameters of RFC 6508 section 2.3: n (SSV bits), p, q,
    P = (P_x, P_y), g = <P, P> and Hash.  The curve E: y^2 = x^3 - 3x and the
    pairing are fixed by the RFC.

    Construction checks what is cheap (``ParameterError``): p = 3 mod 4, q odd
    and dividing p + 1, lg(q) > 2n, n a multiple of 8, P on E, 0 < g < p.
    :meth:`validate` checks the rest: p and q prime, [q]P = 0 and g = <P, P>.
    Derived: L = Ceiling(lg(p)/8) (section 4) and c = (p + 1)/q (3.2)."""

    name: str
    n: int
    p: mpz
    q: mpz
    Px: mpz
    Py: mpz
    g: mpz
    hash_name: str = "SHA-256"
    hashfn: Callable[[bytes], bytes] = field(default=SHA256, repr=False)
    hashlen: int = 256
    """Output bits of the hash (RFC 6508 5.1's hashlen)."""
    L: int = field(init=False, repr=False)
    c: mpz = field(init=False, repr=False)

    def __post_init__(self) -> None:
        values = (self.n, self.p, self.q, self.Px, self.Py, self.g, self.hashlen)
        if not all(_is_int(v) for v in values):
            raise ParameterError("SAKKE parameters n, p, q, P, g are integers")
        p, q = mpz(self.p), mpz(self.q)
        if p % 4 != 3:
            raise ParameterError("p must be 3 mod 4 (RFC 6508 2.1)")
        if q % 2 == 0 or q < 3 or (p + 1) % q != 0:
            raise ParameterError("q must be an odd prime dividing p + 1 (RFC 6508 2.1)")
        if self.n < 8 or self.n % 8 or q.bit_length() - 1 < 2 * self.n:
            raise ParameterError("n must be a multiple of 8 with lg(q) > 2n (RFC 6508 2.1)")
        P = Point(self.Px, self.Py)
        if not (0 <= P.x < p and 0 <= P.y < p) or (P.y * P.y - P.x ** 3 + 3 * P.x) % p:
            raise ParameterError("P is not on E: y^2 = x^3 - 3x")
        if not 0 < self.g < p:
            raise ParameterError("g must be an element of F_p other than 0")
        for name, value in (("p", p), ("q", q), ("Px", P.x), ("Py", P.y), ("g", mpz(self.g))):
            object.__setattr__(self, name, value)
        object.__setattr__(self, "L", (p.bit_length() + 7) // 8)
        object.__setattr__(self, "c", (p + 1) // q)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, SakkeParameters) and (self.n, self.p, self.q, self.Px, self.Py, self.g,
                                                       self.hash_name) == (other.n, other.p, other.q, other.Px,
                                                                           other.Py, other.g, other.hash_name)

    def __hash__(self) -> int:
        return hash(("sakke-parameters", int(self.p), int(self.q), int(self.Px)))

    @property
    def P(self) -> Point:
        """The generator P of E(F_p)[q]."""
        return Point(self.Px, self.Py)

    @property
    def point_bytes(self) -> int:
        """2L + 1, the length of an encoded point (RFC 6508 section 4)."""
        return 2 * self.L + 1

    @property
    def ssv_bytes(self) -> int:
        """n/8, the length of an SSV and of the hint H."""
        return self.n // 8

    def validate(self) -> None:
        """The costly checks (``ParameterError``): p and q prime, [q]P = 0 and
        g = <P, P> (RFC 6508 sections 2.2, 2.3)."""
        if not is_probable_prime(self.p) or not is_probable_prime(self.q):
            raise ParameterError("p and q must be prime")
        if not point_multiply(self.p, self.q, self.P).infinity:
            raise ParameterError("P is not of order q")
        if pairing(self.p, self.q, self.P, self.P) != self.g:
            raise ParameterError("g != <P, P>")

    # -- points ---------------------------------------------------------------

    def is_on_curve(self, A: Point) -> bool:
        """0 <= x, y < p and y^2 = x^3 - 3x (mod p); 0 is on the curve."""
        if A.infinity:
            return True
        p = self.p
        return 0 <= A.x < p and 0 <= A.y < p and (A.y * A.y - A.x * A.x * A.x + 3 * A.x) % p == 0

    def check_point(self, A: object, what: str = "point",
                    error: type[UsappError] = ParameterError) -> Point:
        """``A`` as an element of E(F_p)[q] other than 0: a :class:`Point`, finite,
        coordinates in [0, p), on E, and [q]A = 0.  Each failure raises ``error``
        (``ParameterError`` unless told) naming ``what``."""
        if not isinstance(A, Point):
            raise error(f"{what} must be a point")
        if A.infinity:
            raise error(f"{what} is the point at infinity")
        if not (0 <= A.x < self.p and 0 <= A.y < self.p):
            raise error(f"{what} has a coordinate outside [0, p)")
        if not self.is_on_curve(A):
            raise error(f"{what} is not on the curve y^2 = x^3 - 3x")
        if not point_multiply(self.p, self.q, A).infinity:
            raise error(f"{what} is not in the subgroup of order q")
        return A

    def encode_fp(self, value: int) -> bytes:
        """An F_p element as L octets, most significant first (RFC 6508 section 4)."""
        if not _is_int(value) or not 0 <= value < self.p:
            raise ParameterError("an F_p element lies in [0, p)")
        return int(value).to_bytes(self.L, "big")

    def encode_point(self, A: Point) -> bytes:
        """0x04 || x || y, 2L + 1 octets (RFC 6508 section 4, RFC 5480 2.2)."""
        if not isinstance(A, Point) or A.infinity:
            raise ParameterError("only finite points are encoded (RFC 6508 section 4)")
        return b"\x04" + self.encode_fp(A.x) + self.encode_fp(A.y)

    def decode_point(self, data: object, what: str = "point",
                     error: type[UsappError] = DecodeError) -> Point:
        """The element of E(F_p)[q] that ``data`` encodes: exactly 2L + 1 octets,
        first octet 0x04, then :meth:`check_point`.  Every failure raises
        ``error`` (``DecodeError`` unless told) naming ``what``."""
        if not isinstance(data, (bytes, bytearray)) or len(data) != self.point_bytes:
            raise error(f"{what} must be {self.point_bytes} octets")
        if data[0] != 0x04:
            raise error(f"{what} is not an uncompressed point (first octet 0x04)")
        x = int.from_bytes(data[1:1 + self.L], "big")
        y = int.from_bytes(data[1 + self.L:], "big")
        return self.check_point(Point(x, y), what, error)


def _hex(text: str) -> mpz:
    return mpz(int(text, 16))


PARAMETER_SET_1 = SakkeParameters(
    name="RFC 6509 Appendix A, Parameter Set 1",
    n=128,
    p=_hex("997ABB1F0A563FDA65C61198DAD0657A416C0CE19CB48261BE9AE358B3E01A2E"
           "F40AAB27E2FC0F1B228730D531A59CB0E791B39FF7C88A19356D27F4A666A6D0"
           "E26C6487326B4CD4512AC5CD65681CE1B6AFF4A831852A82A7CF3C521C3C09AA"
           "9F94D6AF56971F1FFCE3E82389857DB080C5DF10AC7ACE87666D807AFEA85FEB"),
    q=_hex("265EAEC7C2958FF69971846636B4195E905B0338672D20986FA6B8D62CF8068B"
           "BD02AAC9F8BF03C6C8A1CC354C69672C39E46CE7FDF222864D5B49FD2999A9B4"
           "389B1921CC9AD335144AB173595A07386DABFD2A0C614AA0A9F3CF14870F026A"
           "A7E535ABD5A5C7C7FF38FA08E2615F6C203177C42B1EB3A1D99B601EBFAA17FB"),
    Px=_hex("53FC09EE332C29AD0A7990053ED9B52A2B1A2FD60AEC69C698B2F204B6FF7CBF"
            "B5EDB6C0F6CE2308AB10DB9030B09E1043D5F22CDB9DFA55718BD9E7406CE890"
            "9760AF765DD5BCCB337C86548B72F2E1A702C3397A60DE74A7C1514DBA66910D"
            "D5CFB4CC80728D87EE9163A5B63F73EC80EC46C4967E0979880DC8ABEAE63895"),
    Py=_hex("0A8249063F6009F1F9F1F0533634A135D3E82016029906963D778D821E141178"
            "F5EA69F4654EC2B9E7F7F5E5F0DE55F66B598CCF9A140B2E416CFF0CA9E032B9"
            "70DAE117AD547C6CCAD696B5B7652FE0AC6F1E80164AA989492D979FC5A4D5F2"
            "13515AD7E9CB99A980BDAD5AD5BB4636ADB9B5706A67DCDE75573FD71BEF16D7"),
    g=_hex("66FC2A432B6EA392148F15867D623068C6A87BD1FB94C41E27FABE658E015A87"
           "371E94744C96FEDA449AE9563F8BC446CBFDA85D5D00EF577072DA8F541721BE"
           "EE0FAED1828EAB90B99DFB0138C7843355DF0460B4A9FD74B4F1A32BCAFA1FFA"
           "D682C033A7942BCCE3720F20B9B7B0403C8CAE87B7A0042ACDE0FAB36461EA46"),
)
"""RFC 6509 Appendix A "Parameter Set 1", the parameters of RFC 6508 Appendix
A: n = 128, p of 1024 bits (L = 128 octets), q = (p + 1)/4 of 1022 bits,
Hash = SHA-256.  Transcribed from the RFC text; :meth:`SakkeParameters.validate`
and the tests recompute [q]P = 0 and g = <P, P>."""
