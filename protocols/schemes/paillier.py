"""Paillier encryption with g = n + 1 (specs/paillier.md).

Sections of the spec and what implements them:

- 3   key generation .................... :func:`generate_keypair`, :meth:`PrivateKey.from_factors`
- 4.1 standard encryption ............... :meth:`PublicKey.encrypt`, :meth:`PublicKey.encrypt_with_r`
- 4.2 fast encryption (DJN) ............. :class:`FastEncryptor`, :class:`FixedBaseTable`
- 4.3 offline / online encryption ....... :class:`RandomiserPool`
- 5   decryption (CRT) .................. :meth:`PrivateKey.decrypt`
- 6   homomorphic operations ............ :class:`Ciphertext`
- 7   encodings and validation .......... ``to_bytes`` / ``from_bytes`` of each type

Paillier, "Public-Key Cryptosystems Based on Composite Degree Residuosity
Classes", EUROCRYPT 1999; the g = n + 1 simplification and the CRT
decryption constants hp, hq are those python-paillier (``phe``) uses, so keys
and ciphertexts interoperate with it (see ``paillier_encoding``).
"""

from __future__ import annotations

import os
import threading
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import gmpy2
from gmpy2 import mpz

from protocols.errors import (
    DecodeError,
    InvalidCiphertextError,
    KeyMismatchError,
    ParameterError,
    StateError,
)
from protocols.primitives import opcount
from protocols.primitives.numtheory import (
    count_modexp, count_modmul, invert, is_probable_prime, mulmod, powmod, random_prime,
)
from protocols.primitives.rand import RandomSource, random_below, random_bits, resolve

MIN_MODULUS_BITS = 2048
"""Smallest n accepted by default (spec section 3.2); smaller keys need
``min_bits=`` lowered explicitly, for interoperability tests only."""

GENERATED_MODULUS_BITS = (2048, 3072)
"""Sizes :func:`generate_keypair` produces (spec section 3.1)."""

DEFAULT_MODULUS_BITS = 2048

MAX_MODULUS_BITS = 4096
"""Largest n accepted (spec section 7.3, limits): every decoder checks the
size of its input against it before any work that grows with the size
(squaring, square test, primality tests of the factors)."""

