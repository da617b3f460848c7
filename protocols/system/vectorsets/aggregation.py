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

Per-role vectors (spec 12.1, 12.2), derived from the first round: each names
a ``role``, ``step`` and ``party`` and gives the public ``directory`` (CBOR
of spec 3.2 and the reveals) and the role's ``state_before`` as a documented
state object (meter, aggregator or utility state), so a vendor who builds
one role checks only that role.  Valid steps (operation ``step``) carry the
honest ``input``, the ``output`` sent, the ``release`` (finish) and
``state_after``; refusals (operation ``refusal``, Wycheproof style) carry
the bad ``input`` and the expected ``error``.  Every step of every role has a
valid vector (spec 12.2): the meter's commit, reveal, advertise,
accept_bundle, report and unmask, the committee's sign_commit, the
aggregator's aggregate, the utility's bundles, receive, collect, finish and
audit.  Steps that draw (commit, advertise, report) carry the named
``draws`` the role must use as its randomness (ReplayRandom, every draw
consumed); advertise and report also carry their ``intermediates``,
recomputed from the state and draws without the Meter class and checked
against the message the class sends; finish carries the intermediates of
spec 8.5, recomputed from the state and responses without the Utility class.  Verification rebuilds the
neighbourhood and the state and runs the real role's step: a refusal that is
accepted or refused with another error, and a step whose output or state
differs, is a VectorMismatchError naming the vector.  The generator takes
each state from the honest replay of the round (``_replay``).
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping
from fractions import Fraction
from typing import Any, TypeVar

import gmpy2

from protocols import aggregation as agg
from protocols.aggregation import schedule as ks
from protocols.errors import VectorMismatchError
from protocols.primitives import cbor, shamir
from protocols.primitives.drbg import HmacDrbg
from protocols.primitives.rand import ReplayRandom, random_below
from protocols.privacy import dp
from protocols.schemes.paillier import PrivateKey, generate_keypair
from protocols.system import neighbourhood as nb
from protocols.system.vectorsets import VectorFamily
from protocols.system.vectorsets._fields import (
    MAX_COUNT,
    MAX_DEGREE,
    MAX_FACTOR_BITS,
    MAX_MODULUS_BITS,
    UINT32,
    UINT64,
    bytes_field,
    dispatch,
    expect,
    expect_outputs,
    expect_refusal,
    field,
    hex_list_field,
    hexint,
    int_field,
    list_field,
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
        return NoiseShareConfig(PrivacyLevel(spec["level"]), small_int_field(spec, "sensitivity", low=-UINT32, high=UINT32),
                                small_int_field(spec, "participants", low=-UINT32, high=UINT32),
                                Fraction(str_field(spec, "honest_fraction", max_len=160)), Fraction(str_field(spec, "delta", max_len=160)))
    except (KeyError, ValueError, TypeError) as exc:
        raise VectorMismatchError(f"field 'noise' is malformed: {exc}") from None


def _string_list(v: Mapping[str, Any], name: str) -> list[str]:
    value = field(v, name)
    if not isinstance(value, list) or any(not isinstance(x, str) for x in value):
        raise VectorMismatchError(f"field {name!r} must be a list of strings")
    return value


def _optional_int(v: Mapping[str, Any], name: str) -> int | None:
    return None if field(v, name) is None else small_int_field(v, name, low=0, high=MAX_COUNT)


def _readings(v: Mapping[str, Any]) -> dict[str, list[int]]:
    value = field(v, "readings")
    if not isinstance(value, dict):
        raise VectorMismatchError("field 'readings' must be an object")
    for meter, row in value.items():
        if not isinstance(row, list) or any(not isinstance(x, int) or isinstance(x, bool) for x in row):
            raise VectorMismatchError(f"field 'readings.{meter}' must be a list of integers")
    return {m: list(r) for m, r in value.items()}


def _json_ints(v: Mapping[str, Any], name: str) -> list[int]:
    """A list of JSON integers (a meter's readings, spec 12.2)."""
    return [small_int_field({name: x}, name, low=0, high=UINT64) for x in list_field(v, name)]


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
    sk = PrivateKey.from_factors(int_field(v, "p", max_bits=MAX_FACTOR_BITS), int_field(v, "q", max_bits=MAX_FACTOR_BITS))
    options: dict[str, Any] = {name: _optional_int(v, name) for name in _OPTIONAL}
    p = agg.provision(sk, _string_list(v, "meters"), _tree(v), str_field(v, "root"),
                      HmacDrbg.from_seed(str_field(v, "provision_seed")), group_id=bytes_field(v, "group_id"),
                      slots=small_int_field(v, "slots", low=0, high=MAX_MODULUS_BITS), value_bits=small_int_field(v, "value_bits", low=0, high=MAX_MODULUS_BITS),
                      degree=small_int_field(v, "degree", low=0, high=MAX_DEGREE), noise=_noise(v), **options)
    readings = _readings(v)
    log: dict = {}
    encryptors = {m: _Recorder(p.meters[m], p.hood.public_key, log) for m in readings if m in p.meters}
    transcript = nb.run_round(p, small_int_field(v, "round", low=0, high=UINT64), readings,
                              HmacDrbg.from_seed(str_field(v, "round_seed")), dropped=_string_list(v, "dropped"),
                              silent=_string_list(v, "silent"), absent_committee=_string_list(v, "absent_committee"),
                              encryptors=encryptors)
    return sk, p, transcript, readings, log


# ---------------------------------------------------------------------------
# The outputs


def _b32(value: int) -> str:
    return value.to_bytes(ks.SHARE_BYTES, "big").hex()


T = TypeVar("T")


def _present(value: T | None, what: str) -> T:
    """A value the run has set by now (a resolved parameter, the round's state or result)."""
    if value is None:
        raise VectorMismatchError(f"internal cross-check failed: {what} is not set")
    return value


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
            "graph_nonce": _present(hood.reveals, "reveals")[m].hex(), "graph_commitment": hood.commitments[m].hex(),
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
            threshold = _present(hood.threshold, "threshold")
            _check(shamir.recover(points, threshold) == secret, f"shares of {m}")
            shamir.check_consistent(points, threshold)
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

    rs, result = _present(t.state, "round state"), _present(t.result, "result")
    reporting = set(rs.reporting)
    decrypted = int(sk.decrypt(_present(rs.report, "root report").ciphertext))
    unmasked = decrypted - sum(int(ks.self_mask(secrets[m][1], r, n)) for m in rs.reporting)
    for j in rs.missing:
        unmasked -= sum(int(hood.sign(peer, j) * pair_mask[peer, j]) for peer in rs.bundles[j]
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
        threshold = _present(hood.threshold, "threshold")
        if len(peers) < threshold or sum(j in answering for j in peers) < threshold:
            return False
    return len(reporting) >= _present(hood.min_reporting, "min_reporting")


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
    gen = _Generator(vectors[0])
    steps = vectors + _step_cases(gen) + [_meter_step(_Generator(vectors[3]), "report")]
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
                        "meters do not answer their unmask-request; 'absent_committee' members do not sign. "
                        "Then per-role vectors of the first round (spec 12.1, 12.2): one role, put in the documented "
                        "state 'state_before' under the public 'directory', runs one step; valid steps (operation "
                        "'step') send 'output' and end in 'state_after', refusals (operation 'refusal', result "
                        "'invalid') must raise 'error' (flags in 'notes'). Every step of every role is covered "
                        "(spec 12.2); commit, advertise and report carry their named 'draws' (the randomness "
                        "to replay), advertise and report their 'intermediates'."),
        "notes": NOTES,
        "vectors": steps + _refusal_cases(vectors[0], gen) + _step_refusals(steps),
    }




# ---------------------------------------------------------------------------
# Per-role vectors (operations ``step`` and ``refusal``, spec 12.1 and 12.2)


_SETUP = _INPUTS[2:]
"""The inputs of the valid round the generator replays (everything but name and operation)."""
STAGES = ("setup", "advertised", "bundled", "reported", "aggregated", "received", "signed", "responded")
"""How far the generator replays the base round before it reads a role's state."""


