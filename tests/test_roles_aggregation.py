"""The aggregation roles as processes (specs/roles.md section 6): scenario, durable one-time state, crashes.

Adversary of the finding test: the utility (it holds every K_i, so it MACs any request to any meter)
colluding with tau committee members (so it can have any sets signed); it sees every message and can
kill a meter (a power cut) at any instant.  Claim: a meter answers at most one unmask-request per
round even across a crash right after it answered (aggregation spec 8.4 step 2, roles spec 6.4).
"""

from __future__ import annotations

import os
import random
import sqlite3
import tempfile
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as hst

from protocols import aggregation as agg
from protocols.aggregation import messages as msg
from protocols.aggregation.schedule import commit_message, mac_key
from protocols.errors import StateFileError, UsappError
from protocols.primitives import cbor
from protocols.system.roles import aggregation as ra
from protocols.system.roles import aggregation_state as st
from protocols.system.roles import harness
from protocols.system.roles.base import CrashPlan, Deployment
from protocols.system.roles.process import Party, provision_party, role_spec, write_deployment
from protocols.system.roles.wire import HARNESS, Envelope

SMALL = {"meters": 5, "fanout": 3}
BOUNDARIES = ("read", "before-commit", "committed", "wrote")


@pytest.fixture(scope="module")
def small() -> Deployment:
    return ra.deploy("tests", **SMALL)


@pytest.fixture(scope="module")
def hood(small: Deployment) -> agg.Neighbourhood:
    return ra.public_hood(small)


def _env(to: str, kind: str, body: dict) -> Envelope:
    return ra.env_message(to, kind, body)


def _collect(net: harness.Network, hood: agg.Neighbourhood, round_id: int = 1,
             reporting: list[str] | None = None) -> list[Envelope]:
    """Adverts of every meter, then readings of ``reporting`` (default: all) without any deadline."""
    ra.route(net, [_env(m, "env.round", {1: round_id}) for m in hood.meters])
    who = hood.meters if reporting is None else reporting
    return ra.route(net, [_env(m, "env.readings", {1: round_id, 2: [7] * hood.slots}) for m in who])


def _flip(body: bytes, at: int = -1) -> bytes:
    b = bytearray(body)
    b[at] ^= 1
    return bytes(b)


def _sent(net: harness.Network, sender: str, kind: str, to: str | None = None) -> list[Envelope]:
    return [e for e in net.transcript if e.sender == sender and e.type == kind and (to is None or e.to == to)]


# -- the scenario ------------------------------------------------------------------------------------------


def test_interop_scenario_in_process_reproduces_the_demo(tmp_path: Any) -> None:
    """12 meters as `usapp interop aggregation` runs them: rounds 1 and 2 of the demo, every check passes."""
    checks, net, figures = harness.run_scenario("aggregation", str(tmp_path), in_process=True)
    assert checks.ok, [c for c in checks.results if not c.passed]
    assert len(checks.results) == 6
    assert figures["dropped"] and figures["silent"]


def test_deploy_is_deterministic_and_checks_options() -> None:
    a, b = ra.deploy("x", meters=3, fanout=2), ra.deploy("x", meters=3, fanout=2)
    assert a.parties == b.parties
    assert ra.deploy("y", meters=3, fanout=2).parties["utility"] != a.parties["utility"]
    with pytest.raises(UsappError) as exc:
        ra.deploy("x", meters=1)
    assert type(exc.value).__name__ == "ParameterError"


# -- negative tests, in process ----------------------------------------------------------------------------


def test_flipped_byte_in_a_bundle_is_refused_and_named(tmp_path: Any, small: Deployment,
                                                         hood: agg.Neighbourhood) -> None:
    def tamper(step: int, e: Envelope) -> Envelope:
        return Envelope(e.sender, e.to, e.type, _flip(e.body)) if e.type == "mask-bundle" else e

    net = harness.open_network(small, str(tmp_path), in_process=True, tamper=tamper)
    with pytest.raises(harness.Refused) as exc:
        ra.route(net, [_env(m, "env.round", {1: 1}) for m in hood.meters])
    r = exc.value
    assert (r.message.type, r.message.sender, r.message.to, r.error) == (
        "mask-bundle", "utility", hood.meters[0], "VerificationError")
    assert r.step == 2 * len(hood.meters) + 1 and "MAC" in r.text     # rounds, adverts, then the bundle
    net.close()


