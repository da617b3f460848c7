"""Tests of protocols.privacy.dp (specs/dp.md).

Properties named here (specs/dp.md section 10):

- exactness of the draws: Bernoulli(n/d) accepts exactly n of the d
  accepted integers; p = 0, 1 and gamma = 0 draw nothing
  (``test_bernoulli_*``, ``test_bernoulli_exp_zero_*``);
- the draw order of section 7, pinned byte by byte with a replayed source
  (``test_discrete_laplace_replayed_draws``);
- determinism from a DRBG seed and integer outputs (``test_deterministic_*``);
- the distributions, against the exact formulas, on fixed DRBG seeds so the
  tests never flake: chi-square of discrete_laplace at two scales,
  bernoulli_exp frequencies, noise-share frequency, mean and variance;
- beta: on the 2^-32 grid, minimal, meets delta (checked with gmpy2 at 512
  bits, independently of the decimal computation), monotone in delta and N;
- clamping: |share| <= B always, and the clamp is applied;
- typed errors: each bad input raises exactly ParameterError, and a failing
  rng's RandomnessError propagates.
"""

from __future__ import annotations

import math
from collections import Counter
from fractions import Fraction

import gmpy2
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from protocols.errors import ParameterError, RandomnessError, VectorMismatchError
from protocols.primitives.drbg import HmacDrbg
from protocols.primitives.rand import ReplayRandom
from protocols.privacy import dp
from protocols.privacy.dp import (
    BETA_DENOMINATOR,
    NoiseShareConfig,
    PrivacyLevel,
    bernoulli,
    bernoulli_exp,
    clamp_bound,
    clamp_tail_probability,
    clamped_noise_share,
    discrete_laplace,
    expected_noise_variance,
    expected_noisy_participants,
    noise_share,
    single_noise_variance,
)
from protocols.system.vectorsets import dp as dp_vectors

SEEDS = st.text(min_size=0, max_size=20)
SMALL_FRACTIONS = st.builds(Fraction, st.integers(1, 60), st.integers(1, 60))
PROBABILITIES = st.integers(1, 200).flatmap(
    lambda d: st.builds(Fraction, st.integers(0, d), st.just(d))
)
LEVELS = st.sampled_from(list(PrivacyLevel))
NOISY_LEVELS = st.sampled_from([PrivacyLevel.LOW, PrivacyLevel.MEDIUM, PrivacyLevel.HIGH])
DELTAS = st.builds(Fraction, st.integers(1, 999), st.just(1000)) | st.builds(
    lambda e: Fraction(1, 2**e), st.integers(1, 200)
)


def config(level=PrivacyLevel.LOW, sensitivity=10, participants=100,
           honest=Fraction(1, 2), delta=Fraction(1, 1000)) -> NoiseShareConfig:
    return NoiseShareConfig(level, sensitivity, participants, honest, delta)


# -- exactness of the elementary draws (sections 3.2, 3.3) ---------------------


def test_bernoulli_zero_and_one_are_exact_and_draw_nothing():
    empty = ReplayRandom([])
    assert bernoulli(0, empty) is False
    assert bernoulli(Fraction(0), empty) is False
    assert bernoulli(1, empty) is True
    assert bernoulli(Fraction(5, 5), empty) is True
    assert empty.exhausted


@given(seed=SEEDS)
def test_bernoulli_zero_and_one_under_any_seed(seed):
    rng = HmacDrbg.from_seed(seed)
    assert [bernoulli(0, rng) for _ in range(20)] == [False] * 20
    assert [bernoulli(1, rng) for _ in range(20)] == [True] * 20


@settings(max_examples=60, deadline=None)
@given(p=PROBABILITIES)
def test_bernoulli_accepts_exactly_n_of_the_d_integers(p):
    """Feeding every possible byte string: the accepted draws (x < d) are the
    integers 0..d-1 once each, and exactly n of them give True (section 3.2)."""
    d = p.denominator
    if d == 1:
        return
    k = (d - 1).bit_length()
    nbytes = (k + 7) // 8
    outcomes = Counter()
    for x in range(1 << k):
        rng = ReplayRandom([x.to_bytes(nbytes, "big")] + [(0).to_bytes(nbytes, "big")])
        result = bernoulli(p, rng)
        if x < d:
            outcomes[result] += 1
    assert outcomes[True] == p.numerator
    assert outcomes[False] == d - p.numerator


