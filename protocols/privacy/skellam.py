"""Exact Poisson and Skellam samplers for distributed noise (specs/dp.md section 3.5).

* :class:`BitReader` - the random bit stream of one sample: the bits of
  ``random_bytes(32)`` calls, most significant first, drawn only when needed
  (section 3.5.1);
* :func:`bernoulli_bits` - Bernoulli(n/d) for a rational with a large
  denominator, comparing a lazily read uniform with n/d eight bits at a time
  (section 3.5.2); about eight bits whatever the size of d;
* :func:`poisson` - Poisson(lam) for a rational lam >= 0 (section 3.5.3):
  lam < 2 as a sum of ceil(2 lam) Poisson(lam / ceil(2 lam)) draws, each by
  rejection from von Neumann's run length (the loop of [CKS20] Algorithm 1)
  with a rational acceptance probability; lam >= 2 by rejection from a
  uniform core of width 2w + 1 around the mode with halving tails, accepting
  k with the exact rational probability P(k) / P(mode) (times 2^v in a tail);
* :func:`skellam` - Poisson(lam) - Poisson(lam) from one bit stream
  (section 3.5.4); :class:`PoissonSampler` is the same sampler prepared
  once for a mean, which a noise configuration keeps (section 3.5.5).

Only integers, :class:`fractions.Fraction` and bits from the injected rng are
used: no float enters a sampler.  The Skellam family is closed under sums
(Poisson(a) + Poisson(b) = Poisson(a + b)), which is why the honest meters'
shares sum to exactly the central Skellam noise (section 4.5).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from fractions import Fraction

from protocols.errors import ParameterError
from protocols.primitives.rand import RandomSource, resolve

LARGE_MEAN = 2
"""Section 3.5.3: Poisson(lam) with lam >= 2 uses the core-and-tails rejection.  Below 2 the
sum of ceil(2 lam) <= 4 small Poissons is cheaper; above, their number grows with lam and the
rejection's 2.4 to 4.3 proposals do not."""

MAX_MEAN = Fraction(1 << 64)
"""Section 3.5.3, limits: the largest Poisson mean (about 1.8 * 10^19)."""

MAX_MEAN_BITS = 256
"""Section 3.5.3, limits: numerator and denominator of lam have at most 256 bits."""

REFILL_BYTES = 32
"""Section 3.5.1: the bit stream is drawn in ``random_bytes(32)`` calls (one HMAC_DRBG block)."""

STEP_BITS = 8
"""Section 3.5.2: BernoulliBits reads the uniform eight bits per step."""


def _mean(lam: object) -> Fraction:
    if isinstance(lam, bool) or not isinstance(lam, (int, Fraction)):
        if isinstance(lam, float):
            raise ParameterError("lam must not be a float: pass a fractions.Fraction or an int "
                                 "(specs/dp.md section 3.1)")
        raise ParameterError(f"lam must be a Fraction or int, not {type(lam).__name__}")
    lam = Fraction(lam)
    if lam < 0 or lam > MAX_MEAN:
        raise ParameterError("lam must be in [0, 2^64]")
    if max(lam.numerator.bit_length(), lam.denominator.bit_length()) > MAX_MEAN_BITS:
        raise ParameterError(f"lam's numerator and denominator must have at most {MAX_MEAN_BITS} bits")
    return lam


# -- section 3.5.1: the bit stream of one sample -------------------------------


