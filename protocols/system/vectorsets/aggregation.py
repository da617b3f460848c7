"""Vector family ``aggregation``: whole rounds of the aggregation protocol v2 (specs/aggregation.md).

Each vector (operation ``round``) is one round of one neighbourhood:

- setup: ``provision`` draws every key from HMAC_DRBG(provision_seed) in the
  order of spec 3.1 (K_alpha; per meter, in the order of ``meters``: K_i, the
  X25519 private key, the Ed25519 seed; per aggregator, sorted: K_a; then the
  graph nonces, meters in directory order) and runs the graph commit-reveal;
- the round: protocols.system.neighbourhood.run_round with every meter
  drawing from one HMAC_DRBG(round_seed) in the driver's order (every
  taking-part meter's advertise in directory order: epsilon, sigma,
  epsilon's coefficients, sigma's; then every reporting meter's report in
  directory order: the noise share of each slot, then the standard Paillier
  randomness r, specs/paillier.md 4.1).

Outputs are every drawn value and intermediate a vendor needs to find the
first step where their implementation diverges: keys, directory CBOR and
digest, graph seed, neighbours and committee; per meter epsilon, sigma, E,
both secrets' shares at each point, noise shares, tag, packed plaintext,
pair and self masks, the masked plaintext and r; per pair the static and
round secrets and the mask; every message; the utility's decryption and
unmasking; the result.  The round is played by the real roles only: the
values a meter erases (epsilon, sigma and its plaintext) are read when its
report encrypts, through an encryptor that records them and encrypts as the
meter would without one; the rest is recomputed from the messages and keys
with the key schedule and cross-checked (a disagreement is a mismatch).
"""

from __future__ import annotations

from collections.abc import Mapping
from fractions import Fraction
from typing import Any

import gmpy2

from protocols import aggregation as agg
from protocols.aggregation import schedule as ks
from protocols.errors import VectorMismatchError
from protocols.primitives import cbor, shamir
from protocols.primitives.drbg import HmacDrbg
from protocols.schemes.paillier import PrivateKey, generate_keypair
from protocols.system import neighbourhood as nb
from protocols.system.vectorsets import VectorFamily
from protocols.system.vectorsets._fields import (
    bytes_field,
    dispatch,
    expect_outputs,
    field,
    hexint,
    int_field,
    recompute,
    small_int_field,
    str_field,
)
from protocols.system.vectorsets.paillier import KEY_SEED

PROTOCOL = "aggregation"
SUITE = "paillier2048-doublemask2-x25519-ed25519-chacha20poly1305-shake256"
FILE = "aggregation.json"
SEED = "usapp-vectors/aggregation/"
_INPUTS = ("name", "operation", "p", "q", "provision_seed", "round_seed", "group_id", "meters", "tree", "root",
           "slots", "value_bits", "degree", "threshold", "min_reporting", "committee_size", "committee_threshold",
           "noise", "round", "readings", "dropped", "silent", "absent_committee")
_OPTIONAL = ("threshold", "min_reporting", "committee_size", "committee_threshold")


# ---------------------------------------------------------------------------
# Reading the inputs


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


def _string_list(v: Mapping[str, Any], name: str) -> list[str]:
    value = field(v, name)
    if not isinstance(value, list) or any(not isinstance(x, str) for x in value):
        raise VectorMismatchError(f"field {name!r} must be a list of strings")
    return value


def _optional_int(v: Mapping[str, Any], name: str) -> int | None:
    return None if field(v, name) is None else small_int_field(v, name)


def _readings(v: Mapping[str, Any]) -> dict[str, list[int]]:
    value = field(v, "readings")
    if not isinstance(value, dict):
        raise VectorMismatchError("field 'readings' must be an object")
    for meter, row in value.items():
        if not isinstance(row, list) or any(not isinstance(x, int) or isinstance(x, bool) for x in row):
            raise VectorMismatchError(f"field 'readings.{meter}' must be a list of integers")
    return {m: list(r) for m, r in value.items()}


def _tree(v: Mapping[str, Any]) -> dict[str, tuple[str, ...]]:
    value = field(v, "tree")
    if not isinstance(value, dict):
        raise VectorMismatchError("field 'tree' must be an object")
    return {node: tuple(_string_list(value, node)) for node in value}


# ---------------------------------------------------------------------------
# Playing the round