def test_bernoulli_uses_lowest_terms():
    """p = 2/4 is drawn as 1/2: one byte, low bit below 1 (section 3.2)."""
    assert bernoulli(Fraction(2, 4), ReplayRandom([b"\x02"])) is True
    assert bernoulli(Fraction(2, 4), ReplayRandom([b"\x01"])) is False


def test_bernoulli_exp_zero_is_true_and_draws_nothing():
    empty = ReplayRandom([])
    assert bernoulli_exp(0, empty) is True
    assert bernoulli_exp(Fraction(0, 3), empty) is True
    assert empty.exhausted


def test_bernoulli_exp_replayed_draws():
    """gamma = 1/2 (section 3.3): A_1 = Bernoulli(1/2) from one byte (low bit 0:
    True), A_2 = Bernoulli(1/4) from one byte (low 2 bits 3: False); K = 2, even."""
    rng = ReplayRandom([b"\x00", b"\x03"])
    assert bernoulli_exp(Fraction(1, 2), rng) is False
    assert rng.exhausted


def test_discrete_laplace_replayed_draws():
    """The worked example of section 3.4 (scale 1, so t = s = 1; U and D draw nothing)."""
    # Round 1: geometric A_2 = 1 byte 0x01 (False) -> K = 2 -> V = 0; sign 0x00 -> B = 1, Y = 0: restart.
    # Round 2: geometric 0x01 -> V = 0; sign 0x01 -> B = 0 -> 0.
    rng = ReplayRandom([b"\x01", b"\x00", b"\x01", b"\x01"])
    assert discrete_laplace(1, rng) == 0
    assert rng.exhausted
    # Geometric: 0x00 (A_2 True), 0x02 (A_3 = Bernoulli(1/3): 2 < 1 False) -> K = 3 -> V = 1;
    # then 0x01 -> K = 2 -> stop; sign 0x00 -> -1.
    rng = ReplayRandom([b"\x00", b"\x02", b"\x01", b"\x00"])
    assert discrete_laplace(1, rng) == -1
    assert rng.exhausted


# -- determinism and types (section 7) ---------------------------------------------


@settings(max_examples=40, deadline=None)
@given(seed=SEEDS, scale=SMALL_FRACTIONS)
def test_deterministic_discrete_laplace_for_a_seed(seed, scale):
    first = [discrete_laplace(scale, HmacDrbg.from_seed(seed)) for _ in range(3)]
    rng_a, rng_b = HmacDrbg.from_seed(seed), HmacDrbg.from_seed(seed)
    a = [discrete_laplace(scale, rng_a) for _ in range(10)]
    b = [discrete_laplace(scale, rng_b) for _ in range(10)]
    assert a == b
    assert first == [a[0]] * 3
    assert all(type(x) is int for x in a)


@settings(max_examples=30, deadline=None)
@given(seed=SEEDS, level=LEVELS, sensitivity=st.integers(1, 5000), participants=st.integers(1, 50))
def test_deterministic_noise_shares_are_ints_within_the_clamp(seed, level, sensitivity, participants):
    c = config(level, sensitivity, participants)
    rng_a, rng_b = HmacDrbg.from_seed(seed), HmacDrbg.from_seed(seed)
    a = [clamped_noise_share(c, rng_a) for _ in range(8)]
    assert a == [clamped_noise_share(c, rng_b) for _ in range(8)]
    bound = clamp_bound(c)
    assert all(type(x) is int and -bound <= x <= bound for x in a)
    plain = noise_share(c, HmacDrbg.from_seed(seed))
    assert type(plain) is int and plain == a[0]


def test_level_none_adds_nothing_and_draws_nothing():
    c = config(PrivacyLevel.NONE)
    empty = ReplayRandom([])
    assert noise_share(c, empty) == 0 and clamped_noise_share(c, empty) == 0
    assert empty.exhausted
    assert c.beta == 0 and c.scale == 0 and clamp_bound(c) == 0
    assert expected_noise_variance(c) == 0.0 and single_noise_variance(c) == 0.0


