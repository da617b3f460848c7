"""Vector family ``groupkeys``: group key runs and refusals of specs/groupkeys.md (section 11).

Two kinds of vector (the format is specs/groupkeys.md section 11 and
``vectors/schema/groupkeys.json``):

- ``run`` (valid): a script played through the reference controller, meters,
  operators and coordinator.  Inputs: the group id, the arity, the
  controller's signing key, the meters (member id and the 32-byte ikm of each
  HPKE key pair, ``DeriveKeyPair``), the clock ``now``, the ``lifetime`` of
  operator-signed messages, the number of operators and the threshold, and a
  list of steps (``start``, ``rekey``, ``data``, ``resync``, ``command``,
  ``replay``).  Every random value the run consumes is recorded by name, in
  order: the operators' key generation in ``setup_draws``, each step's in its
  ``draws`` (spec 11.2 gives the sequence of ``random_bytes`` calls of every
  operation).  Verification replays the script from exactly those draws
  (``ReplayRandom``: no DRBG), checks that every draw was consumed, checks
  that HMAC_DRBG(run_seed) yields the same draws, and compares every output:
  each message, its intermediates (path secrets, wraps in the order sent,
  resync payloads, data keys, FROST commitments and shares) and the per-role
  sub-vectors (``roles``: state before, input, output, state after of the
  controller, each meter, each operator and the coordinator).
- ``meter-receive`` and ``controller-recover`` (invalid, Wycheproof style):
  a state, a message and the spec's error name the real code MUST raise
  (``flags`` documented in the file's ``notes``); the meter's state MUST be
  unchanged after the refusal.
- ``operator-sign``, ``meter-provision`` and ``controller-rekey`` (invalid):
  an operator restored from its record asked for round two, a meter
  provisioned from a bad checkpoint, a started controller asked for a bad
  rekey batch (spec 11.4).  Every refusal is checked with the shared
  ``_fields.expect_refusal`` (the spec error name of the most derived class).
"""

from __future__ import annotations

import copy
import hashlib
from collections.abc import Callable, Mapping
from typing import Any, TypeVar, cast

from protocols import groupkeys as gk
from protocols.errors import UsappError, VectorMismatchError
from protocols.primitives import cbor, ed25519
from protocols.primitives.drbg import HmacDrbg
from protocols.primitives.rand import ReplayRandom
from protocols.schemes import frost, hpke, lkh
from protocols.system.vectorsets import VectorFamily
from protocols.system.vectorsets._fields import (
    MAX_ARITY,
    MAX_PARTIES,
    MAX_STEPS,
    UINT32,
    UINT64,
    bytes_field,
    dispatch,
    expect,
    expect_refusal,
    expect_steps,
    field,
    hex_list_field,
    list_field,
    recompute,
    small_int_field,
    str_field,
    vector_result,
)

PROTOCOL = "groupkeys"
SUITE = "usapp-groupkeys-v1"
FILE = "groupkeys.json"
SEED = "usapp-vectors/groupkeys/"

_SCALAR_MASK = (1 << 253) - 1
"""RandomScalar = RandomBelow(L): 32-byte draws, OS2IP, low 253 bits, accepted below L (conventions 3.2)."""


# ---------------------------------------------------------------------------
# Recording and naming the draws
# ---------------------------------------------------------------------------


class _Recorder:
    """A RandomSource that records every ``random_bytes`` call of ``source`` in order."""

    def __init__(self, source: Any) -> None:
        self.source = source
        self.log: list[bytes] = []

    def random_bytes(self, n: int) -> bytes:
        chunk = self.source.random_bytes(n)
        self.log.append(chunk)
        return chunk

    def take(self) -> list[bytes]:
        out, self.log = self.log, []
        return out


def _named(draws: list[bytes], names: list[tuple[str, int]]) -> list[dict]:
    """Name each draw by the sequence of spec 11.2: ``names`` is (name, length) per call."""
    if len(draws) != len(names) or any(len(d) != n for d, (_, n) in zip(draws, names)):
        raise VectorMismatchError(
            f"the draws ({[len(d) for d in draws]}) are not the sequence of spec 11.2 ({[n for _, n in names]})")
    return [{"name": name, "hex": d.hex()} for d, (name, _) in zip(draws, names)]


def _scalar_draws(draws: list[bytes], names: list[str]) -> list[dict]:
    """RandomScalar draws: each name consumes 32-byte calls until one is below L; rejected ones are named so."""
    out, it = [], iter(draws)
    for name in names:
        for d in it:
            if len(d) != 32:
                raise VectorMismatchError("a RandomScalar draw must be 32 bytes")
            if int.from_bytes(d, "big") & _SCALAR_MASK < ed25519.L:
                out.append({"name": name, "hex": d.hex()})
                break
            out.append({"name": name + " (rejected)", "hex": d.hex()})
        else:
            raise VectorMismatchError("fewer RandomScalar draws than spec 11.2 lists")
    if next(it, None) is not None:
        raise VectorMismatchError("more RandomScalar draws than spec 11.2 lists")
    return out


def _ceremony_names(n: int, t: int) -> list[str]:
    return [name for i in range(1, n + 1)
            for name in [f"operator {i} a_{i},{j}" for j in range(t)] + [f"operator {i} k_{i}"]]


def _signing_names(signers: list[int]) -> list[tuple[str, int]]:
    return [(f"operator {i} {which}_nonce_randomness", 32) for i in signers for which in ("hiding", "binding")]


def _resync_names(members: list[bytes]) -> list[tuple[str, int]]:
    return [(f"ikmE of the resync to {m.hex()}", 32) for m in sorted(members)]


def _start_names(tree: lkh.KeyTree, members: list[bytes]) -> list[tuple[str, int]]:
    """Spec 11.2: one call for the leaf keys, then one call per level 1..h, then one ikmE per resync."""
    names = []
    occupied = len(members)
    for level in range(tree.height + 1):
        if level:
            occupied = (occupied + tree.arity - 1) // tree.arity
        names.append((f"keys of level {level}, positions 0..{occupied - 1}", 32 * occupied))
    return names + _resync_names(members)


def _rekey_names(change: lkh.Rekey, joins: list[bytes]) -> list[tuple[str, int]]:
    """Spec 11.2: one leaf key per joiner (sorted), one key per changed node kept (level >= 1, in order),
    then one ikmE per welcome (sorted)."""
    names = [(f"leaf key of joiner {m.hex()}", 32) for m in sorted(joins)]
    names += [(f"key of node ({level}, {position})", 32) for level, position, kid in change.nodes
              if level >= 1 and kid != 0]
    return names + _resync_names(joins)


# ---------------------------------------------------------------------------
# State snapshots (the per-role sub-vectors)
# ---------------------------------------------------------------------------


def _meter_state(st: gk.MeterState) -> dict:
    keys = None
    if st.keys is not None:
        keys = {"arity": st.keys.arity, "position": st.keys.position,
                "path": [[kid, key.hex()] for kid, key in st.keys.path]}
    return {"epoch": st.epoch, "seq": st.seq, "command_seq": st.command_seq, "supply_on": st.supply_on,
            "command_key": st.command_key.hex(), "controller_key": st.controller_key.hex(), "keys": keys}


def _controller_state(c: gk.Controller) -> dict:
    st, tree = c.state, c.state.tree
    out: dict[str, Any] = {"epoch": st.epoch, "seq": st.seq, "public_key": c.public_key.hex()}
    if tree is None:
        out["tree"] = None
        return out
    nodes = []
    for level in range(tree.height + 1):
        for position in range(len(tree.kids[level])):
            kid, key = tree.key(level, position)
            if kid:
                nodes.append([level, position, kid, key.hex()])
    out["tree"] = {"height": tree.height, "next_kid": tree.next_kid, "next_leaf": tree.next_leaf,
                   "free": sorted(tree.free), "members": {m.hex(): p for m, p in sorted(cast(dict[bytes, int], tree.members).items())},
                   "nodes": nodes}
    return out


