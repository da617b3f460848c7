"""Boneh-Boyen BB1 identity-based encryption as RFC 5091 section 6 specifies
it (specs/ibe.md sections 3.6 and 3.7).

| RFC 5091 section | algorithm | here |
|---|---|---|
| 6.1.1, 6.1.2 | BBsetup, BBsetup1 | :func:`BBsetup` |
| 6.2.1 | BBderivePubl | :func:`BBderivePubl` |
| 6.3.1 | BBextractPriv | :func:`BBextractPriv`, :func:`BBextractPriv_with_r` |
| 6.4.1 | BBencrypt | :func:`BBencrypt`, :func:`BBencrypt_with_s` |
| 6.5.1 | BBdecrypt | :func:`BBdecrypt` |
| 8 | BB1PublicParameters, BB1MasterSecret, BB1PrivateKeyBlock, BB1CiphertextBlock | ``to_der`` / ``from_der`` of each class |

The supporting algorithms (HashToRange, HashBytes, the hash functions and
security levels, the curve and generator of setup) are those of
:mod:`protocols.schemes.bf`; the pairing arithmetic is
:mod:`protocols.primitives.supersingular`.

Roles as for BF: the PKG holds (alpha, beta, gamma) and extracts keys; anyone
with the public parameters encrypts; the holder of (D_0, D_1) decrypts.
Unlike BF, key extraction is randomised (r), and the ciphertext carries its
own integrity tag u.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from gmpy2 import mpz

from protocols.errors import InvalidCiphertextError, KeyMismatchError, ParameterError, VerificationError
from protocols.primitives import hashing
from protocols.primitives.rand import RandomSource, random_range, resolve
from protocols.primitives.supersingular import (
    MIN_P_BITS,
    MIN_Q_BITS,
    TYPE1_CURVE_OID,
    Canonical,
    Fp2,
    Point,
    PointAdd1,
    PointMultiply,
    Type1Curve,
    Pairing1,
    PairingRatio1,
    der_fp_point,
    der_integer,
    der_octet_string,
    der_oid,
    der_sequence,
    read_der,
)
from protocols.schemes.bf import (
    HASH_FUNCTIONS,
    VERSION,
    HashBytes,
    HashFunction,
    HashToRange,
    check_version,
    generate_type1_group,
    read_curve,
    read_hashfcn,
    read_version,
    security_level,
)

EMBEDDING_DEGREE = 2
"""k, a public parameter of BB1 (RFC 5091 6.1.2 step 5); always 2 for type-1 curves."""


def _octets(value: object, what: str) -> bytes:
    if not isinstance(value, (bytes, bytearray)):
        raise ParameterError(f"{what} must be bytes, not {type(value).__name__}")
    return bytes(value)


def _xor(a: bytes, b: bytes) -> bytes:
    return bytes(x ^ y for x, y in zip(a, b, strict=True))


def _is_scalar(value: object) -> bool:
    return isinstance(value, (int, type(mpz(0)))) and not isinstance(value, bool)


# ---------------------------------------------------------------------------
# Parameters, keys, ciphertexts (RFC 5091 sections 6.1-6.5, 8)
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class BB1PublicParameters:
    """The public parameters (version, k, E, p, q, P, P_1, P_2, P_3, v,
    hashfcn) of RFC 5091 section 6.1.2; E and (p, q) are the
    :class:`Type1Curve`, k = 2.  Validated on construction (``ParameterError``):
    version 2; P, P_1, P_2, P_3 of order q; v = e'(P_1, P_2) (which also
    makes v an element of order q, as P_1, P_2 != 0); hashfcn one of
    RFC 5091's."""

    curve: Type1Curve
    P: Point
    P_1: Point
    P_2: Point
    P_3: Point
    v: Fp2
    hashfcn: HashFunction
    version: int = VERSION

    def __post_init__(self) -> None:
        check_version(self.version)
        if not isinstance(self.curve, Type1Curve):
            raise ParameterError("curve must be a Type1Curve")
        if self.hashfcn not in HASH_FUNCTIONS.values():
            raise ParameterError("hashfcn must be one of RFC 5091's hash functions")
        E = self.curve
        for name in ("P", "P_1", "P_2", "P_3"):
            E.check_point(getattr(self, name), name)
        if not isinstance(self.v, Fp2) or self.v.p != E.p:
            raise ParameterError("v must be an element of the curve's F_p^2")
        if self.v != Pairing1(E, self.P_1, self.P_2):
            raise ParameterError("v is not e'(P_1, P_2) (RFC 5091 6.1.2 step 4(e))")

    @property
    def k(self) -> int:
        return EMBEDDING_DEGREE

    @property
    def hashlen(self) -> int:
        return self.hashfcn.hashlen

    def to_der(self) -> bytes:
        """BB1PublicParameters (RFC 5091 section 8), DER; v is an FpPoint (x = a_0, y = a_1)."""
        E = self.curve
        points = [der_fp_point(X.x, X.y) for X in (self.P, self.P_1, self.P_2, self.P_3)]
        return der_sequence(der_integer(self.version), der_oid(TYPE1_CURVE_OID),
                            der_integer(E.p), der_integer(E.q), *points,
                            der_fp_point(self.v.a0, self.v.a1), der_oid(self.hashfcn.oid))

    @classmethod
    def from_der(cls, data: bytes, *, min_p_bits: int = MIN_P_BITS,
                 min_q_bits: int = MIN_Q_BITS) -> BB1PublicParameters:
        """Strict inverse of :meth:`to_der`: ``DecodeError`` for malformed DER,
        another version, curve or hashfcn; ``ParameterError`` for values that
        fail validation."""
        what = "BB1PublicParameters"
        reader = read_der(data, what)
        read_version(reader, what)
        E = read_curve(reader, what, min_p_bits, min_q_bits)
        P, P_1, P_2, P_3 = (Point(*reader.fp_point(f"{what}.{name}"))
                            for name in ("pointP", "pointP1", "pointP2", "pointP3"))
        a0, a1 = reader.fp_point(f"{what}.v")
        if a0 >= E.p or a1 >= E.p:
            raise ParameterError("v has a coordinate outside [0, p)")
        hashfcn = read_hashfcn(reader, what)
        reader.end()
        return cls(E, P, P_1, P_2, P_3, E.fp2(a0, a1), hashfcn)