class _Recorder:
    """An encryptor for Meter.report that records what the meter erases, then encrypts as
    ``encryptor=None`` would (PublicKey.encrypt with the round's DRBG)."""

    def __init__(self, state: agg.MeterState, public_key, log: dict) -> None:
        self.state, self.public_key, self.log = state, public_key, log

    def encrypt(self, plaintext: int, rng):
        self.log[self.state.meter_id] = (self.state.epsilon, self.state.sigma, int(plaintext))
        return self.public_key.encrypt(plaintext, rng)


def _play(v: Mapping[str, Any]):
    sk = PrivateKey.from_factors(int_field(v, "p"), int_field(v, "q"))
    options = {name: _optional_int(v, name) for name in _OPTIONAL}
    p = agg.provision(sk, _string_list(v, "meters"), _tree(v), str_field(v, "root"),
                      HmacDrbg.from_seed(str_field(v, "provision_seed")), group_id=bytes_field(v, "group_id"),
                      slots=small_int_field(v, "slots"), value_bits=small_int_field(v, "value_bits"),
                      degree=small_int_field(v, "degree"), noise=_noise(v), **options)
    readings = _readings(v)
    log: dict = {}
    encryptors = {m: _Recorder(p.meters[m], p.hood.public_key, log) for m in readings if m in p.meters}
    transcript = nb.run_round(p, small_int_field(v, "round"), readings,
                              HmacDrbg.from_seed(str_field(v, "round_seed")), dropped=_string_list(v, "dropped"),
                              silent=_string_list(v, "silent"), absent_committee=_string_list(v, "absent_committee"),
                              encryptors=encryptors)
    return sk, p, transcript, readings, log


# ---------------------------------------------------------------------------
# The outputs


def _b32(value: int) -> str:
    return value.to_bytes(ks.SHARE_BYTES, "big").hex()


def _check(condition: bool, what: str) -> None:
    if not condition:
        raise VectorMismatchError(f"internal cross-check failed: {what}")


def _setup_json(p: agg.Provisioned) -> dict:
    hood = p.hood
    meters = {}
    for m, s in p.meters.items():
        meters[m] = {
            "key": s.key.hex(), "mac_up": ks.mac_key(s.key, b"up").hex(), "mac_down": ks.mac_key(s.key, b"down").hex(),
            "x25519_private": s.x25519_private.hex(), "x25519_public": s.x25519_public.hex(),
            "ed25519_seed": s.signing_seed.hex(), "ed25519_public": s.verify_key.hex(),
            "graph_nonce": hood.reveals[m].hex(), "graph_commitment": hood.commitments[m].hex(),
        }
    layout = hood.layout
    return {
        "parameters": {"threshold": hood.threshold, "min_reporting": hood.min_reporting,
                       "committee_size": hood.committee_size, "committee_threshold": hood.committee_threshold,
                       "noise_bound": layout.noise_bound, "slot_bits": layout.slot_bits, "tag_bits": layout.tag_bits},
        "tag_key": p.utility.tag_key.hex(),
        "meter_keys": meters,
        "aggregator_keys": {a: s.key.hex() for a, s in p.aggregators.items()},
        "directory": {
            "order": list(hood.meters), "cbor": cbor.encode(hood.directory_cbor()).hex(), "digest": hood.digest.hex(),
            "graph_seed": hood.seed.hex(), "offsets": list(hood.offsets),
            "neighbours": {m: list(hood.neighbours(m)) for m in hood.meters},
            "committee": list(hood.committee),
        },
    }


def _shares(p: agg.Provisioned, round_id: int, meter: str, advert: dict) -> tuple[list[int], list[int]]:
    """Open every box of a mask-advert with the static pair secret: the shares at points 1..d (spec 6.2)."""
    hood, state = p.hood, p.meters[meter]
    eps_shares, sigma_shares = [], []
    boxes = advert[5]
    for x, peer in enumerate(hood.neighbours(meter)):
        secret = ks.static_secret(hood.digest, meter, state.x25519_private, peer, hood.meter_public[peer])
        nonce, aad = ks.box_nonce_aad(hood.group_id, round_id, meter, peer, advert[4])
        plain = ks.box_cipher(secret).decrypt(nonce, boxes[ks.BOX_BYTES * x:ks.BOX_BYTES * (x + 1)], aad)
        eps_shares.append(int.from_bytes(plain[:32], "big"))
        sigma_shares.append(int.from_bytes(plain[32:], "big"))
    return eps_shares, sigma_shares


def _paillier_r(sk: PrivateKey, c: int) -> int:
    """The r of c = (1 + m n) r^n mod n^2: r = (c mod n)^(n^-1 mod phi(n)) mod n."""
    n = sk.public_key.n
    return int(gmpy2.powmod(c % n, gmpy2.invert(n, (sk.p - 1) * (sk.q - 1)), n))


