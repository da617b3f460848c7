"""Integrity feedback roles as processes (specs/roles.md section 10; specs/integrity.md).

In-process tests run the real RoleSpecs over real state files; the crash tests run the victim
(a meter or the utility) as a real ``usapp role`` process killed with SIGKILL at every message
boundary of a short day (specs/roles.md 3.5), restart it from its state file and check that the
run ends exactly as an uninterrupted one: every accepted record is in the utility's log exactly
once, and no one-time value (record counter, boot, request number) was used for two things.
"""

from __future__ import annotations

import io
import os
import sqlite3
import types
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from protocols import integrity as ig
from protocols.errors import (
    ParameterError, StateFileError, UsappError,
)
from protocols.primitives import cbor
from protocols.system.roles import harness, wire
from protocols.system.roles import integrity as roles
from protocols.system.roles.base import CrashPlan, Deployment
from protocols.system.roles.process import Party, role_spec, write_deployment
from protocols.system.roles.wire import Envelope

SEED = "tests"


def _network(tmp_path, **options) -> tuple[Deployment, harness.Network]:
    deployment = roles.deploy("t", **options)
    return deployment, harness.open_network(deployment, str(tmp_path), seed=SEED, in_process=True)


def _env_types(messages: list[Envelope]) -> list[str]:
    return [m.type for m in messages]


# --------------------------------------------------------------------------
# Scenario and deployment


def test_scenario_in_process_reproduces_the_demo_claims(tmp_path):
    checks, net, figures = harness.run_scenario("integrity", str(tmp_path), in_process=True)
    assert checks.ok, [c for c in checks.results if not c.passed]
    names = [c.name for c in checks.results]
    assert "integrity: the honest utility's fed-back tree head matches the meter's records" in names
    assert "integrity: the lowered record is located at index 20, its period" in names
    assert "integrity: the arbiter names the utility" in names
    assert figures["located"] == 20 and figures["verdict"] == "utility" and figures["match"]
    assert figures["resync_adopted"] == 24 and figures["resync_resigned"] == 1


def test_deploy_is_deterministic_and_checks_its_options():
    a, b = roles.deploy("x", meters=3, records=5, cheat_at=-1), roles.deploy("x", meters=3, records=5, cheat_at=-1)
    assert a == b and a != roles.deploy("y", meters=3, records=5, cheat_at=-1)
    assert sorted(a.parties) == ["arbiter", "meter-000", "meter-001", "meter-002", "utility"]
    utility_public = a.parties["meter-000"][1]["utility_public"]
    assert a.parties["arbiter"][1]["utility_public"] == utility_public
    assert a.parties["utility"][1]["cheat_meter"] is None
    for bad in ({"meters": 0}, {"records": 0}, {"cheat_at": 5, "records": 5}, {"meters": 1, "cheat_at": 0},
                {"colour": "red"}):
        with pytest.raises(ParameterError):
            roles.deploy("x", **bad)


# --------------------------------------------------------------------------
# In-process handler tests


def _day(net: harness.Network, deployment: Deployment, records: int) -> None:
    roles.run_day(net, deployment, records)


def test_records_receipts_and_a_matching_check(tmp_path):
    deployment, net = _network(tmp_path, meters=1, records=6, cheat_at=-1)
    _day(net, deployment, 6)
    net.deliver([roles.clock(roles.ORIGIN + 86_400)])
    out = net.deliver([roles.request("meter-000", "env.check", 1)])
    assert roles.check_result(out[0]) == {1: True, 2: 6, 3: None, 4: None}
    out = net.deliver([roles.request("meter-000", "env.dispute", 2)])
    verdict = roles.verdict_of(out[0])
    assert verdict[2] is None and verdict[3] == "agree"
    net.close()
    db = sqlite3.connect(os.path.join(tmp_path, "utility.sqlite"))
    assert [r[0] for r in db.execute("SELECT counter FROM utility_records ORDER BY counter")] == list(range(6))
    db.close()


def test_a_re_sent_record_gets_the_same_receipt_and_is_logged_once(tmp_path):
    deployment, net = _network(tmp_path, meters=1, records=3, cheat_at=-1)
    record = net.send(roles.reading("meter-000", deployment, 0))[0]
    first = net.send(record)
    assert net.send(record) == first                           # the journal answers, nothing appended
    net.close()
    db = sqlite3.connect(os.path.join(tmp_path, "utility.sqlite"))
    assert db.execute("SELECT COUNT(*) FROM utility_records").fetchone()[0] == 1
    db.close()


