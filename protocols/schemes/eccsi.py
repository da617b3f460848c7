"""ECCSI, the identity-based signature of RFC 6507 (February 2012), on NIST P-256
with SHA-256 as RFC 6509 section 2.1.1 fixes them (specs/sakke_eccsi.md section 4).

| RFC 6507 section | algorithm | here |
|---|---|---|
| 3.2 | integers, F_p elements and points as octet strings | :func:`encode_point`, :func:`decode_point` |
| 3.3 | Signature = r \\|\\| s \\|\\| PVT | :class:`Signature` |
| 4.2 | KPAK = [KSAK]G | :func:`KeyGen`, :func:`kms_from_ksak` |
| 5.1.1 | constructing an (SSK, PVT) pair | :func:`ConstructSskPvt`, :func:`construct_ssk_pvt_with_v` |
| 5.1.2 | validating a received SSK (and PVT), computing HS | :func:`ValidateSsk` |
| 5.2.1 | signing | :func:`Sign`, :func:`sign_with_j` |
| 5.2.2 | verifying | :func:`Verify`, :func:`verify_trace` |
| RFC 6509 3.2 | identifiers "YYYY-MM" NUL URI NUL | :class:`Identifier` |
| RFC 6509 3.3 | monthly key periods, two at once | :func:`period_of`, :func:`next_period`, :func:`accepted_periods` |

Roles: the KMS holds the KSAK and issues (SSK, PVT) pairs; a signer validates
its pair once (:func:`ValidateSsk`) and signs; anyone holding the KPAK verifies
a signature against the signer's identifier alone.

P-256 arithmetic is pycryptodome's ``Crypto.PublicKey.ECC.EccPoint``: it exposes
point construction with an on-curve check, addition, negation and scalar
multiplication, which is all RFC 6507 needs (P-256 has cofactor 1, so a point
on the curve other than the identity is in the group of order q).  The
``cryptography`` package was not used because it exposes no point addition.

Randomness (v of 5.1.1, j of 5.2.1, the KSAK) is drawn from the injected
``rng`` by ``random_range(rng, 1, q)`` (specs/conventions.md section 3.2);
the ``*_with_*`` functions take the value itself, so that every Appendix A
value can be reproduced.  Nothing here is constant time beyond what
pycryptodome's scalar multiplication gives.
"""

from __future__ import annotations

import calendar
import datetime
import hmac
import re
from dataclasses import dataclass
from typing import TypeGuard

from Crypto.PublicKey.ECC import EccPoint

from protocols.errors import DecodeError, ParameterError, VerificationError
from protocols.primitives import hashing, opcount
from protocols.primitives.numtheory import count_modinv
from protocols.primitives.rand import RandomSource, random_range

# ---------------------------------------------------------------------------
# Parameters (RFC 6507 section 4.1 and Appendix A; FIPS 186-3 P-256)
# ---------------------------------------------------------------------------

n = 256
"""The security parameter: the bit size of p (RFC 6507 section 4.1)."""
N = 32
"""Octets of r, s, HS, HE, SSK and of each point coordinate: Ceiling(n/8)."""
p = 0xFFFFFFFF00000001000000000000000000000000FFFFFFFFFFFFFFFFFFFFFFFF
B = 0x5AC635D8AA3A93E7B3EBBD55769886BC651D06B0CC53B0F63BCE3C3E27D2604B
q = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551
G_X = 0x6B17D1F2E12C4247F8BCE6E563A440F277037D812DEB33A0F4A13945D898C296
G_Y = 0x4FE342E2FE1A7F9B8EE7EB4A7C0F9E162BCE33576B315ECECBB6406837BF51F5
CURVE = "p256"
"""pycryptodome's name of the curve y^2 = x^3 - 3x + B mod p (RFC 6507 section 3.1)."""

POINT_BYTES = 2 * N + 1
"""An uncompressed point 0x04 || x || y (RFC 6507 section 3.2): 65 octets."""
SIGNATURE_BYTES = 4 * N + 1
"""r || s || PVT (RFC 6507 section 3.3): 129 octets."""

MAX_MESSAGE_BYTES = 1 << 20
"""Longest message M signed or verified (1 MiB); a longer one is a ParameterError."""
MAX_ID_BYTES = 1024
"""Longest identifier ID accepted (RFC 6509 identifiers are a few dozen octets)."""
MAX_URI_BYTES = 1000
"""Longest URI inside an RFC 6509 identifier (specs/sakke_eccsi.md section 1.3)."""


