"""The aggregation roles as processes: meter, concentrator, utility (specs/roles.md section 6).

Each handler loads its party's state from the state file, builds the
protocol object of ``protocols.aggregation`` (specs/aggregation.md), calls
one protocol method, stores the changed state and returns the outputs; the
framework commits before any output leaves (roles spec 3.2), so a meter's
answered unmask-request (aggregation spec 8.4: answering two different ones
of one round gives away both halves of a neighbour's masks) is durable
before its answer exists outside the process.
"""

from __future__ import annotations

import hmac
from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from protocols import aggregation as agg
from protocols.aggregation import messages as msg
from protocols.aggregation.schedule import SIGNATURE_BYTES, commit_message, mac_key
from protocols.errors import (
    AggregateMismatchError,
    DecodeError,
    DuplicateContributionError,
    InjectedContributionError,
    ParameterError,
    RecoveryError,
    ReplayError,
    StateError,
    StateFileError,
    UsappError,
    VerificationError,
)
from protocols.primitives import cbor, hashing
from protocols.primitives.drbg import HmacDrbg
from protocols.primitives.rand import random_below
from protocols.schemes.paillier import generate_keypair
from protocols.system.roles import aggregation_state as st
from protocols.system.roles import harness
from protocols.system.roles.base import Context, Deployment, RoleSpec
from protocols.system.roles.wire import HARNESS, Envelope

SCHEMA_VERSION = 1
UTILITY = "utility"
"""The utility's party id in a deployment made by :func:`deploy`."""
MAX_ENV_BODY = 65536
"""Largest body of an ``env.*`` input (roles spec 6.2): checked before it is decoded."""
MAX_OPEN_ROUNDS = 4
"""Rounds a concentrator holds reports of before it has aggregated them (roles spec 6.3)."""
PHASE_OF_DEADLINE = ("adverts", "report", "signatures", "responses")

# ---------------------------------------------------------------------------------------------------------
# Common helpers


def _env_body(envelope: Envelope, schema: Mapping[int, Any]) -> dict:
    """Roles spec 6.2: an env input, from ``env``, at most MAX_ENV_BODY bytes, a map of exactly ``schema``."""
    if envelope.sender != HARNESS:
        raise VerificationError(f"{envelope.type} comes from the environment, not from {envelope.sender}")
    if len(envelope.body) > MAX_ENV_BODY:
        raise DecodeError(f"{envelope.type}: body of {len(envelope.body)} bytes exceeds {MAX_ENV_BODY}")
    m = cbor.decode_map(envelope.body, schema, name=envelope.type, max_size=MAX_ENV_BODY)
    msg.check_round(m[1])
    return m


def _from(envelope: Envelope, expected: str) -> None:
    if envelope.sender != expected:
        raise VerificationError(f"{envelope.type} must come from {expected}, not {envelope.sender}")


def _unknown(envelope: Envelope, role: str) -> DecodeError:
    return DecodeError(f"the {role} takes no message of type {envelope.type!r}")


def _group(ctx: Context) -> st.Group:
    return st.decode_group(ctx.need("hood"))


def _record(record: Mapping[str, object], schema: Mapping[str, Any]) -> dict:
    return cbor.expect_map(dict(record), schema, name="provisioning record")


def _provision_group(ctx: Context, record: dict) -> st.Group:
    group = st.Group(st.hood_of(record["directory"], st._str_map(record["reveals"], bytes, "reveals")),
                     record["utility"])
    ctx.put("hood", st.encode_group(group.hood, group.utility))
    return group


_GROUP_FIELDS: dict[str, Any] = {"directory": bytes, "reveals": dict, "utility": str}

# ---------------------------------------------------------------------------------------------------------
# Meter (roles spec 6.3.1)

METER_TABLES = (
    "CREATE TABLE unmasked (round INTEGER PRIMARY KEY, request_sha256 BLOB NOT NULL, "
    "response BLOB NOT NULL) STRICT",
)


