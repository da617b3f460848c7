"""RSA blind signatures, RSABSSA, exactly as RFC 9474 specifies them (specs/blind_rsa.md).

Sections of RFC 9474 (October 2023) and what implements them:

- 3   notation ................... :func:`I2OSP` (int_to_bytes), :func:`OS2IP` (bytes_to_int)
- 4.1 Prepare .................... :func:`Prepare`, :func:`PrepareIdentity`, :func:`PrepareRandomize`,
                                   :func:`PrepareRandomize_with_prefix`
- 4.2 Blind ...................... :func:`Blind`, :func:`Blind_with_randomness`
- 4.3 BlindSign .................. :func:`BlindSign`
- 4.4 Finalize ................... :func:`Finalize`
- 4.5 Verification ............... :func:`Verify`, :func:`application_message`
- 5   RSABSSA variants ........... :class:`Variant`, :data:`RSABSSA_SHA384_PSS_Randomized` and the
                                   three others, :data:`VARIANTS`
- 6.2 signing key generation ..... :func:`generate_key`, :func:`load_private_key`,
                                   :meth:`PrivateKey.from_factors`

and of RFC 8017 (PKCS #1 v2.2), which RFC 9474 builds on:

- 4.1 / 4.2 I2OSP / OS2IP, 5.2.1 RSASP1, 5.2.2 RSAVP1, 8.1.2 RSASSA-PSS-VERIFY,
  9.1.1 EMSA-PSS-ENCODE, 9.1.2 EMSA-PSS-VERIFY, B.2.1 MGF1.

Big-integer work goes through gmpy2.  Every finalized or verified signature is
also checked by an independent RSASSA-PSS verifier (pyca ``cryptography``), so
a signature this module accepts is one that any RFC 8017 verifier accepts.

Randomness is injected (``rng``): :func:`PrepareRandomize` draws the 32-byte
prefix, :func:`Blind` draws the salt first (EMSA-PSS-ENCODE, step 4) and then
r (RFC 9474 4.2 step 6, uniform in [1, n) by rejection sampling,
specs/conventions.md section 3.2).  The ``_with_`` functions take those values
explicitly, so the RFC's Appendix A vectors can pin them.

One labelled departure (specs/blind_rsa.md section 9.1): RFC 9474 4.2 step 1
writes ``EMSA-PSS-ENCODE(msg, bit_len(n))``; this module encodes with
emBits = bit_len(n) - 1, as RSASSA-PSS-SIGN does (RFC 8017 8.1.1 step 1), which
is what RSASSA-PSS-VERIFY (and the Appendix A vectors) require.

Errors (RFC 9474 6.1): malformed wire input (wrong length, a value >= n) is a
:class:`~protocols.errors.DecodeError`; a key or argument outside its range
(RSASP1's "message representative out of range" on an integer, a prefix of the
wrong length, "encoding error", "invalid input", "blinding error") is a
:class:`~protocols.errors.ParameterError`; "signing failure" and "invalid
signature" are :class:`~protocols.errors.VerificationError`.  Nothing returns a
bare bool and nothing uses ``assert``.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from types import MappingProxyType

import gmpy2
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from gmpy2 import mpz

from protocols.errors import DecodeError, ParameterError, VerificationError
from protocols.primitives import hashing
from protocols.primitives.numtheory import bpsw, invert, mulmod, powmod
from protocols.primitives.rand import RandomSource, random_range, resolve

MIN_MODULUS_BITS = 2048
"""Smallest modulus accepted by default (RFC 9474 6.2 recommends FIPS 186-4
keys; specs/blind_rsa.md section 3.1)."""

MAX_MODULUS_BITS = 4096
"""Largest modulus accepted (specs/blind_rsa.md section 3.1, limits; RFC 9474's
largest vectors are 4096-bit): checked before the square and primality tests."""

DEFAULT_PUBLIC_EXPONENT = 65537

_INTEGER = (int, type(mpz(0)))

MSG_PREFIX_LEN = 32
"""Length in bytes of PrepareRandomize's msg_prefix (RFC 9474 4.1)."""


