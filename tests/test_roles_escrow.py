"""The dual-ID escrow roles as processes (specs/roles.md section 9).

In-process tests run every role over real state files; the crash tests run the
parties under test as real ``usapp role`` processes that SIGKILL themselves at
a crash point (specs/roles.md 3.5), restart them from their state files and
check that the run ends exactly as a run without a crash, with one HFID per
meter and day.
"""

from __future__ import annotations

import re
import sqlite3
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from protocols import escrow as esc
from protocols.errors import DecodeError, ParameterError, RecoveryError, StateFileError
from protocols.primitives import cbor
from protocols.primitives.drbg import HmacDrbg
from protocols.system import escrow_fleet
from protocols.system.roles import escrow as roles
from protocols.system.roles import escrow_state, harness, wire
from protocols.system.roles.base import Deployment
from protocols.system.roles.process import Party
from protocols.system.roles.wire import Envelope

START = escrow_fleet.ORIGIN
ENV = wire.HARNESS


@pytest.fixture(scope="module")
def escrowed() -> Deployment:
    return roles.deploy("test", mode="escrowed", meters=2)


@pytest.fixture(scope="module")
def blind() -> Deployment:
    return roles.deploy("test", mode="blind", meters=2)


def _ids(deployment: Deployment) -> dict[str, Any]:
    mode = deployment.public["modes"][0]  # type: ignore[index]
    return deployment.public[mode]  # type: ignore[return-value]


def _env(to: str, type_: str, body: dict) -> Envelope:
    return Envelope(ENV, to, type_, cbor.encode(body))


def _refused(net: harness.Network, message: Envelope) -> harness.Refused:
    with pytest.raises(harness.Refused) as info:
        net.send(message)
    return info.value


def _twin(deployment: Deployment, meter: str, epoch: int) -> bytes:
    """An hfid-request by a twin of ``meter`` (its provisioning record, no state): the key holder asking again."""
    config = deployment.parties[meter][1]["config"]
    assert isinstance(config, bytes)
    state = escrow_state.load_meter(config, escrow_state.EMPTY_PROFILES)[0]
    return esc.Meter(state).request_hfid(epoch, HmacDrbg.from_seed(f"twin/{epoch}"))


def _env_outputs(net: harness.Network) -> list[tuple[str, str, bytes]]:
    return [(m.sender, m.type, m.body) for m in net.transcript if m.to == ENV]


# ---------------------------------------------------------------------------
# The scenario (the demo's claims)


@pytest.mark.parametrize("mode", ["escrowed", "blind"])
def test_scenario_reproduces_the_demo_claims(tmp_path: Path, mode: str, escrowed: Deployment,
                                             blind: Deployment) -> None:
    deployment = escrowed if mode == "escrowed" else blind
    net = harness.open_network(deployment, str(tmp_path), in_process=True)
    checks = harness.Checks()
    try:
        figures = roles.scenario(net, deployment, checks)
    finally:
        net.close()
    assert checks.ok, [c for c in checks.results if not c.passed]
    assert len(checks.results) == (5 if mode == "escrowed" else 4)
    assert figures[mode]["senders"] == 2 and figures[mode]["named"] == 0 and figures[mode]["billed"] == 2
    assert figures[mode]["reidentified"] == ("SM-00001" if mode == "escrowed" else None)
    escrow_db = sqlite3.connect(tmp_path / f"{mode}:escrow.sqlite")
    assert sorted(escrow_db.execute("SELECT serial, epoch FROM issued")) == [("SM-00000", 0), ("SM-00001", 0)]
    escrow_db.close()


def test_interop_default_deployment_runs_both_modes(tmp_path: Path) -> None:
    checks, net, figures = harness.run_scenario("escrow", str(tmp_path), in_process=True)
    assert checks.ok and len(checks.results) == 9
    assert set(figures) == {"escrowed", "blind"} and figures["blind"]["senders"] == 3


def test_deploy_is_deterministic_and_checks_its_options() -> None:
    a, b = roles.deploy("x", mode="escrowed", meters=1), roles.deploy("x", mode="escrowed", meters=1)
    assert a.parties == b.parties
    assert roles.deploy("y", mode="escrowed", meters=1).parties != a.parties
    for bad in ({"mode": "open"}, {"meters": 0}, {"epochs": 0}):
        with pytest.raises(ParameterError):
            roles.deploy("x", **bad)


