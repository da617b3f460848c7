"""The dual-ID escrow roles as processes (specs/roles.md section 9; specs/escrow.md).

Roles: ``meter`` (:class:`protocols.escrow.Meter`), ``escrow`` (the HFID
issuer, :class:`protocols.escrow.Escrow`), ``supplier`` and ``grid-operator``
(:class:`protocols.escrow.Receiver`) and ``authority`` (a re-identification
authority, :class:`protocols.escrow.Authority`; mode escrowed).  The harness
plays the environment: each party's clock, the meter's data sources, the
authorities' review console, and the combiner of decryption shares (spec 9.3).

One-time state (spec 9.5): the escrow's ``issued`` row for (LFID serial,
epoch) is written in the transaction that answers the request, so it is
committed before the HFID leaves; a second request for the same meter and
epoch is refused with ``ReplayError`` from then on, restarts included.
"""

from __future__ import annotations

from typing import Any, cast

from protocols import escrow as esc
from protocols.errors import DecodeError, ParameterError, StateError, StateFileError
from protocols.primitives import cbor, hashing
from protocols.primitives.drbg import HmacDrbg
from protocols.schemes import certificates, frost
from protocols.system import escrow_fleet
from protocols.system.roles import escrow_state as S
from protocols.system.roles import harness, wire
from protocols.system.roles.base import Context, Deployment, RoleSpec
from protocols.system.roles.wire import Envelope

PROTOCOL = "escrow"
SCHEMA_VERSION = 1
MAX_ENV_BYTES = esc.MAX_PAYLOAD_BYTES + 256
"""Spec 9.2: the largest env body (env.send carries a payload of at most MAX_PAYLOAD_BYTES)."""
MAX_LINK_MESSAGE_BYTES = 4096
"""Spec 9.3: the largest sealed-link message (a 4.6 request and a 272-byte sealed link)."""
RECIPIENT_ROLES = ("grid-operator", "supplier")

_NONE = type(None)


# ---------------------------------------------------------------------------
# Shared helpers


def _env(envelope: Envelope, schema: dict[int, Any]) -> dict:
    """Spec 9.2: an env body, bounded and decoded strictly; only from ``env``."""
    if envelope.sender != wire.HARNESS:
        raise DecodeError(f"{envelope.type} comes from the environment, not from {envelope.sender}")
    if len(envelope.body) > MAX_ENV_BYTES:
        raise DecodeError(f"{envelope.type}: body of {len(envelope.body)} bytes exceeds {MAX_ENV_BYTES}")
    return cbor.decode_map(envelope.body, schema, name=envelope.type, max_size=MAX_ENV_BYTES)


def _time(value: int, what: str) -> int:
    if not 0 <= value <= esc.MAX_TIME:
        raise DecodeError(f"{what}: time out of range")
    return value


def _now(ctx: Context) -> int:
    raw = ctx.need("now")
    with S.stored("clock"):
        value = cbor.decode(raw, max_size=16)
        if type(value) is not int or value < 0:
            raise StateFileError("stored clock is not an unsigned integer")
    return value


def _set_clock(ctx: Context, envelope: Envelope) -> list[Envelope]:
    """env.clock {1: now}: the party's clock; it never goes back (StateError)."""
    now = _time(_env(envelope, {1: int})[1], "env.clock")
    if now < _now(ctx):
        raise StateError(f"env.clock: {now} is before the party's clock {_now(ctx)}")
    ctx.put("now", cbor.encode(now))
    return []


def _unexpected(envelope: Envelope, role: str) -> DecodeError:
    return DecodeError(f"a {role} takes no {envelope.type} message")


def _config(record: dict[str, object]) -> bytes:
    value = record.get("config")
    if not isinstance(value, bytes):
        raise ParameterError("a provisioning record needs its 'config' bytes")
    return value


# ---------------------------------------------------------------------------
# Meter


def _meter_provision(ctx: Context, record: dict[str, object]) -> None:
    config = _config(record)
    esc.Meter(S.load_meter(config, S.EMPTY_PROFILES)[0])
    ctx.put("config", config)
    ctx.put("profiles", S.EMPTY_PROFILES)


