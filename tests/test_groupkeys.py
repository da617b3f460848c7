"""Group key management (protocols/groupkeys.py, specs/groupkeys.md)."""

from __future__ import annotations

import copy
import dataclasses
import random

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from protocols import groupkeys as gk
from protocols.errors import (
    DecodeError,
    ParameterError,
    ReplayError,
    ResyncRequiredError,
    StateError,
    UsappError,
    VerificationError,
)
from protocols.primitives import cbor
from protocols.primitives.drbg import HmacDrbg
from protocols.schemes import hpke

GROUP = b"nbh-17"
NOW = 1_800_000_000          # the meters' clock (spec 4.1), 2027-01-15
HOUR, DAY, YEAR = 3600, 86400, 365 * 86400


def raw_public(key: Ed25519PrivateKey) -> bytes:
    return key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)


class Fleet:
    """A controller, its meters and a plain Ed25519 command key standing in for the operators
    (the threshold signing is tested in the FROST section below; ``operators`` = (command key,
    a function signing a body) plugs them in).  Meters are provisioned from a checkpoint."""

    def __init__(self, n: int, arity: int = 3, seed: str = "fleet", operators=None) -> None:
        self.rng = HmacDrbg.from_seed(seed)
        self.command_key = Ed25519PrivateKey.from_private_bytes(self.rng.random_bytes(32))
        if operators is None:
            self.command_public = raw_public(self.command_key)
            self.sign = lambda body: gk.encode_command(body, self.command_key.sign(gk.command_tbs(body)))
        else:
            self.command_public, self.sign = operators
        self.now = NOW
        self.controller = gk.Controller(gk.ControllerState(GROUP, 0, arity, self.rng.random_bytes(32)))
        self.devices: dict[bytes, bytes] = {}
        self.meters: dict[bytes, gk.Meter] = {}
        self.command_seq = 0
        members = {self.new_meter(b"m%03d" % i): None for i in range(n)}
        for member, message in self.controller.start_epoch(
                {m: self.devices[m] for m in members}, self.rng).items():
            self.meters[member].receive(message, NOW)

    def new_meter(self, member: bytes) -> bytes:
        sk, pk = hpke.DeriveKeyPair(self.rng.random_bytes(32))
        self.devices[member] = pk
        self.meters[member] = gk.Meter.provision(GROUP, member, sk, self.command_public, self.checkpoint(),
                                                 self.now)
        return member

    def checkpoint(self, seq: int | None = None, lifetime: int = HOUR) -> bytes:
        """Spec 8.6: the operators' checkpoint at the last command (or ``seq``), valid for ``lifetime``."""
        body = gk.checkpoint_body(GROUP, self.command_seq if seq is None else seq, self.controller.state.epoch,
                                  self.controller.public_key, self.now + lifetime)
        return self.sign(body)

    def body(self, action: str, args: dict, epoch: int | None = None, lifetime: int = HOUR) -> dict:
        self.command_seq += 1
        return gk.command_body(GROUP, self.command_seq, action, args, not_after=self.now + lifetime,
                               epoch=self.controller.state.epoch if epoch is None else epoch)

    def rekey(self, joins=(), leaves=()):
        joins = {self.new_meter(m): None for m in joins}
        message, welcomes = self.controller.rekey({m: self.devices[m] for m in joins}, list(leaves), self.rng)
        for m, welcome in welcomes.items():
            self.meters[m].receive(welcome, NOW)
        return message

    def broadcast(self, message: bytes, skip=()) -> None:
        for m in self.controller.state.tree.members:
            if m not in skip:
                self.meters[m].receive(message, NOW)

    def command(self, action: str, args: dict, key: Ed25519PrivateKey | None = None, **kw) -> bytes:
        body = self.body(action, args, **kw)
        return self.sign(body) if key is None else gk.encode_command(body, key.sign(gk.command_tbs(body)))

    def directory(self) -> dict[bytes, bytes]:
        """The member directory the operators keep (member id -> HPKE public key)."""
        return {m: self.devices[m] for m in sorted(self.controller.state.tree.members)}

    def current(self):
        return [self.meters[m] for m in sorted(self.controller.state.tree.members)]


def snapshot(meter: gk.Meter):
    return copy.deepcopy(meter.state)


# -- the routine path ------------------------------------------------------------


def test_every_member_gets_the_group_key_and_reads_group_data():
    fleet = Fleet(10)
    key = fleet.controller.state.tree.group_key
    assert all(m.group_key == key for m in fleet.current())
    data = fleet.controller.send(b"tariff 2: 0.21/kWh from 17:00")
    assert {m.receive(data, NOW) for m in fleet.current()} == {b"tariff 2: 0.21/kWh from 17:00"}


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**32), arity=st.integers(2, 4), steps=st.integers(1, 6))
def test_members_track_the_group_through_joins_leaves_and_batches(seed, arity, steps):
    fleet = Fleet(6, arity, f"track{seed}")
    r = random.Random(seed)
    fresh = 0
    departed: dict[bytes, gk.Meter] = {}
    for _ in range(steps):
        members = sorted(fleet.controller.state.tree.members)
        leaves = r.sample(members, r.randint(0, min(2, len(members) - 1)))
        joins = [b"j%03d" % (fresh + i) for i in range(r.randint(0 if leaves else 1, 3))]
        fresh += len(joins)
        message = fleet.rekey(joins, leaves)
        for m in leaves:
            departed[m] = fleet.meters[m]
            with pytest.raises(StateError):
                departed[m].receive(message, NOW)
        fleet.broadcast(message, skip=joins)
        data = fleet.controller.send(b"dr: shed 10%")
        assert {m.receive(data, NOW) for m in fleet.current()} == {b"dr: shed 10%"}
        for meter in departed.values():   # a departed meter reads no later group data
            with pytest.raises((ResyncRequiredError, VerificationError)):
                meter.receive(data, NOW)