def _outcome(result: object) -> dict:
    if isinstance(result, gk.Command):
        return {"accepted": "command", "applies_to_me": result.applies_to_me}
    if isinstance(result, bytes):
        return {"accepted": "data", "plaintext": result.hex()}
    return {"accepted": "keys"}


def _ceremony_intermediates(n: int, t: int, group: bytes, draws: list[bytes], operators: list[gk.Operator],
                            info: frost.PublicKeyPackage) -> dict:
    """Spec 8.5: the DKG's values (specs/frost.md 7.1), recomputed with the frost functions from the recorded
    draws and checked against the ceremony's result: Phi, every round-1 package, every share f_i(l), every key
    share.  Scalars are SerializeScalar (32 bytes little-endian), points SerializeElement (32 bytes)."""
    phi = gk.DOMAIN + bytes([len(b"operators")]) + b"operators" + bytes([len(group)]) + group
    replay = ReplayRandom(list(draws))
    parts = {i: frost.dkg_part1(i, n, t, phi, replay) for i in range(1, n + 1)}
    round1 = {i: package for i, (_, package) in parts.items()}
    sent = {i: frost.dkg_part2(secret, round1) for i, (secret, _) in parts.items()}
    for op in operators:
        kp = op.state.signer.key_package
        mine = frost.dkg_part3(parts[kp.identifier][0], round1,
                               {j: sent[j][kp.identifier] for j in sent if j != kp.identifier})[0]
        if mine.secret_share != kp.secret_share or not replay.exhausted:
            raise VectorMismatchError("the DKG intermediates do not recompute to the ceremony's key shares")
    S, E = ed25519.SerializeScalar, ed25519.SerializeElement
    return {"phi": phi.hex(),
            "round1": [{"id": i, "commitment": [E(c).hex() for c in p.commitment], "R": E(p.proof_R).hex(),
                        "mu": S(p.proof_mu).hex()} for i, p in round1.items()],
            "shares": [{"from": i, "to": j, "value": S(share.value).hex()}
                       for i, out in sent.items() for j, share in sorted(out.items())],
            "key_shares": [{"id": op.identifier, "secret_share": S(op.state.signer.key_package.secret_share).hex(),
                            "verifying_share": E(op.state.signer.key_package.verifying_share).hex()}
                           for op in operators],
            "command_key": E(info.group_public_key).hex()}


T = TypeVar("T")


def _present(value: T | None, what: str) -> T:
    """A value the run has set by now (the controller's tree, a meter's keys)."""
    if value is None:
        raise VectorMismatchError(f"internal cross-check failed: {what} is not set")
    return value


class _RecordingOperator:
    """Duck-types a ``gk.Operator`` for ``gk.sign_command`` and records its two rounds."""

    def __init__(self, op: gk.Operator, roles: list[dict]) -> None:
        self.op, self.roles = op, roles

    @property
    def identifier(self) -> int:
        return self.op.identifier

    def commit(self, rng: Any) -> frost.SigningCommitments:
        before = len(rng.log)
        comms = self.op.commit(rng)
        self.roles.append({"role": "operator", "id": self.identifier, "round": 1,
                           "input": {"draws": [d.hex() for d in rng.log[before:]]},
                           "output": {"commitments": comms.to_bytes().hex()}})
        return comms

    def sign(self, body: dict, commitments: list[frost.SigningCommitments]) -> frost.SignatureShare:
        share = self.op.sign(body, commitments)
        self.roles.append({"role": "operator", "id": self.identifier, "round": 2,
                           "input": {"tbs": gk.command_tbs(body).hex(),
                                     "commitment_list": [c.to_bytes().hex() for c in commitments]},
                           "output": {"share": share.to_bytes().hex()}})
        return share


class _World:
    """The controller, the meters, the operators and the coordinator of one run."""

    def __init__(self, v: Mapping[str, Any], rng: Any) -> None:
        self.group = bytes_field(v, "group")
        self.arity = small_int_field(v, "arity", low=2, high=MAX_ARITY)
        self.rng = _Recorder(rng)
        self.devices: dict[bytes, tuple[bytes, bytes]] = {}
        meters = field(v, "meters")
        if not isinstance(meters, dict) or not meters:
            raise VectorMismatchError("field 'meters' must be a non-empty object")
        for name in meters:
            if not _is_hex(name):
                raise VectorMismatchError(f"meters: key {name!r} must be a hex member id")
            self.devices[bytes.fromhex(name)] = hpke.DeriveKeyPair(bytes_field(meters, name))
        self.now = small_int_field(v, "now", low=0, high=UINT64)
        self.lifetime = small_int_field(v, "lifetime", low=0, high=UINT64)
        self.threshold = small_int_field(v, "threshold", low=1, high=MAX_PARTIES)
        n = small_int_field(v, "operators", low=1, high=MAX_PARTIES)
        self.operators, self.info = gk.operator_ceremony(n, self.threshold, self.group, self.rng)
        draws = self.rng.take()
        self.setup_draws = _scalar_draws(draws, _ceremony_names(n, self.threshold))
        self.setup = _ceremony_intermediates(n, self.threshold, self.group, draws, self.operators, self.info)
        self.controller = gk.Controller(gk.ControllerState(self.group, 0, self.arity,
                                                            bytes_field(v, "controller_key")))
        self.meters: dict[bytes, gk.Meter] = {}
        self.command_seq = 0
        self.last_command = b""
        self.roles: list[dict] = []
        self.names: list[tuple[str, int]] = []

    def sign(self, body: dict, signers: list[int]) -> bytes:
        """Spec 8.2, the coordinator: round one in the order of ``signers``, round two, aggregation."""
        chosen = [self.operators[i - 1] for i in signers]
        for op in chosen:
            op.approve(body)
        rounds: list[dict] = []
        recording = cast(list[gk.Operator], [_RecordingOperator(op, rounds) for op in chosen])  # duck-typed
        message = gk.sign_command(body, recording, self.info, self.rng)
        self.names += _signing_names(signers)
        self.roles += rounds
        self.roles.append({"role": "coordinator",
                           "input": {"tbs": gk.command_tbs(body).hex(), "signers": signers,
                                     "commitments": [r["output"]["commitments"] for r in rounds if r["round"] == 1],
                                     "shares": [r["output"]["share"] for r in rounds if r["round"] == 2]},
                           "output": {"signature": message[-64:].hex(), "message": message.hex()}})
        return message

    def provision(self, members: list[bytes]) -> str | None:
        """Spec 8.6: one checkpoint by operators 1..t for the members not yet provisioned; its hex."""
        new = [m for m in members if m not in self.meters]
        if not new:
            return None
        checkpoint = self.sign(gk.checkpoint_body(self.group, self.command_seq, self.controller.state.epoch,
                                                  self.controller.public_key, self.now + self.lifetime),
                               list(range(1, self.threshold + 1)))
        for member in new:
            if member not in self.devices:
                raise VectorMismatchError(f"member {member.hex()} has no device key in 'meters'")
            self.meters[member] = gk.Meter.provision(self.group, member, self.devices[member][0],
                                                     gk.command_key(self.info), checkpoint, self.now)
            self.roles.append({"role": "meter", "member": member.hex(), "provision": True, "state_before": None,
                               "input": checkpoint.hex(), "now": self.now, "output": {"accepted": "checkpoint"},
                               "state_after": _meter_state(self.meters[member].state)})
        return checkpoint.hex()

    def meter(self, member: bytes) -> gk.Meter:
        if member not in self.meters:
            raise VectorMismatchError(f"member {member.hex()} was never provisioned")
        return self.meters[member]

    def receive(self, member: bytes, message: bytes, now: int | None = None, refusal: bool = False) -> object:
        """Deliver one message to one meter and record the meter's sub-vector."""
        meter = self.meter(member)
        before = _meter_state(meter.state)
        entry: dict[str, Any] = {"role": "meter", "member": member.hex(), "state_before": before,
                                 "input": message.hex(), "now": now}
        self.roles.append(entry)
        try:
            result = meter.receive(message, now)
        except UsappError as e:
            if not refusal:
                raise
            entry["output"] = {"error": type(e).__name__}
            entry["state_after"] = _meter_state(meter.state)
            return e
        entry["output"] = _outcome(result)
        entry["state_after"] = _meter_state(meter.state)
        return result

    def members(self) -> list[bytes]:
        tree = self.controller.state.tree
        return sorted(cast(dict[bytes, int], tree.members)) if tree is not None else []

    def controller_call(self, op: dict, call: Callable[[], Any], names: Callable[[Any], list]) -> Any:
        """Run one controller operation and record its sub-vector (draws named by spec 11.2)."""
        before = _controller_state(self.controller)
        start = len(self.rng.log)
        result = call()
        draws = self.rng.log[start:]
        entry: dict[str, Any] = {"role": "controller", "state_before": before,
                 "input": {**op, "draws": _named(draws, names(result))}}
        self.names += names(result)
        entry["output"] = {}
        entry["state_after"] = None
        self.roles.append(entry)
        return result, entry