def test_concentrator_refuses_duplicate_replayed_and_injected_reports(tmp_path: Any, small: Deployment,
                                                                      hood: agg.Neighbourhood) -> None:
    net = harness.open_network(small, str(tmp_path), in_process=True)
    first = hood.meters[0]
    parent = hood.parent(first)
    assert parent is not None
    _collect(net, hood, reporting=[first])
    report = _sent(net, first, "meter-report")[0]
    changed = Envelope(first, parent, "meter-report", _flip(report.body))
    with pytest.raises(harness.Refused) as exc:
        net.send(changed)                       # a second, different report from one child
    assert exc.value.error == "DuplicateContributionError"
    assert net.send(report) == []               # the same line again: the journal's answer
    other = next(m for m in hood.meters if hood.parent(m) != parent)
    with pytest.raises(harness.Refused) as exc:
        net.send(Envelope(first, hood.parent(other) or "", "meter-report", report.body))
    assert exc.value.error == "InjectedContributionError"
    out = ra.route(net, [_env(parent, "env.deadline", {1: 1})])
    assert out == [] and _sent(net, parent, "aggregate-report")
    with pytest.raises(harness.Refused) as exc:     # round 1 is aggregated: a replay of it is refused
        net.send(Envelope(first, parent, "meter-report", _flip(report.body, -2)))
    assert exc.value.error == "ReplayError"
    net.close()


def test_env_inputs_are_checked(tmp_path: Any, small: Deployment, hood: agg.Neighbourhood) -> None:
    net = harness.open_network(small, str(tmp_path), in_process=True)
    meter = hood.meters[0]
    cases: list[tuple[Envelope, str]] = [
        (Envelope(HARNESS, meter, "env.readings", cbor.encode({1: 1, 2: [0] * 70000})), "DecodeError"),
        (_env(meter, "env.readings", {1: 1, 2: [1] * hood.slots}), "StateError"),     # no bundle yet
        (Envelope("utility", meter, "env.round", cbor.encode({1: 1})), "VerificationError"),
        (_env(meter, "env.round", {1: 1, 3: 0}), "DecodeError"),
        (_env(meter, "env.nonsense", {1: 1}), "DecodeError"),
        (_env("utility", "env.deadline", {1: 1, 2: "lunch"}), "DecodeError"),
        (_env(meter, "env.round", {1: -1}), "ParameterError"),
    ]
    for message, error in cases:
        with pytest.raises(harness.Refused) as exc:
            net.send(message)
        assert exc.value.error == error, (message, exc.value.text)
    _collect(net, hood)
    with pytest.raises(harness.Refused) as exc:        # a round at or before the last one advertised
        net.send(_env(meter, "env.round", {1: 0}))
    assert exc.value.error == "ReplayError"
    with pytest.raises(harness.Refused) as exc:        # readings for a round the meter has no bundle of
        net.send(_env(meter, "env.readings", {1: 2, 2: [1] * hood.slots}))
    assert exc.value.error == "StateError"
    net.close()


def _corrupt(path: str, name: str, value: bytes) -> None:
    db = sqlite3.connect(path)
    db.execute("UPDATE kv SET value = ? WHERE name = ?", (value, name))
    db.commit()
    db.close()


@pytest.mark.parametrize("role,ident,name", [("meter", "meter-000", "meter"), ("meter", "meter-000", "hood"),
                                             ("utility", "utility", "utility"),
                                             ("concentrator", "concentrator-2-0", "concentrator")])
def test_corrupt_stored_state_is_a_state_file_error(tmp_path: Any, small: Deployment, role: str, ident: str,
                                                    name: str) -> None:
    write_deployment(small, str(tmp_path))
    path = os.path.join(str(tmp_path), f"{ident}.sqlite")
    db = sqlite3.connect(path)
    good = bytes(db.execute("SELECT value FROM kv WHERE name = ?", (name,)).fetchone()[0])
    db.close()
    kind = "env.deadline" if role != "meter" else "env.round"
    body = {1: 1, 2: "adverts"} if role == "utility" else {1: 1}
    for bad in (good[:-1], cbor.encode({1: 2}), b"\x00" + good):
        _corrupt(path, name, bad)
        party = Party.open(role_spec("aggregation", role), path, ident, "s")
        with pytest.raises(StateFileError):
            party.handle(_env(ident, kind, body))
        party.close()


