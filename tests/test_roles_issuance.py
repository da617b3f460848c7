"""Issuance roles as processes (specs/roles.md section 8).

Adversaries played here:

- the network (sees and controls every line between parties): replays an
  enrollment from its own connection (``ReplayError``), replays it after the
  epoch moved (``StateError``), flips one byte of any message (refused, and the
  harness names the step, the type, the sender and the error);
- the machine's power (kills a party with SIGKILL at any crash point): after
  a restart from the state file the run finishes with the outcome of a run
  without crashes, no challenge is answered twice and no request is logged twice;
- whoever can write the state file (corrupts it, or swaps in another role's):
  ``StateFileError``, never a silent reset.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Sequence
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from protocols.errors import (
    DecodeError, ReplayError, StateError, StateFileError, UsappError, VerificationError,
)
from protocols.primitives import cbor
from protocols.system.roles import harness, wire
from protocols.system.roles import issuance as roles
from protocols.system.roles.base import CrashPlan, Deployment
from protocols.system.roles.process import Party, provision_party, write_deployment
from protocols.system.roles.wire import Envelope

SMALL = {"nodes": 2, "threshold": 2, "devices": 1}
NOW, EPOCH = roles.NOW, roles.EPOCH
BOUNDARIES = ("read", "before-commit", "committed", "wrote")


@pytest.fixture(scope="module")
def small() -> Deployment:
    return roles.deploy("tests", **SMALL)


def _network(deployment: Deployment, directory: Path, **options: object) -> harness.Network:
    return harness.open_network(deployment, str(directory), seed="tests", in_process=True, **options)  # type: ignore[arg-type]


def _enrollment_inputs() -> list[Envelope]:
    return [roles.env(n, "env.tick", {1: NOW}) for n in ("pkg-1", "pkg-2")] + \
        [roles.env("device-1", "env.enroll", {1: EPOCH, 2: NOW})]


# ---------------------------------------------------------------------------
# The scenario, in process and between processes


def test_the_scenario_passes_in_process(tmp_path):
    checks, network, figures = harness.run_scenario("issuance", str(tmp_path), in_process=True)
    assert checks.ok, [c for c in checks.results if not c.passed]
    assert figures == {"nodes": 3, "threshold": 2, "devices": 2, "issuances": 12, "messages": 99}


def test_the_scenario_passes_between_processes(tmp_path):
    """``usapp interop issuance``: every party its own process."""
    checks, network, figures = harness.run_scenario("issuance", str(tmp_path))
    assert checks.ok, [c for c in checks.results if not c.passed]
    assert figures["issuances"] == 12


def test_deploy_is_deterministic_and_checks_its_options():
    a, b = roles.deploy("x", **SMALL), roles.deploy("x", **SMALL)
    assert cbor.encode(a.parties) == cbor.encode(b.parties)
    assert cbor.encode(roles.deploy("y", **SMALL).parties) != cbor.encode(a.parties)
    for bad in ({"threshold": 3, "nodes": 2}, {"nodes": 0}, {"devices": -1}, {"nodes": "2"}):
        with pytest.raises(UsappError, match="option"):
            roles.deploy("x", **bad)


def test_a_device_combines_t_shares_and_every_node_logs_once(tmp_path, small):
    net = _network(small, tmp_path)
    out = net.deliver(_enrollment_inputs())
    report = roles.read_report(out[-1])
    identity = report[1]
    assert report[3] == __import__("hashlib").sha256(roles.expected_key(small, identity)).digest()
    for node in ("pkg-1", "pkg-2"):
        entries, epoch = roles.read_log(net, node, 1)
        assert [e.identity for e in entries] == [identity] and epoch == EPOCH
    net.close()


# ---------------------------------------------------------------------------
# Negatives, in process over real state files


def _enrolled(tmp_path: Path, small: Deployment) -> harness.Network:
    net = _network(small, tmp_path)
    net.deliver(_enrollment_inputs())
    return net


def _refused(net: harness.Network, message: Envelope) -> harness.Refused:
    with pytest.raises(harness.Refused) as info:
        net.send(message)
    return info.value


def test_replays_and_wrong_epochs_are_refused_with_the_spec_errors(tmp_path, small):
    net = _enrolled(tmp_path, small)
    enrollment = next(m for m in net.transcript if m.type == roles.ENROLLMENT and m.to == "pkg-1")
    delivery = next(m for m in net.transcript if m.type == roles.DELIVERY and m.sender == "pkg-1")
    assert _refused(net, Envelope("mallory", "pkg-1", enrollment.type, enrollment.body)).error == ReplayError.__name__
    # the same line again is the journal's answer: the same delivery, no second issuance
    assert net.send(enrollment)[0].body == delivery.body
    assert len(roles.read_log(net, "pkg-1", 1)[0]) == 1
    # the device refuses a delivery for an enrollment it completed (a different line: another node id)
    assert _refused(net, Envelope("pkg-2", "device-1", delivery.type, delivery.body)).error == StateError.__name__
    net.send(roles.env("pkg-1", "env.epoch", {1: EPOCH + 1}))
    assert _refused(net, Envelope("mallory", "pkg-1", enrollment.type, enrollment.body)).error == StateError.__name__
    assert _refused(net, roles.env("pkg-1", "env.epoch", {1: EPOCH})).error == StateError.__name__
    assert _refused(net, roles.env("device-1", "env.enroll", {1: EPOCH - 1, 2: NOW})).error == StateError.__name__
    net.close()


def test_a_revoked_device_is_refused_and_the_refusal_changes_nothing(tmp_path, small):
    net = _network(small, tmp_path)
    net.deliver([roles.env(n, "env.tick", {1: NOW}) for n in ("pkg-1", "pkg-2")])
    net.send(roles.env("pkg-1", "env.revoke", {1: roles.NAMESPACE, 2: roles.serial_of(1)}))
    with pytest.raises(harness.Refused) as info:
        roles.enroll(net, "device-1", EPOCH, NOW)
    assert (info.value.error, info.value.message.type, info.value.message.to) == \
        (VerificationError.__name__, roles.ENROLLMENT, "pkg-1")
    assert roles.read_log(net, "pkg-1", 1)[0] == ()
    net.close()


def test_unsolicited_and_misaddressed_messages_are_refused(tmp_path, small):
    net = _network(small, tmp_path)
    net.deliver([roles.env(n, "env.tick", {1: NOW}) for n in ("pkg-1", "pkg-2")])
    challenge = net.send(Envelope("device-1", "pkg-1", roles.REQUEST, cbor.encode({1: EPOCH, 2: 1})))[0]
    assert _refused(net, challenge).error == StateError.__name__                      # the device did not ask
    assert _refused(net, Envelope("pkg-9", "device-1", roles.CHALLENGE, challenge.body)).error == StateError.__name__
    assert _refused(net, Envelope("device-1", "pkg-1", "env.revoke",
                                  cbor.encode({1: roles.NAMESPACE, 2: "SM-000001"}))).error == DecodeError.__name__
    assert _refused(net, Envelope("device-1", "pkg-1", "gossip", b"")).error == DecodeError.__name__
    assert _refused(net, roles.env("pkg-1", "env.tick", {1: NOW - 1})).error == StateError.__name__   # clock goes back
    assert _refused(net, roles.env("pkg-1", "env.tick", {1: -1})).error == DecodeError.__name__
    assert _refused(net, roles.env("pkg-1", "env.tick", {1: NOW, 2: 0})).error == DecodeError.__name__
    net.close()


def test_an_oversized_env_body_is_refused_before_it_is_decoded(tmp_path, small, monkeypatch):
    net = _network(small, tmp_path)
    calls = []
    real = cbor.decode_map
    monkeypatch.setattr(cbor, "decode_map", lambda *a, **k: calls.append(a[1]) or real(*a, **k))
    body = cbor.encode({1: NOW, 2: b"\x00" * roles.MAX_ENV_BYTES})
    refusal = _refused(net, Envelope(wire.HARNESS, "pkg-1", "env.tick", body))
    assert refusal.error == DecodeError.__name__ and "exceeds" in refusal.text
    assert {1: int} not in calls                     # the env body itself was never decoded
    net.close()


def test_a_flipped_byte_in_any_message_is_refused_and_named(tmp_path, small):
    """The network flips the last byte of the first enrollment (the signature) or delivery (the AEAD tag)."""
    for kind, error, refuser in ((roles.ENROLLMENT, VerificationError.__name__, "pkg-1"),
                                 (roles.DELIVERY, VerificationError.__name__, "device-1")):
        def tamper(step: int, message: Envelope, kind: str = kind) -> Envelope:
            if message.type == kind and message.sender in ("device-1", "pkg-1") and message.to in ("pkg-1", "device-1"):
                return Envelope(message.sender, message.to, message.type,
                                message.body[:-1] + bytes([message.body[-1] ^ 1]))
            return message
        net = _network(small, tmp_path / kind, tamper=tamper)
        with pytest.raises(harness.Refused) as info:
            net.deliver(_enrollment_inputs())
        refused = info.value
        assert (refused.message.type, refused.message.to, refused.error) == (kind, refuser, error)
        assert refused.step > 0 and refused.message.sender in ("device-1", "pkg-1")
        assert f"step {refused.step}: {refuser} refused {kind}" in str(refused)
        net.close()


def _party_state(tmp_path: Path, small: Deployment) -> Path:
    net = _enrolled(tmp_path, small)
    net.close()
    return tmp_path


def _reopen(path: Path, role: str, ident: str) -> Party:
    return Party.open(roles.ROLES[role], str(path), ident, "tests")


@pytest.mark.parametrize("role, ident, change", [
    ("pkg", "pkg-1", "UPDATE kv SET value = x'ff' WHERE name = 'pkg'"),
    ("pkg", "pkg-1", "UPDATE kv SET value = x'20' WHERE name = 'epoch'"),
    ("pkg", "pkg-1", "UPDATE pkg_log SET entry = x'a0'"),
    ("pkg", "pkg-1", "UPDATE pkg_challenges SET used = 7"),
    ("pkg", "pkg-1", "DELETE FROM kv WHERE name = 'clock'"),
    ("device", "device-1", "UPDATE kv SET value = x'a0' WHERE name = 'device'"),
    ("device", "device-1", "UPDATE kv SET value = x'01' WHERE name = 'attempt'"),
    ("device", "device-1", "DELETE FROM kv WHERE name = 'device'"),
])
def test_a_corrupt_state_file_is_a_state_file_error(tmp_path, small, role, ident, change):
    directory = _party_state(tmp_path, small)
    db = sqlite3.connect(directory / f"{ident}.sqlite")
    db.execute(change)
    db.commit()
    db.close()
    party = _reopen(directory / f"{ident}.sqlite", role, ident)
    message = roles.env(ident, "env.tick", {1: NOW + 5}) if role == "pkg" else \
        roles.env(ident, "env.enroll", {1: EPOCH, 2: NOW + 5})
    with pytest.raises(StateFileError, match="corrupt|missing"):
        party.handle(message)
    party.close()


def test_another_roles_state_file_is_a_state_file_error(tmp_path, small):
    directory = _party_state(tmp_path, small)
    with pytest.raises(StateFileError, match="not of a issuance pkg"):
        _reopen(directory / "device-1.sqlite", "pkg", "device-1")
    with pytest.raises(StateFileError, match="not of a issuance device"):
        _reopen(directory / "pkg-1.sqlite", "device", "pkg-1")


def test_a_bad_provisioning_record_is_refused_and_leaves_no_file(tmp_path, small):
    role, record = small.parties["pkg-1"]
    bad = dict(record, share=b"\x00" * 32)
    with pytest.raises(UsappError, match="share"):
        provision_party(roles.ROLES[role], str(tmp_path / "p.sqlite"), "pkg-1", bad)
    assert not os.path.exists(tmp_path / "p.sqlite")
    role, record = small.parties["device-1"]
    with pytest.raises(UsappError):
        provision_party(roles.ROLES[role], str(tmp_path / "d.sqlite"), "device-1", dict(record, extra=1))


# ---------------------------------------------------------------------------
# Crashes


class _Killed(BaseException):
    """A simulated SIGKILL inside this process (in-process crash tests)."""


class _KillAt(CrashPlan):
    def point(self, label: str) -> None:
        self.count += 1
        if self.at is not None and self.count == self.at:
            raise _Killed(label)


def _run_with_restarts(net: harness.Network, inputs: Sequence[Envelope],
                       died: tuple[type[BaseException], ...]) -> list[Envelope]:
    """Deliver ``inputs`` breadth-first; a party that dies is restarted from its state file and the
    same message is sent again (what a real transport does after a reconnect)."""
    pending, to_env, restarts = list(inputs), [], 0
    while pending:
        message = pending.pop(0)
        if message.to == wire.HARNESS:
            to_env.append(message)
            continue
        while True:
            try:
                pending.extend(net.send(message))
                break
            except died:
                restarts += 1
                assert restarts < 200
                net.restart(message.to)
    return to_env


def _outcome(directory: Path, to_env: list[Envelope]) -> dict:
    """The run's outcome, read from the closed state files, with the one-time checks."""
    outcome: dict = {"reports": [m.body for m in to_env]}
    for node in ("pkg-1", "pkg-2"):
        db = sqlite3.connect(directory / f"{node}.sqlite")
        log = db.execute("SELECT entry, challenge FROM pkg_log ORDER BY idx").fetchall()
        used = db.execute("SELECT nonce FROM pkg_challenges WHERE used = 1 ORDER BY nonce").fetchall()
        db.close()
        assert len({c for _, c in log}) == len(log)                  # no request logged twice
        assert sorted(c for _, c in log) == [u for (u,) in used]     # each used challenge logged exactly once
        outcome[node] = [e for e, _ in log]
    db = sqlite3.connect(directory / "device-1.sqlite")
    outcome["keys"] = db.execute("SELECT epoch, identity, key FROM dev_keys").fetchall()
    outcome["pending"] = db.execute("SELECT nonce, node, hpke_private IS NULL FROM dev_pending ORDER BY seq").fetchall()
    db.close()
    return outcome


