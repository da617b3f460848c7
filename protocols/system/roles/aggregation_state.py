"""Stored state of the aggregation roles: deterministic CBOR codecs (specs/roles.md section 6.4).

Every decoder checks the stored value's shape and raises
:class:`~protocols.errors.StateFileError` for anything it does not expect:
a corrupt entry is never silently reset.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from fractions import Fraction
from typing import Any, TypeVar

from gmpy2 import mpz

from protocols.aggregation import messages as msg
from protocols.aggregation.aggregator import AggregatorState
from protocols.aggregation.hood import Neighbourhood
from protocols.aggregation.meter import MeterState
from protocols.aggregation.utility import RoundState, UtilityState
from protocols.errors import StateFileError, UsappError
from protocols.primitives import cbor
from protocols.privacy.dp import NoiseShareConfig, PrivacyLevel
from protocols.schemes.paillier import PrivateKey, PublicKey

MAX_STATE_BYTES = 1 << 24
"""Largest stored entry read back (16 MiB); a directory of the largest neighbourhood fits."""

T = TypeVar("T")


def checked(what: str, build: Callable[[], T]) -> T:
    """Run a decoder; any fault of the stored bytes becomes StateFileError naming ``what``."""
    try:
        return build()
    except StateFileError:
        raise
    except (UsappError, KeyError, IndexError, TypeError, ValueError, AttributeError, ZeroDivisionError) as exc:
        raise StateFileError(f"stored {what} is corrupt: {type(exc).__name__}: {exc}") from None


def _decode_map(raw: bytes, schema: Mapping[int, Any], what: str) -> dict:
    return cbor.decode_map(raw, schema, name=what, max_size=MAX_STATE_BYTES)


def _str_map(value: object, kind: type, what: str) -> dict[str, Any]:
    if not isinstance(value, dict) or any(type(k) is not str or type(v) is not kind for k, v in value.items()):
        raise StateFileError(f"stored {what}: expected a map of text to {kind.__name__}")
    return value


def _str_list(value: object, what: str) -> list[str]:
    if not isinstance(value, list) or any(type(v) is not str for v in value):
        raise StateFileError(f"stored {what}: expected a list of text strings")
    return value


def _opt(value: object, kind: type, what: str) -> Any:
    if value is not None and type(value) is not kind:
        raise StateFileError(f"stored {what}: expected {kind.__name__} or null")
    return value


def _b32(value: int | None) -> bytes | None:
    return None if value is None else int(value).to_bytes(32, "big")


def _int32(value: bytes | None, what: str) -> int | None:
    if value is None:
        return None
    if len(value) != 32:
        raise StateFileError(f"stored {what}: expected 32 bytes")
    return int.from_bytes(value, "big")


# -- the neighbourhood (kv "hood") ----------------------------------------------------------------------


@dataclass(frozen=True)
class Group:
    """What every aggregation party holds after setup: the neighbourhood and the utility's id."""

    hood: Neighbourhood
    utility: str


def encode_group(hood: Neighbourhood, utility: str) -> bytes:
    """kv ``hood``: {1: CBOR(directory) (aggregation spec 3.2), 2: {meter id: nu_i}, 3: utility id}."""
    return cbor.encode({1: cbor.encode(hood.directory_cbor()), 2: dict(hood.reveals or {}), 3: utility})


def _noise(value: object) -> NoiseShareConfig | None:
    if value is None:
        return None
    if not isinstance(value, list) or len(value) != 5:
        raise StateFileError("stored directory: the noise entry must be null or a list of 5")
    level, sensitivity, participants, honest, delta = value
    return NoiseShareConfig(PrivacyLevel(level), sensitivity, participants, Fraction(honest), Fraction(delta))


