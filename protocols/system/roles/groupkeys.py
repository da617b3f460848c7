"""The group key roles as processes (specs/roles.md section 7; the protocol: specs/groupkeys.md).

Roles: ``controller`` (the head-end's group key controller), ``member`` (a
meter) and ``operator`` (one FROST signer of the command key).  The harness is
the operators' console and the FROST coordinator (spec 7.2): it sends
``env.approve``, ``env.commit`` (round one) and ``env.sign`` (round two) to
the chosen operators and aggregates their shares (:func:`operators_sign`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from protocols import groupkeys as gk
from protocols.errors import DecodeError, ParameterError, ReplayError, StateError, UsappError, VerificationError
from protocols.primitives import cbor, hashing
from protocols.primitives import ed25519 as G
from protocols.primitives.drbg import HmacDrbg
from protocols.schemes import frost, hpke
from protocols.system.roles import groupkeys_state as codec
from protocols.system.roles import harness, wire
from protocols.system.roles.base import Context, Deployment, RoleSpec
from protocols.system.roles.wire import Envelope

GROUP = b"demo-neighbourhood"
NOW = 1_767_225_600
"""The meters' clock at deployment: 2026-01-01T00:00:00Z (the demo's origin)."""
VALIDITY = 3600
"""Commands and checkpoints of the scenario are valid one hour (spec 8.4)."""
SCHEMA_VERSION = 1
SMALL_BODY = 1024
"""The largest body of env.clock, env.status, env.provision, env.start, env.commit."""
DIRECTORY_BODY = 1 << 20
"""The largest body of env.rekey and env.recover (a member directory)."""
DATA_BODY = gk.MAX_DATA_BYTES + 64
KINDS = gk.KINDS
"""A group message travels as a line whose type is its kind (spec 7.1)."""


def _env_body(envelope: Envelope, limit: int, schema: Mapping[int, Any]) -> dict:
    """Spec 7.1: an env message comes from env only, and its body is a bounded CBOR map of exactly ``schema``."""
    if envelope.sender != wire.HARNESS:
        raise VerificationError(f"{envelope.type} is accepted from env only, not from {envelope.sender}")
    if len(envelope.body) > limit:
        raise DecodeError(f"{envelope.type}: body of {len(envelope.body)} bytes exceeds {limit}")
    return cbor.decode_map(envelope.body, schema, name=envelope.type, max_size=limit)


def _party(member: bytes) -> str:
    """The party id of a member id (its ASCII text)."""
    try:
        return wire.check_id(member.decode("ascii"), "member")
    except UnicodeDecodeError:
        raise ParameterError("a member id must be an ASCII party id") from None


def _directory(entries: object, what: str) -> dict[bytes, bytes]:
    if not isinstance(entries, list):
        raise DecodeError(f"{what}: the directory must be a list")
    out: dict[bytes, bytes] = {}
    for entry in entries:
        if not isinstance(entry, list) or len(entry) != 2 or not all(isinstance(x, bytes) for x in entry):
            raise DecodeError(f"{what}: a directory entry must be [member bstr, HPKE public key bstr]")
        if entry[0] in out:
            raise DecodeError(f"{what}: a member is listed twice")
        _party(entry[0])
        out[entry[0]] = entry[1]
    return out


# --------------------------------------------------------------------------
# controller (spec 7.3.1)


def _controller_provision(ctx: Context, record: dict[str, object]) -> None:
    m = cbor.expect_map(record, {"group": bytes, "epoch": int, "arity": int, "signing_key": bytes,
                                 "command_key": bytes, "directory": list}, name="controller record")
    st = gk.ControllerState(m["group"], m["epoch"], m["arity"], m["signing_key"],
                            devices=_directory(m["directory"], "controller record"))
    gk.Controller(st)  # checks the record
    ctx.put("controller", codec.encode_controller(st))
    ctx.put("command_key", m["command_key"])


def _to_members(ctx: Context, messages: Mapping[bytes, bytes]) -> list[Envelope]:
    out = []
    for member, message in sorted(messages.items()):
        out.append(ctx.send(_party(member), gk.message_kind(message), message))
    return out


def _members(controller: gk.Controller) -> list[bytes]:
    tree = controller.state.tree
    return [] if tree is None else sorted(m for m in tree.members if isinstance(m, bytes))


def _controller_handle(ctx: Context, envelope: Envelope) -> list[Envelope]:
    controller = codec.decode_controller(ctx.need("controller"))
    rng = ctx.rng
    if envelope.type == "env.start":
        _env_body(envelope, SMALL_BODY, {})
        out = controller.start_epoch(controller.state.devices, rng)
    elif envelope.type == "env.rekey":
        m = _env_body(envelope, DIRECTORY_BODY, {1: list, 2: list})
        joins = _directory(m[1], "env.rekey")
        if not all(isinstance(x, bytes) for x in m[2]):
            raise DecodeError("env.rekey: leavers must be member ids")
        rekey, welcomes = controller.rekey(joins, m[2], rng)
        ctx.crash_point("rekeyed")
        out = {member: rekey for member in _members(controller) if member not in welcomes}
        out.update(welcomes)
    elif envelope.type == "env.send":
        m = _env_body(envelope, DATA_BODY, {1: bytes})
        data = controller.send(m[1])
        out = {member: data for member in _members(controller)}
    elif envelope.type == "env.recover":
        m = _env_body(envelope, DIRECTORY_BODY + SMALL_BODY, {1: bytes, 2: list})
        out = controller.recover(m[1], ctx.need("command_key"), _directory(m[2], "env.recover"), rng)
    else:
        raise DecodeError(f"the controller takes env.start, env.rekey, env.send, env.recover, not {envelope.type}")
    ctx.crash_point("signed")
    ctx.put("controller", codec.encode_controller(controller.state))
    return _to_members(ctx, out)


# --------------------------------------------------------------------------
# member (spec 7.3.2)


def _member_provision(ctx: Context, record: dict[str, object]) -> None:
    schema: dict[str, Any] = {"group": bytes, "member": bytes, "device_private": bytes, "command_key": bytes,
                              "now": int}
    if "checkpoint" in record:
        schema["checkpoint"] = bytes
    m = cbor.expect_map(record, schema, name="member record")
    ctx.put("anchor", codec.encode_anchor(m["group"], m["member"], m["device_private"], m["command_key"]))
    ctx.put("clock", codec.encode_clock(m["now"]))
    if "checkpoint" in m:
        meter = gk.Meter.provision(m["group"], m["member"], m["device_private"], m["command_key"],
                                   m["checkpoint"], m["now"])
        ctx.put("meter", codec.encode_meter(meter.state))


def status_body(st: gk.MeterState, kind: str, result: object) -> bytes:
    """Spec 7.3.2: {1: kind, 2: epoch, 3: seq, 4: command seq, 5: supply on, 6: group key id (0: none),
    7: result (the plaintext of data, applies-to-me of a command, else null)}."""
    return cbor.encode({1: kind, 2: st.epoch, 3: st.seq, 4: st.command_seq, 5: st.supply_on,
                        6: 0 if st.keys is None else st.keys.group_kid, 7: result})


def _meter(ctx: Context) -> gk.Meter:
    raw = ctx.get("meter")
    if raw is None:
        raise StateError("this meter is not provisioned yet: it needs env.provision with an operators' checkpoint")
    return codec.decode_meter(raw)


def _member_handle(ctx: Context, envelope: Envelope) -> list[Envelope]:
    clock = codec.decode_clock(ctx.need("clock"))
    if envelope.type == "env.clock":
        now = _env_body(envelope, SMALL_BODY, {1: int})[1]
        if not clock <= now <= gk.MAX_TIME:
            raise StateError(f"env.clock: {now} is before the meter's clock {clock}")
        ctx.put("clock", codec.encode_clock(now))
        return []
    if envelope.type == "env.status":
        _env_body(envelope, SMALL_BODY, {1: int})
        return [ctx.send(wire.HARNESS, "status", status_body(_meter(ctx).state, "status", None))]
    if envelope.type == "env.provision":
        checkpoint = _env_body(envelope, SMALL_BODY, {1: bytes})[1]
        if ctx.get("meter") is not None:
            raise StateError("this meter is provisioned already")
        group, member, device, command_key = codec.decode_anchor(ctx.need("anchor"))
        meter = gk.Meter.provision(group, member, device, command_key, checkpoint, clock)
        ctx.put("meter", codec.encode_meter(meter.state))
        return [ctx.send(wire.HARNESS, "accepted", status_body(meter.state, "checkpoint", None))]
    if envelope.type not in KINDS:
        raise DecodeError(f"a member takes group messages ({', '.join(KINDS)}) and env.clock, env.status, "
                          f"env.provision, not {envelope.type}")
    if gk.message_kind(envelope.body) != envelope.type:
        raise DecodeError(f"a line of type {envelope.type} carries a {gk.message_kind(envelope.body)} message")
    meter = _meter(ctx)
    result = meter.receive(envelope.body, clock)
    ctx.crash_point("accepted")
    ctx.put("meter", codec.encode_meter(meter.state))
    shown: object = result.applies_to_me if isinstance(result, gk.Command) else result
    return [ctx.send(wire.HARNESS, "accepted", status_body(meter.state, envelope.type, shown))]


# --------------------------------------------------------------------------
# operator (spec 7.3.3)

OPERATOR_TABLES = (
    "CREATE TABLE approvals (digest BLOB PRIMARY KEY, body BLOB NOT NULL) STRICT",
    "CREATE TABLE nonces (commitment BLOB PRIMARY KEY, digest BLOB NOT NULL, hiding BLOB NOT NULL, "
    "binding BLOB NOT NULL) STRICT",
    "CREATE TABLE spent (commitment BLOB PRIMARY KEY) STRICT",
)


def _operator_provision(ctx: Context, record: dict[str, object]) -> None:
    m = cbor.expect_map(record, {"group": bytes, "key_package": dict, "spent": list}, name="operator record")
    kp = codec.key_package(m["key_package"])
    ctx.put("operator", codec.encode_operator(m["group"], kp))
    for commitment in m["spent"]:
        frost.SigningCommitments.from_bytes(commitment)
        ctx.db.execute("INSERT INTO spent VALUES (?)", (commitment,))


def _operator_body(group: bytes, raw: bytes) -> dict:
    """An approved body: a command or checkpoint map without its signature, checked as a meter checks it."""
    kind = cbor.peek_kind(raw)
    if kind not in gk.OPERATOR_KINDS:
        raise DecodeError("operators sign only command and checkpoint bodies")
    body = cbor.decode(raw, max_size=wire.MAX_BODY_BYTES)
    if not isinstance(body, dict):
        raise DecodeError("a command body must be a map")
    _, m = gk.decode_message(gk.encode_command(body, bytes(gk.SIGNATURE_BYTES)), authenticated=True)
    if len(m) != len(body) + 1:
        raise DecodeError("a command body to approve or sign carries no signature")
    if body[3] != group:
        raise VerificationError("the command is for another group")
    return body


def _approved(ctx: Context, digest: bytes) -> bool:
    return ctx.db.execute("SELECT 1 FROM approvals WHERE digest = ?", (digest,)).fetchone() is not None


def _operator_handle(ctx: Context, envelope: Envelope) -> list[Envelope]:
    group, kp = codec.decode_operator(ctx.need("operator"))
    if envelope.type == "env.approve":
        raw = _env_body(envelope, wire.MAX_BODY_BYTES, {1: bytes, 2: int})[1]
        digest = hashing.sha256(gk.command_tbs(_operator_body(group, raw))).digest()
        ctx.db.execute("INSERT OR IGNORE INTO approvals VALUES (?, ?)", (digest, raw))
        return []
    if envelope.type == "env.commit":
        digest = _env_body(envelope, SMALL_BODY, {1: bytes, 2: int})[1]
        if not _approved(ctx, digest):
            raise StateError(f"operator {kp.identifier} has not approved this command")
        nonces, comms = frost.commit(kp.identifier, kp.secret_share, ctx.rng)
        key = comms.to_bytes()
        if ctx.db.execute("SELECT 1 FROM spent WHERE commitment = ? UNION SELECT 1 FROM nonces WHERE "
                          "commitment = ?", (key, key)).fetchone() is not None:
            raise ReplayError(f"operator {kp.identifier}: round one produced commitments seen before")
        ctx.db.execute("INSERT INTO nonces VALUES (?, ?, ?, ?)", (key, digest, G.SerializeScalar(nonces.hiding_nonce),
                                                                  G.SerializeScalar(nonces.binding_nonce)))
        ctx.crash_point("nonce-stored")
        return [ctx.send(wire.HARNESS, "frost.commitment", cbor.encode({1: digest, 2: key}))]
    if envelope.type == "env.sign":
        m = _env_body(envelope, wire.MAX_BODY_BYTES, {1: bytes, 2: list})
        body = _operator_body(group, m[1])
        tbs = gk.command_tbs(body)
        digest = hashing.sha256(tbs).digest()
        if len(m[2]) > kp.MAX_PARTICIPANTS or not all(isinstance(c, bytes) for c in m[2]):
            raise DecodeError("env.sign: the commitment list must be at most MAX_PARTICIPANTS commitments")
        entries = frost.validate_commitment_list([frost.SigningCommitments.from_bytes(c) for c in m[2]],
                                                 kp.MIN_PARTICIPANTS, kp.MAX_PARTICIPANTS, kp.identifier)
        key = next(c for c in entries if c.identifier == kp.identifier).to_bytes()
        if ctx.db.execute("SELECT 1 FROM spent WHERE commitment = ?", (key,)).fetchone() is not None:
            raise ReplayError(f"operator {kp.identifier}: these nonces have already been used to sign")
        row = ctx.db.execute("SELECT digest, hiding, binding FROM nonces WHERE commitment = ?", (key,)).fetchone()
        if row is None:
            raise StateError(f"operator {kp.identifier}: no pending round-one nonces match its commitments")
        if row[0] != digest:
            raise StateError(f"operator {kp.identifier}: these nonces were committed for another command")
        if not _approved(ctx, digest):
            raise StateError(f"operator {kp.identifier} has not approved this command")
        nonces = codec.decode_nonces(row[1], row[2], key)
        ctx.db.execute("DELETE FROM nonces WHERE commitment = ?", (key,))
        ctx.db.execute("INSERT INTO spent VALUES (?)", (key,))
        ctx.db.execute("DELETE FROM approvals WHERE digest = ?", (digest,))
        ctx.crash_point("nonce-spent")
        share = frost.sign(kp.identifier, kp.secret_share, kp.group_public_key, nonces, tbs, entries)
        return [ctx.send(wire.HARNESS, "frost.share", cbor.encode({1: digest, 2: kp.identifier,
                                                                   3: share.to_bytes()}))]
    raise DecodeError(f"an operator takes env.approve, env.commit, env.sign, not {envelope.type}")


ROLES: dict[str, RoleSpec] = {
    "controller": RoleSpec("groupkeys", "controller", SCHEMA_VERSION, (), _controller_provision,
                           _controller_handle),
    "member": RoleSpec("groupkeys", "member", SCHEMA_VERSION, (), _member_provision, _member_handle),
    "operator": RoleSpec("groupkeys", "operator", SCHEMA_VERSION, OPERATOR_TABLES, _operator_provision,
                         _operator_handle),
}


# --------------------------------------------------------------------------
# deployment (spec 7.5)


def member_ids(members: int) -> list[str]:
    return [f"meter-{i}" for i in range(1, members + 1)]


def deploy(seed: str, members: int = 4, operators: int = 5, threshold: int = 3, arity: int = 4) -> Deployment:
    """Spec 7.5: every party's record, drawn from HMAC_DRBG.from_seed("usapp-role-init/groupkeys/" || seed)."""
    if not 3 <= members <= 64 or not 2 <= threshold <= operators <= 16:
        raise ParameterError("members in [3, 64] and 2 <= threshold <= operators <= 16")
    rng = HmacDrbg.from_seed(f"usapp-role-init/groupkeys/{seed}")
    ops, info = gk.operator_ceremony(operators, threshold, GROUP, rng)
    command_key = gk.command_key(info)
    names = member_ids(members) + ["meter-new", "meter-late"]
    devices = {name: hpke.DeriveKeyPair(rng.random_bytes(32)) for name in names}
    signing_key, recovery_key = rng.random_bytes(32), rng.random_bytes(32)
    controller_key = gk.Controller(gk.ControllerState(GROUP, 0, arity, signing_key)).public_key
    signers = ops[operators - threshold:]
    body = gk.checkpoint_body(GROUP, 0, 0, controller_key, NOW + VALIDITY)
    for op in signers:
        op.approve(body)
    checkpoint = gk.sign_command(body, signers, info, rng)
    parties: dict[str, tuple[str, dict[str, object]]] = {}
    directory = [[name.encode(), devices[name][1]] for name in member_ids(members)]
    for ident, epoch, key, initial in (("controller", 0, signing_key, directory),
                                       ("controller-1", 1, recovery_key, [])):
        parties[ident] = ("controller", {"group": GROUP, "epoch": epoch, "arity": arity, "signing_key": key,
                                         "command_key": command_key, "directory": initial})
    for op in ops:
        parties[f"operator-{op.identifier}"] = ("operator", {
            "group": GROUP, "key_package": codec.encode_key_package(op.state.signer.key_package),
            "spent": sorted(op.state.signer.spent)})
    for name in names:
        record: dict[str, object] = {"group": GROUP, "member": name.encode(), "device_private": devices[name][0],
                                     "command_key": command_key, "now": NOW}
        if name != "meter-late":
            record["checkpoint"] = checkpoint
        parties[name] = ("member", record)
    public = {"command_key": command_key, "threshold": threshold, "operators": operators,
              "operator_keys": [G.SerializeElement(pk) for pk in info.participant_public_keys],
              "operator_ids": {f"operator-{op.identifier}": op.identifier for op in ops},
              "members": member_ids(members), "devices": {n: devices[n][1] for n in names}}
    return Deployment("groupkeys", parties, public)


