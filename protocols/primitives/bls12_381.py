"""BLS12-381 pairing groups G1, G2, GT through the py-arkworks-bls12381 binding.

specs/bls12_381.md is the specification; this module is a thin, typed layer
over the binding (arkworks 0.4 compiled in, ``py_arkworks_bls12381`` 0.5) that
adds what the binding leaves to its caller:

| spec section | what | here |
|---|---|---|
| 3 | parameters p, r, h_eff, suite names | ``P``, ``R``, ``H_EFF_G1``, ``H_EFF_G2``, ``SUITE_G1``, ``SUITE_G2`` |
| 4.1, 4.2 | canonical G1 / G2 encodings (ZCash compressed), validated decoding | :class:`G1`, :class:`G2` |
| 4.3, 5 | GT encoding and arithmetic (a plain Python F_p^12 beside the binding) | :class:`GT` |
| 4.4 | scalars: 32-byte big-endian, random scalars from an injected rng | ``scalar_*``, :func:`random_scalar` |
| 6 | RFC 9380 expand_message_xmd, hash_to_field, hash_to_curve | :func:`expand_message_xmd`, :func:`hash_to_field_fp`, :func:`hash_to_g1` ... |
| 7 | the pairing e: G1 x G2 -> GT and products of pairings | :func:`pairing`, :func:`multi_pairing` |

Rules the binding does not enforce and this module does (spec section 4):

* decoders check, in order: type, length, flag bits, canonical form
  (coordinates below p, identity encoded only as 0xc0 || 0...0), the point on
  the curve, the point in the subgroup of order r, and refuse the identity
  unless ``allow_identity=True``.  The binding itself accepts an infinity
  flag beside a non-zero x (and silently returns the identity), so the
  flags are checked here before it is called;
* scalars are Python ints; the binding's ``Scalar(k)`` silently reduces
  k modulo r, so every entry point reduces or range-checks explicitly;
* the binding has no GT decoding and no GT exponentiation, and its GT ``+``
  is addition in F_p^12, not the group law; :class:`GT` therefore keeps the
  canonical bytes and does its own arithmetic (section 5).

Group elements may be secret (an IBE private key is a point), so ``repr``
never shows a value; equality of GT elements uses ``hashing.compare_digest``.
There is no module-level mutable state.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, TypeGuard

import gmpy2
from py_arkworks_bls12381 import G1Point as _ArkG1
from py_arkworks_bls12381 import G2Point as _ArkG2
from py_arkworks_bls12381 import GT as _ArkGT
from py_arkworks_bls12381 import Scalar as _ArkScalar

from protocols.errors import DecodeError, ParameterError, UsappError
from protocols.primitives import hashing, opcount
from protocols.primitives.numtheory import count_modinv
from protocols.primitives.rand import RandomSource, random_below, random_range

# ---------------------------------------------------------------------------
# Parameters (spec section 3; RFC 9380 section 8.8; draft-irtf-cfrg-pairing-friendly-curves)
# ---------------------------------------------------------------------------

P = 0x1A0111EA397FE69A4B1BA7B6434BACD764774B84F38512BF6730D2A0F6B0F6241EABFFFEB153FFFFB9FEFFFFFFFFAAAB
"""The base field modulus p (381 bits)."""

R = 0x73EDA753299D7D483339D80809A1D80553BDA402FFFE5BFEFFFFFFFF00000001
"""The prime order r of G1, G2 and GT (255 bits); scalars live in [0, r)."""

H_EFF_G1 = 0xD201000000010001
"""RFC 9380 section 8.8.1: the scalar that clears the cofactor of E(F_p)."""

H_EFF_G2 = 0xBC69F08F2EE75B3584C6A0EA91B352888E2A8E9145AD7689986FF031508FFE1329C2F178731DB956D82BF015D1212B02EC0EC69D7477C1AE954CBC06689F6A359894C0ADEBBF6B4E8020005AAA95551
"""RFC 9380 section 8.8.2: the scalar that clears the cofactor of E'(F_p^2)."""

B_G1 = 4
"""E: y^2 = x^3 + 4 over F_p."""

B_G2 = (4, 4)
"""E': y^2 = x^3 + 4(1 + I) over F_p^2 = F_p[I] / (I^2 + 1)."""

SUITE_G1 = "BLS12381G1_XMD:SHA-256_SSWU_RO_"
SUITE_G2 = "BLS12381G2_XMD:SHA-256_SSWU_RO_"
"""The RFC 9380 suites (section 8.8.1, 8.8.2) behind :func:`hash_to_g1` and
:func:`hash_to_g2`.  A protocol chooses its own DST (section 3.1), for
example ``b"USAPP-V01-CS01-with-" + SUITE_G1.encode()``."""

FP_BYTES = 48
G1_BYTES = 48
G2_BYTES = 96
GT_BYTES = 576
SCALAR_BYTES = 32