def _utility(p: agg.Provisioned) -> agg.Utility:
    return agg.Utility(p.hood, p.utility)


class _Tape:
    """A random source that records every ``random_bytes`` call of the one it wraps (generation only)."""

    def __init__(self, source: HmacDrbg) -> None:
        self.source = source
        self.calls: list[bytes] = []

    def random_bytes(self, n: int) -> bytes:
        out = self.source.random_bytes(n)
        self.calls.append(out)
        return out


def _replay(setup: Mapping[str, Any], stage: str, spans: dict | None = None):
    """Play the valid round ``setup`` with the real roles, in the driver's order, up to ``stage``.

    ``spans``, if given, receives the draws of each meter's advertise and report:
    ``spans[("advertise" | "report", meter)]`` is the list of its ``random_bytes`` results, in order."""
    if stage not in STAGES:
        raise VectorMismatchError(f"field 'stage' must be one of {', '.join(STAGES)}")
    sk = PrivateKey.from_factors(int_field(setup, "p", max_bits=MAX_FACTOR_BITS), int_field(setup, "q", max_bits=MAX_FACTOR_BITS))
    options: dict[str, Any] = {name: _optional_int(setup, name) for name in _OPTIONAL}
    p = agg.provision(sk, _string_list(setup, "meters"), _tree(setup), str_field(setup, "root"),
                      HmacDrbg.from_seed(str_field(setup, "provision_seed")),
                      group_id=bytes_field(setup, "group_id"), slots=small_int_field(setup, "slots", low=0, high=MAX_MODULUS_BITS),
                      value_bits=small_int_field(setup, "value_bits", low=0, high=MAX_MODULUS_BITS), degree=small_int_field(setup, "degree", low=0, high=MAX_DEGREE),
                      noise=_noise(setup), **options)
    hood, r = p.hood, small_int_field(setup, "round", low=0, high=UINT64)
    readings, dropped = _readings(setup), _string_list(setup, "dropped")
    rng = _Tape(HmacDrbg.from_seed(str_field(setup, "round_seed")))
    spans = {} if spans is None else spans
    t = nb.Transcript(r)
    if stage == "setup":
        return p, t
    taking_part = [m for m in hood.meters if m in readings or m in dropped]
    for m in taking_part:
        start = len(rng.calls)
        t.adverts[m] = agg.Meter(hood, p.meters[m]).advertise(r, rng)
        spans["advertise", m] = rng.calls[start:]
    utility = _utility(p)
    t.state, t.bundles = utility.bundles(r, list(t.adverts.values()))
    if stage == "advertised":
        return p, t
    for m in taking_part:
        agg.Meter(hood, p.meters[m]).accept_bundle(t.bundles[m])
    if stage == "bundled":
        return p, t
    for m in hood.meters:
        if m in readings and m not in dropped:
            start = len(rng.calls)
            t.meter_reports[m] = agg.Meter(hood, p.meters[m]).report(r, readings[m], rng)
            spans["report", m] = rng.calls[start:]
    if stage == "reported":
        return p, t
    outputs = dict(t.meter_reports)
    for node in nb.post_order(hood.tree, hood.root):
        inputs = [outputs[c] for c in hood.children(node) if c in outputs]
        if inputs:
            outputs[node] = t.aggregate_reports[node] = agg.Aggregator(hood, p.aggregators[node]).aggregate(r, inputs)
    if stage == "aggregated":
        return p, t
    rs = utility.receive(t.state, t.aggregate_reports[hood.root])
    t.commit_requests = utility.commit_requests(rs)
    if stage == "received":
        return p, t
    absent = _string_list(setup, "absent_committee")
    for member, request in t.commit_requests.items():
        if member not in absent:
            t.commit_signatures[member] = agg.Meter(hood, p.meters[member]).sign_commit(request)
    utility.collect_signatures(rs, list(t.commit_signatures.values()))
    t.requests = utility.unmask_requests(rs)
    if stage == "signed":
        return p, t
    silent = _string_list(setup, "silent")
    for m, request in t.requests.items():
        if m not in silent:
            t.responses[m] = agg.Meter(hood, p.meters[m]).unmask(request)
    return p, t


# -- per-role state objects (spec 12.1): what one role holds before a step --------------------------


def _directory_json(hood: agg.Neighbourhood) -> dict:
    """The public neighbourhood every role holds after setup: CBOR(directory) (3.2) and the reveals (3.3)."""
    reveals = hood.reveals or {}
    return {"cbor": cbor.encode(hood.directory_cbor()).hex(),
            "reveals": {m: reveals[m].hex() for m in hood.meters}}


def _as_dict(value: Any, name: str) -> dict:
    if not isinstance(value, dict):
        raise VectorMismatchError(f"field {name!r} must be an object")
    return value


def _hood(v: Mapping[str, Any]) -> agg.Neighbourhood:
    """Rebuild the Neighbourhood from the vector's ``directory`` (CBOR of spec 3.2 and the reveals)."""
    from protocols.privacy.dp import NoiseShareConfig, PrivacyLevel
    from protocols.schemes.paillier import PublicKey

    directory = _as_dict(field(v, "directory"), "directory")
    raw = bytes_field(directory, "cbor")
    reveals = {m: bytes_field({m: x}, m) for m, x in _as_dict(field(directory, "reveals"), "reveals").items()}
    return _hood_of(raw, reveals, "directory")


def _hood_of(raw: bytes, reveals: dict[str, bytes] | None, name: str) -> agg.Neighbourhood:
    """The Neighbourhood of CBOR(directory) ``raw`` (spec 3.2); with ``reveals`` None, the draft of 3.3 step 2."""
    from protocols.privacy.dp import NoiseShareConfig, PrivacyLevel
    from protocols.schemes.paillier import PublicKey

    def build_hood() -> agg.Neighbourhood:
        d = cbor.decode(raw)
        entries = d[3]
        params = d[6]
        noise = None
        if d[7] is not None:
            level, sensitivity, participants, honest, delta = d[7]
            noise = NoiseShareConfig(PrivacyLevel(level), sensitivity, participants, Fraction(honest),
                                     Fraction(delta))
        return agg.Neighbourhood(
            d[1], PublicKey(gmpy2.mpz(int.from_bytes(d[2], "big"))),
            {e[0]: e[1] for e in entries}, {e[0]: e[2] for e in entries}, {e[0]: e[3] for e in entries},
            reveals, {node: tuple(kids) for node, kids in d[4]}, d[5], slots=params[0], value_bits=params[1],
            degree=params[2], threshold=params[3], min_reporting=params[4], committee_size=params[5],
            committee_threshold=params[6], noise=noise)

    try:
        hood = recompute(name, build_hood)
    except (KeyError, IndexError, TypeError, ValueError) as exc:
        raise VectorMismatchError(f"field {name!r} is malformed: {exc}") from None
    expect(f"{name}.cbor" if reveals is not None else name, raw, cbor.encode(hood.directory_cbor()))
    return hood


def _opt_hex(value: bytes | None) -> str | None:
    return None if value is None else value.hex()


def _meter_json(s: agg.MeterState, setup: bool = False) -> dict:
    """Spec 6.1: the meter state the round steps read and write; with ``setup``, also the fields of 3.3
    that the commit and reveal steps read and write."""
    out = {
        "meter_id": s.meter_id, "key": s.key.hex(), "tag_key": s.tag_key.hex(),
        "x25519_private": s.x25519_private.hex(), "ed25519_seed": s.signing_seed.hex(),
        "directory": _opt_hex(s.directory), "advertised": s.advertised,
        "epsilon": None if s.epsilon is None else _b32(s.epsilon),
        "sigma": None if s.sigma is None else _b32(s.sigma), "own_mask_public": s.own_mask_public.hex(),
        "bundle_round": s.bundle_round, "bundle": list(s.bundle), "bundle_directory": _opt_hex(s.bundle_directory),
        "peer_mask_public": {j: k.hex() for j, k in s.peer_mask_public.items()},
        "round_secrets": {j: a.hex() for j, a in s.round_secrets.items()},
        "held": {j: [_b32(e), _b32(g)] for j, (e, g) in s.held.items()},
        "last_reported": s.last_reported, "last_unmasked": s.last_unmasked, "last_committed": s.last_committed,
    }
    if setup:
        out.update({"setups": s.setups, "graph_nonce": _opt_hex(s.graph_nonce),
                    "min_reporting_floor": s.min_reporting_floor, "degree_floor": s.degree_floor,
                    "committee_floor": s.committee_floor, "require_noise": s.require_noise})
    return out