def test_clamp_is_applied(monkeypatch):
    """A full noise beyond B is clamped to +-B (section 5); beta = 1 here."""
    c = config(PrivacyLevel.LOW, sensitivity=3, participants=2, honest=Fraction(1), delta=Fraction(1, 1000))
    assert c.beta == 1
    assert clamp_bound(c) == 192
    monkeypatch.setattr(dp, "_discrete_laplace", lambda scale, rng: 10**9)
    assert clamped_noise_share(c, ReplayRandom([])) == 192
    monkeypatch.setattr(dp, "_discrete_laplace", lambda scale, rng: -(10**9))
    assert clamped_noise_share(c, ReplayRandom([])) == -192


def test_levels_table():
    assert PrivacyLevel.NONE.epsilon is None
    assert PrivacyLevel.LOW.epsilon == Fraction(1)
    assert PrivacyLevel.MEDIUM.epsilon == Fraction(1, 2)
    assert PrivacyLevel.HIGH.epsilon == Fraction(1, 10)
    assert all(isinstance(level.epsilon, Fraction) for level in PrivacyLevel if level.epsilon is not None)
    assert config(PrivacyLevel.HIGH, sensitivity=4000).scale == Fraction(40000)
    assert clamp_bound(config(PrivacyLevel.MEDIUM, sensitivity=3)) == 384


def test_clamp_bound_rounds_up():
    # scale 1/10 is not reachable from a level, so check the rounding on the helper's formula.
    assert dp._ceil(64 * Fraction(7, 3)) == 150   # 149.33 -> 150
    assert clamp_bound(config(PrivacyLevel.HIGH, sensitivity=1)) == 640


# -- beta (section 4.3) --------------------------------------------------------------


def _ln_inverse(delta: Fraction) -> gmpy2.mpfr:
    with gmpy2.context(gmpy2.get_context(), precision=512):
        return gmpy2.log(gmpy2.mpfr(delta.denominator)) - gmpy2.log(gmpy2.mpfr(delta.numerator))


@settings(max_examples=80, deadline=None)
@given(level=NOISY_LEVELS, participants=st.integers(1, 10**6),
       honest=st.builds(Fraction, st.integers(1, 10), st.integers(10, 20)), delta=DELTAS)
def test_beta_is_the_smallest_grid_point_meeting_delta(level, participants, honest, delta):
    c = config(level, 1, participants, honest, delta)
    beta = c.beta
    assert 0 < beta <= 1 and isinstance(beta, Fraction)
    h = honest * participants
    with gmpy2.context(gmpy2.get_context(), precision=512):
        target = _ln_inverse(delta)

        def exponent(k: int) -> gmpy2.mpfr:        # (k / 2^32) * gamma * N
            return gmpy2.mpfr(gmpy2.mpq(k * h.numerator, BETA_DENOMINATOR * h.denominator))

        if beta < 1:
            k = beta * BETA_DENOMINATOR
            assert k.denominator == 1
            # exp(-beta gamma N) <= delta, and one grid step less would not do.
            assert exponent(k.numerator) >= target
            assert exponent(k.numerator - 1) < target
        else:
            # clamped: the unclamped grid point would be at least 1.
            assert exponent(BETA_DENOMINATOR - 1) < target


@settings(max_examples=60, deadline=None)
@given(participants=st.integers(1, 10**5), more=st.integers(0, 10**5), d1=DELTAS, d2=DELTAS)
def test_beta_is_monotone_in_delta_and_participants(participants, more, d1, d2):
    small, large = min(d1, d2), max(d1, d2)
    beta = config(participants=participants, delta=small).beta
    assert beta >= config(participants=participants, delta=large).beta
    assert beta >= config(participants=participants + more, delta=small).beta


def test_beta_known_value():
    """ln(10^6) / 500 = 0.0276310211159...; 2^32 times that is 118674332.05..., rounded up."""
    c = config(PrivacyLevel.HIGH, 4000, 1000, Fraction(1, 2), Fraction(1, 10**6))
    assert c.beta == Fraction(118674333, 2**32)
    assert expected_noisy_participants(c) == Fraction(118674333 * 1000, 2**32)