def test_round_codec_round_trips_and_refuses_unknown_phase(hood: agg.Neighbourhood) -> None:
    rs = agg.RoundState(3, {"meter-000": bytes(32)}, {"meter-000": ("meter-001",)})
    rs.signatures, rs.requested = {"meter-001": bytes(64)}, {"meter-000"}
    raw = st.encode_round(st.OpenRound("signatures", rs))
    back = st.decode_round(raw, hood)
    assert st.encode_round(back) == raw
    bad = cbor.decode(raw)
    bad[2] = "lunch"
    with pytest.raises(StateFileError):
        st.decode_round(cbor.encode(bad), hood)
    with pytest.raises(StateFileError):
        st.decode_group(b"\xa0")


# -- the finding: one unmask-request per round, across a crash -------------------------------------------


def _forged_request(small: Deployment, hood: agg.Neighbourhood, original: bytes, target: str) -> tuple[bytes, str]:
    """The adversary's second request for the same round: one reporting neighbour of ``target`` moved to
    the missing set, the new sets signed by tau committee members it controls (aggregation spec 11.3)."""
    m = cbor.decode(original)
    reporting = [x for x in hood.meters if x in hood.member_set(m[4], "R")]
    missing = [x for x in hood.meters if x in hood.member_set(m[5], "M")]
    victim = next(p for p in hood.neighbours(target) if p in reporting and p != target)
    peers_in_r = [p for p in hood.neighbours(target) if p in reporting]
    confs = [m[8][16 * i:16 * i + 16] for i in range(len(peers_in_r))]
    new_r, new_m = [x for x in reporting if x != victim], sorted(missing + [victim], key=hood.index)
    signers = list(hood.committee[:hood.committee_threshold])
    message = commit_message(hood.group_id, hood.digest, m[2], hood.bitmap(new_r), hood.bitmap(new_m))
    seeds = {s: small.parties[s][1]["ed25519_seed"] for s in signers}
    sigs = b"".join(Ed25519PrivateKey.from_private_bytes(seed).sign(message)
                    for seed in seeds.values() if isinstance(seed, bytes))
    body = {1: 2, 2: m[2], 3: target, 4: hood.bitmap(new_r), 5: hood.bitmap(new_m), 6: signers, 7: sigs,
            8: b"".join(c for p, c in zip(peers_in_r, confs) if p != victim)}
    key = small.parties[target][1]["key"]
    assert isinstance(key, bytes)
    return msg.seal(body, mac_key(key, b"down"), b"unmask-request", 9), victim


def _process_network(dep: Deployment, directory: str, plan: dict[str, dict[str, str]],
                     log: bool = True) -> harness.Network:
    """Real processes; party ``id`` gets the environment ``plan[id]`` in its first life only."""
    write_deployment(dep, directory)
    lives: dict[str, int] = {}

    def factory(ident: str) -> harness.Endpoint:
        role = dep.parties[ident][0]
        lives[ident] = lives.get(ident, 0) + 1
        env = plan.get(ident, {}) if lives[ident] == 1 else {}
        out = open(os.path.join(directory, f"{ident}.log"), "ab") if log else None
        command = harness.role_command("aggregation", role, os.path.join(directory, f"{ident}.sqlite"), ident, "t")
        return harness.ProcessEndpoint(ident, command, out, env)

    net = harness.Network({}, factory=factory)
    for ident in sorted(dep.parties):
        net.parties[ident] = factory(ident)
    return net


class RestartingNetwork(harness.Network):
    """A network that restarts a party killed while handling a message and sends that message again."""

    kills: int = 0

    def send(self, message: Envelope) -> list[Envelope]:
        for _ in range(8):
            try:
                return super().send(message)
            except harness.PartyDied:
                self.kills += 1
                self.restart(message.to)
        raise AssertionError(f"{message.to} keeps dying")