MAX_PRIVATE_KEY_BYTES = 2 * ((MAX_MODULUS_BITS + 15) // 16)
"""Longest p || q encoding :meth:`PrivateKey.from_bytes` reads (spec 7.3)."""


def _check_min_bits(min_bits: object) -> int:
    """``min_bits`` is an int in [1, MAX_MODULUS_BITS] (spec 7.3)."""
    if isinstance(min_bits, bool) or not isinstance(min_bits, int) or not 1 <= min_bits <= MAX_MODULUS_BITS:
        raise ParameterError(f"min_bits must be an int in [1, {MAX_MODULUS_BITS}]")
    return min_bits


def _byte_length(value: int) -> int:
    return (int(value).bit_length() + 7) // 8


# ---------------------------------------------------------------------------
# Keys (spec section 3)
# ---------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class PublicKey:
    """A Paillier public key (n, g = n + 1).  Validated on construction."""

    n: mpz
    min_bits: int = field(default=MIN_MODULUS_BITS, repr=False)
    nsquare: mpz = field(init=False, repr=False)
    max_int: mpz = field(init=False, repr=False)
    """Largest magnitude a signed encoding may take: n // 3 - 1 (as phe)."""

    def __post_init__(self) -> None:
        _check_min_bits(self.min_bits)
        if isinstance(self.n, bool) or not isinstance(self.n, (int, mpz)):
            raise ParameterError("a Paillier modulus must be an integer")
        n = mpz(self.n)
        if n.bit_length() > MAX_MODULUS_BITS:
            raise ParameterError(
                f"Paillier modulus of {n.bit_length()} bits is above the maximum of {MAX_MODULUS_BITS}"
            )
        if n.bit_length() < self.min_bits:
            raise ParameterError(
                f"Paillier modulus of {n.bit_length()} bits is below the minimum of {self.min_bits}"
            )
        if n % 2 == 0 or gmpy2.is_square(n) or n < 15:
            raise ParameterError("Paillier modulus must be odd and not a square (compositeness is not checkable from n alone)")
        object.__setattr__(self, "n", n)
        object.__setattr__(self, "nsquare", n * n)
        object.__setattr__(self, "max_int", n // 3 - 1)

    @property
    def g(self) -> mpz:
        return self.n + 1

    @property
    def bits(self) -> int:
        return self.n.bit_length()

    def __eq__(self, other: object) -> bool:
        return isinstance(other, PublicKey) and self.n == other.n

    def __hash__(self) -> int:
        return hash(("paillier-public-key", int(self.n)))

    def __repr__(self) -> str:
        return f"PublicKey(bits={self.bits}, n=0x{int(self.n) & 0xFFFFFFFF:08x}...)"

    # -- validation -------------------------------------------------------

    def check_plaintext(self, m: int) -> mpz:
        """Spec 4: a raw plaintext is an integer with 0 <= m < n."""
        if isinstance(m, bool) or not isinstance(m, (int, mpz)):
            raise ParameterError("a Paillier plaintext must be an integer")
        if not 0 <= m < self.n:
            raise ParameterError("Paillier plaintext out of range: need 0 <= m < n")
        return mpz(m)

    def ciphertext(self, c: int) -> Ciphertext:
        """Validate an integer as a ciphertext (spec 7.2): 0 < c < n^2 and
        gcd(c, n) = 1; InvalidCiphertextError otherwise."""
        if isinstance(c, bool) or not isinstance(c, (int, mpz)):
            raise InvalidCiphertextError("a Paillier ciphertext must be an integer")
        c = mpz(c)
        if not 0 < c < self.nsquare:
            raise InvalidCiphertextError("Paillier ciphertext out of range: need 0 < c < n^2")
        if gmpy2.gcd(c, self.n) != 1:
            raise InvalidCiphertextError("Paillier ciphertext is not coprime to n")
        return Ciphertext._trusted(self, c)

    # -- encryption (spec 4.1) --------------------------------------------

    def random_r(self, rng: RandomSource | None = None) -> mpz:
        """Spec 4.1: r uniform in Z*_n (draw in [1, n), redraw if gcd(r, n) != 1)."""
        while True:
            r = mpz(random_below(rng, int(self.n) - 1) + 1)
            if gmpy2.gcd(r, self.n) == 1:
                return r

    def randomiser(self, rng: RandomSource | None = None) -> mpz:
        """Spec 4.1: the standard randomiser r^n mod n^2."""
        return powmod(self.random_r(rng), self.n, self.nsquare)

    def encrypt_with_r(self, m: int, r: int) -> Ciphertext:
        """Spec 4.1: c = (1 + m n) r^n mod n^2 for an explicit r in Z*_n
        (any r with 0 < r < n^2 and gcd(r, n) = 1 is accepted, as Milagro's
        vectors draw r below n^2)."""
        m = self.check_plaintext(m)
        r = mpz(r)
        if not 0 < r < self.nsquare or gmpy2.gcd(r, self.n) != 1:
            raise ParameterError("encryption randomness r must be in Z*_n (0 < r < n^2, gcd(r, n) = 1)")
        return self.encrypt_with_randomiser(m, powmod(r, self.n, self.nsquare))

    def encrypt_with_randomiser(self, m: int, rn: int) -> Ciphertext:
        """c = (1 + m n) * rn mod n^2 for a precomputed randomiser rn = r^n
        (spec 4.3: the online step, one multiplication)."""
        m = self.check_plaintext(m)
        return Ciphertext._trusted(self, mulmod(1 + m * self.n, rn, self.nsquare))

    def encrypt(self, m: int, rng: RandomSource | None = None) -> Ciphertext:
        """Spec 4.1, standard encryption with a fresh uniform r in Z*_n."""
        m = self.check_plaintext(m)
        return Ciphertext._trusted(self, mulmod(1 + m * self.n, self.randomiser(rng), self.nsquare))

    # -- encoding (spec 7.1) ----------------------------------------------

    def to_bytes(self) -> bytes:
        """n as big-endian bytes of length ceil(bits/8)."""
        return int(self.n).to_bytes(_byte_length(self.n), "big")

    @classmethod
    def from_bytes(cls, data: bytes, *, min_bits: int = MIN_MODULUS_BITS) -> PublicKey:
        """Strict inverse of :meth:`to_bytes`: no leading zero byte."""
        if not isinstance(data, (bytes, bytearray)) or not data:
            raise DecodeError("a Paillier public key encoding must be non-empty bytes")
        if data[0] == 0:
            raise DecodeError("non-canonical Paillier modulus: leading zero byte")
        if len(data) > (MAX_MODULUS_BITS + 7) // 8:
            raise DecodeError(f"a Paillier modulus has at most {MAX_MODULUS_BITS} bits")
        return cls(mpz(int.from_bytes(data, "big")), min_bits=min_bits)

    def ciphertext_length(self) -> int:
        """Length in bytes of every encoded ciphertext: that of n^2."""
        return _byte_length(self.nsquare)


@dataclass(frozen=True, eq=False)
class PrivateKey:
    """A Paillier private key: the factors p, q and CRT constants (spec 5)."""

    public_key: PublicKey
    p: mpz = field(repr=False)
    q: mpz = field(repr=False)
    psquare: mpz = field(init=False, repr=False)
    qsquare: mpz = field(init=False, repr=False)
    hp: mpz = field(init=False, repr=False)
    hq: mpz = field(init=False, repr=False)
    p_inverse: mpz = field(init=False, repr=False)
    """p^-1 mod q, for Garner's recombination (phe's name for it)."""

    def __post_init__(self) -> None:
        p, q = mpz(self.p), mpz(self.q)
        if q < p:  # phe orders the factors so that p < q; so do we
            p, q = q, p
        object.__setattr__(self, "p", p)
        object.__setattr__(self, "q", q)
        object.__setattr__(self, "psquare", p * p)
        object.__setattr__(self, "qsquare", q * q)
        # Spec 5: hp = L_p(g^(p-1) mod p^2)^-1 mod p, which for g = n + 1 is (-q)^-1 mod p.
        object.__setattr__(self, "hp", invert(-q % p, p))
        object.__setattr__(self, "hq", invert(-p % q, q))
        object.__setattr__(self, "p_inverse", invert(p, q))

    @classmethod
    def from_factors(cls, p: int, q: int, *, min_bits: int = MIN_MODULUS_BITS,
                     rng: RandomSource | None = None) -> PrivateKey:
        """Spec 3.2: check p, q before building a key from them (their sizes
        first, spec 7.3, so that no primality test runs on an oversized factor)."""
        _check_min_bits(min_bits)
        for name, f in (("p", p), ("q", q)):
            if isinstance(f, bool) or not isinstance(f, (int, mpz)):
                raise ParameterError(f"Paillier factor {name} must be an integer")
        p, q = mpz(p), mpz(q)
        if max(p.bit_length(), q.bit_length()) > (MAX_MODULUS_BITS + 1) // 2:
            raise ParameterError(f"Paillier factors have at most {(MAX_MODULUS_BITS + 1) // 2} bits")
        if p == q:
            raise ParameterError("Paillier factors must be distinct")
        if p.bit_length() != q.bit_length():
            raise ParameterError("Paillier factors must have equal bit length")
        for name, f in (("p", p), ("q", q)):
            if not is_probable_prime(f, rng):
                raise ParameterError(f"Paillier factor {name} is not prime")
        n = p * q
        if gmpy2.gcd(n, (p - 1) * (q - 1)) != 1:
            raise ParameterError("gcd(n, (p-1)(q-1)) != 1")
        return cls(PublicKey(n, min_bits=min_bits), p, q)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, PrivateKey) and self.public_key == other.public_key and self.p == other.p

    def __hash__(self) -> int:
        return hash(self.public_key)

    def __repr__(self) -> str:
        return f"PrivateKey(public_key={self.public_key!r})"

    def decrypt(self, ciphertext: Ciphertext) -> mpz:
        """Spec 5: m mod p = L_p(c^(p-1) mod p^2) hp mod p, likewise mod q,
        recombined by CRT.  Returns m in [0, n)."""
        if ciphertext.public_key is not self.public_key and ciphertext.public_key != self.public_key:
            raise KeyMismatchError("ciphertext was encrypted under another public key")
        return self.decrypt_raw(ciphertext.c)

    def decrypt_raw(self, c: int) -> mpz:
        """Decrypt an integer already known to be a valid ciphertext."""
        p, q = self.p, self.q
        mp = mulmod((powmod(c, p - 1, self.psquare) - 1) // p, self.hp, p)
        mq = mulmod((powmod(c, q - 1, self.qsquare) - 1) // q, self.hq, q)
        # Garner: m = mp + p * ((mq - mp) p^-1 mod q)
        return mp + p * mulmod(mq - mp, self.p_inverse, q)

    def to_bytes(self) -> bytes:
        """p || q (p < q), each of length ceil(bits(n)/16)."""
        half = (self.public_key.bits + 15) // 16
        return int(self.p).to_bytes(half, "big") + int(self.q).to_bytes(half, "big")

    @classmethod
    def from_bytes(cls, data: bytes, *, min_bits: int = MIN_MODULUS_BITS) -> PrivateKey:
        if not isinstance(data, (bytes, bytearray)) or len(data) < 2 or len(data) % 2:
            raise DecodeError("a Paillier private key encoding is p || q of equal lengths")
        if len(data) > MAX_PRIVATE_KEY_BYTES:
            raise DecodeError(f"a Paillier private key encoding has at most {MAX_PRIVATE_KEY_BYTES} bytes")
        half = len(data) // 2
        p, q = int.from_bytes(data[:half], "big"), int.from_bytes(data[half:], "big")
        if p >= q:
            raise DecodeError("non-canonical Paillier private key: need p < q")
        key = cls.from_factors(p, q, min_bits=min_bits)
        if (key.public_key.bits + 15) // 16 != half:
            raise DecodeError("Paillier private key encoding has the wrong length for its modulus")
        return key


def generate_keypair(bits: int = DEFAULT_MODULUS_BITS,
                     rng: RandomSource | None = None) -> PrivateKey:
    """Spec 3.1.  Draw p, then draw q until p != q and |p - q| >= 2^(bits/2 - 100);
    both primes have bits/2 bits with the top two set, so n has exactly ``bits``."""
    if bits not in GENERATED_MODULUS_BITS:
        raise ParameterError(f"Paillier keys are generated at {GENERATED_MODULUS_BITS} bits, not {bits}")
    source = resolve(rng)
    half = bits // 2
    p = random_prime(half, source)
    while True:
        q = random_prime(half, source)
        if abs(p - q) >= mpz(1) << (half - 100):
            break
    key = PrivateKey(PublicKey(p * q), p, q)
    if key.public_key.bits != bits or gmpy2.gcd(key.public_key.n, (p - 1) * (q - 1)) != 1:
        raise ParameterError("generated Paillier key failed its own checks")  # cannot happen
    return key


# ---------------------------------------------------------------------------
# Ciphertexts and homomorphic operations (spec 6)
# ---------------------------------------------------------------------------


@dataclass(frozen=True, eq=False, slots=True)
class Ciphertext:
    """A Paillier ciphertext bound to its public key.

    Built only through :meth:`PublicKey.ciphertext` (validating) or by the
    scheme's own operations, whose results are valid by construction.
    """

    public_key: PublicKey
    c: mpz = field(repr=False)

    @staticmethod
    def _trusted(public_key: PublicKey, c: mpz) -> Ciphertext:
        """Wrap a value the scheme itself computed (no validation: hot path)."""
        obj = _new_ciphertext(Ciphertext)
        _set_public_key(obj, public_key)
        _set_c(obj, c)
        return obj

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Ciphertext) and self.public_key == other.public_key and self.c == other.c

    def __hash__(self) -> int:
        return hash((self.public_key, int(self.c)))

    def _same_key(self, other: Ciphertext) -> None:
        if other.public_key is not self.public_key and other.public_key != self.public_key:
            raise KeyMismatchError("cannot combine ciphertexts under different public keys")

    def __add__(self, other: Ciphertext | int) -> Ciphertext:
        """Spec 6.1: E(a) * E(b) = E(a + b); with an int, :meth:`add_plain`."""
        if isinstance(other, Ciphertext):
            pk = self.public_key
            if other.public_key is not pk and other.public_key != pk:
                raise KeyMismatchError("cannot add ciphertexts under different public keys")
            return Ciphertext._trusted(pk, mulmod(self.c, other.c, pk.nsquare))
        if isinstance(other, (int, mpz)) and not isinstance(other, bool):
            return self.add_plain(other)
        return NotImplemented

    __radd__ = __add__

    def add_plain(self, k: int) -> Ciphertext:
        """Spec 6.2: E(a) (1 + k n) = E(a + k mod n), k any integer."""
        pk = self.public_key
        return Ciphertext._trusted(pk, mulmod(self.c, 1 + (k % pk.n) * pk.n, pk.nsquare))

    def __mul__(self, k: int) -> Ciphertext:
        """Spec 6.3: E(a)^k = E(k a mod n), k any integer (negative via c^-1)."""
        if isinstance(k, bool) or not isinstance(k, (int, mpz)):
            return NotImplemented
        pk = self.public_key
        k = mpz(k)
        base = self.c
        if k < 0:
            base, k = invert(base, pk.nsquare), -k
        if k >= pk.n:
            k %= pk.n
        return Ciphertext._trusted(pk, powmod(base, k, pk.nsquare))

    __rmul__ = __mul__

    def __neg__(self) -> Ciphertext:
        """Spec 6.4: E(a)^-1 = E(-a mod n)."""
        pk = self.public_key
        return Ciphertext._trusted(pk, invert(self.c, pk.nsquare))

    def __sub__(self, other: Ciphertext | int) -> Ciphertext:
        if isinstance(other, Ciphertext):
            return self + (-other)
        if isinstance(other, (int, mpz)) and not isinstance(other, bool):
            return self.add_plain(-other)
        return NotImplemented

    def rerandomise(self, rng: RandomSource | None = None, *,
                    randomiser: int | None = None) -> Ciphertext:
        """Spec 6.5: multiply by a fresh randomiser r^n; the plaintext is
        unchanged and the result is unlinkable to the input under DCR."""
        pk = self.public_key
        rn = pk.randomiser(rng) if randomiser is None else randomiser
        return Ciphertext._trusted(pk, mulmod(self.c, rn, pk.nsquare))

    def to_bytes(self) -> bytes:
        """Spec 7.1: c as big-endian bytes of the fixed length of n^2."""
        return int(self.c).to_bytes(self.public_key.ciphertext_length(), "big")

    @classmethod
    def from_bytes(cls, public_key: PublicKey, data: bytes) -> Ciphertext:
        """Spec 7.2: exact length, then range and coprimality."""
        if not isinstance(data, (bytes, bytearray)):
            raise DecodeError("a Paillier ciphertext encoding must be bytes")
        if len(data) != public_key.ciphertext_length():
            raise DecodeError(
                f"Paillier ciphertext must be {public_key.ciphertext_length()} bytes, got {len(data)}"
            )
        return public_key.ciphertext(int.from_bytes(data, "big"))


# Slot descriptors of the frozen dataclass: setting through them skips the
# frozen __setattr__ guard, which matters on the addition hot path.
_new_ciphertext = object.__new__
_set_public_key = Ciphertext.__dict__["public_key"].__set__
_set_c = Ciphertext.__dict__["c"].__set__


def sum_ciphertexts(ciphertexts: Iterable[Ciphertext]) -> Ciphertext:
    """Spec 6.1 over many operands: the product of all ciphertexts mod n^2.

    Checks every operand's key, then multiplies with one reduction per step.
    Raises ParameterError on an empty input (the encryption of 0 would need
    randomness the caller must choose).
    """
    iterator = iter(ciphertexts)
    try:
        first = next(iterator)
    except StopIteration:
        raise ParameterError("sum_ciphertexts needs at least one ciphertext") from None
    pk = first.public_key
    values = [first.c]
    for item in iterator:
        if item.public_key is not pk and item.public_key != pk:
            raise KeyMismatchError("cannot add ciphertexts under different public keys")
        values.append(item.c)
    return Ciphertext._trusted(pk, product_mod(values, pk.nsquare))


PARALLEL_PRODUCT_MIN = 256
"""Fewest factors for which :func:`product_mod` uses a second thread (below
it, starting the thread costs more than it saves)."""


def _available_cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not every platform has it
        return os.cpu_count() or 1


def _product_releasing_gil(values: Sequence[mpz], modulus: mpz) -> mpz:
    """The product mod ``modulus``, one reduction per step, letting gmpy2 release the GIL in each operation."""
    with gmpy2.context(allow_release_gil=True):  # integer arithmetic only: no other setting matters
        acc = mpz(1)
        for value in values:
            acc = acc * value % modulus
    return acc


def product_mod(values: Sequence[mpz], modulus: mpz) -> mpz:
    """The product of ``values`` mod ``modulus``: spec 6.1 over many operands.

    One reduction per multiplication.  With at least
    :data:`PARALLEL_PRODUCT_MIN` factors and two CPUs available to the
    process, the second half is multiplied in a helper thread while this
    thread multiplies the first: gmpy2 releases the GIL inside its arithmetic
    when the thread's context allows it (``allow_release_gil``, set only
    for the two loops), so the halves run on two cores.  Multiplication mod
    ``modulus`` is associative and commutative, so the result is the same
    integer as the sequential product; an exception raised in the helper
    thread is raised again here.  Returns ``1 % modulus`` for no values.
    """
    modulus = mpz(modulus)
    count = len(values)
    if opcount.active():  # counted here, in the caller's context (the helper thread has none)
        count_modmul(modulus, max(0, count - 1))
    if count < PARALLEL_PRODUCT_MIN or _available_cpus() < 2:
        acc = mpz(1) % modulus
        for value in values:
            acc = acc * value % modulus
        return acc
    half = count // 2
    outcome: list = []

    def helper() -> None:
        try:
            outcome.append(_product_releasing_gil(values[half:], modulus))
        except BaseException as exc:  # noqa: BLE001 - handed to the caller below
            outcome.append(exc)

    thread = threading.Thread(target=helper, name="paillier-product", daemon=True)
    thread.start()
    try:
        first = _product_releasing_gil(values[:half], modulus)
    finally:
        thread.join()
    second = outcome[0]
    if isinstance(second, BaseException):
        raise second
    return first * second % modulus


# ---------------------------------------------------------------------------
# Fast encryption (spec 4.2) and offline/online encryption (spec 4.3)
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class FixedBaseTable:
    """Fixed-base exponentiation with a precomputed table (spec 4.2.2).

    rows[i][d - 1] = base^(d * 2^(w i)) mod modulus for digits d in [1, 2^w);
    base^e is the product of one entry per non-zero w-bit digit of e, about
    exponent_bits / w multiplications and no squarings.
    """

    base: mpz = field(repr=False)
    modulus: mpz = field(repr=False)
    exponent_bits: int
    window: int
    rows: tuple[tuple[mpz, ...], ...] = field(repr=False)

    @classmethod
    def build(cls, base: int, modulus: int, exponent_bits: int, window: int = 4) -> FixedBaseTable:
        if not 1 <= window <= 12:
            raise ParameterError("fixed-base window must be between 1 and 12 bits")
        if exponent_bits < 1:
            raise ParameterError("fixed-base exponent length must be positive")
        modulus = mpz(modulus)
        power = mpz(base) % modulus
        rows = []
        for _ in range((exponent_bits + window - 1) // window):
            row = [power]
            for _ in range((1 << window) - 2):
                row.append(row[-1] * power % modulus)
            rows.append(tuple(row))
            power = row[-1] * power % modulus  # base^(2^(w(i+1)))
        if opcount.active():
            count_modmul(modulus, sum(len(row) for row in rows) - 1)
        return cls(mpz(base), modulus, exponent_bits, window, tuple(rows))

    @property
    def entries(self) -> int:
        return sum(len(row) for row in self.rows)

    def power(self, e: int) -> mpz:
        """base^e mod modulus for 0 <= e < 2^exponent_bits."""
        if not 0 <= e < (1 << self.exponent_bits):
            raise ParameterError("exponent outside the table's range")
        e = mpz(e)
        mask = (1 << self.window) - 1
        modulus = self.modulus
        result = mpz(1)
        w = self.window
        products = 0
        for row in self.rows:
            digit = e & mask
            if digit:
                result = result * row[digit - 1] % modulus
                products += 1
            e >>= w
        if opcount.active():
            count_modmul(modulus, products)
        return result


def djn_exponent_bits(public_key: PublicKey) -> int:
    """Spec 4.2.1: the short exponent has ceil(k/2) bits, k = bits of n."""
    return (public_key.bits + 1) // 2


@dataclass(frozen=True)
class FastEncryptor:
    """Damgard-Jurik-Nielsen short-exponent encryption (spec 4.2).

    h = -x^2 mod n for a random x in Z*_n, h_s = h^n mod n^2 (an n-th residue);
    the randomiser is h_s^a for a uniform ceil(k/2)-bit a, computed with a
    fixed-base table.  The ciphertext (1 + m n) h_s^a is an ordinary Paillier
    ciphertext with r = h^a mod n, so any Paillier implementation decrypts it.
    """

    public_key: PublicKey
    h_s: mpz = field(repr=False)
    table: FixedBaseTable = field(repr=False)

    @classmethod
    def create(cls, public_key: PublicKey, rng: RandomSource | None = None,
               window: int = 4) -> FastEncryptor:
        """Draw x, set h = -x^2 mod n and h_s = h^n mod n^2, build the table."""
        x = public_key.random_r(rng)
        h = (-(x * x)) % public_key.n
        h_s = powmod(h, public_key.n, public_key.nsquare)
        return cls.from_h_s(public_key, h_s, window)

    @classmethod
    def from_h_s(cls, public_key: PublicKey, h_s: int, window: int = 4) -> FastEncryptor:
        """Use a published h_s (for example one distributed with the key);
        checked to be a unit of Z_{n^2} other than 1."""
        h_s = mpz(h_s)
        if not 1 < h_s < public_key.nsquare or gmpy2.gcd(h_s, public_key.n) != 1:
            raise ParameterError("h_s must be a unit of Z_{n^2} other than 1")
        table = FixedBaseTable.build(h_s, public_key.nsquare, djn_exponent_bits(public_key), window)
        return cls(public_key, h_s, table)

    def random_exponent(self, rng: RandomSource | None = None) -> mpz:
        return mpz(random_bits(rng, self.table.exponent_bits))

    def randomiser(self, rng: RandomSource | None = None) -> mpz:
        """h_s^a mod n^2 for a fresh short exponent a."""
        return self.table.power(self.random_exponent(rng))

    def encrypt_with_exponent(self, m: int, a: int) -> Ciphertext:
        """c = (1 + m n) h_s^a mod n^2 for an explicit exponent a (vectors)."""
        return self.public_key.encrypt_with_randomiser(m, self.table.power(a))

    def encrypt(self, m: int, rng: RandomSource | None = None) -> Ciphertext:
        return self.public_key.encrypt_with_randomiser(m, self.randomiser(rng))


@dataclass
class RandomiserPool:
    """Offline/online encryption (spec 4.3).

    Offline, in idle time, :meth:`refill` computes randomisers r^n mod n^2
    (standard, or h_s^a with a :class:`FastEncryptor`).  Online,
    :meth:`encrypt` is one multiplication.  Each randomiser is used once and
    discarded: reusing one would reveal the difference of two plaintexts.
    """

    public_key: PublicKey
    encryptor: FastEncryptor | None = None
    _randomisers: deque = field(default_factory=deque, repr=False)

    def __post_init__(self) -> None:
        if self.encryptor is not None and self.encryptor.public_key != self.public_key:
            raise KeyMismatchError("fast encryptor belongs to another public key")

    def __len__(self) -> int:
        return len(self._randomisers)

    def refill(self, count: int, rng: RandomSource | None = None) -> None:
        """Offline step: add ``count`` fresh randomisers."""
        if count < 0:
            raise ParameterError("refill count must be non-negative")
        make = self.public_key.randomiser if self.encryptor is None else self.encryptor.randomiser
        source = resolve(rng)
        self._randomisers.extend(make(source) for _ in range(count))

    def encrypt(self, m: int) -> Ciphertext:
        """Online step: (1 + m n) * rn mod n^2 with a never-used randomiser."""
        if not self._randomisers:
            raise StateError("randomiser pool is empty: refill it offline first")
        pk = self.public_key
        m = pk.check_plaintext(m)
        return Ciphertext._trusted(pk, mulmod(1 + m * pk.n, self._randomisers.popleft(), pk.nsquare))


# ---------------------------------------------------------------------------
# Two-core decryption (spec 5.2)
# ---------------------------------------------------------------------------


def _powmod_released(base: mpz, exponent: mpz, modulus: mpz) -> mpz:
    """powmod that lets other Python threads run while GMP computes."""
    with gmpy2.context(allow_release_gil=True):
        return gmpy2.powmod(base, exponent, modulus)


@dataclass
class ParallelDecryptor:
    """CRT decryption with the p and q halves on two threads (spec 5.2).

    The result is exactly :meth:`PrivateKey.decrypt`'s; only the schedule
    differs.  Owns a one-thread pool: use it as a context manager, or call
    :meth:`close`.
    """

    private_key: PrivateKey
    _pool: ThreadPoolExecutor = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="paillier-crt")

    def __enter__(self) -> ParallelDecryptor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._pool.shutdown(wait=True)

    def decrypt(self, ciphertext: Ciphertext) -> mpz:
        sk = self.private_key
        if ciphertext.public_key is not sk.public_key and ciphertext.public_key != sk.public_key:
            raise KeyMismatchError("ciphertext was encrypted under another public key")
        p, q, c = sk.p, sk.q, ciphertext.c
        if opcount.active():  # counted here: the pool thread does not see this context's counters
            count_modexp(p - 1, sk.psquare)
            count_modexp(q - 1, sk.qsquare)
            count_modmul(p, 2)
            count_modmul(q)
        half_p = self._pool.submit(_powmod_released, c, p - 1, sk.psquare)
        xq = _powmod_released(c, q - 1, sk.qsquare)
        mq = (xq - 1) // q * sk.hq % q
        mp = (half_p.result() - 1) // p * sk.hp % p
        return mp + p * ((mq - mp) * sk.p_inverse % q)
