"""Vector family ``dp``: exact differential-privacy samplers and noise shares
(specs/dp.md section 8).

Generated: every sampling vector names an HMAC_DRBG seed (``from_seed``,
conventions section 3.3) and holds the outputs drawn from it, in order, so a
vendor with the same DRBG, the same integer draws (conventions section 3.2)
and the draw order of specs/dp.md section 7 reproduces them exactly.  Each
also records how many ``random_bytes`` calls and bytes were consumed, so a
vendor sees whether they diverge in the draws or in the arithmetic.

Rationals are strings in lowest terms as Python's ``str(Fraction)`` writes
them: ``"n/d"``, or ``"n"`` when d = 1.  Samples are JSON integers.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from dataclasses import field as dc_field
from fractions import Fraction
from typing import Any

from protocols import errors
from protocols.errors import UsappError, VectorMismatchError
from protocols.primitives.drbg import HmacDrbg
from protocols.primitives.rand import ReplayRandom
from protocols.privacy.dp import (
    Mechanism,
    NoiseShareConfig,
    PrivacyLevel,
    bernoulli,
    bernoulli_exp,
    clamp_bound,
    clamped_noise_share,
    discrete_laplace,
)
from protocols.privacy.skellam import poisson, skellam
from protocols.system.vectorsets import VectorFamily
from protocols.system.vectorsets._fields import (
    UINT32,
    dispatch,
    expect,
    field,
    hex_list_field,
    list_field,
    small_int_field,
    str_field,
)

PROTOCOL = "dp"
SUITE = "cks20-exact-samplers+scrcs11-noise-shares"
FILE = "dp.json"
SEED_PREFIX = "usapp-vectors/dp/"

_RATIONAL = re.compile(r"-?(?:0|[1-9][0-9]*)(?:/[1-9][0-9]*)?")


@dataclass
class CountingRandom:
    """Wraps an rng, counts its ``random_bytes`` calls and bytes and records each output in order."""

    inner: Any
    calls: int = 0
    bytes_drawn: int = 0
    log: list = dc_field(default_factory=list)

    def random_bytes(self, n: int) -> bytes:
        out = self.inner.random_bytes(n)
        self.calls += 1
        self.bytes_drawn += n
        self.log.append(out.hex())
        return out


MAX_RATIONAL_TEXT = 160
"""Longest rational read (``n/d``): numerator and denominator of about 256 bits each."""


def rational_text(value: Fraction | int) -> str:
    return str(Fraction(value))


def rational_field(vector: Mapping[str, Any], name: str) -> Fraction:
    """A rational written ``n/d`` (lowest terms, d > 1) or ``n``."""
    text = str_field(vector, name, max_len=MAX_RATIONAL_TEXT)
    if not _RATIONAL.fullmatch(text) or rational_text(Fraction(text)) != text:
        raise VectorMismatchError(f"field {name!r} is not a rational in lowest terms")
    return Fraction(text)


def _seeded(vector: Mapping[str, Any]) -> CountingRandom:
    return CountingRandom(HmacDrbg.from_seed(str_field(vector, "seed")))


def _list_length(vector: Mapping[str, Any], name: str) -> int:
    value = list_field(vector, name)
    if not value:
        raise VectorMismatchError(f"field {name!r} must be a non-empty list")
    return len(value)


def _expect_draws(vector: Mapping[str, Any], rng: CountingRandom) -> None:
    expect("draw_calls", small_int_field(vector, "draw_calls"), rng.calls)
    expect("bytes_drawn", small_int_field(vector, "bytes_drawn"), rng.bytes_drawn)
    expect("draws", vector.get("draws"), rng.log)


def _expect_list(vector: Mapping[str, Any], name: str, computed: list) -> None:
    stored = field(vector, name)
    same = isinstance(stored, list) and len(stored) == len(computed) and all(
        type(a) is type(b) and a == b for a, b in zip(stored, computed)
    )
    if not same:
        raise VectorMismatchError(f"field {name!r} does not recompute to its stored value")


def _sample_list(vector: Mapping[str, Any], name: str, draw: Callable[[Any], Any]) -> None:
    rng = _seeded(vector)
    computed = [draw(rng) for _ in range(_list_length(vector, name))]
    _expect_list(vector, name, computed)
    _expect_draws(vector, rng)
    # Item 1 of issue 15: the recorded draws alone, replayed in order, reproduce every output.
    replay = ReplayRandom(hex_list_field(vector, "draws"))
    try:
        replayed = [draw(replay) for _ in range(len(computed))]
    except UsappError as exc:
        raise VectorMismatchError(f"field 'draws': replaying them fails: {exc}") from None
    if replayed != computed or not replay.exhausted:
        raise VectorMismatchError("field 'draws': replaying them does not reproduce the outputs exactly")


def _bernoulli(v: Mapping[str, Any]) -> None:
    p = rational_field(v, "p")
    _sample_list(v, "outputs", lambda rng: bernoulli(p, rng))


def _bernoulli_exp(v: Mapping[str, Any]) -> None:
    gamma = rational_field(v, "gamma")
    _sample_list(v, "outputs", lambda rng: bernoulli_exp(gamma, rng))


def _discrete_laplace(v: Mapping[str, Any]) -> None:
    scale = rational_field(v, "scale")
    _sample_list(v, "samples", lambda rng: discrete_laplace(scale, rng))


def _level(vector: Mapping[str, Any]) -> PrivacyLevel:
    text = str_field(vector, "level")
    try:
        return PrivacyLevel(text)
    except ValueError:
        raise VectorMismatchError(f"field 'level': unknown privacy level {text!r}") from None


def _mechanism(vector: Mapping[str, Any]) -> Mechanism:
    if "mechanism" not in vector:
        return Mechanism.SCRCS11
    text = str_field(vector, "mechanism")
    try:
        return Mechanism(text)
    except ValueError:
        raise VectorMismatchError(f"field 'mechanism': unknown mechanism {text!r}") from None


def _config(v: Mapping[str, Any]) -> NoiseShareConfig:
    extra: dict[str, Any] = {}
    if "mechanism" in v:
        extra["mechanism"] = _mechanism(v)
    if "releases" in v:
        extra["releases"] = small_int_field(v, "releases", low=-UINT32, high=UINT32)
    return NoiseShareConfig(
        _level(v),
        small_int_field(v, "sensitivity", low=-UINT32, high=UINT32),
        small_int_field(v, "participants", low=-UINT32, high=UINT32),
        rational_field(v, "honest_fraction"),
        rational_field(v, "delta"),
        **extra,
    )


def _config_fields(config: NoiseShareConfig) -> dict[str, Any]:
    """The computed parameters of a configuration (specs/dp.md sections 4-5)."""
    epsilon = config.epsilon
    if config.mechanism is Mechanism.SKELLAM:
        return {
            "epsilon": None if epsilon is None else rational_text(epsilon),
            "mu": config.mu,
            "share_mean": rational_text(config.share_mean),
            "clamp_bound": clamp_bound(config),
        }
    return {
        "epsilon": None if epsilon is None else rational_text(epsilon),
        "scale": rational_text(config.scale),
        "beta": rational_text(config.beta),
        "clamp_bound": clamp_bound(config),
    }


def _expect_config(v: Mapping[str, Any], config: NoiseShareConfig) -> None:
    for name, computed in _config_fields(config).items():
        stored = field(v, name)
        if type(stored) is not type(computed) or stored != computed:
            raise VectorMismatchError(f"field {name!r} does not recompute to its stored value")


def _noise_share(v: Mapping[str, Any]) -> None:
    config = _config(v)
    _expect_config(v, config)
    _sample_list(v, "samples", lambda rng: clamped_noise_share(config, rng))


def _beta(v: Mapping[str, Any]) -> None:
    _expect_config(v, _config(v))


def _poisson(v: Mapping[str, Any]) -> None:
    lam = rational_field(v, "lam")
    _sample_list(v, "samples", lambda rng: poisson(lam, rng))


def _skellam_share(v: Mapping[str, Any]) -> None:
    config = _config(v)
    if config.mechanism is not Mechanism.SKELLAM:
        raise VectorMismatchError("field 'mechanism': a skellam-share vector has mechanism 'skellam'")
    _expect_config(v, config)
    _sample_list(v, "samples", lambda rng: clamped_noise_share(config, rng))


_REJECTS: dict[str, Callable[[Mapping[str, Any], Any], object]] = {
    "bernoulli": lambda v, rng: bernoulli(rational_field(v, "argument"), rng),
    "bernoulli_exp": lambda v, rng: bernoulli_exp(rational_field(v, "argument"), rng),
    "discrete_laplace": lambda v, rng: discrete_laplace(rational_field(v, "argument"), rng),
    "NoiseShareConfig": lambda v, rng: _config(v),
    "poisson": lambda v, rng: poisson(rational_field(v, "argument"), rng),
    "skellam": lambda v, rng: skellam(rational_field(v, "argument"), rng),
}


def _error_class(vector: Mapping[str, Any]) -> type[UsappError]:
    name = str_field(vector, "error")
    cls = getattr(errors, name, None)
    if not (isinstance(cls, type) and issubclass(cls, UsappError)):
        raise VectorMismatchError(f"field 'error': {name!r} is not an error of protocols.errors")
    return cls


def _reject(v: Mapping[str, Any]) -> None:
    """The call MUST raise exactly ``error`` and draw nothing (an empty replay
    source raises RandomnessError on any draw)."""
    function = str_field(v, "function")
    if function not in _REJECTS:
        raise VectorMismatchError(f"field 'function': unknown function {function!r}")
    expected = _error_class(v)
    try:
        _REJECTS[function](v, ReplayRandom([]))
    except VectorMismatchError:
        raise
    except UsappError as exc:
        if type(exc) is not expected:
            raise VectorMismatchError(
                f"raised {type(exc).__name__}, the vector expects {expected.__name__}"
            ) from None
        return
    raise VectorMismatchError(f"accepted an input the vector expects to fail with {expected.__name__}")


OPERATIONS: dict[str, Callable[[Mapping[str, Any]], None]] = {
    "bernoulli": _bernoulli,
    "bernoulli-exp": _bernoulli_exp,
    "discrete-laplace": _discrete_laplace,
    "noise-share": _noise_share,
    "beta": _beta,
    "poisson": _poisson,
    "skellam-share": _skellam_share,
    "reject": _reject,
}


NOTES = {
    "out-of-range": "a parameter outside its range (specs/dp.md section 9): refused before anything is drawn",
}


def verify_vector(vector: Mapping[str, Any]) -> None:
    invalid = vector.get("result", "valid") == "invalid"
    if vector.get("result", "valid") not in ("valid", "invalid") or invalid != (vector.get("operation") == "reject"):
        raise VectorMismatchError("field 'result': 'invalid' exactly for reject vectors")
    if any(flag not in NOTES for flag in vector.get("flags", [])):
        raise VectorMismatchError("field 'flags': a flag not documented in the file's notes")
    dispatch(OPERATIONS, vector)


# -- generation ---------------------------------------------------------------


def _sampled(name: str, operation: str, inputs: dict[str, Any], key: str, count: int,
             draw: Callable[[CountingRandom], Any]) -> dict[str, Any]:
    seed = SEED_PREFIX + name
    rng = CountingRandom(HmacDrbg.from_seed(seed))
    values = [draw(rng) for _ in range(count)]
    return {"name": name, "operation": operation, "seed": seed, **inputs, key: values,
            "draw_calls": rng.calls, "bytes_drawn": rng.bytes_drawn, "draws": rng.log}


def _config_inputs(level: PrivacyLevel, sensitivity: int, participants: int,
                   honest: Fraction, delta: Fraction) -> tuple[NoiseShareConfig, dict[str, Any]]:
    config = NoiseShareConfig(level, sensitivity, participants, honest, delta)
    inputs = {"level": level.value, "sensitivity": sensitivity, "participants": participants,
              "honest_fraction": rational_text(honest), "delta": rational_text(delta)}
    return config, {**inputs, **_config_fields(config)}


def build() -> dict:
    vectors: list[dict[str, Any]] = []
    for i, p in enumerate([Fraction(0), Fraction(1), Fraction(1, 2), Fraction(1, 3), Fraction(999, 1000)]):
        vectors.append(_sampled(f"bernoulli-{i}", "bernoulli", {"p": rational_text(p)}, "outputs", 32,
                                functools.partial(bernoulli, p)))
    gammas = [Fraction(0), Fraction(1, 3), Fraction(1), Fraction(5, 2), Fraction(7)]
    for i, gamma in enumerate(gammas):
        vectors.append(_sampled(f"bernoulli-exp-{i}", "bernoulli-exp", {"gamma": rational_text(gamma)},
                                "outputs", 32, functools.partial(bernoulli_exp, gamma)))
    for i, scale in enumerate([Fraction(1), Fraction(2, 3), Fraction(7, 2), Fraction(40000)]):
        vectors.append(_sampled(f"discrete-laplace-{i}", "discrete-laplace",
                                {"scale": rational_text(scale)}, "samples", 40,
                                functools.partial(discrete_laplace, scale)))
    small = (4000, 20, Fraction(1, 2), Fraction(1, 100))
    for level in PrivacyLevel:
        config, inputs = _config_inputs(level, *small)
        vectors.append(_sampled(f"noise-share-{level.value}", "noise-share", inputs, "samples", 40,
                                functools.partial(clamped_noise_share, config)))
    config, inputs = _config_inputs(PrivacyLevel.HIGH, 4000, 1000, Fraction(1, 2), Fraction(1, 10**6))
    vectors.append(_sampled("noise-share-high-1000", "noise-share", inputs, "samples", 64,
                            functools.partial(clamped_noise_share, config)))
    for i, lam in enumerate([Fraction(0), Fraction(1, 3), Fraction(7, 2), Fraction(16), Fraction(1000, 3),
                             Fraction(123456789, 7), Fraction(5 * 10**9, 3), Fraction(3, 2), Fraction(2)]):
        vectors.append(_sampled(f"poisson-{i}", "poisson", {"lam": rational_text(lam)}, "samples", 24,
                                functools.partial(poisson, lam)))
    for level in PrivacyLevel:
        config = NoiseShareConfig(level, 4095, 20, Fraction(1, 2), Fraction(1, 10**6), Mechanism.SKELLAM, 24)
        inputs = {"level": level.value, "sensitivity": 4095, "participants": 20, "honest_fraction": "1/2",
                  "delta": "1/1000000", "mechanism": "skellam", "releases": 24, **_config_fields(config)}
        vectors.append(_sampled(f"skellam-share-{level.value}", "skellam-share", inputs, "samples", 24,
                                functools.partial(clamped_noise_share, config)))
    config = NoiseShareConfig(PrivacyLevel.LOW, 4095, 100000, Fraction(2, 3), Fraction(1, 10**6),
                              Mechanism.SKELLAM, 96)
    inputs = {"level": "low", "sensitivity": 4095, "participants": 100000, "honest_fraction": "2/3",
              "delta": "1/1000000", "mechanism": "skellam", "releases": 96, **_config_fields(config)}
    vectors.append(_sampled("skellam-share-low-100000", "skellam-share", inputs, "samples", 24,
                            functools.partial(clamped_noise_share, config)))
    beta_cases = [
        (PrivacyLevel.LOW, 1, 1000, Fraction(1, 2), Fraction(1, 10**6)),
        (PrivacyLevel.MEDIUM, 500, 100000, Fraction(2, 3), Fraction(1, 2**40)),
        (PrivacyLevel.HIGH, 1, 2, Fraction(1), Fraction(1, 1000)),   # beta clamped to 1
        (PrivacyLevel.LOW, 3, 7, Fraction(2, 7), Fraction(1, 3)),
    ]
    for i, case in enumerate(beta_cases):
        _, inputs = _config_inputs(*case)
        vectors.append({"name": f"beta-{i}", "operation": "beta", **inputs})
    rejects: list[tuple[str, dict[str, Any]]] = [
        ("bernoulli", {"argument": "3/2"}),
        ("bernoulli", {"argument": "-1/2"}),
        ("bernoulli_exp", {"argument": "-1/3"}),
        ("discrete_laplace", {"argument": "0"}),
        ("discrete_laplace", {"argument": "-5/2"}),
        ("NoiseShareConfig", {"level": "low", "sensitivity": 1, "participants": 0,
                              "honest_fraction": "1/2", "delta": "1/1000"}),
        ("NoiseShareConfig", {"level": "low", "sensitivity": 1, "participants": 10,
                              "honest_fraction": "1/2", "delta": "1"}),
        ("NoiseShareConfig", {"level": "high", "sensitivity": 0, "participants": 10,
                              "honest_fraction": "1/2", "delta": "1/1000"}),
        ("NoiseShareConfig", {"level": "medium", "sensitivity": 1, "participants": 10,
                              "honest_fraction": "3/2", "delta": "1/1000"}),
        ("poisson", {"argument": "-1/3"}),
        ("skellam", {"argument": "-2"}),
        ("poisson", {"argument": "18446744073709551617"}),   # 2^64 + 1: above the largest mean
        ("NoiseShareConfig", {"level": "low", "sensitivity": 1, "participants": 10, "honest_fraction": "1/2",
                              "delta": "1/1000", "mechanism": "skellam", "releases": 0}),
    ]
    for i, (function, inputs) in enumerate(rejects):
        vectors.append({"name": f"reject-{i}", "operation": "reject", "function": function,
                        **inputs, "result": "invalid", "flags": ["out-of-range"], "error": "ParameterError"})
    return {
        "protocol": PROTOCOL,
        "suite": SUITE,
        "source": "generated by the USaPP reference implementation; procedures in specs/dp.md sections 3-5 and 7",
        "generated_by": (f"usapp vectors generate (HMAC_DRBG SHA-256 from_seed, one seed per vector: "
                         f"{SEED_PREFIX}<vector name>)"),
        "description": ("Exact samplers of Canonne, Kamath, Steinke (NeurIPS 2020): Bernoulli(p), "
                        "Bernoulli(exp(-gamma)), discrete Laplace; distributed noise shares after Shi et al. "
                        "(NDSS 2011), clamped to [-B, B]; the beta rounding; exact Poisson samples and Skellam "
                        "shares (Agarwal, Kairouz, Liu, NeurIPS 2021) with their calibrated mu; rejected inputs. Rationals are "
                        "'n/d' in lowest terms or 'n'; each sampling vector's outputs are drawn in order from "
                        "HMAC_DRBG.from_seed(seed), and draw_calls / bytes_drawn count what they consumed."),
        "notes": dict(NOTES),
        "vectors": vectors,
    }


FAMILY = VectorFamily(file=FILE, protocol=PROTOCOL, suite=SUITE, verify_vector=verify_vector, build=build)
