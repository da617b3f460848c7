"""A role's durable state: one SQLite file per party (specs/roles.md section 3).

The file is opened in WAL mode with ``synchronous=FULL`` (a commit survives a
power cut once ``COMMIT`` returns) and ``locking_mode=EXCLUSIVE``: the process
that opens it holds its lock until it exits, so a second process on the same
file is refused with :class:`StateFileError`.  A file that is not a state file,
is corrupt, or belongs to another protocol, role or schema version is refused
with :class:`StateFileError`; nothing is ever reset silently.
"""

from __future__ import annotations

import hashlib
import os
import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

from protocols.errors import StateFileError
from protocols.primitives import opcount

APPLICATION_ID = 0x55534150
"""``PRAGMA application_id`` of every state file: the bytes "USAP"."""
FRAMEWORK_VERSION = 1
"""``PRAGMA user_version``: the version of the common tables (meta, journal, kv)."""

COMMON_TABLES = (
    "CREATE TABLE meta (key TEXT PRIMARY KEY, value ANY NOT NULL) STRICT",
    "CREATE TABLE journal (seq INTEGER PRIMARY KEY, input_sha256 BLOB NOT NULL UNIQUE, outputs BLOB NOT NULL) "
    "STRICT",
    "CREATE TABLE kv (name TEXT PRIMARY KEY, value BLOB NOT NULL) STRICT",
)


@dataclass(frozen=True)
class Identity:
    """What a state file says it is: meta rows protocol, role, id and schema_version."""

    protocol: str
    role: str
    ident: str
    schema_version: int


def _connect(path: str) -> sqlite3.Connection:
    try:
        db = sqlite3.connect(path, timeout=0, isolation_level=None)
    except sqlite3.Error as exc:
        raise StateFileError(f"cannot open state file {path}: {exc}") from None
    return db


def _locked(exc: sqlite3.Error) -> bool:
    return isinstance(exc, sqlite3.OperationalError) and "locked" in str(exc)