def test_message_sizes_of_a_single_leave_are_logarithmic():
    fleet = Fleet(81, arity=3)
    message = fleet.rekey(leaves=[b"m040"])
    _, m = gk.decode_message(message)
    assert len(m[9]) == 3 * 4 - 1
    fleet.broadcast(message)


# -- numbering, epochs, signatures --------------------------------------------------


def test_replayed_and_out_of_order_messages_are_refused():
    fleet = Fleet(9)
    first = fleet.rekey(leaves=[b"m001"])
    second = fleet.rekey(leaves=[b"m002"])
    meter = fleet.meters[b"m000"]
    meter.receive(first, NOW)
    with pytest.raises(ReplayError):
        meter.receive(first, NOW)
    meter.receive(second, NOW)
    other = fleet.meters[b"m008"]
    other.receive(second, NOW)            # first was lost on the way to m008 ...
    with pytest.raises(ReplayError):
        other.receive(first, NOW)         # ... and arrives late: out of order


def test_wrong_epoch_group_and_signer():
    fleet = Fleet(4)
    meter = fleet.meters[b"m000"]
    data = fleet.controller.send(b"x")
    state = snapshot(meter)
    meter.state.epoch = 1
    with pytest.raises(StateError, match="epoch"):
        meter.receive(data, NOW)
    meter.state = state
    rogue = gk.Controller(gk.ControllerState(GROUP, 0, 3, bytes(range(32))))
    rogue.state.tree = fleet.controller.state.tree
    rogue.state.seq = 100
    with pytest.raises(VerificationError):
        meter.receive(rogue.send(b"disconnect yourself"), NOW)
    other = gk.Controller(gk.ControllerState(b"nbh-18", 0, 3, fleet.controller.state.signing_key))
    other.state.tree = fleet.controller.state.tree
    with pytest.raises(VerificationError, match="another group"):
        meter.receive(other.send(b"x"), NOW)


def test_resync_for_another_member_or_device_is_refused():
    fleet = Fleet(4)
    resync = fleet.controller.resync(b"m001", fleet.rng)
    with pytest.raises(VerificationError, match="another member"):
        fleet.meters[b"m000"].receive(resync, NOW)
    stolen = fleet.meters[b"m000"]
    stolen.state.member = b"m001"    # claims the other identity but holds its own device key
    with pytest.raises(VerificationError):
        stolen.receive(resync, NOW)


def test_missed_rekey_then_resync_or_a_later_message():
    fleet = Fleet(8, arity=2)
    lagging = fleet.meters[b"m000"]
    missed = fleet.rekey(leaves=[b"m002"])     # changes node (2, 0) on m000's path
    fleet.broadcast(missed, skip=[b"m000"])
    nxt = fleet.rekey(leaves=[b"m007"])
    fleet.broadcast(nxt, skip=[b"m000"])
    before = snapshot(lagging)
    with pytest.raises(ResyncRequiredError):
        lagging.receive(nxt, NOW)
    assert lagging.state == before
    lagging.receive(fleet.controller.resync(b"m000", fleet.rng), NOW)
    assert lagging.group_key == fleet.controller.state.tree.group_key
    # a later rekey of its whole path also carries a lagging meter forward
    missed = fleet.rekey(leaves=[b"m006"])
    fleet.broadcast(missed, skip=[b"m000"])
    later = fleet.rekey(leaves=[b"m001"])      # m000's sibling: its path is rekeyed from the leaf up
    lagging.receive(later, NOW)
    assert lagging.group_key == fleet.controller.state.tree.group_key


def test_data_under_a_stale_group_key_needs_a_resync():
    fleet = Fleet(6)
    meter = fleet.meters[b"m000"]
    fleet.broadcast(fleet.rekey(leaves=[b"m005"]), skip=[b"m000"])
    with pytest.raises(ResyncRequiredError):
        meter.receive(fleet.controller.send(b"x"), NOW)


# -- every byte of every message ------------------------------------------------------


def _all_kinds(fleet: Fleet) -> dict[str, bytes]:
    return {"rekey": fleet.rekey(leaves=[b"m003"]), "resync": fleet.controller.resync(b"m000", fleet.rng),
            "data": fleet.controller.send(b"demand response"),
            "command": fleet.command("disconnect", {1: [b"m001"]}), "checkpoint": fleet.checkpoint()}


@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_any_single_byte_change_is_refused_with_a_typed_error(data):
    fleet = Fleet(6, seed="flip")
    messages = _all_kinds(fleet)
    kind = data.draw(st.sampled_from(sorted(messages)))
    message = messages[kind]
    i = data.draw(st.integers(0, len(message) - 1))
    delta = data.draw(st.integers(1, 255))
    tampered = message[:i] + bytes([message[i] ^ delta]) + message[i + 1:]
    meter = fleet.meters[b"m000"]
    before = snapshot(meter)
    with pytest.raises(UsappError):
        meter.receive(tampered, NOW)
    assert meter.state == before