def _in_process_run(directory: Path, deployment: Deployment, target: str | None, at: int | None
                    ) -> tuple[dict, list[str]]:
    labels: list[str] = []
    starts = {"n": 0}

    def factory(ident: str) -> harness.Endpoint:
        endpoint = harness.LocalEndpoint("issuance", deployment.parties[ident][0],
                                         str(directory / f"{ident}.sqlite"), ident, "tests")
        if ident == target:
            starts["n"] += 1
            plan = _KillAt(at if starts["n"] == 1 else None)
            original = plan.point

            def point(label: str) -> None:
                if starts["n"] == 1:
                    labels.append(label)
                original(label)
            plan.point = point  # type: ignore[method-assign]
            endpoint.party.crash = plan
        return endpoint

    write_deployment(deployment, str(directory))
    net = harness.Network({}, factory=factory)
    for ident in sorted(deployment.parties):
        net.parties[ident] = factory(ident)
    to_env = _run_with_restarts(net, _enrollment_inputs(), (_Killed,))
    net.close()
    return _outcome(directory, to_env), labels


def test_a_crash_at_every_point_in_process_gives_the_exact_outcome(tmp_path, small):
    """Every crash point of a PKG node and of the device, one at a time (the transaction rolls back,
    the party restarts from its file, the message is sent again)."""
    expected, _ = _in_process_run(tmp_path / "clean", small, None, None)
    assert len(expected["reports"]) == 1 and all(len(expected[n]) == 1 for n in ("pkg-1", "pkg-2"))
    for target in ("pkg-1", "device-1"):
        _, labels = _in_process_run(tmp_path / f"trace-{target}", small, target, None)
        assert {"read", "before-commit", "committed", "draw"} <= set(labels)
        for at in range(1, len(labels) + 1):
            outcome, _ = _in_process_run(tmp_path / f"{target}-{at}", small, target, at)
            assert outcome == expected, (target, at, labels[at - 1])