class Store:
    """An open state file, held exclusively by this process until :meth:`close`."""

    def __init__(self, db: sqlite3.Connection, path: str, identity: Identity) -> None:
        self.db = db
        self.path = path
        self.identity = identity
        self._wal: WalMark = (b"", 0, 0)
        """The WAL as last seen by a counted transaction (specs/costs.md section 3.1)."""
        db.set_trace_callback(_count_statement)

    # -- creating and opening ------------------------------------------------

    @classmethod
    def create(cls, path: str, identity: Identity, tables: Sequence[str]) -> Store:
        """A new state file at ``path`` (``StateFileError`` if anything exists there)."""
        if os.path.lexists(path):
            raise StateFileError(f"state file {path} already exists; a role's state is never overwritten")
        db = _connect(path)
        try:
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=FULL")
            db.execute("PRAGMA locking_mode=EXCLUSIVE")
            db.execute("BEGIN IMMEDIATE")
            db.execute(f"PRAGMA application_id={APPLICATION_ID}")
            db.execute(f"PRAGMA user_version={FRAMEWORK_VERSION}")
            for statement in (*COMMON_TABLES, *tables):
                db.execute(statement)
            db.executemany("INSERT INTO meta VALUES (?, ?)", [
                ("protocol", identity.protocol), ("role", identity.role), ("id", identity.ident),
                ("schema_version", identity.schema_version), ("starts", 0)])
            db.execute("COMMIT")
        except sqlite3.Error as exc:
            db.close()
            raise StateFileError(f"cannot create state file {path}: {exc}") from None
        return cls(db, path, identity)

    @classmethod
    def open(cls, path: str, protocol: str, role: str, schema_version: int, ident: str | None = None) -> Store:
        """Open an existing state file for ``protocol``/``role``; take its lock; check it is intact."""
        if not os.path.isfile(path):
            raise StateFileError(f"no state file at {path} (create it with 'usapp role {protocol} init')")
        db = _connect(path)
        try:
            db.execute("PRAGMA locking_mode=EXCLUSIVE")
            header = db.execute("PRAGMA application_id").fetchone()[0]
            if header != APPLICATION_ID:
                raise StateFileError(f"{path} is not a usapp role state file (application_id {header:#x})")
            version = db.execute("PRAGMA user_version").fetchone()[0]
            if version != FRAMEWORK_VERSION:
                raise StateFileError(f"{path} has state file version {version}, this program reads "
                                     f"{FRAMEWORK_VERSION}")
            check = db.execute("PRAGMA quick_check").fetchall()
            if check != [("ok",)]:
                raise StateFileError(f"{path} is corrupt: {str(check[0][0])[:200]}")
            db.execute("PRAGMA synchronous=FULL")
            db.execute("BEGIN IMMEDIATE")         # takes the exclusive lock, held until close
            meta = dict(db.execute("SELECT key, value FROM meta").fetchall())
            stored_version = meta.get("schema_version")
            found = Identity(str(meta.get("protocol")), str(meta.get("role")), str(meta.get("id")),
                             stored_version if isinstance(stored_version, int) else -1)
            if (found.protocol, found.role) != (protocol, role):
                raise StateFileError(f"{path} holds the state of a {found.protocol} {found.role}, not of a "
                                     f"{protocol} {role}")
            if found.schema_version != schema_version:
                raise StateFileError(f"{path} has {protocol} {role} schema version {found.schema_version}, "
                                     f"this program reads {schema_version}")
            if ident is not None and found.ident != ident:
                raise StateFileError(f"{path} holds the state of {found.ident}, not of {ident}")
            db.execute("UPDATE meta SET value = value + 1 WHERE key = 'starts'")
            db.execute("COMMIT")
        except sqlite3.DatabaseError as exc:
            db.close()
            if _locked(exc):
                raise StateFileError(f"state file {path} is in use by another process") from None
            raise StateFileError(f"{path} is not a readable state file: {exc}") from None
        except StateFileError:
            db.close()
            raise
        return cls(db, path, found)

    def close(self) -> None:
        self.db.close()

    # -- transactions -----------------------------------------------------------

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """BEGIN IMMEDIATE ... COMMIT; any exception rolls back and propagates."""
        wal = _wal_mark(self.path, self._wal) if opcount.active() else None
        self.db.execute("BEGIN IMMEDIATE")
        try:
            yield self.db
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        self.db.execute("COMMIT")
        if wal is not None:                      # specs/costs.md section 3: the durable state commit
            self._wal = _wal_mark(self.path, wal)
            opcount.record("state_commit")
            opcount.record("state_byte", _wal_written(wal, self._wal))

    def get(self, name: str) -> bytes | None:
        row = self.db.execute("SELECT value FROM kv WHERE name = ?", (name,)).fetchone()
        if row is None:
            return None
        if not isinstance(row[0], bytes):
            raise StateFileError(f"{self.path}: kv entry {name!r} is not a blob")
        return row[0]

    def put(self, name: str, value: bytes) -> None:
        self.db.execute("INSERT INTO kv VALUES (?, ?) ON CONFLICT(name) DO UPDATE SET value = excluded.value",
                        (name, bytes(value)))

    def journal_lookup(self, digest: bytes) -> bytes | None:
        row = self.db.execute("SELECT outputs FROM journal WHERE input_sha256 = ?", (digest,)).fetchone()
        return None if row is None else bytes(row[0])

    def journal_record(self, digest: bytes, outputs: bytes) -> None:
        self.db.execute("INSERT INTO journal (input_sha256, outputs) VALUES (?, ?)", (digest, outputs))

    def meta(self, key: str) -> object:
        row = self.db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else row[0]

    def size_bytes(self) -> int:
        """Pages in use times the page size (what the file holds after a checkpoint)."""
        pages = self.db.execute("PRAGMA page_count").fetchone()[0]
        free = self.db.execute("PRAGMA freelist_count").fetchone()[0]
        return int((pages - free) * self.db.execute("PRAGMA page_size").fetchone()[0])


def _count_statement(sql: str) -> None:
    """specs/costs.md section 3.1: one SQL statement run on a state file (nothing when nobody counts)."""
    opcount.record("state_statement")


_WAL_HEADER_BYTES, _WAL_FRAME_HEADER_BYTES = 32, 24
"""SQLite's WAL file format: a 32-byte header (page size at 8, salts at 16), then frames of a 24-byte header
(the salts at 8) and one page."""

WalMark = tuple[bytes, int, int]
"""The WAL's salts, page size and number of frames of its current generation."""


def _wal_mark(path: str, known: WalMark = (b"", 0, 0)) -> WalMark:
    """The WAL's current generation and its frames, scanning on from ``known`` when its salts are current."""
    try:
        wal = open(path + "-wal", "rb")
    except FileNotFoundError:
        return (b"", 0, 0)
    with wal:
        header = wal.read(_WAL_HEADER_BYTES)
        if len(header) < _WAL_HEADER_BYTES:
            return (b"", 0, 0)
        salts, page = header[16:24], int.from_bytes(header[8:12], "big")
        frames = known[2] if known[0] == salts else 0
        while True:
            wal.seek(_WAL_HEADER_BYTES + frames * (_WAL_FRAME_HEADER_BYTES + page))
            frame = wal.read(_WAL_FRAME_HEADER_BYTES)
            if len(frame) < _WAL_FRAME_HEADER_BYTES or frame[8:16] != salts:
                return (salts, page, frames)
            frames += 1


def _wal_written(before: WalMark, after: WalMark) -> int:
    """Bytes of pages a commit appended: the new frames, or all of a generation the commit started."""
    frames = after[2] - before[2] if after[0] == before[0] else after[2]
    return frames * after[1]


def input_digest(line: bytes) -> bytes:
    """Spec 3.2: SHA-256 of the input's canonical line (from, to, type, body)."""
    return hashlib.sha256(line).digest()