def _opt_bytes(obj: Mapping[str, Any], name: str) -> bytes | None:
    return None if field(obj, name) is None else bytes_field(obj, name)


def _opt_share(obj: Mapping[str, Any], name: str) -> int | None:
    return None if field(obj, name) is None else int.from_bytes(bytes_field(obj, name), "big")


def _hex_map(obj: Mapping[str, Any], name: str) -> dict[str, bytes]:
    return {k: bytes_field({k: x}, k) for k, x in _as_dict(field(obj, name), name).items()}


def _meter_state(obj: Mapping[str, Any]) -> agg.MeterState:
    held = {}
    for j, pair in _as_dict(field(obj, "held"), "held").items():
        if not isinstance(pair, list) or len(pair) != 2:
            raise VectorMismatchError("field 'held' must map each peer to two shares")
        held[j] = tuple(int.from_bytes(bytes_field({j: x}, j), "big") for x in pair)
    return agg.MeterState(
        str_field(obj, "meter_id"), bytes_field(obj, "key"), bytes_field(obj, "tag_key"),
        bytes_field(obj, "x25519_private"), bytes_field(obj, "ed25519_seed"),
        directory=_opt_bytes(obj, "directory"), advertised=small_int_field(obj, "advertised", low=-1, high=UINT64),
        epsilon=_opt_share(obj, "epsilon"), sigma=_opt_share(obj, "sigma"),
        own_mask_public=bytes_field(obj, "own_mask_public"), bundle_round=small_int_field(obj, "bundle_round", low=-1, high=UINT64),
        bundle=tuple(_string_list(obj, "bundle")), bundle_directory=_opt_bytes(obj, "bundle_directory"),
        peer_mask_public=_hex_map(obj, "peer_mask_public"), round_secrets=_hex_map(obj, "round_secrets"),
        held=held, last_reported=small_int_field(obj, "last_reported", low=-1, high=UINT64),
        last_unmasked=small_int_field(obj, "last_unmasked", low=-1, high=UINT64),
        last_committed=small_int_field(obj, "last_committed", low=-1, high=UINT64), **_setup_fields(obj))


def _setup_fields(obj: Mapping[str, Any]) -> dict[str, Any]:
    """The fields of 3.3 in a commit or reveal step's meter state (absent elsewhere: the defaults)."""
    if "setups" not in obj:
        return {}
    return {"setups": small_int_field(obj, "setups", low=0, high=agg.MAX_SETUPS),
            "graph_nonce": _opt_bytes(obj, "graph_nonce"),
            "min_reporting_floor": small_int_field(obj, "min_reporting_floor", low=0, high=MAX_COUNT),
            "degree_floor": small_int_field(obj, "degree_floor", low=0, high=MAX_COUNT),
            "committee_floor": small_int_field(obj, "committee_floor", low=0, high=MAX_COUNT),
            "require_noise": _json_bool(obj, "require_noise")}


def _json_bool(obj: Mapping[str, Any], name: str) -> bool:
    value = field(obj, name)
    if not isinstance(value, bool):
        raise VectorMismatchError(f"field {name!r} must be true or false")
    return value


def _aggregator_json(s: agg.AggregatorState) -> dict:
    """Spec 7.1: K_a, the last round aggregated and that round's inputs."""
    retained = [{"round": r, "inputs": [x.hex() for x in inputs]} for r, inputs in s.retained.items()]
    return {"aggregator_id": s.aggregator_id, "key": s.key.hex(), "last_round": s.last_round,
            "retained": retained[0] if retained else None}


def _aggregator_state(obj: Mapping[str, Any]) -> agg.AggregatorState:
    kept = field(obj, "retained")
    retained = {}
    if kept is not None:
        kept = _as_dict(kept, "retained")
        retained[small_int_field(kept, "round", low=-1, high=UINT64)] = tuple(hex_list_field(kept, "inputs"))
    return agg.AggregatorState(str_field(obj, "aggregator_id"), bytes_field(obj, "key"),
                               last_round=small_int_field(obj, "last_round", low=-1, high=UINT64), retained=retained)


def _open_round_json(rs: Any) -> dict | None:
    if rs is None:
        return None
    return {
        "round": rs.round, "mask_public": {m: k.hex() for m, k in rs.mask_public.items()},
        "bundles": {m: list(peers) for m, peers in rs.bundles.items()},
        "report": None if rs.report is None else cbor.encode(rs.report.fields).hex(),
        "reporting": list(rs.reporting), "missing": list(rs.missing), "reporting_map": rs.reporting_map.hex(),
        "missing_map": rs.missing_map.hex(), "confirmations": {m: c.hex() for m, c in rs.confirmations.items()},
        "signatures": {m: s.hex() for m, s in rs.signatures.items()},
        "requested": [m for m in rs.reporting if m in rs.requested],
    }


def _utility_json(s: agg.UtilityState, rs: Any) -> dict:
    """Spec 8: the utility's keys and last finished round, and the open round's state (or null)."""
    return {"p": hexint(s.private_key.p), "q": hexint(s.private_key.q),
            "meter_keys": {m: k.hex() for m, k in s.meter_keys.items()},
            "aggregator_keys": {a: k.hex() for a, k in s.aggregator_keys.items()}, "tag_key": s.tag_key.hex(),
            "last_round": s.last_round, "round": _open_round_json(rs)}


def _round_state(obj: Any, hood: agg.Neighbourhood):
    from protocols.aggregation.utility import RoundState

    if obj is None:
        return None
    obj = _as_dict(obj, "round")
    report = _opt_bytes(obj, "report")
    bundles = {m: tuple(_string_list({m: x}, m)) for m, x in _as_dict(field(obj, "bundles"), "bundles").items()}
    return RoundState(
        small_int_field(obj, "round", low=-1, high=UINT64), _hex_map(obj, "mask_public"), bundles,
        report=None if report is None else recompute("round.report",
                                                     lambda: agg.messages.AggregateReport.decode(report, hood)),
        reporting=tuple(_string_list(obj, "reporting")), missing=tuple(_string_list(obj, "missing")),
        reporting_map=bytes_field(obj, "reporting_map"), missing_map=bytes_field(obj, "missing_map"),
        confirmations=_hex_map(obj, "confirmations"), signatures=_hex_map(obj, "signatures"),
        requested=set(_string_list(obj, "requested")))


def _utility_state(obj: Mapping[str, Any], hood: agg.Neighbourhood):
    sk = recompute("p", lambda: PrivateKey.from_factors(int_field(obj, "p", max_bits=MAX_FACTOR_BITS), int_field(obj, "q", max_bits=MAX_FACTOR_BITS)))
    state = agg.UtilityState(sk, _hex_map(obj, "meter_keys"), _hex_map(obj, "aggregator_keys"),
                             bytes_field(obj, "tag_key"), last_round=small_int_field(obj, "last_round", low=-1, high=UINT64))
    return state, _round_state(field(obj, "round"), hood)

# -- the meter's draws and intermediates (spec 6.2, 6.4, 12.2) ------------------------------------------


class _Cursor:
    """Replays a vector's recorded draws to the draw rules of conventions 3.2, counting what each consumes."""

    def __init__(self, calls: list[bytes]) -> None:
        self.calls, self.position = calls, 0

    def random_bytes(self, n: int) -> bytes:
        if self.position >= len(self.calls) or len(self.calls[self.position]) != n:
            raise VectorMismatchError(f"field 'draws': draw {self.position} is missing or not {n} bytes",
                                      field="draws")
        self.position += 1
        return self.calls[self.position - 1]