def _is_int(value: object) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool)


def Hash(data: bytes) -> bytes:
    """RFC 6507 section 4.1 Hash: SHA-256, N = 32 output octets."""
    return hashing.sha256(data).digest()


def G() -> EccPoint:
    """The base point G of P-256 (RFC 6507 Appendix A), a fresh object each call
    (pycryptodome points are mutable: no module-level point is kept)."""
    return EccPoint(G_X, G_Y, CURVE)


def base_multiply(k: int) -> EccPoint:
    """[k]G, counted as one ``point_mul_base:p256`` (specs/costs.md section 2.1)."""
    opcount.record("point_mul_base:p256")
    return G() * k


def multiply(A: EccPoint, k: int) -> EccPoint:
    """[k]A, counted as one ``point_mul:p256`` (specs/costs.md section 2.1)."""
    opcount.record("point_mul:p256")
    return A * k


# ---------------------------------------------------------------------------
# Representations (RFC 6507 section 3.2)
# ---------------------------------------------------------------------------


def I2OSP_N(value: int) -> bytes:
    """An integer in [0, 2^(8N)) as N octets, most significant first (RFC 6507 3.2)."""
    if not _is_int(value) or not 0 <= value < 1 << (8 * N):
        raise ParameterError(f"an N-octet integer lies in [0, 2^{8 * N})")
    return value.to_bytes(N, "big")


def encode_point(P: EccPoint) -> bytes:
    """0x04 || x' || y' with x', y' of N octets (RFC 6507 section 3.2, RFC 5480 2.2).
    The identity has no representation: ParameterError."""
    x, y = (int(c) for c in P.xy)        # one conversion to affine coordinates (pycryptodome: a field inversion)
    if (x, y) == (0, 0):                  # how pycryptodome writes the point at infinity, which is not on the curve
        raise ParameterError("the point at infinity has no representation (RFC 6507 section 3.1)")
    return b"\x04" + x.to_bytes(N, "big") + y.to_bytes(N, "big")


def decode_point(data: object, what: str = "point") -> EccPoint:
    """The point that ``data`` encodes, checked (RFC 6507 sections 3.2, 4.2, 5.1.2
    step 1, 5.2.2 step 1): exactly 2N + 1 octets, first octet 0x04, both
    coordinates below p, and on the curve.  Any failure is a ``DecodeError``
    naming ``what``.  (An encoded point is never the identity, and P-256 has
    cofactor 1, so a point on the curve is in the group of order q.)"""
    if not isinstance(data, (bytes, bytearray)) or len(data) != POINT_BYTES:
        raise DecodeError(f"{what} must be {POINT_BYTES} octets")
    if data[0] != 0x04:
        raise DecodeError(f"{what} is not an uncompressed point (first octet 0x04)")
    x = int.from_bytes(data[1:1 + N], "big")
    y = int.from_bytes(data[1 + N:], "big")
    if x >= p or y >= p:
        raise DecodeError(f"{what} has a coordinate not below p")
    if (y * y - x * x * x + 3 * x - B) % p != 0:
        raise DecodeError(f"{what} does not lie on the curve y^2 = x^3 - 3x + B")
    try:
        return EccPoint(x, y, CURVE)
    except ValueError as exc:  # pycryptodome's own on-curve check; unreachable after ours
        raise DecodeError(f"{what} does not lie on the curve") from exc


def _bytes(value: object, what: str, limit: int) -> bytes:
    if not isinstance(value, (bytes, bytearray)):
        raise ParameterError(f"{what} must be bytes")
    if len(value) > limit:
        raise ParameterError(f"{what} is longer than {limit} octets")
    return bytes(value)


def _identifier(ID: object) -> bytes:
    data = _bytes(ID, "the identifier ID", MAX_ID_BYTES)
    if not data:
        raise ParameterError("the identifier ID is empty")
    return data


# ---------------------------------------------------------------------------
# Identifiers (RFC 6509 section 3.2)
# ---------------------------------------------------------------------------

_PERIOD = re.compile(r"\A[0-9]{4}-(0[1-9]|1[0-2])\Z")
_TEL = re.compile(r"\Atel:\+[0-9]{1,32}\Z")
_URI = re.compile(r"\A[A-Za-z][A-Za-z0-9+.-]*:[\x21-\x7e]+\Z")


