"""SAKKE, Sakai-Kasahara Key Encryption, as RFC 6508 (February 2012) specifies it,
on the parameters of RFC 6509 Appendix A (specs/sakke_eccsi.md section 3).

| RFC 6508 section | algorithm | here |
|---|---|---|
| 5.1 | HashToIntegerRange | :func:`HashToIntegerRange`, :func:`hash_to_integer_range_trace` |
| 6.1 | KMS Master Secret z and KMS Public Key Z = [z]P | :func:`KeyGen`, :func:`kms_from_z`, :class:`KmsPublicKey` |
| 6.1.1 | RSK K_(a,T) = [(a + z)^-1]P | :func:`ExtractRSK` |
| 6.1.2 | RSK validation <[a]P + Z, K> = g | :func:`ValidateRSK` |
| 6.2.1 | the Sender: SSV, r, R_(b,S), g^r, H | :func:`Encapsulate`, :func:`encapsulate_with_ssv` |
| 6.2.2 | the Receiver: w, SSV, r, TEST | :func:`Decapsulate`, :func:`decapsulate_trace` |
| 4 | Encapsulated Data = R_(b,S) \\|\\| H, 2L + 1 + n/8 octets | :func:`split_encapsulated_data` |
| RFC 6509 3.2 | identifiers | :class:`protocols.schemes.eccsi.Identifier` |

Roles: the KMS holds z and issues RSKs; a Sender holding the KMS Public Key Z
encapsulates a fresh SSV to an identifier b; the holder of b's RSK
decapsulates it.  Identifiers are octet strings (an RFC 6509 identifier's
encoding); RFC 6508 reads them as integers (OS2IP) where it computes with
them ([b]P, b + z) and as octets in SSV || b.

The curve and pairing are :mod:`protocols.primitives.sakke_curve`.  The two
random values, z and the SSV, are drawn from the injected ``rng``
(specs/conventions.md section 3.2): z = random_range(rng, 2, q), SSV =
random_bits(rng, n); the ``*_with_*`` functions take them as arguments so
that every value of RFC 6508 Appendix A is reproduced.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass

from gmpy2 import mpz

from protocols.errors import InvalidCiphertextError, ParameterError, VerificationError
from protocols.primitives.numtheory import count_modinv
from protocols.primitives.rand import RandomSource, random_bits, random_range
from protocols.primitives.sakke_curve import (
    PARAMETER_SET_1,
    PFp_pow,
    SakkeParameters,
    pairing,
    point_add,
    point_multiply,
)
from protocols.primitives.supersingular import Point
from protocols.schemes.eccsi import Identifier  # noqa: F401 - re-exported: RFC 6509 identifiers

MAX_ID_BYTES = 1024
"""Longest identifier accepted before it is read as an integer (ParameterError).
The integer must also lie in [2, q) (RFC 6508 section 2.2): for Parameter Set 1
every identifier of at most 127 octets with a value of at least 2 does, a
128-octet one only if its value is below q, a longer one never."""

MAX_HASH_INPUT_BYTES = 1 << 20
"""Longest input s of HashToIntegerRange (1 MiB)."""

MAX_RANGE_BITS = 8192
"""Largest bit length of the range bound n of HashToIntegerRange."""


def _bytes(value: object, what: str, limit: int) -> bytes:
    if not isinstance(value, (bytes, bytearray)):
        raise ParameterError(f"{what} must be bytes")
    if len(value) > limit:
        raise ParameterError(f"{what} is longer than {limit} octets")
    return bytes(value)


def _params(params: object) -> SakkeParameters:
    if not isinstance(params, SakkeParameters):
        raise ParameterError("params must be SakkeParameters")
    return params


# ---------------------------------------------------------------------------
# HashToIntegerRange (RFC 6508 section 5.1)
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class HashToIntegerRangeTrace:
    """Every value of RFC 6508 5.1: A, h_0 .. h_l, v_1 .. v_l, and v."""

    A: bytes
    h: tuple[bytes, ...]
    v_parts: tuple[bytes, ...]
    v: int


def hash_to_integer_range_trace(s: bytes, n: int,
                                params: SakkeParameters = PARAMETER_SET_1) -> HashToIntegerRangeTrace:
    """RFC 6508 5.1 with its intermediates, for the hash of ``params``:

    1) A = hashfn(s); 2) h_0 = hashlen zero bits; 3) l = Ceiling(lg(n)/hashlen);
    4) h_i = hashfn(h_(i-1)), v_i = hashfn(h_i || A) for i = 1 .. l;
    5) v' = v_1 || ... || v_l; 6) v = v' mod n.

    lg(n) is the real base-2 logarithm, so Ceiling(lg(n)/hashlen) is
    Ceiling(bitlen(n - 1)/hashlen) for n >= 2 (n = 2^128 gives l = 1, q of 1022
    bits gives l = 4).  n must be an integer in [2, 2^MAX_RANGE_BITS]."""
    params = _params(params)
    s = _bytes(s, "the input s", MAX_HASH_INPUT_BYTES)
    if not isinstance(n, (int, type(mpz(0)))) or isinstance(n, bool) or not 2 <= n <= 1 << MAX_RANGE_BITS:
        raise ParameterError(f"HashToIntegerRange needs an integer n in [2, 2^{MAX_RANGE_BITS}]")
    hashfn, hashlen = params.hashfn, params.hashlen
    A = hashfn(s)
    h = [bytes(hashlen // 8)]
    l = -(-int(n - 1).bit_length() // hashlen)
    v_parts = []
    for _ in range(l):
        h.append(hashfn(h[-1]))
        v_parts.append(hashfn(h[-1] + A))
    v = int.from_bytes(b"".join(v_parts), "big") % int(n)
    return HashToIntegerRangeTrace(A, tuple(h), tuple(v_parts), v)


def HashToIntegerRange(s: bytes, n: int, params: SakkeParameters = PARAMETER_SET_1) -> int:
    """RFC 6508 5.1 HashToIntegerRange(s, n, hashfn): an integer in [0, n)."""
    return hash_to_integer_range_trace(s, n, params).v


# ---------------------------------------------------------------------------
# Identifiers as integers (RFC 6508 sections 2.2, 6.1.1)
# ---------------------------------------------------------------------------


def identifier_integer(params: SakkeParameters, b: bytes) -> int:
    """The identifier b read as an integer (OS2IP), which RFC 6508 2.2 requires
    to lie in [2, q - 1]; ``ParameterError`` otherwise."""
    b = _bytes(b, "the identifier", MAX_ID_BYTES)
    value = int.from_bytes(b, "big")
    if not 2 <= value < params.q:
        raise ParameterError("the identifier read as an integer must lie in [2, q - 1] (RFC 6508 2.2)")
    return value


# ---------------------------------------------------------------------------
# The KMS (RFC 6508 sections 6.1, 6.1.1)
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class SakkeKms:
    """The KMS Master Secret z (in [2, q - 1]) and the KMS Public Key Z = [z]P
    (RFC 6508 6.1).  The representation hides z."""

    params: SakkeParameters
    z: int
    Z: Point

    def __repr__(self) -> str:
        return f"SakkeKms(Z={self.public_key.hex()[:32]}...)"

    @property
    def public_key(self) -> bytes:
        """Z encoded (2L + 1 octets)."""
        return self.params.encode_point(self.Z)


def kms_from_z(params: SakkeParameters, z: int) -> SakkeKms:
    """The KMS keys of a given z in [2, q - 1] (``ParameterError`` otherwise)."""
    params = _params(params)
    if not isinstance(z, (int, type(mpz(0)))) or isinstance(z, bool) or not 2 <= z < params.q:
        raise ParameterError("the KMS Master Secret z lies in [2, q - 1] (RFC 6508 6.1)")
    return SakkeKms(params, int(z), point_multiply(params.p, z, params.P))


def KeyGen(params: SakkeParameters, rng: RandomSource | None) -> SakkeKms:
    """RFC 6508 6.1: z = random_range(rng, 2, q), Z = [z]P."""
    params = _params(params)
    return kms_from_z(params, random_range(rng, 2, int(params.q)))


def ExtractRSK(kms: SakkeKms, a: bytes) -> bytes:
    """RFC 6508 6.1.1: K_(a,T) = [(a + z)^-1 mod q]P, encoded (2L + 1 octets).

    ``ParameterError`` if a is not a valid identifier, or if a + z = 0 mod q
    (then a = q - z and no RSK exists; RFC 6508 does not say what to do, see
    specs/sakke_eccsi.md 5.3: the identifier cannot be served by this KMS)."""
    if not isinstance(kms, SakkeKms):
        raise ParameterError("kms must be a SakkeKms")
    params = kms.params
    a_int = identifier_integer(params, a)
    total = (a_int + kms.z) % params.q
    if total == 0:
        raise ParameterError("a + z = 0 mod q: no RSK exists for this identifier")
    count_modinv(params.q)
    return params.encode_point(point_multiply(params.p, pow(total, -1, int(params.q)), params.P))


# ---------------------------------------------------------------------------
# The receiver's key (RFC 6508 section 6.1.2)
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class KmsPublicKey:
    """A KMS Public Key Z_S checked once as an element of E(F_p)[q] (RFC 6508
    2.2: "a point of order q in E(F_p)"), so that a sender who encapsulates to
    many receivers does not repeat the subgroup check.  Made by :meth:`decode`."""

    params: SakkeParameters
    Z: Point

    @classmethod
    def decode(cls, params: SakkeParameters, data: object) -> KmsPublicKey:
        """``data`` (2L + 1 octets) decoded and checked; ``DecodeError`` for a wrong
        length or prefix, a point off E or outside the subgroup of order q."""
        params = _params(params)
        return cls(params, params.decode_point(data, "the KMS Public Key Z"))

    def encode(self) -> bytes:
        return self.params.encode_point(self.Z)


def _public_key_point(params: SakkeParameters, Z: object) -> Point:
    """Z as a point of E(F_p)[q]: a :class:`KmsPublicKey` of these parameters,
    or its encoding, decoded and checked (``DecodeError``)."""
    if isinstance(Z, KmsPublicKey):
        if Z.params != params:
            raise ParameterError("the KMS Public Key belongs to other parameters")
        return Z.Z
    return KmsPublicKey.decode(params, Z).Z


@dataclass(frozen=True)
class ReceiverKey:
    """A receiver's validated key material: its identifier b, its RSK K_(b,S)
    and the KMS Public Key Z_S, points of E(F_p)[q], and [b]P + Z_S (computed
    once, for step 5 of RFC 6508 6.2.2).  Made only by :func:`ValidateRSK`.
    The representation hides the RSK."""

    params: SakkeParameters
    b: bytes
    K: Point
    Z: Point
    base: Point

    def __repr__(self) -> str:
        return f"ReceiverKey(b={self.b!r})"


def ValidateRSK(params: SakkeParameters, Z: KmsPublicKey | bytes, b: bytes, rsk: bytes) -> ReceiverKey:
    """RFC 6508 6.1.2: the receiver checks its RSK before use.

    b must be a valid identifier (``ParameterError``); Z (a :class:`KmsPublicKey`
    or its encoding) and the RSK are decoded as elements of E(F_p)[q]
    (``DecodeError`` for a wrong length, a point off E or outside the
    subgroup); then <[b]P + Z, K_(b,S)> = g, else ``VerificationError``."""
    params = _params(params)
    b = _bytes(b, "the identifier", MAX_ID_BYTES)
    b_int = identifier_integer(params, b)
    Z_point = _public_key_point(params, Z)
    K = params.decode_point(rsk, "the RSK")
    base = point_add(params.p, point_multiply(params.p, b_int, params.P), Z_point)
    if base.infinity or pairing(params.p, params.q, base, K) != params.g:
        raise VerificationError("<[b]P + Z, K> != g: the RSK does not belong to this identifier "
                                "and KMS (RFC 6508 6.1.2)")
    return ReceiverKey(params, b, K, Z_point, base)


# ---------------------------------------------------------------------------
# Key exchange (RFC 6508 sections 4, 6.2)
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class EncapsulationTrace:
    """Every value of RFC 6508 6.2.1: the SSV (n/8 octets), r, R_(b,S) (encoded),
    g^r (its F_p representative), the mask HashToIntegerRange(g^r, 2^n, Hash),
    H, and the Encapsulated Data R_(b,S) || H."""

    SSV: bytes
    r: int
    R: bytes
    g_r: int
    mask: int
    H: int
    encapsulated: bytes


def _base(params: SakkeParameters, b_int: int, Z: Point) -> Point:
    """[b]P + Z (6.2.1 step 3, 6.2.2 step 5); ParameterError if it is 0 (b = -z mod q)."""
    base = point_add(params.p, point_multiply(params.p, b_int, params.P), Z)
    if base.infinity:
        raise ParameterError("[b]P + Z = 0: no RSK exists for this identifier under this KMS")
    return base


def _encapsulate(params: SakkeParameters, Z: Point, b: bytes, b_int: int,
                 SSV: int) -> EncapsulationTrace | None:
    """Steps 2 to 5 of RFC 6508 6.2.1 on checked inputs; None when r = 0
    (probability about 2^-1021: R_(b,S) would be 0, which has no encoding)."""
    ssv = int(SSV).to_bytes(params.ssv_bytes, "big")
    r = HashToIntegerRange(ssv + b, int(params.q), params)
    if r == 0:
        return None
    R = params.encode_point(point_multiply(params.p, r, _base(params, b_int, Z)))
    g_r = int(PFp_pow(params.p, params.g, r))
    mask = HashToIntegerRange(params.encode_fp(g_r), 1 << params.n, params)
    H = int(SSV) ^ mask
    return EncapsulationTrace(ssv, r, R, g_r, mask, H, R + H.to_bytes(params.ssv_bytes, "big"))


def encapsulate_with_ssv(params: SakkeParameters, Z: KmsPublicKey | bytes, b: bytes,
                         SSV: int) -> EncapsulationTrace:
    """RFC 6508 6.2.1 steps 2 to 5 for a given SSV in [0, 2^n).

    2) r = HashToIntegerRange(SSV || b, q, Hash), SSV as n/8 octets and b as
    given; 3) R_(b,S) = [r]([b]P + Z_S); 4a) g^r in PF_p; 4b) H = SSV XOR
    HashToIntegerRange(g^r, 2^n, Hash), g^r as L octets; 5) R_(b,S) || H, H as
    n/8 octets.  Z is a :class:`KmsPublicKey` or its encoding, decoded and
    checked (``DecodeError``); an SSV for which
    r = 0 is a ``ParameterError`` (:func:`Encapsulate` draws another)."""
    params = _params(params)
    b = _bytes(b, "the identifier", MAX_ID_BYTES)
    b_int = identifier_integer(params, b)
    if not isinstance(SSV, (int, type(mpz(0)))) or isinstance(SSV, bool) or not 0 <= SSV < 1 << params.n:
        raise ParameterError(f"the SSV lies in [0, 2^{params.n}) (RFC 6508 6.2.1 step 1)")
    trace = _encapsulate(params, _public_key_point(params, Z), b, b_int, SSV)
    if trace is None:
        raise ParameterError("r = 0 for this SSV: choose another SSV")
    return trace


def Encapsulate(params: SakkeParameters, Z: KmsPublicKey | bytes, b: bytes,
                rng: RandomSource | None) -> tuple[bytes, bytes]:
    """RFC 6508 6.2.1: SSV = random_bits(rng, n) (step 1), then
    :func:`encapsulate_with_ssv` (an SSV giving r = 0 is drawn again).
    Returns (SSV as n/8 octets, Encapsulated Data of 2L + 1 + n/8 octets)."""
    params = _params(params)
    b = _bytes(b, "the identifier", MAX_ID_BYTES)
    b_int = identifier_integer(params, b)
    Z_point = _public_key_point(params, Z)
    while True:
        trace = _encapsulate(params, Z_point, b, b_int, random_bits(rng, params.n))
        if trace is not None:
            return trace.SSV, trace.encapsulated


def split_encapsulated_data(params: SakkeParameters, data: object) -> tuple[Point, int]:
    """RFC 6508 section 4 and 6.2.2 step 1: R_(b,S) and H from the Encapsulated
    Data.  Exactly 2L + 1 + n/8 octets, and R_(b,S) an element of E(F_p)[q]
    (0x04, coordinates below p, on E, [q]R = 0); every failure is an
    ``InvalidCiphertextError``."""
    params = _params(params)
    length = params.point_bytes + params.ssv_bytes
    if not isinstance(data, (bytes, bytearray)) or len(data) != length:
        raise InvalidCiphertextError(f"SAKKE Encapsulated Data is {length} octets")
    R = params.decode_point(bytes(data[:params.point_bytes]), "R_(b,S)", InvalidCiphertextError)
    return R, int.from_bytes(data[params.point_bytes:], "big")


@dataclass(frozen=True)
class DecapsulationTrace:
    """Every value of RFC 6508 6.2.2: w, the SSV (n/8 octets), r and TEST (encoded)."""

    w: int
    SSV: bytes
    r: int
    TEST: bytes


def decapsulate_trace(key: ReceiverKey, encapsulated: bytes) -> DecapsulationTrace:
    """RFC 6508 6.2.2 with its intermediates.

    1) parse (:func:`split_encapsulated_data`, ``InvalidCiphertextError``);
    2) w = <R_(b,S), K_(b,S)>; 3) SSV = H XOR HashToIntegerRange(w, 2^n, Hash);
    4) r = HashToIntegerRange(SSV || b, q, Hash); 5) TEST = [r]([b]P + Z_S),
    and TEST != R_(b,S) is a ``VerificationError`` (the SSV is not returned)."""
    if not isinstance(key, ReceiverKey):
        raise ParameterError("the key must be a ReceiverKey made by ValidateRSK")
    params = key.params
    R, H = split_encapsulated_data(params, encapsulated)
    w = int(pairing(params.p, params.q, R, key.K))
    SSV = H ^ HashToIntegerRange(params.encode_fp(w), 1 << params.n, params)
    ssv = SSV.to_bytes(params.ssv_bytes, "big")
    r = HashToIntegerRange(ssv + key.b, int(params.q), params)
    TEST = point_multiply(params.p, r, key.base)
    if TEST.infinity or not hmac.compare_digest(params.encode_point(TEST), params.encode_point(R)):
        raise VerificationError("TEST != R_(b,S): the Encapsulated Data fail their check "
                                "(RFC 6508 6.2.2 step 5)")
    return DecapsulationTrace(w, ssv, r, params.encode_point(TEST))


def Decapsulate(key: ReceiverKey, encapsulated: bytes) -> bytes:
    """RFC 6508 6.2.2: the SSV (n/8 octets) of valid Encapsulated Data for the
    key's identifier; ``InvalidCiphertextError`` for malformed data and
    ``VerificationError`` when the check of step 5 fails."""
    return decapsulate_trace(key, encapsulated).SSV