Plan = list[tuple[str, Callable[[Any], int]]]


def _advertise_plan(hood: agg.Neighbourhood) -> Plan:
    """Spec 6.2: epsilon, sigma, then epsilon's t - 1 coefficients, then sigma's, each RandomBelow(p)."""
    def below(source: Any) -> int:
        return random_below(source, shamir.P25519)
    t = _present(hood.threshold, "threshold")
    return ([("epsilon", below), ("sigma", below)] + [(f"epsilon_coefficient_{k}", below) for k in range(1, t)]
            + [(f"sigma_coefficient_{k}", below) for k in range(1, t)])


def _report_plan(hood: agg.Neighbourhood) -> Plan:
    """Spec 6.4: the clamped noise share of each slot (spec 10; none without noise), then Paillier's r."""
    noise = hood.noise

    def share(source: Any) -> int:
        return dp.clamped_noise_share(noise, source) if isinstance(noise, dp.NoiseShareConfig) else 0
    plan: Plan = [(f"noise_{s}", share) for s in range(hood.slots)]
    return plan + [("paillier_r", lambda source: int(hood.public_key.random_r(source)))]


def _name_draws(calls: list[bytes], plan: Plan) -> tuple[list[dict], dict[str, int]]:
    """Each recorded call named by the value of ``plan`` that consumed it (a rejected draw keeps the
    name of the value it was for), and the values drawn."""
    cursor, names, values = _Cursor(calls), [], {}
    for name, draw in plan:
        start = cursor.position
        values[name] = draw(cursor)
        names += [name] * (cursor.position - start)
    if cursor.position != len(calls):
        raise VectorMismatchError(f"field 'draws': {len(calls) - cursor.position} draws are left over",
                                  field="draws")
    return [{"name": n, "hex": c.hex()} for n, c in zip(names, calls)], values


def _read_draws(v: Mapping[str, Any]) -> list[bytes]:
    items = list_field(v, "draws")
    if any(not isinstance(x, dict) for x in items):
        raise VectorMismatchError("field 'draws' must be a list of objects")
    return [bytes_field(x, "hex") for x in items]


def _poly(coefficients: list[int], x: int) -> int:
    return sum(c * x ** k for k, c in enumerate(coefficients)) % shamir.P25519


def _advertise_intermediates(hood: agg.Neighbourhood, ms: agg.MeterState, r: int, values: Mapping[str, int],
                             sent: bytes) -> dict:
    """Spec 6.2 from the draws; each box of the sent advert is opened and must hold the shares."""
    t, me = _present(hood.threshold, "threshold"), ms.meter_id
    eps = [values["epsilon"]] + [values[f"epsilon_coefficient_{k}"] for k in range(1, t)]
    sig = [values["sigma"]] + [values[f"sigma_coefficient_{k}"] for k in range(1, t)]
    mask_private = ks.mask_private(eps[0])
    mask_public = ks.x25519_public(mask_private)
    advert = cbor.decode(sent)
    boxes = []
    for x, peer in enumerate(hood.neighbours(me), start=1):
        secret = ks.static_secret(hood.digest, me, ms.x25519_private, peer, hood.meter_public[peer])
        nonce, aad = ks.box_nonce_aad(hood.group_id, r, me, peer, mask_public)
        plain = _poly(eps, x).to_bytes(ks.SHARE_BYTES, "big") + _poly(sig, x).to_bytes(ks.SHARE_BYTES, "big")
        box = ks.box_cipher(secret).encrypt(nonce, plain, aad)
        _check(advert[5][ks.BOX_BYTES * (x - 1):ks.BOX_BYTES * x] == box, f"the box for {peer}")
        boxes.append({"peer": peer, "x": x, "epsilon_share": plain[:32].hex(), "sigma_share": plain[32:].hex(),
                      "static_secret": secret.hex(), "nonce": nonce.hex(), "aad": aad.hex(), "box": box.hex()})
    _check(advert[4] == mask_public, "E in the advert")
    return {"epsilon": _b32(eps[0]), "sigma": _b32(sig[0]), "epsilon_coefficients": [_b32(c) for c in eps[1:]],
            "sigma_coefficients": [_b32(c) for c in sig[1:]],
            "mask_private": mask_private.hex(), "mask_public": mask_public.hex(), "boxes": boxes}


def _report_intermediates(hood: agg.Neighbourhood, ms: agg.MeterState, r: int, readings: list[int],
                          values: Mapping[str, int], sent: bytes) -> dict:
    """Spec 6.4 from the state and the draws; the ciphertext must be the sent report's."""
    me, n = ms.meter_id, int(hood.public_key.n)
    noise = [values[f"noise_{s}"] for s in range(hood.slots)]
    slots = [x + e for x, e in zip(readings, noise)]
    alphas = ks.tag_alphas(ms.tag_key, r, hood.slots)
    beta = ks.tag_beta(ms.key, r)
    tag = (sum(a * x for a, x in zip(alphas, slots)) + beta) % ks.TAG_PRIME
    packed = int(hood.layout.pack(slots, tag))
    pairs, masked = {}, packed
    for j in ms.bundle:
        mask = int(ks.pair_mask(ms.round_secrets[j], r, n))
        masked += hood.sign(me, j) * mask
        pairs[j] = {"sign": hood.sign(me, j), "round_secret": ms.round_secrets[j].hex(), "mask": hexint(mask)}
    sigma = _present(ms.sigma, "sigma")
    b = int(ks.self_mask(sigma, r, n))
    masked = (masked + b) % n
    rand = values["paillier_r"]
    c = (1 + masked * n) * pow(rand, n, n * n) % (n * n)
    report = cbor.decode(sent)
    _check(int.from_bytes(report[4], "big") == c, "the ciphertext of the sent report")
    confirmations = {j: ks.confirmation(ks.static_secret(hood.digest, me, ms.x25519_private, j,
                                                         hood.meter_public[j]),
                                        hood.group_id, r, me, j, ms.own_mask_public, ms.peer_mask_public[j]).hex()
                     for j in ms.bundle}
    _check("".join(confirmations.values()) == report[5].hex(), "the confirmations of the sent report")
    return {"noise": noise, "values": slots, "alphas": [hexint(a) for a in alphas], "beta": hexint(beta),
            "tag": hexint(tag), "packed": hexint(packed), "pairs": pairs, "self_mask": hexint(b),
            "masked": hexint(masked), "paillier_r": hexint(rand), "ciphertext": hexint(c),
            "confirmations": confirmations}


def _finish_intermediates(v: Mapping[str, Any], responses: list[bytes]) -> dict:
    """Spec 8.5 from ``state_before`` and the responses, without the Utility class: the decrypted aggregate,
    each recovered secret (from the first t shares, neighbour order) and its mask, the unmasked residue,
    the sums and the tag check."""
    hood = _hood(v)
    us, rs = _utility_state(_as_dict(field(v, "state_before"), "state_before"), hood)
    rs = _present(rs, "the open round")
    report = _present(rs.report, "the root's report")
    n, r, t = int(hood.public_key.n), rs.round, _present(hood.threshold, "threshold")
    answered = {}
    for raw in responses:
        m = cbor.decode(raw)
        answered[m[3]] = [int.from_bytes(m[4][i:i + ks.SHARE_BYTES], "big")
                          for i in range(0, len(m[4]), ks.SHARE_BYTES)]
    decrypted = int(us.private_key.decrypt(report.ciphertext))
    total, secrets = decrypted, {}
    reporting = set(rs.reporting)
    for meter in rs.reporting + rs.missing:
        points = [(x, answered[peer][rs.bundles[peer].index(meter)])
                  for x, peer in enumerate(hood.neighbours(meter), start=1)
                  if peer in answered and meter in rs.bundles.get(peer, ())]
        value = shamir.recover([shamir.Share(x, y) for x, y in points], t)
        entry: dict[str, Any] = {"secret": "sigma" if meter in reporting else "epsilon",
                                 "points": [x for x, _ in points[:t]], "value": _b32(value)}
        if meter in reporting:
            mask = int(ks.self_mask(value, r, n))
            total -= mask
            entry["self_mask"] = hexint(mask)
        else:
            entry["pair_masks"] = {}
            for peer in rs.bundles[meter]:
                if peer in reporting and meter in rs.bundles[peer]:
                    a = ks.round_secret(hood.group_id, r, meter, value, peer, rs.mask_public[peer])
                    mask = int(ks.pair_mask(a, r, n))
                    total -= hood.sign(peer, meter) * mask
                    entry["pair_masks"][peer] = {"sign": hood.sign(peer, meter), "mask": hexint(mask)}
        secrets[meter] = entry
    unmasked = total % n
    sums, tag_sum = hood.layout.unpack(unmasked, n)
    alphas = ks.tag_alphas(us.tag_key, r, hood.slots)
    expected = (sum(a * x for a, x in zip(alphas, sums))
                + sum(ks.tag_beta(us.meter_keys[m], r) for m in rs.reporting)) % ks.TAG_PRIME
    return {"decrypted": hexint(decrypted), "secrets": secrets, "unmasked": hexint(unmasked), "sums": list(sums),
            "tag_sum": hexint(tag_sum), "expected_tag": hexint(expected)}


