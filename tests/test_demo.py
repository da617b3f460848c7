"""``usapp demo`` (protocols/system/demo.py) checks every claim it prints.

The demo passes with a seed; each of its checks, made to fail by
monkeypatching the protocol step it depends on (so that the step returns a
wrong value, or does not refuse), makes the demo exit 1 naming that check.
The adversary here is the protocol implementation itself going wrong: the
demo must not report success over it.
"""

from __future__ import annotations

import dataclasses
import io
import re
from collections.abc import Callable
from typing import Any

import pytest

from protocols import escrow as esc
from protocols import groupkeys as gk
from protocols import integrity as ig
from protocols.errors import ParameterError, RecoveryError
from protocols.system import cli, demo, escrow_fleet
from protocols.system import neighbourhood as nb

METERS = 6
"""Small enough that one run takes a fraction of a second."""


def _run(seed: str | None = "test") -> tuple[int, str]:
    out = io.StringIO()
    return demo.main(seed, out, METERS), out.getvalue()


def _failed(text: str) -> list[str]:
    return re.findall(r"^failed check: (.*)$", text, re.MULTILINE)


def test_demo_passes_every_check_with_a_seed():
    status, text = _run("test")
    lines = text.splitlines()
    assert status == 0
    assert lines[0].startswith("seed: test ")
    total = sum(line.startswith("  ok     ") for line in lines)
    assert total >= 25 and "FAILED" not in text and not _failed(text)
    assert lines[-1] == f"{total} of {total} checks passed"


def test_cli_demo_exit_status_and_last_line(capsys):
    assert cli.main(["demo", "--seed", "ci"]) == 0
    last = capsys.readouterr().out.splitlines()[-1]
    count = int(last.split()[0])
    assert last == f"{count} of {count} checks passed"