def _key(deployment: Deployment, meter: str) -> ig.Ed25519PrivateKey:
    return ig.Ed25519PrivateKey.from_private_bytes(deployment.parties[meter][1]["device_key"])  # type: ignore[arg-type]


def test_a_replayed_counter_a_foreign_and_a_tampered_record_are_refused(tmp_path):
    deployment, net = _network(tmp_path, meters=2, records=3, cheat_at=-1)
    _day(net, deployment, 2)
    # the same counter signed again (another period): a replay (spec 4.3)
    replay = ig.encode_record(_key(deployment, "meter-000"), b"meter-000", roles.ORIGIN + 99, 0, [1, 1]).to_bytes()
    with pytest.raises(harness.Refused) as caught:
        net.send(Envelope("meter-000", "utility", "record", replay))
    assert caught.value.error == "ReplayError"
    # meter-001 sends a record carrying meter-000's id (validly signed by meter-000's key)
    foreign = ig.encode_record(_key(deployment, "meter-000"), b"meter-000", roles.ORIGIN + 3600, 2, [9999, 9999])
    with pytest.raises(harness.Refused) as caught:
        net.send(Envelope("meter-001", "utility", "record", foreign.to_bytes()))
    assert caught.value.error == "VerificationError"
    # a record from a party that is no registered meter
    with pytest.raises(harness.Refused) as caught:
        net.send(Envelope("meter-999", "utility", "record", foreign.to_bytes()))
    assert caught.value.error == "VerificationError"
    # register 0 raised by one in transit: the meter's signature no longer verifies
    honest = ig.encode_record(_key(deployment, "meter-000"), b"meter-000", roles.ORIGIN + 3600, 2, [9999, 9999])
    forged = ig.Record(honest.meter, honest.period, honest.counter, (10000, 9999), honest.signature)
    with pytest.raises(harness.Refused) as caught:
        net.send(Envelope("meter-000", "utility", "record", forged.to_bytes()))
    assert caught.value.error == "VerificationError"


@pytest.mark.parametrize("kind, offset, error", [
    ("record", -2, "VerificationError"),      # a byte of the meter's signature
    ("receipt", -2, "VerificationError"),     # of the utility's signature
    ("probe", -3, "VerificationError"),       # of the root at the head's size (6.1; then key 6, proof [])
    ("inclusion", -2, "VerificationError"),   # of a hash of the inclusion proof (7)
])
def test_a_flipped_byte_in_one_message_is_refused_and_named(tmp_path, kind, offset, error):
    """Adversary: the network, flipping one byte of the first message of ``kind``."""
    deployment = roles.deploy("t", meters=2, records=4, cheat_at=1)
    flipped: list[int] = []

    def flip(step: int, message: Envelope) -> Envelope:
        if message.type == kind and not flipped:
            flipped.append(step)
            body = bytearray(message.body)
            body[offset] ^= 0x01
            return Envelope(message.sender, message.to, message.type, bytes(body))
        return message
    net = harness.open_network(deployment, str(tmp_path), seed=SEED, in_process=True, tamper=flip)
    with pytest.raises(harness.Refused) as caught:
        roles.run_day(net, deployment, 2)
        backup = net.deliver([roles.request("meter-000", "env.backup", 1)])[0]
        roles.run_day(net, deployment, 4, 2)
        net.deliver([roles.request("meter-001", "env.check", 2)])                     # located by probes
        net.deliver([roles.env("meter-000", "env.restore", {1: 3, 2: backup.body})])
        net.deliver([roles.request("meter-000", "env.resync", 4)])                   # inclusions
    refused = caught.value
    assert refused.step == flipped[0] and refused.message.type == kind and refused.error == error
    assert f"step {refused.step}: {refused.message.to} refused {kind} from {refused.message.sender}" in str(refused)