def _provision_meter(ctx: Context, record: dict[str, object]) -> None:
    r = _record(record, {**_GROUP_FIELDS, "key": bytes, "tag_key": bytes, "x25519_private": bytes,
                         "ed25519_seed": bytes, "graph_nonce": bytes, "setups": int, "min_reporting_floor": int,
                         "degree_floor": int, "committee_floor": int, "require_noise": bool})
    group = _provision_group(ctx, r)
    state = agg.MeterState(ctx.ident, r["key"], r["tag_key"], r["x25519_private"], r["ed25519_seed"],
                           min_reporting_floor=r["min_reporting_floor"], degree_floor=r["degree_floor"],
                           committee_floor=r["committee_floor"], require_noise=r["require_noise"],
                           setups=r["setups"], graph_nonce=r["graph_nonce"], directory=group.hood.digest)
    hood, me = group.hood, ctx.ident
    if (hood.meter_public.get(me) != state.x25519_public or hood.meter_verify.get(me) != state.verify_key
            or hood.commitments.get(me) != agg.graph_commitment(me, r["graph_nonce"])):
        raise ParameterError(f"the directory does not list meter {me} with the record's keys and nonce")
    ctx.put("meter", st.encode_meter(state))


def _handle_meter(ctx: Context, envelope: Envelope) -> list[Envelope]:
    group = _group(ctx)
    state = st.decode_meter(ctx.need("meter"))
    try:
        meter = agg.Meter(group.hood, state)
    except UsappError as exc:
        raise StateFileError(f"stored meter state does not fit the stored directory: {exc}") from None
    hood, kind = group.hood, envelope.type
    ctx.crash_point("loaded")
    if kind == "env.round":
        m = _env_body(envelope, {1: int})
        out = [ctx.send(group.utility, "mask-advert", meter.advertise(m[1], ctx.rng))]
    elif kind == "mask-bundle":
        _from(envelope, group.utility)
        meter.accept_bundle(envelope.body)
        out = []
    elif kind == "env.readings":
        m = _env_body(envelope, {1: int, 2: list})
        report = meter.report(m[1], m[2], ctx.rng)
        out = [ctx.send(hood.parent(ctx.ident) or group.utility, "meter-report", report)]
    elif kind == "commit-request":
        _from(envelope, group.utility)
        out = [ctx.send(group.utility, "commit-signature", meter.sign_commit(envelope.body))]
    elif kind == "unmask-request":
        _from(envelope, group.utility)
        out = [ctx.send(group.utility, "unmask-response", _unmask(ctx, meter, envelope.body))]
    else:
        raise _unknown(envelope, "meter")
    ctx.crash_point("computed")
    ctx.put("meter", st.encode_meter(state))
    return out


def _unmask(ctx: Context, meter: agg.Meter, body: bytes) -> bytes:
    """Aggregation spec 8.4, with the answered request logged in table ``unmasked`` (one row per round)."""
    digest = hashing.sha256(body).digest()
    m = msg.open_message(body, msg.UNMASK_REQUEST, "unmask-request", meter.hood)
    row = ctx.db.execute("SELECT request_sha256 FROM unmasked WHERE round = ?", (m[2],)).fetchone()
    if row is not None and not hmac.compare_digest(bytes(row[0]), digest):
        msg.check_mac(m, mac_key(meter.state.key, b"down"), b"unmask-request", 9, "the utility")
        raise ReplayError(f"meter {meter.state.meter_id} already answered another unmask-request for round {m[2]}")
    response = meter.unmask(body)
    ctx.db.execute("INSERT INTO unmasked (round, request_sha256, response) VALUES (?, ?, ?)",
                   (m[2], digest, response))
    return response


# ---------------------------------------------------------------------------------------------------------
# Concentrator (roles spec 6.3.2)

CONCENTRATOR_TABLES = (
    "CREATE TABLE received (round INTEGER NOT NULL, child TEXT NOT NULL, report BLOB NOT NULL, "
    "PRIMARY KEY (round, child)) STRICT",
)