def _meter_draws(v: Mapping[str, Any], hood: agg.Neighbourhood, step: str) -> tuple[list[dict], dict[str, int]]:
    plan = _advertise_plan(hood) if step == "advertise" else _report_plan(hood)
    return recompute("draws", lambda: _name_draws(_read_draws(v), plan))



ROLE_STEPS = {"meter": ("commit", "reveal", "advertise", "accept_bundle", "report", "unmask"),
              "committee": ("sign_commit",),
              "aggregator": ("aggregate",),
              "utility": ("bundles", "receive", "collect", "finish", "audit", "receive_then_finish")}


def _role_step(v: Mapping[str, Any]):
    """The refusing role, put in ``state_before``, and its step as a function of the ``input`` list.

    Returns (run, state_json): ``run(inputs)`` runs the real role's step and returns what it sends
    (a map from id to message) and the release (finish only); ``state_json()`` reads the state back."""
    role, step = str_field(v, "role"), str_field(v, "step")
    if step not in ROLE_STEPS.get(role, ()):
        raise VectorMismatchError(f"field 'step': {role!r} has no step {step!r}")
    hood = _hood(v)
    before = _as_dict(field(v, "state_before"), "state_before")
    r = small_int_field(v, "round", low=-1, high=UINT64)
    if step in ("commit", "reveal"):
        return _setup_step(v, step, _meter_state(before))
    if role in ("meter", "committee"):
        ms = _meter_state(before)
        meter = recompute("state_before", lambda: agg.Meter(hood, ms))

        def run_meter(inputs: list[bytes]) -> tuple[dict, Any]:
            sent = {}
            if step in ("advertise", "report"):
                source = ReplayRandom(_read_draws(v))
                if step == "advertise":
                    out = meter.advertise(r, source)
                else:
                    out = meter.report(r, _json_ints(v, "readings"), source)
                if not source.exhausted:
                    raise VectorMismatchError("field 'draws': the step did not consume every draw", field="draws")
                return {ms.meter_id: out.hex()}, None
            for raw in inputs:
                if step == "accept_bundle":
                    meter.accept_bundle(raw)
                else:
                    sent[ms.meter_id] = getattr(meter, step)(raw).hex()
            return sent, None
        return run_meter, lambda: _meter_json(ms)
    if role == "aggregator":
        ags = _aggregator_state(before)
        aggregator = recompute("state_before", lambda: agg.Aggregator(hood, ags))

        def run_aggregator(inputs: list[bytes]) -> tuple[dict, Any]:
            return {ags.aggregator_id: aggregator.aggregate(r, inputs).hex()}, None
        return run_aggregator, lambda: _aggregator_json(ags)
    us, rs0 = _utility_state(before, hood)
    utility = recompute("state_before", lambda: agg.Utility(hood, us))
    holder = {"rs": rs0}

    def open_round():
        if holder["rs"] is None:
            raise VectorMismatchError(f"field 'state_before.round': step {step!r} needs an open round")
        return holder["rs"]

    def run_utility(inputs: list[bytes]) -> tuple[dict, Any]:
        if step == "bundles":
            holder["rs"], out = utility.bundles(r, inputs)
            return {m: raw.hex() for m, raw in out.items()}, None
        rs = open_round()
        if step == "receive":
            if len(inputs) != 1:
                raise VectorMismatchError("field 'input': receive takes one message, the root's report")
            utility.receive(rs, inputs[0])
            return {m: raw.hex() for m, raw in utility.commit_requests(rs).items()}, None
        if step == "collect":
            utility.collect_signatures(rs, inputs)
            return {m: raw.hex() for m, raw in utility.unmask_requests(rs).items()}, None
        if step == "audit":
            kept = _as_dict(field(v, "retained"), "retained")
            utility.audit(rs, {a: hex_list_field(kept, a) for a in kept})
            return {}, None
        if step == "receive_then_finish":
            then = _as_dict(field(v, "followed_by"), "followed_by")
            if len(inputs) != 1:
                raise VectorMismatchError("field 'input': receive_then_finish takes one message, the root's report")
            utility.receive(rs, inputs[0])
            utility.collect_signatures(rs, hex_list_field(then, "commit_signatures"))
            utility.unmask_requests(rs)
            inputs = hex_list_field(then, "unmask_responses")
        result = utility.finish(rs, inputs)
        return {}, {"sums": list(result.sums), "reporting": list(result.reporting),
                    "missing": list(result.missing), "noisy": result.noisy}
    return run_utility, lambda: _utility_json(us, holder["rs"])


def _setup_step(v: Mapping[str, Any], step: str, ms: agg.MeterState):
    """Spec 3.3 steps 1 and 3: commit (draws nu_i, sends h_i) or reveal (input the draft's CBOR, sends nu_i)."""
    def run(inputs: list[bytes]) -> tuple[dict, Any]:
        if step == "commit":
            source = ReplayRandom(_read_draws(v))
            sent = agg.commit_to_graph(ms, source)
            if not source.exhausted:
                raise VectorMismatchError("field 'draws': the step did not consume every draw", field="draws")
        else:
            if len(inputs) != 1:
                raise VectorMismatchError("field 'input': reveal takes one message, the draft directory's CBOR")
            sent = agg.reveal_graph_nonce(ms, _hood_of(inputs[0], None, "input"))
        return {ms.meter_id: sent.hex()}, None
    return run, lambda: _meter_json(ms, setup=True)


def _guarded(run):
    """A role trusts its own state: a hand-made ``state_before`` whose parts disagree (a bundled peer
    without held shares, say) is reported as a mismatch of that field, not as a crash."""
    def guarded(inputs: list[bytes]) -> tuple[dict, Any]:
        try:
            return run(inputs)
        except (KeyError, IndexError, TypeError, ValueError, AttributeError) as exc:
            raise VectorMismatchError(f"field 'state_before' is inconsistent: {exc!r}",
                                      field="state_before") from None
    return guarded


def _refusal(v: Mapping[str, Any]) -> None:
    name = str_field(v, "name")
    if v.get("result") != "invalid":
        raise VectorMismatchError(f"vector {name}: field 'result' must be 'invalid' for a refusal")
    run, _ = _role_step(v)
    inputs = hex_list_field(v, "input")
    expect_refusal(v, lambda: _guarded(run)(inputs))