@dataclass(frozen=True)
class Identifier:
    """An identifier of RFC 6509 section 3.2: the key period "YYYY-MM" (ISO 8601
    year and month) and a URI, encoded as period || 0x00 || uri || 0x00 in
    US-ASCII.  Validated on construction (``ParameterError``):

    * period: four digits, "-", a month 01 to 12;
    * uri: printable US-ASCII without space (so without NUL), a scheme, at most
      ``MAX_URI_BYTES``; a ``tel:`` URI must be in the constrained form of
      RFC 6509 3.2 (global notation "+" and digits only: no visual separators,
      no parameters, no phone-context).  Other schemes are accepted as given:
      RFC 6509 leaves their normalisation to a later RFC."""

    period: str
    uri: str

    def __post_init__(self) -> None:
        if not isinstance(self.period, str) or not _PERIOD.match(self.period):
            raise ParameterError('the key period must be "YYYY-MM" with a month 01 to 12 (RFC 6509 3.2)')
        if not isinstance(self.uri, str) or not self.uri.isascii() or len(self.uri) > MAX_URI_BYTES:
            raise ParameterError(f"the URI must be US-ASCII of at most {MAX_URI_BYTES} characters")
        if not _URI.match(self.uri):
            raise ParameterError("the URI must be scheme:rest in printable US-ASCII without spaces")
        if self.uri[:4].lower() == "tel:" and not _TEL.match(self.uri):
            raise ParameterError('a tel URI must be "tel:+" and digits only (RFC 6509 3.2)')

    def encode(self) -> bytes:
        """period || 0x00 || uri || 0x00 (RFC 6509 section 3.2)."""
        return self.period.encode("ascii") + b"\x00" + self.uri.encode("ascii") + b"\x00"

    @classmethod
    def decode(cls, data: object) -> Identifier:
        """The identifier that ``data`` encodes; ``DecodeError`` unless it is
        exactly period 0x00 uri 0x00 with both parts valid."""
        if not isinstance(data, (bytes, bytearray)) or len(data) > MAX_ID_BYTES:
            raise DecodeError(f"an identifier is at most {MAX_ID_BYTES} octets")
        parts = bytes(data).split(b"\x00")
        if len(parts) != 3 or parts[2] != b"":
            raise DecodeError("an identifier is period NUL uri NUL")
        try:
            return cls(parts[0].decode("ascii"), parts[1].decode("ascii"))
        except (UnicodeDecodeError, ParameterError) as exc:
            raise DecodeError(f"not an RFC 6509 identifier: {exc}") from None


def _check_period(period: object) -> tuple[int, int]:
    if not isinstance(period, str) or not _PERIOD.match(period):
        raise ParameterError('a key period is "YYYY-MM" with a month 01 to 12 (RFC 6509 3.2)')
    return int(period[:4]), int(period[5:])


def period_of(day: datetime.date) -> str:
    """The key period "YYYY-MM" that contains ``day`` (RFC 6509 3.2, 3.3)."""
    if not isinstance(day, datetime.date):
        raise ParameterError("day must be a datetime.date")
    if not 1 <= day.year <= 9999:  # always true of a date; kept for the four-digit form
        raise ParameterError("the year must have four digits")
    return f"{day.year:04d}-{day.month:02d}"


def next_period(period: str) -> str:
    """The key period after ``period`` ("2011-12" -> "2012-01"); ParameterError
    for a malformed period or after "9999-12"."""
    year, month = _check_period(period)
    year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    if year > 9999:
        raise ParameterError("no key period after 9999-12")
    return f"{year:04d}-{month:02d}"


def previous_period(period: str) -> str:
    """The key period before ``period``; ParameterError before "0000-01"."""
    year, month = _check_period(period)
    year, month = (year - 1, 12) if month == 1 else (year, month - 1)
    if year < 0:
        raise ParameterError("no key period before 0000-01")
    return f"{year:04d}-{month:02d}"


def accepted_periods(day: datetime.date) -> tuple[str, ...]:
    """The key periods whose keys a device accepts on ``day``, oldest first, as
    RFC 6509 section 3.3 recommends for monthly periods: from the
    second-to-last day of a month the next month's keys too; on the first and
    second days of a month the previous month's keys too; from the third day
    only the month's own.  So never more than two periods at once."""
    this = period_of(day)
    last_day = calendar.monthrange(day.year, day.month)[1]
    if day.day <= 2:
        return (previous_period(this), this)
    if day.day >= last_day - 1:
        return (this, next_period(this))
    return (this,)


