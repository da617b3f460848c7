"""Group key roles as processes (specs/roles.md section 7): scenario, state codecs, negatives, crashes.

Adversaries played here: the network (flips a byte of one message, replays a recorded message from
another route, after a restart), the attacker with the head-end's key and t-1 operators' key shares
(forged disconnect-all), and a crash (SIGKILL at any crash point of the controller, a member or an
operator, then a restart from its state file).
"""

from __future__ import annotations

import hashlib
import os
import sqlite3
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from protocols import groupkeys as gk
from protocols.errors import (
    DecodeError, ReplayError, ResyncRequiredError, StateError, StateFileError, VerificationError,
)
from protocols.primitives import cbor
from protocols.schemes import frost
from protocols.system.roles import groupkeys as roles
from protocols.system.roles import groupkeys_state as codec
from protocols.system.roles import harness, wire
from protocols.system.roles.base import Deployment
from protocols.system.roles.process import Party, role_spec, write_deployment
from protocols.system.roles.wire import Envelope

SEED = "interop"


@pytest.fixture(scope="module")
def deployment() -> Deployment:
    return roles.deploy("test", members=3, operators=3, threshold=2)


def local_net(deployment: Deployment, directory: Path, **kw: object) -> harness.Network:
    return harness.open_network(deployment, str(directory), seed=SEED, in_process=True, **kw)  # type: ignore[arg-type]


def started(net: harness.Network) -> None:
    net.deliver([roles.env("controller", "env.start", {})])


def tariff(net: harness.Network, text: bytes, sender: str = "controller") -> list[Envelope]:
    """The controller's data messages (one per member), not yet delivered."""
    return net.send(roles.env(sender, "env.send", {1: text}))


def replay(message: Envelope) -> Envelope:
    """The same group message bytes on another route (the harness relays it): a new line, not a re-sent one."""
    return Envelope(wire.HARNESS, message.to, message.type, message.body)


def refused(net: harness.Network, message: Envelope) -> harness.Refused:
    with pytest.raises(harness.Refused) as info:
        net.deliver([message])
    return info.value


# --------------------------------------------------------------------------
# the scenario in process, and the interop run with every party a process


def test_scenario_in_process(tmp_path: Path) -> None:
    checks, net, figures = harness.run_scenario("groupkeys", str(tmp_path), in_process=True,
                                                options={"members": 3, "operators": 3, "threshold": 2})
    assert checks.ok, [c for c in checks.results if not c.passed]
    assert len(checks.results) == 10
    assert figures["members"] == 3 and figures["read"] == 3 and figures["applied"] == 1 and figures["off"] == 1


def test_scenario_as_processes_matches_in_process(tmp_path: Path) -> None:
    options = {"members": 3, "operators": 3, "threshold": 2}
    checks, net, _ = harness.run_scenario("groupkeys", str(tmp_path / "p"), options=options)
    assert checks.ok, [c for c in checks.results if not c.passed]
    _, local, _ = harness.run_scenario("groupkeys", str(tmp_path / "l"), in_process=True, options=options)
    assert harness.first_divergence(local.transcript, net.transcript) is None


def test_deploy_is_deterministic_and_checked() -> None:
    a, b = roles.deploy("x", members=3, operators=3, threshold=2), roles.deploy("x", members=3, operators=3, threshold=2)
    assert cbor.encode(a.parties) == cbor.encode(b.parties)
    assert cbor.encode(a.parties) != cbor.encode(roles.deploy("y", members=3, operators=3, threshold=2).parties)
    with pytest.raises(Exception) as info:
        roles.deploy("x", members=2)
    assert type(info.value).__name__ == "ParameterError"


# --------------------------------------------------------------------------
# state codecs