def _provision_concentrator(ctx: Context, record: dict[str, object]) -> None:
    r = _record(record, {**_GROUP_FIELDS, "key": bytes})
    group = _provision_group(ctx, r)
    state = agg.AggregatorState(ctx.ident, r["key"])
    agg.Aggregator(group.hood, state)
    ctx.put("concentrator", st.encode_concentrator(state))


def _handle_concentrator(ctx: Context, envelope: Envelope) -> list[Envelope]:
    group = _group(ctx)
    state = st.decode_concentrator(ctx.need("concentrator"))
    if state.aggregator_id != ctx.ident or ctx.ident not in group.hood.tree:
        raise StateFileError(f"stored concentrator state is not that of {ctx.ident}")
    hood, kind = group.hood, envelope.type
    ctx.crash_point("loaded")
    if kind in ("meter-report", "aggregate-report"):
        part = msg.decode_child(envelope.body, hood)
        if (kind == "meter-report") != isinstance(part, msg.MeterReport):
            raise DecodeError(f"a {kind} message carries a report of the other kind")
        if part.sender != envelope.sender:
            raise InjectedContributionError(f"a report of {part.sender} sent by {envelope.sender}")
        children = hood.children(ctx.ident)
        if part.sender not in children:
            raise InjectedContributionError(f"{part.sender} is not a child of {ctx.ident}")
        round_id = part.round
        if round_id <= state.last_round:
            raise ReplayError(f"{ctx.ident} already aggregated round {state.last_round}")
        if ctx.db.execute("SELECT 1 FROM received WHERE round = ? AND child = ?",
                          (round_id, part.sender)).fetchone() is not None:
            raise DuplicateContributionError(f"{ctx.ident} already holds a report of {part.sender} for round "
                                             f"{round_id}")
        rounds = {row[0] for row in ctx.db.execute("SELECT DISTINCT round FROM received WHERE round > ?",
                                                   (state.last_round,))}
        if round_id not in rounds and len(rounds) >= MAX_OPEN_ROUNDS:
            raise StateError(f"{ctx.ident} already holds reports of {MAX_OPEN_ROUNDS} open rounds")
        ctx.db.execute("INSERT INTO received (round, child, report) VALUES (?, ?, ?)",
                       (round_id, part.sender, envelope.body))
        held = ctx.db.execute("SELECT COUNT(*) FROM received WHERE round = ?", (round_id,)).fetchone()[0]
        out = _aggregate(ctx, group, state, round_id) if held == len(children) else []
    elif kind == "env.deadline":
        m = _env_body(envelope, {1: int})
        out = [] if m[1] <= state.last_round else _aggregate(ctx, group, state, m[1])
    else:
        raise _unknown(envelope, "concentrator")
    ctx.crash_point("computed")
    ctx.put("concentrator", st.encode_concentrator(state))
    return out


def _aggregate(ctx: Context, group: st.Group, state: agg.AggregatorState, round_id: int) -> list[Envelope]:
    """Aggregation spec 7.1 over the reports held for the round (children order); none held: nothing to send."""
    hood = group.hood
    rows = dict(ctx.db.execute("SELECT child, report FROM received WHERE round = ?", (round_id,)).fetchall())
    inputs = [bytes(rows[c]) for c in hood.children(ctx.ident) if c in rows]
    if not inputs:
        return []
    report = agg.Aggregator(hood, state).aggregate(round_id, inputs)
    ctx.db.execute("DELETE FROM received WHERE round < ?", (round_id,))
    return [ctx.send(hood.parent(ctx.ident) or group.utility, "aggregate-report", report)]


# ---------------------------------------------------------------------------------------------------------
# Utility (roles spec 6.3.3)

UTILITY_TABLES = (
    "CREATE TABLE adverts (round INTEGER NOT NULL, meter TEXT NOT NULL, advert BLOB NOT NULL, "
    "PRIMARY KEY (round, meter)) STRICT",
    "CREATE TABLE responses (round INTEGER NOT NULL, meter TEXT NOT NULL, response BLOB NOT NULL, "
    "PRIMARY KEY (round, meter)) STRICT",
)