def _restarting(net: harness.Network) -> RestartingNetwork:
    return RestartingNetwork(net.parties, factory=net.factory)


def _trace(dep: Deployment, directory: str) -> dict[str, list[tuple[int, str, int]]]:
    """Every party's crash points in an uninterrupted run of the scenario: (count, label, input number)."""
    net = _process_network(dep, directory, {i: {"USAPP_CRASH_TRACE": "1"} for i in dep.parties})
    checks = harness.Checks()
    try:
        ra.scenario(net, dep, checks)
    finally:
        net.close()
    assert checks.ok
    points: dict[str, list[tuple[int, str, int]]] = {}
    for ident in dep.parties:
        seen, inputs = [], 0
        with open(os.path.join(directory, f"{ident}.log"), encoding="utf-8") as f:
            for line in f:
                if line.startswith("usapp-crash-point "):
                    _, count, label = line.split()
                    inputs += label == "read"
                    seen.append((int(count), label, inputs))
        points[ident] = seen
    return points


@pytest.fixture(scope="module")
def trace(small: Deployment, tmp_path_factory: Any) -> dict[str, list[tuple[int, str, int]]]:
    return _trace(small, str(tmp_path_factory.mktemp("trace")))


def _inputs_to(net: harness.Network, ident: str) -> list[Envelope]:
    return [e for e in net.transcript if e.to == ident]


def test_finding_a_meter_killed_after_answering_refuses_a_second_request(
        tmp_path: Any, small: Deployment, hood: agg.Neighbourhood,
        trace: dict[str, list[tuple[int, str, int]]]) -> None:
    """Kill -9 a meter right after it committed its unmask answer (before the answer left), restart it:
    the same request gets the byte-identical answer (journal), a different one for the round ReplayError.
    Contrast: the meter's state from before the answer -- what a meter that answers before it commits
    holds after the crash -- answers the different request too, releasing for one neighbour the share of
    the other secret: with both answers the utility holds both halves of that neighbour's masks."""
    target = hood.meters[1]
    # round 1 inputs of a meter: env.round, mask-bundle, env.readings, commit-request (committee), unmask-request
    number = 5 if target in hood.committee else 4
    committed = next(c for c, label, i in trace[target] if label == "committed" and i == number)
    net = _process_network(small, str(tmp_path / "run"), {target: {"USAPP_CRASH_AT": str(committed)}})
    readings = ra.readings_for(small, hood, 1)
    ra.route(net, [_env(m, "env.round", {1: 1}) for m in hood.meters])
    with pytest.raises(harness.PartyDied):
        ra.route(net, [_env(m, "env.readings", {1: 1, 2: readings[m]}) for m in hood.meters])
    request = _inputs_to(net, target)[-1]
    assert request.type == "unmask-request"
    net.restart(target)
    answer = net.send(request)
    assert [e.type for e in answer] == ["unmask-response"]
    assert net.send(request) == answer                          # byte-identical, from the journal
    body, victim = _forged_request(small, hood, request.body, target)
    forged = Envelope("utility", target, "unmask-request", body)
    with pytest.raises(harness.Refused) as exc:
        net.send(forged)
    assert (exc.value.error, exc.value.message.type, exc.value.message.to) == ("ReplayError", "unmask-request", target)
    net.close()
    # The same meter state before the answer was committed (same seeds, in process) answers the forged request.
    before = harness.open_network(small, str(tmp_path / "before"), seed="t", in_process=True)
    ra.route(before, [_env(m, "env.round", {1: 1}) for m in hood.meters])
    ra.route(before, [_env(m, "env.readings", {1: 1, 2: readings[m]}) for m in hood.meters],
             lost=[(target, "unmask-request")])
    assert _inputs_to(before, target)[-1] != request            # it never saw the real request
    second = before.send(forged)
    before.close()
    assert [e.type for e in second] == ["unmask-response"]
    place = hood.neighbours(target).index(victim)
    first_share = cbor.decode(answer[0].body)[4][32 * place:32 * place + 32]
    second_share = cbor.decode(second[0].body)[4][32 * place:32 * place + 32]
    assert first_share != second_share                          # sigma-share, then eps-share, of the victim


# -- crashes ---------------------------------------------------------------------------------------------