def _step_vector(v: Mapping[str, Any]) -> None:
    """A valid per-role step: from ``state_before`` the role accepts ``input``, sends ``output`` (and, for
    finish, releases ``release``) and ends in ``state_after``."""
    if v.get("result", "valid") != "valid":
        raise VectorMismatchError(f"vector {v.get('name')}: field 'result' must be 'valid' for a step")
    run, state = _role_step(v)
    inputs = hex_list_field(v, "input")
    step = str_field(v, "step")
    computed = _meter_step_values(v) if step in ("advertise", "report") else None
    sent, release = recompute("input", lambda: _guarded(run)(inputs))
    expect("output", field(v, "output"), sent)
    expect("release", field(v, "release"), release)
    if computed is not None:
        draws, intermediates = computed(bytes.fromhex(next(iter(sent.values()))))
        expect("draws", field(v, "draws"), draws)
    elif step == "finish":
        intermediates = _checked_finish(v, inputs)
        _check(intermediates["sums"] == release["sums"], "the sums of 8.5 and the released sums")
    if computed is not None or step == "finish":
        where = _first_difference("intermediates", field(v, "intermediates"), intermediates)
        if where is not None:
            raise VectorMismatchError(f"field {where!r} does not recompute to its stored value")
    where = _first_difference("state_after", field(v, "state_after"), state())
    if where is not None:
        raise VectorMismatchError(f"field {where!r} does not recompute to its stored value")


def _checked_finish(v: Mapping[str, Any], inputs: list[bytes]) -> dict:
    """The intermediates of a finish step; a state whose parts disagree is a mismatch, not a crash."""
    try:
        return recompute("intermediates", lambda: _finish_intermediates(v, inputs))
    except (KeyError, IndexError, TypeError, ValueError, AttributeError) as exc:
        raise VectorMismatchError(f"field 'state_before' is inconsistent: {exc!r}", field="state_before") from None


def _meter_step_values(v: Mapping[str, Any]) -> Callable[[bytes], tuple[list[dict], dict]]:
    """The named draws and the intermediates of an advertise or report step, computed from ``state_before``
    and the draws without the Meter class; the returned function takes the message the class sent."""
    hood, step, r = _hood(v), str_field(v, "step"), small_int_field(v, "round", low=-1, high=UINT64)
    ms = _meter_state(_as_dict(field(v, "state_before"), "state_before"))
    draws, values = _meter_draws(v, hood, step)

    def compute(sent: bytes) -> tuple[list[dict], dict]:
        if step == "advertise":
            return draws, recompute("intermediates", lambda: _advertise_intermediates(hood, ms, r, values, sent))
        readings = _json_ints(v, "readings")
        return draws, recompute("intermediates",
                                lambda: _report_intermediates(hood, ms, r, readings, values, sent))
    return compute


OPERATIONS["refusal"] = _refusal
OPERATIONS["step"] = _step_vector


# -- generating the refusals ---------------------------------------------------------

NOTES = {
    "truncated": "the message lacks its last byte (DecodeError)",
    "trailing-bytes": "one 00 byte follows the CBOR item (DecodeError)",
    "non-canonical": "the round (key 2) is encoded with a non-shortest head 18 07 instead of 07 (DecodeError)",
    "oversized": "the message is longer than size_limit of its kind (spec 6.1), checked before decoding (DecodeError)",
    "bad-mac": "the last byte of the MAC is flipped (VerificationError)",
    "box-does-not-open": "the first share box's last byte is flipped, the message re-MACed (VerificationError)",
    "non-neighbour": "the bundle lists the recipient itself, not a neighbour, first (VerificationError)",
    "low-order-mask-key": "the first peer's mask key is the low-order point 00..00 and its box re-sealed for it "
                          "(VerificationError)",
    "wrong-round": "a message of another round than the step's, re-MACed where there is a MAC "
                   "(StateError for a later round at a meter, ReplayError for an earlier round)",
    "replay": "the same message is fed a second time after being accepted (field accepted_first); for advertise "
              "and report, the step is run again for the same round from its state after the first run "
              "(ReplayError)",
    "too-few-signatures": "the unmask-request carries committee_threshold - 1 signatures (ConsistencyError)",
    "bad-signature": "one byte of the first committee signature is flipped (ConsistencyError)",
    "not-in-reporting-set": "the recipient's bit is cleared in the reporting bitmap (ConsistencyError)",
    "below-min-reporting": "the reporting set has fewer than min_reporting meters "
                           "(ConsistencyError at a meter, RecoveryError at the utility)",
    "bad-confirmation": "the first confirmation in the unmask-request is flipped (ConsistencyError)",
    "missing-confirmation": "the last confirmation is left out of the unmask-request (DecodeError)",
    "duplicate-child": "the same child report is given twice (DuplicateContributionError)",
    "stranger": "a meter-report from a meter that is not a child of the aggregator (InjectedContributionError)",
    "ciphertext-out-of-range": "the ciphertext is n^2, outside (0, n^2) (InvalidCiphertextError)",
    "tampered-share": "one released share is changed and the response re-MACed: the utility's consistency "
                      "check over the surplus shares fails (spec 8.5 step 3: VerificationError)",
    "too-many-setups": "the meter has already made MAX_SETUPS = 3 graph commitments (spec 3.3 step 1: StateError)",
    "below-floor": "the meter's min_reporting_floor is above the draft directory's min_reporting "
                   "(spec 3.3 step 3.4: ConsistencyError)",
    "second-directory": "after revealing for the directory, the meter is shown a draft with another group id "
                        "(spec 3.3 step 3.2: ReplayError)",
    "reading-out-of-range": "the first reading is 2^value_bits (spec 6.4: EncodingOverflowError)",
    "bad-commit-signature": "the first byte of the first commit-signature's signature is flipped (spec 8.2: "
                            "VerificationError)",
    "too-few-commit-signatures": "only the first commit-signature is given, fewer than tau (spec 8.2: "
                                 "RecoveryError)",
    "audit-dropped": "the root's retained inputs lack its last child's report, whose meters the root's report "
                     "covers (spec 9: DroppedContributionError)",
    "sum-out-of-range": "the root re-MACs an aggregate whose plaintext has slot 0 raised past the physical "
                        "range of spec 8.5 step 6 (AggregateMismatchError)",
}


def _flip(data: bytes, at: int = -1) -> bytes:
    out = bytearray(data)
    out[at] ^= 1
    return bytes(out)


def _reseal(raw: bytes, key: bytes, direction: bytes, kind: bytes, mac_field: int, change) -> bytes:
    """Decode a message, let ``change`` edit its body, and MAC it again with the true key."""
    body = {k: x for k, x in cbor.decode(raw).items() if k != mac_field}
    change(body)
    return agg.messages.seal(body, ks.mac_key(key, direction), kind, mac_field)


def _non_canonical(raw: bytes, round_id: int) -> bytes:
    marker = b"\x02" + bytes((round_id,))
    _check(round_id < 24 and marker in raw, "round encoded in one byte")
    return raw.replace(marker, b"\x02\x18" + bytes((round_id,)), 1)


def _snapshot(setup: Mapping[str, Any], stage: str, role: str, step: str, party: str) -> dict:
    """The state of ``party`` after the replay of ``setup`` to ``stage`` (generation only)."""
    p, t = _replay(setup, stage)
    if role in ("meter", "committee"):
        return _meter_json(p.meters[party])
    if role == "aggregator":
        return _aggregator_json(p.aggregators[party])
    return _utility_json(p.utility, None if step == "bundles" else t.state)


class _Generator:
    """Per-role vectors of the base round: the state of each (stage, role, step, party) is taken once."""

    def __init__(self, base: Mapping[str, Any]) -> None:
        self.base = base
        self.setup = {k: base[k] for k in _SETUP}
        self.states: dict[tuple, dict] = {}
        p, _ = _replay(self.setup, "advertised")
        self.directory = _directory_json(p.hood)

    def vector(self, name: str, stage: str, role: str, step: str, party: str, first=()) -> dict:
        key = (stage, role, step, party)
        if key not in self.states:
            self.states[key] = _snapshot(self.setup, stage, role, step, party)
        vec = {"name": f"{self.base['name']}/{name}", "base": self.base["name"], "role": role, "step": step,
               "party": party, "round": self.setup["round"], "directory": self.directory,
               "state_before": copy.deepcopy(self.states[key])}
        if first:  # the state after the role accepted ``first``: the replays
            run, state = _role_step(vec)
            run(list(first))
            vec["state_before"] = state()
        return vec

    def step(self, stage: str, role: str, step: str, party: str, inputs, extra: dict | None = None) -> dict:
        vec = {**self.vector(f"{role}-{step}", stage, role, step, party), "operation": "step",
               "input": [x.hex() for x in inputs], **(extra or {})}
        run, state = _role_step(vec)
        vec["output"], vec["release"] = run(list(inputs))
        if step in ("advertise", "report"):
            vec["draws"], vec["intermediates"] = _meter_step_values(vec)(bytes.fromhex(vec["output"][party]))
        if step == "finish":
            vec["intermediates"] = _finish_intermediates(vec, list(inputs))
        vec["state_after"] = state()
        _step_vector(vec)
        return vec