def _provision_utility(ctx: Context, record: dict[str, object]) -> None:
    r = _record(record, {**_GROUP_FIELDS, "paillier_p": bytes, "paillier_q": bytes, "meter_keys": dict,
                         "aggregator_keys": dict, "tag_key": bytes})
    group = _provision_group(ctx, r)
    raw = cbor.encode({1: r["paillier_p"], 2: r["paillier_q"], 3: r["meter_keys"], 4: r["aggregator_keys"],
                       5: r["tag_key"], 6: -1})
    state = st.decode_utility(raw, group.hood.public_key)
    agg.Utility(group.hood, state)
    if set(state.meter_keys) != set(group.hood.meters) or set(state.aggregator_keys) != set(group.hood.tree):
        raise ParameterError("the utility's record must hold a key for every meter and every aggregator")
    ctx.put("utility", st.encode_utility(state))


def _handle_utility(ctx: Context, envelope: Envelope) -> list[Envelope]:
    group = _group(ctx)
    hood = group.hood
    state = st.decode_utility(ctx.need("utility"), hood.public_key)
    utility = agg.Utility(hood, state)
    raw_round = ctx.get("round")
    current = None if raw_round is None else st.decode_round(raw_round, hood)
    ctx.crash_point("loaded")
    kind = envelope.type
    if kind == "mask-advert":
        current, out = _advert(ctx, utility, current, envelope)
    elif kind == "aggregate-report":
        _from(envelope, hood.root)
        current = _phase(current, "report", envelope)
        utility.receive(current.rs, envelope.body)
        current.phase = "signatures"
        out = [ctx.send(m, "commit-request", body) for m, body in utility.commit_requests(current.rs).items()]
    elif kind == "commit-signature":
        current = _phase(current, "signatures", envelope)
        out = _signature(ctx, utility, current, envelope)
    elif kind == "unmask-response":
        current = _phase(current, "responses", envelope)
        out = _response(ctx, utility, current, envelope)
    elif kind == "env.deadline":
        m = _env_body(envelope, {1: int, 2: str})
        if m[2] not in PHASE_OF_DEADLINE:
            raise DecodeError(f"env.deadline: unknown phase {m[2]!r}")
        out = _deadline(ctx, utility, current, m[1], m[2])
    else:
        raise _unknown(envelope, "utility")
    ctx.crash_point("computed")
    if current is not None:
        ctx.put("round", st.encode_round(current))
    ctx.put("utility", st.encode_utility(state))
    return out


def _phase(current: st.OpenRound | None, phase: str, envelope: Envelope) -> st.OpenRound:
    """The open round must be in ``phase``: a message of an earlier phase is a ReplayError, of a later a StateError."""
    if current is None or current.phase in ("finished", "abandoned"):
        raise StateError(f"{envelope.type} from {envelope.sender}: no round is open")
    if current.phase != phase:
        order = st.PHASES.index
        late = order(current.phase) > order(phase)
        raise (ReplayError if late else StateError)(
            f"{envelope.type} from {envelope.sender}: round {current.rs.round} is in phase {current.phase}")
    return current