def hood_of(directory: bytes, reveals: Mapping[str, bytes]) -> Neighbourhood:
    """The Neighbourhood of CBOR(directory) and the reveals; the directory must re-encode to the same bytes."""
    def build() -> Neighbourhood:
        d = _decode_map(directory, {1: bytes, 2: bytes, 3: list, 4: list, 5: str, 6: list, 7: (list, type(None))},
                        "directory")
        params = d[6]
        if len(params) != 7 or any(type(p) is not int for p in params):
            raise StateFileError("stored directory: the parameters must be 7 integers")
        entries = d[3]
        for e in entries:
            if not isinstance(e, list) or len(e) != 4 or type(e[0]) is not str:
                raise StateFileError("stored directory: a meter entry must be [id, X25519, Ed25519, commitment]")
        tree = {}
        for item in d[4]:
            if not isinstance(item, list) or len(item) != 2 or type(item[0]) is not str:
                raise StateFileError("stored directory: a tree entry must be [node, [children]]")
            tree[item[0]] = tuple(_str_list(item[1], "tree children"))
        if d[2][:1] == b"\x00":
            raise StateFileError("stored directory: the modulus has a leading zero byte")
        hood = Neighbourhood(
            d[1], PublicKey(mpz(int.from_bytes(d[2], "big"))),
            {e[0]: e[1] for e in entries}, {e[0]: e[2] for e in entries}, {e[0]: e[3] for e in entries},
            dict(reveals), tree, d[5], slots=params[0], value_bits=params[1], degree=params[2],
            threshold=params[3], min_reporting=params[4], committee_size=params[5],
            committee_threshold=params[6], noise=_noise(d[7]))
        if cbor.encode(hood.directory_cbor()) != directory:
            raise StateFileError("stored directory does not re-encode to the same bytes")
        return hood
    return checked("directory", build)


def decode_group(raw: bytes) -> Group:
    def build() -> Group:
        m = _decode_map(raw, {1: bytes, 2: dict, 3: str}, "hood")
        return Group(hood_of(m[1], _str_map(m[2], bytes, "reveals")), m[3])
    return checked("neighbourhood", build)


# -- the meter (kv "meter") --------------------------------------------------------------------------------

_METER = {1: str, 2: bytes, 3: bytes, 4: bytes, 5: bytes, 6: int, 7: int, 8: int, 9: bool, 10: int,
          11: (bytes, type(None)), 12: (bytes, type(None)), 13: int, 14: (bytes, type(None)),
          15: (bytes, type(None)), 16: int, 17: list, 18: dict, 19: bytes, 20: (bytes, type(None)), 21: dict,
          22: dict, 23: int, 24: int, 25: int}


def encode_meter(s: MeterState) -> bytes:
    """kv ``meter``: MeterState (aggregation spec 6.1) as the map of roles spec 6.4 (the s_ij cache is not stored)."""
    return cbor.encode({
        1: s.meter_id, 2: s.key, 3: s.tag_key, 4: s.x25519_private, 5: s.signing_seed,
        6: s.min_reporting_floor, 7: s.degree_floor, 8: s.committee_floor, 9: bool(s.require_noise),
        10: s.setups, 11: s.graph_nonce, 12: s.directory, 13: s.advertised, 14: _b32(s.epsilon),
        15: _b32(s.sigma), 16: s.bundle_round, 17: list(s.bundle), 18: dict(s.peer_mask_public),
        19: s.own_mask_public, 20: s.bundle_directory, 21: dict(s.round_secrets),
        22: {j: [_b32(e), _b32(g)] for j, (e, g) in s.held.items()},
        23: s.last_reported, 24: s.last_unmasked, 25: s.last_committed,
    })


def decode_meter(raw: bytes) -> MeterState:
    def build() -> MeterState:
        m = _decode_map(raw, _METER, "meter state")
        held = {}
        for peer, pair in _str_map(m[22], list, "held shares").items():
            if len(pair) != 2 or any(type(x) is not bytes for x in pair):
                raise StateFileError("stored held shares: each must be [eps share, sigma share]")
            held[peer] = (_int32(pair[0], "share"), _int32(pair[1], "share"))
        for name, value in ((2, m[2]), (3, m[3]), (4, m[4]), (5, m[5])):
            if len(value) != 32:
                raise StateFileError(f"stored meter state: key {name} must be 32 bytes")
        return MeterState(
            m[1], m[2], m[3], m[4], m[5], min_reporting_floor=m[6], degree_floor=m[7], committee_floor=m[8],
            require_noise=m[9], setups=m[10], graph_nonce=m[11], directory=m[12], advertised=m[13],
            epsilon=_int32(m[14], "epsilon"), sigma=_int32(m[15], "sigma"), bundle_round=m[16],
            bundle=tuple(_str_list(m[17], "bundle")), peer_mask_public=_str_map(m[18], bytes, "mask keys"),
            own_mask_public=m[19], bundle_directory=m[20], round_secrets=_str_map(m[21], bytes, "round secrets"),
            held=held, last_reported=m[23], last_unmasked=m[24], last_committed=m[25])
    return checked("meter state", build)