def test_state_codecs_round_trip(deployment: Deployment, tmp_path: Path) -> None:
    net = local_net(deployment, tmp_path)
    started(net)
    net.deliver(net.send(roles.env("controller", "env.rekey", {1: [[b"meter-new", deployment.public["devices"]
                                                                       ["meter-new"]]], 2: [b"meter-2"]})))  # type: ignore[index]
    net.close()
    for ident, key, decode, encode in (
            ("controller", "controller", codec.decode_controller, lambda o: codec.encode_controller(o.state)),
            ("meter-1", "meter", codec.decode_meter, lambda o: codec.encode_meter(o.state))):
        db = sqlite3.connect(tmp_path / f"{ident}.sqlite")
        raw = db.execute("SELECT value FROM kv WHERE name = ?", (key,)).fetchone()[0]
        db.close()
        assert encode(decode(raw)) == raw
    ctl = codec.decode_controller(_kv(tmp_path, "controller", "controller"))
    assert ctl.state.tree is not None and b"meter-new" in ctl.state.tree.members
    assert b"meter-2" not in ctl.state.tree.members


def _kv(directory: Path, ident: str, name: str) -> bytes:
    db = sqlite3.connect(directory / f"{ident}.sqlite")
    try:
        return bytes(db.execute("SELECT value FROM kv WHERE name = ?", (name,)).fetchone()[0])
    finally:
        db.close()


def _set_kv(directory: Path, ident: str, name: str, value: bytes) -> None:
    db = sqlite3.connect(directory / f"{ident}.sqlite")
    db.execute("UPDATE kv SET value = ? WHERE name = ?", (value, name))
    db.commit()
    db.close()


def _open(deployment: Deployment, directory: Path, ident: str) -> Party:
    return Party.open(role_spec("groupkeys", deployment.parties[ident][0]), str(directory / f"{ident}.sqlite"),
                      ident, SEED)


@pytest.mark.parametrize("ident,name,corrupt", [
    ("meter-1", "meter", lambda raw: raw[:-1]),                                   # truncated CBOR
    ("meter-1", "meter", lambda raw: cbor.encode({1: b"g"})),                     # wrong shape
    ("meter-1", "clock", lambda raw: cbor.encode(-1)),                            # out of range
    ("controller", "controller", lambda raw: raw.replace(b"\x58\x20", b"\x58\x1f", 1)[:-1]),
    ("operator-1", "operator", lambda raw: cbor.encode({1: b"g", 2: {1: 1}})),
])
def test_corrupt_state_is_a_state_file_error(deployment: Deployment, tmp_path: Path, ident: str, name: str,
                                             corrupt: Callable[[bytes], bytes]) -> None:
    write_deployment(deployment, str(tmp_path))
    _set_kv(tmp_path, ident, name, corrupt(_kv(tmp_path, ident, name)))
    party = _open(deployment, tmp_path, ident)
    message = {"meter-1": roles.env("meter-1", "env.status", {1: 1}),
               "controller": roles.env("controller", "env.start", {}),
               "operator-1": roles.env("operator-1", "env.commit", {1: bytes(32), 2: 1})}[ident]
    with pytest.raises(StateFileError):
        party.handle(message)
    party.close()


def test_corrupt_key_tree_is_a_state_file_error(deployment: Deployment, tmp_path: Path) -> None:
    net = local_net(deployment, tmp_path)
    started(net)
    net.close()
    m = cbor.decode(_kv(tmp_path, "controller", "controller"))
    m[6][4][0] = m[6][4][0][:-1]                  # a level's keys one byte short
    _set_kv(tmp_path, "controller", "controller", cbor.encode(m))
    party = _open(deployment, tmp_path, "controller")
    with pytest.raises(StateFileError, match="key tree"):
        party.handle(roles.env("controller", "env.send", {1: b"x"}))
    party.close()


