"""specs/paillier.md section 3.1 states BPSW as an algorithm; this checks that the text, implemented here
from the spec alone, takes the same decision as the code's test (gmpy2.is_bpsw_prp) on every odd number
below 2^17 and on the known base-2 strong pseudoprimes and Lucas-Selfridge pseudoprimes."""

from __future__ import annotations

import math

import gmpy2


def strong_probable_prime(c: int, a: int) -> bool:
    d, s = c - 1, 0
    while d % 2 == 0:
        d, s = d // 2, s + 1
    x = pow(a, d, c)
    if x in (1, c - 1):
        return True
    for _ in range(s - 1):
        x = x * x % c
        if x == c - 1:
            return True
    return False


def jacobi(a: int, n: int) -> int:
    a, result = a % n, 1
    while a:
        while a % 2 == 0:
            a //= 2
            if n % 8 in (3, 5):
                result = -result
        a, n = n, a
        if a % 4 == 3 and n % 4 == 3:
            result = -result
        a %= n
    return result if n == 1 else 0


def lucas_u(k: int, p: int, q: int, n: int) -> int:
    """U_k(P, Q) mod n by the definition U_0 = 0, U_1 = 1, U_j = P U_(j-1) - Q U_(j-2), computed with the
    doubling formulas U_2j = U_j V_j, V_2j = V_j^2 - 2 Q^j, U_(j+1) = (P U_j + V_j)/2, V_(j+1) = (D U_j + P V_j)/2."""
    d = p * p - 4 * q
    inv2 = pow(2, -1, n)
    u, v, qk = 0, 2, 1                      # U_0, V_0, Q^0
    for bit in bin(k)[2:]:
        u, v, qk = u * v % n, (v * v - 2 * qk) % n, qk * qk % n
        if bit == "1":
            u, v, qk = (p * u + v) * inv2 % n, (d * u + p * v) * inv2 % n, qk * q % n
    return u


def bpsw(c: int) -> bool:
    """specs/paillier.md section 3.1, BPSW(c), for odd c >= 3."""
    if not strong_probable_prime(c, 2):
        return False
    if math.isqrt(c) ** 2 == c:
        return False
    d = 5
    while True:
        j = jacobi(d, c)
        if j == -1:
            break
        if j == 0:
            return abs(d) == c
        d = -d - 2 if d > 0 else -d + 2
    return lucas_u(c + 1, 1, (1 - d) // 4, c) == 0


PSEUDOPRIMES = [2047, 3277, 4033, 4681, 8321, 15841, 29341, 42799, 49141, 52633, 65281, 74665, 80581, 85489,
                88357, 90751, 323, 377, 1159, 1829, 3827, 5459, 5777, 9071, 9179, 10877, 11419, 11663, 13919,
                14839, 16109, 16211, 18407, 18971, 19043, 3215031751, 2152302898747, 3474749660383,
                341550071728321, 3825123056546413051]


def test_the_spec_bpsw_decides_as_the_code_does() -> None:
    numbers = list(range(3, 1 << 17, 2)) + PSEUDOPRIMES + [p * p for p in (2003, 65537, 1000003)]
    differ = [c for c in numbers if bpsw(c) != bool(gmpy2.is_bpsw_prp(c))]
    assert differ == []