@pytest.mark.parametrize("kind", ["rekey", "resync", "data", "command", "checkpoint"])
def test_truncated_and_extended_messages(kind):
    fleet = Fleet(6, seed="trunc")
    message = _all_kinds(fleet)[kind]
    meter = fleet.meters[b"m000"]
    for bad in (message[:-1], message[: len(message) // 2], b"", message + b"\0"):
        with pytest.raises(DecodeError):
            meter.receive(bad, NOW)
    with pytest.raises(DecodeError):
        meter.receive("not bytes", NOW)


def test_decoder_rejects_malformed_fields():
    fleet = Fleet(6, seed="fields")
    message = fleet.rekey(leaves=[b"m003"])
    m = cbor.decode(message)
    cases = {
        "version": {1: 2}, "kind": {2: "reboot"}, "short signature": {10: b"\0" * 63},
        "unsorted nodes": {8: list(reversed(m[8]))}, "node outside the tree": {8: [[0, 10**6, 1]] + m[8]},
        "root not last": {8: m[8][:-1]}, "wrap length": {9: [[m[9][0][0], m[9][0][1], b"\0" * 47]]},
        "wrap key id zero": {9: [[0, 1, b"\0" * 48]]}, "arity": {6: 1}, "height": {7: 0},
        "extra key": {11: 0}, "group too long": {3: b"g" * 65},
    }
    for name, change in cases.items():
        with pytest.raises(DecodeError):
            gk.decode_message(cbor.encode({**m, **change}))
    del m[9]
    with pytest.raises(DecodeError):
        gk.decode_message(cbor.encode(m))


def test_decoder_rejects_malformed_command_and_checkpoint_fields():
    """Spec 4.5, 4.6: every field of the changed and the new message, each a DecodeError before any signature."""
    fleet = Fleet(3, seed="command-fields")
    key = fleet.controller.public_key
    command = cbor.decode(fleet.command("rekey-group", {1: 1, 2: key, 3: bytes(32)}))
    checkpoint = cbor.decode(fleet.checkpoint())
    command_cases = {
        "epoch": {7: 1 << 32}, "negative epoch": {7: -1}, "not-after": {8: 1 << 64}, "not-after type": {8: b"x"},
        "rekey back in time": {7: 1}, "rekey to the same epoch": {6: {1: 0, 2: key, 3: bytes(32)}},
        "directory hash length": {6: {1: 1, 2: key, 3: bytes(31)}}, "no directory hash": {6: {1: 1, 2: key}},
        "reconnect without targets": {5: "reconnect", 6: {1: []}},
        "reconnect unsorted": {5: "reconnect", 6: {1: [b"b", b"a"]}},
        "reconnect-all with args": {5: "reconnect-all", 6: {1: 0}}, "unknown action": {5: "reboot"},
        "signature at the old key": {7: command[9]}, "short signature": {9: b"\0" * 63}, "extra key": {10: 0},
    }
    checkpoint_cases = {
        "sequence number": {4: 1 << 64}, "epoch": {5: 1 << 32}, "controller key length": {6: bytes(31)},
        "controller key not a point": {6: b"\xff" * 32}, "not-after": {7: -1}, "short signature": {8: bytes(63)},
        "extra key": {9: 0},
    }
    for base, cases in ((command, command_cases), (checkpoint, checkpoint_cases)):
        for name, change in cases.items():
            with pytest.raises(DecodeError):
                gk.decode_message(cbor.encode({**base, **change}))


# -- critical commands ---------------------------------------------------------------


def test_commands_need_the_command_key_not_the_controller_key():
    fleet = Fleet(4)
    meter = fleet.meters[b"m000"]
    forged = fleet.command("disconnect-all", {}, key=Ed25519PrivateKey.from_private_bytes(
        fleet.controller.state.signing_key))
    with pytest.raises(VerificationError):
        meter.receive(forged, NOW)
    assert meter.state.supply_on
    real = fleet.command("disconnect", {1: [b"m000", b"m002"]})
    result = meter.receive(real, NOW)
    assert result.action == "disconnect" and result.applies_to_me and not meter.state.supply_on
    assert not fleet.meters[b"m001"].receive(real, NOW).applies_to_me
    with pytest.raises(ReplayError):
        meter.receive(real, NOW)


def test_rekey_group_moves_the_meter_to_a_new_epoch_and_controller():
    fleet = Fleet(5)
    meter = fleet.meters[b"m000"]
    old_data = fleet.controller.send(b"old")
    new = gk.Controller(gk.ControllerState(GROUP, 1, 3, fleet.rng.random_bytes(32)))
    directory = fleet.directory()
    command = fleet.command("rekey-group", {1: 1, 2: new.public_key, 3: gk.directory_hash(GROUP, 1, directory)})
    meter.receive(command, NOW)
    assert meter.state.epoch == 1 and meter.state.keys is None
    with pytest.raises(ResyncRequiredError):
        meter.group_key
    with pytest.raises((StateError, VerificationError)):
        meter.receive(old_data, NOW)
    with pytest.raises(VerificationError):   # the old controller key no longer signs for this meter
        meter.receive(fleet.controller.resync(b"m000", fleet.rng), NOW)
    with pytest.raises(StateError, match="recover"):   # a later epoch starts only for the signed directory
        new.start_epoch(directory, fleet.rng)
    resyncs = new.recover(command, fleet.command_public, directory, fleet.rng)
    meter.receive(resyncs[b"m000"], NOW)
    assert meter.group_key == new.state.tree.group_key != fleet.controller.state.tree.group_key
    stale = fleet.command("rekey-group", {1: 1, 2: new.public_key, 3: gk.directory_hash(GROUP, 1, directory)})
    with pytest.raises(StateError, match="epoch"):     # a command for epoch 0 at a meter in epoch 1
        meter.receive(stale, NOW)


def test_set_command_key():
    fleet = Fleet(3)
    meter = fleet.meters[b"m000"]
    successor = Ed25519PrivateKey.from_private_bytes(bytes([7]) * 32)
    meter.receive(fleet.command("set-command-key", {1: raw_public(successor)}), NOW)
    with pytest.raises(VerificationError):
        meter.receive(fleet.command("disconnect-all", {}), NOW)
    meter.receive(fleet.command("disconnect-all", {}, key=successor), NOW)
    assert not meter.state.supply_on


def test_command_body_checks_its_arguments():
    key = raw_public(Ed25519PrivateKey.from_private_bytes(bytes(32)))
    when = {"epoch": 0, "not_after": NOW}
    for action, args in (("reboot", {}), ("disconnect", {1: []}), ("disconnect", {1: [b"a", b"a"]}),
                         ("reconnect", {1: []}), ("reconnect-all", {1: 0}),
                         ("rekey-group", {1: 1, 2: b"\0" * 31, 3: bytes(32)}), ("set-command-key", {1: b"\xff" * 32}),
                         ("rekey-group", {1: 1, 2: key}), ("rekey-group", {1: 1, 2: key, 3: bytes(31)}),
                         ("rekey-group", {1: 0, 2: key, 3: bytes(32)}), ("disconnect-all", {1: 0})):
        with pytest.raises(ParameterError):
            gk.command_body(GROUP, 1, action, args, **when)
    for bad in ({"epoch": -1, "not_after": NOW}, {"epoch": 1 << 32, "not_after": NOW},
                {"epoch": 0, "not_after": -1}, {"epoch": 0, "not_after": 1 << 64}, {"epoch": 0, "not_after": "x"}):
        with pytest.raises(ParameterError):
            gk.command_body(GROUP, 1, "disconnect-all", {}, **bad)
    with pytest.raises(ParameterError):
        gk.command_body(GROUP, 0, "disconnect-all", {}, **when)
    with pytest.raises(ParameterError):
        gk.encode_command(gk.command_body(GROUP, 1, "disconnect-all", {}, **when), b"\0" * 63)
    with pytest.raises(ParameterError):
        gk.checkpoint_body(GROUP, -1, 0, key, NOW)
    with pytest.raises(ParameterError):
        gk.checkpoint_body(GROUP, 0, 0, b"\0" * 32, NOW)     # the identity is no controller key
    with pytest.raises(ParameterError):
        gk.command_tbs({1: 1, 2: "data"})                      # operators sign commands and checkpoints only


def test_bad_roles():
    with pytest.raises(ParameterError):
        gk.Controller(gk.ControllerState(b"", 0, 3, bytes(32)))
    with pytest.raises(ParameterError):
        gk.Controller(gk.ControllerState(GROUP, 0, 1, bytes(32)))
    with pytest.raises(ParameterError):
        gk.Meter(gk.MeterState(GROUP, b"m", bytes(32), command_key=b"\0" * 31, controller_key=b"\0" * 32))
    controller = gk.Controller(gk.ControllerState(GROUP, 0, 3, bytes(32)))
    with pytest.raises(StateError):
        controller.send(b"x")
    with pytest.raises(DecodeError):
        controller.start_epoch({b"m": bytes(32)})   # a small-order HPKE key


# -- threshold-approved commands (FROST, RFC 9591) ------------------------------------

from protocols.primitives import ed25519  # noqa: E402
from protocols.schemes import frost  # noqa: E402


class Operators:
    """t of n operators from the distributed key generation, and a fleet whose command key is theirs."""

    def __init__(self, n: int = 5, t: int = 3, meters: int = 6, seed: str = "ops") -> None:
        self.rng = HmacDrbg.from_seed(seed)
        self.operators, self.info = gk.operator_ceremony(n, t, GROUP, self.rng)
        signers = list(range(n - t + 1, n + 1))      # the last t operators sign the checkpoints
        self.fleet = Fleet(meters, seed=seed + "/fleet", operators=(
            gk.command_key(self.info), lambda body: self.sign(body, signers)))

    def body(self, action: str, args: dict, **kw) -> dict:
        return self.fleet.body(action, args, **kw)

    def sign(self, body: dict, ids) -> bytes:
        return gk.sign_command(body, self.approved(body, ids), self.info, self.rng)

    def approved(self, body: dict, ids) -> list[gk.Operator]:
        chosen = [self.operators[i - 1] for i in ids]
        for op in chosen:
            op.approve(body)
        return chosen


def test_command_key_comes_from_the_ceremony_and_verifies_as_plain_ed25519():
    ops = Operators()
    assert len(gk.command_key(ops.info)) == 32
    body = ops.body("disconnect", {1: [b"m002"]})
    message = gk.sign_command(body, ops.approved(body, [1, 4, 5]), ops.info, ops.rng)
    _, m = gk.decode_message(message)
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
    Ed25519PublicKey.from_public_bytes(gk.command_key(ops.info)).verify(m[9], gk.command_tbs(body))
    results = {member: meter.receive(message, NOW) for member, meter in ops.fleet.meters.items()}
    assert [member for member, r in results.items() if r.applies_to_me] == [b"m002"]
    assert not ops.fleet.meters[b"m002"].state.supply_on and ops.fleet.meters[b"m001"].state.supply_on


@settings(max_examples=10, deadline=None)
@given(data=st.data())
def test_any_t_of_n_operators_sign_and_fewer_cannot(data):
    n = data.draw(st.integers(2, 5))
    t = data.draw(st.integers(2, n))
    ops = Operators(n, t, meters=2, seed=f"any{n}{t}")
    ids = sorted(data.draw(st.lists(st.integers(1, n), min_size=t, max_size=n, unique=True)))
    body = ops.body("disconnect-all", {})
    ops.fleet.meters[b"m000"].receive(gk.sign_command(body, ops.approved(body, ids), ops.info, ops.rng), NOW)
    few = ids[: t - 1]
    body = ops.body("disconnect-all", {})
    with pytest.raises(ParameterError):   # RFC 9591 5.2: fewer than MIN_PARTICIPANTS is refused
        gk.sign_command(body, ops.approved(body, few), ops.info, ops.rng)


def test_operator_signs_only_what_it_approved_and_only_once():
    ops = Operators()
    body = ops.body("disconnect-all", {})
    chosen = ops.approved(body, [1, 2])
    with pytest.raises(StateError, match="operator 3 has not approved"):
        gk.sign_command(body, chosen + [ops.operators[2]], ops.info, ops.rng)
    other = ops.body("disconnect-all", {})
    ops.operators[2].approve(other)
    with pytest.raises(StateError):      # approved another command, not this one
        gk.sign_command(body, ops.approved(body, [1, 2]) + [ops.operators[2]], ops.info, ops.rng)
    message = gk.sign_command(other, ops.approved(other, [1, 2]) + [ops.operators[2]], ops.info, ops.rng)
    ops.fleet.meters[b"m000"].receive(message, NOW)
    with pytest.raises(StateError):      # the approval was used up
        gk.sign_command(other, ops.approved(other, [1, 2]) + [ops.operators[2]], ops.info, ops.rng)


def test_nonce_reuse_is_refused():
    ops = Operators()
    body = ops.body("disconnect-all", {})
    chosen = ops.approved(body, [1, 2, 3])
    commitments = sorted((op.commit(ops.rng) for op in chosen), key=lambda c: c.identifier)
    chosen[0].sign(body, commitments)
    chosen[0].approve(body)
    with pytest.raises(ReplayError):
        chosen[0].sign(body, commitments)


def test_a_bad_share_names_its_operator():
    ops = Operators()
    body = ops.body("disconnect-all", {})
    chosen = ops.approved(body, [1, 2, 3])
    honest_sign = chosen[1].sign

    def corrupt(b, commitments):
        share = honest_sign(b, commitments)
        return frost.SignatureShare(share.identifier, (share.share + 1) % ed25519.L)

    chosen[1].sign = corrupt
    with pytest.raises(VerificationError, match="participant 2"):
        gk.sign_command(body, chosen, ops.info, ops.rng)


def test_share_from_a_non_participant_is_refused():
    ops = Operators()
    body = ops.body("disconnect-all", {})
    chosen = ops.approved(body, [1, 2, 3, 4])
    commitments = sorted((op.commit(ops.rng) for op in chosen[:3]), key=lambda c: c.identifier)
    shares = [op.sign(body, commitments) for op in chosen[:3]]
    outsider = chosen[3]
    outsider_commitments = sorted([*commitments[:2], outsider.commit(ops.rng)], key=lambda c: c.identifier)
    stray = outsider.sign(body, outsider_commitments)
    with pytest.raises(VerificationError, match="not in the signing set"):
        frost.aggregate_and_verify(ops.info, commitments, gk.command_tbs(body), shares[:2] + [stray])


def _attacker_shares(body: dict, captured, commitments, nonces, group_public_key) -> list[frost.SignatureShare]:
    """Signature shares computed straight from captured key shares (RFC 9591 5.2's formula, no checks)."""
    msg = gk.command_tbs(body)
    factors = dict(frost.compute_binding_factors(group_public_key, commitments, msg))
    commitment = frost.compute_group_commitment(commitments, list(factors.items()))
    challenge = frost.compute_challenge(commitment, group_public_key, msg)
    ids = [c.identifier for c in commitments]
    out = []
    for op in captured:
        i, n = op.identifier, nonces[op.identifier]
        lam = frost.derive_interpolating_value(ids, i)
        z = (n.hiding_nonce + n.binding_nonce * factors[i]
             + lam * op.state.signer.key_package.secret_share * challenge) % ed25519.L
        out.append(frost.SignatureShare(i, z))
    return out


def _forge(body: dict, commitments, shares, group_public_key) -> bytes:
    """What an attacker's coordinator can assemble: aggregate whatever shares it has."""
    signature = frost.aggregate(commitments, gk.command_tbs(body), group_public_key, shares)
    return gk.encode_command(body, signature.to_bytes())


def test_paper_attack_and_recovery():
    """The USaPP paper's attack: the attacker owns the head-end (controller key, key tree, coordinator)
    and t - 1 = 2 of 5 operators' shares.  No critical command gets accepted; after the operators'
    recovery the group is on keys the attacker cannot read, and its old key signs nothing."""
    ops = Operators(5, 3, meters=8, seed="attack")
    fleet = ops.fleet
    meters = list(fleet.meters.values())
    captured = {1: ops.operators[0], 2: ops.operators[1]}        # the attacker's operators
    honest = {i: ops.operators[i - 1] for i in (3, 4, 5)}
    controller_key = Ed25519PrivateKey.from_private_bytes(fleet.controller.state.signing_key)
    gpk = ops.info.group_public_key

    def refused_everywhere(message, error=VerificationError):
        for meter in meters:
            before = snapshot(meter)
            with pytest.raises(error):
                meter.receive(message, NOW)
            assert meter.state == before

    # (1) a disconnect signed with the stolen controller key
    body = ops.body("disconnect-all", {})
    refused_everywhere(gk.encode_command(body, controller_key.sign(gk.command_tbs(body))))
    # (2) the two captured operators' shares alone, computed from their key shares and aggregated
    nonces = {}
    for i, op in captured.items():
        nonces[i], _ = frost.commit(i, op.state.signer.key_package.secret_share, ops.rng)
    commitments = [nonces[i].commitments for i in sorted(nonces)]
    shares = _attacker_shares(body, captured.values(), commitments, nonces, gpk)
    refused_everywhere(_forge(body, commitments, shares, gpk))
    # (3) ... plus an honest operator's place filled with a made-up share
    commitments = sorted([*commitments, honest[3].commit(ops.rng)], key=lambda c: c.identifier)
    shares = _attacker_shares(body, captured.values(), commitments, nonces, gpk) + [frost.SignatureShare(3, 12345)]
    refused_everywhere(_forge(body, commitments, shares, gpk))
    # (4) an honest operator asked to sign what it did not approve refuses
    with pytest.raises(StateError):
        honest[3].sign(body, commitments)
    # (5) an honest share made for an approved command, reused for another
    legit = ops.body("disconnect", {1: [b"m007"]})
    for op in (*captured.values(), honest[3]):
        op.approve(legit)
    commitments = sorted((op.commit(ops.rng) for op in (*captured.values(), honest[3])), key=lambda c: c.identifier)
    legit_shares = [op.sign(legit, commitments) for op in (*captured.values(), honest[3])]
    legit_message = _forge(legit, commitments, legit_shares, gpk)   # the honest command itself is valid
    evil = dict(legit)
    evil[5], evil[6] = "disconnect-all", {}
    refused_everywhere(_forge(evil, commitments, legit_shares, gpk))
    with pytest.raises(ReplayError):                # and the same nonces cannot sign the evil one
        honest[3].approve(evil)
        honest[3].sign(evil, commitments)
    # the legitimate command is accepted once; replaying it is refused
    for meter in meters:
        meter.receive(legit_message, NOW)
    refused_everywhere(legit_message, ReplayError)
    assert [m.state.member for m in meters if not m.state.supply_on] == [b"m007"]

    # (6) the attacker re-keys the group through the routine path to keys it chose: accepted
    rogue = fleet.rekey(leaves=[b"m000"])
    fleet.broadcast(rogue)
    attacker_tree_keys = {fleet.controller.state.tree.group_key}

    # recovery: operators 3, 4, 5 move the group to a new epoch and a new controller key
    new = gk.Controller(gk.ControllerState(GROUP, 1, 3, ops.rng.random_bytes(32)))
    members = sorted(fleet.controller.state.tree.members)
    directory = {m: fleet.devices[m] for m in members}
    recover = ops.body("rekey-group", {1: 1, 2: new.public_key, 3: gk.directory_hash(GROUP, 1, directory)})
    for op in honest.values():
        op.approve(recover)
    message = gk.sign_command(recover, list(honest.values()), ops.info, ops.rng)
    for member in members:
        fleet.meters[member].receive(message, NOW)
    resyncs = new.recover(message, gk.command_key(ops.info), directory, ops.rng)
    for member in members:
        fleet.meters[member].receive(resyncs[member], NOW)
        assert fleet.meters[member].group_key == new.state.tree.group_key
    assert new.state.tree.group_key not in attacker_tree_keys
    # the attacker cannot open a resync: it is sealed to the meter's own HPKE key
    impostor = gk.Meter(gk.MeterState(GROUP, members[0], ops.rng.random_bytes(32),
                                      command_key=gk.command_key(ops.info), controller_key=new.public_key, epoch=1))
    with pytest.raises(VerificationError):
        impostor.receive(resyncs[members[0]], NOW)
    # and everything the old controller key signs is refused
    for message in (fleet.controller.send(b"cut supply"), fleet.controller.resync(members[0], ops.rng)):
        for member in members:
            with pytest.raises((StateError, VerificationError)):
                fleet.meters[member].receive(message, NOW)


# -- issue 14: the reviewer's attacks (written first, against the unchanged code) ----------


def test_old_command_replayed_to_a_meter_that_joins_later_is_refused():
    """Spec 8.4/8.6.  Adversary: an eavesdropper (no key) that recorded a broadcast disconnect-all and
    replays it to a meter that joins later, within the command's lifetime or a year later; or a
    head-end that provisions the joiner from an old checkpoint."""
    ops = Operators(seed="late-joiner")
    fleet = ops.fleet
    recorded = ops.sign(ops.body("disconnect-all", {}), [1, 2, 3])
    for meter in fleet.meters.values():
        meter.receive(recorded, NOW)
    stale_checkpoint = fleet.checkpoint(seq=0, lifetime=DAY)   # signed before the command
    fleet.now = NOW + 10 * 60                    # ten minutes later, within the command's hour
    fleet.rekey(joins=[b"soon"])                 # provisioned from the checkpoint at the last command
    soon = fleet.meters[b"soon"]
    assert soon.state.command_seq == fleet.command_seq
    before = snapshot(soon)
    with pytest.raises(ReplayError):
        soon.receive(recorded, fleet.now)
    assert soon.state == before and soon.state.supply_on
    fleet.now = NOW + YEAR                       # a year later
    fleet.rekey(joins=[b"late"])
    late = fleet.meters[b"late"]
    with pytest.raises(ReplayError):
        late.receive(recorded, fleet.now)
    assert late.state.supply_on
    # a meter provisioned from the stale checkpoint still refuses the recording: it has expired
    sk, _ = hpke.DeriveKeyPair(bytes(32))
    with pytest.raises(StateError, match="expired"):   # and the stale checkpoint itself is refused a year on
        gk.Meter.provision(GROUP, b"late2", sk, gk.command_key(ops.info), stale_checkpoint, fleet.now)
    stale = gk.Meter.provision(GROUP, b"late2", sk, gk.command_key(ops.info), stale_checkpoint, NOW + HOUR)
    with pytest.raises(StateError, match="expired"):
        stale.receive(recorded, fleet.now)
    assert stale.state.supply_on
    # the operators undo a disconnect-all with reconnect-all (spec 8.1)
    undo = ops.sign(ops.body("reconnect-all", {}), [1, 2, 3])
    for member in sorted(fleet.controller.state.tree.members):
        if member not in (b"soon", b"late"):
            assert fleet.meters[member].receive(undo, fleet.now).applies_to_me
    assert all(meter.state.supply_on for meter in fleet.current())


def test_command_epoch_expiry_and_clock_are_checked():
    """Spec 8.4: a command for another epoch, expired, too far ahead, or received without a clock."""
    fleet = Fleet(3, seed="expiry")
    meter = fleet.meters[b"m000"]
    cases = [(fleet.command("disconnect-all", {}, epoch=1), NOW, StateError, "epoch"),
             (fleet.command("disconnect-all", {}), NOW + HOUR + 1, StateError, "expired"),
             (fleet.command("disconnect-all", {}, lifetime=gk.MAX_LIFETIME + 1), NOW, StateError, "ahead")]
    for message, now, error, match in cases:
        before = snapshot(meter)
        with pytest.raises(error, match=match):
            meter.receive(message, now)
        assert meter.state == before
    with pytest.raises(ParameterError, match="clock"):
        meter.receive(fleet.command("disconnect-all", {}))
    with pytest.raises(ParameterError):
        meter.receive(fleet.command("disconnect-all", {}), -1)
    last = fleet.command("disconnect", {1: [b"m001"]}, lifetime=gk.MAX_LIFETIME)
    assert not meter.receive(last, NOW + HOUR).applies_to_me     # within its lifetime, not for m000
    undo = fleet.command("reconnect", {1: [b"m000"]})
    fleet.meters[b"m000"].state.supply_on = False
    assert meter.receive(undo, NOW).applies_to_me and meter.state.supply_on


def test_checkpoints_provision_and_catch_up_meters():
    """Spec 8.6: a checkpoint must verify under the command key, be for this group, unexpired and not
    behind the meter; one for a later epoch carries a meter that missed a recovery forward."""
    fleet = Fleet(3, seed="checkpoints")
    sk, _ = hpke.DeriveKeyPair(bytes([1]) * 32)
    rogue = Ed25519PrivateKey.from_private_bytes(fleet.controller.state.signing_key)
    body = gk.checkpoint_body(GROUP, 0, 0, fleet.controller.public_key, NOW + HOUR)
    with pytest.raises(VerificationError):        # the head-end's key cannot make a checkpoint
        gk.Meter.provision(GROUP, b"x", sk, fleet.command_public, gk.encode_command(body, rogue.sign(
            gk.command_tbs(body))), NOW)
    with pytest.raises(VerificationError, match="another group"):
        gk.Meter.provision(b"nbh-18", b"x", sk, fleet.command_public, fleet.checkpoint(), NOW)
    with pytest.raises(DecodeError, match="checkpoint"):
        gk.Meter.provision(GROUP, b"x", sk, fleet.command_public, fleet.command("disconnect-all", {}), NOW)
    with pytest.raises(StateError, match="ahead"):
        gk.Meter.provision(GROUP, b"x", sk, fleet.command_public, fleet.checkpoint(lifetime=YEAR), NOW)
    meter = fleet.meters[b"m000"]
    meter.receive(fleet.command("disconnect", {1: [b"m002"]}), NOW)
    behind = fleet.checkpoint(seq=0)
    with pytest.raises(ReplayError):
        meter.receive(behind, NOW)
    meter.receive(fleet.checkpoint(), NOW)        # at the meter's own position: accepted, changes nothing
    # a meter that missed the rekey-group catches up from a checkpoint of the new epoch
    new = gk.Controller(gk.ControllerState(GROUP, 1, 3, fleet.rng.random_bytes(32)))
    directory = fleet.directory()
    recovery = fleet.command("rekey-group", {1: 1, 2: new.public_key, 3: gk.directory_hash(GROUP, 1, directory)})
    for m in (b"m001", b"m002"):
        fleet.meters[m].receive(recovery, NOW)
    resyncs = new.recover(recovery, fleet.command_public, directory, fleet.rng)
    old_controller, fleet.controller = fleet.controller, new
    with pytest.raises(StateError, match="epoch"):  # a checkpoint of the old epoch at a recovered meter
        fleet.meters[b"m001"].receive(gk.encode_command(
            gk.checkpoint_body(GROUP, fleet.command_seq, 0, old_controller.public_key, NOW + HOUR),
            fleet.command_key.sign(gk.command_tbs(
                gk.checkpoint_body(GROUP, fleet.command_seq, 0, old_controller.public_key, NOW + HOUR)))), NOW)
    same_epoch_other_key = gk.checkpoint_body(GROUP, fleet.command_seq, 0, new.public_key, NOW + HOUR)
    with pytest.raises(StateError, match="another controller key"):
        meter.receive(fleet.sign(same_epoch_other_key), NOW)
    meter.receive(fleet.checkpoint(), NOW)
    assert meter.state.epoch == 1 and meter.state.controller_key == new.public_key and meter.state.keys is None
    meter.receive(resyncs[b"m000"], NOW)
    assert meter.group_key == new.state.tree.group_key


def test_recovery_does_not_keep_a_phantom_member_of_the_captured_head_end():
    """Spec 9.2.  Adversary: the captured head-end (controller key, its member directory) adds a phantom
    member with the attacker's HPKE key, which every meter accepts; after recovery the phantom gets no
    key of the new epoch, because the operators sign the hash of the directory they reviewed."""
    ops = Operators(seed="phantom")
    fleet = ops.fleet
    honest_directory = fleet.directory()
    phantom_sk, phantom_pk = hpke.DeriveKeyPair(b"\x07" * 32)
    message, _ = fleet.controller.rekey({b"phantom": phantom_pk}, [], fleet.rng)
    fleet.broadcast(message, skip=[b"phantom"])   # every meter accepts the join
    new = gk.Controller(gk.ControllerState(GROUP, 1, 3, ops.rng.random_bytes(32)))
    recover = ops.body("rekey-group", {1: 1, 2: new.public_key, 3: gk.directory_hash(GROUP, 1, honest_directory)})
    command = ops.sign(recover, [3, 4, 5])
    for meter in fleet.meters.values():
        meter.receive(command, NOW)
    head_end_directory = dict(fleet.controller.state.devices)   # what the captured head-end reports
    assert b"phantom" in head_end_directory and b"phantom" not in honest_directory
    with pytest.raises(VerificationError, match="directory"):
        new.recover(command, gk.command_key(ops.info), head_end_directory, ops.rng)
    swapped = {**honest_directory, b"m001": phantom_pk}     # or a member's HPKE key swapped
    with pytest.raises(VerificationError, match="directory"):
        new.recover(command, gk.command_key(ops.info), swapped, ops.rng)
    with pytest.raises(StateError, match="recover"):
        new.start_epoch(head_end_directory, ops.rng)
    assert new.state.tree is None
    resyncs = new.recover(command, gk.command_key(ops.info), honest_directory, ops.rng)
    assert b"phantom" not in resyncs and b"phantom" not in new.state.tree.members
    for member, resync in resyncs.items():
        fleet.meters[member].receive(resync, NOW)
        assert fleet.meters[member].group_key == new.state.tree.group_key
    phantom = gk.Meter(gk.MeterState(GROUP, b"phantom", phantom_sk, command_key=gk.command_key(ops.info),
                                     controller_key=new.public_key, epoch=1))
    for resync in resyncs.values():
        with pytest.raises(VerificationError):
            phantom.receive(resync, NOW)


def test_recover_checks_the_command():
    """Spec 9.2: the new controller starts only under the operators' rekey-group for its own epoch and key."""
    fleet = Fleet(3, seed="recover")
    directory = fleet.directory()
    new = gk.Controller(gk.ControllerState(GROUP, 1, 3, fleet.rng.random_bytes(32)))
    other = gk.Controller(gk.ControllerState(GROUP, 2, 3, fleet.rng.random_bytes(32)))
    rogue = Ed25519PrivateKey.from_private_bytes(fleet.controller.state.signing_key)
    good = {1: 1, 2: new.public_key, 3: gk.directory_hash(GROUP, 1, directory)}
    cases = [(fleet.command("rekey-group", good, key=rogue), "signature"),
             (fleet.command("disconnect-all", {}), "rekey-group"),
             (fleet.command("rekey-group", {**good, 2: other.public_key}), "controller key"),
             (fleet.command("rekey-group", {**good, 1: 2}), "epoch"),
             (fleet.command("rekey-group", {**good, 3: gk.directory_hash(GROUP, 0, directory)}), "directory")]
    for command, match in cases:
        with pytest.raises(VerificationError, match=match):
            new.recover(command, fleet.command_public, directory, fleet.rng)
    with pytest.raises(DecodeError):
        new.recover(b"\xa0", fleet.command_public, directory, fleet.rng)
    elsewhere = gk.Controller(gk.ControllerState(b"nbh-18", 1, 3, new.state.signing_key))
    with pytest.raises(VerificationError, match="another group"):
        elsewhere.recover(fleet.command("rekey-group", good), fleet.command_public, directory, fleet.rng)
    assert new.state.tree is None and new.state.seq == 0
    new.recover(fleet.command("rekey-group", good), fleet.command_public, directory, fleet.rng)
    with pytest.raises(StateError, match="started"):
        new.recover(fleet.command("rekey-group", good), fleet.command_public, directory, fleet.rng)


def test_operator_restored_from_a_snapshot_does_not_sign_twice_with_the_same_nonces():
    """Adversary: the coordinator (head-end) with t - 1 = 2 captured operator shares, who can restore an
    honest operator's host from a snapshot taken between round one and round two."""
    ops = Operators(5, 3, meters=3, seed="rollback")
    captured = [ops.operators[0], ops.operators[1]]
    victim = ops.operators[2]
    gpk = ops.info.group_public_key
    legit = ops.body("disconnect", {1: [b"m002"]})
    victim.approve(legit)
    mine = victim.commit(ops.rng)
    snapshot_of_victim = copy.deepcopy(victim.state)        # the operator's backup, after commit
    shares, equations = [], []
    for round_ in range(3):
        if round_:
            victim.state = copy.deepcopy(snapshot_of_victim)   # restore from the backup
        nonces = {op.identifier: frost.commit(op.identifier, op.state.signer.key_package.secret_share,
                                              ops.rng)[0] for op in captured}
        commitments = sorted([n.commitments for n in nonces.values()] + [mine], key=lambda c: c.identifier)
        try:
            share = victim.sign(legit, commitments)
        except StateError:
            break
        msg = gk.command_tbs(legit)
        factors = dict(frost.compute_binding_factors(gpk, commitments, msg))
        challenge = frost.compute_challenge(frost.compute_group_commitment(commitments, list(factors.items())),
                                            gpk, msg)
        lam = frost.derive_interpolating_value([1, 2, 3], 3)
        shares.append(share)
        equations.append((factors[3], lam * challenge % ed25519.L, share.share))
    recovered = None
    if len(equations) == 3:   # z = d + e rho + (lam c) s: three equations in d, e, s
        (r1, k1, z1), (r2, k2, z2), (r3, k3, z3) = equations
        L = ed25519.L
        # eliminate d: (z1 - z2) = e (r1 - r2) + s (k1 - k2), (z1 - z3) = e (r1 - r3) + s (k1 - k3)
        a1, b1, c1 = (r1 - r2) % L, (k1 - k2) % L, (z1 - z2) % L
        a2, b2, c2 = (r1 - r3) % L, (k1 - k3) % L, (z1 - z3) % L
        recovered = (a1 * c2 - a2 * c1) * pow(a1 * b2 - a2 * b1, -1, L) % L
    extracted = recovered == victim.state.signer.key_package.secret_share
    accepted = 0
    if extracted:   # t - 1 captured shares and the extracted one sign disconnect-all without any approval
        evil = ops.body("disconnect-all", {})
        stolen = [op.state.signer.key_package for op in captured]
        stolen.append(dataclasses.replace(victim.state.signer.key_package, secret_share=recovered))
        signers = [frost.Signer(kp) for kp in stolen]
        commitments = [s.commit(ops.rng) for s in signers]
        sig = frost.aggregate_and_verify(ops.info, commitments, gk.command_tbs(evil),
                                         [s.sign(gk.command_tbs(evil), commitments) for s in signers])
        for meter in ops.fleet.meters.values():
            meter.receive(gk.encode_command(evil, sig.to_bytes()), NOW)
            accepted += not meter.state.supply_on
    assert len(shares) == 1 and not extracted, (
        f"the restored operator signed {len(shares)} times with one nonce pair; key share extracted: {extracted}; "
        f"forged disconnect-all cut {accepted} of {len(ops.fleet.meters)} meters")
