"""The interop harness: a whole protocol run between role processes (specs/roles.md section 5).

:class:`Network` holds one party per id, each either a child process speaking
the line format (ours or a vendor's) or, for fast tests, an in-process
:class:`~protocols.system.roles.process.Party` over a real state file.  It
routes messages by their ``to`` field, records every line in order, and on a
refusal raises :class:`Refused` naming the step, the message and the refusing
party's error.  :func:`first_divergence` compares two transcripts and names
the first message and CBOR field where they differ.
"""

from __future__ import annotations

import os
import queue
import shlex
import subprocess
import sys
import threading
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import IO, Any, Protocol

from protocols.errors import DecodeError, StateError, UsappError
from protocols.primitives import cbor
from protocols.system.roles import wire
from protocols.system.roles.base import CrashPlan, Deployment
from protocols.system.roles.process import Party, protocol_module, role_spec, write_deployment
from protocols.system.roles.wire import Envelope

STEP_TIMEOUT = 300.0
"""Seconds a party may take to answer one message before the harness gives up on it."""
MAX_MESSAGES = 1_000_000
"""A run that routes more messages than this is stopped (a loop between parties)."""


class Refused(UsappError):
    """A party refused a message the run needed (or a test expected to be refused)."""

    def __init__(self, step: int, message: Envelope, error: str, text: str) -> None:
        super().__init__(f"step {step}: {message.to} refused {message.type} from {message.sender} "
                         f"({len(message.body)} bytes): {error}: {text}")
        self.step, self.message, self.error, self.text = step, message, error, text


class PartyDied(StateError):
    """A party's process ended (or was killed) while the harness waited for its answer."""


class Endpoint(Protocol):
    """One party as the network sees it."""

    def exchange(self, message: Envelope) -> tuple[list[Envelope], Envelope]: ...
    def close(self) -> int: ...


class LocalEndpoint:
    """A party run in this process (fast tests): the same loop as ``usapp role`` without the pipes."""

    def __init__(self, protocol: str, role: str, path: str, ident: str, seed: str | None) -> None:
        self.party = Party.open(role_spec(protocol, role), path, ident, seed)

    def exchange(self, message: Envelope) -> tuple[list[Envelope], Envelope]:
        try:
            outputs = self.party.handle(message)
        except UsappError as exc:
            text = " ".join(str(exc).split())
            return [], Envelope(self.party.ident, message.sender, wire.REFUSED,
                                wire.refusal_body(type(exc).__name__, text))
        return outputs, Envelope(self.party.ident, message.sender, wire.OK)

    def close(self) -> int:
        self.party.close()
        return 0