def _round_json(sk: PrivateKey, p: agg.Provisioned, t: nb.Transcript, readings, log) -> dict:
    hood, r = p.hood, t.round
    n = hood.public_key.n
    adverts = {m: cbor.decode(raw) for m, raw in t.adverts.items()}
    secrets: dict[str, tuple[int, int]] = {}
    for m in adverts:
        if m in log:
            epsilon, sigma, _ = log[m]
        else:  # advertised, never reported: the meter still holds its round secrets
            epsilon, sigma = p.meters[m].epsilon, p.meters[m].sigma
        secrets[m] = (epsilon, sigma)
    advertisers = [m for m in hood.meters if m in adverts]

    pairs, pair_mask = [], {}
    for i in advertisers:
        for j in hood.neighbours(i):
            if j not in adverts or hood.index(j) < hood.index(i):
                continue
            a = ks.round_secret(hood.group_id, r, i, secrets[i][0], j, adverts[j][4])
            _check(a == ks.round_secret(hood.group_id, r, j, secrets[j][0], i, adverts[i][4]), f"a({i},{j})")
            mask = ks.pair_mask(a, r, n)
            pair_mask[i, j] = pair_mask[j, i] = mask
            pairs.append({"meters": [i, j], "a": a.hex(), "m": hexint(mask),
                          "static_secret": ks.static_secret(hood.digest, i, p.meters[i].x25519_private, j,
                                                            hood.meter_public[j]).hex()})

    alphas = ks.tag_alphas(p.utility.tag_key, r, hood.slots)
    meters = {}
    for m in advertisers:
        epsilon, sigma = secrets[m]
        e_public = ks.x25519_public(ks.mask_private(epsilon))
        _check(e_public == adverts[m][4], f"E of {m}")
        eps_shares, sigma_shares = _shares(p, r, m, adverts[m])
        for secret, shares in ((epsilon, eps_shares), (sigma, sigma_shares)):
            points = [shamir.Share(x, y) for x, y in enumerate(shares, start=1)]
            _check(shamir.recover(points, hood.threshold) == secret, f"shares of {m}")
            shamir.check_consistent(points, hood.threshold)
        entry: dict[str, Any] = {"epsilon": _b32(epsilon), "sigma": _b32(sigma), "mask_public": e_public.hex(),
                                 "epsilon_shares": [_b32(y) for y in eps_shares],
                                 "sigma_shares": [_b32(y) for y in sigma_shares],
                                 "bundle": list(p.meters[m].bundle)}
        if m in t.meter_reports:
            report = cbor.decode(t.meter_reports[m])
            masked = log[m][2]
            c = int.from_bytes(report[4], "big")
            _check(int(sk.decrypt_raw(c)) == masked, f"the ciphertext of {m}")
            rand = _paillier_r(sk, c)
            self_mask = ks.self_mask(sigma, r, n)
            packed = masked - self_mask - sum(hood.sign(m, j) * pair_mask[m, j] for j in p.meters[m].bundle)
            packed %= n
            values, tag = hood.layout.unpack(packed, n)
            beta = ks.tag_beta(p.meters[m].key, r)
            _check(tag == (sum(a * x for a, x in zip(alphas, values)) + beta) % ks.TAG_PRIME, f"tag of {m}")
            _check(hood.layout.pack(values, tag) == packed, f"packing of {m}")
            confirmations = {
                j: ks.confirmation(ks.static_secret(hood.digest, m, p.meters[m].x25519_private, j,
                                                    hood.meter_public[j]),
                                   hood.group_id, r, m, j, e_public, adverts[j][4]).hex()
                for j in p.meters[m].bundle}
            _check("".join(confirmations.values()) == report[5].hex(), f"confirmations of {m}")
            entry.update({
                "noise": [x - reading for x, reading in zip(values, readings[m])], "values": values,
                "beta": hexint(beta), "tag": hexint(tag), "packed": hexint(packed), "self_mask": hexint(self_mask),
                "pair_signs": {j: hood.sign(m, j) for j in p.meters[m].bundle},
                "masked": hexint(masked), "paillier_r": hexint(rand), "confirmations": confirmations,
            })
        meters[m] = entry

    rs, result = t.state, t.result
    reporting = set(rs.reporting)
    decrypted = int(sk.decrypt(rs.report.ciphertext))
    unmasked = decrypted - sum(ks.self_mask(secrets[m][1], r, n) for m in rs.reporting)
    for j in rs.missing:
        unmasked -= sum(hood.sign(peer, j) * pair_mask[peer, j] for peer in rs.bundles[j]
                        if peer in reporting and j in rs.bundles[peer])
    unmasked %= n
    sums, tag_sum = hood.layout.unpack(unmasked, n)
    _check(tuple(sums) == result.sums, "the released sums")
    return {
        "alphas": [hexint(a) for a in alphas],
        "round_meters": meters,
        "pairs": pairs,
        "messages": {
            "adverts": {m: raw.hex() for m, raw in t.adverts.items()},
            "bundles": {m: raw.hex() for m, raw in t.bundles.items()},
            "meter_reports": {m: raw.hex() for m, raw in t.meter_reports.items()},
            "aggregate_reports": {a: raw.hex() for a, raw in t.aggregate_reports.items()},
            "commit_requests": {m: raw.hex() for m, raw in t.commit_requests.items()},
            "commit_signatures": {m: raw.hex() for m, raw in t.commit_signatures.items()},
            "unmask_requests": {m: raw.hex() for m, raw in t.requests.items()},
            "unmask_responses": {m: raw.hex() for m, raw in t.responses.items()},
        },
        "utility": {
            "reporting_bitmap": rs.reporting_map.hex(), "missing_bitmap": rs.missing_map.hex(),
            "commit_message": ks.commit_message(hood.group_id, hood.digest, r, rs.reporting_map,
                                                rs.missing_map).hex(),
            "signers": [m for m in hood.committee if m in rs.signatures],
            "decrypted": hexint(decrypted), "unmasked": hexint(unmasked), "tag_sum": hexint(tag_sum),
        },
        "release": {"sums": list(result.sums), "reporting": list(result.reporting), "missing": list(result.missing),
                   "noisy": result.noisy},
    }