def _count(deployment: Deployment, name: str) -> int:
    value = deployment.public.get(name)
    if type(value) is not int:
        raise ParameterError(f"the deployment carries no {name}")
    return value


def group_info(deployment: Deployment) -> frost.PublicKeyPackage:
    p = deployment.public
    keys = p["operator_keys"]
    if not isinstance(keys, list) or not isinstance(p["command_key"], bytes):
        raise ParameterError("the deployment carries no operator keys")
    return frost.PublicKeyPackage(_count(deployment, "threshold"), _count(deployment, "operators"),
                                  G.DeserializeElement(p["command_key"]),
                                  tuple(G.DeserializeElement(k) for k in keys))


# --------------------------------------------------------------------------
# the coordinator (spec 7.2) and the scenario (spec 7.6)


def env(to: str, type_: str, body: object) -> Envelope:
    return Envelope(wire.HARNESS, to, type_, cbor.encode(body))


_OPERATOR_OUTPUTS: dict[str, dict[int, Any]] = {"frost.commitment": {1: bytes, 2: bytes},
                                                 "frost.share": {1: bytes, 2: int, 3: bytes}}


def _only(outputs: list[Envelope], sender: str, type_: str) -> dict:
    found = [o for o in outputs if o.sender == sender and o.type == type_]
    if len(found) != 1:
        raise StateError(f"{sender} answered with {len(found)} {type_} messages, expected one")
    return cbor.decode_map(found[0].body, _OPERATOR_OUTPUTS[type_], name=type_, max_size=SMALL_BODY)