def _advert(ctx: Context, utility: agg.Utility, current: st.OpenRound | None,
            envelope: Envelope) -> tuple[st.OpenRound, list[Envelope]]:
    """Aggregation spec 6.3, one advert at a time: check it alone, keep it; bundle once every meter advertised."""
    hood = utility.hood
    m = msg.open_message(envelope.body, msg.MASK_ADVERT, "mask-advert", hood)
    round_id, sender = m[2], m[3]
    if sender != envelope.sender:
        raise InjectedContributionError(f"a mask-advert of {sender!r} sent by {envelope.sender}")
    if current is None or current.phase in ("finished", "abandoned"):
        last = utility.state.last_round if current is None else max(utility.state.last_round, current.rs.round)
        if round_id <= last:
            raise ReplayError(f"mask-advert for round {round_id}, not after round {last}")
        current = st.OpenRound("adverts", agg.RoundState(round_id, {}, {}))
    elif round_id != current.rs.round:
        msg.check_round_of(round_id, current.rs.round, "mask-advert", sender)
    elif current.phase != "adverts":
        raise ReplayError(f"mask-advert from {sender}: round {round_id} is past its adverts")
    utility.bundles(round_id, [envelope.body])          # every check of spec 6.3 on this advert alone
    if ctx.db.execute("SELECT 1 FROM adverts WHERE round = ? AND meter = ?", (round_id, sender)).fetchone():
        raise DuplicateContributionError(f"two mask-adverts from {sender}")
    ctx.db.execute("INSERT INTO adverts (round, meter, advert) VALUES (?, ?, ?)", (round_id, sender, envelope.body))
    count = ctx.db.execute("SELECT COUNT(*) FROM adverts WHERE round = ?", (round_id,)).fetchone()[0]
    return current, (_bundle(ctx, utility, current) if count == len(hood.meters) else [])


def _bundle(ctx: Context, utility: agg.Utility, current: st.OpenRound) -> list[Envelope]:
    round_id = current.rs.round
    rows = dict(ctx.db.execute("SELECT meter, advert FROM adverts WHERE round = ?", (round_id,)).fetchall())
    adverts = [bytes(rows[m]) for m in utility.hood.meters if m in rows]
    if not adverts:
        return []
    current.rs, bundles = utility.bundles(round_id, adverts)
    current.phase = "report"
    ctx.db.execute("DELETE FROM adverts WHERE round <= ?", (round_id,))
    return [ctx.send(m, "mask-bundle", body) for m, body in bundles.items()]


def _signature(ctx: Context, utility: agg.Utility, current: st.OpenRound, envelope: Envelope) -> list[Envelope]:
    m = msg.open_message(envelope.body, msg.COMMIT_SIGNATURE, "commit-signature", utility.hood)
    if m[3] != envelope.sender:
        raise InjectedContributionError(f"a commit-signature of {m[3]!r} sent by {envelope.sender}")
    try:
        utility.collect_signatures(current.rs, [envelope.body])
    except RecoveryError:
        pass                                   # fewer than tau so far: the signature is kept (spec 8.2)
    if len(current.rs.signatures) < len(utility.hood.committee):
        return []
    return _requests(ctx, utility, current)


def _requests(ctx: Context, utility: agg.Utility, current: st.OpenRound) -> list[Envelope]:
    current.phase = "responses"
    return [ctx.send(m, "unmask-request", body) for m, body in utility.unmask_requests(current.rs).items()]


def _response(ctx: Context, utility: agg.Utility, current: st.OpenRound, envelope: Envelope) -> list[Envelope]:
    sender, _ = utility._read_response(current.rs, envelope.body)
    if sender != envelope.sender:
        raise InjectedContributionError(f"an unmask-response of {sender!r} sent by {envelope.sender}")
    round_id = current.rs.round
    if ctx.db.execute("SELECT 1 FROM responses WHERE round = ? AND meter = ?", (round_id, sender)).fetchone():
        raise ReplayError(f"two unmask-responses from {sender}")
    ctx.db.execute("INSERT INTO responses (round, meter, response) VALUES (?, ?, ?)",
                   (round_id, sender, envelope.body))
    count = ctx.db.execute("SELECT COUNT(*) FROM responses WHERE round = ?", (round_id,)).fetchone()[0]
    return _finish(ctx, utility, current) if count == len(current.rs.requested) else []