def _outputs(v: Mapping[str, Any]) -> dict:
    def compute() -> dict:
        sk, p, transcript, readings, log = _play(v)
        return {**_setup_json(p), **_round_json(sk, p, transcript, readings, log)}

    return recompute("round", compute)


def _first_difference(path: str, stored: Any, computed: Any) -> str | None:
    """The path of the first value where ``stored`` and ``computed`` differ (a vendor's first divergence)."""
    if isinstance(computed, dict) and isinstance(stored, dict):
        for key in sorted(set(stored) | set(computed)):
            found = _first_difference(f"{path}.{key}", stored.get(key), computed.get(key))
            if found:
                return found
        return None
    if isinstance(computed, list) and isinstance(stored, list) and len(stored) == len(computed):
        for i, (a, b) in enumerate(zip(stored, computed)):
            found = _first_difference(f"{path}[{i}]", a, b)
            if found:
                return found
        return None
    return None if stored == computed else path


def _round(v: Mapping[str, Any]) -> None:
    outputs = _outputs(v)
    for name in ("parameters", "meter_keys", "directory", "round_meters", "pairs", "messages", "utility", "release"):
        where = _first_difference(name, v.get(name), outputs[name])
        if where is not None:
            raise VectorMismatchError(f"field {where!r} does not recompute to its stored value")
    expect_outputs(v, outputs, _INPUTS)


OPERATIONS = {"round": _round}


def verify_vector(vector: Mapping[str, Any]) -> None:
    dispatch(OPERATIONS, vector)


# ---------------------------------------------------------------------------
# Generation


def _recoverable(hood: agg.Neighbourhood, reporting: set, dropped: set, silent: set) -> bool:
    """Every advertiser gets a bundle of >= t and every secret the utility needs has >= t answering holders."""
    advertisers = reporting | dropped
    answering = reporting - silent
    for m in advertisers:
        peers = [j for j in hood.neighbours(m) if j in advertisers]
        if len(peers) < hood.threshold or sum(j in answering for j in peers) < hood.threshold:
            return False
    return len(reporting) >= hood.min_reporting


def _greedy(hood: agg.Neighbourhood, chosen: dict[str, list[str]], role: str, wanted: int) -> bool:
    """Add to ``chosen[role]`` the first meters (directory order, not the first) that keep the round recoverable."""
    for m in hood.meters[1:]:
        if len(chosen[role]) == wanted:
            break
        if any(m in members for members in chosen.values()):
            continue
        trial = {k: set(x) for k, x in chosen.items()}
        trial[role].add(m)
        reporting = set(hood.meters) - trial["absent"] - trial["dropped"]
        if _recoverable(hood, reporting, trial["dropped"], trial["silent"]):
            chosen[role].append(m)
    return len(chosen[role]) == wanted


