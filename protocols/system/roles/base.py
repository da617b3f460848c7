"""What a protocol's role module gives the framework (specs/roles.md section 4)."""

from __future__ import annotations

import os
import signal
import sqlite3
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TextIO

from protocols.errors import StateFileError
from protocols.primitives import cbor
from protocols.primitives.drbg import HmacDrbg
from protocols.primitives.rand import RandomSource, SystemRandom
from protocols.system.roles.store import Store
from protocols.system.roles.wire import Envelope

PROTOCOLS = ("aggregation", "groupkeys", "issuance", "escrow", "integrity")


@dataclass
class CrashPlan:
    """Crash points of one process run (tests only): SIGKILL at the ``at``-th point; ``trace`` prints each.

    Set from the environment by ``usapp role``: ``USAPP_CRASH_AT=N``, ``USAPP_CRASH_TRACE=1``.
    """

    at: int | None = None
    trace: bool = False
    count: int = 0
    err: TextIO = field(default_factory=lambda: sys.stderr)

    def point(self, label: str) -> None:
        self.count += 1
        if self.trace:
            print(f"usapp-crash-point {self.count} {label}", file=self.err, flush=True)
        if self.at is not None and self.count == self.at:
            os.kill(os.getpid(), signal.SIGKILL)

    @classmethod
    def from_environment(cls) -> CrashPlan:
        at = os.environ.get("USAPP_CRASH_AT", "")
        return cls(int(at) if at.isdigit() and int(at) > 0 else None, os.environ.get("USAPP_CRASH_TRACE") == "1")


class _Draws:
    """The role's random source with a crash point before every draw (spec 3.4)."""

    def __init__(self, source: RandomSource, crash: CrashPlan) -> None:
        self.source, self.crash = source, crash

    def random_bytes(self, n: int) -> bytes:
        self.crash.point("draw")
        return self.source.random_bytes(n)


DRBG_KEY = "drbg"
"""kv entry of a seeded party's HMAC_DRBG working state: CBOR {1: Key, 2: V, 3: reseed_counter} (spec 3.4)."""


def seeded_drbg(protocol: str, role: str, ident: str, seed: str) -> HmacDrbg:
    """Spec 3.4: a party started with ``--seed S`` draws from HMAC_DRBG.from_seed("usapp-role/P/R/ID/S")."""
    return HmacDrbg.from_seed(f"usapp-role/{protocol}/{role}/{ident}/{seed}")


def load_drbg(store: Store) -> HmacDrbg | None:
    raw = store.get(DRBG_KEY)
    if raw is None:
        return None
    try:
        m = cbor.decode_map(raw, {1: bytes, 2: bytes, 3: int}, name="drbg state")
        return HmacDrbg("SHA-256", Key=m[1], V=m[2], reseed_counter=m[3])
    except Exception as exc:  # noqa: BLE001 - any fault of a stored value is a corrupt file
        raise StateFileError(f"{store.path}: stored DRBG state is corrupt: {type(exc).__name__}") from None


def save_drbg(store: Store, drbg: HmacDrbg) -> None:
    store.put(DRBG_KEY, cbor.encode({1: drbg.Key, 2: drbg.V, 3: drbg.reseed_counter}))


class Context:
    """One input message's view of the party (inside one open transaction)."""

    def __init__(self, store: Store, ident: str, rng: RandomSource, crash: CrashPlan,
                 log: Callable[[str], None], cache: dict[str, object] | None = None) -> None:
        self.store = store
        self.cache: dict[str, object] = {} if cache is None else cache
        """Derived values (decoded rows, a rebuilt Merkle log) kept between this party's inputs so a
        handler need not rebuild them from the file at every input (spec 3.2).  The framework empties
        it whenever an input is refused (rolled back); a handler that writes what an entry derives
        from updates or drops the entry in the same input."""
        self.ident = ident
        self.rng: RandomSource = _Draws(rng, crash)
        self._crash = crash
        self._log = log

    @property
    def db(self) -> sqlite3.Connection:
        return self.store.db

    def get(self, name: str) -> bytes | None:
        return self.store.get(name)

    def need(self, name: str) -> bytes:
        """``get`` that treats a missing entry as a corrupt state file."""
        value = self.store.get(name)
        if value is None:
            raise StateFileError(f"{self.store.path}: state entry {name!r} is missing")
        return value

    def put(self, name: str, value: bytes) -> None:
        self.store.put(name, value)

    def crash_point(self, label: str) -> None:
        self._crash.point(label)

    def log(self, text: str) -> None:
        self._log(text)

    def send(self, to: str, type_: str, body: bytes) -> Envelope:
        """An output of this party (the sender is always this party's id)."""
        return Envelope(self.ident, to, type_, body)


@dataclass(frozen=True)
class RoleSpec:
    """One role of one protocol: its tables, how it is provisioned, how it handles one input."""

    protocol: str
    role: str
    schema_version: int
    tables: tuple[str, ...]
    provision: Callable[[Context, dict[str, object]], None]
    handle: Callable[[Context, Envelope], list[Envelope]]


@dataclass(frozen=True)
class Deployment:
    """What ``usapp role PROTOCOL init`` makes: every party's role and provisioning record."""

    protocol: str
    parties: dict[str, tuple[str, dict[str, object]]]
    public: dict[str, object] = field(default_factory=dict)
    """What the harness may know to check outcomes (public keys, the true readings of a scenario...)."""