def _meter_handle(ctx: Context, envelope: Envelope) -> list[Envelope]:
    st, escrow_id, recipients = S.load_meter(ctx.need("config"), ctx.need("profiles"))
    with S.stored("meter LF profile"):
        meter = esc.Meter(st)
    if envelope.type == "env.day":
        m = _env(envelope, {1: int, 2: int})
        epoch, now = m[1], _time(m[2], "env.day")
        if not 0 <= epoch <= esc.MAX_EPOCH or st.clock.epoch_of(now) not in (epoch, epoch - 1):
            raise StateError(f"env.day: epoch {epoch} is neither the current nor the next epoch at {now}")
        request = meter.request_hfid(epoch, ctx.rng)
        outputs = [ctx.send(escrow_id, "hfid-request", request)]
    elif envelope.type == "hfid-response":
        if envelope.sender != escrow_id:
            raise DecodeError(f"hfid-response from {envelope.sender}, not from the escrow {escrow_id}")
        profile = meter.receive_hfid(envelope.body)
        report = {1: profile.epoch, 2: hashing.sha256(profile.credential).digest()}
        outputs = [ctx.send(wire.HARNESS, "hfid", cbor.encode(report))]
    elif envelope.type == "env.send":
        m = _env(envelope, {1: str, 2: str, 3: bytes, 4: int})
        message = meter.send(m[1], m[2], m[3], _time(m[4], "env.send"))
        party = recipients.get(m[2])
        if party is None:
            raise StateError(f"this meter knows no party for the recipient {m[2]!r}")
        outputs = [ctx.send(party, cbor.peek_kind(message) or "", message)]
    else:
        raise _unexpected(envelope, "meter")
    ctx.crash_point("meter-state")
    ctx.put("profiles", S.dump_meter_profiles(st))
    return outputs


# ---------------------------------------------------------------------------
# Escrow

_ESCROW_TABLES = (
    "CREATE TABLE issued (serial TEXT NOT NULL, epoch INTEGER NOT NULL, PRIMARY KEY (serial, epoch)) STRICT",
    "CREATE TABLE links (fingerprint BLOB PRIMARY KEY, sealed BLOB NOT NULL) STRICT",
)


def _escrow_provision(ctx: Context, record: dict[str, object]) -> None:
    config = _config(record)
    esc.Escrow(S.load_escrow(config))
    ctx.put("config", config)
    ctx.put("now", cbor.encode(0))


def _escrow_handle(ctx: Context, envelope: Envelope) -> list[Envelope]:
    if envelope.type == "env.clock":
        return _set_clock(ctx, envelope)
    st = S.load_escrow(ctx.need("config"))
    if envelope.type == "hfid-request":
        kind, m = esc.decode_message(envelope.body)
        if kind != "hfid-request":
            raise DecodeError(f"an hfid-request line carries a {kind}")
        serial = certificates.certificate_serial(certificates.load_certificate(m[5][0], "LFID certificate"))
        row = ctx.db.execute("SELECT 1 FROM issued WHERE serial = ? AND epoch = ?", (serial, m[4])).fetchone()
        st.issued = {(serial, m[4])} if row is not None else set()
        before = set(st.issued)
        with S.stored("escrow keys"):
            escrow = esc.Escrow(st)
        response = escrow.handle(envelope.body, _now(ctx), ctx.rng)
        ctx.crash_point("escrow-issued")
        for issued in sorted(st.issued - before):       # the one-time record (spec 9.5)
            ctx.db.execute("INSERT INTO issued VALUES (?, ?)", issued)
        for fingerprint, sealed in sorted(st.links.items()):
            ctx.db.execute("INSERT INTO links VALUES (?, ?)", (fingerprint, sealed))
        return [ctx.send(envelope.sender, "hfid-response", response)]
    if envelope.type == "reid-request":
        kind, m = esc.decode_message(envelope.body)
        if kind != "reid-request":
            raise DecodeError(f"a reid-request line carries a {kind}")
        row = ctx.db.execute("SELECT sealed FROM links WHERE fingerprint = ?", (m[3],)).fetchone()
        if row is None:
            raise StateError("the escrow holds no link for this credential")
        return [ctx.send(envelope.sender, "sealed-link", cbor.encode({1: envelope.body, 2: bytes(row[0])}))]
    raise _unexpected(envelope, "escrow")


# ---------------------------------------------------------------------------
# Receivers (supplier, grid operator)

