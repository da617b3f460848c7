"""One party as a process: read lines, handle, commit, then answer (specs/roles.md section 3.2)."""

from __future__ import annotations

import importlib
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from types import ModuleType
from typing import BinaryIO, TextIO

from protocols.errors import DecodeError, ParameterError, StateFileError, UsappError
from protocols.primitives import cbor
from protocols.primitives.drbg import HmacDrbg
from protocols.primitives.rand import RandomSource, SystemRandom
from protocols.system.roles import wire
from protocols.system.roles.base import (
    PROTOCOLS, Context, CrashPlan, Deployment, RoleSpec, load_drbg, save_drbg, seeded_drbg,
)
from protocols.system.roles.store import Identity, Store, input_digest

MAX_OUTPUTS = 100_000
"""At most this many messages answer one input (spec 3.2)."""


def protocol_module(protocol: str) -> ModuleType:
    """The role module of ``protocol`` (``ParameterError`` for an unknown name)."""
    if protocol not in PROTOCOLS:
        raise ParameterError(f"unknown protocol {protocol!r}; known: {', '.join(PROTOCOLS)}")
    return importlib.import_module(f"protocols.system.roles.{protocol}")


def role_spec(protocol: str, role: str) -> RoleSpec:
    roles: dict[str, RoleSpec] = protocol_module(protocol).ROLES
    if role not in roles:
        raise ParameterError(f"{protocol} has no role {role!r}; its roles: {', '.join(roles)}")
    return roles[role]


def _encode_outputs(outputs: list[wire.Envelope]) -> bytes:
    return cbor.encode([[o.to, o.type, o.body] for o in outputs], max_depth=4)


def _decode_outputs(raw: bytes, ident: str, path: str) -> list[wire.Envelope]:
    try:
        items = cbor.decode(raw, max_size=len(raw) + 1)
        return [wire.Envelope(ident, to, type_, body) for to, type_, body in items]
    except (UsappError, ValueError, TypeError) as exc:
        raise StateFileError(f"{path}: a journal entry is corrupt: {type(exc).__name__}") from None


@dataclass
class Party:
    """An open party: its spec, its store, its random source and its crash plan."""

    spec: RoleSpec
    store: Store
    ident: str
    rng: RandomSource
    crash: CrashPlan
    log: Callable[[str], None]
    drbg: HmacDrbg | None = None
    cache: dict[str, object] = field(default_factory=dict)

    @classmethod
    def open(cls, spec: RoleSpec, path: str, ident: str | None = None, seed: str | None = None,
             crash: CrashPlan | None = None, log: Callable[[str], None] | None = None) -> Party:
        store = Store.open(path, spec.protocol, spec.role, spec.schema_version, ident)
        me = store.identity.ident
        drbg = load_drbg(store)
        if drbg is None and seed is not None:
            drbg = seeded_drbg(spec.protocol, spec.role, me, seed)
            with store.transaction():
                save_drbg(store, drbg)
        rng: RandomSource = drbg if drbg is not None else SystemRandom()
        return cls(spec, store, me, rng, crash or CrashPlan(), log or (lambda text: None), drbg)

    def handle(self, envelope: wire.Envelope) -> list[wire.Envelope]:
        """Spec 3.2: the outputs of one input, committed (with the journal entry) before they are returned.

        A re-sent input (same line) gets its journalled outputs again.  A refused
        input (any ``UsappError``) changes nothing and raises.
        """
        if envelope.to != self.ident:
            raise DecodeError(f"message addressed to {envelope.to}, this party is {self.ident}")
        digest = input_digest(envelope.line())
        self.crash.point("read")
        done = self.store.journal_lookup(digest)
        if done is not None:
            self.log(f"re-sent {envelope.type} from {envelope.sender}: answering from the journal")
            return _decode_outputs(done, self.ident, self.store.path)
        try:
            return self._handle_new(envelope, digest)
        except BaseException:
            self.cache.clear()                   # it may hold what the rolled-back input derived
            if self.drbg is not None:        # draws of a refused input are undone with it (spec 3.4)
                self.drbg = load_drbg(self.store)
                self.rng = self.drbg if self.drbg is not None else self.rng
            raise

    def _handle_new(self, envelope: wire.Envelope, digest: bytes) -> list[wire.Envelope]:
        with self.store.transaction():
            ctx = Context(self.store, self.ident, self.rng, self.crash, self.log, self.cache)
            outputs = self.spec.handle(ctx, envelope)
            if len(outputs) > MAX_OUTPUTS or any(o.sender != self.ident for o in outputs):
                raise ParameterError("a handler returned too many outputs or one not from this party")
            if self.drbg is not None:
                save_drbg(self.store, self.drbg)
            self.store.journal_record(digest, _encode_outputs(outputs))
            self.crash.point("before-commit")
        self.crash.point("committed")
        return outputs

    def close(self) -> None:
        self.store.close()


