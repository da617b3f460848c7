"""Tests of protocols.privacy.skellam and the Skellam shares of protocols.privacy.dp
(specs/dp.md sections 3.5, 4.5, 5.3).

- exact distributions by exhaustive enumeration of the uniform draws
  (PoissonSmall, BernoulliBits), with the unexplored mass as the only slack;
- the fixed-point bounds of the large-mean rejection bracket the exact ratio,
  and the envelope covers the Poisson pmf (hypothesis, exact rationals);
- chi-square of Poisson on both paths and of a sum of shares against
  Skellam(K lam), on fixed DRBG seeds (deterministic, never flaky);
- draw reproducibility, symmetry, the clamp, and typed errors before any draw;
- dropouts and collusion: fewer honest shares leave less noise and a larger
  epsilon (section 4.5.4), measured with the real sampler and accountant.
"""

from __future__ import annotations

import math
from collections import Counter
from fractions import Fraction

import pytest
import test_dp_from_spec as spec
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from protocols.errors import ParameterError, RandomnessError
from protocols.primitives.drbg import HmacDrbg
from protocols.primitives.rand import ReplayRandom
from protocols.privacy import accounting, dp, skellam
from protocols.privacy.dp import Mechanism, NoiseShareConfig, PrivacyLevel


def _config(level=PrivacyLevel.MEDIUM, n=500, gamma=Fraction(1, 2), releases=24, sensitivity=4095):
    return NoiseShareConfig(level, sensitivity, n, gamma, Fraction(1, 10**6), Mechanism.SKELLAM, releases)


# -- the bit stream (section 3.5.1) --------------------------------------------


def test_bit_reader_reads_32_byte_calls_most_significant_bit_first():
    block1, block2 = bytes(range(32)), bytes(range(100, 132))
    rng = ReplayRandom([block1, block2])
    reader = skellam.BitReader(rng)
    assert reader.bits(4) == 0 and reader.bits(12) == 1   # 0x00 0x01
    assert reader.bits(8) == 2
    assert reader.bits(232) == int.from_bytes(block1[3:], "big")
    assert not rng.exhausted                              # nothing drawn before it is needed
    assert reader.bits(9) == 100 << 1 | 101 >> 7 and rng.exhausted
    assert reader.bits(247) == int.from_bytes(block2, "big") & ((1 << 247) - 1)
    with pytest.raises(RandomnessError):
        reader.bits(1)


def test_bit_reader_below_reads_bitlen_bits_and_rejects():
    # below(5) reads 3 bits at a time: 7, 5 are rejected, 3 is returned; below(1) reads nothing
    reader = skellam.BitReader(ReplayRandom([bytes([0b11110101, 0b1101_1000]) + bytes(30)]))
    assert reader.below(1) == 0 and reader.below(5) == 3 and reader.bits(7) == 0b1011000


@settings(max_examples=30, deadline=None)
@given(st.lists(st.integers(1, 70), min_size=1, max_size=30), st.binary(min_size=32 * 9, max_size=32 * 9))
def test_bit_reader_is_the_concatenated_stream(widths, stream):
    """Whatever the widths read, the values are consecutive slices of the stream of 32-byte calls."""
    reader = skellam.BitReader(ReplayRandom([stream[i:i + 32] for i in range(0, len(stream), 32)]))
    total = int.from_bytes(stream, "big")
    position = 0
    for width in widths:
        position += width
        assert reader.bits(width) == (total >> (8 * len(stream) - position)) & ((1 << width) - 1)


# -- exhaustive enumeration ----------------------------------------------------


@pytest.mark.parametrize("n,d", [(1, 3), (2, 7), (12345, 65536), (10**40 + 1, 3 * 10**40)])
def test_bernoulli_bits_exact_by_enumeration(n, d):
    """Every 2-byte prefix of the stream: all continuations True, all False, or undecided (a
    True set is closed downwards, so the continuations 00.. and ff.. decide it); P(True) lies
    within the undecided mass."""
    true_mass = false_mass = undecided = 0
    for prefix in range(1 << 16):
        head = prefix.to_bytes(2, "big")
        low = skellam.bernoulli_bits(n, d, ReplayRandom([head + bytes(30)]))
        high = skellam.bernoulli_bits(n, d, ReplayRandom([head + b"\xff" * 30]))
        if low and high:
            true_mass += 1
        elif not low and not high:
            false_mass += 1
        else:
            undecided += 1
    p = Fraction(n, d)
    assert Fraction(true_mass, 1 << 16) <= p <= Fraction(true_mass + undecided, 1 << 16)
    assert undecided <= 2