@dataclass(frozen=True)
class BB1MasterSecret:
    """The master secret (alpha, beta, gamma) of RFC 5091 6.1.2 step 4(a), each
    in [1, q - 1] (checked against the parameters where it is used).  Never
    shown in ``repr``."""

    alpha: mpz = field(repr=False)
    beta: mpz = field(repr=False)
    gamma: mpz = field(repr=False)
    version: int = VERSION

    def __post_init__(self) -> None:
        check_version(self.version)
        for name in ("alpha", "beta", "gamma"):
            value = getattr(self, name)
            if not _is_scalar(value) or value < 1:
                raise ParameterError(f"the master secret {name} is an integer >= 1")
            object.__setattr__(self, name, mpz(value))

    def to_der(self) -> bytes:
        """BB1MasterSecret (RFC 5091 section 8), DER."""
        return der_sequence(der_integer(self.version), der_integer(self.alpha),
                            der_integer(self.beta), der_integer(self.gamma))

    @classmethod
    def from_der(cls, data: bytes) -> BB1MasterSecret:
        reader = read_der(data, "BB1MasterSecret")
        read_version(reader, "BB1MasterSecret")
        values = [reader.integer(f"BB1MasterSecret.{name}") for name in ("alpha", "beta", "gamma")]
        reader.end()
        return cls(*values)


@dataclass(frozen=True)
class BB1PrivateKey:
    """The private key (D_0, D_1) of an identity (RFC 5091 6.3.1), two points of
    order q.  Validated against the parameters where it is used; never shown
    in ``repr``."""

    D_0: Point = field(repr=False)
    D_1: Point = field(repr=False)
    version: int = VERSION

    def __post_init__(self) -> None:
        check_version(self.version)
        if not (isinstance(self.D_0, Point) and isinstance(self.D_1, Point)):
            raise ParameterError("D_0 and D_1 must be points")

    def to_der(self) -> bytes:
        """BB1PrivateKeyBlock (RFC 5091 section 8), DER."""
        return der_sequence(der_integer(self.version), der_fp_point(self.D_0.x, self.D_0.y),
                            der_fp_point(self.D_1.x, self.D_1.y))

    @classmethod
    def from_der(cls, data: bytes, params: BB1PublicParameters) -> BB1PrivateKey:
        """Strict inverse of :meth:`to_der`; the points are validated against
        ``params`` (``ParameterError``)."""
        what = "BB1PrivateKeyBlock"
        reader = read_der(data, what)
        read_version(reader, what)
        D_0 = Point(*reader.fp_point(f"{what}.pointD0"))
        D_1 = Point(*reader.fp_point(f"{what}.pointD1"))
        reader.end()
        key = cls(D_0, D_1)
        _check_key(params, key)
        return key