def _trace(log: Path) -> list[str]:
    """The labels of the crash points a party printed with USAPP_CRASH_TRACE=1 (spec 3.5)."""
    labels: list[str] = []
    for line in log.read_text().splitlines():
        if line.startswith("usapp-crash-point "):
            _, number, label = line.split(" ", 2)
            assert int(number) == len(labels) + 1
            labels.append(label)
    return labels


def _schedule(labels: Sequence[str], kills: Sequence[int]) -> list[int]:
    """USAPP_CRASH_AT of each generation of a party so that it dies at each of ``kills`` (1-based
    indices into its crash-free trace ``labels``), in one run.

    A party killed before its commit handles the re-sent message again from ``read``; one killed
    after it answers it from the journal (``read``, then a ``wrote`` per output).  Either way the
    points from the message's ``read`` (before the commit) or ``committed`` (after) on are numbered
    from 1 again in the new process.
    """
    schedule, base = [], 1
    for at in kills:
        schedule.append(at - base + 1)
        index = at - 1
        if labels[index] in ("committed", "wrote"):
            while labels[index] != "committed":
                index -= 1
        else:
            while labels[index] != "read":
                index -= 1
        base = index + 1
    return schedule


def _process_run(directory: Path, deployment: Deployment, plans: dict[str, list[int]],
                 trace: bool = False) -> tuple[dict, dict[str, int]]:
    """The enrollment run with every party a process; party X's k-th start gets USAPP_CRASH_AT =
    plans[X][k-1] (none once the plan is used up)."""
    starts: dict[str, int] = {}
    write_deployment(deployment, str(directory))
    logs = []

    def factory(ident: str) -> harness.Endpoint:
        role = deployment.parties[ident][0]
        generation = starts.get(ident, 0)
        starts[ident] = generation + 1
        env = {"USAPP_CRASH_TRACE": "1"} if trace else {}
        plan = plans.get(ident, [])
        if generation < len(plan):
            env["USAPP_CRASH_AT"] = str(plan[generation])
        log = open(directory / f"{ident}.log", "ab")
        logs.append(log)
        command = harness.role_command("issuance", role, str(directory / f"{ident}.sqlite"), ident, "tests")
        return harness.ProcessEndpoint(ident, command, log, env, timeout=60)

    net = harness.Network({}, factory=factory)
    for ident in sorted(deployment.parties):
        net.parties[ident] = factory(ident)
    try:
        to_env = _run_with_restarts(net, _enrollment_inputs(), (harness.PartyDied,))
    finally:
        net.close()
        for log in logs:
            log.close()
    return _outcome(directory, to_env), {i: n - 1 for i, n in starts.items()}