class BitReader:
    """The random bits of one sample (specs/dp.md section 3.5.1).

    The stream is the concatenation of ``random_bytes(32)`` outputs, read
    from the most significant bit of the first byte on.  ``bits(k)`` returns
    the next k bits as a big-endian integer; a call is made only when fewer
    than k unread bits remain, and unread bits are dropped with the reader.
    """

    __slots__ = ("_source", "_buffer", "_available")

    def __init__(self, rng: RandomSource | None) -> None:
        self._source = resolve(rng)
        self._buffer = 0
        self._available = 0

    def bits(self, k: int) -> int:
        """The next k >= 1 bits of the stream, most significant first."""
        available = self._available
        while available < k:
            self._buffer = (self._buffer << (8 * REFILL_BYTES)) | int.from_bytes(
                self._source.random_bytes(REFILL_BYTES), "big")
            available += 8 * REFILL_BYTES
        available -= k
        buffer = self._buffer
        self._available = available
        self._buffer = buffer & ((1 << available) - 1)
        return buffer >> available

    def ones(self) -> int:
        """The number of 1 bits read before the first 0 bit, which is read too
        (section 3.5.1): the same bits as ``bits(1)`` until it returns 0."""
        count = 0
        while True:
            available = self._available
            if available:
                zeros = ~self._buffer & ((1 << available) - 1)   # the unread bits, inverted
                if zeros:
                    run = available - zeros.bit_length()          # 1 bits before the first 0
                    count += run
                    self._available = available - run - 1
                    self._buffer &= (1 << self._available) - 1
                    return count
                count += available
            self._buffer = int.from_bytes(self._source.random_bytes(REFILL_BYTES), "big")
            self._available = 8 * REFILL_BYTES

    def below(self, n: int) -> int:
        """Uniform in [0, n), n >= 1: read bitlen(n - 1) bits until the value is < n
        (section 3.5.1; nothing is read when n = 1)."""
        if n == 1:
            return 0
        width = (n - 1).bit_length()
        while True:
            value = self.bits(width)
            if value < n:
                return value


# -- section 3.5.2: Bernoulli(n/d) by lazy comparison -------------------------


def bernoulli_bits(numerator: int, denominator: int, rng: RandomSource | None = None) -> bool:
    """True with probability exactly n/d, 0 <= n <= d (specs/dp.md section 3.5.2),
    read from a fresh bit stream of ``rng`` (section 3.5.1).

    Reads eight bits at a time, x_j = the first 8j bits (a uniform U in
    [0, 1) to j bytes), and stops at the first j where x_j differs from
    floor(256^j n / d): U < n/d iff x_j is the smaller.  If x_j * d = 256^j n
    exactly, U >= n/d and the result is False.  n = 0 and n = d read nothing.
    """
    if isinstance(numerator, bool) or isinstance(denominator, bool) \
            or not isinstance(numerator, int) or not isinstance(denominator, int):
        raise ParameterError("bernoulli_bits takes int numerator and denominator")
    if denominator < 1 or not 0 <= numerator <= denominator:
        raise ParameterError("bernoulli_bits needs 0 <= n <= d, d >= 1")
    return _bernoulli_bits(numerator, denominator, BitReader(rng))


def _bernoulli_bits(n: int, d: int, reader: BitReader) -> bool:
    if n == 0:
        return False
    if n >= d:
        return True
    return _finish_bits(n, d, reader, 0, n)


def _finish_bits(n: int, d: int, reader: BitReader, x: int, scaled: int) -> bool:
    """The steps of section 3.5.2 from U's prefix x, scaled = 256^j n for the j bytes of x read."""
    while True:
        x = (x << STEP_BITS) | reader.bits(STEP_BITS)
        scaled <<= STEP_BITS
        low = x * d
        if low + d <= scaled:  # (x + 1) d <= 256^j n: x < floor(256^j n / d)
            return True
        if low >= scaled:      # x d >= 256^j n: U >= n / d
            return False


# -- section 3.5.3: Poisson --------------------------------------------------


def _poisson_small_pass(a: int, b: int, reader: BitReader) -> int | None:
    """One pass of PoissonSmall (section 3.5.3) for g = a/b <= 1/2: j with
    probability exactly (1 - g) g^j / j!, or None (rejected, probability
    1 - (1 - g) e^g).

    J = K - 1 for the first K with Bernoulli(g / K) false has
    P(J = j) = g^j / j! * (1 - g / (j + 1)); accepting j with probability
    (1 - g)(j + 1) / (j + 1 - g) = (b - a)(j + 1) / ((j + 1) b - a) leaves
    (1 - g) g^j / j!.
    """
    k = 1
    while _bernoulli_bits(a, b * k, reader):
        k += 1
    return k - 1 if _bernoulli_bits((b - a) * k, k * b - a, reader) else None