def _is_hex(text: str) -> bool:
    try:
        bytes.fromhex(text)
    except ValueError:
        return False
    return len(text) % 2 == 0 and text == text.lower()


def _kid_keys(state: dict) -> dict[int, str]:
    tree = state.get("tree")
    return {} if tree is None else {kid: key for _, _, kid, key in tree["nodes"]}


def _resync_intermediates(world: _World, resyncs: Mapping[bytes, bytes]) -> dict:
    """Spec 4.3: per member, the path payload (CBOR, before sealing) and the HPKE info."""
    out = {}
    tree = _present(world.controller.state.tree, "the controller's tree")
    for member, message in resyncs.items():
        _, m = gk.decode_message(message)
        keys = tree.member_keys(member)
        payload = cbor.encode({1: keys.arity, 2: keys.position, 3: [[kid, key] for kid, key in keys.path]})
        out[member.hex()] = {"payload": payload.hex(), "info": gk._resync_info(m[3], m[4], m[5], member).hex(),
                             "enc": m[7].hex()}
    return out


def _rekey_intermediates(world: _World, message: bytes, before: dict) -> dict:
    """Spec 5.1: every key made (path secrets, in the order of the node list) and every wrap in the order sent."""
    _, m = gk.decode_message(message)
    tree = _present(world.controller.state.tree, "the controller's tree")
    made = [{"level": level, "position": position, "kid": kid, "key": tree.key(level, position)[1].hex()}
            for level, position, kid in m[8] if kid != 0]
    known = {**_kid_keys(before), **{e["kid"]: e["key"] for e in made}}
    wraps = [{"kid": kid, "kek": kek, "key": known[kid], "kek_key": known[kek],
              "nonce": (b"\0\0\0\0" + kid.to_bytes(8, "big")).hex(),
              "aad": lkh._wrap_ad(tree.context, kid, kek).hex(), "ct": ct.hex()} for kid, kek, ct in m[9]]
    return {"context": tree.context.hex(), "path_secrets": made, "wraps": wraps}


def _data_intermediates(message: bytes, group_key: bytes) -> dict:
    _, m = gk.decode_message(message)
    return {"data_key": gk._data_key(group_key, m[3], m[4], m[6]).hex(),
            "nonce": gk._data_nonce(m[5]).hex(), "aad": cbor.encode({k: m[k] for k in range(1, 7)}).hex()}


def _step(world: _World, step: Mapping[str, Any]) -> dict:
    op = str_field(step, "op")
    out: dict[str, Any] = {}
    world.roles, world.names = [], []
    ctl = world.controller
    if op == "start":
        members = hex_list_field(step, "members")
        out["checkpoint"] = world.provision(members)
        resyncs, entry = world.controller_call(
            {"op": "start_epoch", "members": {m.hex(): world.devices[m][1].hex() for m in sorted(members)}},
            lambda: ctl.start_epoch({m: world.devices[m][1] for m in members}, world.rng),
            lambda _: _start_names(_present(ctl.state.tree, "the controller's tree"), members))
        entry["output"] = {"resyncs": {m.hex(): r.hex() for m, r in resyncs.items()}}
        entry["state_after"] = _controller_state(ctl)
        out["intermediates"] = {"resyncs": _resync_intermediates(world, resyncs)}
        for m, message in resyncs.items():
            world.receive(m, message)
        out["resyncs"] = {m.hex(): message.hex() for m, message in resyncs.items()}
    elif op == "rekey":
        joins, leaves = hex_list_field(step, "joins"), hex_list_field(step, "leaves")
        staying = [m for m in world.members() if m not in leaves]
        checkpoint = world.provision(joins)
        if checkpoint is not None:
            out["checkpoint"] = checkpoint
        before = _controller_state(ctl)

        def names(result: tuple[bytes, dict]) -> list:
            _, m = gk.decode_message(result[0])
            return _rekey_names(lkh.Rekey(m[7], tuple(tuple(n) for n in m[8]), ()), joins)

        (message, welcomes), entry = world.controller_call(
            {"op": "rekey", "joins": {m.hex(): world.devices[m][1].hex() for m in sorted(joins)},
             "leaves": sorted(m.hex() for m in leaves)},
            lambda: ctl.rekey({m: world.devices[m][1] for m in joins}, leaves, world.rng), names)
        entry["output"] = {"rekey": message.hex(), "welcomes": {m.hex(): w.hex() for m, w in welcomes.items()}}
        entry["state_after"] = _controller_state(ctl)
        out["intermediates"] = {**_rekey_intermediates(world, message, before),
                                "welcomes": _resync_intermediates(world, welcomes)}
        for m in leaves:
            e = world.receive(m, message, refusal=True)
            if isinstance(e, UsappError):  # a leaver learns that it was removed (spec 5.2)
                out.setdefault("leavers_refuse", []).append(type(e).__name__)
        for m in staying:
            world.receive(m, message)
        for m, welcome in welcomes.items():
            world.receive(m, welcome)
        out["rekey"] = message.hex()
        out["welcomes"] = {m.hex(): w.hex() for m, w in welcomes.items()}
    elif op == "data":
        plaintext = bytes_field(step, "plaintext")
        message, entry = world.controller_call({"op": "send", "plaintext": plaintext.hex()},
                                               lambda: ctl.send(plaintext), lambda _: [])
        entry["output"] = {"data": message.hex()}
        entry["state_after"] = _controller_state(ctl)
        out["intermediates"] = _data_intermediates(message, _present(ctl.state.tree, "the tree").group_key)
        for m in world.members():
            if world.receive(m, message) != plaintext:
                raise VectorMismatchError("data: a member did not open the plaintext")
        out["data"] = message.hex()
    elif op == "resync":
        member = bytes_field(step, "member")
        message, entry = world.controller_call({"op": "resync", "member": member.hex()},
                                               lambda: ctl.resync(member, world.rng),
                                               lambda _: _resync_names([member]))
        entry["output"] = {"resync": message.hex()}
        entry["state_after"] = _controller_state(ctl)
        out["intermediates"] = {"resyncs": _resync_intermediates(world, {member: message})}
        world.receive(member, message)
        out["resync"] = message.hex()
    elif op == "command":
        world.command_seq += 1
        action = str_field(step, "action")
        members = world.members()
        directory = {m: world.devices[m][1] for m in members}
        args = _command_args(action, step, world.group, directory)
        body = gk.command_body(world.group, world.command_seq, action, args, epoch=ctl.state.epoch,
                               not_after=world.now + world.lifetime)
        signers = [small_int_field({"s": s}, "s", low=1, high=MAX_PARTIES) for s in list_field(step, "signers", max_items=MAX_PARTIES)]
        if len(set(signers)) != len(signers) or not all(1 <= i <= len(world.operators) for i in signers):
            raise VectorMismatchError("field 'signers' must list distinct operators")
        message = world.sign(body, signers)
        out["intermediates"] = {"tbs": gk.command_tbs(body).hex()}
        for m in members:
            world.receive(m, message, world.now)
        world.last_command = message
        out["command"] = message.hex()
        if action == "rekey-group":
            out["directory_hash"] = args[3].hex()
            new = gk.Controller(gk.ControllerState(world.group, args[1], world.arity,
                                                   bytes_field(step, "new_controller_key")))
            world.controller = new
            resyncs, entry = world.controller_call(
                {"op": "recover", "command": message.hex(), "command_key": gk.command_key(world.info).hex(),
                 "members": {m.hex(): d.hex() for m, d in sorted(directory.items())}},
                lambda: new.recover(message, gk.command_key(world.info), directory, world.rng),
                lambda _: _start_names(_present(new.state.tree, "the controller's tree"), members))
            entry["output"] = {"resyncs": {m.hex(): r.hex() for m, r in resyncs.items()}}
            entry["state_after"] = _controller_state(new)
            out["intermediates"]["resyncs"] = _resync_intermediates(world, resyncs)
            for m, r in resyncs.items():
                world.receive(m, r)
            out["resyncs"] = {m.hex(): r.hex() for m, r in resyncs.items()}
    elif op == "replay":
        refused = []
        for m in hex_list_field(step, "members"):
            e = world.receive(m, world.last_command, world.now, refusal=True)
            if not isinstance(e, UsappError):
                raise VectorMismatchError(f"replay: member {m.hex()} accepted the replayed command")
            refused.append(type(e).__name__)
        out["refused"] = refused
    else:
        raise VectorMismatchError(f"unknown step op {op!r}")
    out["draws"] = _named(world.rng.take(), world.names)
    out["roles"] = world.roles
    out["views"] = {m.hex(): {"group_kid": _present(world.meter(m).state.keys, "a member's keys").group_kid,
                              "group_key": world.meter(m).group_key.hex()} for m in world.members()}
    return out