def test_corrupt_stored_nonce_is_a_state_file_error(deployment: Deployment, tmp_path: Path) -> None:
    net = local_net(deployment, tmp_path)
    body = gk.command_body(roles.GROUP, 1, "disconnect", {1: [b"meter-1"]}, epoch=0, not_after=roles.NOW + 60)
    digest = hashlib.sha256(gk.command_tbs(body)).digest()
    net.deliver([roles.env("operator-1", "env.approve", {1: cbor.encode(body), 2: 1})])
    key = cbor.decode(net.deliver([roles.env("operator-1", "env.commit", {1: digest, 2: 1})])[0].body)[2]
    other = cbor.decode(net.deliver([roles.env("operator-2", "env.approve", {1: cbor.encode(body), 2: 1}),
                                     roles.env("operator-2", "env.commit", {1: digest, 2: 1})])[0].body)[2]
    net.close()
    db = sqlite3.connect(tmp_path / "operator-1.sqlite")
    db.execute("UPDATE nonces SET hiding = ?", (bytes(31) + b"\x01",))
    db.commit()
    db.close()
    party = _open(deployment, tmp_path, "operator-1")
    with pytest.raises(StateFileError, match="nonces"):
        party.handle(roles.env("operator-1", "env.sign", {1: cbor.encode(body), 2: sorted([key, other])}))
    party.close()


# --------------------------------------------------------------------------
# negatives, each with its exact error


def test_tampered_message_is_refused_and_named(deployment: Deployment, tmp_path: Path) -> None:
    """The network flips the last byte (in the signature) of the controller's data message to meter-1."""
    def flip(step: int, message: Envelope) -> Envelope:
        if message.type == "data" and message.to == "meter-1":
            return Envelope(message.sender, message.to, message.type, message.body[:-1] + bytes([message.body[-1] ^ 1]))
        return message
    net = local_net(deployment, tmp_path, tamper=flip)
    started(net)
    messages = tariff(net, b"tariff")
    exc = refused(net, messages[0])
    assert (exc.message.type, exc.message.sender, exc.message.to, exc.error) == \
        ("data", "controller", "meter-1", "VerificationError")
    assert exc.step == net.steps and f"step {exc.step}: meter-1 refused data from controller" in str(exc)


@settings(max_examples=8, deadline=None)
@given(position=st.integers(min_value=0, max_value=10_000))
def test_any_flipped_byte_is_refused(deployment: Deployment, tmp_path_factory: pytest.TempPathFactory,
                                     position: int) -> None:
    net = local_net(deployment, tmp_path_factory.mktemp("flip"))
    started(net)
    message = tariff(net, b"tariff")[0]
    at = position % len(message.body)
    body = message.body[:at] + bytes([message.body[at] ^ 0x01]) + message.body[at + 1:]
    exc = refused(net, Envelope(message.sender, message.to, message.type, body))
    assert exc.error in ("DecodeError", "VerificationError")
    assert net.deliver([message])[0].type == "accepted"       # the untampered message still goes through


def test_replayed_data_is_refused(deployment: Deployment, tmp_path: Path) -> None:
    net = local_net(deployment, tmp_path)
    started(net)
    first = tariff(net, b"one")
    net.deliver(first)
    assert refused(net, replay(first[0])).error == "ReplayError"
    net.deliver(tariff(net, b"two"))
    assert refused(net, replay(first[0])).error == "ReplayError"


def test_resent_line_is_answered_from_the_journal_not_accepted_again(deployment: Deployment, tmp_path: Path) -> None:
    """Spec 7.1: an identical line gets its stored answer; the member's state does not move."""
    net = local_net(deployment, tmp_path)
    started(net)
    first = tariff(net, b"one")
    answer = net.deliver(first[:1])
    net.deliver(tariff(net, b"two")[:1])
    before = roles.accepted(net.deliver([roles.env("meter-1", "env.status", {1: 1})]))["meter-1"]
    assert net.deliver(first[:1]) == answer
    after = roles.accepted(net.deliver([roles.env("meter-1", "env.status", {1: 2})]))["meter-1"]
    assert before[3] == after[3] and before[3] > cbor.decode(first[0].body)[5]


def test_wrong_epoch_command_is_refused(deployment: Deployment, tmp_path: Path) -> None:
    net = local_net(deployment, tmp_path)
    started(net)
    body = gk.command_body(roles.GROUP, 1, "disconnect", {1: [b"meter-1"]}, epoch=1, not_after=roles.NOW + 60)
    command = roles.operators_sign(net, deployment, body, ["operator-1", "operator-2"], session=1)
    exc = refused(net, Envelope(wire.HARNESS, "meter-1", "command", command))
    assert exc.error == "StateError" and "epoch 1" in exc.text