def test_a_receipt_that_does_not_cover_the_meters_records_is_refused(tmp_path):
    """Adversary: the utility, signing a head over a log that is not the meter's records."""
    deployment, net = _network(tmp_path, meters=1, records=3, cheat_at=-1)
    _day(net, deployment, 1)
    other = ig.Utility(ig.UtilityState(deployment.parties["utility"][1]["signing_key"]))
    other.register(b"meter-000", ig.Meter(ig.MeterState(b"meter-000", deployment.parties["meter-000"][1][
        "device_key"], b"")).public_key)
    other.accept(ig.encode_record(_key(deployment, "meter-000"), b"meter-000", 5, 0, [7, 7]).to_bytes(), 9)
    with pytest.raises(harness.Refused) as caught:
        net.send(Envelope("utility", "meter-000", "receipt", other.tree_head(b"meter-000", 9).to_bytes()))
    assert caught.value.error == "VerificationError"


def test_interop_with_every_party_a_process_matches_the_in_process_run(tmp_path):
    options = {"records": 8, "cheat_at": 3}
    checks, net, figures = harness.run_scenario("integrity", str(tmp_path / "p"), options=options)
    assert checks.ok, [c for c in checks.results if not c.passed]
    local, local_net, local_figures = harness.run_scenario("integrity", str(tmp_path / "l"), options=options,
                                                            in_process=True)
    assert local.ok and figures == local_figures and figures["located"] == 3
    assert harness.first_divergence(local_net.transcript, net.transcript) is None


def test_oversized_env_bodies_are_refused_before_decoding(tmp_path, monkeypatch):
    deployment, net = _network(tmp_path, meters=1, records=3, cheat_at=-1)

    def never(*args, **kwargs):
        raise AssertionError("decoded an oversized body")
    monkeypatch.setattr(roles, "cbor", types.SimpleNamespace(encode=cbor.encode, decode=never, decode_map=never))
    for to, type_ in (("meter-000", "env.reading"), ("meter-000", "env.check"), ("utility", "env.clock")):
        with pytest.raises(harness.Refused) as caught:
            net.send(Envelope("env", to, type_, b"\x00" * (roles.ENV_SMALL + 1)))
        assert caught.value.error == "DecodeError"


def test_malformed_env_inputs_are_refused(tmp_path):
    deployment, net = _network(tmp_path, meters=1, records=3, cheat_at=-1)
    cases = [
        (roles.env("meter-000", "env.reading", {1: 5, 2: []}), "DecodeError"),
        (roles.env("meter-000", "env.reading", {1: 5, 2: [1], 3: 0}), "DecodeError"),
        (roles.env("meter-000", "env.reading", {1: -1, 2: [1]}), "DecodeError"),
        (roles.env("meter-000", "env.dance", {1: 5}), "DecodeError"),
        (roles.env("utility", "env.check", {1: 5}), "DecodeError"),
        (roles.env("meter-000", "env.resync", {1: 5}), "StateError"),      # never restored (spec 9.2 step 0)
    ]
    for message, error in cases:
        with pytest.raises(harness.Refused) as caught:
            net.send(message)
        assert caught.value.error == error, message
    net.send(roles.clock(100))
    with pytest.raises(harness.Refused) as caught:
        net.send(roles.clock(99))
    assert caught.value.error == "StateError"
    net.send(roles.request("meter-000", "env.check", 10))
    with pytest.raises(harness.Refused) as caught:                  # a new request no later than the last
        net.send(roles.request("meter-000", "env.dispute", 10))
    assert caught.value.error == "ReplayError"


def test_answers_must_answer_the_pending_request(tmp_path):
    deployment, net = _network(tmp_path, meters=1, records=3, cheat_at=-1)
    _day(net, deployment, 3)
    request = net.send(roles.request("meter-000", "env.check", 1))[0]
    answer = net.send(request)[0]
    old = Envelope("utility", "meter-000", "feedback", cbor.encode({1: 0, 2: cbor.decode(answer.body)[2]}))
    with pytest.raises(harness.Refused) as caught:                  # an answer to another request number
        net.send(old)
    assert caught.value.error == "ReplayError"
    with pytest.raises(harness.Refused) as caught:                  # a probe nobody asked for
        net.send(Envelope("utility", "meter-000", "probe", cbor.encode({1: 1, 2: b""})))
    assert caught.value.error == "StateError"
    with pytest.raises(harness.Refused) as caught:                  # from a party that is not the utility
        net.send(Envelope("meter-001", "meter-000", "feedback", answer.body))
    assert caught.value.error == "VerificationError"
    assert roles.check_result(net.send(answer)[0])[1]