# -- reported figures (sections 5, 6) ---------------------------------------------


def _pmf(x: int, scale: Fraction) -> float:
    a = math.exp(-1 / float(scale))
    return (1 - a) / (1 + a) * a ** abs(x)


def test_variance_formulas_match_the_pmf():
    c = config(PrivacyLevel.LOW, sensitivity=3)      # scale 3
    direct = sum(x * x * _pmf(x, Fraction(3)) for x in range(-400, 401))
    assert single_noise_variance(c) == pytest.approx(direct, rel=1e-9)
    assert expected_noise_variance(c) == pytest.approx(float(c.beta) * 100 * direct, rel=1e-9)


def test_clamp_tail_matches_the_pmf():
    c = config(PrivacyLevel.HIGH, sensitivity=1)     # scale 10, B = 640
    bound = clamp_bound(c)
    a = math.exp(-1 / 10)
    direct = 2 * sum(_pmf(x, Fraction(10)) for x in range(bound + 1, bound + 4000))
    assert clamp_tail_probability(c) == pytest.approx(direct, rel=1e-9)
    assert clamp_tail_probability(c) == pytest.approx(2 * a ** (bound + 1) / (1 + a), rel=1e-9)
    assert clamp_tail_probability(c) < 2 * math.exp(-64)
    assert dp.clamp_delta_cost(c) < 1e-20


# -- distributions on fixed DRBG seeds (never flaky) --------------------------------


def _chi2_sf(x: float, df: int) -> float:
    """Survival function of chi-square with df degrees of freedom (exact series)."""
    q, k = (math.erfc(math.sqrt(x / 2)), 1) if df % 2 else (math.exp(-x / 2), 2)
    while k < df:
        q += math.exp((k / 2) * math.log(x / 2) - x / 2 - math.lgamma(k / 2 + 1))
        k += 2
    return q


def test_chi2_sf_known_values():
    assert _chi2_sf(3.841458820694124, 1) == pytest.approx(0.05, rel=1e-9)
    assert _chi2_sf(18.307038053275146, 10) == pytest.approx(0.05, rel=1e-9)


@pytest.mark.parametrize("scale", [Fraction(3, 2), Fraction(10)])
def test_discrete_laplace_chi_square(scale):
    n = 20000
    rng = HmacDrbg.from_seed(f"usapp-tests/dp/chi2/{scale}")
    counts = Counter(discrete_laplace(scale, rng) for _ in range(n))
    m = 0
    while n * _pmf(m + 1, scale) >= 5:
        m += 1
    observed = [counts[x] for x in range(-m, m + 1)]
    expected = [n * _pmf(x, scale) for x in range(-m, m + 1)]
    tail = n * (1 - sum(_pmf(x, scale) for x in range(-m, m + 1))) / 2
    observed += [sum(c for x, c in counts.items() if x < -m), sum(c for x, c in counts.items() if x > m)]
    expected += [tail, tail]
    stat = sum((o - e) ** 2 / e for o, e in zip(observed, expected))
    assert _chi2_sf(stat, len(observed) - 1) > 0.001


@pytest.mark.parametrize("gamma", [Fraction(1, 3), Fraction(1), Fraction(5, 2)])
def test_bernoulli_exp_frequency(gamma):
    n = 8000
    rng = HmacDrbg.from_seed(f"usapp-tests/dp/bernoulli-exp/{gamma}")
    hits = sum(bernoulli_exp(gamma, rng) for _ in range(n))
    p = math.exp(-float(gamma))
    assert abs(hits - n * p) < 4.5 * math.sqrt(n * p * (1 - p))


def test_noise_share_frequency_mean_and_variance():
    c = config(PrivacyLevel.LOW, sensitivity=5, participants=20, honest=Fraction(1, 2), delta=Fraction(1, 100))
    beta = float(c.beta)                             # ln(100) / 10 = 0.46...
    n = 6000
    rng = HmacDrbg.from_seed("usapp-tests/dp/noise-share")
    shares = [clamped_noise_share(c, rng) for _ in range(n)]
    single = single_noise_variance(c)
    p_nonzero = beta * (1 - _pmf(0, c.scale))
    nonzero = sum(1 for x in shares if x != 0)
    assert abs(nonzero - n * p_nonzero) < 4.5 * math.sqrt(n * p_nonzero * (1 - p_nonzero))
    variance = beta * single                         # of one share (mean 0)
    assert abs(sum(shares) / n) < 4.5 * math.sqrt(variance / n)
    second = sum(x * x for x in shares) / n
    assert second == pytest.approx(variance, rel=0.15)
    assert expected_noise_variance(c) == pytest.approx(20 * variance, rel=1e-12)