# ---------------------------------------------------------------------------
# KMS keys (RFC 6507 section 4.2)
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class EccsiKms:
    """The KMS's KSAK (a secret integer in [1, q)) and the community's KPAK =
    [KSAK]G, encoded (RFC 6507 section 4.2).  The representation hides the KSAK."""

    KSAK: int
    KPAK: bytes

    def __repr__(self) -> str:
        return f"EccsiKms(KPAK={self.KPAK.hex()})"


def kms_from_ksak(KSAK: int) -> EccsiKms:
    """The KMS key pair of a given KSAK in [1, q) (ParameterError otherwise)."""
    if not _is_int(KSAK) or not 0 < KSAK < q:
        raise ParameterError("the KSAK is a non-zero integer modulo q (RFC 6507 4.2)")
    return EccsiKms(int(KSAK), encode_point(base_multiply(int(KSAK))))


def KeyGen(rng: RandomSource | None) -> EccsiKms:
    """RFC 6507 section 4.2: KSAK = random_range(rng, 1, q), KPAK = [KSAK]G."""
    return kms_from_ksak(random_range(rng, 1, q))


def check_kpak(KPAK: object) -> EccPoint:
    """The KPAK as a point, checked to lie on E (RFC 6507 section 4.2: "Before
    use, each device MUST check that the supplied KPAK lies on the elliptic
    curve E"); ``DecodeError`` otherwise."""
    return decode_point(KPAK, "KPAK")


# ---------------------------------------------------------------------------
# User key material (RFC 6507 section 5.1)
# ---------------------------------------------------------------------------


def hs_input(KPAK: bytes, ID: bytes, PVT: bytes) -> bytes:
    """G || KPAK || ID || PVT, the input of HS (RFC 6507 5.1.1 step 3)."""
    return encode_point(G()) + bytes(KPAK) + bytes(ID) + bytes(PVT)


def compute_HS(KPAK: bytes, ID: bytes, PVT: bytes) -> bytes:
    """HS = hash(G || KPAK || ID || PVT), N octets (RFC 6507 5.1.1 step 3, 5.1.2 step 2)."""
    return Hash(hs_input(KPAK, ID, PVT))


@dataclass(frozen=True)
class SigningKey:
    """A signer's validated key material (RFC 6507 sections 5.1.2, 5.2.1): its
    identifier ID, the SSK (an integer in [1, q)), the PVT and the KPAK it was
    validated against (encoded points), and HS (stored with the SSK, as 5.1.2
    step 2 recommends).  Made only by :func:`ValidateSsk`.  The representation
    hides the SSK."""

    ID: bytes
    SSK: int
    PVT: bytes
    KPAK: bytes
    HS: bytes

    def __repr__(self) -> str:
        return f"SigningKey(ID={self.ID!r}, PVT={self.PVT.hex()})"


@dataclass(frozen=True)
class IssuedKey:
    """What the KMS sends a signer (RFC 6507 5.1.1 step 6): SSK as N octets
    and PVT as an encoded point.  The representation hides the SSK."""

    SSK: bytes
    PVT: bytes

    def __repr__(self) -> str:
        return f"IssuedKey(PVT={self.PVT.hex()})"


def construct_ssk_pvt_with_v(kms: EccsiKms, ID: bytes, v: int) -> IssuedKey:
    """RFC 6507 5.1.1 steps 2 to 6 for a given v in [1, q): PVT = [v]G, HS =
    hash(G || KPAK || ID || PVT), SSK = (KSAK + HS * v) mod q.  Step 5: an SSK or
    HS that is zero modulo q is a ``ParameterError`` (:func:`ConstructSskPvt`
    draws a fresh v instead)."""
    ID = _identifier(ID)
    if not isinstance(kms, EccsiKms):
        raise ParameterError("the KMS key must be an EccsiKms")
    if not _is_int(v) or not 0 < v < q:
        raise ParameterError("v is a non-zero element of F_q (RFC 6507 5.1.1 step 1)")
    PVT = encode_point(base_multiply(int(v)))
    HS = int.from_bytes(compute_HS(kms.KPAK, ID, PVT), "big")
    SSK = (kms.KSAK + HS * v) % q
    if SSK == 0 or HS % q == 0:
        raise ParameterError("SSK or HS is zero modulo q: draw another v (RFC 6507 5.1.1 step 5)")
    return IssuedKey(I2OSP_N(SSK), PVT)