# ---------------------------------------------------------------------------
# Handler tests and negatives (in process, real state files)


@dataclass
class Day:
    """An escrowed deployment after env.day for every meter (clocks set)."""

    net: harness.Network
    ids: dict[str, Any]
    path: Path
    requests: dict[str, Envelope] = field(default_factory=dict)


def _day(deployment: Deployment, path: Path) -> Day:
    net = harness.open_network(deployment, str(path), in_process=True)
    ids = _ids(deployment)
    net.deliver([_env(p, "env.clock", {1: START}) for p in (ids["escrow"], ids["supplier"], ids["grid-operator"])])
    day = Day(net, ids, path)
    for serial, meter in sorted(ids["meters"].items()):
        request = net.send(_env(meter, "env.day", {1: 0, 2: START}))[0]
        day.requests[serial] = request
        net.deliver([request])
    return day


def test_meter_reports_its_hfid_and_sends_under_both_profiles(tmp_path: Path, escrowed: Deployment) -> None:
    day = _day(escrowed, tmp_path)
    meter = day.ids["meters"]["SM-00000"]
    hfids = [m for m in day.net.transcript if m.to == ENV and m.type == "hfid"]
    assert [cbor.decode(m.body)[1] for m in hfids] == [0, 0] and len({m.body for m in hfids}) == 2
    adp = day.net.send(roles.send_request(meter, "technical", "grid-operator", b"v", START + 60))
    assert [(m.to, m.type) for m in adp] == [(day.ids["grid-operator"], "adp")]
    day.net.send(_env(day.ids["grid-operator"], "env.clock", {1: START + 60}))
    report = cbor.decode(day.net.send(adp[0])[0].body)
    fingerprint = cbor.decode(hfids[0].body)[2]
    assert (report[1], report[2], report[3], report[8]) == ("adp", "technical", "hfid:" + fingerprint[:16].hex(),
                                                            fingerprint)
    cdp = day.net.send(roles.send_request(meter, "customer", "supplier", b"kWh", START + 60))
    assert [(m.to, m.type) for m in cdp] == [(day.ids["supplier"], "cdp")]
    day.net.send(_env(day.ids["supplier"], "env.clock", {1: START + 60}))
    bill = cbor.decode(day.net.send(cdp[0])[0].body)
    assert (bill[1], bill[3], bill[4], bill[7], bill[8]) == ("cdp", "lfid:SM-00000", None, b"kWh", None)
    day.net.close()


def test_a_second_hfid_for_a_meter_day_is_refused_even_after_a_restart(tmp_path: Path, escrowed: Deployment) -> None:
    day = _day(escrowed, tmp_path)
    escrow = day.ids["escrow"]
    twin = _twin(escrowed, day.ids["meters"]["SM-00000"], 0)
    message = Envelope(day.ids["meters"]["SM-00000"], escrow, "hfid-request", twin)
    assert _refused(day.net, message).error == "ReplayError"
    day.net.restart(escrow)
    refusal = _refused(day.net, message)
    assert (refusal.error, refusal.message.type, refusal.message.sender) == (
        "ReplayError", "hfid-request", day.ids["meters"]["SM-00000"])
    # The meter's own re-sent request (the same line) gets the same answer from the journal, not a second HFID.
    again = day.net.send(day.requests["SM-00000"])
    first = next(m for m in day.net.transcript if m.type == "hfid-response" and m.to == day.ids["meters"]["SM-00000"])
    assert again == [first]
    # A fresh request for the next day is served.
    meter = day.ids["meters"]["SM-00000"]
    nxt = day.net.send(_env(meter, "env.day", {1: 1, 2: START}))
    assert [m.type for m in day.net.send(nxt[0])] == ["hfid-response"]
    day.net.close()