@dataclass(frozen=True)
class BB1Ciphertext:
    """A ciphertext (u, C_0, C_1, y) in Z_q x E(F_p) x E(F_p) x {0..255}^|m|
    (RFC 5091 6.4.1 step 8).  Validated by :func:`BBdecrypt` and
    :meth:`from_der` (``InvalidCiphertextError``)."""

    u: mpz
    C_0: Point
    C_1: Point
    y: bytes
    version: int = VERSION

    def to_der(self) -> bytes:
        """BB1CiphertextBlock (RFC 5091 section 8: pointChi0, pointChi1, nu, y), DER."""
        return der_sequence(der_integer(self.version), der_fp_point(self.C_0.x, self.C_0.y),
                            der_fp_point(self.C_1.x, self.C_1.y), der_integer(self.u),
                            der_octet_string(self.y))

    @classmethod
    def from_der(cls, data: bytes, params: BB1PublicParameters) -> BB1Ciphertext:
        """Strict inverse of :meth:`to_der`: ``DecodeError`` for malformed DER
        or another version; ``InvalidCiphertextError`` for points not of
        order q or u outside [0, q)."""
        what = "BB1CiphertextBlock"
        reader = read_der(data, what)
        read_version(reader, what)
        C_0 = Point(*reader.fp_point(f"{what}.pointChi0"))
        C_1 = Point(*reader.fp_point(f"{what}.pointChi1"))
        u = reader.integer(f"{what}.nu")
        y = reader.octet_string(f"{what}.y")
        reader.end()
        ciphertext = cls(u, C_0, C_1, y)
        _check_ciphertext(params, ciphertext)
        return ciphertext


def _check_key(params: BB1PublicParameters, key: object) -> BB1PrivateKey:
    if not isinstance(key, BB1PrivateKey):
        raise ParameterError("key must be a BB1PrivateKey")
    params.curve.check_point(key.D_0, "the private key D_0")
    params.curve.check_point(key.D_1, "the private key D_1")
    return key


def _check_ciphertext(params: BB1PublicParameters, ciphertext: object) -> BB1Ciphertext:
    if not isinstance(ciphertext, BB1Ciphertext):
        raise InvalidCiphertextError("a BB1 ciphertext must be a BB1Ciphertext")
    if ciphertext.version != VERSION:
        raise InvalidCiphertextError(f"unknown ciphertext version (only {VERSION} is defined)")
    if not _is_scalar(ciphertext.u) or not 0 <= ciphertext.u < params.curve.q:
        raise InvalidCiphertextError("ciphertext component u must be an integer in [0, q)")
    params.curve.check_point(ciphertext.C_0, "ciphertext component C_0", InvalidCiphertextError)
    params.curve.check_point(ciphertext.C_1, "ciphertext component C_1", InvalidCiphertextError)
    if not isinstance(ciphertext.y, (bytes, bytearray)):
        raise InvalidCiphertextError("ciphertext component y must be bytes")
    return ciphertext


def two_pass_hash(hashfcn: HashFunction, data: bytes) -> bytes:
    """The dual-pass hash of RFC 5091 6.4.1 steps 6(a) and 7(a):
    first = hashfcn(data); second = hashfcn(first || data); second || first."""
    first = hashfcn(data)
    return hashfcn(first + data) + first


def sigma_string(params: BB1PublicParameters, C_0: Point, C_1: Point, y: bytes, psi: bytes) -> bytes:
    """sigma = (y_1) || (x_1) || (y_0) || (x_0) || y || psi, coordinates as l
    octets (RFC 5091 6.4.1 step 7(a)i, 6.5.1 step 4(a)i)."""
    E = params.curve
    return E.encode_fp(C_1.y) + E.encode_fp(C_1.x) + E.encode_fp(C_0.y) + E.encode_fp(C_0.x) + y + psi