_P_MPZ = gmpy2.mpz(P)
_FLAG_COMPRESSED = 0x80
_FLAG_INFINITY = 0x40
_FLAG_SIGN = 0x20
_FLAG_MASK = 0xE0

# ---------------------------------------------------------------------------
# Small helpers
# ---------------------------------------------------------------------------


def _is_int(value: object) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool)


def _as_bytes(value: object, what: str, error: type[UsappError]) -> bytes:
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value)
    raise error(f"{what} must be bytes, not {type(value).__name__}")


def _scalar(k: object) -> _ArkScalar:
    """k mod r as a binding scalar (G1, G2 and GT have prime order r, so
    [k]P = [k mod r]P for every element)."""
    if not _is_int(k):
        raise ParameterError(f"a scalar must be an int, not {type(k).__name__}")
    return _ArkScalar(k % R)


def _fp_sqrt_exists(a: int) -> bool:
    """a is a square in F_p (0 included): the Legendre symbol (a / p) != -1."""
    return gmpy2.legendre(a, _P_MPZ) != -1


def _fp2_mul(a: tuple[int, int], b: tuple[int, int]) -> tuple[int, int]:
    return ((a[0] * b[0] - a[1] * b[1]) % P, (a[0] * b[1] + a[1] * b[0]) % P)


def _check_fp(value: object, what: str) -> int:
    if not _is_int(value) or not 0 <= value < P:
        raise ParameterError(f"{what} must be an int in [0, p)")
    return value


def _check_fp2(value: object, what: str) -> tuple[int, int]:
    if not isinstance(value, (tuple, list)) or len(value) != 2:
        raise ParameterError(f"{what} must be a pair (c0, c1) of ints in [0, p)")
    return (_check_fp(value[0], what), _check_fp(value[1], what))


# ---------------------------------------------------------------------------
# Scalars (spec section 4.4)
# ---------------------------------------------------------------------------


def scalar_to_bytes(k: int) -> bytes:
    """I2OSP(k, 32) for k in [0, r) (ParameterError otherwise)."""
    if not _is_int(k) or not 0 <= k < R:
        raise ParameterError("a scalar must be an int in [0, r)")
    return k.to_bytes(SCALAR_BYTES, "big")


def scalar_from_bytes(data: object, *, allow_zero: bool = False,
                      error: type[UsappError] = DecodeError) -> int:
    """OS2IP of exactly 32 bytes, which must be below r (and non-zero unless
    ``allow_zero``); ``error`` (DecodeError unless told) names the fault."""
    raw = _as_bytes(data, "a scalar encoding", error)
    if len(raw) != SCALAR_BYTES:
        raise error(f"a scalar encoding is {SCALAR_BYTES} bytes, got {len(raw)}")
    k = int.from_bytes(raw, "big")
    if k >= R:
        raise error("a scalar encoding is not below r")
    if k == 0 and not allow_zero:
        raise error("a scalar encoding is zero")
    return k


def random_scalar(rng: RandomSource | None = None, *, nonzero: bool = True) -> int:
    """Uniform scalar: RandomRange(rng, 1, r) when ``nonzero`` (the default),
    else RandomBelow(rng, r) (conventions section 3.2)."""
    return random_range(rng, 1, R) if nonzero else random_below(rng, R)


def scalar_inverse(k: int) -> int:
    """k^-1 mod r; ParameterError for k = 0 mod r."""
    if not _is_int(k):
        raise ParameterError("a scalar must be an int")
    if k % R == 0:
        raise ParameterError("0 has no inverse modulo r")
    if opcount.active():
        count_modinv(R)
    return pow(k, -1, R)


# ---------------------------------------------------------------------------
# RFC 9380 section 5: expand_message_xmd (SHA-256) and hash_to_field
# (the plain reference; hash_to_g1 / hash_to_g2 use the binding and a test
# holds the two equal)
# ---------------------------------------------------------------------------

_B_IN_BYTES = 32  # SHA-256 output
_R_IN_BYTES = 64  # SHA-256 block
_L = 64  # RFC 9380 section 8.8: L = ceil((ceil(log2(p)) + k) / 8) = 64 for k = 128
_OVERSIZE_PREFIX = b"H2C-OVERSIZE-DST-"


def _check_dst(DST: object) -> bytes:
    dst = _as_bytes(DST, "DST", ParameterError)
    if not dst:
        raise ParameterError("DST must not be empty (RFC 9380 section 3.1)")
    if len(dst) > 255:
        # RFC 9380 section 5.3.3: DST = H("H2C-OVERSIZE-DST-" || a_very_long_DST)
        dst = hashing.sha256(_OVERSIZE_PREFIX + dst).digest()
    return dst


def xmd_dst_prime(DST: bytes) -> bytes:
    """DST_prime = DST || I2OSP(len(DST), 1) (RFC 9380 section 5.3.1 step 2),
    after the oversize rule of section 5.3.3."""
    dst = _check_dst(DST)
    return dst + bytes([len(dst)])