def test_departed_member_needs_a_resync(deployment: Deployment, tmp_path: Path) -> None:
    net = local_net(deployment, tmp_path)
    started(net)
    net.deliver(net.send(roles.env("controller", "env.rekey", {1: [], 2: [b"meter-2"]})))
    data = tariff(net, b"after")
    assert "meter-2" not in {m.to for m in data}
    assert refused(net, Envelope(wire.HARNESS, "meter-2", "data", data[0].body)).error == ResyncRequiredError.__name__


_BODY = gk.command_body(roles.GROUP, 1, "disconnect-all", {}, epoch=0, not_after=roles.NOW + 60)
SIGNED_BODY = cbor.encode({**_BODY, 9: bytes(64)})
OTHER_GROUP = cbor.encode({**_BODY, 3: b"another-group"})


@pytest.mark.parametrize("message,error", [
    (Envelope(wire.HARNESS, "meter-1", "env.clock", cbor.encode({1: b"x" * roles.SMALL_BODY})), "DecodeError"),
    (Envelope(wire.HARNESS, "meter-1", "env.clock", cbor.encode({1: roles.NOW - 1})), "StateError"),
    (Envelope("controller", "meter-1", "env.clock", cbor.encode({1: roles.NOW})), "VerificationError"),
    (Envelope(wire.HARNESS, "meter-1", "env.status", cbor.encode({1: 1, 2: 2})), "DecodeError"),
    (Envelope(wire.HARNESS, "meter-1", "env.provision", cbor.encode({1: b"x"})), "StateError"),
    (Envelope(wire.HARNESS, "meter-1", "env.reboot", b"\xa0"), "DecodeError"),
    (Envelope(wire.HARNESS, "meter-late", "env.status", cbor.encode({1: 1})), "StateError"),
    (Envelope(wire.HARNESS, "controller", "env.send", cbor.encode({1: bytes(roles.DATA_BODY)})), "DecodeError"),
    (Envelope(wire.HARNESS, "controller", "env.send", cbor.encode({1: b"x"})), "StateError"),   # not started
    (Envelope(wire.HARNESS, "operator-1", "env.commit", cbor.encode({1: bytes(32), 2: 1})), "StateError"),
    (Envelope(wire.HARNESS, "operator-1", "env.approve", cbor.encode({1: cbor.encode({2: "data"}), 2: 1})), "DecodeError"),
    (Envelope(wire.HARNESS, "operator-1", "env.approve", cbor.encode({1: SIGNED_BODY, 2: 1})), "DecodeError"),
    (Envelope(wire.HARNESS, "operator-1", "env.approve", cbor.encode({1: OTHER_GROUP, 2: 1})), "VerificationError"),
])
def test_bad_env_inputs(deployment: Deployment, tmp_path: Path, message: Envelope, error: str) -> None:
    net = local_net(deployment, tmp_path)
    assert refused(net, message).error == error


