"""Number theory over gmpy2: inverses, CRT, primality and prime generation.

Prime generation follows one fixed rule (specs/paillier.md section 3.1) so a
seeded DRBG reproduces a key byte for byte: draw a candidate from ``rng``, set
its two top bits and its low bit, reject it on trial division or on the
primality test, and draw afresh (no incremental search, so candidates are
uniform over the admissible set).
"""

from __future__ import annotations

from collections.abc import Sequence

import gmpy2
from gmpy2 import mpz

from protocols.errors import ParameterError
from protocols.primitives import opcount
from protocols.primitives.rand import RandomSource, random_bits, random_range, resolve

SMALL_PRIMES_PRODUCT = mpz(1)
for _p in range(3, 2000, 2):
    if gmpy2.is_prime(_p):
        SMALL_PRIMES_PRODUCT *= _p
del _p

MILLER_RABIN_ROUNDS = 40
"""Random-base Miller-Rabin rounds after the Baillie-PSW test; together they
leave an error probability below 2^-80 even for adversarial candidates."""


COUNTED_MIN_BITS = 193
"""Big-number operations are counted (specs/costs.md 2.1) when the modulus has at least this many
bits, that is when its size class is 256 or more; smaller moduli are small-field arithmetic."""


def count_modexp(exponent: int, modulus: int) -> None:
    """Record one ``modexp:{b}`` and ``|exponent|.bit_length()`` ``modexp_bit:{b}`` for a modular
    exponentiation done elsewhere (b the modulus' size class, section 2.2).  Call it only when
    :func:`opcount.active` is true."""
    bits = int(modulus).bit_length()
    if bits >= COUNTED_MIN_BITS:
        size = opcount.size_class(bits)
        opcount.record(f"modexp:{size}")
        opcount.record(f"modexp_bit:{size}", abs(int(exponent)).bit_length())


def count_modmul(modulus: int, n: int = 1) -> None:
    """Record ``n`` ``modmul:{b}`` at the modulus' size class (call it only when active)."""
    bits = int(modulus).bit_length()
    if bits >= COUNTED_MIN_BITS:
        opcount.record(f"modmul:{opcount.size_class(bits)}", n)


def count_modinv(modulus: int) -> None:
    """Record one ``modinv:{b}`` at the modulus' size class (call it only when active)."""
    bits = int(modulus).bit_length()
    if bits >= COUNTED_MIN_BITS:
        opcount.record(f"modinv:{opcount.size_class(bits)}")


def bpsw(n: int) -> bool:
    """gmpy2's Baillie-PSW probable-prime test, counted as one ``prime_test:{b}`` (specs/costs.md 2.1)."""
    if opcount.active() and int(n).bit_length() >= COUNTED_MIN_BITS:
        opcount.record(f"prime_test:{opcount.size_class(int(n).bit_length())}")
    return bool(gmpy2.is_bpsw_prp(n))


def powmod(base: int, exponent: int, modulus: int) -> mpz:
    """``gmpy2.powmod(base, exponent, modulus)``, counted (``modexp``, ``modexp_bit``)."""
    if opcount.active():
        count_modexp(exponent, modulus)
    return gmpy2.powmod(base, exponent, modulus)


def mulmod(a: int, b: int, modulus: int) -> mpz:
    """``a * b mod modulus`` (as mpz), counted as one ``modmul``."""
    if opcount.active():
        count_modmul(modulus)
    return mpz(a) * b % modulus


def invert(a: int, m: int) -> mpz:
    """a^-1 mod m; ParameterError when gcd(a, m) != 1.  Counted as one ``modinv``."""
    if m < 2:
        raise ParameterError("modulus of an inverse must be >= 2")
    if opcount.active():
        count_modinv(m)
    try:
        return gmpy2.invert(mpz(a), mpz(m))
    except ZeroDivisionError as exc:  # gmpy2 signals a non-invertible element so
        raise ParameterError("element is not invertible modulo m") from exc


def crt_pair(a_p: int, a_q: int, p: int, q: int, q_inv_p: int) -> mpz:
    """The x mod pq with x = a_p mod p and x = a_q mod q (Garner's formula),
    given the precomputed q^-1 mod p.  Counted as one ``modmul`` at p's size class."""
    if opcount.active():
        count_modmul(p)
    h = ((mpz(a_p) - a_q) * q_inv_p) % p
    return mpz(a_q) + h * q


def crt(residues: Sequence[int], moduli: Sequence[int]) -> mpz:
    """The unique x mod prod(moduli) with x = residues[i] mod moduli[i] for
    pairwise coprime moduli; ParameterError otherwise."""
    if len(residues) != len(moduli) or not moduli:
        raise ParameterError("crt needs as many residues as moduli, at least one")
    x, m = mpz(0), mpz(1)
    for r, mi in zip(residues, moduli):
        mi = mpz(mi)
        if mi < 1:
            raise ParameterError("crt moduli must be positive")
        if gmpy2.gcd(m, mi) != 1:
            raise ParameterError("crt moduli must be pairwise coprime")
        x = x + m * (((mpz(r) - x) * gmpy2.invert(m, mi)) % mi)
        m *= mi
    return x % m


def is_probable_prime(n: int, rng: RandomSource | None = None,
                      rounds: int = MILLER_RABIN_ROUNDS) -> bool:
    """Baillie-PSW, then ``rounds`` Miller-Rabin tests with bases drawn from
    ``rng`` (so an adversary cannot pick a composite that passes fixed bases)."""
    n = mpz(n)
    if n < 2:
        return False
    if n < 2000:
        return bool(gmpy2.is_prime(n))
    if n % 2 == 0 or gmpy2.gcd(n, SMALL_PRIMES_PRODUCT) != 1:
        return False
    if not bpsw(n):
        return False
    for _ in range(rounds):
        base = random_range(rng, 2, int(n - 1))
        if opcount.active():               # a strong probable-prime test: one exponentiation by n - 1
            count_modexp(n - 1, n)
        if not gmpy2.is_strong_prp(n, base):
            return False
    return True


def random_prime(bits: int, rng: RandomSource | None = None) -> mpz:
    """A random prime of exactly ``bits`` bits whose two top bits are set, so
    that the product of two such primes has exactly 2 * bits bits."""
    if bits < 16:
        raise ParameterError("primes of fewer than 16 bits are not generated")
    source = resolve(rng)
    top = mpz(3) << (bits - 2)
    while True:
        candidate = mpz(random_bits(source, bits)) | top | 1
        if gmpy2.gcd(candidate, SMALL_PRIMES_PRODUCT) != 1:
            continue
        if is_probable_prime(candidate, source):
            return candidate