# ---------------------------------------------------------------------------
# Variants as data (RFC 9474 section 5)
# ---------------------------------------------------------------------------


class PrepareType(enum.Enum):
    """The message preparation function of a variant (RFC 9474 4.1)."""

    IDENTITY = "PrepareIdentity"
    RANDOMIZE = "PrepareRandomize"


@dataclass(frozen=True)
class Variant:
    """A named RSABSSA variant (RFC 9474 section 5): the PSS hash (and MGF1 with
    the same hash), the salt length sLen and the preparation function."""

    name: str
    hash_name: str
    """hashlib name of Hash, also used by MGF1 (RFC 8017 B.2.1)."""
    hLen: int
    salt_len: int
    """sLen of RFC 8017 9.1.1, in bytes."""
    prepare: PrepareType

    def Hash(self, data: bytes) -> bytes:
        return hashing.new(self.hash_name, data).digest()

    def cryptography_hash(self) -> hashes.HashAlgorithm:
        """The same hash for pyca ``cryptography`` (the independent verifier)."""
        if self.hash_name != "sha384":
            raise ParameterError(f"no cryptography hash mapped for {self.hash_name!r}")
        return hashes.SHA384()


RSABSSA_SHA384_PSS_Randomized = Variant(
    "RSABSSA-SHA384-PSS-Randomized", "sha384", 48, 48, PrepareType.RANDOMIZE)
"""The variant the project uses (RFC 9474 section 5, RECOMMENDED; specs/blind_rsa.md 2)."""
RSABSSA_SHA384_PSSZERO_Randomized = Variant(
    "RSABSSA-SHA384-PSSZERO-Randomized", "sha384", 48, 0, PrepareType.RANDOMIZE)
RSABSSA_SHA384_PSS_Deterministic = Variant(
    "RSABSSA-SHA384-PSS-Deterministic", "sha384", 48, 48, PrepareType.IDENTITY)
RSABSSA_SHA384_PSSZERO_Deterministic = Variant(
    "RSABSSA-SHA384-PSSZERO-Deterministic", "sha384", 48, 0, PrepareType.IDENTITY)

VARIANTS: MappingProxyType[str, Variant] = MappingProxyType({
    v.name: v for v in (
        RSABSSA_SHA384_PSS_Randomized,
        RSABSSA_SHA384_PSSZERO_Randomized,
        RSABSSA_SHA384_PSS_Deterministic,
        RSABSSA_SHA384_PSSZERO_Deterministic,
    )
})
"""The four named variants of RFC 9474 section 5, by name (read-only)."""

DEFAULT_VARIANT = RSABSSA_SHA384_PSS_Randomized


def variant(name: str) -> Variant:
    """The variant named ``name``; ParameterError for an unknown name."""
    if not isinstance(name, str) or name not in VARIANTS:
        raise ParameterError(f"unknown RSABSSA variant {name!r}")
    return VARIANTS[name]


# ---------------------------------------------------------------------------
# Data conversion (RFC 8017 4.1, 4.2; RFC 9474 section 3)
# ---------------------------------------------------------------------------


def I2OSP(x: int, xLen: int) -> bytes:
    """RFC 8017 4.1 (int_to_bytes): ParameterError "integer too large"."""
    if x < 0 or x >= 256 ** xLen:
        raise ParameterError("integer too large for I2OSP")
    return int(x).to_bytes(xLen, "big")


def OS2IP(X: bytes) -> mpz:
    """RFC 8017 4.2 (bytes_to_int)."""
    return mpz(int.from_bytes(X, "big"))


def _bytes(value: object, what: str) -> bytes:
    if not isinstance(value, (bytes, bytearray, memoryview)):
        raise DecodeError(f"{what} must be a byte string")
    return bytes(value)


