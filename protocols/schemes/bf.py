"""Boneh-Franklin identity-based encryption as RFC 5091 section 5 specifies it,
with the supporting hash algorithms of section 4 (specs/ibe.md sections 3.4, 3.5 and 3.7).

| RFC 5091 section | algorithm | here |
|---|---|---|
| 4.1.1 | HashToRange | :func:`HashToRange` |
| 4.2.1 | HashBytes | :func:`HashBytes` |
| 4.4.1, 4.4.2 | HashToPoint, HashToPoint1 | :func:`HashToPoint` |
| 5.1.1, 5.1.2 | BFsetup, BFsetup1 | :func:`BFsetup`, :func:`generate_type1_group` |
| 5.2.1 | BFderivePubl | :func:`BFderivePubl` |
| 5.3.1 | BFextractPriv | :func:`BFextractPriv` |
| 5.4.1 | BFencrypt | :func:`BFencrypt`, :func:`BFencrypt_with_rho` |
| 5.5.1 | BFdecrypt | :func:`BFdecrypt` |
| 8 | BFPublicParameters, BFMasterSecret, BFPrivateKeyBlock, BFCiphertextBlock | ``to_der`` / ``from_der`` of each class |

The pairing arithmetic is :mod:`protocols.primitives.supersingular`.  The hash
functions (HashToRange, HashBytes), the hash-function registry and the
security levels are shared with BB1 (:mod:`protocols.schemes.bb1`).

Roles: the private key generator (PKG) runs BFsetup and BFextractPriv and
holds the master secret; anyone holding the public parameters encrypts to an
identity; the holder of that identity's private key decrypts.

Intentional departures from the RFC text are listed in specs/ibe.md section 3.9:
identities and messages are octet strings (RFC 5091's "Bob" is hashed as the
ASCII bytes 42 6f 62); rho is hashlen octets (5.4.1 step 3 says "hashlen-bit");
HashBytes accepts any b, as its own step 4 does (the prose caps b at hashlen);
BFsetup refuses n = 1024 (the 80-bit level of section 9).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from types import MappingProxyType

import gmpy2
from gmpy2 import mpz

from protocols.errors import (
    DecodeError,
    InvalidCiphertextError,
    KeyMismatchError,
    ParameterError,
    VerificationError,
)
from protocols.primitives import hashing, opcount
from protocols.primitives.numtheory import SMALL_PRIMES_PRODUCT, is_probable_prime
from protocols.primitives.rand import RandomSource, random_below, random_range, resolve
from protocols.primitives.supersingular import (
    MIN_P_BITS,
    MIN_Q_BITS,
    TYPE1_CURVE_OID,
    Canonical,
    DerReader,
    Point,
    PointMultiply,
    Type1Curve,
    Pairing1,
    curve_label,
    der_fp_point,
    der_integer,
    der_octet_string,
    der_oid,
    der_sequence,
    point_multiply_uncounted,
    read_der,
)

VERSION = 2
"""The only version of the public parameters (RFC 5091 sections 5.1.1, 8)."""

# ---------------------------------------------------------------------------
# Hash functions and security levels (RFC 5091 sections 5.1.2, 6.1.2, 8, 9)
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class HashFunction:
    """A hash function ``hashfcn`` named by its OID (RFC 5091 sections 5.1.2, 8).
    Calling it hashes bytes: ``hashfcn(data)``."""

    name: str
    oid: str
    hashlen: int
    """Output length in octets (the RFC's hashlen)."""
    hashlib_name: str = field(repr=False)
    """The name :mod:`protocols.primitives.hashing` knows it by (its blocks are counted)."""

    def __call__(self, data: bytes) -> bytes:
        return bytes(hashing.new(self.hashlib_name, bytes(data)).digest())


SHA1 = HashFunction("SHA-1", "1.3.14.3.2.26", 20, "sha1")
"""RFC 5091 prints its OID as 1.3.14.3.2.16 in section 7.2 (a slip, specs/ibe.md 3.9.7)."""
SHA224 = HashFunction("SHA-224", "2.16.840.1.101.3.4.2.4", 28, "sha224")
SHA256 = HashFunction("SHA-256", "2.16.840.1.101.3.4.2.1", 32, "sha256")
SHA384 = HashFunction("SHA-384", "2.16.840.1.101.3.4.2.2", 48, "sha384")
SHA512 = HashFunction("SHA-512", "2.16.840.1.101.3.4.2.3", 64, "sha512")

HASH_FUNCTIONS = MappingProxyType({h.oid: h for h in (SHA1, SHA224, SHA256, SHA384, SHA512)})
"""The five hash functions of RFC 5091 sections 5.1.2 and 8, by OID."""


def hash_function(oid: str) -> HashFunction:
    """The hash function with this OID; ``ParameterError`` for any other."""
    if not isinstance(oid, str) or oid not in HASH_FUNCTIONS:
        raise ParameterError(f"unknown hashfcn {oid!r}: RFC 5091 names SHA-1 and SHA-2 only")
    return HASH_FUNCTIONS[oid]


@dataclass(frozen=True)
class SecurityLevel:
    """One row of RFC 5091 sections 5.1.2 step 2 / 6.1.2 step 1 and section 9 Table 1."""

    n: int
    """The security parameter (the comparable RSA modulus size)."""
    bits: int
    """Bits of security the RFC claims for it (see specs/ibe.md 3.10.1)."""
    n_p: int
    n_q: int
    hashfcn: HashFunction


SECURITY_LEVELS = MappingProxyType({
    level.n: level for level in (
        SecurityLevel(1024, 80, 512, 160, SHA1),
        SecurityLevel(2048, 112, 1024, 224, SHA224),
        SecurityLevel(3072, 128, 1536, 256, SHA256),
        SecurityLevel(7680, 192, 3840, 384, SHA384),
        SecurityLevel(15360, 256, 7680, 512, SHA512),
    )
})
"""The five levels of RFC 5091, by n."""

SETUP_LEVELS = (2048, 3072, 7680, 15360)
"""The values of n that BFsetup and BBsetup accept.  n = 1024 (80 bits) is
refused: RFC 5091 section 9 says it SHOULD NOT protect information past 2010,
and its p and q fall below the default minimum of the curve validation."""


def _octets(value: object, what: str) -> bytes:
    if not isinstance(value, (bytes, bytearray)):
        raise ParameterError(f"{what} must be bytes, not {type(value).__name__}")
    return bytes(value)


def _xor(a: bytes, b: bytes) -> bytes:
    return bytes(x ^ y for x, y in zip(a, b, strict=True))


# ---------------------------------------------------------------------------
# Supporting algorithms (RFC 5091 section 4)
# ---------------------------------------------------------------------------


def HashToRange(s: bytes, n: int, hashfcn: HashFunction) -> mpz:
    """RFC 5091 Algorithm 4.1.1 (HashToRange): s hashed to an integer in [0, n).

    h_0 = hashlen zero octets; for i = 1, 2: h_i = hashfcn(h_(i-1) || s),
    v_i = 256^hashlen * v_(i-1) + Value(h_i); v = v_2 mod n (the RFC's step 5
    prints v_l).  The RFC's requirement n < 2^(hashlen) cannot hold for
    HashToPoint, which calls this with n = p; it is not enforced (specs/ibe.md
    3.9.6).  ``ParameterError`` for n < 1 or s not bytes."""
    s = _octets(s, "the string s")
    if not isinstance(hashfcn, HashFunction):
        raise ParameterError("hashfcn must be a HashFunction")
    if isinstance(n, bool) or not isinstance(n, (int, type(mpz(0)))) or n < 1:
        raise ParameterError("HashToRange needs an integer n >= 1")
    h = bytes(hashfcn.hashlen)
    v = mpz(0)
    for _ in range(2):
        h = hashfcn(h + s)
        v = (v << (8 * hashfcn.hashlen)) + mpz(int.from_bytes(h, "big"))
    return v % n


def HashBytes(b: int, p: bytes, hashfcn: HashFunction) -> bytes:
    """RFC 5091 Algorithm 4.2.1 (HashBytes): b pseudo-random octets keyed by p.

    K = hashfcn(p); h_0 = hashlen zero octets; h_i = hashfcn(h_(i-1)),
    r_i = hashfcn(h_i || K) for i = 1 .. Ceiling(b / hashlen); the result is the
    leftmost b octets of r_1 || ... || r_l.  Any b >= 0 is accepted, as step 4
    defines (the prose's "b MUST be <= hashlen" contradicts it; specs/ibe.md 3.9.6)."""
    p = _octets(p, "the seed p")
    if isinstance(b, bool) or not isinstance(b, int) or b < 0:
        raise ParameterError("HashBytes needs an integer b >= 0")
    K = hashfcn(p)
    h = bytes(hashfcn.hashlen)
    out = bytearray()
    for _ in range(-(-b // hashfcn.hashlen)):
        h = hashfcn(h)
        out += hashfcn(h + K)
    return bytes(out[:b])


def HashToPoint(E: Type1Curve, id: bytes, hashfcn: HashFunction) -> Point:
    """RFC 5091 Algorithms 4.4.1/4.4.2 (HashToPoint, HashToPoint1): Q_id of
    order q in E(F_p).

    y = HashToRange(id, p); x = (y^2 - 1)^((2p - 1)/3) mod p; Q_id = [(p + 1)/q](x, y).
    If Q_id is the point at infinity (probability about 1/q) there is no
    public key for ``id``: ``ParameterError``."""
    id = _octets(id, "the identity")
    y = HashToRange(id, E.p, hashfcn)
    if opcount.active():
        opcount.record(f"hash_to_curve:{curve_label(E.p)}")
    Q = point_multiply_uncounted(E, E.cofactor, Point(E.cube_root(y * y - 1), y))
    if Q.infinity:
        raise ParameterError("the identity hashes to the point at infinity")
    return Q


# ---------------------------------------------------------------------------
# Setup of the curve and generator (RFC 5091 5.1.2 steps 3-4 = 6.1.2 steps 2-3)
# ---------------------------------------------------------------------------


def solinas_candidates(n_q: int) -> list[int]:
    """Every n_q-bit integer 2^a + s 2^b + c with s, c in {-1, +1} and
    1 <= b < a, in a fixed order (s = -1 first, then b and c ascending), each
    once.  BFsetup draws q among them (specs/ibe.md 3.5.1)."""
    if isinstance(n_q, bool) or not isinstance(n_q, int) or n_q < 8:
        raise ParameterError("Solinas primes are drawn with at least 8 bits")
    found: dict[int, None] = {}
    for s, a in ((-1, n_q), (1, n_q - 1)):
        for b in range(1, a):
            for c in (-1, 1):
                q = (1 << a) + s * (1 << b) + c
                if q.bit_length() == n_q:
                    found.setdefault(q, None)
    return list(found)


def generate_type1_group(n_p: int, n_q: int, rng: RandomSource | None = None, *,
                         min_p_bits: int = MIN_P_BITS,
                         min_q_bits: int = MIN_Q_BITS) -> tuple[Type1Curve, Point]:
    """RFC 5091 Algorithm 5.1.2 steps 3-4 (and 6.1.2 steps 2-3): a type-1
    curve with an n_q-bit Solinas prime q and an n_p-bit p = 12 r q - 1, and a
    point P of order q.  Draws from ``rng`` in this order (normative for
    reproducibility, specs/ibe.md 3.5.1):

    1. q: an index into :func:`solinas_candidates` (RandomBelow), until the
       candidate passes ``is_probable_prime`` (whose Miller-Rabin bases are
       drawn from ``rng`` too);
    2. r: RandomRange over the r giving an n_p-bit p, until q does not
       divide r, p has no prime factor below 2000, and p passes ``is_probable_prime``;
    3. P': y = RandomBelow(p) (:meth:`Type1Curve.random_point`); P = [12 r]P'.
       If P = 0 the procedure starts over at step 1, as the RFC says.
    """
    source = resolve(rng)
    for ints in (n_p, n_q):
        if isinstance(ints, bool) or not isinstance(ints, int):
            raise ParameterError("n_p and n_q must be integers")
    if n_p < n_q + 8:
        raise ParameterError("n_p must exceed n_q by at least 8 bits")
    candidates = solinas_candidates(n_q)
    while True:
        while True:
            q = candidates[random_below(source, len(candidates))]
            if is_probable_prime(q, source):
                break
        twelve_q = 12 * q
        r_min = -(-((1 << (n_p - 1)) + 1) // twelve_q)
        r_max = (1 << n_p) // twelve_q
        while True:
            r = random_range(source, r_min, r_max + 1)
            p = mpz(twelve_q) * r - 1
            if r % q == 0 or gmpy2.gcd(p, SMALL_PRIMES_PRODUCT) != 1:
                continue
            if is_probable_prime(p, source):
                break
        curve = Type1Curve(p, q, min_p_bits=min_p_bits, min_q_bits=min_q_bits)
        P = PointMultiply(curve, 12 * r, curve.random_point(source))
        if not P.infinity:
            return curve, P


def security_level(n: int) -> SecurityLevel:
    """The level of security parameter n, if setup offers it (``ParameterError``
    otherwise; see :data:`SETUP_LEVELS`)."""
    if isinstance(n, bool) or not isinstance(n, int) or n not in SECURITY_LEVELS:
        raise ParameterError("the security parameter n must be 1024, 2048, 3072, 7680 or 15360")
    if n not in SETUP_LEVELS:
        raise ParameterError(
            "n = 1024 (80-bit security) is not offered: RFC 5091 section 9 says it "
            "SHOULD NOT protect information past 2010")
    return SECURITY_LEVELS[n]


# ---------------------------------------------------------------------------
# Parameters, keys, ciphertexts (RFC 5091 sections 5.1-5.5, 8)
# ---------------------------------------------------------------------------


def check_version(version: object) -> None:
    """``ParameterError`` unless ``version`` is 2 (shared with BB1)."""
    if isinstance(version, bool) or version != VERSION:
        raise ParameterError(f"only version {VERSION} is defined (RFC 5091 section 8)")


def read_version(reader: DerReader, what: str) -> None:
    """Read a block's leading version INTEGER; ``DecodeError`` unless it is 2."""
    version = reader.integer(f"{what}.version")
    if version != VERSION:
        raise DecodeError(f"{what}: unknown version {int(version)} (only {VERSION} is defined)")


def read_curve(reader: DerReader, what: str, min_p_bits: int, min_q_bits: int) -> Type1Curve:
    """Read ``curve``, ``p``, ``q`` of a parameters block (section 8)."""
    if reader.oid(f"{what}.curve") != TYPE1_CURVE_OID:
        raise DecodeError(f"{what}: the curve is not type1curve ({TYPE1_CURVE_OID})")
    p = reader.integer(f"{what}.p")
    q = reader.integer(f"{what}.q")
    return Type1Curve(p, q, min_p_bits=min_p_bits, min_q_bits=min_q_bits)


def read_hashfcn(reader: DerReader, what: str) -> HashFunction:
    """Read ``hashfcn``; ``DecodeError`` for an OID not in :data:`HASH_FUNCTIONS`."""
    oid = reader.oid(f"{what}.hashfcn")
    if oid not in HASH_FUNCTIONS:
        raise DecodeError(f"{what}: unknown hashfcn {oid}")
    return HASH_FUNCTIONS[oid]


@dataclass(frozen=True)
class BFPublicParameters:
    """The public parameters (version, E, p, q, P, P_pub, hashfcn) of RFC 5091
    section 5.1.2; E and (p, q) are the :class:`Type1Curve`.  Validated on
    construction (``ParameterError``): version 2, P and P_pub of order q
    (:meth:`Type1Curve.check_point`), hashfcn one of :data:`HASH_FUNCTIONS`."""

    curve: Type1Curve
    P: Point
    P_pub: Point
    hashfcn: HashFunction
    version: int = VERSION

    def __post_init__(self) -> None:
        check_version(self.version)
        if not isinstance(self.curve, Type1Curve):
            raise ParameterError("curve must be a Type1Curve")
        if self.hashfcn not in HASH_FUNCTIONS.values():
            raise ParameterError("hashfcn must be one of RFC 5091's hash functions")
        self.curve.check_point(self.P, "P")
        self.curve.check_point(self.P_pub, "P_pub")

    @property
    def hashlen(self) -> int:
        return self.hashfcn.hashlen

    def to_der(self) -> bytes:
        """BFPublicParameters (RFC 5091 section 8), DER."""
        E = self.curve
        return der_sequence(der_integer(self.version), der_oid(TYPE1_CURVE_OID),
                            der_integer(E.p), der_integer(E.q),
                            der_fp_point(self.P.x, self.P.y),
                            der_fp_point(self.P_pub.x, self.P_pub.y), der_oid(self.hashfcn.oid))

    @classmethod
    def from_der(cls, data: bytes, *, min_p_bits: int = MIN_P_BITS,
                 min_q_bits: int = MIN_Q_BITS) -> BFPublicParameters:
        """Strict inverse of :meth:`to_der`: ``DecodeError`` for malformed DER,
        another version, curve or hashfcn; ``ParameterError`` for values that
        fail validation."""
        what = "BFPublicParameters"
        reader = read_der(data, what)
        read_version(reader, what)
        E = read_curve(reader, what, min_p_bits, min_q_bits)
        P = Point(*reader.fp_point(f"{what}.pointP"))
        P_pub = Point(*reader.fp_point(f"{what}.pointPpub"))
        hashfcn = read_hashfcn(reader, what)
        reader.end()
        return cls(E, P, P_pub, hashfcn)


@dataclass(frozen=True)
class BFMasterSecret:
    """The PKG's master secret s (RFC 5091 5.1.2 step 5(a)), an integer in
    [2, q - 1] (checked against the parameters where it is used).  Never
    shown in ``repr``."""

    s: mpz = field(repr=False)
    version: int = VERSION

    def __post_init__(self) -> None:
        check_version(self.version)
        if isinstance(self.s, bool) or not isinstance(self.s, (int, type(mpz(0)))) or self.s < 2:
            raise ParameterError("the master secret s is an integer >= 2")
        object.__setattr__(self, "s", mpz(self.s))

    def to_der(self) -> bytes:
        """BFMasterSecret (RFC 5091 section 8), DER."""
        return der_sequence(der_integer(self.version), der_integer(self.s))

    @classmethod
    def from_der(cls, data: bytes) -> BFMasterSecret:
        reader = read_der(data, "BFMasterSecret")
        read_version(reader, "BFMasterSecret")
        s = reader.integer("BFMasterSecret.masterSecret")
        reader.end()
        return cls(s)


@dataclass(frozen=True)
class BFPrivateKey:
    """The private key S_id of an identity (RFC 5091 5.3.1), a point of order q.
    Validated against the parameters where it is used; never shown in ``repr``."""

    S_id: Point = field(repr=False)
    version: int = VERSION

    def __post_init__(self) -> None:
        check_version(self.version)
        if not isinstance(self.S_id, Point):
            raise ParameterError("S_id must be a point")

    def to_der(self) -> bytes:
        """BFPrivateKeyBlock (RFC 5091 section 8), DER."""
        return der_sequence(der_integer(self.version), der_fp_point(self.S_id.x, self.S_id.y))

    @classmethod
    def from_der(cls, data: bytes, params: BFPublicParameters) -> BFPrivateKey:
        """Strict inverse of :meth:`to_der`; the point is validated against
        ``params`` (``ParameterError``)."""
        reader = read_der(data, "BFPrivateKeyBlock")
        read_version(reader, "BFPrivateKeyBlock")
        S_id = Point(*reader.fp_point("BFPrivateKeyBlock.privateKey"))
        reader.end()
        params.curve.check_point(S_id, "the private key S_id")
        return cls(S_id)


@dataclass(frozen=True)
class BFCiphertext:
    """A ciphertext (U, V, W) in E(F_p) x {0..255}^hashlen x {0..255}^|m|
    (RFC 5091 5.4.1 step 13).  Validated by :func:`BFdecrypt` and
    :meth:`from_der` (``InvalidCiphertextError``)."""

    U: Point
    V: bytes
    W: bytes
    version: int = VERSION

    def to_der(self) -> bytes:
        """BFCiphertextBlock (RFC 5091 section 8), DER."""
        return der_sequence(der_integer(self.version), der_fp_point(self.U.x, self.U.y),
                            der_octet_string(self.V), der_octet_string(self.W))

    @classmethod
    def from_der(cls, data: bytes, params: BFPublicParameters) -> BFCiphertext:
        """Strict inverse of :meth:`to_der`: ``DecodeError`` for malformed DER
        or another version; ``InvalidCiphertextError`` for a U that is not a
        point of order q or a V that is not hashlen octets."""
        what = "BFCiphertextBlock"
        reader = read_der(data, what)
        read_version(reader, what)
        U = Point(*reader.fp_point(f"{what}.u"))
        V = reader.octet_string(f"{what}.v")
        W = reader.octet_string(f"{what}.w")
        reader.end()
        ciphertext = cls(U, V, W)
        _check_ciphertext(params, ciphertext)
        return ciphertext


def _check_ciphertext(params: BFPublicParameters, ciphertext: object) -> BFCiphertext:
    if not isinstance(ciphertext, BFCiphertext):
        raise InvalidCiphertextError("a BF ciphertext must be a BFCiphertext")
    if ciphertext.version != VERSION:
        raise InvalidCiphertextError(f"unknown ciphertext version (only {VERSION} is defined)")
    params.curve.check_point(ciphertext.U, "ciphertext component U", InvalidCiphertextError)
    if not isinstance(ciphertext.V, (bytes, bytearray)) or len(ciphertext.V) != params.hashlen:
        raise InvalidCiphertextError(f"ciphertext component V must be {params.hashlen} octets")
    if not isinstance(ciphertext.W, (bytes, bytearray)):
        raise InvalidCiphertextError("ciphertext component W must be bytes")
    return ciphertext


# ---------------------------------------------------------------------------
# The algorithms (RFC 5091 sections 5.1-5.5)
# ---------------------------------------------------------------------------


def BFsetup(n: int = 3072, rng: RandomSource | None = None) -> tuple[BFPublicParameters, BFMasterSecret]:
    """RFC 5091 Algorithms 5.1.1/5.1.2 (BFsetup, BFsetup1): fresh public
    parameters (version 2) and master secret at security parameter n (one of
    :data:`SETUP_LEVELS`).  Draws: :func:`generate_type1_group`, then s =
    RandomRange(rng, 2, q), i.e. s in [2, q - 1] (step 5(a)); P_pub = [s]P."""
    level = security_level(n)
    source = resolve(rng)
    E, P = generate_type1_group(level.n_p, level.n_q, source)
    s = mpz(random_range(source, 2, int(E.q)))
    return BFPublicParameters(E, P, PointMultiply(E, s, P), level.hashfcn), BFMasterSecret(s)


def BFderivePubl(params: BFPublicParameters, id: bytes) -> Point:
    """RFC 5091 Algorithm 5.2.1 (BFderivePubl): Q_id = HashToPoint(E, p, q, id, hashfcn)."""
    return HashToPoint(params.curve, id, params.hashfcn)


def BFextractPriv(params: BFPublicParameters, master_secret: BFMasterSecret, id: bytes) -> BFPrivateKey:
    """RFC 5091 Algorithm 5.3.1 (BFextractPriv): S_id = [s]Q_id.

    The master secret must belong to ``params``: 2 <= s <= q - 1 and [s]P =
    P_pub (``KeyMismatchError`` otherwise)."""
    if not isinstance(master_secret, BFMasterSecret):
        raise ParameterError("master_secret must be a BFMasterSecret")
    E = params.curve
    s = master_secret.s
    if not 2 <= s < E.q or PointMultiply(E, s, params.P) != params.P_pub:
        raise KeyMismatchError("the master secret does not belong to these public parameters")
    return BFPrivateKey(PointMultiply(E, s, BFderivePubl(params, id)))


def BFencrypt_with_rho(params: BFPublicParameters, id: bytes, m: bytes, rho: bytes) -> BFCiphertext:
    """RFC 5091 Algorithm 5.4.1 (BFencrypt) with the random value rho given
    (hashlen octets, step 3): for test vectors.  ``ParameterError`` for a rho
    of another length, or one for which l = 0 (U would be the point at
    infinity; probability 1/q)."""
    m = _octets(m, "the plaintext m")
    rho = _octets(rho, "rho")
    hashfcn, E = params.hashfcn, params.curve
    if len(rho) != params.hashlen:
        raise ParameterError(f"rho must be hashlen = {params.hashlen} octets")
    Q_id = BFderivePubl(params, id)                         # step 2
    t = hashfcn(m)                                          # step 4
    l = HashToRange(rho + t, E.q, hashfcn)                  # step 5
    if l == 0:
        raise ParameterError("this rho gives l = 0; draw another")
    U = PointMultiply(E, l, params.P)                       # step 6
    theta = Pairing1(E, params.P_pub, Q_id)                 # step 7
    z = Canonical(E, 0, theta ** l)                         # steps 8-9
    w = hashfcn(z)                                          # step 10
    V = _xor(w, rho)                                        # step 11
    W = _xor(HashBytes(len(m), rho, hashfcn), m)            # step 12
    return BFCiphertext(U, V, W)                            # step 13


def BFencrypt(params: BFPublicParameters, id: bytes, m: bytes,
              rng: RandomSource | None = None) -> BFCiphertext:
    """RFC 5091 Algorithm 5.4.1 (BFencrypt): encrypt m (a session key, any
    length) to ``id``.  rho is drawn as ``rng.random_bytes(hashlen)``; in the
    negligible case l = 0 a new rho is drawn."""
    m = _octets(m, "the plaintext m")
    source = resolve(rng)
    while True:
        rho = source.random_bytes(params.hashlen)
        t = params.hashfcn(m)
        if HashToRange(rho + t, params.curve.q, params.hashfcn) != 0:
            return BFencrypt_with_rho(params, id, m, rho)


def BFdecrypt(params: BFPublicParameters, key: BFPrivateKey, ciphertext: BFCiphertext) -> bytes:
    """RFC 5091 Algorithm 5.5.1 (BFdecrypt).

    Validates first: the key's S_id is a point of order q (``ParameterError``);
    U is a point of order q other than 0 and V is hashlen octets
    (``InvalidCiphertextError``).  Then decrypts, and returns m only if U =
    [l]P (step 9); otherwise raises ``VerificationError`` (a wrong key, a
    tampered or truncated component)."""
    if not isinstance(key, BFPrivateKey):
        raise ParameterError("key must be a BFPrivateKey")
    E, hashfcn = params.curve, params.hashfcn
    E.check_point(key.S_id, "the private key S_id")
    c = _check_ciphertext(params, ciphertext)
    theta = Pairing1(E, c.U, key.S_id)                      # step 2
    w = hashfcn(Canonical(E, 0, theta))                     # steps 3-4
    rho = _xor(w, bytes(c.V))                               # step 5
    m = _xor(HashBytes(len(c.W), rho, hashfcn), bytes(c.W))  # step 6
    t = hashfcn(m)                                          # step 7
    l = HashToRange(rho + t, E.q, hashfcn)                  # step 8
    expected = PointMultiply(E, l, params.P)                # step 9
    if expected.infinity or not hashing.compare_digest(
            E.encode_fp(expected.x) + E.encode_fp(expected.y),
            E.encode_fp(c.U.x) + E.encode_fp(c.U.y)):
        raise VerificationError("BF ciphertext rejected: U != [l]P (RFC 5091 5.5.1 step 9)")
    return m