# -- typed errors (section 9) -------------------------------------------------------


@pytest.mark.parametrize("function, argument", [
    (bernoulli, 0.5),
    (bernoulli, True),
    (bernoulli, "1/2"),
    (bernoulli, Fraction(3, 2)),
    (bernoulli, Fraction(-1, 2)),
    (bernoulli_exp, 0.25),
    (bernoulli_exp, Fraction(-1, 3)),
    (discrete_laplace, 1.5),
    (discrete_laplace, 0),
    (discrete_laplace, Fraction(-7, 2)),
    (discrete_laplace, None),
    (noise_share, "low"),
    (clamped_noise_share, None),
])
def test_bad_sampler_inputs_raise_parameter_error_and_draw_nothing(function, argument):
    empty = ReplayRandom([])       # any draw would raise RandomnessError instead
    with pytest.raises(ParameterError) as info:
        function(argument, empty)
    assert type(info.value) is ParameterError


def test_bad_config_for_the_reported_figures():
    for function in (clamp_bound, clamp_tail_probability, single_noise_variance,
                     expected_noise_variance, expected_noisy_participants):
        with pytest.raises(ParameterError):
            function(None)


def test_float_refusal_says_why():
    with pytest.raises(ParameterError, match="rounded"):
        discrete_laplace(2.0)


@pytest.mark.parametrize("kwargs", [
    {"participants": 0},
    {"participants": -3},
    {"participants": True},
    {"participants": 10.0},
    {"sensitivity": 0},
    {"sensitivity": 2.5},
    {"honest": Fraction(0)},
    {"honest": Fraction(3, 2)},
    {"honest": 0.5},
    {"delta": Fraction(0)},
    {"delta": Fraction(1)},
    {"delta": Fraction(2)},
    {"delta": 1e-6},
    {"delta": Fraction(1, 2**1100)},
    {"level": "low"},
    {"level": None},
])
def test_bad_config_raises_parameter_error(kwargs):
    with pytest.raises(ParameterError) as info:
        config(**kwargs)
    assert type(info.value) is ParameterError


def test_randomness_error_propagates():
    with pytest.raises(RandomnessError):
        discrete_laplace(Fraction(7, 2), ReplayRandom([]))
    with pytest.raises(RandomnessError):
        bernoulli_exp(Fraction(1, 2), ReplayRandom([b"\x00\x00"]))   # wrong length
    with pytest.raises(RandomnessError):
        noise_share(config(), ReplayRandom([]))

    class Failing:
        def random_bytes(self, n):
            raise RandomnessError("source failed")

    with pytest.raises(RandomnessError):
        clamped_noise_share(config(), Failing())


def test_default_rng_is_the_system_csprng():
    assert type(discrete_laplace(3)) is int
    assert type(noise_share(config())) is int


# -- vectors (section 8) -------------------------------------------------------------


def test_vector_reject_with_the_wrong_error_fails():
    vector = {"name": "x", "operation": "reject", "function": "discrete_laplace",
              "argument": "0", "error": "RandomnessError"}
    with pytest.raises(VectorMismatchError):
        dp_vectors.verify_vector(vector)
    vector = {**vector, "argument": "1", "error": "ParameterError"}
    with pytest.raises(VectorMismatchError):
        dp_vectors.verify_vector(vector)


def test_vector_rationals_must_be_canonical():
    for text in ["2/4", "01", "1/1", "1/-2", "+1", "0.5", ""]:
        with pytest.raises(VectorMismatchError):
            dp_vectors.rational_field({"p": text}, "p")
    assert dp_vectors.rational_field({"p": "-3/4"}, "p") == Fraction(-3, 4)