def test_oversized_env_body_is_refused_before_decoding(deployment: Deployment, tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    net = local_net(deployment, tmp_path)

    real = cbor.decode_map

    def guarded(data: bytes, *args: object, **kw: object) -> object:
        if len(data) > roles.SMALL_BODY and all(b == 0 for b in data):
            raise AssertionError("an oversized body was decoded")
        return real(data, *args, **kw)  # type: ignore[arg-type]
    monkeypatch.setattr(cbor, "decode_map", guarded)
    for ident, type_, limit in (("meter-1", "env.clock", roles.SMALL_BODY),
                                ("controller", "env.send", roles.DATA_BODY),
                                ("controller", "env.rekey", roles.DIRECTORY_BODY)):
        assert refused(net, Envelope(wire.HARNESS, ident, type_, bytes(limit + 1))).error == "DecodeError"


def test_line_type_must_name_the_message_kind(deployment: Deployment, tmp_path: Path) -> None:
    net = local_net(deployment, tmp_path)
    started(net)
    data = tariff(net, b"x")[0]
    assert refused(net, Envelope(wire.HARNESS, "meter-1", "rekey", data.body)).error == "DecodeError"


def test_operator_signs_only_what_it_approved_and_each_nonce_once(deployment: Deployment, tmp_path: Path) -> None:
    net = local_net(deployment, tmp_path)
    body = gk.command_body(roles.GROUP, 1, "disconnect", {1: [b"meter-1"]}, epoch=0, not_after=roles.NOW + 60)
    other = gk.command_body(roles.GROUP, 1, "disconnect", {1: [b"meter-2"]}, epoch=0, not_after=roles.NOW + 60)
    digest = hashlib.sha256(gk.command_tbs(body)).digest()
    commitments = []
    for op in ("operator-1", "operator-2"):
        net.deliver([roles.env(op, "env.approve", {1: cbor.encode(body), 2: 1})])
        commitments.append(cbor.decode(net.deliver([roles.env(op, "env.commit", {1: digest, 2: 1})])[0].body)[2])
    package = sorted(commitments)
    # Not approved: refused before any nonce is touched.
    assert refused(net, roles.env("operator-1", "env.sign", {1: cbor.encode(other), 2: package})).error == "StateError"
    net.deliver([roles.env("operator-1", "env.approve", {1: cbor.encode(other), 2: 1})])
    # Approved, but the nonces were committed for another command.
    assert refused(net, roles.env("operator-1", "env.sign", {1: cbor.encode(other), 2: package})).error == "StateError"
    sign = roles.env("operator-1", "env.sign", {1: cbor.encode(body), 2: package})
    share = net.deliver([sign])
    # The identical line again: its stored answer, the same share (one nonce, one share).
    assert net.deliver([sign]) == share
    # The same nonces in a new signing package: refused, even for a command approved again.
    third = gk.command_body(roles.GROUP, 1, "disconnect", {1: [b"meter-3"]}, epoch=0, not_after=roles.NOW + 60)
    net.deliver([roles.env("operator-1", "env.approve", {1: cbor.encode(body), 2: 2}),
                 roles.env("operator-1", "env.approve", {1: cbor.encode(third), 2: 2})])
    exc = refused(net, roles.env("operator-1", "env.sign", {1: cbor.encode(third), 2: package}))
    assert exc.error == "ReplayError"
    # A list without this operator, or shorter than the threshold.
    assert refused(net, roles.env("operator-1", "env.sign", {1: cbor.encode(body), 2: package[1:]})).error == \
        "ParameterError"


def test_forgeries_are_refused(deployment: Deployment, tmp_path: Path) -> None:
    """The attacker: the head-end's signing key, and t-1 operators' key shares."""
    net = local_net(deployment, tmp_path)
    started(net)
    evil = gk.command_body(roles.GROUP, 1, "disconnect-all", {}, epoch=0, not_after=roles.NOW + 60)
    for forged in (roles.forge_with_controller_key(evil, deployment.parties["controller"][1]["signing_key"]),
                   roles.forge_with_shares(evil, deployment, ["operator-1"])):
        assert refused(net, Envelope(wire.HARNESS, "meter-1", "command", forged)).error == "VerificationError"
    status = roles.accepted(net.deliver([roles.env("meter-1", "env.status", {1: 1})]))["meter-1"]
    assert status[5] is True and status[4] == 0


# --------------------------------------------------------------------------
# real processes: the finding, the nonces, kills at every boundary


class Victims:
    """A network whose parties run in this process except ``victims``, each a real process.

    A victim's n-th incarnation runs with USAPP_CRASH_AT = schedule[n] (none once the schedule is
    used up) and USAPP_CRASH_TRACE=1, its stderr in DIR/ID.log.  With ``retry`` a killed victim is
    restarted at once and handed the same line again (the harness's retransmission).
    """

    def __init__(self, deployment: Deployment, directory: Path, schedules: dict[str, list[int]],
                 retry: bool = True) -> None:
        self.deployment, self.directory, self.schedules, self.retry = deployment, directory, schedules, retry
        self.kills = {ident: 0 for ident in schedules}
        write_deployment(deployment, str(directory))
        self.net = harness.Network({}, factory=self.factory)
        for ident in sorted(deployment.parties):
            self.net.parties[ident] = self.factory(ident)

    def factory(self, ident: str) -> harness.Endpoint:
        role = self.deployment.parties[ident][0]
        state = str(self.directory / f"{ident}.sqlite")
        if ident not in self.schedules:
            return harness.LocalEndpoint("groupkeys", role, state, ident, SEED)
        return _Victim(self, ident, harness.role_command("groupkeys", role, state, ident, SEED))

    def log(self, ident: str) -> list[str]:
        """The crash-point labels of every incarnation of ``ident``, in order."""
        text = (self.directory / f"{ident}.log").read_text()
        return [line.split()[2] for line in text.splitlines() if line.startswith("usapp-crash-point ")]


class _Victim:
    def __init__(self, owner: Victims, ident: str, command: list[str]) -> None:
        self.owner, self.ident, self.command = owner, ident, command
        self._start()

    def _start(self) -> None:
        schedule = self.owner.schedules[self.ident]
        env = {"USAPP_CRASH_TRACE": "1"}
        if schedule:
            env["USAPP_CRASH_AT"] = str(schedule.pop(0))
        self.logfile = open(self.owner.directory / f"{self.ident}.log", "ab")
        self.inner = harness.ProcessEndpoint(self.ident, self.command, self.logfile, env)

    def exchange(self, message: Envelope) -> tuple[list[Envelope], Envelope]:
        while True:
            try:
                return self.inner.exchange(message)
            except harness.PartyDied:
                self.owner.kills[self.ident] += 1
                self.inner.close()
                self.logfile.close()
                if not self.owner.retry:
                    raise
                self._start()

    def close(self) -> int:
        code = self.inner.close()
        self.logfile.close()
        return code


def test_finding_a_restarted_member_refuses_a_replay(deployment: Deployment, tmp_path: Path) -> None:
    """THE FINDING (issue 17): a member killed right after it committed a data message, restarted from
    its state file, refuses a replay of an already-accepted data message with ReplayError.

    Mutation check: with the member's state not stored (its replay window lost at the kill) the
    replays are accepted and this test fails.

    A replay is a NEW line carrying the old message (here: relayed by the harness instead of the
    controller); the identical line re-sent is answered from the journal with the same outputs
    (spec 7.1), which is no second acceptance."""
    run = Victims(deployment, tmp_path, {"meter-1": []}, retry=False)
    net = run.net
    started(net)
    one = tariff(net, b"one")
    net.deliver(one)
    two = [m for m in tariff(net, b"two") if m.to == "meter-1"]
    run.schedules["meter-1"] = [4]               # read, accepted, before-commit, committed: kill there
    net.restart("meter-1")
    with pytest.raises(harness.PartyDied):
        net.send(two[0])
    assert run.log("meter-1")[-1] == "committed" and run.kills["meter-1"] == 1
    net.restart("meter-1")                       # from its state file, no crash planned
    for old in (one, two):
        exc = refused(net, replay([m for m in old if m.to == "meter-1"][0]))
        assert exc.error == ReplayError.__name__ and exc.message.to == "meter-1"
    # The window survived: the member's seq is the second message's.
    status = roles.accepted(net.deliver([roles.env("meter-1", "env.status", {1: 1})]))["meter-1"]
    assert status[3] == cbor.decode(two[0].body)[5]
    # The lost answer: the identical line re-sent gets the stored outputs (the plaintext) once more.
    answer = roles.accepted(net.deliver(two))["meter-1"]
    assert answer[7] == b"two" and answer[3] == status[3]
    net.close()


def _sign_with_kills(deployment: Deployment, directory: Path, schedule: list[int]) -> tuple[Victims, bytes, bytes]:
    run = Victims(deployment, directory, {"operator-1": schedule})
    body = gk.command_body(roles.GROUP, 1, "disconnect", {1: [b"meter-1"]}, epoch=0, not_after=roles.NOW + 60)
    command = roles.operators_sign(run.net, deployment, body, ["operator-1", "operator-2"], session=1)
    return run, gk.command_tbs(body), command


def _shares(net: harness.Network) -> list[bytes]:
    return [m.body for m in net.transcript if m.type == "frost.share" and m.sender == "operator-1"]


def _operator_rows(directory: Path) -> tuple[int, int]:
    db = sqlite3.connect(directory / "operator-1.sqlite")
    try:
        return (db.execute("SELECT count(*) FROM nonces").fetchone()[0],
                db.execute("SELECT count(*) FROM spent").fetchone()[0])
    finally:
        db.close()


def test_operator_killed_between_commit_and_sign_signs_once(deployment: Deployment, tmp_path: Path) -> None:
    """One FROST nonce, one share: kills after round one is committed, inside round two before its
    commit, and after it (the share lost): each restart finishes with the same single share."""
    # operator-1's points: approve: read, before-commit, committed (1-3); commit: read, draw, draw,
    # nonce-stored, before-commit, committed, wrote (4-10); sign: read, nonce-spent, before-commit,
    # committed, wrote (11-15).  Kill at 9 (round one committed, commitment not sent); the second
    # incarnation re-reads the commit line from its journal (read, wrote = 1-2) and is killed at
    # sign's nonce-spent (4); the third at sign's committed (4): the share is committed, not sent.
    run, tbs, command = _sign_with_kills(deployment, tmp_path / "a", [9, 4, 4])
    run.net.close()
    assert run.kills["operator-1"] == 3
    labels = run.log("operator-1")
    assert [labels[8], labels[12], labels[16]] == ["committed", "nonce-spent", "committed"]
    frost.verify(tbs, cbor.decode(command)[9], deployment.public["command_key"])  # type: ignore[arg-type]
    assert len(set(_shares(run.net))) == 1
    assert _operator_rows(tmp_path / "a") == (0, 1 + len(deployment.parties["operator-1"][1]["spent"]))  # type: ignore[arg-type]


def test_restarted_operator_never_reuses_a_nonce(deployment: Deployment, tmp_path: Path) -> None:
    """After a kill once the share was committed, a different signing package with the same
    commitment (another message) is refused with ReplayError by the restarted operator."""
    run = Victims(deployment, tmp_path, {"operator-1": [14]}, retry=True)   # sign's committed
    net = run.net
    body = gk.command_body(roles.GROUP, 1, "disconnect", {1: [b"meter-1"]}, epoch=0, not_after=roles.NOW + 60)
    roles.operators_sign(net, deployment, body, ["operator-1", "operator-2"], session=1)
    assert run.kills["operator-1"] == 1
    mine = [cbor.decode(m.body)[2] for m in net.transcript if m.type == "frost.commitment"]
    other = gk.command_body(roles.GROUP, 1, "disconnect", {1: [b"meter-2"]}, epoch=0, not_after=roles.NOW + 60)
    net.deliver([roles.env("operator-1", "env.approve", {1: cbor.encode(other), 2: 1})])
    exc = refused(net, roles.env("operator-1", "env.sign", {1: cbor.encode(other), 2: sorted(mine)}))
    assert exc.error == "ReplayError"
    net.close()


BOUNDARIES = ("read", "before-commit", "committed", "wrote")


def _inputs(labels: list[str]) -> list[list[str]]:
    """A victim's crash-point trace cut into its inputs (each starts with ``read``)."""
    out: list[list[str]] = []
    for label in labels:
        if label == "read":
            out.append([])
        out[-1].append(label)
    return out


def schedule_for(labels: list[str], targets: list[tuple[int, str]]) -> list[int]:
    """USAPP_CRASH_AT of each incarnation so that the kills fall at ``targets`` = (input, label) of
    the reference trace ``labels``.  A restarted victim is handed its last input again: afresh if the
    kill came before ``committed`` (the same points as the reference), else from the journal
    (``read`` then one ``wrote`` per output); a label the re-run does not reach is skipped."""
    inputs = _inputs(labels)
    at: list[int] = []
    start, first, fresh = 0, inputs[0], True
    for j, label in targets:
        segment = first if j == start else inputs[j]
        if label not in segment:
            continue
        k = segment.index(label)
        at.append(k + 1 if j == start else len(first) + sum(len(inputs[i]) for i in range(start + 1, j)) + k + 1)
        committed = (j == start and not fresh) or "committed" in segment[:k + 1]
        start, fresh = j, not committed
        first = inputs[j] if fresh else ["read"] + ["wrote"] * inputs[j].count("wrote")
    return at


def _reference(tmp_path: Path, victims: tuple[str, ...]) -> tuple[harness.Checks, list[Envelope], dict[str, list[str]]]:
    run = Victims(roles.deploy("crash", members=3, operators=3, threshold=2), tmp_path / "ref",
                  {v: [] for v in victims})
    checks = harness.Checks()
    roles.scenario(run.net, run.deployment, checks)
    run.net.close()
    return checks, run.net.transcript, {v: run.log(v) for v in victims}


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> tuple[harness.Checks, list[Envelope], dict[str, list[str]]]:
    return _reference(tmp_path_factory.mktemp("reference"), CRASH_VICTIMS)


CRASH_VICTIMS = ("controller", "meter-1", "operator-2")
"""One party of each stateful role; operator-2 signs every command and checkpoint of the scenario."""


def _crash_run(directory: Path, schedules: dict[str, list[int]]) -> tuple[harness.Checks, Victims]:
    run = Victims(roles.deploy("crash", members=3, operators=3, threshold=2), directory, schedules)
    checks = harness.Checks()
    roles.scenario(run.net, run.deployment, checks)
    run.net.close()
    return checks, run


@pytest.mark.parametrize("boundaries", [BOUNDARIES, ("wrote",)], ids=["all", "first-wrote"])
def test_kill_at_every_message_boundary(reference: tuple[harness.Checks, list[Envelope], dict[str, list[str]]],
                                        tmp_path: Path, boundaries: tuple[str, ...]) -> None:
    """SIGKILL every stateful role at each boundary (read, before-commit, committed, wrote) of every
    input, restart from the state file, re-send: the run's transcript is the reference's, byte for
    byte (no answer changed, no draw repeated, no nonce used twice) and every check passes.

    After a kill at ``committed`` the input is answered from the journal, so the first pass kills
    at the journal's ``wrote``; the second pass kills at the first ``wrote`` of each fresh input."""
    ref_checks, ref_transcript, traces = reference
    assert ref_checks.ok
    schedules, expected = {}, {}
    for victim in CRASH_VICTIMS:
        targets = [(j, label) for j in range(len(_inputs(traces[victim]))) for label in boundaries]
        schedules[victim] = schedule_for(traces[victim], targets)
        expected[victim] = len(schedules[victim])
    checks, run = _crash_run(tmp_path, {v: list(s) for v, s in schedules.items()})
    assert checks.ok, [c for c in checks.results if not c.passed]
    assert run.kills == expected and all(n >= 3 * len(boundaries) for n in expected.values()), run.kills
    assert harness.first_divergence(ref_transcript, run.net.transcript) is None
    shares = [m for m in run.net.transcript if m.type == "frost.share"]
    assert len({cbor.decode(m.body)[3] for m in shares}) == len(shares)      # each nonce made one share


@settings(max_examples=5, deadline=None)
@given(data=st.data())
def test_kill_at_random_points_inside_steps(reference: tuple[harness.Checks, list[Envelope], dict[str, list[str]]],
                                            tmp_path_factory: pytest.TempPathFactory, data: st.DataObject) -> None:
    """A kill at any crash point (draws and the roles' own points included) of one victim."""
    _, ref_transcript, traces = reference
    victim = data.draw(st.sampled_from(CRASH_VICTIMS))
    point = data.draw(st.integers(min_value=1, max_value=len(traces[victim])))
    checks, run = _crash_run(tmp_path_factory.mktemp("random"), {victim: [point]})
    assert checks.ok and run.kills[victim] == 1
    assert harness.first_divergence(ref_transcript, run.net.transcript) is None