def test_the_arbiter_takes_evidence_only_from_the_parties_and_for_an_open_dispute(tmp_path):
    deployment, net = _network(tmp_path, meters=2, records=3, cheat_at=-1)
    _day(net, deployment, 3)
    evidence = net.send(roles.request("meter-000", "env.dispute", 1))[0]
    with pytest.raises(harness.Refused) as caught:                  # meter-001 sends meter-000's evidence
        net.send(Envelope("meter-001", "arbiter", "meter-evidence", evidence.body))
    assert caught.value.error == "VerificationError"
    ask = net.send(evidence)[0]
    theirs = net.send(ask)[0]
    with pytest.raises(harness.Refused) as caught:
        net.send(Envelope("meter-000", "arbiter", "utility-evidence", theirs.body))
    assert caught.value.error == "VerificationError"
    assert roles.verdict_of(net.send(theirs)[0])[3] == "agree"
    closed = cbor.decode(theirs.body)
    closed[3] = closed[3][:1]
    with pytest.raises(harness.Refused) as caught:                  # the dispute is closed
        net.send(Envelope("utility", "arbiter", "utility-evidence", cbor.encode(closed)))
    assert caught.value.error == "StateError"


def _corrupt(path: str, sql: str, args: tuple = ()) -> None:
    db = sqlite3.connect(path)
    db.execute(sql, args)
    db.commit()
    db.close()


@pytest.mark.parametrize("role, ident, sql, args", [
    ("meter", "meter-000", "UPDATE kv SET value = ? WHERE name = 'view'", (b"\xff",)),
    ("meter", "meter-000", "UPDATE kv SET value = ? WHERE name = 'boot-counter'", (cbor.encode(-1),)),
    ("meter", "meter-000", "UPDATE meter_records SET counter = 7 WHERE counter = 1", ()),
    ("meter", "meter-000", "DELETE FROM kv WHERE name = 'config'", ()),
    ("utility", "utility", "UPDATE utility_records SET record = ? WHERE counter = 0", (b"\xa0",)),
    ("utility", "utility", "DELETE FROM utility_records WHERE counter = 0", ()),
    ("arbiter", "arbiter", "UPDATE kv SET value = ? WHERE name = 'config'", (cbor.encode({1: 2}),)),
])
def test_corrupt_state_is_a_state_file_error(tmp_path, role, ident, sql, args):
    deployment, net = _network(tmp_path, meters=1, records=3, cheat_at=-1)
    _day(net, deployment, 2)
    net.close()
    path = os.path.join(tmp_path, f"{ident}.sqlite")
    _corrupt(path, sql, args)
    party = Party.open(role_spec("integrity", role), path, ident, SEED)
    message = {"meter": roles.reading("meter-000", deployment, 2),
               "utility": Envelope("meter-000", "utility", "feedback-request", cbor.encode({1: 1, 2: 0})),
               "arbiter": Envelope("meter-000", "arbiter", "meter-evidence",
                                   cbor.encode({1: b"meter-000", 2: [], 3: [], 4: 1}))}[role]
    with pytest.raises(StateFileError):
        party.handle(message)
    party.close()


def test_a_restore_bumps_the_boot_counter_once_and_never_restores_it(tmp_path):
    deployment, net = _network(tmp_path, meters=1, records=4, cheat_at=-1)
    _day(net, deployment, 2)
    backup = net.deliver([roles.request("meter-000", "env.backup", 1)])[0]
    restore = roles.env("meter-000", "env.restore", {1: 2, 2: backup.body})
    assert cbor.decode(net.send(restore)[0].body) == {1: 1, 2: 2}
    assert cbor.decode(net.send(restore)[0].body) == {1: 1, 2: 2}   # re-sent: the journal, no second bump
    again = roles.env("meter-000", "env.restore", {1: 3, 2: backup.body})
    assert cbor.decode(net.send(again)[0].body) == {1: 2, 2: 2}     # a second restore: the next boot
    foreign = cbor.decode(backup.body)
    foreign[1] = b"meter-001"
    with pytest.raises(harness.Refused) as caught:
        net.send(roles.env("meter-000", "env.restore", {1: 4, 2: cbor.encode(foreign)}))
    assert caught.value.error == "VerificationError"
    record = ig.decode_record(net.send(roles.reading("meter-000", deployment, 2))[0].body)
    assert (record.counter, record.boot) == (2, 2)