def _exact_run(dep: Deployment, directory: str, plan: dict[str, dict[str, str]]) -> RestartingNetwork:
    """Run the scenario with the kill plan; every check must pass and no one-time value may repeat."""
    net = _restarting(_process_network(dep, directory, plan, log=False))
    checks = harness.Checks()
    try:
        ra.scenario(net, dep, checks)
    finally:
        net.close()
    assert checks.ok, [c for c in checks.results if not c.passed]
    _no_second_answer(net)
    return net


def _no_second_answer(net: harness.Network) -> None:
    """Every party's one-time messages (advert, report, signature, unmask answer) have one body per round."""
    bodies: dict[tuple[str, str, int], set[bytes]] = {}
    for e in net.transcript:
        if e.type in ("mask-advert", "meter-report", "commit-signature", "unmask-response", "aggregate-report",
                      "round-result"):
            bodies.setdefault((e.sender, e.type, cbor.decode(e.body)[2 if e.type != "round-result" else 1]),
                              set()).add(e.body)
    assert all(len(v) == 1 for v in bodies.values()), [k for k, v in bodies.items() if len(v) > 1]


def test_kill_every_party_at_message_boundaries(tmp_path: Any, small: Deployment,
                                                trace: dict[str, list[tuple[int, str, int]]]) -> None:
    """One run per boundary label; in each every party is killed once, at that label of a different input
    (spread over its inputs), restarted, and the message re-sent: the outcome stays exact."""
    for number, label in enumerate(BOUNDARIES):
        plan = {}
        for k, ident in enumerate(sorted(small.parties)):
            points = [c for c, lab, _ in trace[ident] if lab == label]
            if points:
                plan[ident] = {"USAPP_CRASH_AT": str(points[(3 * number + 5 * k) % len(points)])}
        net = _exact_run(small, str(tmp_path / label), plan)
        assert net.kills == len(plan)


def _walk(points: list[tuple[int, str, int]], last_input: int) -> list[tuple[int, str]]:
    """USAPP_CRASH_AT of each successive life of a party so that its lives die, one after the other, at
    every message boundary of its inputs 1..last_input, each restarted with the message it died on.

    A new life starts with that message: after a death at read or before-commit it handles it afresh
    (the trace again from that input's read); after committed or wrote the journal answers it (read, one
    wrote per output) and the trace follows from the next input.
    """
    starts = {i: c for c, label, i in points if label == "read"}
    outputs = {i: sum(1 for _, label, j in points if label == "wrote" and j == i) for i in starts}
    targets = [(c, label, i) for c, label, i in points if label in BOUNDARIES and i <= last_input]
    plan: list[tuple[int, str]] = []
    last: tuple[str, int] | None = None
    for c, label, i in targets:
        if last is None:
            at = c
        elif last[0] in ("read", "before-commit"):
            at = c - starts[last[1]] + 1
        elif i == last[1]:                       # a later output of the journalled input
            at = 1 + sum(1 for d, lab, j in points if lab == "wrote" and j == i and d <= c)
        else:
            at = 1 + outputs[last[1]] + c - starts[last[1] + 1] + 1
        plan.append((at, label))
        last = (label, i)
    return plan


