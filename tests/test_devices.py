"""Device profiles (specs/costs.md section 4): loading, validation, key resolution, arithmetic."""

from __future__ import annotations

import copy
import importlib.resources
import json
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from protocols import devices
from protocols.devices import derive
from protocols.errors import DecodeError, ParameterError

PROFILES = ("cortex-m0plus-48mhz", "cortex-m33-64mhz", "cortex-m4-168mhz", "cortex-m4-80mhz")

SIZES = (256, 512, 1024, 2048, 3072, 4096)
ODD_SIZES = (320, 1088, 2112, 4160)   # size classes the counters can record (multiples of 64)
CURVES = ("ed25519", "bls12_381_g1", "bls12_381_g2", "ss512", "ss1024", "ss1536", "p256", "sakke1024")

# The key vocabulary of specs/costs.md section 2.1 (the issue 20 contract table and its "Added keys").
CONTRACT_KEYS = (
    [f"{op}:{b}" for op in ("modexp", "modexp_bit", "modmul", "modinv") for b in SIZES + ODD_SIZES]
    + [f"point_mul:{c}" for c in CURVES] + [f"point_mul_base:{c}" for c in CURVES]
    + [f"pairing:{c}" for c in ("bls12_381", "ss512", "ss1024", "ss1536")]
    + [f"gt_exp:{c}" for c in ("bls12_381", "ss512", "ss1024", "sakke1024")] + ["pairing:sakke1024"]
    + [f"hash_to_curve:{c}" for c in ("bls12_381", "ss512", "ss1024")]
    + [f"hash_block:{a}" for a in ("sha256", "sha512", "shake256", "sha1")]
    + [f"{k}:{a}" for k in ("aead_byte", "aead_call") for a in ("chacha20poly1305", "aes128gcm", "aes256gcm")]
    + ["x25519", "ed25519_sign", "ed25519_verify", "ed25519_keygen", "ecdsa_p256_sign", "ecdsa_p256_verify",
       "random_byte", "cbor_encode_byte", "cbor_decode_byte", "state_commit", "state_byte"]
)


def _raw(name: str = "cortex-m4-80mhz") -> dict:
    return json.loads(derive.render(name))


def _bytes(obj: object) -> bytes:
    return json.dumps(obj).encode()


def test_names_are_the_four_profiles():
    assert devices.names() == sorted(PROFILES)


@pytest.mark.parametrize("name", PROFILES)
def test_profile_loads_and_validates(name):
    profile = devices.load(name)
    assert profile.name == name
    assert profile.clock_hz == int(name.rsplit("-", 1)[1].removesuffix("mhz")) * 1_000_000
    for key, figure in profile.ops.items():
        assert figure.source.strip(), key
        if figure.derived:
            assert figure.note.strip(), f"{name} {key}: a derived figure says how"
    assert profile.energy_source.strip()
    assert profile == devices.load(name) and hash(profile) == hash(devices.load(name))


@pytest.mark.parametrize("name", PROFILES)
def test_shipped_file_is_what_derive_computes(name):
    # The data and its derivation cannot drift apart (section 4.3).
    shipped = (importlib.resources.files("protocols.devices") / f"{name}.json").read_text("ascii")
    assert shipped == derive.render(name)


@pytest.mark.parametrize("name", PROFILES)
@pytest.mark.parametrize("key", CONTRACT_KEYS)
def test_every_contract_key_resolves(name, key):
    value = devices.cycles(devices.load(name), key)
    assert math.isfinite(value) and value > 0


@pytest.mark.parametrize("name", PROFILES)
def test_explicit_sizes_agree_with_their_rule(name):
    profile = devices.load(name)
    for key, figure in profile.ops.items():
        if not key.endswith("*"):
            continue
        op, prefix = key[:-1].split(":")
        for bits, count in figure.cycles_at:
            assert figure.at(bits) == count
        for size in SIZES:
            exact = profile.ops.get(f"{op}:{prefix}{size}")
            if exact is not None and exact.cycles is not None:
                assert math.isclose(exact.cycles, figure.at(size), rel_tol=1e-3), (key, size)