def test_a_utility_that_rewrites_a_backed_up_record_fails_the_resync(tmp_path):
    deployment, net = _network(tmp_path, meters=1, records=6, cheat_at=-1)
    _day(net, deployment, 3)
    backup = net.deliver([roles.request("meter-000", "env.backup", 1)])[0]
    roles.run_day(net, deployment, 5, 3)
    net.close()
    db = os.path.join(tmp_path, "utility.sqlite")
    reader = sqlite3.connect(db)
    honest = ig.decode_record(reader.execute("SELECT record FROM utility_records WHERE counter = 1").fetchone()[0])
    reader.close()
    forged = ig.Record(honest.meter, honest.period, 1, (0, 0), honest.signature)
    _corrupt(db, "UPDATE utility_records SET record = ? WHERE counter = 1", (forged.to_bytes(),))
    parties = {ident: harness.LocalEndpoint("integrity", role, os.path.join(tmp_path, f"{ident}.sqlite"), ident, SEED)
               for ident, (role, _) in deployment.parties.items()}
    net = harness.Network(parties)
    net.send(roles.env("meter-000", "env.restore", {1: 2, 2: backup.body}))
    with pytest.raises(harness.Refused) as caught:
        net.deliver([roles.request("meter-000", "env.resync", 3)])
    assert (caught.value.message.type, caught.value.error) == ("probe", "VerificationError")


# --------------------------------------------------------------------------
# Crash tests with real processes (specs/roles.md 3.5)

BOUNDARIES = ("read", "before-commit", "committed", "wrote")
COMMITTED = ("committed", "wrote")
RESTORE = Envelope("env", "meter-000", "env.restore")
"""Placeholder in the flow for the restore from the backup the run received."""


def _flow(deployment: Deployment) -> list[list[Envelope]]:
    """A day of 8 records of two meters; meter-000 backed up after 4, restored at the end (its next
    record refused as a replay), resynced and checked; meter-001 checked against a utility that
    lowered its record 3 (located by probes) and disputed."""
    end = roles.ORIGIN + 86_400
    return [*roles.day(deployment, 4), [roles.request("meter-000", "env.backup", 1)],
            *roles.day(deployment, 8, 4), [roles.clock(end)],
            [roles.request("meter-000", "env.check", end)], [roles.request("meter-001", "env.check", end)],
            [roles.request("meter-001", "env.dispute", end + 1)],
            [RESTORE],
            [roles.env("meter-000", "env.reading", {1: end, 2: [10**6, 10**6]})],
            [roles.request("meter-000", "env.resync", end + 3)], [roles.request("meter-000", "env.check", end + 4)]]


@dataclass
class Run:
    """One run of the flow: every env output and refusal in order, and the victim's messages."""

    outcome: list[tuple[str, str, bytes]] = field(default_factory=list)
    victim_messages: int = 0
    kills: list[int] = field(default_factory=list)
    transcript: list[Envelope] = field(default_factory=list)


def _drive(net: harness.Network, deployment: Deployment, victim: str,
           on_died: Callable[[int], None] | None = None) -> Run:
    run = Run()
    backup = b""
    for batch in _flow(deployment):
        if batch == [RESTORE]:
            batch = [roles.env("meter-000", "env.restore", {1: roles.ORIGIN + 86_402, 2: backup})]
        pending: deque[Envelope] = deque(batch)
        while pending:
            message = pending.popleft()
            if message.to == wire.HARNESS:
                run.outcome.append((message.sender, message.type, message.body))
                if message.type == "backup":
                    backup = message.body
                continue
            if message.to == victim:
                run.victim_messages += 1
            while True:
                try:
                    pending.extend(net.send(message))
                    break
                except harness.Refused as refused:
                    run.outcome.append((refused.message.to, "refused", refused.error.encode()))
                    break
                except harness.PartyDied:
                    assert on_died is not None, "the victim died without a planned kill"
                    run.kills.append(run.victim_messages)
                    on_died(run.victim_messages)
    run.transcript = list(net.transcript)
    return run