def test_kill_a_meter_and_a_concentrator_at_every_boundary_of_round_1(
        tmp_path: Any, small: Deployment, hood: agg.Neighbourhood,
        trace: dict[str, list[tuple[int, str, int]]]) -> None:
    """Real SIGKILLs: meter-001 and the root concentrator die at every read, before-commit, committed and
    wrote of round 1 (a new process each time, restarted from its state file), and the run stays exact."""
    meter, root = hood.meters[1], hood.root
    walks = {meter: _walk(trace[meter], 5 if meter in hood.committee else 4),
             root: _walk(trace[root], len(hood.children(root)) + 1)}
    directory = str(tmp_path)
    write_deployment(small, directory)
    lives: dict[str, int] = {}

    def factory(ident: str) -> harness.Endpoint:
        lives[ident] = lives.get(ident, 0) + 1
        walk = walks.get(ident, [])
        env = {"USAPP_CRASH_TRACE": "1"}
        if lives[ident] <= len(walk):
            env["USAPP_CRASH_AT"] = str(walk[lives[ident] - 1][0])
        command = harness.role_command("aggregation", small.parties[ident][0],
                                       os.path.join(directory, f"{ident}.sqlite"), ident, "t")
        return harness.ProcessEndpoint(ident, command, open(os.path.join(directory, f"{ident}.log"), "ab"), env)

    net = RestartingNetwork({}, factory=factory)
    for ident in sorted(small.parties):
        net.parties[ident] = factory(ident)
    checks = harness.Checks()
    try:
        ra.scenario(net, small, checks)
    finally:
        net.close()
    assert checks.ok, [c for c in checks.results if not c.passed]
    _no_second_answer(net)
    for ident, walk in walks.items():
        died = []                                   # the last crash point of every life that was killed
        with open(os.path.join(directory, f"{ident}.log"), encoding="utf-8") as f:
            life: list[tuple[int, str]] = []
            for line in f:
                if line.startswith("usapp-crash-point "):
                    _, count, label = line.split()
                    if count == "1":                # a new life: the previous one was killed
                        if life:
                            died.append(life[-1])
                        life = []
                    life.append((int(count), label))
        assert died == walk, ident
        assert {label for _, label in walk} == set(BOUNDARIES)