@settings(max_examples=200, deadline=None)
@given(name=st.sampled_from(PROFILES), a=st.integers(1, 65536), b=st.integers(1, 65536))
def test_size_rules_are_monotonic(name, a, b):
    profile = devices.load(name)
    low, high = min(a, b), max(a, b)
    for key, figure in profile.ops.items():
        if key.endswith("*"):
            assert figure.at(low) <= figure.at(high) * (1 + 1e-12), (key, low, high)


@settings(max_examples=100, deadline=None)
@given(name=st.sampled_from(PROFILES), bits=st.integers(1, 64).map(lambda k: 64 * k))
def test_size_classes_resolve_between_their_neighbours(name, bits):
    profile = devices.load(name)
    value = devices.cycles(profile, f"modexp_bit:{bits}")
    below = devices.cycles(profile, f"modexp_bit:{max(bits - 64, 64)}")
    above = devices.cycles(profile, f"modexp_bit:{bits + 64}")
    assert below <= value <= above


def test_bigger_operands_cost_more():
    for name in PROFILES:
        profile = devices.load(name)
        for op in ("modexp_bit", "modmul", "modinv", "modexp"):
            costs = [devices.cycles(profile, f"{op}:{b}") for b in SIZES]
            assert costs == sorted(costs) and costs[0] < costs[-1]
        assert devices.cycles(profile, "pairing:ss1024") > devices.cycles(profile, "pairing:ss512")
        assert devices.cycles(profile, "ecdsa_p256_verify") > devices.cycles(profile, "ecdsa_p256_sign")


def test_measured_figures_match_their_published_sources():
    # The figures the issue asked to check, as found (specs/costs.md section 4.2).
    m4 = devices.load("cortex-m4-80mhz")
    assert devices.cycles(m4, "hash_block:sha256") == pytest.approx(5900, rel=0.01)
    assert devices.cycles(m4, "aead_byte:chacha20poly1305") == pytest.approx(43, rel=0.02)
    assert devices.cycles(m4, "ecdsa_p256_sign") == pytest.approx(3.4e6, rel=0.01)
    assert devices.cycles(m4, "ecdsa_p256_verify") == pytest.approx(7.55e6, rel=0.01)
    assert devices.cycles(m4, "modexp_bit:1024") * 2048 == pytest.approx(80.64e6, rel=1e-6)
    assert devices.cycles(devices.load("cortex-m0plus-48mhz"), "x25519") == 3229950


@pytest.mark.parametrize("name", ["nonexistent", "", "../cortex-m4-80mhz", "CORTEX-M4-80MHZ", 7, None])
def test_unknown_device_is_a_parameter_error(name):
    with pytest.raises(ParameterError):
        devices.load(name)


@pytest.mark.parametrize("key", ["no_such_op", "modexp_bit:", "modexp_bit:abc", "pairing:bn254",
                                 "point_mul:ss0", "point_mul:ss99999999", "x" * 100, "", 5, None,
                                 "modexp_bit:*", "hash_block:md5"])
def test_unknown_key_is_a_parameter_error(key):
    with pytest.raises(ParameterError):
        devices.cycles(devices.load("cortex-m4-80mhz"), key)


def _without_source(d):
    del d["ops"]["x25519"]["source"]


def _negative(d):
    d["ops"]["x25519"]["cycles"] = -1


def _unknown_op_field(d):
    d["ops"]["x25519"]["cycles_per_day"] = 1


def _unknown_top_field(d):
    d["radio_mj_per_byte"] = 1


def _derived_without_note(d):
    d["ops"]["modmul:1024"]["note"] = ""


def _shrinking_rule(d):
    d["ops"]["modmul:*"]["cycles_at"] = {"1024": 10.0, "2048": 5.0}


def _bad_scaling(d):
    d["ops"]["modmul:*"]["scaling"] = "exponential"


def _bad_rule_size(d):
    d["ops"]["modmul:*"]["cycles_at"] = {"big": 10.0}


def _string_cycles(d):
    d["ops"]["x25519"]["cycles"] = "548873"