class ProcessEndpoint:
    """A party as a child process; a reader thread hands its stdout lines over with a timeout."""

    def __init__(self, ident: str, command: Sequence[str], log: IO[bytes] | None = None,
                 env: Mapping[str, str] | None = None, timeout: float = STEP_TIMEOUT, *,
                 own_log: bool = False) -> None:
        """``own_log``: :meth:`close` closes ``log`` too (otherwise the caller does)."""
        self.ident, self.command, self.timeout = ident, list(command), timeout
        self.log = log if own_log else None
        self.proc = subprocess.Popen(self.command, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=log if log is not None else subprocess.DEVNULL,
                                     env={**os.environ, **(env or {})})
        self.lines: queue.Queue[bytes] = queue.Queue()
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in iter(lambda: self.proc.stdout.readline(wire.MAX_LINE_BYTES + 1), b""):  # type: ignore[union-attr]
            self.lines.put(line)
        self.lines.put(b"")

    def exchange(self, message: Envelope) -> tuple[list[Envelope], Envelope]:
        if self.proc.stdin is None:
            raise PartyDied(f"{self.ident}: no input pipe")
        try:
            self.proc.stdin.write(message.line())
            self.proc.stdin.flush()
        except (BrokenPipeError, OSError):
            raise PartyDied(f"{self.ident} ended before it read {message.type} from {message.sender} "
                            f"(exit status {self.proc.wait()})") from None
        outputs: list[Envelope] = []
        while True:
            try:
                line = self.lines.get(timeout=self.timeout)
            except queue.Empty:
                raise PartyDied(f"{self.ident} did not answer {message.type} within {self.timeout:.0f} s") from None
            if not line:
                raise PartyDied(f"{self.ident} ended while handling {message.type} from {message.sender} "
                                f"(exit status {self.proc.wait()})")
            answer = wire.parse_line(line)
            if answer.sender != self.ident:
                raise DecodeError(f"{self.ident} wrote a line from {answer.sender}")
            if answer.type in (wire.OK, wire.REFUSED):
                return outputs, answer
            outputs.append(answer)

    def close(self) -> int:
        """End the party's input, wait for it (kill it after the step timeout), close its pipes and log."""
        if self.proc.stdin is not None and not self.proc.stdin.closed:
            try:
                self.proc.stdin.close()
            except OSError:
                pass
        try:
            return self.proc.wait(timeout=self.timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.wait()
        finally:
            self.reader.join(timeout=1.0)  # it ends at the pipe's end of file once the child has exited
            if self.proc.stdout is not None and not self.reader.is_alive():
                self.proc.stdout.close()
            if self.log is not None and not self.log.closed:
                self.log.close()


Tamper = Callable[[int, Envelope], Envelope]
"""Called with the step number and each message before it is delivered; returns what is delivered."""


@dataclass
class Network:
    """Parties by id, the routing, the transcript (every delivered message, then its outputs)."""

    parties: dict[str, Endpoint]
    tamper: Tamper | None = None
    transcript: list[Envelope] = field(default_factory=list)
    steps: int = 0
    factory: Callable[[str], Endpoint] | None = None

    def send(self, message: Envelope) -> list[Envelope]:
        """Deliver one message; its recipient's outputs, or :class:`Refused`."""
        self.steps += 1
        if self.steps > MAX_MESSAGES:
            raise StateError(f"more than {MAX_MESSAGES} messages in one run")
        if self.tamper is not None:
            message = self.tamper(self.steps, message)
        if message.to not in self.parties:
            raise StateError(f"step {self.steps}: {message.sender} sent {message.type} to unknown party "
                             f"{message.to}")
        self.transcript.append(message)
        outputs, status = self.parties[message.to].exchange(message)
        if status.type == wire.REFUSED:
            error, text = wire.read_refusal(status.body)
            raise Refused(self.steps, message, error, text)
        return outputs

    def deliver(self, messages: Iterable[Envelope]) -> list[Envelope]:
        """Deliver ``messages`` and everything they cause, in order (FIFO), until quiet.

        Returns the messages addressed to the environment (``env``), in order.
        """
        pending = deque(messages)
        to_env: list[Envelope] = []
        while pending:
            message = pending.popleft()
            if message.to == wire.HARNESS:
                self.transcript.append(message)
                to_env.append(message)
                continue
            pending.extend(self.send(message))
        return to_env

    def restart(self, ident: str) -> None:
        """Close party ``ident`` (or notice it died) and start it again from its state file."""
        if self.factory is None:
            raise StateError("this network cannot restart parties")
        self.parties[ident].close()
        self.parties[ident] = self.factory(ident)

    def close(self) -> dict[str, int]:
        return {ident: party.close() for ident, party in self.parties.items()}


@dataclass(frozen=True)
class Check:
    name: str
    passed: bool
    detail: str


@dataclass
class Checks:
    """The claims of a run, each printed as it is made (like ``usapp demo``)."""

    say: Callable[[str], None] = lambda line: None
    results: list[Check] = field(default_factory=list)

    def check(self, name: str, passed: bool, detail: str = "") -> bool:
        self.results.append(Check(name, passed, detail))
        self.say(f"  {'ok    ' if passed else 'FAILED'} {name}" + ("" if passed else f": {detail}"))
        return passed

    def refused(self, name: str, action: Callable[[], object], expected: str) -> bool:
        """``action`` must raise :class:`Refused` with the error named ``expected``."""
        try:
            action()
        except Refused as exc:
            return self.check(name, exc.error == expected, f"refused with {exc.error}, expected {expected}")
        return self.check(name, False, f"accepted, expected a refusal with {expected}")

    @property
    def ok(self) -> bool:
        return bool(self.results) and all(c.passed for c in self.results)


def role_command(protocol: str, role: str, state: str, ident: str, seed: str | None) -> list[str]:
    """Our own party: ``python -m protocols role PROTOCOL ROLE --state PATH --id ID [--seed S]``."""
    command = [sys.executable, "-m", "protocols", "role", protocol, role, "--state", state, "--id", ident]
    return command + (["--seed", seed] if seed is not None else [])


def expand(template: str, protocol: str, role: str, state: str, ident: str, seed: str | None) -> list[str]:
    """A vendor command line with ``{protocol} {role} {state} {id} {seed}`` filled in (spec 5.2)."""
    words = shlex.split(template)
    if not words:
        raise DecodeError("an empty command")
    values = {"protocol": protocol, "role": role, "state": state, "id": ident, "seed": seed or ""}
    out = []
    for word in words:
        for key, value in values.items():
            word = word.replace("{" + key + "}", value)
        out.append(word)
    return out


def open_network(deployment: Deployment, directory: str, *, seed: str | None = "interop",
                 commands: Mapping[str, str] | None = None, in_process: bool = False,
                 tamper: Tamper | None = None, env: Mapping[str, str] | None = None,
                 logs: bool = True) -> Network:
    """Write the deployment to ``directory`` and start every party.

    ``commands`` maps a party id or a role name to a vendor command template;
    other parties run our own ``usapp role``.  ``in_process`` runs our parties
    inside this process (tests).
    """
    write_deployment(deployment, directory)
    chosen = dict(commands or {})

    def factory(ident: str) -> Endpoint:
        role = deployment.parties[ident][0]
        state = os.path.join(directory, f"{ident}.sqlite")
        template = chosen.get(ident, chosen.get(role))
        if template is None and in_process:
            return LocalEndpoint(deployment.protocol, role, state, ident, seed)
        command = (expand(template, deployment.protocol, role, state, ident, seed) if template is not None
                   else role_command(deployment.protocol, role, state, ident, seed))
        log = open(os.path.join(directory, f"{ident}.log"), "ab") if logs else None
        return ProcessEndpoint(ident, command, log, env, own_log=True)

    network = Network({}, tamper, factory=factory)
    for ident in sorted(deployment.parties):
        network.parties[ident] = factory(ident)
    return network


def run_scenario(protocol: str, directory: str, *, seed: str = "interop", init_seed: str = "interop",
                 commands: Mapping[str, str] | None = None, in_process: bool = False,
                 tamper: Tamper | None = None, say: Callable[[str], None] = lambda line: None,
                 options: Mapping[str, Any] | None = None) -> tuple[Checks, Network, dict]:
    """``usapp interop PROTOCOL``: deploy, start every party, run the protocol's scenario, check it."""
    module = protocol_module(protocol)
    deployment: Deployment = module.deploy(init_seed, **dict(options or {}))
    checks = Checks(say)
    network = open_network(deployment, directory, seed=seed, commands=commands, in_process=in_process,
                           tamper=tamper)
    figures: dict = {}
    try:
        figures = module.scenario(network, deployment, checks)
    except Refused as exc:
        checks.check(f"{protocol}: every message the run needs is accepted", False, str(exc))
    except UsappError as exc:
        checks.check(f"{protocol}: the run completes", False, f"{type(exc).__name__}: {exc}")
    finally:
        network.close()
    return checks, network, figures


# --------------------------------------------------------------------------
# Naming a divergence


def _path_diff(a: object, b: object, path: str) -> str | None:
    if type(a) is not type(b):
        return f"{path or 'the body'}: {type(a).__name__} vs {type(b).__name__}"
    if isinstance(a, dict) and isinstance(b, dict):
        for key in sorted(set(a) | set(b), key=repr):
            if key not in a or key not in b:
                return f"{path}[{key!r}]: present in only one"
            found = _path_diff(a[key], b[key], f"{path}[{key!r}]")
            if found:
                return found
        return None
    if isinstance(a, list) and isinstance(b, list):
        for index, (x, y) in enumerate(zip(a, b)):
            found = _path_diff(x, y, f"{path}[{index}]")
            if found:
                return found
        return None if len(a) == len(b) else f"{path}: {len(a)} vs {len(b)} items"
    if isinstance(a, bytes) and isinstance(b, bytes) and a != b:
        at = next((i for i, (x, y) in enumerate(zip(a, b)) if x != y), min(len(a), len(b)))
        return f"{path or 'the body'}: bytes differ from offset {at} ({len(a)} vs {len(b)} bytes)"
    return None if a == b else f"{path or 'the body'}: {a!r:.40} vs {b!r:.40}"


def field_difference(expected: bytes, got: bytes) -> str | None:
    """The first CBOR field where two bodies differ (a byte offset if either is not CBOR)."""
    if expected == got:
        return None
    try:
        a, b = cbor.decode(expected), cbor.decode(got)
    except UsappError:
        at = next((i for i, (x, y) in enumerate(zip(expected, got)) if x != y), min(len(expected), len(got)))
        return f"the body (not CBOR) differs from byte {at}"
    return _path_diff(a, b, "") or "the encoding"


def first_divergence(expected: Sequence[Envelope], got: Sequence[Envelope]) -> str | None:
    """Spec 5.3: the first message where two transcripts differ, and its field; None if equal."""
    for index, (a, b) in enumerate(zip(expected, got), start=1):
        if (a.sender, a.to, a.type) != (b.sender, b.to, b.type):
            return (f"message {index}: expected {a.type} from {a.sender} to {a.to}, got {b.type} from "
                    f"{b.sender} to {b.to}")
        where = field_difference(a.body, b.body)
        if where is not None:
            return f"message {index} ({a.type} from {a.sender} to {a.to}): field {where}"
    if len(expected) != len(got):
        return f"the transcripts have {len(expected)} and {len(got)} messages"
    return None