@settings(max_examples=3, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(seed=hst.integers(0, 2 ** 32 - 1))
def test_kill_at_seeded_random_points(small: Deployment, trace: dict[str, list[tuple[int, str, int]]],
                                      seed: int) -> None:
    """Every party killed once at a seeded random crash point (any label, inside steps too)."""
    rng = random.Random(seed)
    plan = {ident: {"USAPP_CRASH_AT": str(rng.randint(1, len(p)))} for ident, p in trace.items()}
    with tempfile.TemporaryDirectory() as directory:
        assert _exact_run(small, directory, plan).kills == len(plan)


class _Killed(BaseException):
    """An in-process stand-in for SIGKILL."""


class _KillEachPointOnce(CrashPlan):
    def __init__(self, killed: set[tuple[bytes, int]]) -> None:
        super().__init__()
        self.killed, self.current, self.index = killed, b"", 0

    def point(self, label: str) -> None:
        self.index += 1
        key = (self.current, self.index)
        if key not in self.killed:
            self.killed.add(key)
            raise _Killed(label)


class _KillingEndpoint:
    """An in-process party killed at every crash point of every input once, reopened from its file each time."""

    def __init__(self, dep: Deployment, directory: str, ident: str) -> None:
        self.spec = role_spec("aggregation", dep.parties[ident][0])
        self.path, self.ident = os.path.join(directory, f"{ident}.sqlite"), ident
        self.plan = _KillEachPointOnce(set())
        self.kills = 0
        self.party = self._open()

    def _open(self) -> Party:
        return Party.open(self.spec, self.path, self.ident, "t", crash=self.plan)

    def exchange(self, message: Envelope) -> tuple[list[Envelope], Envelope]:
        while True:
            self.plan.current, self.plan.index = message.line(), 0
            try:
                outputs = self.party.handle(message)
                return outputs, Envelope(self.ident, message.sender, "ok")
            except _Killed:
                self.kills += 1
                self.party.close()
                self.party = self._open()

    def close(self) -> int:
        self.party.close()
        return 0


def test_kill_at_every_crash_point_in_process(tmp_path: Any) -> None:
    """Every crash point (read, loaded, each draw, computed, before-commit, committed) of every input of every
    party killed once in one run of a 3-meter deployment: the round's outcome is exact."""
    dep = ra.deploy("every-point", meters=3, fanout=2)
    write_deployment(dep, str(tmp_path))
    parties = {i: _KillingEndpoint(dep, str(tmp_path), i) for i in dep.parties}
    net = harness.Network(dict(parties))
    hood = ra.public_hood(dep)
    readings = ra.readings_for(dep, hood, 1)
    result = ra.read_result(ra.run_round(net, hood, 1, readings), 1)
    assert result[2] == [sum(r[s] for r in readings.values()) for s in range(hood.slots)]
    assert result[3] == list(hood.meters) and result[4] == []
    _no_second_answer(net)
    assert all(p.kills > 0 for p in parties.values())
    assert sum(p.kills for p in parties.values()) > 100      # every point of every input: 203 here
    net.close()


def test_provisioning_refuses_a_record_that_is_not_this_meters(tmp_path: Any, small: Deployment) -> None:
    role, record = small.parties["meter-000"]
    other = small.parties["meter-001"][1]
    spec = role_spec("aggregation", role)
    for bad, error in (({**record, "x25519_private": other["x25519_private"]}, "ParameterError"),
                       ({**record, "graph_nonce": other["graph_nonce"]}, "ParameterError"),
                       ({**record, "spare": 1}, "DecodeError")):
        path = str(tmp_path / f"{error}-{len(bad)}-{bad['graph_nonce'] == record['graph_nonce']}.sqlite")
        with pytest.raises(UsappError) as exc:
            provision_party(spec, path, "meter-000", bad)
        assert type(exc.value).__name__ == error and not os.path.exists(path)


def test_utility_abandons_a_round_no_report_reached(tmp_path: Any, small: Deployment,
                                                     hood: agg.Neighbourhood) -> None:
    net = harness.open_network(small, str(tmp_path), in_process=True)
    ra.route(net, [_env(m, "env.round", {1: 1}) for m in hood.meters])
    assert ra.route(net, [_env("utility", "env.deadline", {1: 1, 2: "signatures"})]) == []  # not that phase
    out = ra.route(net, [_env("utility", "env.deadline", {1: 1, 2: "report"})])
    assert [e.type for e in out] == ["round-abandoned"] and cbor.decode(out[0].body)[2] == "RecoveryError"
    with pytest.raises(harness.Refused) as exc:          # the abandoned round cannot be reopened
        advert = _sent(net, hood.meters[0], "mask-advert")[0]
        net.send(Envelope(advert.sender, "utility", "mask-advert", _flip(advert.body)))
    assert exc.value.error == "ReplayError"
    ra.route(net, [_env(m, "env.round", {1: 2}) for m in hood.meters])   # round 2 runs
    readings = ra.readings_for(small, hood, 2)
    result = ra.read_result(ra.route(net, [_env(m, "env.readings", {1: 2, 2: readings[m]}) for m in hood.meters]), 2)
    assert result[2] == [sum(r[s] for r in readings.values()) for s in range(hood.slots)]
    net.close()


def test_a_tampered_meter_report_makes_the_utility_abandon_the_round(tmp_path: Any, small: Deployment,
                                                                      hood: agg.Neighbourhood) -> None:
    """A concentrator cannot check a meter's MAC; a flipped ciphertext byte is caught by the utility's
    tag check (A 8.5 step 7) and the round is not released."""
    victim = hood.meters[2]

    def tamper(step: int, e: Envelope) -> Envelope:
        if e.type == "meter-report" and e.sender == victim:
            return Envelope(e.sender, e.to, e.type, _flip(e.body, 200))
        return e

    net = harness.open_network(small, str(tmp_path), in_process=True, tamper=tamper)
    out = _collect(net, hood)
    assert [e.type for e in out] == ["round-abandoned"]
    assert cbor.decode(out[0].body)[2] == "AggregateMismatchError"
    assert ra.route(net, [_env("utility", "env.deadline", {1: 1, 2: "responses"})]) == []
    net.close()


def test_a_meter_that_takes_no_part_is_in_neither_set(tmp_path: Any, small: Deployment,
                                                        hood: agg.Neighbourhood) -> None:
    """The deadlines carry the round: the utility bundles without the absent meter's advert, its
    concentrator aggregates without its report; R is the rest and M is empty (A 8.1 step 5)."""
    absent = hood.meters[0]
    net = harness.open_network(small, str(tmp_path), in_process=True)
    readings = ra.readings_for(small, hood, 1, [absent])
    result = ra.read_result(ra.run_round(net, hood, 1, readings), 1)
    assert result[2] == [sum(r[s] for r in readings.values()) for s in range(hood.slots)]
    assert result[3] == [m for m in hood.meters if m != absent] and result[4] == []
    assert not _sent(net, absent, "mask-advert")
    assert not [e for e in net.transcript if e.to == absent and e.type in ("mask-bundle", "unmask-request")]
    net.close()
