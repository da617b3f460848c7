"""Vector family ``aggregation``: whole rounds of specs/aggregation.md (section 12).

Each vector is one round: the neighbourhood, the keys ``provision`` draws
from HMAC_DRBG(provision_seed), the readings, every message of the round in
hex, and the released result.  Meters report in neighbourhood order, all
drawing from one HMAC_DRBG(round_seed) and encrypting with standard Paillier
encryption (specs/paillier.md 4.1).  Verification replays the round from the
seeds and compares every key and message byte for byte.
"""

from __future__ import annotations

from collections.abc import Mapping
from fractions import Fraction
from typing import Any

from protocols import aggregation as agg
from protocols.errors import VectorMismatchError
from protocols.primitives.drbg import HmacDrbg
from protocols.schemes.paillier import PrivateKey, generate_keypair
from protocols.system import neighbourhood as nb
from protocols.system.vectorsets import VectorFamily
from protocols.system.vectorsets._fields import (
    bytes_field,
    dispatch,
    expect,
    field,
    hexint,
    int_field,
    small_int_field,
    str_field,
)
from protocols.system.vectorsets.paillier import KEY_SEED

PROTOCOL = "aggregation"
SUITE = "paillier2048-doublemask-x25519-chacha20poly1305-shake256"
FILE = "aggregation.json"
SEED = "usapp-vectors/aggregation/"


def _noise(v: Mapping[str, Any]):
    spec = field(v, "noise")
    if spec is None:
        return None
    from protocols.privacy.dp import NoiseShareConfig, PrivacyLevel

    if not isinstance(spec, dict):
        raise VectorMismatchError("field 'noise' must be null or an object")
    try:
        return NoiseShareConfig(PrivacyLevel(spec["level"]), spec["sensitivity"], spec["participants"],
                                Fraction(spec["honest_fraction"]), Fraction(spec["delta"]))
    except (KeyError, ValueError, TypeError) as exc:
        raise VectorMismatchError(f"field 'noise' is malformed: {exc}") from None


def _noise_json(config) -> dict | None:
    if config is None:
        return None
    return {"level": config.level.value, "sensitivity": config.sensitivity, "participants": config.participants,
            "honest_fraction": str(config.honest_fraction), "delta": str(config.delta)}


def _string_list(v: Mapping[str, Any], name: str) -> list[str]:
    value = field(v, name)
    if not isinstance(value, list) or any(not isinstance(x, str) for x in value):
        raise VectorMismatchError(f"field {name!r} must be a list of strings")
    return value


def _hex_map(v: Mapping[str, Any], name: str) -> dict[str, bytes]:
    value = field(v, name)
    if not isinstance(value, dict):
        raise VectorMismatchError(f"field {name!r} must be an object")
    return {key: bytes_field(value, key) for key in value}


def _play(v: Mapping[str, Any]) -> tuple[agg.Provisioned, nb.Transcript]:
    """Provision and run the round a vector describes."""
    sk = PrivateKey.from_factors(int_field(v, "p"), int_field(v, "q"))
    tree_field = field(v, "tree")
    if not isinstance(tree_field, dict):
        raise VectorMismatchError("field 'tree' must be an object")
    tree = {node: tuple(_string_list(tree_field, node)) for node in tree_field}
    p = agg.provision(sk, _string_list(v, "meters"), tree, str_field(v, "root"),
                      HmacDrbg.from_seed(str_field(v, "provision_seed")),
                      group_id=bytes_field(v, "group_id"), slots=small_int_field(v, "slots"),
                      value_bits=small_int_field(v, "value_bits"), degree=small_int_field(v, "degree"),
                      threshold=small_int_field(v, "threshold"), noise=_noise(v))
    readings_field = field(v, "readings")
    if not isinstance(readings_field, dict):
        raise VectorMismatchError("field 'readings' must be an object")
    readings = {m: list(r) for m, r in readings_field.items()}
    transcript = nb.run_round(p, small_int_field(v, "round"), readings,
                              HmacDrbg.from_seed(str_field(v, "round_seed")), silent=_string_list(v, "silent"))
    return p, transcript