@pytest.fixture(scope="module")
def clean_process_run(small, tmp_path_factory):
    directory = tmp_path_factory.mktemp("clean")
    outcome, restarts = _process_run(directory, small, {}, trace=True)
    assert not any(restarts.values())
    return outcome, {ident: _trace(directory / f"{ident}.log") for ident in ("pkg-1", "device-1")}


def test_sigkill_at_every_message_boundary_then_restart_gives_the_exact_outcome(tmp_path, small,
                                                                                 clean_process_run):
    """Real processes killed with SIGKILL at every read, before-commit, committed and wrote point of a
    PKG node and of the device, all in one run (each kill is one restart)."""
    expected, traces = clean_process_run
    plans, kills = {}, {}
    for ident, labels in traces.items():
        kills[ident] = [i + 1 for i, label in enumerate(labels) if label in BOUNDARIES]
        assert {labels[k - 1] for k in kills[ident]} == set(BOUNDARIES)
        plans[ident] = _schedule(labels, kills[ident])
    outcome, restarts = _process_run(tmp_path, small, plans, trace=True)
    assert outcome == expected
    assert {ident: restarts.get(ident, 0) for ident in plans} == {ident: len(k) for ident, k in kills.items()}
    for ident, labels in traces.items():       # each generation died at the point it was meant to
        generations: list[list[str]] = []
        for line in (tmp_path / f"{ident}.log").read_text().splitlines():
            if line.startswith("usapp-crash-point "):
                _, number, label = line.split(" ", 2)
                if number == "1":
                    generations.append([])
                generations[-1].append(label)
        assert [g[-1] for g in generations[:-1]] == [labels[k - 1] for k in kills[ident]]