def ConstructSskPvt(kms: EccsiKms, ID: bytes, rng: RandomSource | None) -> IssuedKey:
    """RFC 6507 5.1.1: v = random_range(rng, 1, q), then
    :func:`construct_ssk_pvt_with_v`; step 5's restart draws v again."""
    ID = _identifier(ID)
    while True:
        v = random_range(rng, 1, q)
        try:
            return construct_ssk_pvt_with_v(kms, ID, v)
        except ParameterError:  # step 5, probability about 2^-255: restart with a fresh v
            continue


def ValidateSsk(KPAK: bytes, ID: bytes, SSK: bytes, PVT: bytes) -> SigningKey:
    """RFC 6507 5.1.2, by the signer before installing its key.

    The KPAK is checked to lie on E (4.2) and the SSK to be N octets (DecodeError);
    step 1: the PVT lies on E (``DecodeError``); step 2: HS = hash(G || KPAK ||
    ID || PVT); step 3: KPAK = [SSK]G - [HS]PVT, else ``VerificationError``.  An
    SSK that is 0 or not below q is a ``VerificationError`` too (5.1.1 never
    issues one)."""
    ID = _identifier(ID)
    kpak_point = check_kpak(KPAK)
    if not isinstance(SSK, (bytes, bytearray)) or len(SSK) != N:
        raise DecodeError(f"the SSK must be {N} octets")
    pvt_point = decode_point(PVT, "PVT")
    ssk = int.from_bytes(SSK, "big")
    if not 0 < ssk < q:
        raise VerificationError("the SSK is not in [1, q) (RFC 6507 5.1.1 step 4)")
    HS = compute_HS(bytes(KPAK), ID, bytes(PVT))
    expected = base_multiply(ssk) + (-multiply(pvt_point, int.from_bytes(HS, "big")))
    if expected.is_point_at_infinity() or encode_point(expected) != encode_point(kpak_point):
        raise VerificationError("KPAK != [SSK]G - [HS]PVT: the SSK does not belong to this ID "
                                "and PVT (RFC 6507 5.1.2 step 3)")
    return SigningKey(ID, ssk, bytes(PVT), bytes(KPAK), HS)


# ---------------------------------------------------------------------------
# Signatures (RFC 6507 sections 3.3, 5.2)
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Signature:
    """Signature = r || s || PVT (RFC 6507 section 3.3): r and s as N-octet
    integers, PVT an encoded point."""

    r: int
    s: int
    PVT: bytes

    def encode(self) -> bytes:
        return I2OSP_N(self.r) + I2OSP_N(self.s) + bytes(self.PVT)

    @classmethod
    def decode(cls, data: object) -> Signature:
        """Split a signature: exactly 4N + 1 octets (``DecodeError``).  The
        fields' values are checked by :func:`Verify`, not here."""
        if not isinstance(data, (bytes, bytearray)) or len(data) != SIGNATURE_BYTES:
            raise DecodeError(f"an ECCSI signature is {SIGNATURE_BYTES} octets")
        data = bytes(data)
        return cls(int.from_bytes(data[:N], "big"), int.from_bytes(data[N:2 * N], "big"), data[2 * N:])


def he_input(HS: bytes, r: int, M: bytes) -> bytes:
    """HS || r || M, the input of HE (RFC 6507 5.2.1 step 3, 5.2.2 step 3)."""
    return bytes(HS) + I2OSP_N(r) + bytes(M)


@dataclass(frozen=True)
class SigningTrace:
    """Every value of RFC 6507 5.2.1 for one signature: J (encoded), r, HE,
    s' and s, and the encoded signature.  Only :func:`sign_with_j` returns it."""

    J: bytes
    r: int
    HE: bytes
    s_prime: int
    s: int
    signature: bytes


def sign_with_j(key: SigningKey, M: bytes, j: int) -> SigningTrace:
    """RFC 6507 5.2.1 steps 2 to 7 for a given j in [1, q).

    Step 2: J = [j]G, r = Jx (r = 0 is a ``ParameterError``: the verifier
    would refuse it); step 3: HE = hash(HS || r || M); step 4: HE + r *
    SSK = 0 mod q is a ``ParameterError`` (:func:`Sign` draws again); step 5:
    s' = ((HE + r * SSK)^-1 * j) mod q; step 6: s = q - s' when s' does not
    fit N octets (never for P-256, where q < 2^256), else s'; step 7."""
    if not isinstance(key, SigningKey):
        raise ParameterError("the key must be a SigningKey made by ValidateSsk")
    M = _bytes(M, "the message M", MAX_MESSAGE_BYTES)
    if not _is_int(j) or not 0 < j < q:
        raise ParameterError("j is a non-zero element of F_q (RFC 6507 5.2.1 step 1)")
    J = base_multiply(int(j))
    r = int(J.x)
    if r == 0:
        raise ParameterError("r = Jx = 0, which 5.2.2 step 6 refuses: draw another j (specs/sakke_eccsi.md 5.2)")
    HE = Hash(he_input(key.HS, r, M))
    t = (int.from_bytes(HE, "big") + r * key.SSK) % q
    if t == 0:
        raise ParameterError("HE + r * SSK is zero modulo q: draw another j (RFC 6507 5.2.1 step 4)")
    count_modinv(q)
    s_prime = pow(t, -1, q) * j % q
    s = q - s_prime if s_prime >= 1 << (8 * N) else s_prime
    signature = Signature(r, s, key.PVT).encode()
    return SigningTrace(encode_point(J), r, HE, s_prime, s, signature)