def test_bernoulli_bits_endpoints_draw_nothing():
    assert skellam.bernoulli_bits(0, 5, ReplayRandom([])) is False
    assert skellam.bernoulli_bits(5, 5, ReplayRandom([])) is True


def _enumerate_pass(g: Fraction, depth: int) -> tuple[Counter, Fraction]:
    """Exact output distribution of one PoissonSmall pass for g, given exact Bernoulli draws:
    depth-first over every sequence of at most ``depth`` Bernoulli outcomes, each weighted n/d
    or 1 - n/d; returns (mass per output, unexplored mass)."""
    mass: Counter = Counter()
    unexplored = Fraction(0)
    stack: list[tuple[bool, ...]] = [()]
    while stack:
        script = stack.pop()
        asked: list[Fraction] = []

        def scripted(n, d, reader):
            asked.append(Fraction(n, d))
            if len(asked) > len(script):
                raise _Exhausted
            return script[len(asked) - 1]

        weight = Fraction(1)
        try:
            with pytest.MonkeyPatch.context() as patcher:
                patcher.setattr(skellam, "_bernoulli_bits", scripted)
                out = skellam._poisson_small_pass(g.numerator, g.denominator, None)
        except _Exhausted:
            for p, outcome in zip(asked, script):
                weight *= p if outcome else 1 - p
            if len(script) >= depth:
                unexplored += weight
            else:
                stack.extend([script + (True,), script + (False,)])
            continue
        for p, outcome in zip(asked, script):
            weight *= p if outcome else 1 - p
        mass[out] += weight
    return mass, unexplored


class _Exhausted(Exception):
    pass


@pytest.mark.parametrize("lam", [Fraction(1, 2), Fraction(1, 3), Fraction(2, 7), Fraction(0)])
def test_poisson_small_pass_exact_by_enumeration(lam):
    """One pass outputs j with probability exactly (1 - lam) lam^j / j! (rationals compared
    exactly), for every j whose draws all fit the enumeration depth (j + 2 Bernoulli draws)."""
    depth = 8
    mass, rest = _enumerate_pass(lam, depth)
    for j in range(depth - 1):
        assert mass.get(j, 0) == (1 - lam) * lam**j / math.factorial(j)
    accepted_total = sum(v for k, v in mass.items() if k is not None)
    assert accepted_total <= (1 - lam) * Fraction(math.ceil(math.exp(float(lam)) * 10**12), 10**12)
    assert sum(mass.values()) + rest == 1


# -- the large-mean rejection (section 3.5.3) ----------------------------------

LARGE = st.builds(Fraction, st.integers(2, 10**7), st.integers(1, 1000)).filter(lambda f: f >= skellam.LARGE_MEAN)


@settings(max_examples=60, deadline=None)
@given(LARGE, st.integers(-3, 3), st.integers(0, 10**6))
def test_ratio_bounds_bracket_the_exact_ratio(lam, region, offset):
    m = lam.numerator // lam.denominator
    w = skellam._core_width(lam)
    k = max(0, m + region * w + (offset % (w + 1)) * (1 if region >= 0 else -1))
    lo, hi = skellam._ratio_bounds(lam, m, k)
    n, d = skellam._ratio_to_mode(lam, m, k)
    exact = Fraction(n, d) * (1 << skellam._BOUND_BITS)
    assert lo <= exact <= hi


@settings(max_examples=40, deadline=None)
@given(LARGE, st.integers(0, 6), st.integers(0, 10**6), st.booleans())
def test_envelope_covers_the_pmf(lam, v, offset, upper):
    """P(k)/P(m) <= 2^-v in tail block v, so the acceptance 2^v P(k)/P(m) is a probability."""
    m = lam.numerator // lam.denominator
    w = skellam._core_width(lam)
    u = offset % w
    k = m + w + 1 + v * w + u if upper else m - w - 1 - v * w - u
    if k < 0:
        return
    n, d = skellam._ratio_to_mode(lam, m, k)
    assert Fraction(n << v, d) <= 1