def _finish(ctx: Context, utility: agg.Utility, current: st.OpenRound) -> list[Envelope]:
    rs = current.rs
    rows = dict(ctx.db.execute("SELECT meter, response FROM responses WHERE round = ?", (rs.round,)).fetchall())
    try:
        result = utility.finish(rs, [bytes(rows[m]) for m in utility.hood.meters if m in rows])
    except (AggregateMismatchError, RecoveryError) as exc:   # every response is in: the round cannot be released
        return _abandon(ctx, current, exc)
    ctx.crash_point("finished")
    current.phase = "finished"
    ctx.db.execute("DELETE FROM responses WHERE round <= ?", (rs.round,))
    signers = [m for m in utility.hood.committee if m in rs.signatures]
    body = cbor.encode({1: result.round, 2: list(result.sums), 3: list(result.reporting), 4: list(result.missing),
                        5: result.noisy, 6: signers, 7: b"".join(rs.signatures[s] for s in signers)})
    return [ctx.send(HARNESS, "round-result", body)]


def _deadline(ctx: Context, utility: agg.Utility, current: st.OpenRound | None, round_id: int,
              phase: str) -> list[Envelope]:
    """Roles spec 6.3.3: close ``phase`` of the open round; a phase already past (or no such round) is a no-op."""
    if current is None or round_id != current.rs.round or current.phase != phase:
        return []
    try:
        if phase == "adverts":
            return _bundle(ctx, utility, current)
        if phase == "report":
            raise RecoveryError(f"round {round_id}: no report reached the utility before the deadline")
        if phase == "signatures":
            if len(current.rs.signatures) < utility.hood.committee_threshold:
                raise RecoveryError(f"round {round_id}: {len(current.rs.signatures)} committee signatures, "
                                    f"{utility.hood.committee_threshold} needed")
            return _requests(ctx, utility, current)
        return _finish(ctx, utility, current)
    except RecoveryError as exc:
        return _abandon(ctx, current, exc)


def _abandon(ctx: Context, current: st.OpenRound, exc: UsappError) -> list[Envelope]:
    """Roles spec 6.3: the round ends unreleased; the environment learns why."""
    current.phase = "abandoned"
    text = " ".join(str(exc).split())[:1024]
    return [ctx.send(HARNESS, "round-abandoned", cbor.encode({1: current.rs.round, 2: type(exc).__name__, 3: text}))]


ROLES: dict[str, RoleSpec] = {
    "meter": RoleSpec("aggregation", "meter", SCHEMA_VERSION, METER_TABLES, _provision_meter, _handle_meter),
    "concentrator": RoleSpec("aggregation", "concentrator", SCHEMA_VERSION, CONCENTRATOR_TABLES,
                             _provision_concentrator, _handle_concentrator),
    "utility": RoleSpec("aggregation", "utility", SCHEMA_VERSION, UTILITY_TABLES, _provision_utility,
                        _handle_utility),
}

# ---------------------------------------------------------------------------------------------------------
# Deployment (roles spec 6.1)


def deploy(seed: str, *, meters: int = 12, fanout: int = 4, paillier_bits: int = 2048, slots: int = 24,
           value_bits: int = 12, degree: int = 16) -> Deployment:
    """Roles spec 6.1: draw the Paillier key, then every key of aggregation spec 3.1 and the setup of 3.3,
    from HMAC_DRBG.from_seed("usapp-role-init/aggregation/" || seed)."""
    for name, value, low, high in (("meters", meters, 2, 1000), ("fanout", fanout, 2, 64),
                                   ("slots", slots, 1, 64), ("value_bits", value_bits, 1, 32),
                                   ("degree", degree, 2, 64)):
        if type(value) is not int or not low <= value <= high:
            raise ParameterError(f"option {name} must be an integer in [{low}, {high}]")
    rng = HmacDrbg.from_seed(f"usapp-role-init/aggregation/{seed}")
    key = generate_keypair(paillier_bits, rng)
    ids = [f"meter-{i:03d}" for i in range(meters)]
    tree, root = agg.balanced_tree(ids, fanout, prefix="concentrator")
    p = agg.provision(key, ids, tree, root, rng, group_id=b"interop-neighbourhood", slots=slots,
                      value_bits=value_bits, degree=degree)
    hood = p.hood
    common: dict[str, object] = {"directory": cbor.encode(hood.directory_cbor()), "reveals": dict(hood.reveals or {}),
                                 "utility": UTILITY}
    parties: dict[str, tuple[str, dict[str, object]]] = {}
    for m, s in p.meters.items():
        if s.graph_nonce is None:
            raise StateError(f"meter {m} has no graph nonce after setup")
        parties[m] = ("meter", {**common, "key": s.key, "tag_key": s.tag_key, "x25519_private": s.x25519_private,
                                "ed25519_seed": s.signing_seed, "graph_nonce": s.graph_nonce, "setups": s.setups,
                                "min_reporting_floor": s.min_reporting_floor, "degree_floor": s.degree_floor,
                                "committee_floor": s.committee_floor, "require_noise": s.require_noise})
    for a, s2 in p.aggregators.items():
        parties[a] = ("concentrator", {**common, "key": s2.key})
    half = (key.public_key.bits + 15) // 16
    parties[UTILITY] = ("utility", {**common, "paillier_p": int(key.p).to_bytes(half, "big"),
                                    "paillier_q": int(key.q).to_bytes(half, "big"),
                                    "meter_keys": dict(p.utility.meter_keys),
                                    "aggregator_keys": dict(p.utility.aggregator_keys), "tag_key": p.utility.tag_key})
    public: dict[str, object] = {"seed": seed, "directory": common["directory"], "reveals": common["reveals"],
                                 "utility": UTILITY}
    return Deployment("aggregation", parties, public)