def operators_sign(net: harness.Network, deployment: Deployment, body: dict, signers: Sequence[str], *,
                   session: int) -> bytes:
    """Spec 7.2: the coordinator's two FROST rounds with ``signers`` (operator party ids); the signed message.

    ``session`` numbers the approval and the round one request (a new number makes a new line, so a
    second session for the same command is not answered from the journal)."""
    raw = cbor.encode(body)
    tbs = gk.command_tbs(body)
    digest = hashing.sha256(tbs).digest()
    known: dict[str, int] = deployment.public["operator_ids"]  # type: ignore[assignment]
    ids = {op: known[op] for op in signers}
    net.deliver([env(op, "env.approve", {1: raw, 2: session}) for op in signers])
    commitments = []
    for op in signers:
        m = _only(net.deliver([env(op, "env.commit", {1: digest, 2: session})]), op, "frost.commitment")
        comms = frost.SigningCommitments.from_bytes(m[2])
        if m[1] != digest or comms.identifier != ids[op]:
            raise VerificationError(f"{op} committed for another command or under another identifier")
        commitments.append(comms)
    commitments.sort(key=lambda c: c.identifier)
    package = [c.to_bytes() for c in commitments]
    shares = []
    for op in signers:
        m = _only(net.deliver([env(op, "env.sign", {1: raw, 2: package})]), op, "frost.share")
        if m[1] != digest or m[2] != ids[op]:
            raise VerificationError(f"{op} signed another command or under another identifier")
        shares.append(frost.SignatureShare.from_bytes(ids[op], m[3]))
    signature = frost.aggregate_and_verify(group_info(deployment), commitments, tbs, shares)
    return gk.encode_command(body, signature.to_bytes())