def test_a_flipped_byte_is_refused_and_named(tmp_path: Path, escrowed: Deployment) -> None:
    ids = _ids(escrowed)
    meter = ids["meters"]["SM-00000"]

    def flip_last(step: int, message: Envelope) -> Envelope:
        if message.type == "hfid-request":
            return Envelope(message.sender, message.to, message.type, message.body[:-1] + bytes([message.body[-1] ^ 1]))
        return message

    net = harness.open_network(escrowed, str(tmp_path), in_process=True, tamper=flip_last)
    net.send(_env(ids["escrow"], "env.clock", {1: START}))
    request = net.send(_env(meter, "env.day", {1: 0, 2: START}))
    refusal = _refused(net, request[0])
    assert (refusal.step, refusal.message.type, refusal.message.sender, refusal.message.to, refusal.error) == (
        3, "hfid-request", meter, ids["escrow"], "VerificationError")
    assert "hfid-request" in str(refusal) and "step 3" in str(refusal)
    net.close()


def test_replayed_data_messages_are_refused(tmp_path: Path, escrowed: Deployment) -> None:
    day = _day(escrowed, tmp_path)
    meter, grid, supplier = day.ids["meters"]["SM-00000"], day.ids["grid-operator"], day.ids["supplier"]
    day.net.deliver([_env(p, "env.clock", {1: START + 900}) for p in (grid, supplier)])
    for category, recipient in (("technical", "grid-operator"), ("customer", "supplier")):
        message = day.net.send(roles.send_request(meter, category, recipient, b"p", START + 900))[0]
        day.net.send(message)
        # The same line again is answered from the journal; the same body by another route is a replay.
        assert day.net.send(message) == day.net.send(message)
        replay = Envelope(day.ids["meters"]["SM-00001"], message.to, message.type, message.body)
        assert _refused(day.net, replay).error == "ReplayError"
    day.net.close()


def test_wrong_epochs_and_clocks_are_refused(tmp_path: Path, escrowed: Deployment) -> None:
    day = _day(escrowed, tmp_path)
    meter, grid, escrow = day.ids["meters"]["SM-00000"], day.ids["grid-operator"], day.ids["escrow"]
    assert _refused(day.net, _env(meter, "env.day", {1: 5, 2: START})).error == "StateError"
    # A request for the day after tomorrow: the escrow serves only the current and the next epoch.
    late = _twin(escrowed, meter, 2)
    assert _refused(day.net, Envelope(meter, escrow, "hfid-request", late)).error == "StateError"
    # Data of day 0 reaching the grid operator on day 2 has expired.
    adp = day.net.send(roles.send_request(meter, "technical", "grid-operator", b"v", START + 60))[0]
    day.net.send(_env(grid, "env.clock", {1: START + 2 * 86_400}))
    assert _refused(day.net, adp).error == "StateError"
    assert _refused(day.net, _env(grid, "env.clock", {1: START + 1})).error == "StateError"   # never back
    # Technical data without an HFID for the day.
    assert _refused(day.net, roles.send_request(meter, "technical", "grid-operator", b"v",
                                                START + 3 * 86_400)).error == "StateError"
    day.net.close()


def test_policy_and_routing_refusals(tmp_path: Path, escrowed: Deployment) -> None:
    day = _day(escrowed, tmp_path)
    meter, grid, supplier = day.ids["meters"]["SM-00000"], day.ids["grid-operator"], day.ids["supplier"]
    assert _refused(day.net, roles.send_request(meter, "technical", "supplier", b"x", START)).error == "PolicyError"
    assert _refused(day.net, roles.send_request(meter, "customer", "grid-operator", b"x", START)).error == "PolicyError"
    cdp = day.net.send(roles.send_request(meter, "customer", "supplier", b"x", START))[0]
    assert _refused(day.net, Envelope(meter, grid, "cdp", cdp.body)).error == "PolicyError"
    assert _refused(day.net, Envelope(meter, supplier, "adp", cdp.body)).error == "DecodeError"
    # Env messages come from env only; every role refuses a type it does not take.
    assert _refused(day.net, Envelope(grid, meter, "env.day", cbor.encode({1: 0, 2: START}))).error == "DecodeError"
    assert _refused(day.net, _env(supplier, "env.day", {1: 0, 2: START})).error == "DecodeError"
    assert _refused(day.net, _env(meter, "env.day", {1: 0})).error == "DecodeError"
    assert _refused(day.net, Envelope(grid, meter, "hfid-response", b"")).error == "DecodeError"
    day.net.close()