def _choose(hood: agg.Neighbourhood, dropped: int, silent: int, absent: int) -> tuple[list, list, list]:
    """Meters that take no part (at most one), dropped and silent meters that leave the round recoverable:
    the first non-participating meter, in directory order, for which the others can still be found."""
    for gone in ([[m] for m in hood.meters[1:]] if absent else [[]]):
        chosen = {"absent": gone, "dropped": [], "silent": []}
        if (_recoverable(hood, set(hood.meters) - set(gone), set(), set())
                and _greedy(hood, chosen, "dropped", dropped) and _greedy(hood, chosen, "silent", silent)):
            return chosen["absent"], chosen["dropped"], chosen["silent"]
    raise VectorMismatchError("generator: no recoverable choice of absent, dropped and silent meters")


def _case(sk: PrivateKey, name: str, count: int, fanout: int, *, slots: int = 1, value_bits: int = 16,
          degree: int = 16, threshold: int | None = None, committee_size: int | None = None,
          noise: dict | None = None, absent: int = 0,
          dropped: int = 0, silent: int = 0, absent_committee: int = 0) -> dict:
    meters = [f"sm-{i:03d}" for i in range(count)]
    tree, root = agg.balanced_tree(meters, fanout, prefix="dc")
    vector: dict[str, Any] = {
        "name": name, "operation": "round", "p": hexint(sk.p), "q": hexint(sk.q),
        "provision_seed": SEED + name + "/provision", "round_seed": SEED + name + "/round",
        "group_id": (b"vectors/" + name.encode()).hex(), "meters": meters,
        "tree": {a: list(c) for a, c in tree.items()}, "root": root, "slots": slots, "value_bits": value_bits,
        "degree": degree, "threshold": threshold, "min_reporting": None, "committee_size": committee_size,
        "committee_threshold": None, "noise": noise, "round": 7,
    }
    hood = agg.provision(sk, meters, tree, root, HmacDrbg.from_seed(vector["provision_seed"]),
                         group_id=bytes.fromhex(vector["group_id"]), slots=slots, value_bits=value_bits,
                         degree=degree, threshold=threshold, committee_size=committee_size,
                         noise=_noise(vector)).hood
    gone, down, quiet = _choose(hood, dropped, silent, absent)
    rng = HmacDrbg.from_seed(SEED + name + "/readings")
    vector["readings"] = {m: [int.from_bytes(rng.random_bytes(4), "big") % (1 << value_bits) for _ in range(slots)]
                          for m in meters if m not in gone and m not in down}
    vector["dropped"], vector["silent"] = down, quiet
    vector["absent_committee"] = list(hood.committee[-absent_committee:]) if absent_committee else []
    vector.update(_outputs(vector))
    return vector


def build() -> dict:
    sk = generate_keypair(2048, HmacDrbg.from_seed(KEY_SEED))
    dp_noise = {"level": "medium", "sensitivity": 1023, "participants": 4, "honest_fraction": "1/2",
                "delta": "1/1000"}
    vectors = [
        _case(sk, "complete-graph", 5, 2),
        _case(sk, "sparse-dropped-silent", 20, 4, degree=4, committee_size=7, absent=1, dropped=2, silent=1,
              absent_committee=1),
        _case(sk, "packed", 5, 5, slots=40),
        _case(sk, "differential-privacy", 8, 3, slots=2, value_bits=10, noise=dp_noise, dropped=1),
    ]
    return {
        "protocol": PROTOCOL,
        "suite": SUITE,
        "source": "generated by the USaPP reference implementation; procedures in specs/aggregation.md (v2)",
        "generated_by": f"usapp vectors generate (HMAC_DRBG SHA-256 from_seed, key seed {KEY_SEED}, "
                        f"seeds {SEED}<name>/provision, /round, /readings)",
        "description": ("Whole aggregation rounds (v2: double masking over a seeded sparse graph, committee-signed "
                        "reporting and missing sets): setup keys and directory, every round draw and intermediate, "
                        "every message (hex CBOR) and the released sums. Meters with readings report; 'dropped' "
                        "meters advertise but do not report (the missing set); others take no part; 'silent' "
                        "meters do not answer their unmask-request; 'absent_committee' members do not sign."),
        "vectors": vectors,
    }


FAMILY = VectorFamily(file=FILE, protocol=PROTOCOL, suite=SUITE, verify_vector=verify_vector, build=build)
