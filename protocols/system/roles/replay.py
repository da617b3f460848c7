"""``usapp vectors replay``: feed a role process the per-role steps of our vectors (docs/interop.md).

The exchange uses the line format of specs/roles.md section 2.  For each
per-role vector of the chosen role the harness (``env``) sends one message

    {"from": "env", "to": ROLE, "type": "vector.step", "body": CBOR(inputs)}

where ``inputs`` is the vector's JSON object without its computed and verdict
fields (``Family.hidden``), as CBOR: JSON objects are maps with text keys,
arrays are arrays, hex strings stay text, integers, ``true``, ``false`` and
``null`` as themselves (deterministic encoding, specs/conventions.md 2).  The
process answers a valid step with exactly one message

    {"from": ROLE, "to": "env", "type": "vector.outputs", "body": CBOR(outputs)}

then ``ok``; ``outputs`` is the map of the vector's recorded output fields
(``Family.outputs``), encoded the same way.  A step the role refuses is answered
with the status line ``refused`` naming the spec's error (section 2.3) and no
other message.  The comparer checks the body byte for byte against the CBOR of
the stored fields and, on a difference, names the vector, its step and the
first differing field (descending into hex strings that hold CBOR messages).

Families done: ``aggregation`` (the ``step`` and ``refusal`` vectors of
specs/aggregation.md 12.1-12.2; roles meter, committee, aggregator, utility).

    python -m protocols.system.roles.replay serve FAMILY --id ROLE

is our own implementation of the process side: it recomputes each step with
the real role classes, the same code ``usapp vectors verify`` runs.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, TextIO

from protocols.errors import DecodeError, ParameterError, UsappError
from protocols.primitives import cbor
from protocols.system.roles import harness, wire
from protocols.system.roles.process import _read_line

STEP, OUTPUTS = "vector.step", "vector.outputs"
"""The two message types of the replay exchange."""
MAX_DEPTH = 32
"""Nesting limit of a step's or an answer's CBOR (the vectors' JSON nests at most 16 deep)."""
VERDICT = ("result", "flags", "error", "comment")
"""Fields never sent to the process: they say what the answer must be."""


@dataclass(frozen=True)
class Family:
    """One vector family whose per-role vectors can be replayed."""

    name: str
    roles: tuple[str, ...]
    outputs: tuple[str, ...]
    """The recorded fields a valid step's ``vector.outputs`` carries, in this order."""
    hidden: tuple[str, ...]
    """Computed fields that are neither sent nor compared (``vectors verify`` checks them)."""
    selects: Callable[[Mapping[str, Any]], bool]
    compute: Callable[[Mapping[str, Any]], dict[str, Any]]
    """Our side: a step's inputs -> its outputs; a refusal raises the protocol's typed error."""

    def inputs(self, vector: Mapping[str, Any]) -> dict[str, Any]:
        drop = set(self.outputs) | set(self.hidden) | set(VERDICT)
        return {key: value for key, value in vector.items() if key not in drop}

    def expected(self, vector: Mapping[str, Any]) -> dict[str, Any]:
        return {key: vector[key] for key in self.outputs if key in vector}


def _aggregation_step(step: Mapping[str, Any]) -> dict[str, Any]:
    """specs/aggregation.md 12.2: put the role in ``state_before``, run the step, read the state back."""
    from protocols.system.vectorsets import aggregation as vectors_aggregation
    from protocols.system.vectorsets._fields import hex_list_field

    run, state = vectors_aggregation._role_step(step)
    sent, release = vectors_aggregation._guarded(run)(hex_list_field(step, "input"))
    return {"output": sent, "release": release, "state_after": state()}


AGGREGATION = Family(
    "aggregation", ("meter", "committee", "aggregator", "utility"), ("output", "release", "state_after"),
    ("intermediates",), lambda v: v.get("operation") in ("step", "refusal"), _aggregation_step)

FAMILIES = {family.name: family for family in (AGGREGATION,)}
NOT_DONE = {
    "integrity": "its steps are a run's transcript; state_before is a summary (size, root), not a state a "
                 "role can be put in",
    "escrow": "per-role steps sit inside whole runs (steps[].roles[]) and need the run's earlier state",
    "groupkeys": "per-role steps sit inside whole runs (steps[].roles[]) and need the run's earlier state",
    "issuance": "its enroll vectors are whole enrollment runs (device and PKG together), not per-role steps",
}
"""Families with per-role material that ``vectors replay`` does not feed yet, and why."""


def family(name: str) -> Family:
    if name not in FAMILIES:
        why = NOT_DONE.get(name)
        raise ParameterError(f"vectors replay has no family {name!r}" + (f" ({why})" if why else "")
                             + f"; it replays: {', '.join(FAMILIES)}")
    return FAMILIES[name]


# --------------------------------------------------------------------------
# Our side: the process


def decode_step(body: bytes) -> dict[str, Any]:
    """A ``vector.step`` body: a CBOR map with text keys (``DecodeError`` otherwise)."""
    step = cbor.decode(body, max_size=wire.MAX_BODY_BYTES, max_depth=MAX_DEPTH)
    if not isinstance(step, dict) or not all(isinstance(key, str) for key in step):
        raise DecodeError("a vector.step body is a CBOR map with text keys")
    return step


def error_name(exc: UsappError) -> str:
    from protocols.system.vectorsets._fields import spec_error_name

    return spec_error_name(exc) or type(exc).__name__


def answer(fam: Family, ident: str, envelope: wire.Envelope) -> list[wire.Envelope]:
    """The outputs of one ``vector.step`` (raises the step's typed error to refuse it)."""
    if envelope.to != ident:
        raise DecodeError(f"message addressed to {envelope.to}, this process is {ident}")
    if envelope.type != STEP:
        raise DecodeError(f"this process answers {STEP} only, got {envelope.type}")
    step = decode_step(envelope.body)
    if step.get("role") not in fam.roles or not fam.selects(step):
        raise ParameterError(f"not a per-role {fam.name} step (role {str(step.get('role'))[:40]!r})")
    outputs = fam.compute(step)
    return [wire.Envelope(ident, envelope.sender, OUTPUTS, cbor.encode(outputs, max_depth=MAX_DEPTH))]


def serve(fam: Family, ident: str, stdin: BinaryIO, stdout: BinaryIO, err: TextIO) -> int:
    """Answer every ``vector.step`` line until end of input (specs/roles.md 2.2-2.3)."""
    wire.check_id(ident, "--id")
    while True:
        line = _read_line(stdin)
        if line is None:
            return 0
        if not line.strip():
            continue
        sender = wire.HARNESS
        try:
            if line == b"\x00oversized":
                raise DecodeError(f"line exceeds {wire.MAX_LINE_BYTES} bytes")
            envelope = wire.parse_line(line)
            sender = envelope.sender
            outputs = answer(fam, ident, envelope)
        except UsappError as exc:
            text = " ".join(str(exc).split())
            print(f"replay {ident}: refused: {error_name(exc)}: {text}", file=err, flush=True)
            stdout.write(wire.Envelope(ident, sender, wire.REFUSED, wire.refusal_body(error_name(exc), text)).line())
            stdout.flush()
            continue
        for output in outputs:
            stdout.write(output.line())
        stdout.write(wire.Envelope(ident, sender, wire.OK).line())
        stdout.flush()


# --------------------------------------------------------------------------
# The comparer


@dataclass(frozen=True)
class Outcome:
    vector: str
    step: str
    passed: bool
    detail: str = ""

    def __str__(self) -> str:
        return f"{'OK  ' if self.passed else 'FAIL'} {self.vector} ({self.step})" + (
            "" if self.passed else f": {self.detail}")


def _hex(text: str) -> bytes | None:
    if len(text) % 2 or text != text.lower():
        return None
    try:
        return bytes.fromhex(text)
    except ValueError:
        return None


def json_difference(expected: Any, got: Any, path: str = "") -> str | None:
    """The first field where two JSON-shaped values differ; inside hex strings, the CBOR path or byte offset."""
    where = path or "the outputs"
    if type(expected) is not type(got):
        return f"{where}: {type(expected).__name__} expected, got {type(got).__name__}"
    if isinstance(expected, dict):
        for key in sorted(set(expected) | set(got), key=str):
            if key not in expected or key not in got:
                return f"{path}.{key}: {'missing' if key in expected else 'not expected'}"
            found = json_difference(expected[key], got[key], f"{path}.{key}" if path else str(key))
            if found:
                return found
        return None
    if isinstance(expected, list):
        for index, (a, b) in enumerate(zip(expected, got)):
            found = json_difference(a, b, f"{path}[{index}]")
            if found:
                return found
        return None if len(expected) == len(got) else f"{where}: {len(expected)} items expected, got {len(got)}"
    if expected == got:
        return None
    if isinstance(expected, str) and isinstance(got, str):
        a, b = _hex(expected), _hex(got)
        if a is not None and b is not None:
            inner = harness.field_difference(a, b)
            if inner is not None and inner.startswith("the body (not CBOR)"):
                return f"{where}: hex bytes differ from byte {inner.rsplit(' ', 1)[1]}"
            return f"{where}: CBOR field {inner or 'the encoding'}"
        at = next((i for i, (x, y) in enumerate(zip(expected, got)) if x != y), min(len(expected), len(got)))
        return f"{where}: text differs from character {at}"
    return f"{where}: {expected!r:.40} expected, got {got!r:.40}"


def step_label(vector: Mapping[str, Any]) -> str:
    parts = [str(vector.get(key)) for key in ("role", "step", "party") if vector.get(key) is not None]
    return " ".join(parts) or str(vector.get("operation"))


def check_step(fam: Family, endpoint: harness.Endpoint, role: str, vector: Mapping[str, Any]) -> Outcome:
    """Send one vector's step, compare the answer with what the vector records."""
    name, label = str(vector.get("name")), step_label(vector)
    message = wire.Envelope(wire.HARNESS, role, STEP, cbor.encode(fam.inputs(vector), max_depth=MAX_DEPTH))
    outputs, status = endpoint.exchange(message)
    if vector.get("result") == "invalid":
        wanted = str(vector.get("error"))
        if status.type != wire.REFUSED:
            return Outcome(name, label, False, f"accepted, expected a refusal with {wanted}")
        error, text = wire.read_refusal(status.body)
        if error != wanted or outputs:
            return Outcome(name, label, False, f"refused with {error} ({text[:120]}), expected {wanted}"
                           if error != wanted else f"refused but also sent {len(outputs)} message(s)")
        return Outcome(name, label, True)
    if status.type == wire.REFUSED:
        error, text = wire.read_refusal(status.body)
        return Outcome(name, label, False, f"refused with {error}: {text[:200]}")
    if [(o.type, o.to) for o in outputs] != [(OUTPUTS, wire.HARNESS)]:
        return Outcome(name, label, False, f"expected one {OUTPUTS} to env, got "
                       f"{[(o.type, o.to) for o in outputs][:5]}")
    expected = cbor.encode(fam.expected(vector), max_depth=MAX_DEPTH)
    got = outputs[0].body
    if got == expected:
        return Outcome(name, label, True)
    try:
        decoded = cbor.decode(got, max_size=wire.MAX_BODY_BYTES, max_depth=MAX_DEPTH)
    except UsappError as exc:
        at = next((i for i, (x, y) in enumerate(zip(expected, got)) if x != y), min(len(expected), len(got)))
        return Outcome(name, label, False, f"the outputs are not CBOR ({exc}); they differ from byte {at}")
    where = json_difference(fam.expected(vector), decoded)
    return Outcome(name, label, False, f"field {where or 'the encoding (not deterministic CBOR)'}")


def replay(fam: Family, role: str, vectors: Iterable[Mapping[str, Any]], endpoint: harness.Endpoint,
           say: Callable[[str], None] = lambda line: None) -> list[Outcome]:
    """Every per-role vector of ``role`` in order; stops early only if the process dies."""
    if role not in fam.roles:
        raise ParameterError(f"{fam.name} has no role {role!r} in its vectors; its roles: {', '.join(fam.roles)}")
    outcomes = []
    for vector in vectors:
        if vector.get("role") != role or not fam.selects(vector):
            continue
        try:
            outcome = check_step(fam, endpoint, role, vector)
        except harness.PartyDied as exc:
            outcome = Outcome(str(vector.get("name")), step_label(vector), False, f"the process died: {exc}")
            outcomes.append(outcome)
            say(str(outcome))
            break
        outcomes.append(outcome)
        say(str(outcome))
    return outcomes


def replay_files(paths: Sequence[str | Path], role: str, command: str,
                 say: Callable[[str], None] = lambda line: None, log: Any = None) -> list[Outcome]:
    """``usapp vectors replay``: each file's family, the role's vectors, one process per file."""
    from protocols.system import vectors as vector_files

    outcomes: list[Outcome] = []
    for path in paths:
        envelope = vector_files.load_envelope(path)
        fam = family(str(envelope.get("protocol")))
        argv = harness.expand(command, fam.name, role, "", role, None)
        endpoint = harness.ProcessEndpoint(role, argv, log=log)
        try:
            found = replay(fam, role, envelope["vectors"], endpoint, say)
        finally:
            endpoint.close()
        if not found:
            raise ParameterError(f"{path}: no per-role vectors of role {role!r}")
        outcomes += found
    return outcomes


def default_files() -> list[Path]:
    from protocols.system import vectors as vector_files

    return [vector_files.default_vectors_dir() / f"{name}.json" for name in FAMILIES]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m protocols.system.roles.replay",
                                     description="Our side of 'usapp vectors replay': answer vector.step lines.")
    commands = parser.add_subparsers(dest="command", required=True)
    serve_parser = commands.add_parser("serve", help="answer vector.step lines on stdin")
    serve_parser.add_argument("family", help=", ".join(FAMILIES))
    serve_parser.add_argument("--id", required=True, help="this process's id (the role name)")
    args = parser.parse_args(argv)
    try:
        fam = family(args.family)
        return serve(fam, args.id, sys.stdin.buffer, sys.stdout.buffer, sys.stderr)
    except UsappError as exc:
        print(f"replay: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