def _command_args(action: str, step: Mapping[str, Any], group: bytes, directory: dict[bytes, bytes]) -> dict:
    if action in ("disconnect", "reconnect"):
        return {1: hex_list_field(step, "targets")}
    if action == "rekey-group":
        key = gk.Controller(gk.ControllerState(b"-", 0, 2, bytes_field(step, "new_controller_key"))).public_key
        epoch = small_int_field(step, "epoch", low=0, high=UINT32)
        return {1: epoch, 2: key, 3: gk.directory_hash(group, epoch, directory)}
    if action == "set-command-key":
        return {1: bytes_field(step, "key")}
    return {}


_INPUTS = {"op", "members", "joins", "leaves", "plaintext", "member", "action", "targets", "signers",
           "new_controller_key", "epoch", "key"}


def _flat_draws(v: Mapping[str, Any]) -> list[bytes]:
    """Every draw of the run in order: setup_draws, then each step's draws."""
    out = []
    for where, items in [("setup_draws", list_field(v, "setup_draws"))] + [
            (f"steps[{i}].draws", list_field(s, "draws")) for i, s in enumerate(list_field(v, "steps", max_items=MAX_STEPS))]:
        for k, item in enumerate(items):
            if not isinstance(item, dict):
                raise VectorMismatchError(f"field '{where}[{k}]' must be an object")
            out.append(bytes_field(item, "hex"))
    return out


def _outputs(v: Mapping[str, Any], rng: Any) -> tuple[dict, list[dict]]:
    world = _World(v, rng)
    steps = list_field(v, "steps", max_items=MAX_STEPS)
    if not steps or any(not isinstance(s, dict) for s in steps):
        raise VectorMismatchError("field 'steps' must be a non-empty list of objects")
    top = {"setup_draws": world.setup_draws, "setup": world.setup, "command_key": gk.command_key(world.info).hex(),
           "controller_public": world.controller.public_key.hex()}
    return top, [_step(world, {k: s[k] for k in s if k in _INPUTS}) for s in steps]


def _run(v: Mapping[str, Any]) -> None:
    """Replay the run from its recorded draws alone, then check they are HMAC_DRBG(run_seed)'s."""
    steps = list_field(v, "steps", max_items=MAX_STEPS)
    draws = _flat_draws(v)
    replay = ReplayRandom(draws)
    top, computed = recompute("run", lambda: _outputs(v, replay))
    if not replay.exhausted:
        raise VectorMismatchError("the run consumed fewer draws than the vector records")
    for name, value in top.items():
        expect(name, field(v, name), value)
    expect_steps(steps, computed, _INPUTS)
    drbg = HmacDrbg.from_seed(str_field(v, "run_seed"))
    for k, d in enumerate(draws):
        if drbg.random_bytes(len(d)) != d:
            raise VectorMismatchError(f"draw {k} is not HMAC_DRBG(run_seed)'s")


# ---------------------------------------------------------------------------
# Invalid vectors: refusals with the spec's error name
# ---------------------------------------------------------------------------


def _refuse(v: Mapping[str, Any], attempt: Callable[[], Any]) -> None:
    """An invalid vector's step: ``result`` must be "invalid"; the shared check then requires exactly ``error``."""
    if vector_result(v) != "invalid":
        raise VectorMismatchError("field 'result' must be 'invalid' for this operation", field="result")
    expect_refusal(v, attempt)


def _meter_from(v: Mapping[str, Any]) -> gk.Meter:
    """A meter from a vector's ``meter`` object (spec 3.2; its keys are for its epoch's context, spec 3.3)."""
    s = field(v, "meter")
    if not isinstance(s, dict):
        raise VectorMismatchError("field 'meter' must be an object")
    group, epoch = bytes_field(s, "group"), small_int_field(s, "epoch", low=0, high=UINT32)
    keys = field(s, "keys")
    member_keys = None
    if keys is not None:
        path = list_field(keys, "path")
        if any(not isinstance(e, list) or len(e) != 2 for e in path):
            raise VectorMismatchError("field 'meter.keys.path' must hold [kid, key] pairs")
        member_keys = lkh.MemberKeys(small_int_field(keys, "arity", low=2, high=MAX_ARITY), gk._lkh_context(group, epoch),
                                     small_int_field(keys, "position", low=0, high=UINT32),
                                     tuple((small_int_field({"k": k}, "k", low=0, high=UINT32), bytes_field({"x": x}, "x"))
                                           for k, x in path))
    supply = field(s, "supply_on")
    if not isinstance(supply, bool):
        raise VectorMismatchError("field 'meter.supply_on' must be a boolean")
    return gk.Meter(gk.MeterState(group, bytes_field(s, "member"), bytes_field(s, "device_private"),
                                  command_key=bytes_field(s, "command_key"),
                                  controller_key=bytes_field(s, "controller_key"), epoch=epoch,
                                  seq=small_int_field(s, "seq", low=0, high=UINT64), command_seq=small_int_field(s, "command_seq", low=0, high=UINT64),
                                  keys=member_keys, supply_on=supply))


def _meter_json(meter: gk.Meter) -> dict:
    st = meter.state
    return {"group": st.group.hex(), "member": st.member.hex(), "device_private": st.device_private.hex(),
            **_meter_state(st)}


