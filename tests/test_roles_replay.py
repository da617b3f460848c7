"""``usapp vectors replay`` (protocols/system/roles/replay.py, docs/interop.md).

The adversary is a vendor's role process: it controls every line it writes
(its outputs and its status lines) and sees every ``vector.step`` we send.
Whatever it changes in a valid step's answer, by one byte or more, the
comparer reports that vector as failed and names the vector, its step and the
field; a refusal with another error, or an acceptance of an invalid step, is
reported too.
"""

from __future__ import annotations

import io
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from protocols.errors import DecodeError, ParameterError, UsappError
from protocols.primitives import cbor
from protocols.system import cli
from protocols.system.roles import replay, wire
from protocols.system.roles.wire import Envelope

VECTORS = Path(__file__).resolve().parent.parent / "vectors" / "aggregation.json"
FAMILY = replay.AGGREGATION


def load() -> list[dict[str, Any]]:
    vectors: list[dict[str, Any]] = json.loads(VECTORS.read_text())["vectors"]
    return vectors


class Ours:
    """Our process side in this process, optionally with a vendor's change to every answer."""

    def __init__(self, ident: str, change: Callable[[list[Envelope], Envelope], tuple[list[Envelope], Envelope]]
                 | None = None) -> None:
        self.ident, self.change = ident, change

    def exchange(self, message: Envelope) -> tuple[list[Envelope], Envelope]:
        try:
            outputs = replay.answer(FAMILY, self.ident, message)
            status = Envelope(self.ident, message.sender, wire.OK)
        except UsappError as exc:
            outputs = []
            status = Envelope(self.ident, message.sender, wire.REFUSED, wire.refusal_body(replay.error_name(exc), "x"))
        return self.change(outputs, status) if self.change else (outputs, status)

    def close(self) -> int:
        return 0


@pytest.mark.parametrize("role", FAMILY.roles)
def test_our_process_side_reproduces_every_vector(role: str) -> None:
    outcomes = replay.replay(FAMILY, role, load(), Ours(role))
    assert outcomes and all(o.passed for o in outcomes), [str(o) for o in outcomes if not o.passed]
    assert {o.vector for o in outcomes} == {v["name"] for v in load()
                                            if v.get("role") == role and v["operation"] in ("step", "refusal")}


def test_inputs_hide_the_answer() -> None:
    for vector in load():
        if FAMILY.selects(vector):
            sent = FAMILY.inputs(vector)
            assert not set(sent) & {"output", "release", "state_after", "intermediates", "result", "error",
                                    "flags"}
            assert "state_before" in sent and "input" in sent


def valid_steps() -> list[dict[str, Any]]:
    return [v for v in load() if v["operation"] == "step"]


@settings(max_examples=25, deadline=None)
@given(st.data())
def test_one_flipped_byte_in_an_answer_is_caught_and_named(data: st.DataObject) -> None:
    """A vendor that flips any one byte of one valid step's answer is named: that vector, its step, a field."""
    steps = valid_steps()
    target = data.draw(st.sampled_from(steps))
    position = data.draw(st.integers(min_value=0))

    def flip(outputs: list[Envelope], status: Envelope) -> tuple[list[Envelope], Envelope]:
        if not outputs:
            return outputs, status
        expected = cbor.encode(FAMILY.expected(target), max_depth=replay.MAX_DEPTH)
        if outputs[0].body != expected:
            return outputs, status
        body = bytearray(outputs[0].body)
        body[position % len(body)] ^= 0x01
        return [Envelope(outputs[0].sender, outputs[0].to, outputs[0].type, bytes(body))], status

    outcomes = replay.replay(FAMILY, target["role"], load(), Ours(target["role"], flip))
    failed = [o for o in outcomes if not o.passed]
    assert [o.vector for o in failed] == [target["name"]]
    assert failed[0].step == f"{target['role']} {target['step']} {target['party']}"
    assert failed[0].detail.startswith(("field ", "the outputs are not CBOR"))


def test_report_flip_names_the_cbor_field() -> None:
    target = next(v for v in valid_steps() if v["name"] == "complete-graph/meter-report")
    message_hex = target["output"]["sm-000"]

    def flip(outputs: list[Envelope], status: Envelope) -> tuple[list[Envelope], Envelope]:
        body = outputs[0].body if outputs else b""
        at = body.find(message_hex.encode())
        if at < 0:
            return outputs, status
        changed = bytearray(body)
        changed[at + 300] ^= 0x01            # a hex digit inside the report's ciphertext: '0'<->'1', 'a'<->'`' ...
        return [Envelope(outputs[0].sender, outputs[0].to, outputs[0].type, bytes(changed))], status

    outcomes = replay.replay(FAMILY, "meter", load(), Ours("meter", flip))
    failed = [o for o in outcomes if not o.passed]
    assert len(failed) == 1 and failed[0].vector == "complete-graph/meter-report"
    assert failed[0].detail.startswith("field output.sm-000: ")