@pytest.mark.parametrize("lam,seed", [(Fraction(3, 2), "p-1.5"), (Fraction(5, 2), "p-2.5"), (Fraction(7, 2), "p-3.5"),
                                      (Fraction(16), "p-16"),
                                      (Fraction(1000, 3), "p-333"), (Fraction(10**6 + 1, 7), "p-142857")])
def test_poisson_chi_square(lam, seed):
    rng = HmacDrbg.from_seed("test-dp-skellam/" + seed)
    samples = [skellam.poisson(lam, rng) for _ in range(3000)]
    mean, sd = float(lam), math.sqrt(float(lam))
    low, high = max(0, int(mean - 2.5 * sd)), int(mean + 2.5 * sd)
    step = max(1, (high - low) // 20)
    # bin by step so each cell has enough mass
    binned = [(x - low) // step for x in samples]
    edges = [low + i * step for i in range((high - low) // step + 2)]
    dist = stats.poisson(mean)
    probs = [dist.cdf(edges[1] - 1)] + [dist.cdf(edges[i + 1] - 1) - dist.cdf(edges[i] - 1)
                                        for i in range(1, len(edges) - 2)]
    probs.append(1 - sum(probs))
    counts = Counter(min(max(b, 0), len(probs) - 1) for b in binned)
    observed = [counts.get(i, 0) for i in range(len(probs))]
    _, p_value = stats.chisquare(observed, [p * len(samples) for p in probs])
    assert p_value > 1e-4


def test_sum_of_shares_is_skellam_of_the_sum():
    """K shares of lam sum to Skellam(K lam) exactly (section 4.5): chi-square on 1500 sums."""
    lam, k = Fraction(3, 10), 8
    rng = HmacDrbg.from_seed("test-dp-skellam/sum")
    sums = [sum(skellam.skellam(lam, rng) for _ in range(k)) for _ in range(1500)]
    dist = stats.skellam(float(lam * k), float(lam * k))
    cells = list(range(-4, 5))
    probs = [dist.cdf(-5)] + [dist.pmf(c) for c in cells] + [dist.sf(4)]
    counts = Counter(sums)
    observed = [sum(v for x, v in counts.items() if x < -4)] + [counts.get(c, 0) for c in cells] \
        + [sum(v for x, v in counts.items() if x > 4)]
    _, p_value = stats.chisquare(observed, [p * len(sums) for p in probs])
    assert p_value > 1e-4


def test_skellam_is_symmetric_and_centred():
    rng = HmacDrbg.from_seed("test-dp-skellam/symmetry")
    xs = [skellam.skellam(Fraction(50), rng) for _ in range(3000)]
    positive, negative = sum(x > 0 for x in xs), sum(x < 0 for x in xs)
    assert stats.binomtest(positive, positive + negative).pvalue > 1e-4
    assert abs(sum(xs) / len(xs)) < 4 * math.sqrt(100 / len(xs))
    assert sum(x * x for x in xs) / len(xs) == pytest.approx(100, rel=0.12)


@settings(max_examples=25, deadline=None)
@given(st.text(max_size=12), st.builds(Fraction, st.integers(0, 10**9), st.integers(1, 50)))
def test_poisson_is_reproducible_from_a_seed(seed, lam):
    a = skellam.poisson(lam, HmacDrbg.from_seed(seed))
    b = skellam.poisson(lam, HmacDrbg.from_seed(seed))
    assert a == b and isinstance(a, int) and a >= 0


def test_poisson_zero_draws_nothing():
    assert skellam.poisson(0, ReplayRandom([])) == 0


@pytest.mark.parametrize("bad", [-1, Fraction(-1, 3), 0.5, True, "3", None, Fraction(1 << 70),
                                 Fraction(1, 1 << 300)])
def test_bad_means_are_refused_before_drawing(bad):
    with pytest.raises(ParameterError):
        skellam.poisson(bad, ReplayRandom([]))
    with pytest.raises(ParameterError):
        skellam.skellam(bad, ReplayRandom([]))


@pytest.mark.parametrize("n,d", [(-1, 3), (4, 3), (1, 0), (True, 2), (1.0, 2)])
def test_bad_bernoulli_bits_refused(n, d):
    with pytest.raises(ParameterError):
        skellam.bernoulli_bits(n, d, ReplayRandom([]))


# -- Skellam configurations (sections 4.5, 5.3) --------------------------------


def test_default_mechanism_is_scrcs11():
    config = NoiseShareConfig(PrivacyLevel.MEDIUM, 4000, 1000, Fraction(1, 2), Fraction(1, 10**6))
    assert config.mechanism is Mechanism.SCRCS11 and config.releases == 1 and config.mu == 0


@pytest.mark.parametrize("bad", [{"mechanism": "skellam"}, {"releases": 0}, {"releases": True},
                                 {"releases": dp.MAX_RELEASES + 1}])
def test_bad_mechanism_fields(bad):
    fields = {"mechanism": Mechanism.SKELLAM, "releases": 24}
    fields.update(bad)
    with pytest.raises(ParameterError):
        NoiseShareConfig(PrivacyLevel.LOW, 4095, 10, Fraction(1, 2), Fraction(1, 10**6), **fields)


@pytest.mark.parametrize("level", [PrivacyLevel.LOW, PrivacyLevel.MEDIUM, PrivacyLevel.HIGH])
def test_mu_is_the_smallest_integer_meeting_the_budget(level):
    config = _config(level)
    eps, delta = float(config.epsilon), float(config.delta)
    assert accounting.skellam_epsilon(config.mu, 4095, 24, delta) <= eps
    assert accounting.skellam_epsilon(config.mu - 1, 4095, 24, delta) > eps
    assert config.share_mean == Fraction(config.mu, 250)


def test_none_level_adds_and_draws_nothing():
    config = _config(PrivacyLevel.NONE)
    assert dp.clamped_noise_share(config, ReplayRandom([])) == 0 and dp.clamp_bound(config) == 0


def test_shares_are_clamped_and_reproducible():
    config = _config(PrivacyLevel.LOW, n=50)
    bound = dp.clamp_bound(config)
    assert bound == 64 * (math.isqrt(math.ceil(2 * config.share_mean)) + 1)
    a = [dp.clamped_noise_share(config, HmacDrbg.from_seed("share")) for _ in range(3)]
    rng1, rng2 = HmacDrbg.from_seed("shares"), HmacDrbg.from_seed("shares")
    xs = [dp.clamped_noise_share(config, rng1) for _ in range(50)]
    assert xs == [dp.clamped_noise_share(config, rng2) for _ in range(50)]
    assert all(abs(x) <= bound for x in xs) and len(set(a)) == 1
    assert dp.clamp_tail_probability(config) < 6e-28


def test_share_variance_matches_two_lam():
    config = _config(PrivacyLevel.HIGH, n=5000)
    rng = HmacDrbg.from_seed("variance")
    xs = [dp.noise_share(config, rng) for _ in range(2000)]
    var = sum(x * x for x in xs) / len(xs)
    assert var == pytest.approx(2 * float(config.share_mean), rel=0.1)
    assert dp.expected_noise_variance(config) == pytest.approx(2 * config.mu * 2, rel=1e-12)


# -- dropouts and collusion (section 4.5.4) ------------------------------------


@pytest.mark.parametrize("level", [PrivacyLevel.LOW, PrivacyLevel.MEDIUM, PrivacyLevel.HIGH])
def test_fewer_honest_shares_mean_a_larger_epsilon(level):
    """Colluders subtract their own shares: the noise left is Skellam(h lam) for h honest
    reporters.  At h = gamma N it is the budget; below, epsilon grows; above, it shrinks."""
    config = _config(level, n=40)
    honest = int(config.honest_fraction * config.participants)
    eps = [accounting.honest_epsilon(config, h) for h in (honest // 4, honest // 2, honest, 2 * honest)]
    assert eps[0] > eps[1] > eps[2] > eps[3]
    assert eps[2] <= float(config.epsilon) < eps[1]
    with pytest.raises(ParameterError):
        accounting.honest_epsilon(config, 0)


def test_dropouts_shrink_the_noise_with_the_real_sampler():
    """Meters that drop out take their shares with them: the released noise is the sum of the
    reporting meters' shares, variance 2 lam R (measured), so the privacy is that of R honest."""
    config = _config(PrivacyLevel.LOW, n=40)
    rng = HmacDrbg.from_seed("dropouts")
    for reporting in (40, 10):
        sums = [sum(dp.noise_share(config, rng) for _ in range(reporting)) for _ in range(300)]
        var = sum(s * s for s in sums) / len(sums)
        assert var == pytest.approx(2 * float(config.share_mean) * reporting, rel=0.2)
    assert accounting.honest_epsilon(config, 10) > float(config.epsilon)


def test_negative_shares_out_of_an_empty_replay_source_propagate():
    with pytest.raises(RandomnessError):
        dp.noise_share(_config(PrivacyLevel.LOW), ReplayRandom([]))


# -- the error table's closed form (section 6.2) -------------------------------


def test_daily_error_closed_form_matches_a_simulation_with_real_shares():
    """Small N so every share is drawn: 150 days of 20 meters x 2 releases."""
    config = _config(PrivacyLevel.LOW, n=20, releases=2)
    closed = accounting.daily_error(config, household_day_wh=1000)
    rng = HmacDrbg.from_seed("daily-error")
    days = [sum(dp.noise_share(config, rng) for _ in range(20 * 2)) for _ in range(150)]
    mean_abs = sum(abs(d) for d in days) / len(days)
    assert mean_abs == pytest.approx(closed.mean_abs, rel=0.15)
    assert closed.relative == pytest.approx(closed.mean_abs / (20 * 1000), rel=1e-12)
    assert closed.sd == pytest.approx(math.sqrt(2 * 2 * 20 * float(config.share_mean)), rel=1e-12)


def test_daily_error_falls_as_one_over_sqrt_n_for_skellam():
    """Relative error ~ sqrt(2 T mu / gamma) sqrt(2/pi) / (N h): mu is the same for every N."""
    errors = [accounting.daily_error(_config(PrivacyLevel.MEDIUM, n=n)).relative for n in (50, 5000)]
    assert errors[0] / errors[1] == pytest.approx(100, rel=1e-9)


def test_bad_daily_error_inputs():
    with pytest.raises(ParameterError):
        accounting.daily_error("config")
    with pytest.raises(ParameterError):
        accounting.daily_error(_config(), reporting=0)
    with pytest.raises(ParameterError):
        accounting.daily_error(_config(), household_day_wh=0)


@settings(max_examples=6, deadline=None)
@given(st.integers(1, 6).flatmap(lambda d: st.builds(Fraction, st.integers(1, d), st.just(2 * d))))
def test_poisson_small_pass_exact_for_any_small_mean(lam):
    """Hypothesis over g = n / (2d) <= 1/2: one pass gives j with probability exactly
    (1 - g) g^j / j! for every j reachable within 5 draws (exhaustive enumeration)."""
    mass, _ = _enumerate_pass(lam, 5)
    for j in range(4):
        assert mass.get(j, 0) == (1 - lam) * lam**j / math.factorial(j)


# -- a plain reference beside the optimised sampler (sections 3.5.3 and 3.5.5): the clean-room check's
# Poisson and Skellam with bounds=False (exact rationals, every acceptance an exact BernoulliBits, no bounds
# and no bracket table) ---


class _Log:
    def __init__(self, seed: str) -> None:
        self.inner, self.log = HmacDrbg.from_seed(seed), []

    def random_bytes(self, n: int) -> bytes:
        out = self.inner.random_bytes(n)
        self.log.append(out)
        return out


@pytest.mark.parametrize("lam", [Fraction(0), Fraction(1, 3), Fraction(3, 2), Fraction(2), Fraction(7, 3),
                                 Fraction(31, 2), Fraction(16), Fraction(1000, 3),
                                 Fraction(123457, 7), Fraction(2 * 10**5 + 3, 2)])
def test_prepared_sampler_draws_exactly_as_the_plain_reference(lam):
    """One prepared sampler (its bracket table filling up) and the plain reference read the same
    seeded stream: same samples, same random_bytes calls, sample after sample."""
    ours, theirs = _Log(f"ref/{lam}"), _Log(f"ref/{lam}")
    sampler = skellam.PoissonSampler.of(lam)
    mine = [sampler.sample(ours) for _ in range(150)]
    reference = [spec.poisson(lam, theirs, bounds=False) for _ in range(150)]
    assert mine == reference and ours.log == theirs.log
    assert all(len(chunk) == skellam.REFILL_BYTES for chunk in ours.log)
    assert [skellam.poisson(lam, HmacDrbg.from_seed("x")) for _ in range(3)] \
        == [skellam.PoissonSampler.of(lam).sample(HmacDrbg.from_seed("x")) for _ in range(3)]


def test_skellam_share_reads_one_stream_for_both_poissons():
    lam = Fraction(40)
    one, two = _Log("stream"), _Log("stream")
    share = skellam.skellam(lam, one)
    assert share == spec.skellam(lam, two, bounds=False)
    assert one.log == two.log


@settings(max_examples=40, deadline=None)
@given(LARGE, st.integers(-40, 200), st.integers(0, 10**6))
def test_block_brackets_hold_every_ratio_of_their_block(lam, key, offset):
    """Section 3.5.5: the table's (lo, hi) for a block bound P(k)/P(m) for every k in it."""
    sampler = skellam.PoissonSampler.of(lam)
    m, h = lam.numerator // lam.denominator, max(1, skellam._core_width(lam) // skellam.BLOCKS_PER_WIDTH)
    d = key * h + offset % h if key >= 0 else (-key - 1) * h + offset % h
    k = m + d if key >= 0 else m - d
    if k < 0 or (key < 0 and d == 0):
        return
    lo, hi = sampler._bracket(key)
    n, den = skellam._ratio_to_mode(lam, m, k)
    exact = Fraction(n, den) * (1 << skellam._BOUND_BITS)
    assert lo <= exact <= hi


@settings(max_examples=40, deadline=None)
@given(LARGE, st.integers(-3, 3), st.integers(0, 10**6), st.sampled_from([1, 2, 7, 64]))
def test_chunked_bounds_bracket_the_exact_ratio_and_tighten(lam, region, offset, chunks):
    m = lam.numerator // lam.denominator
    w = skellam._core_width(lam)
    k = max(0, m + region * w + (offset % (w + 1)) * (1 if region >= 0 else -1))
    lo, hi = skellam._chunked_bounds(lam, m, k, chunks)
    n, d = skellam._ratio_to_mode(lam, m, k)
    assert lo <= Fraction(n, d) * (1 << skellam._BOUND_BITS) <= hi
    simple_lo, simple_hi = skellam._ratio_bounds(lam, m, k)
    assert hi - lo <= simple_hi - simple_lo + (1 << 28)   # never looser, up to rounding (2^-100)


def test_refinements_decide_where_the_simple_bounds_cannot():
    """A uniform prefix placed inside the simple bounds' gap is decided by the refined bounds
    (or exactly), as the exact rule decides it: same result and same bytes read as the reference."""
    lam = Fraction(8261970148, 1000)
    m, w = lam.numerator // lam.denominator, skellam._core_width(lam)
    k = m + 3 * w
    lo, hi = skellam._ratio_bounds(lam, m, k)
    n, d = skellam._ratio_to_mode(lam, m, k)
    assert hi - lo > 1 << 100                    # a gap the first step can fall in
    for target in (lo + (hi - lo) // 3, (lo + hi) // 2, hi - 1, n * (1 << skellam._BOUND_BITS) // d):
        u = target.to_bytes(16, "big") + bytes(range(1, 17))    # U's first 16 bytes = target / 2^128
        ours = skellam.BitReader(ReplayRandom([u[1:] + bytes(1)]))   # the first step's byte is u[0]
        theirs = skellam.BitReader(ReplayRandom([u]))
        assert skellam._accept_from(lam, m, k, 0, ours, u[0]) == skellam._bernoulli_bits(n, d, theirs)
        assert ours._available == theirs._available + 8    # the same bytes of U were read


@settings(max_examples=200, deadline=None)
@given(LARGE)
def test_core_width_meets_the_envelope_conditions(lam):
    """Section 3.5.3 for every lam >= 2: w^2 > lam, w^2 / (lam + w) >= 4/5 > ln 2 (the upper
    tail's halving), and m >= w (the core never reaches below 0)."""
    m, w = lam.numerator // lam.denominator, skellam._core_width(lam)
    assert w * w > lam and Fraction(w * w) / (lam + w) >= Fraction(4, 5) and m >= w