class _Tracing:
    """An in-process party that notes the crash point labels of each message (spec 3.5)."""

    def __init__(self, role: str, path: str, ident: str) -> None:
        self.err = io.StringIO()
        self.party = Party.open(role_spec("integrity", role), path, ident, SEED, CrashPlan(trace=True, err=self.err))
        self.labels: list[list[str]] = []

    def exchange(self, message: Envelope) -> tuple[list[Envelope], Envelope]:
        start = len(self.err.getvalue().splitlines())
        try:
            outputs = self.party.handle(message)
        except UsappError as exc:
            self.labels.append([line.split()[2] for line in self.err.getvalue().splitlines()[start:]])
            return [], Envelope(self.party.ident, message.sender, wire.REFUSED,
                                wire.refusal_body(type(exc).__name__, str(exc)))
        self.labels.append([line.split()[2] for line in self.err.getvalue().splitlines()[start:]]
                           + ["wrote"] * len(outputs))
        return outputs, Envelope(self.party.ident, message.sender, wire.OK)

    def close(self) -> int:
        self.party.close()
        return 0


def _local_parties(deployment: Deployment, directory: str, victim: str) -> dict[str, harness.Endpoint]:
    return {ident: harness.LocalEndpoint("integrity", role, os.path.join(directory, f"{ident}.sqlite"), ident, SEED)
            for ident, (role, _) in deployment.parties.items() if ident != victim}


CRASH_DEPLOYMENT = dict(meters=2, records=8, cheat_at=3)


def _clean(tmp_path, victim: str) -> tuple[Deployment, Run, list[list[str]]]:
    deployment = roles.deploy("crash", **CRASH_DEPLOYMENT)
    directory = str(tmp_path / "clean")
    write_deployment(deployment, directory)
    parties = _local_parties(deployment, directory, victim)
    tracing = _Tracing(deployment.parties[victim][0], os.path.join(directory, f"{victim}.sqlite"), victim)
    parties[victim] = tracing
    net = harness.Network(parties)
    run = _drive(net, deployment, victim)
    net.close()
    return deployment, run, tracing.labels


def _crash_run(tmp_path, name: str, deployment: Deployment, victim: str, labels: list[list[str]],
               targets: list[tuple[int, int]]) -> Run:
    """Kill the victim at each (message index, point index) of ``targets`` (message indices strictly
    increasing, 0-based; point index 1-based within that message's clean labels), restart it, re-send."""
    directory = str(tmp_path / name)
    write_deployment(deployment, directory)
    role = deployment.parties[victim][0]
    state = os.path.join(directory, f"{victim}.sqlite")
    plan = list(targets)

    def start(at: int | None) -> harness.Endpoint:
        env = {"USAPP_CRASH_AT": str(at)} if at is not None else {}
        return harness.ProcessEndpoint(victim, harness.role_command("integrity", role, state, victim, SEED), env=env)

    def first_at(message: int, point: int, after: int) -> int:
        return sum(len(labels[i]) for i in range(after, message)) + point

    parties = _local_parties(deployment, directory, victim)
    parties[victim] = start(first_at(*plan[0], 0) if plan else None)
    net = harness.Network(parties)

    def died(number: int) -> None:
        message, point = plan.pop(0)
        assert number - 1 == message, f"killed in message {number - 1}, planned {message}"
        done = labels[message][point - 1] in COMMITTED
        resend = 1 + labels[message].count("wrote") if done else len(labels[message])
        net.parties[victim].close()
        net.parties[victim] = start(resend + first_at(plan[0][0], plan[0][1], message + 1) if plan else None)

    run = _drive(net, deployment, victim, died)
    net.close()
    assert not plan, f"planned kills not reached: {plan}"
    return run


def _one_time_values_unique(run: Run) -> None:
    """No record counter signed twice in one boot, no request number used for two requests."""
    records: dict[tuple[bytes, int, int], bytes] = {}
    requests: dict[tuple[str, int], bytes] = {}
    for message in run.transcript:
        if message.type == "record":
            record = ig.decode_record(message.body)
            assert records.setdefault((record.meter, record.counter, record.boot), message.body) == message.body
        if message.type.endswith("-request") and message.sender.startswith("meter"):
            seq = cbor.decode(message.body)[1]
            assert requests.setdefault((message.sender, seq), message.body) == message.body


def _utility_log(directory: str) -> dict[bytes, list[bytes]]:
    db = sqlite3.connect(os.path.join(directory, "utility.sqlite"))
    rows = db.execute("SELECT meter, counter, record FROM utility_records ORDER BY meter, counter").fetchall()
    db.close()
    log: dict[bytes, list[bytes]] = {}
    for meter, counter, record in rows:
        assert counter == len(log.setdefault(meter, []))
        log[meter].append(record)
    return log