def Sign(key: SigningKey, M: bytes, rng: RandomSource | None) -> bytes:
    """RFC 6507 5.2.1: j = random_range(rng, 1, q), then :func:`sign_with_j`;
    step 4's restart draws j again.  Returns the 4N + 1-octet signature."""
    if not isinstance(key, SigningKey):
        raise ParameterError("the key must be a SigningKey made by ValidateSsk")
    M = _bytes(M, "the message M", MAX_MESSAGE_BYTES)
    while True:
        j = random_range(rng, 1, q)
        try:
            return sign_with_j(key, M, j).signature
        except ParameterError:  # step 4 or r = 0 (inputs are valid here), probability about 2^-255
            continue


@dataclass(frozen=True)
class VerifyTrace:
    """The intermediates of RFC 6507 5.2.2: HS, HE, Y and J (encoded points)."""

    HS: bytes
    HE: bytes
    Y: bytes
    J: bytes


def verify_trace(KPAK: bytes, ID: bytes, M: bytes, signature: bytes) -> VerifyTrace:
    """RFC 6507 5.2.2, returning its intermediates when the signature is valid.

    Bounds first: the KPAK lies on E and the signature is 4N + 1 octets
    (``DecodeError``); 0 < r < p and 0 < s < q, else ``VerificationError``
    (5.2.1 only produces such r and s; see specs/sakke_eccsi.md 5.2).
    Step 1: the PVT lies on E (``DecodeError``); 2: HS; 3: HE; 4: Y = [HS]PVT +
    KPAK; 5: J = [s]([HE]G + [r]Y), computed as [s HE]G + [s r]Y; 6: Jx = r mod p and Jx != 0, else
    ``VerificationError`` (also when J is the identity, which has no Jx)."""
    ID = _identifier(ID)
    M = _bytes(M, "the message M", MAX_MESSAGE_BYTES)
    kpak_point = check_kpak(KPAK)
    sig = Signature.decode(signature)
    if not 0 < sig.r < p:
        raise VerificationError("r is not in [1, p)")
    if not 0 < sig.s < q:
        raise VerificationError("s is not in [1, q)")
    pvt_point = decode_point(sig.PVT, "PVT")
    HS = compute_HS(bytes(KPAK), ID, sig.PVT)
    HE = Hash(he_input(HS, sig.r, M))
    Y = multiply(pvt_point, int.from_bytes(HS, "big")) + kpak_point
    # Step 5, J = [s]([HE]G + [r]Y), as the equivalent [s HE mod q]G + [s r mod q]Y
    # (the RFC allows any equivalent procedure): two scalar multiplications, not three.
    J = base_multiply(sig.s * int.from_bytes(HE, "big") % q) + multiply(Y, sig.s * sig.r % q)
    if J.is_point_at_infinity() or Y.is_point_at_infinity():
        raise VerificationError("J or Y is the point at infinity: the signature is invalid")
    Jx = int(J.x)
    if Jx == 0 or not hmac.compare_digest(I2OSP_N(Jx % p), I2OSP_N(sig.r % p)):
        raise VerificationError("Jx != r: the signature does not verify (RFC 6507 5.2.2 step 6)")
    return VerifyTrace(HS, HE, encode_point(Y), encode_point(J))


def Verify(KPAK: bytes, ID: bytes, M: bytes, signature: bytes) -> None:
    """RFC 6507 5.2.2: returns None for a valid signature of M by ID under
    KPAK, raises ``VerificationError`` (or ``DecodeError`` for a malformed
    field) otherwise.  See :func:`verify_trace`."""
    verify_trace(KPAK, ID, M, signature)