_RECEIVER_TABLES = ("CREATE TABLE last_seq (sender TEXT PRIMARY KEY, seq INTEGER NOT NULL) STRICT",)


def _receiver_provision(ctx: Context, record: dict[str, object]) -> None:
    config = _config(record)
    S.load_receiver(config)
    ctx.put("config", config)
    ctx.put("now", cbor.encode(0))


def _sender_of(kind: str, m: dict) -> str:
    """Spec 7.2's sender name, before the checks (to load its one replay row)."""
    if kind == "cdp":
        return "lfid:" + certificates.certificate_serial(certificates.load_certificate(m[3][0], "LFID certificate"))
    return "hfid:" + esc.hfid_of(m[5]).hex()


def _receiver_handle(ctx: Context, envelope: Envelope) -> list[Envelope]:
    if envelope.type == "env.clock":
        return _set_clock(ctx, envelope)
    if envelope.type not in ("adp", "cdp"):
        raise _unexpected(envelope, "receiver")
    receiver = S.load_receiver(ctx.need("config"))
    kind, m = esc.decode_message(envelope.body)
    if kind != envelope.type:
        raise DecodeError(f"an {envelope.type} line carries a {kind}")
    sender = _sender_of(kind, m)
    row = ctx.db.execute("SELECT seq FROM last_seq WHERE sender = ?", (sender,)).fetchone()
    if row is not None:
        receiver.state.last_seq[sender] = int(row[0])
    got = receiver.receive(envelope.body, _now(ctx))
    ctx.db.execute("INSERT INTO last_seq VALUES (?, ?) ON CONFLICT(sender) DO UPDATE SET seq = excluded.seq",
                   (got.sender, got.seq))
    report = {1: got.kind, 2: got.category, 3: got.sender, 4: got.epoch, 5: got.seq, 6: got.time, 7: got.payload,
              8: hashing.sha256(m[5]).digest() if kind == "adp" else None}
    return [ctx.send(wire.HARNESS, "received", cbor.encode(report))]


# ---------------------------------------------------------------------------
# Authorities (mode escrowed)

_AUTHORITY_TABLES = ("CREATE TABLE approved (digest BLOB PRIMARY KEY) STRICT",)


class _Link:
    """The sealed link the escrow sent, in the place of :class:`esc.Escrow` for ``Authority.share``."""

    def __init__(self, sealed: bytes) -> None:
        self.sealed = sealed

    def sealed_link(self, fingerprint: bytes) -> bytes:
        return self.sealed


def _authority_config(ctx: Context) -> tuple[frost.KeyPackage, str]:
    m = S.decode(ctx.need("config"), {1: bytes, 2: str}, "authority configuration")
    return S.load_key_package(m[1]), m[2]


def _authority_provision(ctx: Context, record: dict[str, object]) -> None:
    config = _config(record)
    ctx.put("config", config)
    _authority_config(ctx)


def _authority_handle(ctx: Context, envelope: Envelope) -> list[Envelope]:
    key_package, escrow_id = _authority_config(ctx)
    if envelope.type == "env.reidentify":
        request = _env(envelope, {1: bytes})[1]
        esc.Authority(key_package).approve(request)
        ctx.db.execute("INSERT OR IGNORE INTO approved VALUES (?)", (hashing.sha256(request).digest(),))
        return [ctx.send(escrow_id, "reid-request", request)]
    if envelope.type == "sealed-link":
        if envelope.sender != escrow_id:
            raise DecodeError(f"sealed-link from {envelope.sender}, not from the escrow {escrow_id}")
        m = cbor.decode_map(envelope.body, {1: bytes, 2: bytes}, name="sealed-link", max_size=MAX_LINK_MESSAGE_BYTES)
        digest = hashing.sha256(m[1]).digest()
        row = ctx.db.execute("SELECT 1 FROM approved WHERE digest = ?", (digest,)).fetchone()
        authority = esc.Authority(key_package, approved={digest} if row is not None else set())
        share = authority.share(m[1], cast(esc.Escrow, _Link(m[2])), ctx.rng)
        ctx.db.execute("DELETE FROM approved WHERE digest = ?", (digest,))   # an approval is used once
        report = {1: key_package.identifier, 2: share, 3: m[1], 4: m[2]}
        return [ctx.send(wire.HARNESS, "reid-share", cbor.encode(report))]
    raise _unexpected(envelope, "authority")