def _boot(directory: str) -> tuple[int, int]:
    db = sqlite3.connect(os.path.join(directory, "meter-000.sqlite"))
    counter = cbor.decode(db.execute("SELECT value FROM kv WHERE name = 'boot-counter'").fetchone()[0])
    view = cbor.decode(db.execute("SELECT value FROM kv WHERE name = 'view'").fetchone()[0])
    db.close()
    return counter, view[1]


def _check_like_clean(tmp_path, name: str, clean: Run, run: Run) -> None:
    assert run.outcome == clean.outcome                              # every result and refusal, exactly
    _one_time_values_unique(run)
    assert _utility_log(str(tmp_path / name)) == _utility_log(str(tmp_path / "clean"))
    assert _boot(str(tmp_path / name)) == (1, 1)                     # one restore: one bump, never repeated


def _boundary_targets(labels: list[list[str]], label: str) -> list[tuple[int, int]]:
    targets = []
    for index, names in enumerate(labels):
        if label in names:
            targets.append((index, names.index(label) + 1))
    return targets


_CLEAN: dict[str, tuple] = {}


def _clean_run(victim: str, tmp_path_factory) -> tuple:
    """The uninterrupted run with ``victim`` traced (once per module and victim)."""
    if victim not in _CLEAN:
        tmp = tmp_path_factory.mktemp(f"clean-{victim}")
        deployment, run, labels = _clean(tmp, victim)
        outcome_types = [t for _, t, _ in run.outcome]
        assert outcome_types.count("check-result") == 3 and "verdict" in outcome_types
        assert "resync-result" in outcome_types and (b"utility", "refused", b"ReplayError") not in run.outcome
        assert ("utility", "refused", b"ReplayError") in run.outcome  # the restored meter's first record
        _CLEAN[victim] = (tmp, deployment, run, labels)
    return _CLEAN[victim]


_SLOW = pytest.mark.slow
KILL_RUNS = [
    # every message of each stateful role killed before its commit and right after it (the two durable
    # outcomes); the other boundaries of every message, and the second meter's, in the slow suite
    ("meter-000", "before-commit"), ("meter-000", "committed"),
    ("utility", "before-commit"), ("utility", "committed"),
    ("meter-001", "committed"),
    pytest.param("meter-000", "read", marks=_SLOW), pytest.param("meter-000", "wrote", marks=_SLOW),
    pytest.param("utility", "read", marks=_SLOW), pytest.param("utility", "wrote", marks=_SLOW),
    pytest.param("meter-001", "read", marks=_SLOW), pytest.param("meter-001", "before-commit", marks=_SLOW),
    pytest.param("meter-001", "wrote", marks=_SLOW),
]


@pytest.mark.parametrize("victim, label", KILL_RUNS)
def test_kill_at_every_message_boundary(tmp_path_factory, victim, label):
    tmp, deployment, clean, labels = _clean_run(victim, tmp_path_factory)
    targets = _boundary_targets(labels, label)
    # every message (a refused one never commits; "wrote" follows each output, so only messages with one)
    assert len(targets) >= (len(labels) - 1 if label != "wrote" else sum(bool(n.count("wrote")) for n in labels))
    run = _crash_run(tmp, f"kill-{label}", deployment, victim, labels, targets)
    assert len(run.kills) == len(targets)
    _check_like_clean(tmp, f"kill-{label}", clean, run)


@pytest.mark.parametrize("victim", ["meter-000", "utility"])
@settings(max_examples=5, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_kill_at_random_points_inside_steps(tmp_path_factory, victim, data):
    tmp, deployment, clean, labels = _clean_run(victim, tmp_path_factory)
    points = [(m, j) for m, names in enumerate(labels) for j in range(1, len(names) + 1)]
    chosen = data.draw(st.lists(st.sampled_from(points), min_size=1, max_size=3, unique=True))
    targets, seen = [], set()
    for m, j in sorted(chosen):
        if m not in seen:
            seen.add(m)
            targets.append((m, j))
    name = f"random-{len(os.listdir(tmp))}"
    run = _crash_run(tmp, name, deployment, victim, labels, targets)
    assert len(run.kills) == len(targets)
    _check_like_clean(tmp, name, clean, run)