def _core_width(lam: Fraction) -> int:
    """w = isqrt(ceil(lam)) + 1, so w^2 > lam (section 3.5.3)."""
    return math.isqrt(-((-lam.numerator) // lam.denominator)) + 1


def _ratio_to_mode(lam: Fraction, m: int, k: int) -> tuple[int, int]:
    """P(k) / P(m) = lam^(k - m) m! / k! as (numerator, denominator), not reduced."""
    a, b = lam.numerator, lam.denominator
    if k >= m:
        d = k - m
        return a**d, b**d * math.perm(k, d)
    d = m - k
    return math.perm(m, d) * b**d, a**d


_BOUND_BITS = 128
"""Section 3.5.5: fixed-point precision of the bounds that decide most comparisons."""

_ONE = 1 << _BOUND_BITS


def _fixed(n: int, d: int, up: bool) -> int:
    """floor (or ceil, ``up``) of 2^128 n / d."""
    return -((-n << _BOUND_BITS) // d) if up else (n << _BOUND_BITS) // d


def _fixed_mul(x: int, y: int, up: bool) -> int:
    return -((-x * y) >> _BOUND_BITS) if up else (x * y) >> _BOUND_BITS


def _fixed_pow(x: int, e: int, up: bool) -> int:
    """x^e in 2^-128 fixed point, every product rounded down (or up)."""
    result = 1 << _BOUND_BITS
    while e:
        if e & 1:
            result = _fixed_mul(result, x, up)
        e >>= 1
        if e:
            x = _fixed_mul(x, x, up)
    return result


def _ratio_low(lam: Fraction, m: int, k: int) -> int:
    """Fixed-point lo <= P(k) / P(m) (section 3.5.5): for k > m the AM-GM bound
    prod_{i=1..d} (m + i) <= (m + (d + 1)/2)^d; for k < m the pairing bound
    (m - i)(m - d + 1 + i) >= m (m - d + 1) on prod_{i=0..d-1} (m - i)."""
    a, b = lam.numerator, lam.denominator
    if k >= m:
        return _fixed_pow(_fixed(2 * a, b * (2 * m + k - m + 1), False), k - m, False)
    d = m - k
    lo = _fixed_pow(_fixed(b * b * m * (m - d + 1), a * a, False), d // 2, False)
    if d % 2:
        lo = _fixed_mul(lo, _fixed(b * (2 * m - d + 1), 2 * a, False), False)
    return lo


def _ratio_high(lam: Fraction, m: int, k: int) -> int:
    """Fixed-point hi >= P(k) / P(m): the mirror images of :func:`_ratio_low`'s bounds."""
    a, b = lam.numerator, lam.denominator
    if k >= m:
        d = k - m
        hi = _fixed_pow(_fixed(a * a, b * b * (m + 1) * (m + d), True), d // 2, True)
        if d % 2:
            hi = _fixed_mul(hi, _fixed(2 * a, b * (2 * m + d + 1), True), True)
        return hi
    d = m - k
    return _fixed_pow(_fixed(b * (2 * m - d + 1), 2 * a, True), d, True)


def _ratio_bounds(lam: Fraction, m: int, k: int) -> tuple[int, int]:
    """(lo, hi) in 2^-128 fixed point with lo <= P(k) / P(m) <= hi."""
    return _ratio_low(lam, m, k), _ratio_high(lam, m, k)


def _chunked_bounds(lam: Fraction, m: int, k: int, chunks: int) -> tuple[int, int]:
    """Tighter (lo, hi) for P(k) / P(m) (section 3.5.5): the product F of j / lam over
    j in (m, k] (k > m, ratio 1/F) or (k, m] (k < m, ratio F) is cut into ``chunks``
    runs of consecutive j, each bounded by AM-GM above and by pairing below as in
    :func:`_ratio_low`; the gap shrinks about as chunks^2."""
    if k == m:
        return _ONE, _ONE
    a, b = lam.numerator, lam.denominator
    j0, j1 = (m + 1, k) if k > m else (k + 1, m)
    size = -(-(j1 - j0 + 1) // chunks)
    f_lo = f_hi = _ONE
    for start in range(j0, j1 + 1, size):
        end = min(j1, start + size - 1)
        count, mid2 = end - start + 1, start + end     # mid2 / 2 is the run's mean j
        f_hi = _fixed_mul(f_hi, _fixed_pow(_fixed(b * mid2, 2 * a, True), count, True), True)
        low = _fixed_pow(_fixed(b * b * start * end, a * a, False), count // 2, False)
        if count % 2:
            low = _fixed_mul(low, _fixed(b * mid2, 2 * a, False), False)
        f_lo = _fixed_mul(f_lo, low, False)
    if k < m:
        return f_lo, f_hi
    return (_ONE << _BOUND_BITS) // f_hi, -((-_ONE << _BOUND_BITS) // max(1, f_lo))


_REFINEMENTS = (64, 4096)
"""Section 3.5.5: chunk counts of :func:`_chunked_bounds` tried, in order, before the exact ratio."""


BLOCKS_PER_WIDTH = 256
"""Section 3.5.5: the bracket table has blocks of h = max(1, w // 256) consecutive k."""

_STEP_SHIFT = _BOUND_BITS - STEP_BITS


@dataclass(frozen=True)
class PoissonSampler:
    """Poisson(lam) prepared once for one mean (specs/dp.md sections 3.5.3 and 3.5.5).

    Draws exactly what :func:`poisson` draws; it only keeps, between samples,
    the parameters of lam and a table of fixed-point brackets of P(k)/P(m)
    over blocks of k, filled on first use.  The table is a cache of values
    that depend on lam alone: it decides comparisons sooner and never
    changes a draw or an output (section 3.5.5).
    """

    lam: Fraction
    _m: int = field(init=False, repr=False, compare=False)
    _w: int = field(init=False, repr=False, compare=False)
    _block: int = field(init=False, repr=False, compare=False)
    _pieces: int = field(init=False, repr=False, compare=False)
    _brackets: dict[int, tuple[int, int]] = field(init=False, repr=False, compare=False)

    @classmethod
    def of(cls, lam: Fraction | int) -> PoissonSampler:
        """The sampler of Poisson(lam); lam is checked (section 3.5.3, limits) before anything is drawn."""
        return cls(_mean(lam))

    def __post_init__(self) -> None:
        lam = _mean(self.lam)
        a, b = lam.numerator, lam.denominator
        w = _core_width(lam) if lam >= LARGE_MEAN else 0
        for name, value in (("lam", lam), ("_m", a // b), ("_w", w), ("_block", max(1, w // BLOCKS_PER_WIDTH)),
                            ("_pieces", max(1, -((-2 * a) // b))), ("_brackets", {})):
            object.__setattr__(self, name, value)

    def draw(self, reader: BitReader) -> int:
        """One sample from ``reader``'s stream (section 3.5.3)."""
        if self._w:
            return self._large(reader)
        a, b = self.lam.numerator, self.lam.denominator * self._pieces
        total = 0
        for _ in range(self._pieces):
            while True:
                j = _poisson_small_pass(a, b, reader)
                if j is not None:
                    total += j
                    break
        return total

    def sample(self, rng: RandomSource | None = None) -> int:
        """One sample from a fresh bit stream of ``rng`` (:func:`poisson`)."""
        return self.draw(BitReader(rng))

    def skellam(self, rng: RandomSource | None = None) -> int:
        """Poisson(lam) - Poisson(lam) from one bit stream (section 3.5.4, :func:`skellam`)."""
        reader = BitReader(rng)
        first = self.draw(reader)
        return first - self.draw(reader)

    def _large(self, reader: BitReader) -> int:
        """PoissonLarge of section 3.5.3 (lam >= 2)."""
        m, w = self._m, self._w
        span, core = 6 * w + 1, 2 * w
        width = (span - 1).bit_length()
        bits = reader.bits
        while True:
            c = bits(width)          # RandomBelow(6w + 1) of section 3.5.1
            while c >= span:
                c = bits(width)
            v = 0
            if c <= core:
                k = m - w + c        # >= 0: m >= w for lam >= 2
            else:
                c -= core + 1
                v = reader.ones()    # Bernoulli(1/2) draws, one bit each, until a 0
                u = c % w
                if c < core:
                    k = m + w + 1 + v * w + u
                else:
                    k = m - w - 1 - v * w - u
                    if k < 0:
                        continue
            if self._accept(k, v, reader):
                return k

    def _bracket(self, key: int) -> tuple[int, int]:
        """(lo, hi) with lo <= P(k)/P(m) <= hi for every k of block ``key``
        (section 3.5.5): key j >= 0 holds k - m in [j h, j h + h - 1], key
        -j - 1 holds m - k there; P(k)/P(m) falls away from m on both sides."""
        m, h = self._m, self._block
        if key >= 0:
            near, far = m + key * h, m + key * h + h - 1
        else:
            j = -key - 1
            near, far = m - j * h, max(0, m - j * h - h + 1)
        pair = (_ratio_low(self.lam, m, far), _ratio_high(self.lam, m, near))
        self._brackets[key] = pair
        return pair

    def _accept(self, k: int, v: int, reader: BitReader) -> bool:
        """BernoulliBits(2^v P(k)/P(m)) of section 3.5.2, the first step decided
        by the block bracket when it can be, then by :func:`_accept_from`."""
        m = self._m
        if v == 0 and (k == m or (k == m - 1 and self.lam == m)):
            return True      # P(k)/P(m) = 1 exactly: BernoulliBits(1) reads nothing
        key = (k - m) // self._block if k >= m else -((m - k) // self._block) - 1
        pair = self._brackets.get(key)
        if pair is None:
            pair = self._bracket(key)
        if v and pair[1] << v >= _ONE:     # a tail ratio that may reach 2^-v: exactly 1 reads nothing
            n, d = _ratio_to_mode(self.lam, m, k)
            if n << v >= d:
                return _exactly_one(n << v, d)
        x = reader.bits(STEP_BITS)
        if (x + 1) << _STEP_SHIFT <= pair[0] << v:   # U < (x + 1)/256 <= lo <= ratio: True
            return True
        if x << _STEP_SHIFT >= pair[1] << v:         # U >= x/256 >= hi >= ratio: False
            return False
        return _accept_from(self.lam, m, k, v, reader, x)


def _exactly_one(n: int, d: int) -> bool:
    if n > d:  # excluded by the envelope of section 3.5.3; a failure here is a bug
        raise ParameterError("internal: Poisson envelope violated")
    return True


def _accept_from(lam: Fraction, m: int, k: int, v: int, reader: BitReader, x: int) -> bool:
    """Bernoulli(2^v P(k) / P(m)) of section 3.5.2 after its first step read x:
    each step decided by the tightest bounds computed so far when they decide
    it; bounds that do not are replaced by tighter ones (:func:`_ratio_low`
    and :func:`_ratio_high`, then :func:`_chunked_bounds`), and the exact
    ratio is computed only when the tightest do not decide."""
    lo = _ratio_low(lam, m, k) << v
    hi = -1
    refinements = iter(_REFINEMENTS)
    scale = 1 << STEP_BITS
    while True:
        if (x + 1) << _BOUND_BITS <= lo * scale:   # U's interval below lo <= ratio: exact rule says True
            return True
        if hi < 0:
            hi = _ratio_high(lam, m, k) << v
        if x << _BOUND_BITS >= hi * scale:         # U's interval at or above hi >= ratio: False
            return False
        if x << _BOUND_BITS < lo * scale and (x + 1) << _BOUND_BITS > hi * scale:
            x = (x << STEP_BITS) | reader.bits(STEP_BITS)   # the ratio is inside U's interval: next step
            scale <<= STEP_BITS
            continue
        chunks = next(refinements, None)          # these bounds cannot decide this step
        if chunks is None:
            break
        lo, hi = _chunked_bounds(lam, m, k, chunks)
        lo, hi = lo << v, hi << v
    n, d = _ratio_to_mode(lam, m, k)
    n <<= v
    if n > d:  # excluded by the envelope of section 3.5.3; a failure here is a bug
        raise ParameterError("internal: Poisson envelope violated")
    scaled = n * scale
    low = x * d
    if low + d <= scaled:
        return True
    if low >= scaled:
        return False
    return _finish_bits(n, d, reader, x, scaled)


def poisson(lam: Fraction | int, rng: RandomSource | None = None) -> int:
    """One sample of Poisson(lam), lam >= 0 rational, from a fresh bit stream of
    ``rng`` (specs/dp.md section 3.5.3)."""
    return PoissonSampler.of(lam).sample(rng)


def skellam(lam: Fraction | int, rng: RandomSource | None = None) -> int:
    """Poisson(lam) - Poisson(lam), the first drawn first, both from one bit
    stream of ``rng`` (specs/dp.md section 3.5.4)."""
    return PoissonSampler.of(lam).skellam(rng)