def xmd_msg_prime(msg: bytes, DST: bytes, len_in_bytes: int) -> bytes:
    """msg_prime = Z_pad || msg || l_i_b_str || I2OSP(0, 1) || DST_prime
    (RFC 9380 section 5.3.1 steps 3-6)."""
    message = _as_bytes(msg, "msg", ParameterError)
    _check_len_in_bytes(len_in_bytes)
    return bytes(_R_IN_BYTES) + message + len_in_bytes.to_bytes(2, "big") + b"\x00" + xmd_dst_prime(DST)


def _check_len_in_bytes(len_in_bytes: object) -> int:
    if not _is_int(len_in_bytes) or not 1 <= len_in_bytes <= 65535:
        raise ParameterError("len_in_bytes must be an int in [1, 65535]")
    if -(-len_in_bytes // _B_IN_BYTES) > 255:
        raise ParameterError("len_in_bytes needs ell > 255 (RFC 9380 section 5.3.1 step 2)")
    return len_in_bytes


def xmd_blocks(msg_length: int, dst_length: int, len_in_bytes: int) -> int:
    """SHA-256 blocks of one expand_message_xmd (RFC 9380 section 5.3.1) done once, as a
    library does it: the oversize-DST hash (section 5.3.3), b_0, then b_1 .. b_ell."""
    blocks = 0
    if dst_length > 255:
        blocks += hashing.blocks("sha256", len(_OVERSIZE_PREFIX) + dst_length)
        dst_length = _B_IN_BYTES
    ell = -(-len_in_bytes // _B_IN_BYTES)
    blocks += hashing.blocks("sha256", _R_IN_BYTES + msg_length + 2 + 1 + dst_length + 1)
    return blocks + ell * hashing.blocks("sha256", _B_IN_BYTES + 1 + dst_length + 1)


def _count_hash_to_curve(group: str, msg: bytes, DST: bytes, m: int) -> None:
    """Record one ``hash_to_curve:{group}`` and the SHA-256 blocks of its hash_to_field
    (count = 2 elements of F_p^m, L = 64 bytes each), which the binding computes."""
    opcount.record(f"hash_to_curve:{group}")
    opcount.record("hash_block:sha256", xmd_blocks(len(msg), len(DST), 2 * m * _L))


def expand_message_xmd(msg: bytes, DST: bytes, len_in_bytes: int) -> bytes:
    """RFC 9380 section 5.3.1, expand_message_xmd with H = SHA-256."""
    _check_len_in_bytes(len_in_bytes)
    ell = -(-len_in_bytes // _B_IN_BYTES)
    dst_prime = xmd_dst_prime(DST)
    b_0 = hashing.sha256(xmd_msg_prime(msg, DST, len_in_bytes)).digest()
    b_i = hashing.sha256(b_0 + b"\x01" + dst_prime).digest()
    uniform_bytes = [b_i]
    for i in range(2, ell + 1):
        b_i = hashing.sha256(bytes(x ^ y for x, y in zip(b_0, b_i)) + bytes([i]) + dst_prime).digest()
        uniform_bytes.append(b_i)
    return b"".join(uniform_bytes)[:len_in_bytes]


def _hash_to_field(msg: bytes, DST: bytes, count: int, m: int) -> list[list[int]]:
    """RFC 9380 section 5.2, hash_to_field with expand_message_xmd (SHA-256), L = 64."""
    if not _is_int(count) or not 1 <= count <= 16:
        raise ParameterError("count must be an int in [1, 16]")
    uniform_bytes = expand_message_xmd(msg, DST, count * m * _L)
    out = []
    for i in range(count):
        e = []
        for j in range(m):
            offset = _L * (j + i * m)
            e.append(int.from_bytes(uniform_bytes[offset:offset + _L], "big") % P)
        out.append(e)
    return out


def hash_to_field_fp(msg: bytes, DST: bytes, count: int = 2) -> list[int]:
    """hash_to_field to F_p (m = 1): the u[i] of suite BLS12381G1_XMD:SHA-256_SSWU_RO_."""
    return [e[0] for e in _hash_to_field(msg, DST, count, 1)]


def hash_to_field_fp2(msg: bytes, DST: bytes, count: int = 2) -> list[tuple[int, int]]:
    """hash_to_field to F_p^2 (m = 2): the u[i] = (c0, c1) of suite
    BLS12381G2_XMD:SHA-256_SSWU_RO_ (u = c0 + I * c1)."""
    return [(e[0], e[1]) for e in _hash_to_field(msg, DST, count, 2)]


# ---------------------------------------------------------------------------
# G1 and G2 (spec sections 4.1, 4.2): ZCash compressed encodings
# ---------------------------------------------------------------------------


def _split_flags(raw: bytes, what: str, error: type[UsappError]) -> tuple[bool, bool, bytes]:
    """Check the three flag bits of byte 0; return (infinity, sign, body with flags cleared)."""
    flags = raw[0] & _FLAG_MASK
    if not flags & _FLAG_COMPRESSED:
        raise error(f"{what}: the compression flag (0x80) is not set")
    infinity = bool(flags & _FLAG_INFINITY)
    sign = bool(flags & _FLAG_SIGN)
    body = bytes([raw[0] & ~_FLAG_MASK & 0xFF]) + raw[1:]
    if infinity and (sign or any(body)):
        raise error(f"{what}: the identity must be encoded as 0xc0 followed by zero bytes")
    return infinity, sign, body


def _coordinate(chunk: bytes, what: str, error: type[UsappError]) -> int:
    value = int.from_bytes(chunk, "big")
    if value >= P:
        raise error(f"{what}: a coordinate is not below p (non-canonical)")
    return value


class _Point:
    """Shared behaviour of G1 and G2 (subclasses set the binding type and sizes)."""

    __slots__ = ("_p",)
    _p: Any
    _ark: Any = None
    _BASE: Any = None
    _size = 0
    _name = ""

    def __init__(self, point: Any) -> None:  # internal: use the constructors below
        if not isinstance(point, self._ark):
            raise ParameterError(f"{self._name} wraps a binding point")
        object.__setattr__(self, "_p", point)

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError(f"{self._name} elements are immutable")

    # -- constructors ------------------------------------------------------

    @classmethod
    def generator(cls):
        """The standard generator (draft-irtf-cfrg-pairing-friendly-curves, BLS12_381): one shared
        immutable object, so that a multiplication of it is told apart by identity and counted as
        ``point_mul_base`` (specs/costs.md 2.1)."""
        return cls._BASE

    @classmethod
    def identity(cls):
        """The identity element (point at infinity)."""
        return cls(cls._ark.identity())

    # -- encoding ----------------------------------------------------------

    def to_bytes(self) -> bytes:
        """The canonical compressed encoding (spec section 4.1 / 4.2)."""
        return bytes(self._p.to_compressed_bytes())

    def __bytes__(self) -> bytes:
        return self.to_bytes()

    # -- group law ---------------------------------------------------------

    def is_identity(self) -> bool:
        return self._p == self._ark.identity()

    def _same(self, other: object) -> Any:
        if type(other) is not type(self):
            raise ParameterError(f"{self._name} operations need another {self._name} element")
        return other._p

    def __add__(self, other: object):
        return type(self)(self._p + self._same(other))

    def __sub__(self, other: object):
        return type(self)(self._p - self._same(other))

    def __neg__(self):
        return type(self)(-self._p)

    def __mul__(self, k: object):
        """[k]P for an int k (taken modulo r); counted as ``point_mul_base:{curve}`` when P is
        the generator, else ``point_mul:{curve}`` (specs/costs.md 2.1)."""
        scalar = _scalar(k)
        if opcount.active():
            base = self is type(self)._BASE
            opcount.record(f"{'point_mul_base' if base else 'point_mul'}:bls12_381_{self._name.lower()}")
        return type(self)(self._p * scalar)

    __rmul__ = __mul__

    def __eq__(self, other: object) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        return bool(self._p == other._p)

    def __hash__(self) -> int:
        return hash((self._name, self.to_bytes()))

    def __repr__(self) -> str:  # never the value: points may be secret keys
        return f"{self._name}(<{self._size}-byte element>)"

    # immutable values: copies are the object itself; pickling goes through bytes
    def __copy__(self):
        return self

    def __deepcopy__(self, memo: dict) -> Any:
        return self

    def __reduce__(self):
        return (_restore_point, (self._name, self.to_bytes()))


class G1(_Point):
    """An element of G1, the order-r subgroup of E(F_p): y^2 = x^3 + 4."""

    __slots__ = ()
    _ark = _ArkG1
    _size = G1_BYTES
    _name = "G1"

    @classmethod
    def from_bytes(cls, data: object, *, allow_identity: bool = False,
                   error: type[UsappError] = DecodeError) -> G1:
        """Decode the 48-byte ZCash compressed form (spec section 4.1).

        Checks, in order (each failure raises ``error``, DecodeError unless
        told, naming the fault): bytes; length 48; compression flag set;
        identity only as 0xc0 || 0^47 (and refused unless ``allow_identity``);
        x < p; x^3 + 4 a square in F_p (the point is on E); the point in the
        subgroup of order r.
        """
        raw = _as_bytes(data, "a G1 encoding", error)
        if len(raw) != G1_BYTES:
            raise error(f"a G1 encoding is {G1_BYTES} bytes, got {len(raw)}")
        infinity, _sign, body = _split_flags(raw, "G1 encoding", error)
        if infinity:
            if not allow_identity:
                raise error("G1 encoding is the identity, which is refused here")
            return cls.identity()
        x = _coordinate(body, "G1 encoding", error)
        opcount.record("point_decode:bls12_381_g1")   # specs/costs.md 2.1: square root and subgroup check
        if not _fp_sqrt_exists((x * x * x + B_G1) % P):
            raise error("G1 encoding: x is not the abscissa of a point on E (off curve)")
        try:
            point = _ArkG1.from_compressed_bytes_unchecked(raw)
        except ValueError as exc:  # pragma: no cover - excluded by the checks above
            raise error("G1 encoding: rejected by the binding") from exc
        if not point.is_in_subgroup():
            raise error("G1 encoding: the point is on E but not in the subgroup of order r")
        if bytes(point.to_compressed_bytes()) != raw:  # pragma: no cover - defence in depth
            raise error("G1 encoding is not canonical")
        return cls(point)

    def affine(self) -> tuple[int, int]:
        """(x, y) as ints; ParameterError for the identity."""
        if self.is_identity():
            raise ParameterError("the identity has no affine coordinates")
        raw = self._p.to_xy_bytes_be()
        return int.from_bytes(raw[:48], "big"), int.from_bytes(raw[48:], "big")


class G2(_Point):
    """An element of G2, the order-r subgroup of E'(F_p^2): y^2 = x^3 + 4(1 + I)."""

    __slots__ = ()
    _ark = _ArkG2
    _size = G2_BYTES
    _name = "G2"

    @classmethod
    def from_bytes(cls, data: object, *, allow_identity: bool = False,
                   error: type[UsappError] = DecodeError) -> G2:
        """Decode the 96-byte ZCash compressed form x.c1 || x.c0 (spec section 4.2).

        Checks as :meth:`G1.from_bytes`, with both halves of x below p and
        x^3 + 4(1 + I) a square in F_p^2.
        """
        raw = _as_bytes(data, "a G2 encoding", error)
        if len(raw) != G2_BYTES:
            raise error(f"a G2 encoding is {G2_BYTES} bytes, got {len(raw)}")
        infinity, _sign, body = _split_flags(raw, "G2 encoding", error)
        if infinity:
            if not allow_identity:
                raise error("G2 encoding is the identity, which is refused here")
            return cls.identity()
        x1 = _coordinate(body[:48], "G2 encoding", error)
        x0 = _coordinate(body[48:], "G2 encoding", error)
        opcount.record("point_decode:bls12_381_g2")   # specs/costs.md 2.1: square root and subgroup check
        rhs = _fp2_mul(_fp2_mul((x0, x1), (x0, x1)), (x0, x1))
        rhs = ((rhs[0] + B_G2[0]) % P, (rhs[1] + B_G2[1]) % P)
        # a in F_p^2 is a square iff its norm a0^2 + a1^2 is a square in F_p
        if not _fp_sqrt_exists((rhs[0] * rhs[0] + rhs[1] * rhs[1]) % P):
            raise error("G2 encoding: x is not the abscissa of a point on E' (off curve)")
        try:
            point = _ArkG2.from_compressed_bytes_unchecked(raw)
        except ValueError as exc:  # pragma: no cover - excluded by the checks above
            raise error("G2 encoding: rejected by the binding") from exc
        if not point.is_in_subgroup():
            raise error("G2 encoding: the point is on E' but not in the subgroup of order r")
        if bytes(point.to_compressed_bytes()) != raw:  # pragma: no cover - defence in depth
            raise error("G2 encoding is not canonical")
        return cls(point)

    def affine(self) -> tuple[tuple[int, int], tuple[int, int]]:
        """((x.c0, x.c1), (y.c0, y.c1)) as ints; ParameterError for the identity."""
        if self.is_identity():
            raise ParameterError("the identity has no affine coordinates")
        raw = self._p.to_xy_bytes_be()
        c = [int.from_bytes(raw[i:i + 48], "big") for i in range(0, 192, 48)]
        return (c[0], c[1]), (c[2], c[3])


G1._BASE = G1(_ArkG1())
G2._BASE = G2(_ArkG2())


def _restore_point(name: str, raw: bytes) -> _Point:
    """Unpickling: the element's class by name, decoded with every check."""
    classes: dict[str, type[G1] | type[G2]] = {"G1": G1, "G2": G2}
    return classes[name].from_bytes(raw, allow_identity=True)


# ---------------------------------------------------------------------------
# RFC 9380 hash_to_curve (spec section 6)
# ---------------------------------------------------------------------------


def hash_to_g1(msg: bytes, DST: bytes) -> G1:
    """hash_to_curve of suite BLS12381G1_XMD:SHA-256_SSWU_RO_ (RFC 9380
    sections 3 and 8.8.1) with the caller's domain separation tag ``DST``
    (non-empty; longer than 255 bytes is hashed per section 5.3.3)."""
    message = _as_bytes(msg, "msg", ParameterError)
    _check_dst(DST)
    if opcount.active():
        _count_hash_to_curve("bls12_381_g1", message, DST, 1)
    return G1(_ArkG1.hash_to_curve(message, bytes(DST)))


def hash_to_g2(msg: bytes, DST: bytes) -> G2:
    """hash_to_curve of suite BLS12381G2_XMD:SHA-256_SSWU_RO_ (RFC 9380
    sections 3 and 8.8.2) with the caller's ``DST``."""
    message = _as_bytes(msg, "msg", ParameterError)
    _check_dst(DST)
    if opcount.active():
        _count_hash_to_curve("bls12_381_g2", message, DST, 2)
    return G2(_ArkG2.hash_to_curve(message, bytes(DST)))


def map_to_g1(u: int) -> G1:
    """clear_cofactor(map_to_curve(u)) for u in F_p (RFC 9380 sections 6.6.3,
    7; the 11-isogeny of appendix E.2), by the binding."""
    x = _check_fp(u, "u")
    return G1(_ArkG1.map_from_fp_be(x.to_bytes(FP_BYTES, "big")))


def map_to_g2(u: tuple[int, int]) -> G2:
    """clear_cofactor(map_to_curve(u)) for u = c0 + I * c1 in F_p^2 (RFC 9380
    sections 6.6.3, 7; the 3-isogeny of appendix E.3), by the binding."""
    c0, c1 = _check_fp2(u, "u")
    return G2(_ArkG2.map_from_fp2_be(c0.to_bytes(FP_BYTES, "big") + c1.to_bytes(FP_BYTES, "big")))


def _times_integer(point: Any, k: int, identity: Any) -> Any:
    """[k]Q for any point Q of the curve (not only the subgroup), by
    double-and-add with the group law alone: the cofactor scalars exceed r."""
    acc = identity
    for bit in bin(k)[2:]:
        acc = acc + acc
        if bit == "1":
            acc = acc + point
    return acc


def clear_cofactor_g1(x: int, y: int) -> G1:
    """[h_eff](x, y) for a point (x, y) of E(F_p), in or out of the subgroup
    (RFC 9380 section 7).  Used to check the intermediates Q0, Q1 of the
    RFC's vectors.  ParameterError if (x, y) is not on E."""
    x, y = _check_fp(x, "x"), _check_fp(y, "y")
    if (y * y - x * x * x - B_G1) % P:
        raise ParameterError("(x, y) is not on E: y^2 = x^3 + 4")
    point = _ArkG1.from_xy_bytes_unchecked_be(x.to_bytes(FP_BYTES, "big") + y.to_bytes(FP_BYTES, "big"))
    return G1(_times_integer(point, H_EFF_G1, _ArkG1.identity()))


def clear_cofactor_g2(x: tuple[int, int], y: tuple[int, int]) -> G2:
    """[h_eff](x, y) for a point of E'(F_p^2) (RFC 9380 sections 7, 8.8.2);
    ParameterError if (x, y) is not on E'."""
    x, y = _check_fp2(x, "x"), _check_fp2(y, "y")
    lhs = _fp2_mul(y, y)
    rhs = _fp2_mul(_fp2_mul(x, x), x)
    if (lhs[0] - rhs[0] - B_G2[0]) % P or (lhs[1] - rhs[1] - B_G2[1]) % P:
        raise ParameterError("(x, y) is not on E': y^2 = x^3 + 4(1 + I)")
    raw = b"".join(c.to_bytes(FP_BYTES, "big") for c in (*x, *y))
    point = _ArkG2.from_xy_bytes_unchecked_be(raw)
    return G2(_times_integer(point, H_EFF_G2, _ArkG2.identity()))


# ---------------------------------------------------------------------------
# F_p^12 in plain Python (spec section 5): the tower of the binding and of
# draft-irtf-cfrg-pairing-friendly-curves,
#   F_p^2 = F_p[I] / (I^2 + 1),  F_p^6 = F_p^2[v] / (v^3 - (1 + I)),
#   F_p^12 = F_p^6[w] / (w^2 - v).
# An element is a tuple of 12 ints in the order of the encoding (section 4.3):
# (c0.c0.c0, c0.c0.c1, c0.c1.c0, c0.c1.c1, c0.c2.c0, c0.c2.c1, c1.c0.c0, ...).
# ---------------------------------------------------------------------------

_Fp12 = tuple[int, ...]
_FP12_ONE: _Fp12 = (1,) + (0,) * 11


def _f2mul(a0: int, a1: int, b0: int, b1: int) -> tuple[int, int]:
    t0, t1 = a0 * b0, a1 * b1
    return (t0 - t1) % P, ((a0 + a1) * (b0 + b1) - t0 - t1) % P


def _f6mul(a: Sequence[int], b: Sequence[int]) -> list[int]:
    """(a0 + a1 v + a2 v^2)(b0 + b1 v + b2 v^2) with v^3 = 1 + I; six ints in, six out."""
    a00, a01, a10, a11, a20, a21 = a
    b00, b01, b10, b11, b20, b21 = b
    t00 = _f2mul(a00, a01, b00, b01)
    t11 = _f2mul(a10, a11, b10, b11)
    t22 = _f2mul(a20, a21, b20, b21)
    s12 = _f2mul(a10 + a20, a11 + a21, b10 + b20, b11 + b21)  # (a1 + a2)(b1 + b2)
    s01 = _f2mul(a00 + a10, a01 + a11, b00 + b10, b01 + b11)
    s02 = _f2mul(a00 + a20, a01 + a21, b00 + b20, b01 + b21)
    m0 = s12[0] - t11[0] - t22[0]  # a1 b2 + a2 b1
    m1 = s12[1] - t11[1] - t22[1]
    # c0 = t00 + xi * (a1 b2 + a2 b1); xi * (m0 + m1 I) = (m0 - m1) + (m0 + m1) I
    c0 = ((t00[0] + m0 - m1) % P, (t00[1] + m0 + m1) % P)
    # c1 = a0 b1 + a1 b0 + xi * t22
    c1 = ((s01[0] - t00[0] - t11[0] + t22[0] - t22[1]) % P,
          (s01[1] - t00[1] - t11[1] + t22[0] + t22[1]) % P)
    # c2 = a0 b2 + a2 b0 + a1 b1
    c2 = ((s02[0] - t00[0] - t22[0] + t11[0]) % P, (s02[1] - t00[1] - t22[1] + t11[1]) % P)
    return [c0[0], c0[1], c1[0], c1[1], c2[0], c2[1]]


def _fp12_mul(a: _Fp12, b: _Fp12) -> _Fp12:
    """(A0 + A1 w)(B0 + B1 w) = (A0 B0 + v A1 B1) + (A0 B1 + A1 B0) w."""
    a0, a1, b0, b1 = a[:6], a[6:], b[:6], b[6:]
    t0 = _f6mul(a0, b0)
    t1 = _f6mul(a1, b1)
    s = _f6mul([x + y for x, y in zip(a0, a1)], [x + y for x, y in zip(b0, b1)])
    # v * (x0 + x1 v + x2 v^2) = xi x2 + x0 v + x1 v^2
    vt1 = [t1[4] - t1[5], t1[4] + t1[5], t1[0], t1[1], t1[2], t1[3]]
    c0 = [(x + y) % P for x, y in zip(t0, vt1)]
    c1 = [(x - y - z) % P for x, y, z in zip(s, t0, t1)]
    return tuple(c0 + c1)


def _fp12_pow(a: _Fp12, k: int) -> _Fp12:
    result = _FP12_ONE
    for bit in bin(k)[2:]:
        result = _fp12_mul(result, result)
        if bit == "1":
            result = _fp12_mul(result, a)
    return result


def _fp12_conjugate(a: _Fp12) -> _Fp12:
    """a^(p^6): (A0 + A1 w) -> (A0 - A1 w); the inverse of an element of GT."""
    return tuple(a[:6]) + tuple((-x) % P for x in a[6:])


def _fp12_from_bytes(raw: bytes) -> _Fp12:
    return tuple(int.from_bytes(raw[i:i + FP_BYTES], "little") for i in range(0, GT_BYTES, FP_BYTES))


def _fp12_to_bytes(a: _Fp12) -> bytes:
    return b"".join(c.to_bytes(FP_BYTES, "little") for c in a)


def _ark_gt_bytes(value: Any) -> bytes:
    """The binding's GT value as canonical bytes: its ``str`` is the hex of
    arkworks' CanonicalSerialize of F_p^12, which is the section 4.3 layout."""
    raw = bytes.fromhex(str(value))
    if len(raw) != GT_BYTES:  # pragma: no cover - a binding change, caught by the tests
        raise ParameterError("the binding returned a GT value of unexpected size")
    return raw


# ---------------------------------------------------------------------------
# GT (spec sections 4.3, 5)
# ---------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class GT:
    """An element of GT, the order-r subgroup of the multiplicative group of
    F_p^12, written multiplicatively (``*``, ``/``, ``**``).

    It holds its canonical 576-byte encoding; an element that came from the
    binding (a pairing, or a product of such) also keeps the binding's value,
    and products and powers of those use the binding's multiplication.
    Others use the plain Python F_p^12 of this module; a test holds the two
    equal.  The value never appears in ``repr``.
    """

    _bytes: bytes = field(repr=False)
    _ark: Any = field(default=None, repr=False, compare=False)

    def __post_init__(self) -> None:
        # The constructor is internal (values come from pairings, arithmetic or
        # from_bytes, which validates); this only guards the representation.
        if not isinstance(self._bytes, bytes) or len(self._bytes) != GT_BYTES:
            raise ParameterError("GT holds its 576-byte encoding; decode with GT.from_bytes")

    @classmethod
    def one(cls) -> GT:
        """The identity of GT (the element 1 of F_p^12)."""
        return cls(_fp12_to_bytes(_FP12_ONE), _ArkGT.one())

    @classmethod
    def _from_ark(cls, value: Any) -> GT:
        return cls(_ark_gt_bytes(value), value)

    @classmethod
    def from_bytes(cls, data: object, *, allow_identity: bool = False,
                   error: type[UsappError] = DecodeError) -> GT:
        """Decode 576 bytes (spec section 4.3): twelve 48-byte little-endian
        coefficients, each below p; the element must lie in the subgroup of
        order r (a^r = 1, which also excludes 0); the identity is refused
        unless ``allow_identity``.  Failures raise ``error`` (DecodeError
        unless told).  The subgroup check is an exponentiation in Python
        (tens of milliseconds)."""
        raw = _as_bytes(data, "a GT encoding", error)
        if len(raw) != GT_BYTES:
            raise error(f"a GT encoding is {GT_BYTES} bytes, got {len(raw)}")
        a = _fp12_from_bytes(raw)
        if any(c >= P for c in a):
            raise error("GT encoding: a coefficient is not below p (non-canonical)")
        if a == _FP12_ONE:
            if not allow_identity:
                raise error("GT encoding is the identity, which is refused here")
            return cls.one()
        if _fp12_pow(a, R) != _FP12_ONE:
            raise error("GT encoding: the element is not in the subgroup of order r")
        return cls(raw)

    def to_bytes(self) -> bytes:
        """The canonical 576-byte encoding (spec section 4.3)."""
        return self._bytes

    def __bytes__(self) -> bytes:
        return self._bytes

    def is_identity(self) -> bool:
        return hashing.compare_digest(self._bytes, _fp12_to_bytes(_FP12_ONE))

    def _other(self, other: object) -> GT:
        if not isinstance(other, GT):
            raise ParameterError("GT operations need another GT element")
        return other

    def __mul__(self, other: object) -> GT:
        other = self._other(other)
        if self._ark is not None and other._ark is not None:
            return GT._from_ark(self._ark * other._ark)
        return GT(_fp12_to_bytes(_fp12_mul(_fp12_from_bytes(self._bytes), _fp12_from_bytes(other._bytes))))

    def inverse(self) -> GT:
        """a^-1 = a^(p^6) (conjugation), valid because a lies in GT."""
        return GT(_fp12_to_bytes(_fp12_conjugate(_fp12_from_bytes(self._bytes))))

    def __truediv__(self, other: object) -> GT:
        return self * self._other(other).inverse()

    def __pow__(self, k: object) -> GT:
        """a^k for an int k (taken modulo r, so negative k is allowed)."""
        if not _is_int(k):
            raise ParameterError(f"a GT exponent must be an int, not {type(k).__name__}")
        e = k % R
        if opcount.active():
            opcount.record("gt_exp:bls12_381")
        if self._ark is None:
            return GT(_fp12_to_bytes(_fp12_pow(_fp12_from_bytes(self._bytes), e)))
        acc = _ArkGT.one()
        for bit in bin(e)[2:]:
            acc = acc * acc
            if bit == "1":
                acc = acc * self._ark
        return GT._from_ark(acc)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, GT):
            return NotImplemented
        return hashing.compare_digest(self._bytes, other._bytes)

    def __hash__(self) -> int:
        return hash(("GT", self._bytes))

    def __repr__(self) -> str:
        return "GT(<576-byte element>)"

    def __copy__(self) -> GT:
        return self

    def __deepcopy__(self, memo: dict) -> GT:
        return self

    def __reduce__(self):
        return (GT, (self._bytes,))


# ---------------------------------------------------------------------------
# The pairing (spec section 7)
# ---------------------------------------------------------------------------


def pairing(P1: G1, Q2: G2) -> GT:
    """pairing(P, Q) = e(P, Q)^3: the optimal ate pairing of BLS12-381 cubed,
    that is the Miller value raised to 3 (p^12 - 1) / r, as computed by
    arkworks (spec section 7; checked numerically)."""
    if not isinstance(P1, G1) or not isinstance(Q2, G2):
        raise ParameterError("pairing takes a G1 element and a G2 element")
    opcount.record("pairing:bls12_381")
    return GT._from_ark(_ArkGT.pairing(P1._p, Q2._p))


def multi_pairing(pairs: Sequence[tuple[G1, G2]]) -> GT:
    """The product of e(P_i, Q_i) with one shared final exponentiation."""
    if isinstance(pairs, (str, bytes)) or not isinstance(pairs, Sequence) or not pairs:
        raise ParameterError("multi_pairing takes a non-empty sequence of (G1, G2) pairs")
    g1s, g2s = [], []
    for pair in pairs:
        if (not isinstance(pair, tuple) or len(pair) != 2
                or not isinstance(pair[0], G1) or not isinstance(pair[1], G2)):
            raise ParameterError("multi_pairing takes (G1, G2) pairs")
        g1s.append(pair[0]._p)
        g2s.append(pair[1]._p)
    opcount.record("pairing:bls12_381", len(pairs))  # the shared final exponentiation is not discounted
    return GT._from_ark(_ArkGT.multi_pairing(g1s, g2s))