def _keys_json(p: agg.Provisioned) -> dict:
    return {
        "tag_key": p.utility.tag_key.hex(),
        "meter_keys": {m: s.key.hex() for m, s in p.meters.items()},
        "x25519_private": {m: s.x25519_private.hex() for m, s in p.meters.items()},
        "aggregator_keys": {a: s.key.hex() for a, s in p.aggregators.items()},
        "order": list(p.hood.meters),
    }


def _messages_json(t: nb.Transcript) -> dict:
    return {
        "meter_reports": {m: raw.hex() for m, raw in t.meter_reports.items()},
        "aggregate_reports": {a: raw.hex() for a, raw in t.aggregate_reports.items()},
        "unmask_requests": {m: raw.hex() for m, raw in t.requests.items()},
        "unmask_responses": {m: raw.hex() for m, raw in t.responses.items()},
        "sums": list(t.result.sums),
        "reporting": list(t.result.reporting),
        "missing": list(t.result.missing),
    }


def _round(v: Mapping[str, Any]) -> None:
    p, transcript = _play(v)
    for name, value in {**_keys_json(p), **_messages_json(transcript)}.items():
        expect(name, field(v, name), value)


OPERATIONS = {"round": _round}


def verify_vector(vector: Mapping[str, Any]) -> None:
    dispatch(OPERATIONS, vector)


def _case(sk: PrivateKey, name: str, count: int, fanout: int, *, slots: int = 1, value_bits: int = 16,
          degree: int = 4, threshold: int = 2, absent: tuple[int, ...] = (), one_silent: bool = False,
          noise: dict | None = None) -> dict:
    """One round; with ``one_silent``, the first meter with no missing neighbour skips the unmask phase."""
    meters = [f"sm-{i:03d}" for i in range(count)]
    tree, root = agg.balanced_tree(meters, fanout, prefix="dc")
    rng = HmacDrbg.from_seed(SEED + name + "/readings")
    readings = {m: [int.from_bytes(rng.random_bytes(4), "big") % (1 << value_bits) for _ in range(slots)]
                for i, m in enumerate(meters) if i not in absent}
    vector: dict[str, Any] = {
        "name": name, "operation": "round", "p": hexint(sk.p), "q": hexint(sk.q),
        "provision_seed": SEED + name + "/provision", "round_seed": SEED + name + "/round",
        "group_id": (b"vectors/" + name.encode()).hex(), "meters": meters,
        "tree": {a: list(c) for a, c in tree.items()}, "root": root, "slots": slots, "value_bits": value_bits,
        "degree": degree, "threshold": threshold, "noise": noise, "round": 7,
        "readings": readings, "silent": [],
    }
    if one_silent:
        hood = agg.provision(sk, meters, tree, root, HmacDrbg.from_seed(vector["provision_seed"]),
                             degree=degree, threshold=threshold).hood
        vector["silent"] = [next(m for m in meters if m in readings
                                 and all(peer in readings for peer in hood.neighbours(m)))]
    p, transcript = _play(vector)
    vector.update(_keys_json(p))
    vector.update(_messages_json(transcript))
    return vector


def build() -> dict:
    sk = generate_keypair(2048, HmacDrbg.from_seed(KEY_SEED))
    dp_noise = {"level": "medium", "sensitivity": 1023, "participants": 6, "honest_fraction": "1/2",
                "delta": "1/1000"}
    vectors = [
        _case(sk, "small-tree", 6, 2),
        _case(sk, "missing-meters", 12, 3, absent=(2, 5), one_silent=True),
        _case(sk, "packed", 5, 5, slots=40, value_bits=16, degree=4, threshold=2),
        _case(sk, "differential-privacy", 6, 3, slots=2, value_bits=10, noise=dp_noise),
    ]
    return {
        "protocol": PROTOCOL,
        "suite": SUITE,
        "source": "generated by the USaPP reference implementation; procedures in specs/aggregation.md",
        "generated_by": f"usapp vectors generate (HMAC_DRBG SHA-256 from_seed, key seed {KEY_SEED}, "
                        f"round seeds {SEED}<name>/...)",
        "description": ("Whole aggregation rounds: neighbourhood, provisioned keys, readings, every message "
                        "(hex CBOR) and the released sums. 'silent' meters reported but did not answer "
                        "their unmask-request; meters without readings are missing."),
        "vectors": vectors,
    }


FAMILY = VectorFamily(file=FILE, protocol=PROTOCOL, suite=SUITE, verify_vector=verify_vector, build=build)
