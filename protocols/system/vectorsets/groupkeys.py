"""Vector family ``groupkeys``: whole group key runs of specs/groupkeys.md (section 11).

Each vector (operation ``run``) is a script played through the reference
controller, meters and operators: the group id, the arity, the controller's
signing key, the meters (member id and the 32-byte ikm of each HPKE key
pair, ``DeriveKeyPair``), the meters' clock ``now`` and the ``lifetime`` of
every operator-signed message (its not-after is now + lifetime), the
command key material, and a list of steps:

- ``start``: the listed members are provisioned from one checkpoint
  (``groupkeys.checkpoint_body`` signed by operators 1..t, spec 8.6), then
  ``Controller.start_epoch`` (one resync each);
- ``rekey``: the joiners are provisioned from one checkpoint, then
  ``Controller.rekey`` with the listed joins and leaves (the rekey and one
  resync per joiner);
- ``data``: ``Controller.send`` of the plaintext;
- ``resync``: ``Controller.resync`` of one member;
- ``command``: a critical command for the current epoch signed by the listed
  operators with FROST (``groupkeys.sign_command``); a ``rekey-group``
  command names the hash of the current member directory
  (``groupkeys.directory_hash``, given as ``directory_hash``) and is followed
  by a new controller (its signing key in the step) starting the new epoch
  with ``Controller.recover``;
- ``replay``: the last command delivered again to the listed members (a
  joiner among them was provisioned after it); ``refused`` names each error.

Every draw comes from one HMAC_DRBG(run_seed) in the order the steps make
them.  Every message is given byte for byte; after each step every meter
that is a member has received what was sent to it, and its group key id and
group key are given (``views``), so a vendor finds the first step where
their meter and the reference part ways.  Verification replays the script
and compares every output.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from protocols import groupkeys as gk
from protocols.errors import UsappError, VectorMismatchError
from protocols.primitives.drbg import HmacDrbg
from protocols.schemes import hpke
from protocols.system.vectorsets import VectorFamily
from protocols.system.vectorsets._fields import (
    bytes_field,
    dispatch,
    expect,
    expect_steps,
    field,
    hex_list_field,
    list_field,
    recompute,
    small_int_field,
    str_field,
)

PROTOCOL = "groupkeys"
SUITE = "usapp-groupkeys-v1"
FILE = "groupkeys.json"
SEED = "usapp-vectors/groupkeys/"


class _World:
    """The controller, the meters and the operators of one run."""

    def __init__(self, v: Mapping[str, Any], rng: HmacDrbg) -> None:
        self.group = bytes_field(v, "group")
        self.arity = small_int_field(v, "arity")
        self.rng = rng
        self.devices: dict[bytes, tuple[bytes, bytes]] = {}
        meters = field(v, "meters")
        if not isinstance(meters, dict) or not meters:
            raise VectorMismatchError("field 'meters' must be a non-empty object")
        for name in meters:
            member = bytes.fromhex(name) if _is_hex(name) else None
            if member is None:
                raise VectorMismatchError(f"meters: key {name!r} must be a hex member id")
            self.devices[member] = hpke.DeriveKeyPair(bytes_field(meters, name))
        self.now = small_int_field(v, "now")
        self.lifetime = small_int_field(v, "lifetime")
        self.threshold = small_int_field(v, "threshold")
        self.operators, self.info = gk.operator_ceremony(small_int_field(v, "operators"), self.threshold,
                                                         self.group, rng)
        self.controller = gk.Controller(gk.ControllerState(self.group, 0, self.arity,
                                                            bytes_field(v, "controller_key")))
        self.meters: dict[bytes, gk.Meter] = {}
        self.command_seq = 0
        self.last_command = b""

    def sign(self, body: dict, signers: list[int]) -> bytes:
        chosen = [self.operators[i - 1] for i in signers]
        for op in chosen:
            op.approve(body)
        return gk.sign_command(body, chosen, self.info, self.rng)

    def provision(self, members: list[bytes]) -> str | None:
        """Spec 8.6: one checkpoint by operators 1..t for the members not yet provisioned; its hex."""
        new = [m for m in members if m not in self.meters]
        if not new:
            return None
        st = self.controller.state
        checkpoint = self.sign(gk.checkpoint_body(self.group, self.command_seq, st.epoch, self.controller.public_key,
                                                  self.now + self.lifetime), list(range(1, self.threshold + 1)))
        for member in new:
            if member not in self.devices:
                raise VectorMismatchError(f"member {member.hex()} has no device key in 'meters'")
            self.meters[member] = gk.Meter.provision(self.group, member, self.devices[member][0],
                                                     gk.command_key(self.info), checkpoint, self.now)
        return checkpoint.hex()

    def meter(self, member: bytes) -> gk.Meter:
        if member not in self.meters:
            raise VectorMismatchError(f"member {member.hex()} was never provisioned")
        return self.meters[member]

    def deliver(self, message: bytes, to: list[bytes]) -> None:
        for member in to:
            self.meter(member).receive(message, self.now)

    def members(self) -> list[bytes]:
        tree = self.controller.state.tree
        return sorted(tree.members) if tree is not None else []


def _is_hex(text: str) -> bool:
    try:
        bytes.fromhex(text)
    except ValueError:
        return False
    return len(text) % 2 == 0 and text == text.lower()


def _step(world: _World, step: Mapping[str, Any]) -> dict:
    op = str_field(step, "op")
    out: dict[str, Any] = {}
    if op == "start":
        members = hex_list_field(step, "members")
        out["checkpoint"] = world.provision(members)
        resyncs = world.controller.start_epoch({m: world.devices[m][1] for m in members}, world.rng)
        for m, message in resyncs.items():
            world.meter(m).receive(message)
        out["resyncs"] = {m.hex(): message.hex() for m, message in resyncs.items()}
    elif op == "rekey":
        joins, leaves = hex_list_field(step, "joins"), hex_list_field(step, "leaves")
        staying = [m for m in world.members() if m not in leaves]
        checkpoint = world.provision(joins)
        if checkpoint is not None:
            out["checkpoint"] = checkpoint
        message, welcomes = world.controller.rekey({m: world.devices.get(m, (b"", b""))[1] for m in joins},
                                                   leaves, world.rng)
        for m in leaves:
            try:
                world.meter(m).receive(message)
            except UsappError as e:  # a leaver learns that it was removed
                out.setdefault("leavers_refuse", []).append(type(e).__name__)
        world.deliver(message, staying)
        for m, welcome in welcomes.items():
            world.meter(m).receive(welcome)
        out["rekey"] = message.hex()
        out["welcomes"] = {m.hex(): w.hex() for m, w in welcomes.items()}
    elif op == "data":
        message = world.controller.send(bytes_field(step, "plaintext"))
        opened = {world.meter(m).receive(message) for m in world.members()}
        if opened != {bytes_field(step, "plaintext")}:
            raise VectorMismatchError("data: a member did not open the plaintext")
        out["data"] = message.hex()
    elif op == "resync":
        member = bytes_field(step, "member")
        message = world.controller.resync(member, world.rng)
        world.meter(member).receive(message)
        out["resync"] = message.hex()
    elif op == "command":
        world.command_seq += 1
        action = str_field(step, "action")
        members = world.members()
        directory = {m: world.devices[m][1] for m in members}
        args = _command_args(action, step, world.group, directory)
        body = gk.command_body(world.group, world.command_seq, action, args, epoch=world.controller.state.epoch,
                               not_after=world.now + world.lifetime)
        signers = [small_int_field({"s": s}, "s") for s in list_field(step, "signers")]
        if len(set(signers)) != len(signers) or not all(1 <= i <= len(world.operators) for i in signers):
            raise VectorMismatchError("field 'signers' must list distinct operators")
        message = world.sign(body, signers)
        world.deliver(message, members)
        world.last_command = message
        out["command"] = message.hex()
        if action == "rekey-group":
            out["directory_hash"] = args[3].hex()
            new = gk.Controller(gk.ControllerState(world.group, args[1], world.arity,
                                                   bytes_field(step, "new_controller_key")))
            resyncs = new.recover(message, gk.command_key(world.info), directory, world.rng)
            for m, r in resyncs.items():
                world.meter(m).receive(r)
            world.controller = new
            out["resyncs"] = {m.hex(): r.hex() for m, r in resyncs.items()}
    elif op == "replay":
        refused = []
        for m in hex_list_field(step, "members"):
            try:
                world.meter(m).receive(world.last_command, world.now)
            except UsappError as e:
                refused.append(type(e).__name__)
            else:
                raise VectorMismatchError(f"replay: member {m.hex()} accepted the replayed command")
        out["refused"] = refused
    else:
        raise VectorMismatchError(f"unknown step op {op!r}")
    out["views"] = {m.hex(): {"group_kid": world.meter(m).state.keys.group_kid,
                                "group_key": world.meter(m).group_key.hex()} for m in world.members()}
    return out


def _command_args(action: str, step: Mapping[str, Any], group: bytes, directory: dict[bytes, bytes]) -> dict:
    if action in ("disconnect", "reconnect"):
        return {1: hex_list_field(step, "targets")}
    if action == "rekey-group":
        key = gk.Controller(gk.ControllerState(b"-", 0, 2, bytes_field(step, "new_controller_key"))).public_key
        epoch = small_int_field(step, "epoch")
        return {1: epoch, 2: key, 3: gk.directory_hash(group, epoch, directory)}
    if action == "set-command-key":
        return {1: bytes_field(step, "key")}
    return {}


_INPUTS = {"op", "members", "joins", "leaves", "plaintext", "member", "action", "targets", "signers",
           "new_controller_key", "epoch", "key"}


def _outputs(v: Mapping[str, Any]) -> tuple[dict, list[dict]]:
    world = _World(v, HmacDrbg.from_seed(str_field(v, "run_seed")))
    steps = list_field(v, "steps")
    if not steps or any(not isinstance(s, dict) for s in steps):
        raise VectorMismatchError("field 'steps' must be a non-empty list of objects")
    top = {"command_key": gk.command_key(world.info).hex(), "controller_public": world.controller.public_key.hex()}
    return top, [_step(world, {k: s[k] for k in s if k in _INPUTS}) for s in steps]


def _run(v: Mapping[str, Any]) -> None:
    steps = list_field(v, "steps")
    top, computed = recompute("run", lambda: _outputs(v))
    for name, value in top.items():
        expect(name, field(v, name), value)
    expect_steps(steps, computed, _INPUTS)


OPERATIONS = {"run": _run}


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


def _case(name: str, arity: int, meters: int, steps: list[dict], operators: int = 3, threshold: int = 2) -> dict:
    seed = SEED + name
    rng = HmacDrbg.from_seed(seed + "/inputs")
    v: dict[str, Any] = {
        "operation": "run", "name": name, "group": b"nbh-0017".hex(), "arity": arity,
        "operators": operators, "threshold": threshold, "now": NOW, "lifetime": LIFETIME,
        "controller_key": rng.random_bytes(32).hex(),
        "meters": {_member(i).hex(): rng.random_bytes(32).hex() for i in range(meters)},
        "run_seed": seed + "/run",
    }
    steps = [{k: (val.hex() if isinstance(val, bytes) else [x.hex() for x in val] if isinstance(val, list)
                  and val and isinstance(val[0], bytes) else val) for k, val in step.items()} for step in steps]
    top, outputs = _outputs({**v, "steps": steps})
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
            {"op": "command", "action": "reconnect-all", "signers": [1, 2]},
        ]),
    ]
    return {
        "protocol": PROTOCOL,
        "suite": SUITE,
        "source": "generated by the USaPP reference implementation; procedures in specs/groupkeys.md "
                  "(sections 4 to 9; vectors section 11) and specs/frost.md",
        "generated_by": (f"usapp vectors generate (HMAC_DRBG SHA-256 from_seed: inputs from {SEED}<name>/inputs, "
                         f"every draw of the run from {SEED}<name>/run; the recovery's new controller key from "
                         f"{SEED}recovery/new-controller)"),
        "description": (
            "Whole group key runs (operation 'run'). Inputs: group (hex), arity, operators and threshold (the "
            "operators' key comes from groupkeys.operator_ceremony, the DKG of specs/frost.md section 7, drawing "
            "from HMAC_DRBG(run_seed) first), controller_key (raw Ed25519 private key of epoch 0), meters (member "
            "id hex -> 32-byte ikm of its HPKE key pair, DeriveKeyPair), now (the meters' clock, seconds since "
            "1970) and lifetime (every command and checkpoint has not-after = now + lifetime), and steps: start "
            "(members), rekey (joins, leaves), data (plaintext), resync (member), command (action, targets / epoch "
            "and new_controller_key / key, signers: operator identifiers; the command is for the current epoch "
            "and numbered 1, 2, ...), replay (members: the last command delivered again). Members new in a start "
            "or rekey step are first provisioned from one checkpoint (spec 8.6: the last command number, the "
            "epoch, the controller key) signed by operators 1..threshold. Every later draw of the run comes from "
            "the same DRBG in step order (checkpoint signing before the controller's draws of its step). Outputs: "
            "command_key, controller_public, and per step every message in hex (checkpoint, resyncs, rekey, "
            "welcomes, data, resync, command; directory_hash of a rekey-group, spec 9.2) and views: for every "
            "member after the step, its group_kid and group_key as its meter derived them; leavers_refuse names "
            "the error a leaver raises on the rekey that removes it; refused the error each replay raises."),
        "vectors": vectors,
    }


FAMILY = VectorFamily(file=FILE, protocol=PROTOCOL, suite=SUITE, verify_vector=verify_vector, build=build)