ROLES: dict[str, RoleSpec] = {
    "meter": RoleSpec(PROTOCOL, "meter", SCHEMA_VERSION, (), _meter_provision, _meter_handle),
    "escrow": RoleSpec(PROTOCOL, "escrow", SCHEMA_VERSION, _ESCROW_TABLES, _escrow_provision, _escrow_handle),
    "supplier": RoleSpec(PROTOCOL, "supplier", SCHEMA_VERSION, _RECEIVER_TABLES, _receiver_provision,
                         _receiver_handle),
    "grid-operator": RoleSpec(PROTOCOL, "grid-operator", SCHEMA_VERSION, _RECEIVER_TABLES, _receiver_provision,
                              _receiver_handle),
    "authority": RoleSpec(PROTOCOL, "authority", SCHEMA_VERSION, _AUTHORITY_TABLES, _authority_provision,
                          _authority_handle),
}


# ---------------------------------------------------------------------------
# Deployment (spec 9.1)


def deploy(seed: str, mode: str = "both", meters: int = 3, epochs: int = 1, rsa_bits: int = 2048) -> Deployment:
    """Spec 9.1: one fleet per mode (``both``: escrowed then blind), every draw from
    HMAC_DRBG("usapp-role-init/escrow/" || seed) through ``escrow_fleet.provision``."""
    modes = esc.MODES if mode == "both" else (mode,)
    if any(m not in esc.MODES for m in modes):
        raise ParameterError(f"mode must be both, {' or '.join(esc.MODES)}")
    if type(meters) is not int or not 1 <= meters <= 1000 or type(epochs) is not int or not 1 <= epochs <= 366:
        raise ParameterError("meters must be 1 to 1000 and epochs 1 to 366")
    rng = HmacDrbg.from_seed(f"usapp-role-init/{PROTOCOL}/{seed}")
    parties: dict[str, tuple[str, dict[str, object]]] = {}
    public: dict[str, object] = {"modes": list(modes)}
    for m in modes:
        fleet = escrow_fleet.provision(m, meters, range(epochs), rng=rng, rsa_bits=rsa_bits)
        escrow_id = f"{m}:escrow"
        recipients = {r: f"{m}:{r}" for r in RECIPIENT_ROLES}
        parties[escrow_id] = ("escrow", {"config": S.dump_escrow(fleet.escrow.state)})
        for r in RECIPIENT_ROLES:
            parties[recipients[r]] = (r, {"config": S.dump_receiver(fleet.receivers[r].state)})
        meter_ids = {}
        for serial, meter in sorted(fleet.meters.items()):
            meter_ids[serial] = f"{m}:{serial}"
            parties[meter_ids[serial]] = ("meter", {"config": S.dump_meter_config(meter.state, escrow_id, recipients)})
        authority_ids = []
        if m == "escrowed":
            for authority in fleet.authorities:
                ident = f"{m}:authority-{authority.key_package.identifier}"
                authority_ids.append(ident)
                config = cbor.encode({1: cbor.encode(S.dump_key_package(authority.key_package)), 2: escrow_id})
                parties[ident] = ("authority", {"config": config})
        public[m] = {"escrow": escrow_id, "meters": meter_ids, **recipients, "authorities": authority_ids,
                     "group_info": (cbor.encode(S.dump_group_info(fleet.authority_info))
                                    if fleet.authority_info is not None else b"")}
    return Deployment(PROTOCOL, parties, public)


# ---------------------------------------------------------------------------
# Scenario (spec 9.6): the claims of ``usapp demo``'s escrow part


def _reports(messages: list[Envelope], type_: str) -> list[dict]:
    return [cbor.decode(e.body) for e in messages if e.type == type_]


def _clock(net: harness.Network, parties: list[str], now: int) -> None:
    net.deliver([Envelope(wire.HARNESS, p, "env.clock", cbor.encode({1: now})) for p in parties])


def send_request(meter: str, category: str, recipient: str, payload: bytes, now: int) -> Envelope:
    return Envelope(wire.HARNESS, meter, "env.send", cbor.encode({1: category, 2: recipient, 3: payload, 4: now}))