def _bool_derived(d):
    d["ops"]["x25519"]["derived"] = "no"


def _clock_float(d):
    d["clock_hz"] = 80e6


def _clock_too_high(d):
    d["clock_hz"] = 10**10


def _bad_key(d):
    d["ops"]["X25519!"] = d["ops"].pop("x25519")


def _rule_key_with_cycles(d):
    d["ops"]["modmul:*"] = {"cycles": 1.0, "source": "s", "derived": True, "note": "n"}


def _empty_ops(d):
    d["ops"] = {}


def _infinite_current(d):
    d["active_current_ua_per_mhz"] = 1e308 * 10


@pytest.mark.parametrize("corrupt", [_without_source, _negative, _unknown_op_field, _unknown_top_field,
                                     _derived_without_note, _shrinking_rule, _bad_scaling, _bad_rule_size,
                                     _string_cycles, _bool_derived, _clock_float, _clock_too_high, _bad_key,
                                     _rule_key_with_cycles, _empty_ops, _infinite_current])
def test_malformed_profile_is_refused(corrupt):
    d = copy.deepcopy(_raw())
    devices.parse(_bytes(d))   # the untouched profile parses
    corrupt(d)
    with pytest.raises(DecodeError):
        devices.parse(_bytes(d))


@pytest.mark.parametrize("data", [b"", b"not json", b"{", b"\xff\xfe", b"[]", b"null",
                                  b'{"name": NaN}', b"[" * 100000 + b"]" * 100000])
def test_non_json_is_refused(data):
    with pytest.raises(DecodeError):
        devices.parse(data)


def test_oversized_file_is_refused_before_parsing():
    with pytest.raises(DecodeError, match="at most"):
        devices.parse(b" " * (devices.MAX_PROFILE_BYTES + 1))


def test_file_must_hold_the_profile_it_is_named_after():
    with pytest.raises(DecodeError):
        devices.parse(derive.render("cortex-m4-80mhz").encode(), expected_name="cortex-m33-64mhz")


def test_ms_and_mj_arithmetic():
    p = devices.load("cortex-m4-80mhz")
    assert p.ms(p.clock_hz) == pytest.approx(1000.0)
    assert p.ms(0) == 0.0
    # mJ = cycles / clock_hz * current * voltage * 1000, current = uA/MHz * MHz
    c = 80_640_000
    expected = c / p.clock_hz * (p.active_current_ua_per_mhz * p.clock_hz / 1e6 * 1e-6) * p.supply_v * 1000
    assert p.mj(c) == pytest.approx(expected)
    assert p.mj(c) == pytest.approx(c * p.active_current_ua_per_mhz * p.supply_v * 1e-9)


@settings(max_examples=100, deadline=None)
@given(name=st.sampled_from(PROFILES), a=st.floats(0, 1e12), b=st.floats(0, 1e12))
def test_ms_and_mj_are_linear_in_cycles(name, a, b):
    p = devices.load(name)
    assert p.ms(a + b) == pytest.approx(p.ms(a) + p.ms(b), rel=1e-9, abs=1e-12)
    assert p.mj(a + b) == pytest.approx(p.mj(a) + p.mj(b), rel=1e-9, abs=1e-12)
    if a <= b:
        assert p.ms(a) <= p.ms(b) and p.mj(a) <= p.mj(b)


@pytest.mark.parametrize("bad", [-1, -0.5, float("nan"), float("inf"), "100", None, True])
def test_ms_and_mj_refuse_bad_cycles(bad):
    p = devices.load("cortex-m4-80mhz")
    with pytest.raises(ParameterError):
        p.ms(bad)
    with pytest.raises(ParameterError):
        p.mj(bad)


def test_rule_refuses_bad_sizes():
    rule = devices.load("cortex-m4-80mhz").ops["modmul:*"]
    for bad in (0, -64, 70000, 2.5, True, "1024"):
        with pytest.raises(ParameterError):
            rule.at(bad)
    with pytest.raises(ParameterError):
        devices.load("cortex-m4-80mhz").ops["x25519"].at(1024)