# ---------------------------------------------------------------------------
# The algorithms (RFC 5091 sections 6.1-6.5)
# ---------------------------------------------------------------------------


def BBsetup(n: int = 3072, rng: RandomSource | None = None) -> tuple[BB1PublicParameters, BB1MasterSecret]:
    """RFC 5091 Algorithms 6.1.1/6.1.2 (BBsetup, BBsetup1): fresh public
    parameters (version 2) and master secret at security parameter n (2048,
    3072, 7680 or 15360; 1024 is refused as by BFsetup).  Draws: the curve and
    P as :func:`protocols.schemes.bf.generate_type1_group`, then alpha, beta,
    gamma in that order, each RandomRange(rng, 1, q), i.e. in [1, q - 1]."""
    level = security_level(n)
    source = resolve(rng)
    E, P = generate_type1_group(level.n_p, level.n_q, source)
    alpha, beta, gamma = (mpz(random_range(source, 1, int(E.q))) for _ in range(3))
    P_1, P_2, P_3 = (PointMultiply(E, x, P) for x in (alpha, beta, gamma))
    params = BB1PublicParameters(E, P, P_1, P_2, P_3, Pairing1(E, P_1, P_2), level.hashfcn)
    return params, BB1MasterSecret(alpha, beta, gamma)


def BBderivePubl(params: BB1PublicParameters, id: bytes) -> mpz:
    """RFC 5091 Algorithm 6.2.1 (BBderivePubl): h_id = HashToRange(id, q, hashfcn)."""
    return HashToRange(_octets(id, "the identity"), params.curve.q, params.hashfcn)


def _check_master_secret(params: BB1PublicParameters, master_secret: object) -> BB1MasterSecret:
    if not isinstance(master_secret, BB1MasterSecret):
        raise ParameterError("master_secret must be a BB1MasterSecret")
    E = params.curve
    for x, X in ((master_secret.alpha, params.P_1), (master_secret.beta, params.P_2),
                 (master_secret.gamma, params.P_3)):
        if not 1 <= x < E.q or PointMultiply(E, x, params.P) != X:
            raise KeyMismatchError("the master secret does not belong to these public parameters")
    return master_secret


def BBextractPriv_with_r(params: BB1PublicParameters, master_secret: BB1MasterSecret,
                         id: bytes, r: int) -> BB1PrivateKey:
    """RFC 5091 Algorithm 6.3.1 (BBextractPriv) with the random value r given
    (r in [1, q - 1], else ``ParameterError``): for test vectors.

    D_0 = [alpha beta + r (alpha h_id + gamma) mod q]P, D_1 = [r]P.  The
    master secret must belong to ``params`` (``KeyMismatchError``).  If D_0
    would be 0 (probability 1/q) ``ParameterError`` asks for another r."""
    msk = _check_master_secret(params, master_secret)
    E = params.curve
    if not _is_scalar(r) or not 1 <= r < E.q:
        raise ParameterError("r must be an integer in [1, q - 1]")
    h_id = BBderivePubl(params, id)                                          # step 2(a)
    y = (msk.alpha * msk.beta + r * (msk.alpha * h_id + msk.gamma)) % E.q    # step 2(b)
    if y == 0:
        raise ParameterError("this r makes D_0 the point at infinity; draw another")
    return BB1PrivateKey(PointMultiply(E, y, params.P), PointMultiply(E, r, params.P))


def BBextractPriv(params: BB1PublicParameters, master_secret: BB1MasterSecret, id: bytes,
                  rng: RandomSource | None = None) -> BB1PrivateKey:
    """RFC 5091 Algorithm 6.3.1 (BBextractPriv): r = RandomRange(rng, 1, q)
    (step 1; drawn again in the negligible case that D_0 would be 0)."""
    msk = _check_master_secret(params, master_secret)
    E = params.curve
    h_id = BBderivePubl(params, id)
    source = resolve(rng)
    while True:
        r = mpz(random_range(source, 1, int(E.q)))
        if (msk.alpha * msk.beta + r * (msk.alpha * h_id + msk.gamma)) % E.q != 0:
            return BBextractPriv_with_r(params, msk, id, r)