# -- the concentrator (kv "concentrator") ------------------------------------------------------------------


def encode_concentrator(s: AggregatorState) -> bytes:
    """kv ``concentrator``: {1: id, 2: K_a, 3: last round aggregated} (the retained inputs are table rows)."""
    return cbor.encode({1: s.aggregator_id, 2: s.key, 3: s.last_round})


def decode_concentrator(raw: bytes) -> AggregatorState:
    def build() -> AggregatorState:
        m = _decode_map(raw, {1: str, 2: bytes, 3: int}, "concentrator state")
        if len(m[2]) != 32:
            raise StateFileError("stored concentrator state: K_a must be 32 bytes")
        return AggregatorState(m[1], m[2], m[3])
    return checked("concentrator state", build)


# -- the utility (kv "utility" and kv "round") -------------------------------------------------------------


def encode_utility(s: UtilityState) -> bytes:
    """kv ``utility``: {1: p, 2: q (p < q, I2OSP each), 3: {meter: K_i}, 4: {aggregator: K_a}, 5: K_alpha,
    6: last round finished}."""
    key = s.private_key
    return cbor.encode({1: int(key.p).to_bytes((int(key.p).bit_length() + 7) // 8, "big"),
                        2: int(key.q).to_bytes((int(key.q).bit_length() + 7) // 8, "big"),
                        3: dict(s.meter_keys), 4: dict(s.aggregator_keys), 5: s.tag_key, 6: s.last_round})


def decode_utility(raw: bytes, public_key: PublicKey) -> UtilityState:
    """The stored factors must multiply to the directory's modulus (no primality test: the file is ours)."""
    def build() -> UtilityState:
        m = _decode_map(raw, {1: bytes, 2: bytes, 3: dict, 4: dict, 5: bytes, 6: int}, "utility state")
        p, q = mpz(int.from_bytes(m[1], "big")), mpz(int.from_bytes(m[2], "big"))
        if not 1 < p < q or p * q != public_key.n:
            raise StateFileError("stored utility state: the factors do not match the directory's modulus")
        return UtilityState(PrivateKey(public_key, p, q), _str_map(m[3], bytes, "meter keys"),
                            _str_map(m[4], bytes, "aggregator keys"), m[5], m[6])
    return checked("utility state", build)


PHASES = ("adverts", "report", "signatures", "responses", "finished", "abandoned")
"""The utility's phases of one round (roles spec 6.3)."""


@dataclass
class OpenRound:
    """kv ``round``: the utility's round, from the first advert to the result."""

    phase: str
    rs: RoundState


def encode_round(r: OpenRound) -> bytes:
    rs = r.rs
    return cbor.encode({
        1: rs.round, 2: r.phase, 3: dict(rs.mask_public), 4: {m: list(p) for m, p in rs.bundles.items()},
        5: None if rs.report is None else cbor.encode(rs.report.fields), 6: list(rs.reporting),
        7: list(rs.missing), 8: rs.reporting_map, 9: rs.missing_map, 10: dict(rs.confirmations),
        11: dict(rs.signatures), 12: sorted(rs.requested),
    })


def decode_round(raw: bytes, hood: Neighbourhood) -> OpenRound:
    def build() -> OpenRound:
        m = _decode_map(raw, {1: int, 2: str, 3: dict, 4: dict, 5: (bytes, type(None)), 6: list, 7: list,
                              8: bytes, 9: bytes, 10: dict, 11: dict, 12: list}, "utility round")
        if m[2] not in PHASES:
            raise StateFileError(f"stored utility round: unknown phase {m[2]!r}")
        bundles = {k: tuple(_str_list(v, "bundle")) for k, v in _str_map(m[4], list, "bundles").items()}
        rs = RoundState(m[1], _str_map(m[3], bytes, "mask keys"), bundles)
        rs.report = None if m[5] is None else msg.AggregateReport.decode(m[5], hood)
        rs.reporting, rs.missing = tuple(_str_list(m[6], "reporting")), tuple(_str_list(m[7], "missing"))
        rs.reporting_map, rs.missing_map = m[8], m[9]
        rs.confirmations = _str_map(m[10], bytes, "confirmations")
        rs.signatures = _str_map(m[11], bytes, "signatures")
        rs.requested = set(_str_list(m[12], "requested"))
        return OpenRound(m[2], rs)
    return checked("utility round", build)