def _refusal_cases(base: Mapping[str, Any], gen: _Generator) -> list[dict]:
    setup = gen.setup
    r = setup["round"]
    p, t = _replay(setup, "signed")  # for message material and keys; each case replays its own stage
    hood = p.hood
    m0 = hood.meters[0]
    key0 = p.meters[m0].key
    member = hood.committee[0]
    parent = next(a for a, kids in hood.tree.items() if m0 in kids)
    stranger = next(m for m in hood.meters if m not in hood.children(parent))
    root_key = p.aggregators[hood.root].key
    cases: list[dict] = []

    def add(flags, error, stage, role, step, party, inputs, first=(), followed_by=None):
        vec = gen.vector(f"{role}-{step}/{'+'.join(flags)}", stage, role, step, party, first)
        vec.update({"operation": "refusal", "result": "invalid", "flags": list(flags), "error": error,
                    "input": [x.hex() for x in inputs]})
        if followed_by is not None:
            vec["followed_by"] = followed_by
        cases.append(vec)

    def decoders(stage, role, step, party, raw, kind):
        add(["truncated"], "DecodeError", stage, role, step, party, [raw[:-1]])
        add(["trailing-bytes"], "DecodeError", stage, role, step, party, [raw + b"\x00"])
        add(["non-canonical"], "DecodeError", stage, role, step, party, [_non_canonical(raw, r)])
        over = raw + bytes(agg.messages.size_limit(hood, kind) + 1 - len(raw))
        add(["oversized"], "DecodeError", stage, role, step, party, [over])

    # meter: accept_bundle (spec 6.3)
    bundle = t.bundles[m0]
    seal_b = lambda change: _reseal(bundle, key0, b"down", b"mask-bundle", 7, change)  # noqa: E731
    decoders("advertised", "meter", "accept_bundle", m0, bundle, "mask-bundle")
    add(["bad-mac"], "VerificationError", "advertised", "meter", "accept_bundle", m0, [_flip(bundle)])

    def open_fail(b):
        b[6] = _flip(b[6], ks.BOX_BYTES - 1)
    add(["box-does-not-open"], "VerificationError", "advertised", "meter", "accept_bundle", m0, [seal_b(open_fail)])

    def stranger_listed(b):
        b[4] = [m0] + b[4][1:]
    add(["non-neighbour"], "VerificationError", "advertised", "meter", "accept_bundle", m0,
        [seal_b(stranger_listed)])

    def low_order(b):
        peer, low = b[4][0], bytes(32)
        secret = ks.static_secret(hood.digest, peer, p.meters[peer].x25519_private, m0, hood.meter_public[m0])
        nonce, aad = ks.box_nonce_aad(hood.group_id, r, peer, m0, b[5][:32])
        plain = ks.box_cipher(secret).decrypt(nonce, b[6][:ks.BOX_BYTES], aad)
        nonce, aad = ks.box_nonce_aad(hood.group_id, r, peer, m0, low)
        b[5] = low + b[5][32:]
        b[6] = ks.box_cipher(secret).encrypt(nonce, plain, aad) + b[6][ks.BOX_BYTES:]
    add(["low-order-mask-key"], "VerificationError", "advertised", "meter", "accept_bundle", m0, [seal_b(low_order)])

    def later(b):
        b[2] = r + 1
    add(["wrong-round"], "StateError", "advertised", "meter", "accept_bundle", m0, [seal_b(later)])
    add(["replay"], "ReplayError", "advertised", "meter", "accept_bundle", m0, [bundle], [bundle])

    # meter: unmask (spec 8.4)
    request = t.requests[m0]
    seal_u = lambda change: _reseal(request, key0, b"down", b"unmask-request", 9, change)  # noqa: E731
    decoders("signed", "meter", "unmask", m0, request, "unmask-request")
    add(["bad-mac"], "VerificationError", "signed", "meter", "unmask", m0, [_flip(request)])

    def too_few(b):
        keep = hood.committee_threshold - 1
        b[6], b[7] = b[6][:keep], b[7][:ks.SIGNATURE_BYTES * keep]
    add(["too-few-signatures"], "ConsistencyError", "signed", "meter", "unmask", m0, [seal_u(too_few)])

    def bad_sig(b):
        b[7] = _flip(b[7], 0)
    add(["bad-signature"], "ConsistencyError", "signed", "meter", "unmask", m0, [seal_u(bad_sig)])

    reporting = [m for m in hood.meters if m in t.meter_reports]

    def not_in_r(b):
        b[4] = hood.bitmap(tuple(m for m in reporting if m != m0))
    add(["not-in-reporting-set"], "ConsistencyError", "signed", "meter", "unmask", m0, [seal_u(not_in_r)])

    def below_min(b):
        b[4] = hood.bitmap((m0,))
    add(["below-min-reporting"], "ConsistencyError", "signed", "meter", "unmask", m0, [seal_u(below_min)])

    def bad_conf(b):
        b[8] = _flip(b[8], 0)
    add(["bad-confirmation"], "ConsistencyError", "signed", "meter", "unmask", m0, [seal_u(bad_conf)])

    def no_conf(b):
        b[8] = b[8][:-ks.CONFIRM_BYTES]
    add(["missing-confirmation"], "DecodeError", "signed", "meter", "unmask", m0, [seal_u(no_conf)])
    add(["replay"], "ReplayError", "signed", "meter", "unmask", m0, [request], [request])

    # committee member: sign_commit (spec 8.2)
    commit = t.commit_requests[member]
    key_c = p.meters[member].key
    decoders("received", "committee", "sign_commit", member, commit, "commit-request")
    add(["replay"], "ReplayError", "received", "committee", "sign_commit", member, [commit], [commit])

    def few(b):
        b[4] = hood.bitmap((m0,))
    add(["below-min-reporting"], "ConsistencyError", "received", "committee", "sign_commit", member,
        [_reseal(commit, key_c, b"down", b"commit-request", 6, few)])

    # aggregator (spec 7.1)
    kids = [t.meter_reports[c] for c in hood.children(parent) if c in t.meter_reports]
    report0 = t.meter_reports[m0]
    add(["duplicate-child"], "DuplicateContributionError", "reported", "aggregator", "aggregate", parent,
        [report0, report0])
    add(["stranger"], "InjectedContributionError", "reported", "aggregator", "aggregate", parent,
        kids + [t.meter_reports[stranger]])

    def earlier(b):
        b[2] = r - 1
    add(["wrong-round"], "ReplayError", "reported", "aggregator", "aggregate", parent,
        [_reseal(report0, key0, b"up", b"meter-report", 6, earlier)] + kids[1:])

    def out_of_range(b):
        b[4] = int(hood.public_key.nsquare).to_bytes(hood.public_key.ciphertext_length(), "big")
    add(["ciphertext-out-of-range"], "InvalidCiphertextError", "reported", "aggregator", "aggregate", parent,
        [_reseal(report0, key0, b"up", b"meter-report", 6, out_of_range)] + kids[1:])
    decoders("reported", "aggregator", "aggregate", parent, report0, "meter-report")

    # utility (spec 6.3, 8.1, 8.5)
    adverts = list(t.adverts.values())
    add(["bad-mac"], "VerificationError", "advertised", "utility", "bundles", "utility",
        [_flip(adverts[0])] + adverts[1:])
    root_report = t.aggregate_reports[hood.root]
    decoders("aggregated", "utility", "receive", "utility", root_report, "aggregate-report")
    add(["bad-mac"], "VerificationError", "aggregated", "utility", "receive", "utility", [_flip(root_report)])

    def short_root(b):
        keep = hood.min_reporting - 1
        b[5], b[6] = b[5][:keep], b[6][:keep]
    add(["below-min-reporting"], "RecoveryError", "aggregated", "utility", "receive", "utility",
        [_reseal(root_report, root_key, b"up", b"aggregate-report", 7, short_root)])

    def raised(b):
        pk = hood.public_key
        low, high = hood.layout.physical_range(len(reporting))
        c = int.from_bytes(b[4], "big") * pow(1 + int(pk.n), high + 1, int(pk.nsquare)) % int(pk.nsquare)
        b[4] = c.to_bytes(pk.ciphertext_length(), "big")
    responses = list(_replay(setup, "responded")[1].responses.values())
    add(["sum-out-of-range"], "AggregateMismatchError", "aggregated", "utility", "receive_then_finish", "utility",
        [_reseal(root_report, root_key, b"up", b"aggregate-report", 7, raised)],
        followed_by={"commit_signatures": [x.hex() for x in t.commit_signatures.values()],
                     "unmask_responses": [x.hex() for x in responses]})
    key_first = p.meters[cbor.decode(responses[0])[3]].key

    def tampered(b):
        b[4] = _flip(b[4], ks.SHARE_BYTES - 1)
    add(["tampered-share"], "VerificationError", "responded", "utility", "finish", "utility",
        [_reseal(responses[0], key_first, b"up", b"unmask-response", 5, tampered)] + responses[1:])
    add(["bad-mac"], "VerificationError", "responded", "utility", "finish", "utility",
        [_flip(responses[0])] + responses[1:])

    for case in cases:  # the generator checks each case as the verifier will
        _refusal(case)
    return cases