# ---------------------------------------------------------------------------
# Keys (RFC 9474 6.2)
# ---------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class PublicKey:
    """An RSA public key pk = (n, e), validated on construction."""

    n: mpz
    e: mpz
    min_bits: int = field(default=MIN_MODULUS_BITS, repr=False)

    def __post_init__(self) -> None:
        for name in ("n", "e"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, _INTEGER):
                raise ParameterError(f"RSA {name} must be an integer")
        n, e = mpz(self.n), mpz(self.e)
        if n.bit_length() > MAX_MODULUS_BITS:
            raise ParameterError(f"RSA modulus of {n.bit_length()} bits is above the maximum of {MAX_MODULUS_BITS}")
        if n.bit_length() < self.min_bits:
            raise ParameterError(
                f"RSA modulus of {n.bit_length()} bits is below the minimum of {self.min_bits}")
        if n % 2 == 0 or gmpy2.is_square(n):
            raise ParameterError("RSA modulus must be odd and not a square")
        if not 3 <= e < n or e % 2 == 0:
            raise ParameterError("RSA public exponent must be odd with 3 <= e < n")
        object.__setattr__(self, "n", n)
        object.__setattr__(self, "e", e)

    @property
    def modBits(self) -> int:
        """bit_len(n)."""
        return self.n.bit_length()

    @property
    def modulus_len(self) -> int:
        """modulus_len of RFC 9474 (k of RFC 8017): the length of n in bytes."""
        return (self.modBits + 7) // 8

    def to_cryptography(self) -> rsa.RSAPublicKey:
        """The same key as a pyca ``cryptography`` object (the independent verifier)."""
        try:
            return rsa.RSAPublicNumbers(int(self.e), int(self.n)).public_key()
        except ValueError as exc:
            raise ParameterError(f"cryptography refuses the public key: {exc}") from None

    @classmethod
    def from_cryptography(cls, key: rsa.RSAPublicKey, min_bits: int = MIN_MODULUS_BITS) -> PublicKey:
        numbers = key.public_numbers()
        return cls(mpz(numbers.n), mpz(numbers.e), min_bits=min_bits)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, PublicKey) and self.n == other.n and self.e == other.e

    def __hash__(self) -> int:
        return hash(("rsa-public-key", int(self.n), int(self.e)))

    def __repr__(self) -> str:
        return f"PublicKey(bits={self.modBits}, e={int(self.e)}, n=0x{int(self.n) & 0xFFFFFFFF:08x}...)"


@dataclass(frozen=True, eq=False)
class PrivateKey:
    """An RSA private key sk: d and the factors p, q of n, with the CRT
    exponents of RFC 8017 3.2 (second representation).  Validated on
    construction: p, q distinct primes, p q = n, e d = 1 mod lcm(p-1, q-1).
    Its ``repr`` shows no secret."""

    public: PublicKey
    d: mpz = field(repr=False)
    p: mpz = field(repr=False)
    q: mpz = field(repr=False)
    dP: mpz = field(init=False, repr=False)
    dQ: mpz = field(init=False, repr=False)
    qInv: mpz = field(init=False, repr=False)

    def __post_init__(self) -> None:
        if not isinstance(self.public, PublicKey):
            raise ParameterError("PrivateKey needs a PublicKey")
        for name in ("d", "p", "q"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, _INTEGER):
                raise ParameterError(f"RSA {name} must be an integer")
        n, e = self.public.n, self.public.e
        d, p, q = mpz(self.d), mpz(self.p), mpz(self.q)
        if p == q or p < 3 or q < 3 or p * q != n:
            raise ParameterError("RSA factors must be distinct and multiply to n")
        if not (bpsw(p) and bpsw(q)):
            raise ParameterError("RSA factors must be prime")
        lam = gmpy2.lcm(p - 1, q - 1)
        if not 1 < d < n or (e * d) % lam != 1:
            raise ParameterError("RSA private exponent does not match e (need e d = 1 mod lcm(p-1, q-1))")
        object.__setattr__(self, "d", d)
        object.__setattr__(self, "p", p)
        object.__setattr__(self, "q", q)
        object.__setattr__(self, "dP", d % (p - 1))
        object.__setattr__(self, "dQ", d % (q - 1))
        object.__setattr__(self, "qInv", invert(q, p))

    @classmethod
    def from_factors(cls, p: int, q: int, e: int = DEFAULT_PUBLIC_EXPONENT,
                     min_bits: int = MIN_MODULUS_BITS) -> PrivateKey:
        """The key with primes p, q and public exponent e (d = e^-1 mod lcm(p-1, q-1))."""
        p, q, e = mpz(p), mpz(q), mpz(e)
        public = PublicKey(p * q, e, min_bits=min_bits)
        try:
            d = gmpy2.invert(e, gmpy2.lcm(p - 1, q - 1))
        except ZeroDivisionError:
            raise ParameterError("e is not invertible modulo lcm(p-1, q-1)") from None
        return cls(public, d, p, q)

    def to_cryptography(self) -> rsa.RSAPrivateKey:
        p, q, d = int(self.p), int(self.q), int(self.d)
        numbers = rsa.RSAPrivateNumbers(
            p, q, d, int(self.dP), int(self.dQ), int(invert(q, p)),
            rsa.RSAPublicNumbers(int(self.public.e), int(self.public.n)))
        try:
            return numbers.private_key()
        except ValueError as exc:
            raise ParameterError(f"cryptography refuses the private key: {exc}") from None

    def __repr__(self) -> str:
        return f"PrivateKey(public={self.public!r})"


