"""An independent SAKKE and ECCSI written from the spec text alone, checked against the vectors.

Implements, from specs/sakke_eccsi.md sections 1.3 (RFC 6509 identifiers and key periods),
2 (the SAKKE curve y^2 = x^3 - 3x of RFC 6509 parameter set 1: F_p^2, PF_p, point encodings and
their checks in the order of 2.3, affine point arithmetic, the affine and Jacobian Miller loops
of 2.5),
3 (HashToIntegerRange, KMS keys, RSK extraction and validation, encapsulation, decapsulation),
4 (ECCSI on P-256: KMS keys, SSK/PVT construction and validation, sign, verify), 8 (the error of
each refusal) and 9 (the three vector files), and from specs/conventions.md sections 3.2
(RandomBelow, RandomRange, RandomBits), 3.3 (HMAC_DRBG and from_seed), 3.4 (ReplayRandom) and
4.6 (negative vectors), and specs/issuance.md 10.4.1-10.4.2 (epochs as key periods, the URN
identifier).  Every value of vectors/rfc6507.json, vectors/rfc6508.json and
vectors/sakke_eccsi.json is recomputed byte for byte; each invalid vector is refused with its
error, and that error is checked to be the one section 8 gives for the check that failed.

It imports nothing from protocols: P-256 and the SAKKE curve are a few lines of affine
arithmetic over Python integers (gmpy2 for speed), HMAC_DRBG is written from SP 800-90A, and
the errors are local classes carrying the names of conventions section 5.1, which the negative
vectors name.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import gmpy2
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

_VECTORS = Path(__file__).resolve().parent.parent / "vectors"
GENERATED = json.loads((_VECTORS / "sakke_eccsi.json").read_text())
RFC6507 = json.loads((_VECTORS / "rfc6507.json").read_text())
RFC6508 = json.loads((_VECTORS / "rfc6508.json").read_text())


# --- errors (conventions 5.1): the names the vectors carry ---------------------------------------


class UsappError(Exception):
    """Base of the local errors; the class name is what a negative vector names.

    `check` names the row of section 8's table that the raising check belongs to.
    """

    def __init__(self, message: str, check: str | None = None) -> None:
        super().__init__(message)
        self.check = check


class DecodeError(UsappError):
    pass


class InvalidCiphertextError(DecodeError):
    pass


class ParameterError(UsappError):
    pass


class VerificationError(UsappError):
    pass


class StateError(UsappError):
    """Conventions 5.1: not allowed in the current state (the issuance, threshold and ECCSI-family checks
    raise it)."""


class ReplayError(StateError):
    """Conventions 5.1: a message, nonce or challenge seen before (the issuance check raises it)."""


class RecoveryError(StateError):
    """Conventions 5.1: too few shares or answers to finish a threshold step."""


class RandomnessError(UsappError):
    pass


def h2b(x: str) -> bytes:
    return bytes.fromhex(x)


def i2osp(x: int, length: int) -> bytes:
    """Conventions 2.1."""
    if x < 0 or x >= 256**length:
        raise ParameterError("integer too large for its length")
    return int(x).to_bytes(length, "big")


def os2ip(b: bytes) -> int:
    return int.from_bytes(b, "big")


def sha256(b: bytes) -> bytes:
    return hashlib.sha256(b).digest()


# --- randomness (conventions 3.2 to 3.4) -------------------------------------------------------


class HmacDrbg:
    """HMAC_DRBG(SHA-256) of SP 800-90A 10.1.2, no reseed, built by from_seed (conventions 3.3)."""

    def __init__(self, seed: bytes | str, personalization: bytes = b"") -> None:
        s = seed.encode() if isinstance(seed, str) else seed
        entropy = sha256(b"usapp-drbg-entropy" + s)
        nonce = sha256(b"usapp-drbg-nonce" + s)[:16]
        self._k = bytes(32)
        self._v = b"\x01" * 32
        self._update(entropy + nonce + personalization)

    def _update(self, data: bytes) -> None:
        self._k = hmac.new(self._k, self._v + b"\x00" + data, hashlib.sha256).digest()
        self._v = hmac.new(self._k, self._v, hashlib.sha256).digest()
        if data:
            self._k = hmac.new(self._k, self._v + b"\x01" + data, hashlib.sha256).digest()
            self._v = hmac.new(self._k, self._v, hashlib.sha256).digest()

    def _generate(self, n: int) -> bytes:
        out = b""
        while len(out) < n:
            self._v = hmac.new(self._k, self._v, hashlib.sha256).digest()
            out += self._v
        self._update(b"")
        return out[:n]

    def random_bytes(self, n: int) -> bytes:
        out = b""
        while n > 65536:
            out += self._generate(65536)
            n -= 65536
        return out + (self._generate(n) if n else b"")


class ReplayRandom:
    """Conventions 3.4: one recorded string per call, same length, fails loudly."""

    def __init__(self, draws: list[bytes]) -> None:
        self._draws = list(draws)
        self._pos = 0

    def random_bytes(self, n: int) -> bytes:
        if self._pos >= len(self._draws):
            raise RandomnessError("exhausted")
        if len(self._draws[self._pos]) != n:
            raise RandomnessError("wrong length")
        self._pos += 1
        return self._draws[self._pos - 1]

    @property
    def exhausted(self) -> bool:
        return self._pos == len(self._draws)


class Recorder:
    """Wraps an rng and records each random_bytes call (for comparison with a vector's draws)."""

    def __init__(self, rng: Any) -> None:
        self.rng = rng
        self.calls: list[bytes] = []

    def random_bytes(self, n: int) -> bytes:
        b = self.rng.random_bytes(n)
        self.calls.append(b)
        return b


def random_below(rng: Any, n: int) -> int:
    """Conventions 3.2 RandomBelow."""
    if n < 1:
        raise ParameterError("n < 1")
    if n == 1:
        return 0
    k = (n - 1).bit_length()
    length = -(-k // 8)
    while True:
        x = os2ip(rng.random_bytes(length)) & ((1 << k) - 1)
        if x < n:
            return x


def random_range(rng: Any, low: int, high: int) -> int:
    if high <= low:
        raise ParameterError("empty range")
    return low + random_below(rng, high - low)


def random_bits(rng: Any, k: int) -> int:
    return random_below(rng, 1 << k)


# --- identifiers (section 1.3) -----------------------------------------------------------------


def _valid_period(period: str) -> bool:
    return (
        len(period) == 7
        and period[:4].isascii()
        and period[:4].isdigit()
        and period[4] == "-"
        and period[5:].isascii()
        and period[5:].isdigit()
        and 1 <= int(period[5:]) <= 12
    )


def valid_uri(uri: str) -> bool:
    if not uri or len(uri) > 1000 or not all(0x21 <= ord(c) <= 0x7E for c in uri) or ":" not in uri:
        return False
    scheme = uri.split(":", 1)[0]
    if not scheme:
        return False
    if scheme == "tel":
        digits = uri[len("tel:+"):]
        return uri.startswith("tel:+") and 1 <= len(digits) <= 32 and digits.isdigit()
    return True


def identifier(period: str, uri: str) -> bytes:
    """Section 1.3: period || 0x00 || uri || 0x00."""
    if not _valid_period(period) or not valid_uri(uri):
        raise ParameterError("bad key period or URI")
    return period.encode("ascii") + b"\x00" + uri.encode("ascii") + b"\x00"


def decode_identifier(data: bytes) -> tuple[str, str]:
    if len(data) > 1024 or data.count(b"\x00") != 2 or not data.endswith(b"\x00") or data[7:8] != b"\x00":
        raise DecodeError("not period 0x00 uri 0x00")
    try:
        period, uri = data[:7].decode("ascii"), data[8:-1].decode("ascii")
        identifier(period, uri)
    except (UnicodeDecodeError, ParameterError) as exc:
        raise DecodeError("bad part") from exc
    return period, uri


def _month_len(year: int, month: int) -> int:
    if month == 2:
        return 29 if (year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)) else 28
    return 30 if month in (4, 6, 9, 11) else 31


def accepted_periods(year: int, month: int, day: int) -> list[str]:
    """Section 1.3: RFC 6509 3.3's overlap of two periods around a month boundary."""
    nxt = (year + month // 12, month % 12 + 1)
    prv = (year - (month == 1), 12 if month == 1 else month - 1)
    this = f"{year:04d}-{month:02d}"
    if day >= _month_len(year, month) - 1:
        return [this, f"{nxt[0]:04d}-{nxt[1]:02d}"]
    if day <= 2:
        return [f"{prv[0]:04d}-{prv[1]:02d}", this]
    return [this]


# --- SAKKE curve, F_p^2, PF_p, pairing (section 2) ---------------------------------------------

_PAR = RFC6508["parameters"]


@dataclass(frozen=True)
class SakkeParams:
    """Section 2.1: parameter set 1 of RFC 6509 Appendix A."""

    p: int
    q: int
    Px: int
    Py: int
    g: int
    n: int = 128
    L: int = 128


PS1 = SakkeParams(
    p=int(_PAR["p"], 16), q=int(_PAR["q"], 16), Px=int(_PAR["Px"], 16), Py=int(_PAR["Py"], 16), g=int(_PAR["g"], 16)
)
SP = gmpy2.mpz(PS1.p)
SQ = PS1.q

Pt = tuple[Any, Any] | None  # affine point or None for 0


def s_on_curve(x: int, y: int) -> bool:
    return (y * y - (x * x * x - 3 * x)) % SP == 0


def add_a3(p: int, a: Pt, b: Pt) -> Pt:
    """Affine addition on y^2 = x^3 - 3x + B over F_p (B does not enter the formulas): section 2.4 of
    the spec for SAKKE, the same formulas for ECCSI's P-256."""
    if a is None:
        return b
    if b is None:
        return a
    x1, y1 = a
    x2, y2 = b
    if x1 == x2:
        if (y1 + y2) % p == 0:
            return None
        lam = (3 * x1 * x1 - 3) * pow(2 * y1, -1, p) % p
    else:
        lam = (y2 - y1) * pow(x2 - x1, -1, p) % p
    x3 = (lam * lam - x1 - x2) % p
    return (x3, (lam * (x1 - x3) - y1) % p)


def mul_a3(p: int, k: int, a: Pt) -> Pt:
    """[k]A, left-to-right double-and-add, k >= 0."""
    acc: Pt = None
    for bit in bin(k)[2:] if k else "":
        acc = add_a3(p, acc, acc)
        if bit == "1":
            acc = add_a3(p, acc, a)
    return acc


def s_add(a: Pt, b: Pt) -> Pt:
    return add_a3(int(SP), a, b)


def s_mul(k: int, a: Pt) -> Pt:
    return mul_a3(int(SP), k, a)


P_GEN: Pt = (gmpy2.mpz(PS1.Px), gmpy2.mpz(PS1.Py))


def s_encode(a: Pt) -> bytes:
    """Section 2.3: 0x04 || I2OSP(x, L) || I2OSP(y, L)."""
    if a is None:
        raise ParameterError("0 has no encoding")
    return b"\x04" + i2osp(int(a[0]), 128) + i2osp(int(a[1]), 128)


def s_decode(data: bytes, error: type[UsappError] = DecodeError) -> Pt:
    """Section 2.3, checks 1 to 5 in order, one error class per caller."""
    check = "sakke-point" if error is DecodeError else "encapsulated-data"
    if len(data) != 257:
        raise error("length", check)
    if data[0] != 0x04:
        raise error("prefix", check)
    x, y = gmpy2.mpz(os2ip(data[1:129])), gmpy2.mpz(os2ip(data[129:]))
    if x >= SP or y >= SP:
        raise error("coordinate not below p", check)
    if not s_on_curve(x, y):
        raise error("not on E", check)
    if s_mul(SQ, (x, y)) is not None:
        raise error("not in E[q]", check)
    return (x, y)


def f2mul(a: tuple[Any, Any], b: tuple[Any, Any]) -> tuple[Any, Any]:
    """Section 2.2: (a + ib)(c + id)."""
    return ((a[0] * b[0] - a[1] * b[1]) % SP, (a[0] * b[1] + a[1] * b[0]) % SP)


def f2pow(a: tuple[Any, Any], e: int) -> tuple[Any, Any]:
    acc = (gmpy2.mpz(1), gmpy2.mpz(0))
    for bit in bin(e)[2:]:
        acc = f2mul(acc, acc)
        if bit == "1":
            acc = f2mul(acc, a)
    return acc


def representative(t: tuple[Any, Any]) -> int:
    if t[0] % SP == 0:
        raise ParameterError("the element i has no representative")
    return int(t[1] * gmpy2.invert(t[0], SP) % SP)


def pf_pow(g: int, r: int) -> int:
    """Section 2.2: the representative of (1 + i g)^r."""
    return representative(f2pow((gmpy2.mpz(1), gmpy2.mpz(g)), r))


def pf_pow_by_product(g: int, r: int) -> int:
    """Section 2.2 / RFC 6508 2.1: square-and-multiply with (s + t)/(1 - s t)."""

    def prod(s: int, t: int) -> int:
        return int((s + t) * gmpy2.invert(1 - s * t, SP) % SP)

    acc = 0
    for bit in bin(r)[2:]:
        acc = prod(acc, acc)
        if bit == "1":
            acc = prod(acc, g)
    return acc


def pairing(R: Pt, Q: Pt) -> int:
    """Section 2.5, the affine Miller loop, then ^c and the representative."""
    if R is None or Q is None:
        raise ParameterError("0")
    rx, ry = R
    qx, qy = Q
    v = (gmpy2.mpz(1), gmpy2.mpz(0))
    cx, cy = R
    for bit in bin(SQ - 1)[3:]:
        if cy == 0:
            raise ParameterError("[2]C = 0")
        lam = 3 * (cx * cx - 1) * gmpy2.invert(2 * cy, SP) % SP
        v = f2mul(f2mul(v, v), ((lam * (qx + cx) - cy) % SP, qy))
        C = s_add((cx, cy), (cx, cy))
        if C is None:
            raise ParameterError("C = 0")
        cx, cy = C
        if bit == "1":
            if cx == rx:
                raise ParameterError("C = +-R")
            lam = (cy - ry) * gmpy2.invert(cx - rx, SP) % SP
            v = f2mul(v, ((lam * (qx + cx) - cy) % SP, qy))
            C = s_add((cx, cy), R)
            if C is None:
                raise ParameterError("C = 0")
            cx, cy = C
    return representative(f2pow(v, (PS1.p + 1) // SQ))


def pairing_jacobian(R: Pt, Q: Pt) -> int:
    """Section 2.5's second loop: C = (X/Z^2, Y/Z^3) and the lines scaled by the F_p factors it gives."""
    if R is None or Q is None:
        raise ParameterError("0")
    rx, ry = R
    qx, qy = Q
    v = (gmpy2.mpz(1), gmpy2.mpz(0))
    X, Y, Z = gmpy2.mpz(rx), gmpy2.mpz(ry), gmpy2.mpz(1)
    for bit in bin(SQ - 1)[3:]:
        if Y == 0:
            raise ParameterError("[2]C = 0")
        Z2 = Z * Z % SP
        tangent = ((3 * (X * X - Z2 * Z2) * (qx * Z2 + X) - 2 * Y * Y) % SP, 2 * Y * Z2 * Z * qy % SP)
        v = f2mul(f2mul(v, v), tangent)
        # doubling with a = -3 (any formula giving [2]C conforms)
        delta, gamma = Z2, Y * Y % SP
        beta, alpha = X * gamma % SP, 3 * (X - delta) * (X + delta) % SP
        X3 = (alpha * alpha - 8 * beta) % SP
        Z = ((Y + Z) ** 2 - gamma - delta) % SP
        Y = (alpha * (4 * beta - X3) - 8 * gamma * gamma) % SP
        X = X3
        if bit == "1":
            Z2 = Z * Z % SP
            m = (Y - ry * Z2 * Z) % SP
            d = Z * (X - rx * Z2) % SP
            if d == 0:
                raise ParameterError("C = +-R")
            v = f2mul(v, ((m * (qx + rx) - d * ry) % SP, d * qy % SP))
            # C + R in affine, then back to Z = 1
            C = s_add((X * gmpy2.invert(Z2, SP) % SP, Y * gmpy2.invert(Z2 * Z, SP) % SP), R)
            if C is None:
                raise ParameterError("C = 0")
            X, Y, Z = C[0], C[1], gmpy2.mpz(1)
    return representative(f2pow(v, (PS1.p + 1) // SQ))


# --- SAKKE (section 3) -------------------------------------------------------------------------


def hash_to_integer_range(s: bytes, n: int, trace: dict[str, Any] | None = None) -> int:
    """Section 3.1, RFC 6508 5.1 with SHA-256."""
    if n < 2 or n > 2**8192 or len(s) > 1 << 20:
        raise ParameterError("HashToIntegerRange bounds")
    A = sha256(s)
    h = [bytes(32)]
    vs = []
    for _ in range(-(-(n - 1).bit_length() // 256)):
        h.append(sha256(h[-1]))
        vs.append(sha256(h[-1] + A))
    if trace is not None:
        trace.update(A=A, h=h, v=vs)
    return os2ip(b"".join(vs)) % n


def sakke_b(b: bytes) -> int:
    """Section 3.2: the identifier as an integer in [2, q)."""
    if len(b) > 1024:
        raise ParameterError("identifier too long", "sakke-identifier")
    value = os2ip(b)
    if not 2 <= value < SQ:
        raise ParameterError("identifier outside [2, q)", "sakke-identifier")
    return value


def sakke_kms(z: int) -> bytes:
    """Section 3.2: Z = [z]P."""
    if not 2 <= z < SQ:
        raise ParameterError("z outside [2, q)")
    return s_encode(s_mul(z, P_GEN))


def sakke_extract(z: int, b: bytes) -> tuple[int, bytes]:
    """Section 3.3: ((b + z)^-1 mod q, K_b)."""
    if not 2 <= z < SQ:
        raise ParameterError("z outside [2, q)")
    t = (sakke_b(b) + z) % SQ
    if t == 0:
        raise ParameterError("b + z = 0 mod q")
    inv = int(gmpy2.invert(t, SQ))
    return inv, s_encode(s_mul(inv, P_GEN))


@dataclass(frozen=True)
class ReceiverKey:
    b: bytes
    K: Pt
    bPZ: Pt
    pairing: int


def sakke_validate_rsk(Z: bytes, b: bytes, rsk: bytes) -> ReceiverKey:
    """Section 3.4."""
    bi = sakke_b(b)
    Zp = s_decode(Z)
    K = s_decode(rsk)
    bPZ = s_add(s_mul(bi, P_GEN), Zp)
    if bPZ is None:
        raise VerificationError("[b]P + Z = 0", "rsk-check")
    e = pairing(bPZ, K)
    if e != PS1.g:
        raise VerificationError("<[b]P + Z, K_b> != g", "rsk-check")
    return ReceiverKey(b, K, bPZ, e)


def sakke_encapsulate(Z: bytes, b: bytes, rng: Any = None, ssv: int | None = None) -> dict[str, Any]:
    """Section 3.5; returns every intermediate."""
    Zp = s_decode(Z)
    bi = sakke_b(b)
    if ssv is not None and not 0 <= ssv < 2**128:
        raise ParameterError("SSV outside [0, 2^128)")
    bPZ = s_add(s_mul(bi, P_GEN), Zp)
    if bPZ is None:
        raise ParameterError("[b]P + Z = 0")
    while True:
        SSV = random_bits(rng, 128) if ssv is None else ssv
        trace: dict[str, Any] = {}
        r_input = i2osp(SSV, 16) + b
        r = hash_to_integer_range(r_input, SQ, trace)
        if r != 0:
            break
        if ssv is not None:
            raise ParameterError("r = 0")
    R = s_mul(r, bPZ)
    g_r = pf_pow(PS1.g, r)
    mask = hash_to_integer_range(i2osp(g_r, 128), 2**128)
    H = SSV ^ mask
    return {
        "SSV": i2osp(SSV, 16), "r_input": r_input, "r_A": trace["A"], "r_v": trace["v"], "r": r,
        "R": s_encode(R), "g_r": i2osp(g_r, 128), "mask": i2osp(mask, 16), "H": i2osp(H, 16),
        "encapsulated": s_encode(R) + i2osp(H, 16), "bP_plus_Z": s_encode(bPZ),
    }


def sakke_decapsulate(key: ReceiverKey, data: bytes) -> dict[str, Any]:
    """Section 3.6."""
    if len(data) != 273:
        raise InvalidCiphertextError("length", "encapsulated-data")
    R = s_decode(data[:257], InvalidCiphertextError)
    H = os2ip(data[257:])
    w = pairing(R, key.K)
    SSV = H ^ hash_to_integer_range(i2osp(w, 128), 2**128)
    r = hash_to_integer_range(i2osp(SSV, 16) + key.b, SQ)
    TEST = s_mul(r, key.bPZ)
    if TEST != R:
        raise VerificationError("TEST != R_(b,S)", "decapsulation-check")
    return {"w": i2osp(w, 128), "SSV": i2osp(SSV, 16), "r": r, "TEST": s_encode(TEST)}


# --- ECCSI on P-256 (section 4) ----------------------------------------------------------------

_EP = RFC6507["parameters"]
EP = int(_EP["p"], 16)
EQ = int(_EP["q"], 16)
EB = int(_EP["B"], 16)
EG: Pt = (int(_EP["G"][2:66], 16), int(_EP["G"][66:], 16))


def e_add(a: Pt, b: Pt) -> Pt:
    return add_a3(EP, a, b)


def e_mul(k: int, a: Pt) -> Pt:
    return mul_a3(EP, k, a)


def e_neg(a: Pt) -> Pt:
    return None if a is None else (a[0], (-a[1]) % EP)


def e_encode(a: Pt) -> bytes:
    if a is None:
        raise ParameterError("0 has no encoding")
    return b"\x04" + i2osp(a[0], 32) + i2osp(a[1], 32)


def e_decode(data: bytes) -> Pt:
    """Section 4.2: 65 octets, 0x04, x, y < p, on E; each failure a DecodeError."""
    if len(data) != 65 or data[0] != 0x04:
        raise DecodeError("length or prefix", "eccsi-point")
    x, y = os2ip(data[1:33]), os2ip(data[33:])
    if x >= EP or y >= EP or (y * y - x * x * x + 3 * x - EB) % EP:
        raise DecodeError("not a point of E", "eccsi-point")
    return (x, y)


G_ENC = e_encode(EG)


def _check_id(ID: bytes) -> None:
    if not 1 <= len(ID) <= 1024:
        raise ParameterError("ID of 1 to 1024 octets", "eccsi-id-m")


def _check_m(M: bytes) -> None:
    if len(M) > 1 << 20:
        raise ParameterError("M over 1 MiB", "eccsi-id-m")


def eccsi_hs(KPAK: bytes, ID: bytes, PVT: bytes) -> tuple[bytes, bytes]:
    """Sections 4.4 step 3 / 4.5 step 2 / 4.7 step 2: (HS input, HS)."""
    hs_input = G_ENC + KPAK + ID + PVT
    return hs_input, sha256(hs_input)


def eccsi_kms(KSAK: int) -> bytes:
    """Section 4.3: KPAK = [KSAK]G for a KSAK in [1, q)."""
    if not 1 <= KSAK < EQ:
        raise ParameterError("KSAK outside [1, q)")
    return e_encode(e_mul(KSAK, EG))


def eccsi_construct(KSAK: int, KPAK: bytes, ID: bytes, rng: Any = None, v: int | None = None) -> dict[str, Any]:
    """Section 4.4."""
    _check_id(ID)
    if not 1 <= KSAK < EQ:
        raise ParameterError("KSAK outside [1, q)")
    while True:
        vv = random_range(rng, 1, EQ) if v is None else v
        if not 1 <= vv < EQ:
            raise ParameterError("v outside [1, q)")
        PVT = e_encode(e_mul(vv, EG))
        hs_input, HS = eccsi_hs(KPAK, ID, PVT)
        SSK = (KSAK + os2ip(HS) * vv) % EQ
        if SSK != 0 and os2ip(HS) % EQ != 0:
            return {"v": vv, "PVT": PVT, "HS_input": hs_input, "HS": HS, "SSK": i2osp(SSK, 32)}
        if v is not None:
            raise ParameterError("SSK = 0 or HS = 0 mod q")


def eccsi_validate(KPAK: bytes, ID: bytes, SSK: bytes, PVT: bytes) -> bytes:
    """Section 4.5; returns HS."""
    _check_id(ID)
    kpak = e_decode(KPAK)
    pvt = e_decode(PVT)
    if len(SSK) != 32:
        raise DecodeError("SSK not 32 octets", "ssk-length")
    ssk = os2ip(SSK)
    if not 0 < ssk < EQ:
        raise VerificationError("SSK outside (0, q)", "ssk-range")
    _, HS = eccsi_hs(KPAK, ID, PVT)
    if e_add(e_mul(ssk, EG), e_neg(e_mul(os2ip(HS), pvt))) != kpak:
        raise VerificationError("KPAK != [SSK]G - [HS]PVT", "ssk-check")
    return HS


def eccsi_sign(HS: bytes, SSK: bytes, PVT: bytes, M: bytes, rng: Any = None, j: int | None = None) -> dict[str, Any]:
    """Section 4.6."""
    _check_m(M)
    ssk = os2ip(SSK)
    while True:
        jj = random_range(rng, 1, EQ) if j is None else j
        if not 1 <= jj < EQ:
            raise ParameterError("j outside [1, q)")
        J = e_mul(jj, EG)
        if J is None:  # impossible for 0 < j < q
            raise ParameterError("J = 0")
        r = J[0]
        he_input = HS + i2osp(r, 32) + M
        HE = sha256(he_input)
        t = (os2ip(HE) + r * ssk) % EQ
        if r != 0 and t != 0:
            break
        if j is not None:
            raise ParameterError("r = 0 or HE + r SSK = 0")
    s_prime = pow(t, -1, EQ) * jj % EQ
    s = EQ - s_prime if s_prime >= 2**256 else s_prime
    return {
        "j": jj, "J": e_encode(J), "r": i2osp(r, 32), "HE_input": he_input, "HE": HE,
        "s_prime": i2osp(s_prime, 32), "s": i2osp(s, 32), "signature": i2osp(r, 32) + i2osp(s, 32) + PVT,
    }


def eccsi_verify(KPAK: bytes, ID: bytes, M: bytes, sig: bytes) -> dict[str, bytes]:
    """Section 4.7; raises on failure, returns the intermediates on success."""
    _check_id(ID)
    _check_m(M)
    kpak = e_decode(KPAK)
    if len(sig) != 129:
        raise DecodeError("signature not 129 octets", "signature-length")
    r, s = os2ip(sig[:32]), os2ip(sig[32:64])
    if not 0 < r < EP or not 0 < s < EQ:
        raise VerificationError("r or s out of range", "r-s-range")
    PVT = sig[64:]
    pvt = e_decode(PVT)
    _, HS = eccsi_hs(KPAK, ID, PVT)
    he_input = HS + sig[:32] + M
    HE = sha256(he_input)
    Y = e_add(e_mul(os2ip(HS), pvt), kpak)
    J = e_mul(s, e_add(e_mul(os2ip(HE), EG), e_mul(r, Y)))
    if J is None or J[0] == 0 or J[0] != r % EP:
        raise VerificationError("J_x != r", "signature-check")
    return {"HS": HS, "HE_input": he_input, "HE": HE, "Y": e_encode(Y), "J": e_encode(J), "Jx": i2osp(J[0], 32)}


# --- helpers for the vector checks -------------------------------------------------------------


def hx(b: bytes) -> str:
    return b.hex()


def be(x: int, length: int) -> str:
    return i2osp(x, length).hex()


def gen(operation: str) -> list[dict[str, Any]]:
    return [v for v in GENERATED["vectors"] if v["operation"] == operation]


def refusal(step: Callable[[], Any]) -> str:
    try:
        step()
    except UsappError as exc:
        return type(exc).__name__
    return "accepted"


# --- conventions check values ------------------------------------------------------------------


def test_drbg_check_value_and_draw_rules() -> None:
    assert HmacDrbg("usapp-example").random_bytes(32).hex() == (
        "bf5e91a0263e905f7618212ce8c0532a23c594d389b4bf2896d423ece755e233"
    )
    # conventions 3.2 examples
    assert random_below(ReplayRandom([h2b("fd"), h2b("0b")]), 5) == 3
    assert random_below(ReplayRandom([h2b("ffff"), h2b("1234")]), 1000) == 564
    assert random_below(ReplayRandom([h2b("ff")]), 256) == 255
    assert random_below(ReplayRandom([]), 1) == 0


# --- RFC 6507 Appendix A (vectors/rfc6507.json) ------------------------------------------------


def test_rfc6507_appendix_a() -> None:
    (vec,) = RFC6507["vectors"]
    assert EG is not None and (EG[1] ** 2 - EG[0] ** 3 + 3 * EG[0] - EB) % EP == 0
    assert e_mul(EQ, EG) is None
    KSAK = int(vec["kms"]["KSAK"], 16)
    KPAK = eccsi_kms(KSAK)
    assert hx(KPAK) == vec["kms"]["KPAK"]
    ident = vec["identifier"]
    ID = identifier(ident["period"], ident["uri"])
    assert hx(ID) == ident["ID"]
    assert decode_identifier(ID) == (ident["period"], ident["uri"])
    c = eccsi_construct(KSAK, KPAK, ID, v=int(vec["construct"]["v"], 16))
    for k in ("PVT", "HS_input", "HS", "SSK"):
        assert hx(c[k]) == vec["construct"][k], k
    HS = eccsi_validate(KPAK, ID, c["SSK"], c["PVT"])
    assert hx(HS) == vec["validate"]["HS"]
    M = h2b(vec["sign"]["M"])
    sg = eccsi_sign(HS, c["SSK"], c["PVT"], M, j=int(vec["sign"]["j"], 16))
    for k in ("J", "r", "HE_input", "HE", "s_prime", "s", "signature"):
        assert hx(sg[k]) == vec["sign"][k], k
    vr = eccsi_verify(KPAK, ID, M, sg["signature"])
    for k in ("HS", "HE_input", "HE", "Y", "J", "Jx"):
        assert hx(vr[k]) == vec["verify"][k], k


def test_rfc6507_random_values_replay_as_draws() -> None:
    """Section 9: KSAK, v, j each one 32-octet draw of RandomRange(1, q) (the value minus 1)."""
    (vec,) = RFC6507["vectors"]
    for value in (vec["kms"]["KSAK"], vec["construct"]["v"], vec["sign"]["j"]):
        rng = ReplayRandom([i2osp(int(value, 16) - 1, 32)])
        assert random_range(rng, 1, EQ) == int(value, 16) and rng.exhausted


# --- RFC 6508 Appendix A (vectors/rfc6508.json) ------------------------------------------------


def test_parameter_set_1() -> None:
    p, q = PS1.p, PS1.q
    assert p % 4 == 3 and q == (p + 1) // 4 and q.bit_length() - 1 >= 2 * PS1.n
    assert gmpy2.is_prime(p) and gmpy2.is_prime(q)
    assert P_GEN is not None and s_on_curve(P_GEN[0], P_GEN[1]) and s_mul(q, P_GEN) is None
    for bad in [(gmpy2.mpz(0), gmpy2.mpz(0)), s_mul(q, (gmpy2.mpz(0), gmpy2.mpz(0)))]:
        # an unvalidated R of order 2 (or 0) meets [2]C = 0: a ParameterError, never a crash
        assert refusal(lambda: pairing(bad, P_GEN)) == "ParameterError"
        assert refusal(lambda: pairing_jacobian(bad, P_GEN)) == "ParameterError"
    assert gmpy2.legendre(3, p) == -1  # section 2.1: (0, 0) the only point of order 2
    assert pairing(P_GEN, P_GEN) == PS1.g == pairing_jacobian(P_GEN, P_GEN)


def test_rfc6508_hash_to_integer_range() -> None:
    vec = RFC6508["vectors"][0]
    assert vec["n"] == "q"
    trace: dict[str, Any] = {}
    v = hash_to_integer_range(h2b(vec["s"]), SQ, trace)
    assert hx(trace["A"]) == vec["A"]
    assert [hx(h) for h in trace["h"]] == vec["h"]
    assert [hx(x) for x in trace["v"]] == vec["v"]
    assert be(v, 128) == vec["v_mod_q"]


def test_rfc6508_appendix_a() -> None:
    vec = RFC6508["vectors"][1]
    z = int(vec["kms"]["z"], 16)
    Z = sakke_kms(z)
    assert Z == b"\x04" + h2b(vec["kms"]["Zx"]) + h2b(vec["kms"]["Zy"])
    ident = vec["identifier"]
    b = identifier(ident["period"], ident["uri"])
    assert hx(b) == ident["b"]
    inv, rsk = sakke_extract(z, b)
    assert be(inv, 128) == vec["rsk"]["computed_intermediates"]["inverse"]
    assert rsk == b"\x04" + h2b(vec["rsk"]["Kbx"]) + h2b(vec["rsk"]["Kby"])
    key = sakke_validate_rsk(Z, b, rsk)
    ci = vec["rsk_validation"]["computed_intermediates"]
    assert s_encode(key.bPZ) == b"\x04" + h2b(ci["bP_plus_Z_x"]) + h2b(ci["bP_plus_Z_y"])
    assert be(key.pairing, 128) == ci["pairing"]
    snd = vec["sender"]
    e = sakke_encapsulate(Z, b, ssv=int(snd["SSV"], 16))
    assert hx(e["SSV"]) == snd["SSV"] and hx(e["r_input"]) == snd["r_input"]
    assert be(e["r"], 128) == snd["r"]
    assert e["R"] == b"\x04" + h2b(snd["Rbx"]) + h2b(snd["Rby"])
    assert hx(e["g_r"]) == snd["g_r"] == snd["mask_input"]
    assert hx(e["mask"]) == snd["mask"] and hx(e["H"]) == snd["H"]
    assert hx(e["encapsulated"]) == snd["computed_intermediates"]["encapsulated"]
    rcv = vec["receiver"]
    d = sakke_decapsulate(key, e["encapsulated"])
    assert hx(d["w"]) == rcv["w"] and hx(d["SSV"]) == rcv["SSV"] and be(d["r"], 128) == rcv["r"]
    assert d["TEST"] == b"\x04" + h2b(rcv["TESTx"]) + h2b(rcv["TESTy"])


def test_rfc6508_random_values_replay_as_draws() -> None:
    """Section 9: z as one 128-octet draw of z - 2; the SSV as one 16-octet draw."""
    vec = RFC6508["vectors"][1]
    z = int(vec["kms"]["z"], 16)
    rng = ReplayRandom([i2osp(z - 2, 128)])
    assert random_range(rng, 2, SQ) == z and rng.exhausted
    Z = sakke_kms(z)
    b = h2b(vec["identifier"]["b"])
    rng = ReplayRandom([h2b(vec["sender"]["SSV"])])
    assert hx(sakke_encapsulate(Z, b, rng)["H"]) == vec["sender"]["H"] and rng.exhausted


# --- generated runs (vectors/sakke_eccsi.json) -------------------------------------------------


def eccsi_run(rng: Any, period: str, uri: str, M: bytes) -> dict[str, Any]:
    """Section 9: KeyGen (KSAK), ConstructSskPvt (v), ValidateSsk, Sign (j), Verify."""
    KSAK = random_range(rng, 1, EQ)
    KPAK = eccsi_kms(KSAK)
    ID = identifier(period, uri)
    c = eccsi_construct(KSAK, KPAK, ID, rng)
    HS = eccsi_validate(KPAK, ID, c["SSK"], c["PVT"])
    sg = eccsi_sign(HS, c["SSK"], c["PVT"], M, rng)
    vr = eccsi_verify(KPAK, ID, M, sg["signature"])
    return {"KSAK": KSAK, "KPAK": KPAK, "ID": ID, "c": c, "HS": HS, "sg": sg, "vr": vr}


@pytest.mark.parametrize("vec", gen("eccsi"), ids=lambda v: v["name"])
@pytest.mark.parametrize("source", ["replay", "drbg"])
def test_eccsi_runs(vec: dict[str, Any], source: str) -> None:
    draws = [h2b(d["hex"]) for d in vec["draws"]]
    assert [d["name"] for d in vec["draws"]] == ["KSAK", "v", "j"]
    rng: Any = ReplayRandom(draws) if source == "replay" else Recorder(HmacDrbg(vec["seed"]))
    out = eccsi_run(rng, vec["period"], vec["uri"], h2b(vec["message"]))
    if source == "replay":
        assert rng.exhausted
    else:
        assert rng.calls == draws
    c, sg, vr = out["c"], out["sg"], out["vr"]
    assert be(out["KSAK"], 32) == vec["KSAK"] and be(c["v"], 32) == vec["v"] and be(sg["j"], 32) == vec["j"]
    assert hx(out["KPAK"]) == vec["KPAK"] and hx(out["ID"]) == vec["ID"]
    for k in ("PVT", "HS_input", "HS", "SSK"):
        assert hx(c[k]) == vec[k], k
    for k in ("J", "r", "HE_input", "HE", "s_prime", "s", "signature"):
        assert hx(sg[k]) == vec[k], k
    assert hx(vr["HS"]) == vec["verify_HS"] and hx(vr["HE"]) == vec["verify_HE"]
    assert hx(vr["J"]) == vec["verify_J"] and hx(vr["Y"]) == vec["Y"]


def sakke_run(rng: Any, period: str, uri: str) -> dict[str, Any]:
    """Section 9: KeyGen (z), ExtractRSK, ValidateRSK, Encapsulate (SSV), Decapsulate."""
    z = random_range(rng, 2, SQ)
    Z = sakke_kms(z)
    b = identifier(period, uri)
    inv, rsk = sakke_extract(z, b)
    key = sakke_validate_rsk(Z, b, rsk)
    e = sakke_encapsulate(Z, b, rng)
    d = sakke_decapsulate(key, e["encapsulated"])
    return {"z": z, "Z": Z, "b": b, "inv": inv, "RSK": rsk, "key": key, "e": e, "d": d}


@pytest.mark.parametrize("vec", gen("sakke"), ids=lambda v: v["name"])
@pytest.mark.parametrize("source", ["replay", "drbg"])
def test_sakke_runs(vec: dict[str, Any], source: str) -> None:
    draws = [h2b(d["hex"]) for d in vec["draws"]]
    assert [d["name"] for d in vec["draws"]] == ["z", "SSV"]
    rng: Any = ReplayRandom(draws) if source == "replay" else Recorder(HmacDrbg(vec["seed"]))
    out = sakke_run(rng, vec["period"], vec["uri"])
    if source == "replay":
        assert rng.exhausted
    else:
        assert rng.calls == draws
    e, d, key = out["e"], out["d"], out["key"]
    assert be(out["z"], 128) == vec["z"]
    assert hx(out["Z"]) == vec["Z"] and hx(out["b"]) == vec["b"] and hx(out["RSK"]) == vec["RSK"]
    assert be(out["inv"], 128) == vec["rsk_inverse"]
    assert hx(s_encode(key.bPZ)) == vec["bP_plus_Z"] and be(key.pairing, 128) == vec["rsk_pairing"]
    assert hx(e["SSV"]) == vec["SSV"] and hx(e["r_input"]) == vec["r_input"]
    assert hx(e["r_A"]) == vec["r_A"] and [hx(x) for x in e["r_v"]] == vec["r_v"]
    assert be(e["r"], 128) == vec["r"]
    for k in ("R", "g_r", "mask", "H", "encapsulated"):
        assert hx(e[k]) == vec[k], k
    assert hx(d["w"]) == vec["w"] and hx(d["SSV"]) == vec["decapsulated_SSV"]
    assert be(d["r"], 128) == vec["decapsulated_r"] and hx(d["TEST"]) == vec["TEST"]


# --- negative vectors (section 8, section 9's table) -------------------------------------------

# Section 8's table, transcribed: the error of each check (row, check) the negative vectors reach.
SECTION_8 = {
    "sakke-point": "DecodeError",  # SAKKE Z, RSK (2.3)
    "encapsulated-data": "InvalidCiphertextError",  # R_(b,S), Encapsulated Data (2.3, 3.6)
    "sakke-identifier": "ParameterError",  # SAKKE identifier as integer (3.2)
    "rsk-check": "VerificationError",  # RSK validation (3.4)
    "decapsulation-check": "VerificationError",  # decapsulation (3.6 step 5)
    "eccsi-point": "DecodeError",  # ECCSI KPAK, PVT (4.2)
    "ssk-length": "DecodeError",  # ECCSI SSK (4.5): 32 octets
    "ssk-range": "VerificationError",  # ECCSI SSK (4.5): 0 < SSK < q
    "ssk-check": "VerificationError",  # ECCSI SSK (4.5): KPAK = [SSK]G - [HS]PVT
    "signature-length": "DecodeError",  # ECCSI signature (4.7): 129 octets
    "r-s-range": "VerificationError",  # ECCSI signature (4.7): 0 < r < p, 0 < s < q
    "signature-check": "VerificationError",  # ECCSI signature (4.7): J_x = r
    "eccsi-id-m": "ParameterError",  # ECCSI ID 1 to 1024 octets, M at most 1 MiB
}


def _run_negative(vec: dict[str, Any]) -> Callable[[], Any]:
    op = vec["operation"]
    inputs = ("ID", "KPAK", "message", "signature", "PVT", "SSK", "Z", "b", "RSK", "encapsulated")
    f = {k: h2b(v) for k, v in vec.items() if k in inputs}
    if op == "eccsi-verify":
        return lambda: eccsi_verify(f["KPAK"], f["ID"], f["message"], f["signature"])
    if op == "eccsi-validate":
        return lambda: eccsi_validate(f["KPAK"], f["ID"], f["SSK"], f["PVT"])
    if op == "sakke-encapsulate":
        return lambda: sakke_encapsulate(f["Z"], f["b"], ReplayRandom([]))  # a bad input draws nothing
    if op == "sakke-validate-rsk":
        return lambda: sakke_validate_rsk(f["Z"], f["b"], f["RSK"])
    if op == "sakke-decapsulate":
        key = sakke_validate_rsk(f["Z"], f["b"], f["RSK"])  # the receiver's key is valid
        return lambda: sakke_decapsulate(key, f["encapsulated"])
    raise AssertionError(op)


NEGATIVE = [v for v in GENERATED["vectors"] if v.get("result") == "invalid"]


@pytest.mark.parametrize("vec", NEGATIVE, ids=lambda v: v["name"])
def test_negative_vectors_are_refused_with_the_named_error(vec: dict[str, Any]) -> None:
    assert set(vec["flags"]) <= set(GENERATED["notes"])
    with pytest.raises(UsappError) as info:
        _run_negative(vec)()
    assert type(info.value).__name__ == vec["error"]
    assert info.value.check is not None and SECTION_8[info.value.check] == vec["error"]


def test_negative_vector_count() -> None:
    assert len(NEGATIVE) == 68 and len(GENERATED["vectors"]) == 73


# --- properties the spec states -----------------------------------------------------------------


@settings(max_examples=5, deadline=None)
@given(st.integers(min_value=1, max_value=SQ - 1))
def test_pf_p_power_by_product_equals_f_p2_power(r: int) -> None:
    assert pf_pow(PS1.g, r) == pf_pow_by_product(PS1.g, r)


@settings(max_examples=3, deadline=None)
@given(st.integers(min_value=2, max_value=2**64), st.integers(min_value=2, max_value=2**64))
def test_pairing_is_bilinear(a: int, b: int) -> None:
    A, B = s_mul(a, P_GEN), s_mul(b, P_GEN)
    assert pairing(A, B) == pairing_jacobian(A, B) == pf_pow(PS1.g, a * b % SQ)


@settings(max_examples=10, deadline=None)
@given(st.binary(min_size=1, max_size=64), st.binary(max_size=64), st.binary(min_size=32, max_size=32))
def test_eccsi_round_trip_and_binding(ID: bytes, M: bytes, seed: bytes) -> None:
    rng = HmacDrbg(seed)
    KSAK = random_range(rng, 1, EQ)
    KPAK = eccsi_kms(KSAK)
    c = eccsi_construct(KSAK, KPAK, ID, rng)
    HS = eccsi_validate(KPAK, ID, c["SSK"], c["PVT"])
    sig = eccsi_sign(HS, c["SSK"], c["PVT"], M, rng)["signature"]
    eccsi_verify(KPAK, ID, M, sig)
    assert refusal(lambda: eccsi_verify(KPAK, ID, M + b"\x00", sig)) == "VerificationError"
    assert refusal(lambda: eccsi_verify(KPAK, ID + b"\x00", M, sig)) == "VerificationError"
    twin = sig[:32] + i2osp(EQ - os2ip(sig[32:64]), 32) + sig[64:]  # section 6.3: accepted
    eccsi_verify(KPAK, ID, M, twin)


def test_sakke_round_trip_under_a_fresh_kms_and_wrong_identity() -> None:
    rng = HmacDrbg(b"from-spec sakke round trip")
    z = random_range(rng, 2, SQ)
    Z = sakke_kms(z)
    b, other = identifier("2026-03", "urn:usapp:meter:X-1"), identifier("2026-04", "urn:usapp:meter:X-1")
    key = sakke_validate_rsk(Z, b, sakke_extract(z, b)[1])
    e = sakke_encapsulate(Z, b, rng)
    assert sakke_decapsulate(key, e["encapsulated"])["SSV"] == e["SSV"]
    e2 = sakke_encapsulate(Z, other, rng)
    assert refusal(lambda: sakke_decapsulate(key, e2["encapsulated"])) == "VerificationError"


def test_identifiers_and_key_periods() -> None:
    assert identifier("2011-02", "tel:+447700900123").hex() == "323031312d30320074656c3a2b34343737303039303031323300"
    for period, uri in [("2011-13", "tel:+1"), ("2011-2", "tel:+1"), ("2011-02", "tel:+44 77"), ("2011-02", "tel:1"),
                        ("2011-02", "tel:+" + "1" * 33), ("2011-02", "urn:a\x7f"), ("2011-02", "u" * 1001)]:
        assert refusal(lambda: identifier(period, uri)) == "ParameterError"
    for data in [b"2011-02\x00tel:+1", b"2011-02\x00tel:+1\x00\x00", b"2011-02tel:+1\x00", b"x" * 1025]:
        assert refusal(lambda: decode_identifier(data)) == "DecodeError"
    assert accepted_periods(2026, 1, 30) == ["2026-01", "2026-02"]
    assert accepted_periods(2026, 12, 31) == ["2026-12", "2027-01"]
    assert accepted_periods(2026, 2, 27) == ["2026-02", "2026-03"]
    assert accepted_periods(2026, 1, 2) == ["2025-12", "2026-01"]
    assert accepted_periods(2026, 1, 3) == ["2026-01"]


# --- parameters and local-argument refusals (sections 2.1, 3.1 to 3.5, 4.3 to 4.7, 8) ------------


def check_sakke_parameters(p: int, q: int, n: int, Px: int, Py: int, g: int) -> None:
    """Section 2.1: the construction checks of SakkeParameters, each a ParameterError."""
    if p % 4 != 3:
        raise ParameterError("p != 3 mod 4")
    if q < 3 or q % 2 == 0 or (p + 1) % q:
        raise ParameterError("q odd, >= 3, dividing p + 1")
    if n % 8 or n < 8 or q.bit_length() - 1 < 2 * n:
        raise ParameterError("n a multiple of 8 with lg(q) > 2n")
    if not (0 <= Px < p and 0 <= Py < p) or (Py * Py - Px**3 + 3 * Px) % p:
        raise ParameterError("P not on E")
    if not 0 < g < p:
        raise ParameterError("g not in (0, p)")


def test_parameter_construction_checks() -> None:
    p, q, n, x, y, g = PS1.p, PS1.q, PS1.n, PS1.Px, PS1.Py, PS1.g
    check_sakke_parameters(p, q, n, x, y, g)
    for bad in [(p + 2, q, n, x, y, g), (p, q * 2, n, x, y, g), (p, 1, n, x, y, g), (p, q, 12, x, y, g),
                (p, q, 512, x, y, g), (p, q, n, x, y + 1, g), (p, q, n, x + p, y, g), (p, q, n, x, y, 0),
                (p, q, n, x, y, p)]:
        assert refusal(lambda: check_sakke_parameters(*bad)) == "ParameterError"


def test_local_arguments_out_of_range_are_parameter_errors() -> None:
    b = identifier("2026-01", "urn:usapp:meter:SM-0001")
    Z = sakke_kms(5)
    for step in [
        lambda: sakke_kms(1), lambda: sakke_kms(SQ), lambda: sakke_extract(SQ, b),
        lambda: sakke_encapsulate(Z, b, ssv=2**128), lambda: sakke_encapsulate(Z, b, ssv=-1),
        lambda: sakke_encapsulate(Z, b"\x00" * 1025 + b"\x02", ReplayRandom([])),
        lambda: hash_to_integer_range(b"", 1), lambda: hash_to_integer_range(b"", 2**8192 + 1),
        lambda: hash_to_integer_range(bytes((1 << 20) + 1), 5),
        lambda: eccsi_kms(0), lambda: eccsi_kms(EQ), lambda: eccsi_construct(EQ, G_ENC, b"x", v=1),
        lambda: eccsi_construct(1, G_ENC, b"x", v=0), lambda: eccsi_construct(1, G_ENC, b"x", v=EQ),
        lambda: eccsi_construct(1, G_ENC, bytes(1025), v=1), lambda: eccsi_construct(1, G_ENC, b"", v=1),
        lambda: eccsi_sign(bytes(32), i2osp(1, 32), G_ENC, b"m", j=EQ),
        lambda: eccsi_sign(bytes(32), i2osp(1, 32), G_ENC, bytes((1 << 20) + 1), j=1),
        lambda: eccsi_verify(G_ENC, b"x", bytes((1 << 20) + 1), bytes(129)),
        lambda: eccsi_verify(G_ENC, bytes(1025), b"m", bytes(129)),
    ]:
        assert refusal(step) == "ParameterError"
    assert hash_to_integer_range(b"", 2**8192) >= 0  # the bound itself is allowed


def test_b_plus_z_zero_has_no_rsk_and_no_encapsulation() -> None:
    """Section 5.3: b + z = 0 mod q."""
    b = identifier("2026-01", "tel:+447700900123")
    z = SQ - os2ip(b)
    assert refusal(lambda: sakke_extract(z, b)) == "ParameterError"
    assert refusal(lambda: sakke_encapsulate(sakke_kms(z), b, ReplayRandom([]))) == "ParameterError"


def period_of_epoch(e: int) -> str:
    """specs/issuance.md 10.4.1: epoch e is the RFC 6509 key period of month e from 1970-01."""
    if not 0 <= e <= 96359:
        raise ParameterError("no key period")
    return f"{1970 + e // 12:04d}-{e % 12 + 1:02d}"


def epoch_of_period(period: str) -> int:
    if not _valid_period(period) or int(period[:4]) < 1970:
        raise ParameterError("no epoch")
    return (int(period[:4]) - 1970) * 12 + int(period[5:]) - 1


def test_epochs_and_the_usapp_identifier() -> None:
    """specs/issuance.md 10.4.1 and 10.4.2 examples, as the suite of section 12 uses them."""
    assert [period_of_epoch(e) for e in (0, 683, 96359)] == ["1970-01", "2026-12", "9999-12"]
    assert all(epoch_of_period(period_of_epoch(e)) == e for e in range(0, 96360, 997))
    assert refusal(lambda: period_of_epoch(96360)) == "ParameterError"
    assert refusal(lambda: epoch_of_period("1969-12")) == "ParameterError"
    ident = identifier(period_of_epoch(683), "urn:usapp:test-meters:meter:SM-000123")
    assert len(ident) == 46 and 2 <= os2ip(ident) < SQ


@pytest.mark.slow
def test_every_bit_of_h_is_bound_by_the_decapsulation_check() -> None:
    """Section 3.6: any change to H changes the SSV and r, so TEST != R (all 128 bits of sakke-0)."""
    (vec,) = [v for v in gen("sakke") if v["name"] == "sakke-0"]
    key = sakke_validate_rsk(h2b(vec["Z"]), h2b(vec["b"]), h2b(vec["RSK"]))
    data = h2b(vec["encapsulated"])
    for bit in range(128):
        tampered = data[:257] + i2osp(os2ip(data[257:]) ^ (1 << bit), 16)
        assert refusal(lambda: sakke_decapsulate(key, tampered)) == "VerificationError"


@pytest.mark.slow
@settings(max_examples=25, deadline=None)
@given(st.binary(min_size=1, max_size=100), st.integers(min_value=0, max_value=2**128 - 1))
def test_sakke_round_trip_for_random_identifiers_and_ssvs(uri_tail: bytes, ssv: int) -> None:
    rng = HmacDrbg(uri_tail)
    z = random_range(rng, 2, SQ)
    Z = sakke_kms(z)
    b = identifier("2026-05", "urn:x:" + uri_tail.hex())
    key = sakke_validate_rsk(Z, b, sakke_extract(z, b)[1])
    e = sakke_encapsulate(Z, b, ssv=ssv)
    assert os2ip(sakke_decapsulate(key, e["encapsulated"])["SSV"]) == ssv