def _step_cases(gen: _Generator) -> list[dict]:
    """Spec 12.2: one valid step per role and step that a refusal exercises, with its honest input."""
    setup = gen.setup
    p, t = _replay(setup, "signed")
    hood = p.hood
    m0, member = hood.meters[0], hood.committee[0]
    parent = next(a for a, kids in hood.tree.items() if m0 in kids)
    kids = [t.meter_reports[c] for c in hood.children(parent) if c in t.meter_reports]
    responses = list(_replay(setup, "responded")[1].responses.values())
    retained = {a: [x.hex() for x in s.retained[setup["round"]]] for a, s in p.aggregators.items() if s.retained}
    return [
        *_setup_steps(gen),
        _meter_step(gen, "advertise"),
        gen.step("advertised", "meter", "accept_bundle", m0, [t.bundles[m0]]),
        _meter_step(gen, "report"),
        gen.step("signed", "meter", "unmask", m0, [t.requests[m0]]),
        gen.step("received", "committee", "sign_commit", member, [t.commit_requests[member]]),
        gen.step("reported", "aggregator", "aggregate", parent, kids),
        gen.step("advertised", "utility", "bundles", "utility", list(t.adverts.values())),
        gen.step("aggregated", "utility", "receive", "utility", [t.aggregate_reports[hood.root]]),
        gen.step("received", "utility", "collect", "utility", list(t.commit_signatures.values())),
        gen.step("responded", "utility", "finish", "utility", responses),
        gen.step("received", "utility", "audit", "utility", [], {"retained": retained}),
    ]


def _setup_steps(gen: _Generator) -> list[dict]:
    """Spec 3.3: the first meter's commit (from its state right after its keys were drawn, 3.1) and reveal
    (from its state after the commit) in the setup of the base round; the nonce is its draw of 3.1's order."""
    p, _ = _replay(gen.setup, "setup")
    m0 = p.hood.meters[0]
    after = _meter_json(p.meters[m0], setup=True)
    committed = {**after, "directory": None}
    fresh = {**committed, "setups": 0, "graph_nonce": None}
    nonce = {"name": "graph_nonce", "hex": after["graph_nonce"]}
    out = []
    for step, state, inputs, extra in (("commit", fresh, [], {"draws": [nonce]}),
                                       ("reveal", committed, [bytes.fromhex(gen.directory["cbor"])], {})):
        gen.states["setup", "meter", step, m0] = state
        out.append(gen.step("setup", "meter", step, m0, inputs, extra))
    return out


def _step_refusals(steps: list[dict]) -> list[dict]:
    """Refusals of the steps 12.2 added (setup, advertise, report, collect, audit), each made from the valid
    step of the same role and step: its state (or its state_after, for a replay) and an edited input."""
    by_step = {(v["base"], v["step"]): v for v in steps if v["operation"] == "step"}
    out = []

    def add(base: str, step: str, flags: list[str], error: str, before: dict | None = None,
            inputs: list[str] | None = None, **changes: Any) -> None:
        valid = by_step[base, step]
        vec = {k: copy.deepcopy(x) for k, x in valid.items()
               if k not in ("output", "release", "intermediates", "state_after")}
        vec.update({"name": f"{valid['name']}/{'+'.join(flags)}", "operation": "refusal", "result": "invalid",
                    "flags": flags, "error": error})
        if before is not None:
            vec["state_before"] = before
        if inputs is not None:
            vec["input"] = inputs
        vec.update(changes)
        _refusal(vec)
        out.append(vec)

    base = "complete-graph"
    commit, reveal = by_step[base, "commit"], by_step[base, "reveal"]
    add(base, "commit", ["too-many-setups"], "StateError",
        {**commit["state_before"], "setups": agg.MAX_SETUPS})
    add(base, "reveal", ["below-floor"], "ConsistencyError",
        {**reveal["state_before"], "min_reporting_floor": reveal["state_after"]["min_reporting_floor"] + 99})
    other = cbor.decode(bytes.fromhex(reveal["input"][0]))
    other[1] = other[1] + b"/other"
    add(base, "reveal", ["second-directory"], "ReplayError", reveal["state_after"], [cbor.encode(other).hex()])
    add(base, "advertise", ["replay"], "ReplayError", by_step[base, "advertise"]["state_after"])
    report = by_step[base, "report"]
    add(base, "report", ["replay"], "ReplayError", report["state_after"])
    add(base, "report", ["reading-out-of-range"], "EncodingOverflowError",
        readings=[1 << 16] + report["readings"][1:])
    collect = by_step[base, "collect"]
    sig = cbor.decode(bytes.fromhex(collect["input"][0]))
    sig[4] = _flip(sig[4], 0)
    add(base, "collect", ["bad-commit-signature"], "VerificationError", None,
        [cbor.encode(sig).hex()] + collect["input"][1:])
    add(base, "collect", ["too-few-commit-signatures"], "RecoveryError", None, collect["input"][:1])
    audit = by_step[base, "audit"]
    root = cbor.decode(bytes.fromhex(audit["state_before"]["round"]["report"]))[3]
    kept = copy.deepcopy(audit["retained"])
    kept[root] = kept[root][:-1]
    add(base, "audit", ["audit-dropped"], "DroppedContributionError", retained=kept)
    return out


def _meter_step(gen: _Generator, step: str) -> dict:
    """Spec 12.2: the first meter's advertise (from the setup state) or report (from its accepted bundle),
    with the draws it took from the round's DRBG in the driver's order, named by the plan of 6.2 or 6.4."""
    spans: dict = {}
    p, _ = _replay(gen.setup, "reported", spans)
    m0 = p.hood.meters[0]
    plan = _advertise_plan(p.hood) if step == "advertise" else _report_plan(p.hood)
    draws, _ = _name_draws(spans[step, m0], plan)
    extra: dict[str, Any] = {"draws": draws}
    if step == "report":
        extra = {"readings": gen.setup["readings"][m0], **extra}
    return gen.step("setup" if step == "advertise" else "bundled", "meter", step, m0, [], extra)


FAMILY = VectorFamily(file=FILE, protocol=PROTOCOL, suite=SUITE, verify_vector=verify_vector, build=build)