def generate_key(bits: int = MIN_MODULUS_BITS, e: int = DEFAULT_PUBLIC_EXPONENT) -> PrivateKey:
    """A fresh RSA signing key of ``bits`` bits (RFC 9474 6.2), generated by
    pyca ``cryptography`` (OpenSSL's FIPS 186-style generator) from the
    operating system's CSPRNG.  ``bits`` must be at least 2048.

    Key generation here takes no ``rng``: the RFC 9474 vectors load their keys
    (:func:`load_private_key`), and the escrow's test fleets make theirs from
    drawn primes (``escrow_fleet.rsa_key``, specs/escrow.md section 11.2)."""
    if isinstance(bits, bool) or not isinstance(bits, int) or bits < MIN_MODULUS_BITS:
        raise ParameterError(f"RSA blind-signature keys need at least {MIN_MODULUS_BITS} bits")
    if e not in (3, DEFAULT_PUBLIC_EXPONENT):
        raise ParameterError("public exponent must be 65537 (or 3)")
    key = rsa.generate_private_key(public_exponent=e, key_size=bits)
    numbers = key.private_numbers()
    public = PublicKey(mpz(numbers.public_numbers.n), mpz(numbers.public_numbers.e))
    return PrivateKey(public, mpz(numbers.d), mpz(numbers.p), mpz(numbers.q))


def load_private_key(n: int, e: int, d: int, p: int | None = None, q: int | None = None,
                     min_bits: int = MIN_MODULUS_BITS) -> PrivateKey:
    """The key (n, e, d), with its factors p, q as the RFC 9474 Appendix A
    vectors give them; without p and q they are recovered from (n, e, d).
    ParameterError for a value that is not an integer (bool refused)."""
    given = [("n", n), ("e", e), ("d", d)] + [(name, f) for name, f in (("p", p), ("q", q)) if f is not None]
    for name, value in given:
        if isinstance(value, bool) or not isinstance(value, _INTEGER):
            raise ParameterError(f"RSA {name} must be an integer")
    public = PublicKey(mpz(n), mpz(e), min_bits=min_bits)
    if (p is None) != (q is None):
        raise ParameterError("give both factors p and q, or neither")
    if p is None:
        p, q = _recover_factors(public.n, public.e, mpz(d))
    return PrivateKey(public, mpz(d), mpz(p), mpz(q))