def _mode(net: harness.Network, deployment: Deployment, checks: harness.Checks, mode: str) -> dict[str, Any]:
    ids = cast(dict[str, Any], deployment.public[mode])
    meters: dict[str, str] = ids["meters"]
    count = len(meters)
    receivers = [ids["grid-operator"], ids["supplier"]]
    start = escrow_fleet.ORIGIN
    _clock(net, [ids["escrow"], *receivers], start)
    fingerprints: dict[str, bytes] = {}
    for serial, meter in sorted(meters.items()):
        got = _reports(net.deliver([Envelope(wire.HARNESS, meter, "env.day", cbor.encode({1: 0, 2: start}))]), "hfid")
        fingerprints[serial] = got[0][2] if len(got) == 1 else b""
    senders: set[str] = set()
    for slot in range(1, 4):
        t = start + 900 * slot
        _clock(net, receivers, t)
        out = net.deliver([send_request(m, "technical", "grid-operator", b"voltage 230 V   ", t)
                           for _, m in sorted(meters.items())])
        senders |= {r[3] for r in _reports(out, "received")}
    t = start + 79_200
    _clock(net, receivers, t)
    out = net.deliver([send_request(m, "customer", "supplier", b"12.3 kWh", t) for _, m in sorted(meters.items())])
    attributable = {r[3] for r in _reports(out, "received")}
    serials = sorted(meters)
    named = sorted(s for s in serials for sender in senders if s in sender)
    checks.check(f"escrow ({mode}): the grid operator got every meter's technical data from {count} distinct "
                 f"anonymous HFIDs naming no meter",
                 len(senders) == count and all(s.startswith("hfid:") for s in senders) and not named,
                 f"{len(senders)} senders, named {named}")
    checks.check(f"escrow ({mode}): the supplier got a bill from each of the {count} meters under its LFID",
                 attributable == {f"lfid:{s}" for s in serials}, f"billed {sorted(attributable)}")
    # A second HFID for the same meter and day: the meter's key holder (a twin built from its
    # provisioning record, as if the meter had lost its state) asks again.
    first = meters[serials[0]]
    st, _, _ = S.load_meter(_config(deployment.parties[first][1]), S.EMPTY_PROFILES)
    twin = esc.Meter(st).request_hfid(0, HmacDrbg.from_seed(f"usapp-role-scenario/{PROTOCOL}/{mode}/twin"))
    checks.refused(f"escrow ({mode}): a second HFID for the same meter and day is refused",
                   lambda: net.send(Envelope(first, ids["escrow"], "hfid-request", twin)), "ReplayError")
    checks.refused(f"escrow ({mode}): technical data addressed to the supplier is refused",
                   lambda: net.send(send_request(first, "technical", "supplier", b"x", start + 900)), "PolicyError")
    reid = None
    if mode == "escrowed":
        chosen_meter = serials[min(3, count - 1)]
        request = esc.reidentification_request(fingerprints[chosen_meter], "demo: a court order", bytes(16))
        authorities: list[str] = ids["authorities"]
        chosen = [authorities[0], authorities[2]]
        out = net.deliver([Envelope(wire.HARNESS, a, "env.reidentify", cbor.encode({1: request})) for a in chosen])
        reid = combine(ids["group_info"], request, _reports(out, "reid-share")).lfid_serial
        checks.check("escrow (escrowed): 2 of 3 authorities re-identify the HFID as its meter",
                     reid == chosen_meter, f"re-identified as {reid}, expected {chosen_meter}")
    return {"senders": len(senders), "named": len(named), "billed": len(attributable), "reidentified": reid}


def combine(group_info: bytes, request: bytes, shares: list[dict]) -> esc.LinkRecord:
    """Spec 9.3, the combiner (the harness): the authorities' shares opened with ``reidentify``."""
    info = S.load_group_info(cbor.decode(group_info))
    sealed = {s[4] for s in shares}
    if len(sealed) != 1 or any(s[3] != request for s in shares):
        raise StateError("the shares are not for one request and one sealed link")
    return esc.reidentify(info, request, sealed.pop(), {s[1]: s[2] for s in shares})


def scenario(net: harness.Network, deployment: Deployment, checks: harness.Checks) -> dict:
    """Spec 9.6: the demo's escrow claims, per mode, every role its own party."""
    modes = cast(list[str], deployment.public["modes"])
    return {mode: _mode(net, deployment, checks, mode) for mode in modes}