def _meter_receive(v: Mapping[str, Any]) -> None:
    meter = recompute("meter", lambda: _meter_from(v))
    before = _meter_json(meter)
    message = bytes_field(v, "message")
    now = field(v, "now")
    if now is not None:
        now = small_int_field(v, "now", low=0, high=UINT64)
    _refuse(v, lambda: meter.receive(message, now))
    if _meter_json(meter) != before:
        raise VectorMismatchError("field 'meter': the refusal changed the meter's state")


def _controller_recover(v: Mapping[str, Any]) -> None:
    members = field(v, "members")
    if not isinstance(members, dict):
        raise VectorMismatchError("field 'members' must be an object")
    directory = {bytes.fromhex(k): bytes_field(members, k) for k in members if _is_hex(k)}
    controller = recompute("controller", lambda: gk.Controller(gk.ControllerState(
        bytes_field(v, "group"), small_int_field(v, "epoch", low=0, high=UINT32), small_int_field(v, "arity", low=0, high=MAX_ARITY),
        bytes_field(v, "signing_key"))))
    _refuse(v, lambda: controller.recover(bytes_field(v, "message"), bytes_field(v, "command_key"),
                                                  directory, ReplayRandom([])))
    if controller.state.tree is not None or controller.state.seq != 0:
        raise VectorMismatchError("the refused recovery changed the controller's state")


def _operator_from(v: Mapping[str, Any]) -> gk.Operator:
    """An operator restored from a vector (spec 8.3; specs/frost.md 5.5): its key package, the commitments it
    has spent and the SHA-256 digests of the tbs it approved; a restored operator holds no pending nonce."""
    kp = field(v, "key_package")
    if not isinstance(kp, dict):
        raise VectorMismatchError("field 'key_package' must be an object")
    package = frost.KeyPackage(small_int_field(kp, "identifier", low=0, high=UINT64),
                               ed25519.DeserializeScalar(bytes_field(kp, "secret_share")),
                               ed25519.DeserializeElement(bytes_field(kp, "verifying_share")),
                               ed25519.DeserializeElement(bytes_field(kp, "group_public_key")),
                               small_int_field(kp, "min_participants", low=0, high=MAX_PARTIES), small_int_field(kp, "max_participants", low=0, high=MAX_PARTIES))
    signer = frost.Signer(package, set(hex_list_field(v, "spent")))
    return gk.Operator(gk.OperatorState(signer, set(hex_list_field(v, "approved"))))


def _operator_sign(v: Mapping[str, Any]) -> None:
    """Operator.sign (spec 8.3, round two) of the body of ``message`` with ``commitments`` MUST refuse."""
    op = recompute("operator", lambda: _operator_from(v))
    kind, m = recompute("message", lambda: gk.decode_message(bytes_field(v, "message")))
    body = gk._unsigned(kind, m)
    def read(raw: bytes) -> frost.SigningCommitments:
        return recompute("commitments", lambda: frost.SigningCommitments.from_bytes(raw))

    commitments = [read(c) for c in hex_list_field(v, "commitments")]
    _refuse(v, lambda: op.sign(body, commitments))


def _meter_provision(v: Mapping[str, Any]) -> None:
    """Meter.provision (spec 8.6) from ``checkpoint`` MUST refuse."""
    _refuse(v, lambda: gk.Meter.provision(bytes_field(v, "group"), bytes_field(v, "member"),
                                                 bytes_field(v, "device_private"), bytes_field(v, "command_key"),
                                                 bytes_field(v, "checkpoint"), small_int_field(v, "now", low=0, high=UINT64)))


def _controller_rekey(v: Mapping[str, Any]) -> None:
    """Controller.rekey (spec 5.1) of a started epoch MUST refuse the batch and keep its state."""
    members = field(v, "members")
    joins = field(v, "joins")
    if not isinstance(members, dict) or not isinstance(joins, dict):
        raise VectorMismatchError("fields 'members' and 'joins' must be objects")
    directory = {bytes.fromhex(k): bytes_field(members, k) for k in members if _is_hex(k)}
    joiners = {bytes.fromhex(k): bytes_field(joins, k) for k in joins if _is_hex(k)}
    controller = recompute("controller", lambda: gk.Controller(gk.ControllerState(
        bytes_field(v, "group"), small_int_field(v, "epoch", low=0, high=UINT32), small_int_field(v, "arity", low=0, high=MAX_ARITY),
        bytes_field(v, "signing_key"))))
    start = ReplayRandom(hex_list_field(v, "start_draws"))
    recompute("start_draws", lambda: controller.start_epoch(directory, start))
    if not start.exhausted:
        raise VectorMismatchError("field 'start_draws': start_epoch consumed fewer draws than recorded")
    before = _controller_state(controller)
    _refuse(v, lambda: controller.rekey(joiners, hex_list_field(v, "leaves"), ReplayRandom([])))
    if _controller_state(controller) != before:
        raise VectorMismatchError("the refused rekey changed the controller's state")


NOTES = {
    "truncated": "the message lacks its last byte (spec 4.1: DecodeError)",
    "trailing-bytes": "a byte follows the CBOR item (DecodeError)",
    "non-canonical": "the CBOR is not the deterministic encoding, e.g. a non-shortest head (DecodeError)",
    "wrong-version": "key 1 is not 1 (DecodeError)",
    "wrong-kind": "key 2 names no message kind (DecodeError)",
    "malformed-field": "a field outside its CDDL type, length or range (spec 4.2-4.6, DecodeError)",
    "tampered-signature": "one byte of the signature changed (VerificationError)",
    "tampered-ciphertext": "the data ciphertext changed and the message re-signed by the controller: the AEAD "
                           "refuses it (spec 6.2, VerificationError)",
    "tampered-wrap": "a wrapped key changed and the rekey re-signed by the controller (spec 5.2, VerificationError)",
    "missing-wrap": "the wrap the meter needs removed and the rekey re-signed (spec 5.2, ResyncRequiredError)",
    "wrong-group": "addressed to another group (spec 5.3, VerificationError)",
    "wrong-signer": "signed by a key other than the one the meter checks: a routine message by another Ed25519 key, "
                    "a command by the controller key (spec 5.3, VerificationError)",
    "wrong-member": "a resync addressed to another member (spec 7.1, VerificationError)",
    "replay": "a message or command number at or below the meter's (spec 5.3, 8.4: ReplayError)",
    "wrong-epoch": "a message or command for another epoch than the meter's (spec 5.3, 8.4: StateError)",
    "expired": "the meter's clock is past the not-after (spec 8.4 step 3, StateError)",
    "too-far-ahead": "the not-after is more than MAX_LIFETIME ahead of the meter's clock (spec 8.4 step 3, "
                     "StateError)",
    "no-clock": "a command given to a meter without its clock (now is null; spec 5.3, ParameterError)",
    "removed-member": "a rekey that empties this meter's leaf (spec 5.2, StateError)",
    "stale-group-key": "data under a group key the meter does not hold (spec 6.2, ResyncRequiredError)",
    "epoch-rollback": "a checkpoint of an earlier epoch, or another controller key for the meter's epoch "
                      "(spec 8.6, StateError)",
    "wrong-directory": "a rekey-group whose directory hash is not the hash of the directory given (spec 9.2, "
                       "VerificationError)",
    "wrong-command": "recovery from a message that is not the operators' rekey-group for this controller "
                     "(spec 9.2, VerificationError)",
    "not-approved": "an operator asked to sign (round two) a command or checkpoint whose tbs it did not approve "
                    "(spec 8.3, StateError)",
    "nonce-reuse": "an operator asked to sign again with round-one commitments it has already spent "
                   "(spec 8.3, specs/frost.md 5.5, ReplayError)",
    "no-pending-nonce": "an operator restored from its record (no pending nonce) asked to sign with commitments it "
                        "holds no nonces for (specs/frost.md 5.5, StateError)",
    "not-a-checkpoint": "provisioning from an operator-signed message that is not a checkpoint (spec 8.6, "
                        "DecodeError)",
    "non-member-leaver": "a rekey batch removing a member not in the tree (spec 5.1, StateError)",
    "duplicate-joiner": "a rekey batch adding a member already in the tree (spec 5.1, StateError)",
    "join-and-leave": "a rekey batch in which one member both joins and leaves (spec 5.1, StateError)",
    "duplicate-leaver": "a rekey batch listing one leaver twice (spec 5.1, ParameterError)",
    "invalid-point": "a public key of a command or checkpoint that is not a canonical encoding of an Ed25519 "
                     "point of prime order other than the identity, here the point (0, -1) of order 2 (spec 3.2, "
                     "4.5, 4.6: DecodeError)",
    "small-order-key": "a joiner's HPKE public key is a small-order X25519 point, here u = 0 (spec 5.1, RFC 9180 "
                       "section 7.1.4, DecodeError)",
    "empty-batch": "a rekey batch with neither joins nor leaves (spec 5.1, ParameterError)",
}