def _recover_factors(n: mpz, e: mpz, d: mpz) -> tuple[mpz, mpz]:
    """p, q from (n, e, d): write e d - 1 = 2^t k with k odd; for small bases g,
    the sequence g^k, g^2k, ... mod n meets a square root of 1 other than
    +-1, whose gcd with n is a factor (NIST SP 800-56B r2, Appendix C)."""
    if not 1 < d < n:
        raise ParameterError("RSA private exponent out of range")
    k = e * d - 1
    t = 0
    while k % 2 == 0:
        k //= 2
        t += 1
    if t == 0:
        raise ParameterError("e d - 1 is odd: (n, e, d) is not an RSA key")
    for g in range(2, 66):  # each base succeeds with probability >= 1/2 for a true key
        x = gmpy2.powmod(g, k, n)
        if x in (1, n - 1):
            continue
        for _ in range(t):
            y = gmpy2.powmod(x, 2, n)
            if y == 1:
                p = gmpy2.gcd(x - 1, n)
                return (p, n // p) if p > n // p else (n // p, p)
            if y == n - 1:
                break
            x = y
    raise ParameterError("cannot recover p, q from (n, e, d)")


# ---------------------------------------------------------------------------
# RSA primitives and EMSA-PSS (RFC 8017)
# ---------------------------------------------------------------------------


def RSASP1(sk: PrivateKey, m: int) -> mpz:
    """RFC 8017 5.2.1, with the CRT (second form of K).  ParameterError
    "message representative out of range" unless 0 <= m < n."""
    m = mpz(m)
    if not 0 <= m < sk.public.n:
        raise ParameterError("message representative out of range")
    s_1 = powmod(m, sk.dP, sk.p)
    s_2 = powmod(m, sk.dQ, sk.q)
    h = mulmod(s_1 - s_2, sk.qInv, sk.p)
    return s_2 + sk.q * h


def RSAVP1(pk: PublicKey, s: int) -> mpz:
    """RFC 8017 5.2.2.  ParameterError "signature representative out of range"
    unless 0 <= s < n."""
    s = mpz(s)
    if not 0 <= s < pk.n:
        raise ParameterError("signature representative out of range")
    return powmod(s, pk.e, pk.n)


def MGF1(mgfSeed: bytes, maskLen: int, variant: Variant) -> bytes:
    """RFC 8017 B.2.1 with the variant's hash."""
    if maskLen > (1 << 32) * variant.hLen:
        raise ParameterError("mask too long")
    T = bytearray()
    counter = 0
    while len(T) < maskLen:
        T += variant.Hash(mgfSeed + I2OSP(counter, 4))
        counter += 1
    return bytes(T[:maskLen])


def _xor(a: bytes, b: bytes) -> bytes:
    return bytes(x ^ y for x, y in zip(a, b))


def EMSA_PSS_ENCODE(M: bytes, emBits: int, variant: Variant, salt: bytes) -> bytes:
    """RFC 8017 9.1.1 with the salt given (step 4's random octet string).

    ParameterError "encoding error" when emLen < hLen + sLen + 2, or when the
    salt is not sLen bytes."""
    M, salt = _bytes(M, "message"), _bytes(salt, "salt")
    hLen, sLen = variant.hLen, variant.salt_len
    if len(salt) != sLen:
        raise ParameterError(f"salt must be {sLen} bytes for {variant.name}")
    emLen = (emBits + 7) // 8
    mHash = variant.Hash(M)                                   # step 2
    if emLen < hLen + sLen + 2:                               # step 3
        raise ParameterError("encoding error: modulus too short for the hash and salt")
    M_prime = b"\x00" * 8 + mHash + salt                      # step 5
    H = variant.Hash(M_prime)                                 # step 6
    PS = b"\x00" * (emLen - sLen - hLen - 2)                  # step 7
    DB = PS + b"\x01" + salt                                  # step 8
    dbMask = MGF1(H, emLen - hLen - 1, variant)               # step 9
    maskedDB = bytearray(_xor(DB, dbMask))                    # step 10
    maskedDB[0] &= 0xFF >> (8 * emLen - emBits)               # step 11
    return bytes(maskedDB) + H + b"\xbc"                      # step 12


def EMSA_PSS_VERIFY(M: bytes, EM: bytes, emBits: int, variant: Variant) -> None:
    """RFC 8017 9.1.2: returns on "consistent", raises VerificationError on
    "inconsistent"."""
    hLen, sLen = variant.hLen, variant.salt_len
    emLen = (emBits + 7) // 8
    mHash = variant.Hash(M)                                   # step 2
    if len(EM) != emLen or emLen < hLen + sLen + 2:           # step 3
        raise VerificationError("invalid signature (PSS encoding inconsistent)")
    if EM[-1] != 0xBC:                                        # step 4
        raise VerificationError("invalid signature (PSS encoding inconsistent)")
    maskedDB, H = EM[: emLen - hLen - 1], EM[emLen - hLen - 1: -1]   # step 5
    top = 0xFF >> (8 * emLen - emBits)
    if maskedDB[0] & ~top & 0xFF:                             # step 6
        raise VerificationError("invalid signature (PSS encoding inconsistent)")
    DB = bytearray(_xor(maskedDB, MGF1(H, emLen - hLen - 1, variant)))  # steps 7-8
    DB[0] &= top                                              # step 9
    zeros = emLen - hLen - sLen - 2
    if any(DB[:zeros]) or DB[zeros] != 0x01:                  # step 10
        raise VerificationError("invalid signature (PSS encoding inconsistent)")
    salt = bytes(DB[len(DB) - sLen:]) if sLen else b""        # step 11
    H_prime = variant.Hash(b"\x00" * 8 + mHash + salt)       # steps 12-13
    if not hashing.compare_digest(H, H_prime):                   # step 14
        raise VerificationError("invalid signature (PSS encoding inconsistent)")


def RSASSA_PSS_VERIFY(pk: PublicKey, M: bytes, S: bytes, variant: Variant) -> None:
    """RFC 8017 8.1.2, this module's own code: returns on "valid signature",
    raises VerificationError "invalid signature" otherwise (every failure of
    8.1.2, including a wrong length and s >= n, is "invalid signature")."""
    M, S = _bytes(M, "message"), _bytes(S, "signature")
    if len(S) != pk.modulus_len:                              # step 1
        raise VerificationError("invalid signature (wrong length)")
    s = OS2IP(S)                                              # step 2a
    if s >= pk.n:                                             # step 2b
        raise VerificationError("invalid signature (signature representative out of range)")
    m = RSAVP1(pk, s)
    emBits = pk.modBits - 1
    emLen = (emBits + 7) // 8
    if m >= 256 ** emLen:                                     # step 2c
        raise VerificationError("invalid signature (integer too large)")
    EMSA_PSS_VERIFY(M, I2OSP(m, emLen), emBits, variant)      # step 3


def verify_with_cryptography(pk: PublicKey, M: bytes, S: bytes, variant: Variant) -> None:
    """RSASSA-PSS-VERIFY by pyca ``cryptography``, the independent verifier:
    ``PSS(mgf=MGF1(Hash), salt_length=sLen)``; VerificationError on failure."""
    algorithm = variant.cryptography_hash()
    try:
        pk.to_cryptography().verify(
            bytes(S), bytes(M),
            padding.PSS(mgf=padding.MGF1(algorithm), salt_length=variant.salt_len),
            algorithm)
    except InvalidSignature:
        raise VerificationError("invalid signature (rejected by the independent verifier)") from None


# ---------------------------------------------------------------------------
# 4.1 Prepare
# ---------------------------------------------------------------------------


def PrepareIdentity(msg: bytes) -> bytes:
    """RFC 9474 4.1: the identity preparation function, input_msg = msg."""
    return _bytes(msg, "msg")


def PrepareRandomize_with_prefix(msg: bytes, msg_prefix: bytes) -> bytes:
    """RFC 9474 4.1 PrepareRandomize, steps 2-3, with step 1's msg_prefix given:
    input_msg = concat(msg_prefix, msg).  ParameterError unless msg_prefix is
    32 bytes."""
    msg, msg_prefix = _bytes(msg, "msg"), _bytes(msg_prefix, "msg_prefix")
    if len(msg_prefix) != MSG_PREFIX_LEN:
        raise ParameterError(f"msg_prefix must be {MSG_PREFIX_LEN} bytes")
    return msg_prefix + msg


def PrepareRandomize(msg: bytes, rng: RandomSource | None = None) -> bytes:
    """RFC 9474 4.1 PrepareRandomize: msg_prefix = random(32) drawn from ``rng``;
    input_msg = concat(msg_prefix, msg), 32 bytes longer than msg."""
    msg = _bytes(msg, "msg")
    return PrepareRandomize_with_prefix(msg, resolve(rng).random_bytes(MSG_PREFIX_LEN))


def Prepare(msg: bytes, variant: Variant = DEFAULT_VARIANT, rng: RandomSource | None = None) -> bytes:
    """RFC 9474 4.1: the variant's preparation function (section 5)."""
    if variant.prepare is PrepareType.RANDOMIZE:
        return PrepareRandomize(msg, rng)
    return PrepareIdentity(msg)


def Prepare_with_prefix(msg: bytes, msg_prefix: bytes, variant: Variant = DEFAULT_VARIANT) -> bytes:
    """Prepare with the prefix given: 32 bytes for a randomized variant, empty
    for a deterministic one (as Appendix A prints msg_prefix)."""
    if variant.prepare is PrepareType.RANDOMIZE:
        return PrepareRandomize_with_prefix(msg, msg_prefix)
    if _bytes(msg_prefix, "msg_prefix"):
        raise ParameterError(f"{variant.name} uses PrepareIdentity: msg_prefix must be empty")
    return PrepareIdentity(msg)


def application_message(input_msg: bytes, variant: Variant = DEFAULT_VARIANT) -> bytes:
    """RFC 9474 4.5: the message applications consume, slice(input_msg, 32,
    len(input_msg)) for a randomized variant, input_msg itself otherwise.
    DecodeError when a randomized input_msg is shorter than its prefix."""
    input_msg = _bytes(input_msg, "input_msg")
    if variant.prepare is PrepareType.IDENTITY:
        return input_msg
    if len(input_msg) < MSG_PREFIX_LEN:
        raise DecodeError(f"a prepared message of {variant.name} starts with a {MSG_PREFIX_LEN}-byte prefix")
    return input_msg[MSG_PREFIX_LEN:]


# ---------------------------------------------------------------------------
# 4.2 Blind
# ---------------------------------------------------------------------------


def encode_message(pk: PublicKey, msg: bytes, variant: Variant, salt: bytes) -> bytes:
    """RFC 9474 4.2 step 1: encoded_msg = EMSA-PSS-ENCODE(msg, emBits) with
    emBits = bit_len(n) - 1 (RFC 8017 8.1.1 step 1; the departure of
    specs/blind_rsa.md 9.1)."""
    return EMSA_PSS_ENCODE(msg, pk.modBits - 1, variant, salt)


def Blind_with_randomness(pk: PublicKey, msg: bytes, variant: Variant, salt: bytes,
                          r: int) -> tuple[bytes, mpz]:
    """RFC 9474 4.2 Blind, with the salt (EMSA-PSS-ENCODE step 4) and r
    (step 6) given, so a vector can pin them.  Returns (blinded_msg, inv).

    ParameterError: "encoding error" (salt or modulus length), "invalid input"
    (the encoded message is not coprime to n), r outside [1, n), and
    "blinding error" (r is not invertible modulo n)."""
    encoded_msg = encode_message(pk, msg, variant, salt)      # steps 1-2
    m = OS2IP(encoded_msg)                                    # step 3
    if gmpy2.gcd(m, pk.n) != 1:                               # steps 4-5
        raise ParameterError("invalid input: the encoded message is not coprime to n")
    r = mpz(r)
    if not 1 <= r < pk.n:
        raise ParameterError("r must satisfy 1 <= r < n")
    if gmpy2.gcd(r, pk.n) != 1:                               # steps 7-8
        raise ParameterError("blinding error: r is not invertible modulo n")
    inv = invert(r, pk.n)
    x = RSAVP1(pk, r)                                         # step 9
    z = mulmod(m, x, pk.n)                                    # step 10
    return I2OSP(z, pk.modulus_len), inv                      # steps 11-12


def Blind(pk: PublicKey, msg: bytes, variant: Variant = DEFAULT_VARIANT,
          rng: RandomSource | None = None) -> tuple[bytes, mpz]:
    """RFC 9474 4.2 Blind(pk, msg) -> (blinded_msg, inv).

    Draws from ``rng``, in this order: the salt (sLen bytes; none for a
    PSSZERO variant), then r = random_integer_uniform(1, n) by rejection
    sampling (specs/conventions.md 3.2).  A "blinding error" (r shares a
    factor with n, probability negligible) is raised, not retried: it means
    the client has factored n (RFC 9474 6.1)."""
    source = resolve(rng)
    salt = source.random_bytes(variant.salt_len) if variant.salt_len else b""
    r = random_range(source, 1, pk.n)
    return Blind_with_randomness(pk, msg, variant, salt, r)


# ---------------------------------------------------------------------------
# 4.3 BlindSign
# ---------------------------------------------------------------------------


def _decode_element(pk: PublicKey, data: object, what: str) -> mpz:
    """A modulus_len-byte string whose integer is < n; DecodeError otherwise."""
    data = _bytes(data, what)
    if len(data) != pk.modulus_len:
        raise DecodeError(f"unexpected input size: {what} must be {pk.modulus_len} bytes")
    value = OS2IP(data)
    if value >= pk.n:
        raise DecodeError(f"{what} out of range: its integer must be < n")
    return value


def BlindSign(sk: PrivateKey, blinded_msg: bytes) -> bytes:
    """RFC 9474 4.3 BlindSign(sk, blinded_msg) -> blind_sig.

    DecodeError when blinded_msg is not modulus_len bytes or its integer is
    >= n (RSASP1's "message representative out of range"); VerificationError
    "signing failure" when RSAVP1(pk, s) != m (the fault check of RFC 9474
    7.1)."""
    pk = sk.public
    m = _decode_element(pk, blinded_msg, "blinded_msg")       # step 1
    s = RSASP1(sk, m)                                         # step 2
    m_prime = RSAVP1(pk, s) if 0 <= s < pk.n else None        # step 3
    if m_prime != m:                                          # step 4
        raise VerificationError("signing failure: RSAVP1 does not recover the blinded message")
    return I2OSP(s, pk.modulus_len)                           # steps 5-6


# ---------------------------------------------------------------------------
# 4.4 Finalize and 4.5 Verification
# ---------------------------------------------------------------------------


def Verify(pk: PublicKey, input_msg: bytes, sig: bytes, variant: Variant = DEFAULT_VARIANT) -> None:
    """RFC 9474 4.5: RSASSA-PSS-VERIFY(pk, input_msg, sig) with the variant's
    Hash, MGF1 and sLen.  Runs this module's RFC 8017 8.1.2 and then the
    independent verifier; returns only if both accept, else VerificationError.
    ``input_msg`` is the prepared message (see :func:`application_message`)."""
    input_msg, sig = _bytes(input_msg, "input_msg"), _bytes(sig, "sig")
    RSASSA_PSS_VERIFY(pk, input_msg, sig, variant)
    verify_with_cryptography(pk, input_msg, sig, variant)


def Finalize(pk: PublicKey, msg: bytes, blind_sig: bytes, inv: int,
             variant: Variant = DEFAULT_VARIANT) -> bytes:
    """RFC 9474 4.4 Finalize(pk, msg, blind_sig, inv) -> sig; ``msg`` is the
    prepared message that was blinded.

    DecodeError "unexpected input size" (step 1) and, our addition, when
    blind_sig's integer is >= n; ParameterError when inv is not in [1, n)
    or not invertible; VerificationError "invalid signature" when the
    unblinded signature fails :func:`Verify` (steps 5-6)."""
    msg = _bytes(msg, "msg")
    z = _decode_element(pk, blind_sig, "blind_sig")           # steps 1-2
    if isinstance(inv, bool) or not isinstance(inv, _INTEGER):
        raise ParameterError("inv must be an integer")
    inv = mpz(inv)
    if not 1 <= inv < pk.n or gmpy2.gcd(inv, pk.n) != 1:
        raise ParameterError("inv must be invertible modulo n, 1 <= inv < n")
    s = mulmod(z, inv, pk.n)                                  # step 3
    sig = I2OSP(s, pk.modulus_len)                            # step 4
    Verify(pk, msg, sig, variant)                             # steps 5-6
    return sig