# ---------------------------------------------------------------------------------------------------------
# Scenario (roles spec 6.5)


def env_message(to: str, kind: str, body: dict) -> Envelope:
    return Envelope(HARNESS, to, kind, cbor.encode(body))


def route(net: harness.Network, messages: Iterable[Envelope], lost: Iterable[tuple[str, str]] = ()) -> list[Envelope]:
    """``net.deliver`` in which a message to (recipient, type) in ``lost`` is dropped (a meter gone silent)."""
    dropped = set(lost)
    pending = deque(messages)
    to_env: list[Envelope] = []
    while pending:
        message = pending.popleft()
        if message.to == HARNESS:
            net.transcript.append(message)
            to_env.append(message)
        elif (message.to, message.type) not in dropped:
            pending.extend(net.send(message))
    return to_env


def run_round(net: harness.Network, hood: agg.Neighbourhood, round_id: int, readings: Mapping[str, Sequence[int]],
              dropped: Iterable[str] = (), silent: Iterable[str] = ()) -> list[Envelope]:
    """One round as the environment plays it (roles spec 6.5); returns what reached ``env``."""
    drop = set(dropped)
    lost = [(m, "unmask-request") for m in silent]
    takers = [m for m in hood.meters if m in readings or m in drop]
    out = route(net, [env_message(m, "env.round", {1: round_id}) for m in takers])
    out += route(net, [env_message(UTILITY, "env.deadline", {1: round_id, 2: "adverts"})])
    out += route(net, [env_message(m, "env.readings", {1: round_id, 2: list(readings[m])})
                       for m in hood.meters if m in readings and m not in drop], lost)
    from protocols.system.neighbourhood import post_order
    for node in post_order(hood.tree, hood.root):
        out += route(net, [env_message(node, "env.deadline", {1: round_id})], lost)
    for phase in PHASE_OF_DEADLINE[1:]:
        out += route(net, [env_message(UTILITY, "env.deadline", {1: round_id, 2: phase})], lost)
    return out


def read_result(out: Sequence[Envelope], round_id: int) -> dict:
    """The round-result of ``round_id`` among ``out`` (StateError if the round was not released)."""
    for e in out:
        if e.type == "round-result":
            m = cbor.decode_map(e.body, {1: int, 2: list, 3: list, 4: list, 5: bool, 6: list, 7: bytes},
                                name="round-result")
            if m[1] == round_id:
                return m
        if e.type == "round-abandoned":
            raise RecoveryError(f"round {round_id} was abandoned: {cbor.decode(e.body)}")
    raise StateError(f"round {round_id}: the utility released nothing")