def provision_party(spec: RoleSpec, path: str, ident: str, record: dict[str, object]) -> None:
    """Create ``path`` and store ``record`` (spec 3.1); nothing is left behind if provisioning fails."""
    store = Store.create(path, Identity(spec.protocol, spec.role, ident, spec.schema_version), spec.tables)
    try:
        with store.transaction():
            spec.provision(Context(store, ident, SystemRandom(), CrashPlan(), lambda text: None), record)
    except BaseException:
        store.close()
        for suffix in ("", "-wal", "-shm"):
            if os.path.exists(path + suffix):
                os.remove(path + suffix)
        raise
    store.close()


def write_deployment(deployment: Deployment, directory: str) -> list[str]:
    """``usapp role PROTOCOL init``: DIR/<id>.sqlite and DIR/<id>.provision.cbor for every party."""
    os.makedirs(directory, exist_ok=True)
    written = []
    for ident, (role, record) in sorted(deployment.parties.items()):
        spec = role_spec(deployment.protocol, role)
        provision_party(spec, os.path.join(directory, f"{ident}.sqlite"), ident, record)
        path = os.path.join(directory, f"{ident}.provision.cbor")
        with open(path + ".tmp", "wb") as out:
            out.write(cbor.encode({"protocol": deployment.protocol, "role": role, "id": ident, "record": record}))
        os.replace(path + ".tmp", path)
        written.append(ident)
    return written


def _read_line(stream: BinaryIO) -> bytes | None:
    """One line of at most MAX_LINE_BYTES (an over-long line is consumed and returned as b"" + marker)."""
    line = stream.readline(wire.MAX_LINE_BYTES + 1)
    if not line:
        return None
    if len(line) > wire.MAX_LINE_BYTES and not line.endswith(b"\n"):
        while True:
            rest = stream.readline(1 << 20)
            if not rest or rest.endswith(b"\n"):
                break
        return b"\x00oversized"
    return line


def serve(party: Party, stdin: BinaryIO, stdout: BinaryIO, err: TextIO) -> int:
    """The loop of spec 3.2 until end of input; returns the exit status (0)."""
    handled = refused = 0
    while True:
        line = _read_line(stdin)
        if line is None:
            break
        if not line.strip():
            continue
        sender = wire.HARNESS
        try:
            if line == b"\x00oversized":
                raise DecodeError(f"line exceeds {wire.MAX_LINE_BYTES} bytes")
            envelope = wire.parse_line(line)
            sender = envelope.sender
            outputs = party.handle(envelope)
        except StateFileError:
            raise
        except UsappError as exc:
            refused += 1
            name = type(exc).__name__
            print(f"usapp role {party.ident}: refused: {name}: {' '.join(str(exc).split())}", file=err, flush=True)
            stdout.write(wire.Envelope(party.ident, sender, wire.REFUSED,
                                       wire.refusal_body(name, " ".join(str(exc).split()))).line())
            stdout.flush()
            continue
        for output in outputs:
            stdout.write(output.line())
            stdout.flush()
            party.crash.point("wrote")
        stdout.write(wire.Envelope(party.ident, sender, wire.OK).line())
        stdout.flush()
        handled += 1
    print(f"usapp role {party.ident}: end of input after {handled} messages handled, {refused} refused",
          file=err, flush=True)
    return 0


def run(protocol: str, role: str, path: str, ident: str | None, seed: str | None) -> int:
    """``usapp role PROTOCOL ROLE --state PATH``: serve stdin/stdout until end of input."""
    spec = role_spec(protocol, role)
    crash = CrashPlan.from_environment()
    err = sys.stderr

    def log(text: str) -> None:
        print(f"usapp role {ident or role}: {text}", file=err, flush=True)

    party = Party.open(spec, path, ident, seed, crash, log)
    try:
        return serve(party, sys.stdin.buffer, sys.stdout.buffer, err)
    finally:
        party.close()