def test_wrong_refusal_and_wrong_acceptance_are_caught() -> None:
    def say_ok(outputs: list[Envelope], status: Envelope) -> tuple[list[Envelope], Envelope]:
        return outputs, Envelope(status.sender, status.to, wire.OK)

    def other_error(outputs: list[Envelope], status: Envelope) -> tuple[list[Envelope], Envelope]:
        if status.type == wire.REFUSED:
            return [], Envelope(status.sender, status.to, wire.REFUSED, wire.refusal_body("StateError", "no"))
        return outputs, status

    accepted = [o for o in replay.replay(FAMILY, "aggregator", load(), Ours("aggregator", say_ok)) if not o.passed]
    assert accepted and all("accepted, expected a refusal with" in o.detail for o in accepted)
    wrong = [o for o in replay.replay(FAMILY, "aggregator", load(), Ours("aggregator", other_error))
             if not o.passed]
    assert wrong and all(o.detail.startswith("refused with StateError") for o in wrong)
    assert len(accepted) == len(wrong) == 8


def serve_one(line: bytes, ident: str = "meter") -> list[Envelope]:
    out = io.BytesIO()
    assert replay.serve(FAMILY, ident, io.BytesIO(line), out, io.StringIO()) == 0
    return [wire.parse_line(x) for x in out.getvalue().splitlines()]


@pytest.mark.parametrize("message, error", [
    (Envelope("env", "meter", "vector.other", cbor.encode({})), "DecodeError"),
    (Envelope("env", "utility", replay.STEP, cbor.encode({})), "DecodeError"),
    (Envelope("env", "meter", replay.STEP, cbor.encode([1, 2])), "DecodeError"),
    (Envelope("env", "meter", replay.STEP, cbor.encode({1: 2})), "DecodeError"),
    (Envelope("env", "meter", replay.STEP, b"\xff"), "DecodeError"),
    (Envelope("env", "meter", replay.STEP, cbor.encode({"role": "pkg", "operation": "step"})), "ParameterError"),
])
def test_serve_refuses_what_is_not_a_step(message: Envelope, error: str) -> None:
    got = serve_one(message.line() + b"garbage\n")
    assert [e.type for e in got] == [wire.REFUSED, wire.REFUSED]
    assert wire.read_refusal(got[0].body)[0] == error


def test_json_difference() -> None:
    assert replay.json_difference({"a": [1, "ab"]}, {"a": [1, "ab"]}) is None
    assert replay.json_difference({"a": [1, "ab"]}, {"a": [1, "ac"]}) == "a[1]: hex bytes differ from byte 0"
    assert replay.json_difference({"a": "xyz"}, {"a": "xYz"}) == "a: text differs from character 1"
    assert replay.json_difference({"a": 1}, {"b": 1}) == ".a: missing"
    assert replay.json_difference([1], [1, 2]) == "the outputs: 1 items expected, got 2"
    msg_a, msg_b = cbor.encode({1: b"\x00", 2: 5}).hex(), cbor.encode({1: b"\x00", 2: 6}).hex()
    assert replay.json_difference({"o": msg_a}, {"o": msg_b}) == "o: CBOR field [2]: 5 vs 6"


def test_unknown_family_says_why() -> None:
    with pytest.raises(ParameterError, match="summary"):
        replay.family("integrity")
    with pytest.raises(ParameterError, match="no role"):
        replay.replay(FAMILY, "pkg", load(), Ours("pkg"))
    with pytest.raises(DecodeError):
        replay.decode_step(cbor.encode("text"))


def test_cli_replays_a_process_and_names_a_tampered_one(capsys: pytest.CaptureFixture[str]) -> None:
    ours = f"{sys.executable} -m protocols.system.roles.replay serve aggregation --id {{id}}"
    assert cli.main(["vectors", "replay", "--role", "committee", "--cmd", ours, str(VECTORS)]) == 0
    assert "7 step(s) replayed, 0 failed" in capsys.readouterr().out
    tampered = (f"{sys.executable} -m protocols.system.roles.tamper --type vector.outputs --byte 40 -- "
                + ours)
    assert cli.main(["vectors", "replay", "--role", "committee", "--cmd", tampered, str(VECTORS)]) == 1
    captured = capsys.readouterr()
    assert "FAIL complete-graph/committee-sign_commit (committee sign_commit sm-004): field " in captured.out
    assert "7 step(s) replayed, 1 failed" in captured.out
    assert "usapp: error: vectors replay: 1 step(s) differ; first: complete-graph/committee-sign_commit" \
        in captured.err


def test_a_process_that_dies_is_reported() -> None:
    """A vendor process that reads one step and exits: that step fails as 'the process died' and the replay stops."""
    command = f"{sys.executable} -c 'import sys; sys.stdin.readline()'"
    outcomes = replay.replay_files([VECTORS], "aggregator", command)
    assert len(outcomes) == 1 and not outcomes[0].passed
    assert outcomes[0].vector == "complete-graph/aggregator-aggregate"
    assert outcomes[0].detail.startswith("the process died: aggregator ended while handling vector.step from env")


def test_cli_refuses_a_family_it_does_not_replay(capsys: pytest.CaptureFixture[str]) -> None:
    integrity = str(VECTORS.parent / "integrity.json")
    assert cli.main(["vectors", "replay", "--role", "meter", "--cmd", "true", integrity]) == 2
    assert "vectors replay has no family 'integrity'" in capsys.readouterr().err