def accepted(outputs: list[Envelope]) -> dict[str, dict]:
    """The members' ``accepted`` (or ``status``) answers by member."""
    out = {}
    for o in outputs:
        if o.type in ("accepted", "status"):
            out[o.sender] = cbor.decode_map(o.body, {1: str, 2: int, 3: int, 4: int, 5: bool, 6: int,
                                                     7: (bytes, bool, type(None))}, name=o.type, max_size=DATA_BODY)
    return out


def refusal(net: harness.Network, message: Envelope) -> str | None:
    """The error name if ``message`` is refused, None if accepted."""
    try:
        net.deliver([message])
    except harness.Refused as exc:
        return exc.error
    return None


class Scenario:
    """The state of a scenario run the harness keeps (what it has seen)."""

    def __init__(self, net: harness.Network, deployment: Deployment) -> None:
        self.net, self.deployment = net, deployment
        self.queries = 0

    def status(self, members: Sequence[str]) -> dict[str, dict]:
        self.queries += 1   # a new body each time: an identical line would be answered from the journal
        return accepted(self.net.deliver([env(m, "env.status", {1: self.queries}) for m in members]))


def scenario(net: harness.Network, deployment: Deployment, checks: harness.Checks) -> dict:
    """Spec 7.6: the demo's group key claims, every party a process."""
    run = Scenario(net, deployment)
    p = deployment.public
    members = list(p["members"])  # type: ignore[call-overload]
    devices: dict[str, bytes] = p["devices"]  # type: ignore[assignment]
    n, t = _count(deployment, "operators"), _count(deployment, "threshold")
    operators = [f"operator-{i}" for i in range(1, n + 1)]
    honest = operators[n - t:]

    started = accepted(net.deliver([env("controller", "env.start", {})]))
    checks.check("group keys: every member accepts its first resync", sorted(started) == members,
                 f"accepted by {sorted(started)}")

    moved_out = members[1]
    net.deliver(net.send(env("controller", "env.rekey", {1: [[b"meter-new", devices["meter-new"]]],
                                                           2: [moved_out.encode()]})))
    current = sorted([m for m in members if m != moved_out] + ["meter-new"])
    text = b"tariff: 0.21/kWh from 17:00"
    tariff = net.send(env("controller", "env.send", {1: text}))
    read = accepted(net.deliver(tariff))
    checks.check("group keys: every member after the rekey reads the tariff",
                 sorted(read) == current and all(a[7] == text for a in read.values()),
                 f"{len(read)} of {len(current)} read it")
    copy = Envelope(wire.HARNESS, moved_out, "data", tariff[0].body)
    checks.refused("group keys: the meter that moved out cannot read the tariff",
                   lambda: net.deliver([copy]), "ResyncRequiredError")

    target = members[2]
    disconnect = gk.command_body(GROUP, 1, "disconnect", {1: [target.encode()]}, epoch=0, not_after=NOW + VALIDITY)
    command = operators_sign(net, deployment, disconnect, honest, session=1)
    applied = accepted(net.deliver([Envelope(wire.HARNESS, m, "command", command) for m in current]))
    checks.check(f"group keys: the operators' disconnect applies to {target} alone",
                 sorted(applied) == current and [m for m, a in applied.items() if a[7]] == [target],
                 f"applied by {[m for m, a in applied.items() if a[7]]}")

    # The attacker: the head-end's signing key and the shares of operators 1 and 2 (from their records).
    evil = gk.command_body(GROUP, 2, "disconnect-all", {}, epoch=0, not_after=NOW + VALIDITY)
    head_end = deployment.parties["controller"][1]["signing_key"]
    forged = [forge_with_controller_key(evil, head_end), forge_with_shares(evil, deployment, operators[:t - 1])]
    errors = [refusal(net, Envelope(wire.HARNESS, m, "command", f)) for f in forged for m in current]
    checks.check(f"group keys: the attacker's disconnect-all (head-end key, {t - 1} of {n} operators) is refused "
                 "by every member", all(e == "VerificationError" for e in errors), f"refusals: {errors}")
    off = sorted(m for m, s in run.status(current).items() if not s[5])
    checks.check(f"group keys: after the attack only {target} is off", off == [target], f"off: {off}")

    late = "meter-late"
    checkpoint = operators_sign(net, deployment, gk.checkpoint_body(GROUP, 1, 0, public_key(head_end),
                                                                    NOW + 600 + VALIDITY), operators[:t],
                                session=2)
    net.deliver([env(late, "env.clock", {1: NOW + 600}), env(late, "env.provision", {1: checkpoint})])
    checks.refused("group keys: the disconnect replayed to a meter provisioned after it is refused",
                   lambda: net.deliver([Envelope(wire.HARNESS, late, "command", command)]), "ReplayError")

    directory = {m.encode(): devices[m] for m in current}
    new_public = public_key(deployment.parties["controller-1"][1]["signing_key"])
    recover = gk.command_body(GROUP, 2, "rekey-group", {1: 1, 2: new_public, 3: gk.directory_hash(GROUP, 1, directory)},
                              epoch=0, not_after=NOW + VALIDITY)
    command = operators_sign(net, deployment, recover, honest, session=3)
    net.deliver([Envelope(wire.HARNESS, m, "command", command) for m in current])
    phantom = [[m, d] for m, d in sorted({**directory, b"phantom": devices[late]}.items())]
    checks.refused("group keys: a recovery for a directory with an extra member is refused",
                   lambda: net.deliver([env("controller-1", "env.recover", {1: command, 2: phantom})]),
                   "VerificationError")
    net.deliver([env("controller-1", "env.recover", {1: command, 2: [[m, d] for m, d in sorted(directory.items())]})])
    fresh = b"from the new head-end"
    holding = accepted(net.deliver(net.send(env("controller-1", "env.send", {1: fresh}))))
    checks.check("group keys: after the recovery every member holds the new group key",
                 sorted(holding) == current and all(a[7] == fresh and a[2] == 1 for a in holding.values()),
                 f"{len(holding)} of {len(current)}")
    old = net.send(env("controller", "env.send", {1: b"from the old head-end"}))
    stale = [refusal(net, Envelope(wire.HARNESS, o.to, "data", o.body)) for o in old if o.to in current]
    checks.check("group keys: after the recovery the old head-end's messages are refused by every member",
                 len(stale) == len(current) and all(e == "VerificationError" for e in stale), f"refusals: {stale}")
    return {"members": len(current), "read": len(read), "applied": sum(bool(a[7]) for a in applied.values()),
            "off": len(off), "messages": len(net.transcript)}