def _mutate_cbor(message: bytes, change: Callable[[dict], None], key: bytes | None = None) -> bytes:
    """Decode, change the map, and re-sign it with ``key`` (the controller's) when given."""
    m = cbor.decode(message, max_size=gk.MAX_MESSAGE_BYTES)
    kind = m[2]
    change(m)
    if key is not None:
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
        body = {k: val for k, val in m.items() if k != gk._SIG_KEY[kind]}
        m[gk._SIG_KEY[kind]] = Ed25519PrivateKey.from_private_bytes(key).sign(gk.message_tbs(kind, body))
    return cbor.encode(m)


def _flip_last(message: bytes) -> bytes:
    return message[:-1] + bytes([message[-1] ^ 1])


def _negatives() -> list[dict]:
    """Refusals on a small run (arity 2, 4 members, 2 of 3 operators), each checked against the real code."""
    name = "negative"
    v = _case_inputs(name, 2, 5)
    world = _World(v, HmacDrbg.from_seed(v["run_seed"]))
    members = [_member(i) for i in range(4)]
    ctl_key = bytes_field(v, "controller_key")
    world.provision(members)
    resyncs = world.controller.start_epoch({m: world.devices[m][1] for m in members}, world.rng)
    for m, r in resyncs.items():
        world.meter(m).receive(r)
    m0, m1 = members[0], members[1]
    fresh = copy.deepcopy(world.meter(m0))
    data = world.controller.send(b"tariff 3 from 06:00")
    command = world.sign(gk.command_body(world.group, 1, "disconnect", {1: [m0]}, epoch=0,
                                         not_after=world.now + world.lifetime), [1, 2])
    out: list[dict] = []

    def add(vname: str, flags: list[str], error: str, meter: gk.Meter, message: bytes,
            now: int | None = world.now) -> None:
        vec = {"operation": "meter-receive", "name": vname, "result": "invalid", "flags": flags, "error": error,
               "meter": _meter_json(meter), "message": message.hex(), "now": now}
        _meter_receive(vec)  # the real code refuses it with exactly this error
        out.append(vec)

    add("data-truncated", ["truncated"], "DecodeError", fresh, data[:-1])
    add("data-trailing-byte", ["trailing-bytes"], "DecodeError", fresh, data + b"\x00")
    add("data-non-shortest-map-head", ["non-canonical"], "DecodeError", fresh, bytes([0xb8, data[0] - 0xa0]) + data[1:])
    add("data-version-2", ["wrong-version"], "DecodeError", fresh, _mutate_cbor(data, lambda m: m.update({1: 2}), ctl_key))
    add("data-unknown-kind", ["wrong-kind"], "DecodeError", fresh, _mutate_cbor(data, lambda m: m.update({2: "datum"})))
    add("data-signature-63-bytes", ["malformed-field", "truncated"], "DecodeError", fresh,
        _mutate_cbor(data, lambda m: m.update({8: m[8][:-1]})))
    add("data-tampered-signature", ["tampered-signature"], "VerificationError", fresh, _flip_last(data))
    add("data-tampered-ciphertext", ["tampered-ciphertext"], "VerificationError", fresh,
        _mutate_cbor(data, lambda m: m.update({7: _flip_last(m[7])}), ctl_key))
    add("data-wrong-group", ["wrong-group"], "VerificationError", fresh,
        _mutate_cbor(data, lambda m: m.update({3: b"nbh-0018"}), ctl_key))
    other_key = HmacDrbg.from_seed(SEED + "negative/other-key").random_bytes(32)
    add("data-signed-by-another-key", ["wrong-signer"], "VerificationError", fresh,
        _mutate_cbor(data, lambda m: None, other_key))
    add("data-for-epoch-1", ["wrong-epoch"], "StateError", fresh,
        _mutate_cbor(data, lambda m: m.update({4: 1}), ctl_key))
    after_data = copy.deepcopy(fresh)
    after_data.receive(data)
    add("data-replayed", ["replay"], "ReplayError", after_data, data)
    add("resync-replayed", ["replay"], "ReplayError", fresh, resyncs[m0])
    add("resync-for-another-member", ["wrong-member"], "VerificationError", fresh, resyncs[m1])
    # A rekey removing m1 (m0's sibling): m1 refuses it; tampered or stripped copies at m0.
    m1_before = copy.deepcopy(world.meter(m1))
    rekey, _ = world.controller.rekey({}, [m1], world.rng)
    add("rekey-to-the-leaver", ["removed-member"], "StateError", m1_before, rekey)
    add("rekey-tampered-wrap", ["tampered-wrap"], "VerificationError", fresh,
        _mutate_cbor(rekey, lambda m: m[9][0].__setitem__(2, _flip_last(m[9][0][2])), ctl_key))
    add("rekey-without-the-needed-wraps", ["missing-wrap"], "ResyncRequiredError", fresh,
        _mutate_cbor(rekey, lambda m: m.update({9: []}), ctl_key))
    add("rekey-node-outside-the-tree", ["malformed-field"], "DecodeError", fresh,
        _mutate_cbor(rekey, lambda m: m[8].insert(0, [0, 4, 99]), ctl_key))
    after_rekey = copy.deepcopy(fresh)
    after_rekey.receive(rekey)
    add("rekey-replayed", ["replay"], "ReplayError", after_rekey, rekey)
    moved_on = copy.deepcopy(fresh)  # a meter that went on to epoch 1 (and awaits its resync)
    moved_on.state.epoch, moved_on.state.seq, moved_on.state.keys = 1, 0, None
    add("rekey-of-epoch-0-at-a-meter-in-epoch-1", ["wrong-epoch"], "StateError", moved_on, rekey)
    data2 = world.controller.send(b"after the leave")
    add("data-under-a-group-key-the-meter-lacks", ["stale-group-key"], "ResyncRequiredError", fresh, data2)
    # Commands and checkpoints.
    add("command-tampered-signature", ["tampered-signature"], "VerificationError", fresh, _flip_last(command))
    add("command-signed-by-the-controller-key", ["wrong-signer"], "VerificationError", fresh,
        _mutate_cbor(command, lambda m: None, ctl_key))
    after_command = copy.deepcopy(fresh)
    after_command.receive(command, world.now)
    add("command-replayed", ["replay"], "ReplayError", after_command, command)
    in_epoch_1 = copy.deepcopy(fresh)
    in_epoch_1.state.epoch, in_epoch_1.state.keys = 1, None
    add("command-for-epoch-0-at-a-meter-in-epoch-1", ["wrong-epoch"], "StateError", in_epoch_1, command)
    add("command-expired", ["expired"], "StateError", fresh, command, world.now + world.lifetime + 1)
    add("command-not-after-too-far-ahead", ["too-far-ahead"], "StateError", fresh, command,
        world.now + world.lifetime - gk.MAX_LIFETIME - 1)
    add("command-without-a-clock", ["no-clock"], "ParameterError", fresh, command, None)
    add("command-unsorted-targets", ["malformed-field"], "DecodeError", fresh,
        _mutate_cbor(command, lambda m: m[6].update({1: [m1, m0]})))
    add("command-rekey-group-to-the-same-epoch", ["malformed-field"], "DecodeError", fresh,
        _mutate_cbor(command, lambda m: m.update({5: "rekey-group", 6: {1: 0, 2: world.controller.public_key,
                                                                         3: bytes(32)}})))
    checkpoint = world.sign(gk.checkpoint_body(world.group, 0, 0, world.controller.public_key,
                                               world.now + world.lifetime), [2, 3])
    order_two = bytes.fromhex("ec" + "ff" * 30 + "7f")  # y = p - 1, x = 0: the point (0, -1)
    add("command-set-command-key-to-a-point-of-order-2", ["invalid-point"], "DecodeError", fresh,
        _mutate_cbor(command, lambda m: m.update({5: "set-command-key", 6: {1: order_two}})))
    add("checkpoint-controller-key-of-order-2", ["invalid-point"], "DecodeError", fresh,
        _mutate_cbor(checkpoint, lambda m: m.update({6: order_two})))
    add("checkpoint-behind-the-meter", ["replay"], "ReplayError", after_command, checkpoint)
    other_controller = gk.Controller(gk.ControllerState(world.group, 0, 2, other_key)).public_key
    rollback = world.sign(gk.checkpoint_body(world.group, 1, 0, other_controller, world.now + world.lifetime),
                          [1, 3])
    add("checkpoint-another-controller-key-for-the-epoch", ["epoch-rollback"], "StateError", fresh, rollback)
    in_epoch_2 = copy.deepcopy(in_epoch_1)
    in_epoch_2.state.epoch = 2
    add("checkpoint-of-an-earlier-epoch", ["epoch-rollback"], "StateError", in_epoch_2, checkpoint)
    for kind, message in (("resync", resyncs[m0]), ("rekey", rekey), ("command", command), ("checkpoint", checkpoint)):
        add(f"{kind}-truncated", ["truncated"], "DecodeError", fresh, message[:-1])
        add(f"{kind}-trailing-byte", ["trailing-bytes"], "DecodeError", fresh, message + b"\x00")
    # The new controller's recovery refuses a command that does not match it (spec 9.2).
    new_key = HmacDrbg.from_seed(SEED + "negative/new-controller").random_bytes(32)
    new_public = gk.Controller(gk.ControllerState(world.group, 1, 2, new_key)).public_key
    directory = {m: world.devices[m][1] for m in world.members()}
    rekey_group = world.sign(gk.command_body(world.group, 2, "rekey-group",
                                             {1: 1, 2: new_public, 3: gk.directory_hash(world.group, 1, directory)},
                                             epoch=0, not_after=world.now + world.lifetime), [1, 2])
    phantom = {**directory, _member(4): world.devices[_member(4)][1]}

    def recover(vname: str, flags: list[str], error: str, message: bytes, members: dict) -> None:
        vec = {"operation": "controller-recover", "name": vname, "result": "invalid", "flags": flags,
               "error": error, "group": world.group.hex(), "epoch": 1, "arity": 2, "signing_key": new_key.hex(),
               "command_key": gk.command_key(world.info).hex(), "message": message.hex(),
               "members": {m.hex(): d.hex() for m, d in sorted(members.items())}}
        _controller_recover(vec)
        out.append(vec)

    recover("recover-with-a-phantom-member", ["wrong-directory"], "VerificationError", rekey_group, phantom)
    recover("recover-without-a-member", ["wrong-directory"], "VerificationError", rekey_group,
            {m: d for m, d in directory.items() if m != m0})
    recover("recover-from-a-checkpoint", ["wrong-command"], "VerificationError", checkpoint, directory)
    recover("recover-signed-by-the-controller-key", ["wrong-signer"], "VerificationError",
            _mutate_cbor(rekey_group, lambda m: None, ctl_key), directory)
    # Operators (spec 8.3): round two for a body not approved, and with nonces already spent.
    op = world.operators[0]
    kp = op.state.signer.key_package

    def operator(vname: str, flags: list[str], error: str, approved: list[bytes], spent: list[bytes],
                 message: bytes, commitments: list[bytes]) -> None:
        vec = {"operation": "operator-sign", "name": vname, "result": "invalid", "flags": flags, "error": error,
               "key_package": {"identifier": kp.identifier,
                               "secret_share": ed25519.SerializeScalar(kp.secret_share).hex(),
                               "verifying_share": ed25519.SerializeElement(kp.verifying_share).hex(),
                               "group_public_key": ed25519.SerializeElement(kp.group_public_key).hex(),
                               "min_participants": kp.MIN_PARTICIPANTS, "max_participants": kp.MAX_PARTICIPANTS},
               "approved": [a.hex() for a in approved], "spent": [c.hex() for c in spent],
               "message": message.hex(), "commitments": [c.hex() for c in commitments]}
        _operator_sign(vec)
        out.append(vec)

    def digest(message: bytes) -> bytes:
        kind, m = gk.decode_message(message)
        return hashlib.sha256(gk.command_tbs(gk._unsigned(kind, m))).digest()

    c1 = world.operators[0].commit(world.rng).to_bytes()
    c2 = world.operators[1].commit(world.rng).to_bytes()
    operator("operator-signs-a-command-it-did-not-approve", ["not-approved"], "StateError", [digest(checkpoint)], [],
             command, [c1, c2])
    operator("operator-signs-with-spent-nonces", ["nonce-reuse"], "ReplayError", [digest(command)], [c1],
             command, [c1, c2])
    operator("operator-signs-without-pending-nonces", ["no-pending-nonce"], "StateError", [digest(command)], [],
             command, [c1, c2])
    # Provisioning (spec 8.6): a checkpoint the new meter MUST refuse.
    newcomer = _member(4)

    def provision(vname: str, flags: list[str], error: str, message: bytes, now: int = world.now) -> None:
        vec = {"operation": "meter-provision", "name": vname, "result": "invalid", "flags": flags, "error": error,
               "group": world.group.hex(), "member": newcomer.hex(),
               "device_private": world.devices[newcomer][0].hex(), "command_key": gk.command_key(world.info).hex(),
               "checkpoint": message.hex(), "now": now}
        _meter_provision(vec)
        out.append(vec)

    provision("provision-tampered-signature", ["tampered-signature"], "VerificationError", _flip_last(checkpoint))
    provision("provision-signed-by-the-controller-key", ["wrong-signer"], "VerificationError",
              _mutate_cbor(checkpoint, lambda m: None, ctl_key))
    provision("provision-epoch-changed-after-signing", ["wrong-epoch", "tampered-signature"], "VerificationError",
              _mutate_cbor(checkpoint, lambda m: m.update({5: 1})))
    provision("provision-wrong-group", ["wrong-group"], "VerificationError",
              _mutate_cbor(checkpoint, lambda m: m.update({3: b"nbh-0018"})))
    provision("provision-expired-checkpoint", ["expired"], "StateError", checkpoint, world.now + world.lifetime + 1)
    provision("provision-checkpoint-too-far-ahead", ["too-far-ahead"], "StateError", checkpoint,
              world.now + world.lifetime - gk.MAX_LIFETIME - 1)
    provision("provision-from-a-command", ["not-a-checkpoint"], "DecodeError", command)
    provision("provision-truncated", ["truncated"], "DecodeError", checkpoint[:-1])
    # The controller's rekey refusals (spec 5.1), on a started epoch of 4 members.
    rekey_start = HmacDrbg.from_seed(SEED + "negative/rekey-start")
    start_rng = _Recorder(rekey_start)
    controller = gk.Controller(gk.ControllerState(world.group, 0, 2, ctl_key))
    start_members = {m: world.devices[m][1] for m in members}
    controller.start_epoch(start_members, start_rng)
    start_draws = start_rng.take()

    def refuse_rekey(vname: str, flags: list[str], error: str, joins: dict, leaves: list[bytes]) -> None:
        vec = {"operation": "controller-rekey", "name": vname, "result": "invalid", "flags": flags, "error": error,
               "group": world.group.hex(), "epoch": 0, "arity": 2, "signing_key": ctl_key.hex(),
               "members": {m.hex(): d.hex() for m, d in sorted(start_members.items())},
               "start_draws": [d.hex() for d in start_draws],
               "joins": {m.hex(): d.hex() for m, d in sorted(joins.items())}, "leaves": [m.hex() for m in leaves]}
        _controller_rekey(vec)
        out.append(vec)

    joiner = {newcomer: world.devices[newcomer][1]}
    refuse_rekey("rekey-removes-a-non-member", ["non-member-leaver"], "StateError", {}, [newcomer])
    refuse_rekey("rekey-adds-a-member-again", ["duplicate-joiner"], "StateError", {m0: world.devices[m0][1]}, [])
    refuse_rekey("rekey-joins-and-leaves-the-same-member", ["join-and-leave"], "StateError",
                 {m1: world.devices[m1][1]}, [m1])
    refuse_rekey("rekey-lists-a-leaver-twice", ["duplicate-leaver"], "ParameterError", {}, [m1, m1])
    refuse_rekey("rekey-empty-batch", ["empty-batch"], "ParameterError", {}, [])
    refuse_rekey("rekey-joiner-key-31-bytes", ["malformed-field"], "DecodeError",
                 {newcomer: joiner[newcomer][:-1]}, [])
    refuse_rekey("rekey-joiner-key-of-small-order", ["small-order-key"], "DecodeError", {newcomer: bytes(32)}, [])
    return out