def test_an_oversized_env_body_is_refused_before_it_is_decoded(tmp_path: Path, escrowed: Deployment,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    big = Envelope(ENV, "escrowed:SM-00000", "env.send",
                   cbor.encode({1: "technical", 2: "grid-operator", 3: bytes(roles.MAX_ENV_BYTES), 4: START}))

    def never(*args: object, **kwargs: object) -> dict:
        raise AssertionError("the body was decoded")

    monkeypatch.setattr(cbor, "decode_map", never)
    with pytest.raises(DecodeError, match="exceeds"):
        roles._env(big, {1: str, 2: str, 3: bytes, 4: int})
    monkeypatch.undo()
    net = harness.open_network(escrowed, str(tmp_path), in_process=True)
    assert _refused(net, big).error == "DecodeError"
    net.close()


def test_authorities_share_once_per_approval(tmp_path: Path, escrowed: Deployment) -> None:
    day = _day(escrowed, tmp_path)
    authority, escrow = day.ids["authorities"][0], day.ids["escrow"]
    fingerprint = cbor.decode(next(m for m in day.net.transcript if m.type == "hfid").body)[2]
    request = esc.reidentification_request(fingerprint, "a court order", bytes(16))
    # No share for a request the authority has not approved.
    sealed_link = day.net.send(Envelope(authority, escrow, "reid-request", request))[0]
    assert _refused(day.net, sealed_link).error == "StateError"
    out = day.net.deliver([_env(authority, "env.reidentify", {1: request})])
    assert [m.type for m in out] == ["reid-share"]
    # The approval is used: the escrow's answer again by another route gets no second share.
    assert _refused(day.net, Envelope(day.ids["supplier"], authority, "sealed-link", sealed_link.body)).error \
        == "DecodeError"
    again = day.net.send(Envelope(escrow, authority, "sealed-link", sealed_link.body))
    assert again == out                          # the same line: the same share, from the journal
    fingerprints = [cbor.decode(m.body)[2] for m in day.net.transcript if m.type == "hfid"]
    other_request = esc.reidentification_request(fingerprints[1], "a court order", bytes(16))
    other_link = cbor.decode(day.net.send(Envelope(authority, escrow, "reid-request", other_request))[0].body)[2]
    swapped = cbor.encode({1: request, 2: other_link})
    assert _refused(day.net, Envelope(escrow, authority, "sealed-link", swapped)).error == "StateError"
    assert _refused(day.net, Envelope(authority, escrow, "reid-request", b"\x00")).error == "DecodeError"
    # An unknown credential: the escrow holds no link.
    unknown = esc.reidentification_request(bytes(32), "a court order", bytes(16))
    assert _refused(day.net, Envelope(authority, escrow, "reid-request", unknown)).error == "StateError"
    share = cbor.decode(out[0].body)
    with pytest.raises(RecoveryError):     # one share is not enough (t = 2)
        roles.combine(day.ids["group_info"], request, [share])
    day.net.close()


@pytest.mark.parametrize(("party", "name"), [
    ("escrowed:SM-00000", "profiles"), ("escrowed:SM-00000", "config"), ("escrowed:escrow", "config"),
    ("escrowed:escrow", "now"), ("escrowed:grid-operator", "config"), ("escrowed:authority-1", "config"),
])
def test_a_corrupt_state_entry_is_a_state_file_error(tmp_path: Path, escrowed: Deployment, party: str,
                                                     name: str) -> None:
    harness.open_network(escrowed, str(tmp_path), in_process=True).close()
    db = sqlite3.connect(tmp_path / f"{party}.sqlite")
    raw = db.execute("SELECT value FROM kv WHERE name = ?", (name,)).fetchone()[0]
    db.execute("UPDATE kv SET value = ? WHERE name = ?", (raw[:-1] if len(raw) > 1 else b"\xff", name))
    db.commit()
    db.close()
    role = escrowed.parties[party][0]
    opened = Party.open(roles.ROLES[role], str(tmp_path / f"{party}.sqlite"), party, "s")
    inputs = {"meter": _env(party, "env.day", {1: 0, 2: START}),
              "escrow": (_env(party, "env.clock", {1: START}) if name == "now"
                         else Envelope("escrowed:authority-1", party, "reid-request", b"")),
              "grid-operator": Envelope("escrowed:SM-00000", party, "adp", b"\xa0"),
              "authority": _env(party, "env.reidentify", {1: b""})}
    with pytest.raises(StateFileError):
        opened.handle(inputs[role])
    opened.close()


def test_a_corrupt_stored_map_is_named(escrowed: Deployment) -> None:
    config = escrowed.parties["escrowed:SM-00000"][1]["config"]
    assert isinstance(config, bytes)
    with pytest.raises(StateFileError, match="sequence number"):
        escrow_state.load_meter(config, cbor.encode({1: {}, 2: {}, 3: -1, 4: {}}))
    with pytest.raises(StateFileError, match="meter profiles"):
        escrow_state.load_meter(config, cbor.encode({1: {}, 2: {}, 3: 0}))
    with pytest.raises(StateFileError, match="HF profile"):
        escrow_state.load_meter(config, cbor.encode({1: {0: {1: b""}}, 2: {}, 3: 0, 4: {}}))
    with pytest.raises(StateFileError):
        escrow_state.load_meter(cbor.encode({1: "x"}), escrow_state.EMPTY_PROFILES)
    with pytest.raises(StateFileError, match="not an epoch"):
        escrow_state._int_map({"a": 1}, escrow_state._uint, "x")


# ---------------------------------------------------------------------------
# Tampering anywhere between parties (hypothesis over the message and the byte)

TAMPERED_TYPES = ("hfid-request", "hfid-response", "adp", "cdp", "sealed-link")


class _Recording(harness.Network):
    """A network that records, for each step, the message and whether it was accepted."""

    accepted: dict[int, Envelope]

    def send(self, message: Envelope) -> list[Envelope]:
        outputs = super().send(message)
        self.accepted[self.steps] = message
        return outputs


def _recording(deployment: Deployment, path: Path, tamper: harness.Tamper | None = None) -> _Recording:
    base = harness.open_network(deployment, str(path), in_process=True, tamper=tamper)
    net = _Recording(base.parties, tamper, factory=base.factory)
    net.accepted = {}
    return net


@pytest.fixture(scope="module")
def clean_steps(escrowed: Deployment, tmp_path_factory: pytest.TempPathFactory) -> dict[int, Envelope]:
    net = _recording(escrowed, tmp_path_factory.mktemp("clean"))
    assert roles.scenario(net, escrowed, harness.Checks())
    net.close()
    return {s: m for s, m in net.accepted.items() if m.type in TAMPERED_TYPES and m.sender != ENV}


@settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_any_flipped_byte_between_parties_is_refused_at_its_step(data: st.DataObject, escrowed: Deployment,
                                                                  clean_steps: dict[int, Envelope],
                                                                  tmp_path_factory: pytest.TempPathFactory) -> None:
    step = data.draw(st.sampled_from(sorted(clean_steps)), label="step")
    original = clean_steps[step]
    offset = data.draw(st.integers(0, len(original.body) - 1), label="offset")
    bit = data.draw(st.integers(0, 7), label="bit")

    def flip(at: int, message: Envelope) -> Envelope:
        if at != step:
            return message
        body = bytearray(message.body)
        body[offset] ^= 1 << bit
        return Envelope(message.sender, message.to, message.type, bytes(body))

    net = _recording(escrowed, tmp_path_factory.mktemp("tamper"), flip)
    with pytest.raises(harness.Refused) as info:
        roles.scenario(net, escrowed, harness.Checks())
    net.close()
    refusal = info.value
    assert (refusal.step, refusal.message.type, refusal.message.sender, refusal.message.to) == (
        step, original.type, original.sender, original.to)
    assert refusal.message.body != original.body
    assert refusal.error in {"DecodeError", "VerificationError", "StateError", "PolicyError", "ParameterError",
                             "InvalidCiphertextError", "ReplayError"}


# ---------------------------------------------------------------------------
# Crash tests: real processes killed at their crash points (specs/roles.md 3.5)

CRASH_PARTIES = ("escrowed:escrow", "escrowed:SM-00000", "escrowed:grid-operator", "escrowed:supplier",
                 "escrowed:authority-1")
BOUNDARIES = ("read", "before-commit", "committed", "wrote")
KILL_LABELS = (*BOUNDARIES, "escrow-issued", "meter-state")
"""The boundary test kills at the message boundaries and at the roles' own points between the
protocol step and the state write (the escrow's: after issuing, before the one-time row)."""
_POINT = re.compile(rb"usapp-crash-point (\d+) (\S+)")


class _Restarting(harness.Network):
    """A network whose sender re-sends a message after restarting the party that died on it."""

    died: list[str]

    def send(self, message: Envelope) -> list[Envelope]:
        try:
            return super().send(message)
        except harness.PartyDied:
            self.died.append(message.to)
            self.restart(message.to)
            return super().send(message)


def _crash_run(deployment: Deployment, path: Path, plan: dict[str, int], trace: bool = False
               ) -> tuple[_Restarting, harness.Checks, dict, dict[str, list[tuple[int, str]]]]:
    """Run the scenario with the parties of ``plan`` as processes killed at their planned point
    (0: traced, not killed); every other party, and every restarted one, runs in process."""
    base = harness.open_network(deployment, str(path), in_process=True)
    logs = {}
    for ident, at in plan.items():
        base.parties[ident].close()
        role = deployment.parties[ident][0]
        logs[ident] = open(path / f"{ident}.log", "wb")
        env = {"USAPP_CRASH_TRACE": "1"} if trace else {"USAPP_CRASH_AT": str(at)}
        base.parties[ident] = harness.ProcessEndpoint(
            ident, harness.role_command("escrow", role, str(path / f"{ident}.sqlite"), ident, "interop"),
            logs[ident], env)
    net = _Restarting(base.parties, factory=base.factory)
    net.died = []
    checks = harness.Checks()
    try:
        figures = roles.scenario(net, deployment, checks)
    finally:
        net.close()
        for log in logs.values():
            log.close()
    points = {ident: [(int(n), label.decode()) for n, label in _POINT.findall((path / f"{ident}.log").read_bytes())]
              for ident in plan}
    return net, checks, figures, points


@dataclass
class Reference:
    outputs: list[tuple[str, str, bytes]]
    figures: dict
    points: dict[str, list[tuple[int, str]]]
    boundaries: dict[str, list[int]]


def _trace(deployment: Deployment, path: Path, parties: tuple[str, ...]) -> Reference:
    """A traced run: every crash point of the parties under test, and the first point of each
    (input type, boundary label) pair of each party: the kill points of the boundary test."""
    net, checks, figures, points = _crash_run(deployment, path, {p: 0 for p in parties}, trace=True)
    assert checks.ok and not net.died
    boundaries: dict[str, list[int]] = {}
    for ident, trace in points.items():
        inputs = [m.type for m in net.transcript if m.to == ident]
        seen, chosen, current = set(), [], -1
        for n, label in trace:
            current += label == "read"
            if label in KILL_LABELS and (inputs[current], label) not in seen:
                seen.add((inputs[current], label))
                chosen.append(n)
        boundaries[ident] = chosen
    return Reference(_env_outputs(net), figures, points, boundaries)


@pytest.fixture(scope="module")
def reference(escrowed: Deployment, tmp_path_factory: pytest.TempPathFactory) -> Reference:
    return _trace(escrowed, tmp_path_factory.mktemp("trace"), CRASH_PARTIES)


@pytest.fixture(scope="module")
def blind_reference(blind: Deployment, tmp_path_factory: pytest.TempPathFactory) -> Reference:
    return _trace(blind, tmp_path_factory.mktemp("trace-blind"), ("blind:escrow", "blind:SM-00000"))


def _assert_exact(path: Path, net: _Restarting, checks: harness.Checks, figures: dict, ref: Reference,
                  mode: str = "escrowed") -> None:
    assert checks.ok, [c for c in checks.results if not c.passed]
    assert figures == ref.figures
    assert _env_outputs(net) == ref.outputs          # every HFID, report and share exactly as without a crash
    db = sqlite3.connect(path / f"{mode}:escrow.sqlite")
    assert sorted(db.execute("SELECT serial, epoch FROM issued")) == [("SM-00000", 0), ("SM-00001", 0)]
    assert db.execute("SELECT count(*) FROM links").fetchone() == ((2,) if mode == "escrowed" else (0,))
    db.close()
    for authority in (("escrowed:authority-1", "escrowed:authority-3") if mode == "escrowed" else ()):
        db = sqlite3.connect(path / f"{authority}.sqlite")
        assert db.execute("SELECT count(*) FROM approved").fetchone() == (0,)   # each approval used once
        db.close()


def test_reference_trace_covers_every_boundary(reference: Reference) -> None:
    labels = {ident: {label for _, label in trace} for ident, trace in reference.points.items()}
    for ident in CRASH_PARTIES:
        assert set(BOUNDARIES) <= labels[ident], ident
    assert "escrow-issued" in labels["escrowed:escrow"] and "meter-state" in labels["escrowed:SM-00000"]
    assert all(len(b) >= 6 for b in reference.boundaries.values())
    chosen = {ident: {label for n, label in reference.points[ident] if n in reference.boundaries[ident]}
              for ident in CRASH_PARTIES}
    assert chosen["escrowed:escrow"] == {*BOUNDARIES, "escrow-issued"}
    assert chosen["escrowed:SM-00000"] == {*BOUNDARIES, "meter-state"}
    assert len(reference.boundaries["escrowed:SM-00000"]) == 15    # 3 inputs x 5 labels


def test_kill_at_every_message_boundary(escrowed: Deployment, reference: Reference,
                                        tmp_path_factory: pytest.TempPathFactory) -> None:
    """Each run kills every party under test once, at its next boundary point (batched)."""
    rounds = max(len(b) for b in reference.boundaries.values())
    killed = 0
    for i in range(rounds):
        plan = {ident: b[i] for ident, b in reference.boundaries.items() if i < len(b)}
        path = tmp_path_factory.mktemp(f"boundary{i}")
        net, checks, figures, _ = _crash_run(escrowed, path, plan)
        assert sorted(net.died) == sorted(plan), (i, plan, net.died)
        killed += len(net.died)
        _assert_exact(path, net, checks, figures, reference)
    assert killed == sum(len(b) for b in reference.boundaries.values())


@settings(max_examples=5, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_kill_at_random_points_inside_steps(data: st.DataObject, escrowed: Deployment, reference: Reference,
                                            tmp_path_factory: pytest.TempPathFactory) -> None:
    plan = {}
    for ident in ("escrowed:escrow", "escrowed:SM-00000", "escrowed:authority-1"):
        inside = [n for n, label in reference.points[ident] if label not in KILL_LABELS]
        plan[ident] = data.draw(st.sampled_from(inside), label=ident)
    path = tmp_path_factory.mktemp("random")
    net, checks, figures, _ = _crash_run(escrowed, path, plan)
    assert sorted(net.died) == sorted(plan)
    _assert_exact(path, net, checks, figures, reference)


@settings(max_examples=3, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_kill_at_random_points_in_blind_mode(data: st.DataObject, blind: Deployment, blind_reference: Reference,
                                             tmp_path_factory: pytest.TempPathFactory) -> None:
    """Mode blind: the meter's pending blinding state and the escrow's blind signature survive a kill."""
    plan = {ident: data.draw(st.sampled_from([n for n, _ in points]), label=ident)
            for ident, points in sorted(blind_reference.points.items())}
    path = tmp_path_factory.mktemp("random-blind")
    net, checks, figures, _ = _crash_run(blind, path, plan)
    assert sorted(net.died) == sorted(plan)
    _assert_exact(path, net, checks, figures, blind_reference, "blind")


def test_a_second_process_on_a_state_file_is_refused(tmp_path: Path, escrowed: Deployment) -> None:
    net = harness.open_network(escrowed, str(tmp_path), in_process=True)
    ident = "escrowed:escrow"
    second = harness.ProcessEndpoint(ident, harness.role_command("escrow", "escrow", str(tmp_path / f"{ident}.sqlite"),
                                                                  ident, "s"))
    with pytest.raises(harness.PartyDied):
        second.exchange(_env(ident, "env.clock", {1: START}))
    assert second.close() != 0
    assert net.send(_env(ident, "env.clock", {1: START})) == []     # the holder goes on
    net.close()