def _signing_key(key: object) -> Ed25519PrivateKey:
    if not isinstance(key, bytes) or len(key) != 32:
        raise ParameterError("a controller record carries a 32-byte signing key")
    return Ed25519PrivateKey.from_private_bytes(key)


def public_key(signing_key: object) -> bytes:
    """The controller key (Ed25519 public key) of a controller record's signing key."""
    return _signing_key(signing_key).public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)


def forge_with_controller_key(body: dict, signing_key: object) -> bytes:
    """The attacker signs a command with the head-end's (controller's) key."""
    return gk.encode_command(body, _signing_key(signing_key).sign(gk.command_tbs(body)))


def forge_with_shares(body: dict, deployment: Deployment, operators: Sequence[str]) -> bytes:
    """The attacker runs FROST with fewer than t operators' key shares (taken from their records)."""
    rng = HmacDrbg.from_seed("usapp-role/groupkeys/attacker")
    info = group_info(deployment)
    tbs = gk.command_tbs(body)
    packages = [codec.key_package(deployment.parties[op][1]["key_package"]) for op in operators]
    nonces = [frost.commit(kp.identifier, kp.secret_share, rng)[0] for kp in packages]
    commitments = [n.commitments for n in nonces]
    shares = [frost.sign(kp.identifier, kp.secret_share, info.group_public_key, n, tbs, commitments)
              for kp, n in zip(packages, nonces)]
    return gk.encode_command(body, frost.aggregate(commitments, tbs, info.group_public_key, shares).to_bytes())