@settings(max_examples=5, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.randoms(use_true_random=False), st.sampled_from(["pkg-1", "device-1"]))
def test_sigkill_at_random_points_inside_steps(tmp_path_factory, small, clean_process_run, rng, target):
    """One to three kills at seeded random crash points of any label (draws, issued, logged,
    share-checked ...) of one party."""
    expected, traces = clean_process_run
    labels = traces[target]
    kills = sorted(rng.sample(range(1, len(labels) + 1), rng.randint(1, 3)))
    directory = tmp_path_factory.mktemp("random")
    outcome, restarts = _process_run(directory, small, {target: _schedule(labels, kills)})
    assert outcome == expected and restarts.get(target) == len(kills)


def test_the_combined_key_decrypts_what_a_head_end_encrypts_to_the_identity(tmp_path, small):
    """Issuance 10.3: the key the device stored (read from its state file) opens a BF encapsulation to
    its identity made with P_pub alone."""
    from protocols.primitives.drbg import HmacDrbg
    from protocols.schemes import bf_bls12

    _party_state(tmp_path, small)
    db = sqlite3.connect(tmp_path / "device-1.sqlite")
    [(epoch, identity, key)] = db.execute("SELECT epoch, identity, key FROM dev_keys").fetchall()
    db.close()
    params = bf_bls12.PublicParams.from_bytes(small.public["p_pub"])
    session, enc = bf_bls12.encapsulate(params, identity, HmacDrbg.from_seed("tests/roles/head-end"))
    assert epoch == EPOCH
    assert bf_bls12.decapsulate(bf_bls12.PrivateKey.from_bytes(identity, key), enc) == session