def BBencrypt_with_s(params: BB1PublicParameters, id: bytes, m: bytes, s: int) -> BB1Ciphertext:
    """RFC 5091 Algorithm 6.4.1 (BBencrypt) with the random value s given (s in
    [1, q - 1], else ``ParameterError``): for test vectors.  If C_1 would be
    0 (alpha h_id + gamma = 0 mod q: probability 1/q per identity) there is no
    ciphertext for ``id``: ``ParameterError``."""
    m = _octets(m, "the plaintext m")
    E, hashfcn = params.curve, params.hashfcn
    if not _is_scalar(s) or not 1 <= s < E.q:
        raise ParameterError("s must be an integer in [1, q - 1]")
    w = params.v ** s                                                        # step 2
    C_0 = PointMultiply(E, s, params.P)                                      # step 3
    h_id = BBderivePubl(params, id)                                          # step 4(a)
    C_1 = PointAdd1(E, PointMultiply(E, s * h_id % E.q, params.P_1),         # steps 4(b)-(c)
                    PointMultiply(E, s, params.P_3))
    if C_1.infinity:
        raise ParameterError("this identity gives C_1 = 0: it cannot be encrypted to")
    psi = Canonical(E, 1, w)                                                 # step 5(a)
    h_prime = two_pass_hash(hashfcn, psi)                                    # step 6(a)
    y = _xor(HashBytes(len(m), h_prime, hashfcn), m)                         # step 6(b)
    h_second = two_pass_hash(hashfcn, sigma_string(params, C_0, C_1, y, psi))    # step 7(a)
    rho = HashToRange(h_second, E.q, hashfcn)                                # step 7(b)i
    u = (s + rho) % E.q                                                      # step 7(b)ii
    return BB1Ciphertext(u, C_0, C_1, y)                                     # step 8


def BBencrypt(params: BB1PublicParameters, id: bytes, m: bytes,
              rng: RandomSource | None = None) -> BB1Ciphertext:
    """RFC 5091 Algorithm 6.4.1 (BBencrypt): encrypt m (a session key, any
    length) to ``id``; s = RandomRange(rng, 1, q) (step 1)."""
    m = _octets(m, "the plaintext m")
    s = mpz(random_range(rng, 1, int(params.curve.q)))
    return BBencrypt_with_s(params, id, m, s)


def BBdecrypt(params: BB1PublicParameters, key: BB1PrivateKey, ciphertext: BB1Ciphertext) -> bytes:
    """RFC 5091 Algorithm 6.5.1 (BBdecrypt).

    Validates first: D_0 and D_1 are points of order q (``ParameterError``);
    u is in [0, q), C_0 and C_1 are points of order q other than 0
    (``InvalidCiphertextError``).  Then decrypts, and returns m only if
    w = v^s and C_0 = [s]P (step 5); otherwise raises ``VerificationError``
    (a wrong key, a tampered or truncated component)."""
    _check_key(params, key)
    c = _check_ciphertext(params, ciphertext)
    E, hashfcn = params.curve, params.hashfcn
    w = PairingRatio1(E, c.C_0, key.D_0, c.C_1, key.D_1)                     # step 1
    psi = Canonical(E, 1, w)                                                 # step 2(a)
    h_prime = two_pass_hash(hashfcn, psi)                                    # step 3(a)
    y = bytes(c.y)
    m = _xor(HashBytes(len(y), h_prime, hashfcn), y)                         # step 3(b)
    h_second = two_pass_hash(hashfcn, sigma_string(params, c.C_0, c.C_1, y, psi))  # step 4(a)
    s = (c.u - HashToRange(h_second, E.q, hashfcn)) % E.q                    # step 4(b)
    w_ok = hashing.compare_digest(psi, Canonical(E, 1, params.v ** s))          # step 5(a)
    C_0_check = PointMultiply(E, s, params.P)                                # step 5(b)
    c0_ok = not C_0_check.infinity and C_0_check == c.C_0
    if not (w_ok and c0_ok):                                                 # step 6
        raise VerificationError("BB1 ciphertext rejected: the consistency check of "
                                "RFC 5091 6.5.1 step 5 failed")
    return m