def signed_by_committee(hood: agg.Neighbourhood, result: dict) -> tuple[int, bool]:
    """(signers, all valid): the result's committee signatures verified over commit_message (spec 8.2)."""
    signers: list[str] = result[6]
    sigs = [result[7][i:i + SIGNATURE_BYTES] for i in range(0, len(result[7]), SIGNATURE_BYTES)]
    message = commit_message(hood.group_id, hood.digest, result[1], hood.bitmap(result[3]), hood.bitmap(result[4]))
    ok = len(sigs) == len(signers) and len(set(signers)) == len(signers)
    for signer, sig in zip(signers, sigs):
        try:
            Ed25519PublicKey.from_public_bytes(hood.meter_verify[signer]).verify(sig, message)
        except (InvalidSignature, KeyError, ValueError):
            ok = False
    return len(signers), ok and set(signers) <= set(hood.committee)


def public_hood(deployment: Deployment) -> agg.Neighbourhood:
    pub = deployment.public
    directory, reveals = pub["directory"], pub["reveals"]
    if not isinstance(directory, bytes) or not isinstance(reveals, dict):
        raise ParameterError("the deployment's public part has no directory")
    return st.hood_of(directory, reveals)


def readings_for(deployment: Deployment, hood: agg.Neighbourhood, round_id: int,
                 missing: Iterable[str] = ()) -> dict[str, list[int]]:
    """The meters' registers in a scenario: HMAC_DRBG.from_seed("usapp-interop/aggregation/SEED/readings/R")."""
    rng = HmacDrbg.from_seed(f"usapp-interop/aggregation/{deployment.public['seed']}/readings/{round_id}")
    skip = set(missing)
    return {m: [random_below(rng, 1 << hood.value_bits) for _ in range(hood.slots)]
            for m in hood.meters if m not in skip}


def _sums(readings: Mapping[str, Sequence[int]], slots: int) -> list[int]:
    return [sum(r[s] for r in readings.values()) for s in range(slots)]


def scenario(net: harness.Network, deployment: Deployment, checks: harness.Checks) -> dict:
    """The demo's aggregation rounds 1 and 2 (protocols/system/demo.py) between the role processes."""
    from protocols.system import demo
    hood = public_hood(deployment)
    ids = list(hood.meters)
    figures: dict[str, Any] = {"meters": len(ids), "concentrators": len(hood.tree)}

    def signed(label: str, result: dict) -> None:
        count, valid = signed_by_committee(hood, result)
        checks.check(f"{label}: at least {hood.committee_threshold} committee members signed the sets",
                     valid and count >= hood.committee_threshold, f"{count} signatures, valid {valid}")

    readings = readings_for(deployment, hood, 1)
    result = read_result(run_round(net, hood, 1, readings), 1)
    checks.check("aggregation round 1: the released sums equal the sums of the readings",
                 result[2] == _sums(readings, hood.slots), f"released {result[2][:3]}...")
    checks.check("aggregation round 1: every meter is in the reporting set and the missing set is empty",
                 set(result[3]) == set(ids) and not result[4], f"reporting {len(result[3])}, missing {result[4]}")
    signed("aggregation round 1", result)

    dropped, silent = demo._failures(hood, ids, max(1, len(ids) // 12))
    readings = readings_for(deployment, hood, 2, dropped)
    result = read_result(run_round(net, hood, 2, readings, dropped, silent), 2)
    checks.check("aggregation round 2: with meters dropped and one silent, the recovered sums equal the sums of "
                 "the readings that were reported", result[2] == _sums(readings, hood.slots),
                 f"released {result[2][:3]}...")
    checks.check("aggregation round 2: the missing set is exactly the dropped meters, the reporting set the rest",
                 set(result[4]) == dropped and set(result[3]) == set(readings),
                 f"missing {result[4]}, dropped {sorted(dropped)}")
    signed("aggregation round 2", result)
    figures.update(dropped=sorted(dropped), silent=sorted(silent), messages=len(net.transcript))
    return figures