@pytest.mark.parametrize("seed", ["", "x" * (demo.MAX_SEED_CHARS + 1)])
def test_cli_demo_refuses_a_bad_seed_before_any_work(seed, capsys, monkeypatch):
    monkeypatch.setattr(demo, "generate_keypair", _never)
    assert cli.main(["demo", "--seed", seed]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert len(captured.err.splitlines()) == 1 and captured.err.startswith("usapp: error: --seed must be 1 to")
    with pytest.raises(ParameterError):
        demo.run(seed)


def _never(*args: Any, **kwargs: Any) -> Any:
    raise AssertionError("the demo started work with a bad seed")


def test_unseeded_demo_prints_a_random_seed_that_repeats_the_run():
    first, second = demo.run(None, meters=METERS), demo.run(None, meters=METERS)
    assert first.ok and second.ok and first.seed != second.seed and len(first.seed) == 32
    again = demo.run(first.seed, meters=METERS)
    assert again.figures == first.figures


def test_escrow_fleet_draws_from_the_demo_seed(monkeypatch):
    """No fixed public seed: the fleet's keys come from the demo's seed (a stream of its DRBG)."""
    keys: list[bytes] = []
    real = escrow_fleet.provision

    def provision(*args: Any, **kwargs: Any) -> escrow_fleet.Fleet:
        assert kwargs.get("seed") is None and kwargs.get("rng") is not None
        fleet = real(*args, **kwargs)
        keys.append(fleet.escrow.state.hpke_private)
        return fleet

    monkeypatch.setattr(escrow_fleet, "provision", provision)
    assert demo.run("one", meters=METERS).ok and demo.run("two", meters=METERS).ok
    assert demo.run("one", meters=METERS).ok
    assert keys[0:2] == keys[4:6] and not set(keys[0:2]) & set(keys[2:4])


def test_escrow_fleet_without_seed_uses_os_randomness():
    first = escrow_fleet.provision("escrowed", 1, range(1))
    second = escrow_fleet.provision("escrowed", 1, range(1))
    assert first.escrow.state.hpke_private != second.escrow.state.hpke_private
    with pytest.raises(ParameterError):
        escrow_fleet.provision("escrowed", 1, range(1), seed="s", rng=_Bytes())


class _Bytes:
    def random_bytes(self, n: int) -> bytes:
        return bytes(n)


# --------------------------------------------------------------------------
# Each check made to fail


def _round(call: int, change: Callable[[nb.Transcript], None]) -> Callable[[pytest.MonkeyPatch], None]:
    """Patch the ``call``-th neighbourhood round (1, 2: the plain rounds; 3: the DP round)."""
    def patch(monkeypatch: pytest.MonkeyPatch) -> None:
        real, calls = nb.run_round, []

        def run_round(*args: Any, **kwargs: Any) -> nb.Transcript:
            transcript = real(*args, **kwargs)
            calls.append(transcript)
            if len(calls) == call:
                change(transcript)
            return transcript

        monkeypatch.setattr(nb, "run_round", run_round)
    return patch


def _result(**change: Callable[[Any], Any]) -> Callable[[nb.Transcript], None]:
    def apply(transcript: nb.Transcript) -> None:
        result = transcript.result
        assert result is not None
        transcript.result = dataclasses.replace(
            result, **{name: f(getattr(result, name)) for name, f in change.items()})
    return apply


def _off_by_one(sums: tuple[int, ...]) -> tuple[int, ...]:
    return (sums[0] + 1,) + sums[1:]


def _one_signature(transcript: nb.Transcript) -> None:
    transcript.commit_signatures = dict(list(transcript.commit_signatures.items())[:1])


def _wrap(owner: Any, name: str, after: Callable[..., Any]) -> Callable[[pytest.MonkeyPatch], None]:
    """Patch ``owner.name`` to call the real one, then ``after(value, *args)``."""
    def patch(monkeypatch: pytest.MonkeyPatch) -> None:
        real = getattr(owner, name)

        def wrapper(*args: Any, **kwargs: Any) -> Any:
            return after(real(*args, **kwargs), *args, **kwargs)

        monkeypatch.setattr(owner, name, wrapper)
    return patch


def _replace(owner: Any, name: str, function: Callable[..., Any]) -> Callable[[pytest.MonkeyPatch], None]:
    def patch(monkeypatch: pytest.MonkeyPatch) -> None:
        real = getattr(owner, name)
        monkeypatch.setattr(owner, name, lambda *args, **kwargs: function(real, *args, **kwargs))
    return patch


def _policy(sphere: esc.Sphere) -> Callable[[pytest.MonkeyPatch], None]:
    def patch(monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setitem(esc.POLICY, "technical", sphere)
    return patch


def _late_meter_forgets(monkeypatch: pytest.MonkeyPatch) -> None:
    """A meter provisioned from a checkpoint that ignores the checkpoint's command sequence number."""
    real = gk.Meter.provision

    def provision(cls: type[gk.Meter], *args: Any, **kwargs: Any) -> gk.Meter:
        meter = real(*args, **kwargs)
        if args[1] == b"meter-late":
            meter.state.command_seq = 0
        return meter

    monkeypatch.setattr(gk.Meter, "provision", classmethod(provision))


def _everyone_cut(value: Any, meter: gk.Meter, *args: Any) -> Any:
    meter.state.supply_on = False
    return value


def _keeps_old_controller(real: Callable[..., gk.Command], meter: gk.Meter, *args: Any) -> gk.Command:
    """A meter that moves to the recovery's epoch but keeps trusting the old head-end's key."""
    old = meter.state.controller_key
    command = real(meter, *args)
    if command.action == "rekey-group":
        meter.state.controller_key = old
    return command


def _drop_one(messages: dict[bytes, bytes], *args: Any) -> dict[bytes, bytes]:
    return dict(sorted(messages.items())[1:])


def _issued_forgotten(real: Callable[..., bytes], escrow: esc.Escrow, *args: Any) -> bytes:
    escrow.state.issued.clear()
    return real(escrow, *args)


def _one_biller(received: esc.Received, *args: Any) -> esc.Received:
    return dataclasses.replace(received, sender="lfid:SM-00000") if received.kind == "cdp" else received


def _unrecoverable(*args: Any, **kwargs: Any) -> nb.Transcript:
    raise RecoveryError("patched: too few shares")


FAILURES: dict[str, Callable[[pytest.MonkeyPatch], None]] = {
    "aggregation round 1: the released sums equal the sums of the readings":
        _round(1, _result(sums=_off_by_one)),
    "aggregation round 1: every meter is in the reporting set and the missing set is empty":
        _round(1, _result(missing=lambda _: ("meter-005",))),
    "aggregation round 1: at least {t} committee members signed the sets": _round(1, _one_signature),
    "aggregation round 2: with meters dropped and one silent, the recovered sums equal the sums of the readings "
    "that were reported": _round(2, _result(sums=_off_by_one)),
    "aggregation round 2: the missing set is exactly the dropped meters, the reporting set the rest":
        _round(2, _result(missing=lambda _: ())),
    "aggregation round 2: at least {t} committee members signed the sets": _round(2, _one_signature),
    "aggregation round 3: a noisy release over every meter, each sum within the physical range":
        _round(3, _result(noisy=lambda _: False)),
    "aggregation round 3: at least {t} committee members signed the sets": _round(3, _one_signature),
    "aggregation: every step that should succeed did": _replace(nb, "run_round", _unrecoverable),
    "group keys: every member after the rekey reads the tariff":
        _replace(gk.Controller, "send", lambda real, self, text: real(self, b"altered " + text)),
    "group keys: the meter that moved out cannot read the tariff":
        _replace(gk.Controller, "rekey", lambda real, self, joins, leaves, rng: real(self, joins, (), rng)),
    "group keys: the operators' disconnect applies to meter-002 alone":
        _replace(gk, "command_body", lambda real, group, seq, action, args, **kw:
                 real(group, seq, action, {1: [b"meter-003"]} if action == "disconnect" else args, **kw)),
    "group keys: the attacker's disconnect-all (head-end key, 2 of 5 operators) is refused by every meter":
        _replace(gk, "_verify", lambda real, *args: None),
    "group keys: after the attack only meter-002 is off": _wrap(gk.Meter, "_command", _everyone_cut),
    "group keys: the disconnect replayed to a meter provisioned after it is refused": _late_meter_forgets,
    "group keys: a recovery for a directory with an extra member is refused":
        _replace(gk, "directory_hash", lambda real, group, epoch, members: real(group, epoch, {})),
    "group keys: after the recovery every member holds the new group key": _wrap(gk.Controller, "recover", _drop_one),
    "group keys: after the recovery the old head-end's messages are refused by every member":
        _replace(gk.Meter, "_command", _keeps_old_controller),
    **{f"escrow ({mode}): the grid operator got every meter's technical data from {{n}} distinct anonymous "
       "HFIDs naming no meter": _policy(esc.Sphere("LFID", frozenset({"grid-operator"}))) for mode in esc.MODES},
    **{f"escrow ({mode}): the supplier got a bill from each of the {{n}} meters under its LFID":
       _wrap(esc.Receiver, "receive", _one_biller) for mode in esc.MODES},
    **{f"escrow ({mode}): a second HFID for the same meter and day is refused":
       _replace(esc.Escrow, "handle", _issued_forgotten) for mode in esc.MODES},
    **{f"escrow ({mode}): technical data addressed to the supplier is refused":
       _policy(esc.Sphere("HFID", frozenset({"grid-operator", "supplier"}))) for mode in esc.MODES},
    "escrow (escrowed): 2 of 3 authorities re-identify the HFID as its meter":
        _wrap(esc, "reidentify", lambda record, *args: dataclasses.replace(record, lfid_serial="SM-00001")),
    "integrity: the honest utility's fed-back tree head matches the meter's records":
        _wrap(ig.Meter, "check", lambda finding, *args: dataclasses.replace(finding, match=False)),
    "integrity: the lowered record is located at index 20, its period":
        _wrap(ig, "locate", lambda finding, *args: dataclasses.replace(finding, index=19)),
    "integrity: the arbiter names the utility":
        _wrap(ig, "arbitrate", lambda verdict, *args: dataclasses.replace(verdict, party="meter")),
}


def _name(template: str) -> str:
    return template.format(t=5, n=METERS)


def test_every_check_has_a_failure_test():
    """The table above covers every check the demo makes (and the aggregation part's own error check)."""
    result = demo.run("test", meters=METERS)
    made = {c.name for c in result.checks}
    covered = {_name(k) for k in FAILURES}
    assert made - covered == set()


@pytest.mark.parametrize("check", list(FAILURES), ids=range(len(FAILURES)))
def test_demo_fails_naming_the_check(check, monkeypatch):
    FAILURES[check](monkeypatch)
    status, text = _run("test")
    name = _name(check)
    assert status == 1
    assert name in _failed(text), text
    assert f"  FAILED {name}: " in text
    total = text.count("\n  ok     ") + text.count("\n  FAILED ")
    assert text.splitlines()[-1] == f"{total - len(_failed(text))} of {total} checks passed"