OPERATIONS = {"run": _run, "meter-receive": _meter_receive, "controller-recover": _controller_recover,
              "operator-sign": _operator_sign, "meter-provision": _meter_provision,
              "controller-rekey": _controller_rekey}


def verify_vector(vector: Mapping[str, Any]) -> None:
    dispatch(OPERATIONS, vector)


# ---------------------------------------------------------------------------
# Generation
# ---------------------------------------------------------------------------


def _member(i: int) -> bytes:
    return b"usapp-id-v1/meter/SM-%04d/1" % i


NOW = 1_767_225_600
"""2026-01-01T00:00:00Z, the meters' clock in every run."""
LIFETIME = 3600


def _case_inputs(name: str, arity: int, meters: int, operators: int = 3, threshold: int = 2) -> dict:
    seed = SEED + name
    rng = HmacDrbg.from_seed(seed + "/inputs")
    return {
        "operation": "run", "name": name, "group": b"nbh-0017".hex(), "arity": arity,
        "operators": operators, "threshold": threshold, "now": NOW, "lifetime": LIFETIME,
        "controller_key": rng.random_bytes(32).hex(),
        "meters": {_member(i).hex(): rng.random_bytes(32).hex() for i in range(meters)},
        "run_seed": seed + "/run",
    }


def _case(name: str, arity: int, meters: int, steps: list[dict], operators: int = 3, threshold: int = 2) -> dict:
    v = _case_inputs(name, arity, meters, operators, threshold)
    steps = [{k: (val.hex() if isinstance(val, bytes) else [x.hex() for x in val] if isinstance(val, list)
                  and val and isinstance(val[0], bytes) else val) for k, val in step.items()} for step in steps]
    top, outputs = _outputs({**v, "steps": steps}, HmacDrbg.from_seed(v["run_seed"]))
    v.update(top)
    v["steps"] = [{**step, **out} for step, out in zip(steps, outputs)]
    return v


def build() -> dict:
    m = _member
    new_controller = HmacDrbg.from_seed(SEED + "recovery/new-controller").random_bytes(32)
    vectors = [
        _case("joins-leaves-batch-data", 2, 6, [
            {"op": "start", "members": [m(i) for i in range(4)]},
            {"op": "data", "plaintext": b"tariff 2 from 17:00"},
            {"op": "rekey", "joins": [m(4)], "leaves": []},
            {"op": "rekey", "joins": [], "leaves": [m(1)]},
            {"op": "rekey", "joins": [m(5)], "leaves": [m(2), m(3)]},
            {"op": "data", "plaintext": b"demand response: shed 10%"},
            {"op": "resync", "member": m(0)},
        ]),
        _case("growth-arity-3", 3, 5, [
            {"op": "start", "members": [m(i) for i in range(3)]},
            {"op": "rekey", "joins": [m(3), m(4)], "leaves": []},
            {"op": "data", "plaintext": b"grown"},
        ]),
        _case("two-nodes-per-level", 2, 9, [
            {"op": "start", "members": [m(i) for i in range(8)]},
            {"op": "rekey", "joins": [], "leaves": [m(1), m(6)]},
            {"op": "rekey", "joins": [m(8)], "leaves": [m(3), m(4)]},
            {"op": "data", "plaintext": b"two subtrees rekeyed"},
        ]),
        _case("commands-and-recovery", 3, 6, [
            {"op": "start", "members": [m(i) for i in range(5)]},
            {"op": "command", "action": "disconnect", "targets": [m(3)], "signers": [1, 3]},
            {"op": "command", "action": "reconnect", "targets": [m(3)], "signers": [2, 3]},
            {"op": "command", "action": "rekey-group", "epoch": 1, "new_controller_key": new_controller,
             "signers": [2, 3]},
            {"op": "data", "plaintext": b"after recovery"},
            {"op": "command", "action": "disconnect-all", "signers": [1, 2, 3]},
            {"op": "rekey", "joins": [m(5)], "leaves": []},
            {"op": "replay", "members": [m(0), m(5)]},
            {"op": "command", "action": "reconnect-all", "signers": [3, 1]},
        ]),
    ] + _negatives()
    return {
        "protocol": PROTOCOL,
        "suite": SUITE,
        "source": "generated by the USaPP reference implementation; procedures in specs/groupkeys.md "
                  "(sections 3 to 9; the draws in 11.2, the format in 11.3) and specs/frost.md",
        "generated_by": (f"usapp vectors generate (HMAC_DRBG SHA-256 from_seed: inputs from {SEED}<name>/inputs, "
                         f"every draw of the run from {SEED}<name>/run; the recovery's new controller key from "
                         f"{SEED}recovery/new-controller; the negative vectors' extra keys from "
                         f"{SEED}negative/other-key and {SEED}negative/new-controller, the controller-rekey "
                         f"vectors' start_draws from {SEED}negative/rekey-start)"),
        "description": (
            "Group key runs (operation 'run', valid) and refusals (operations 'meter-receive', "
            "'meter-provision', 'operator-sign', 'controller-rekey' and 'controller-recover', result "
            "'invalid' with the spec's error name). The format of every field is "
            "specs/groupkeys.md section 11.3 and vectors/schema/groupkeys.json; the sequence of random_bytes "
            "calls of every operation is section 11.2. Every random value a run consumes is recorded by name and "
            "in order (setup_draws, then each step's draws): an implementation fed those bytes reproduces every "
            "output without a DRBG. Per step: every message in hex, the intermediates (path secrets and wraps in "
            "the order sent, resync payloads, data keys, the tbs of commands) and roles, one sub-vector per role "
            "(controller, meter, operator round 1 and 2, coordinator: state before, input, output, state after)."),
        "notes": NOTES,
        "vectors": vectors,
    }


FAMILY = VectorFamily(file=FILE, protocol=PROTOCOL, suite=SUITE, verify_vector=verify_vector, build=build)
