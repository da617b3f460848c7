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
import re
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
        statements = _Statements() if opcount.active() else None     # specs/costs.md section 3.1
        if statements is not None:
            self.db.set_trace_callback(statements)
        try:
            self.db.execute("BEGIN IMMEDIATE")
            try:
                yield self.db
            except BaseException:
                self.db.execute("ROLLBACK")
                raise
            self.db.execute("COMMIT")
        finally:
            if statements is not None:
                self.db.set_trace_callback(None)
        if statements is not None:
            opcount.record("state_commit")
            opcount.record("state_byte", statements.written)

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


_NUMBER = re.compile(r"(?<![\w.])-?\d+(?:\.\d+)?(?![\w.])")
"""A number literal in the unquoted part of an expanded SQL statement."""
_WRITES = ("INSERT", "UPDATE", "REPLACE")
NUMBER_BYTES = 8
"""What an integer or real value counts in ``state_byte`` (SQLite's widest encoding of either)."""


class _Statements:
    """specs/costs.md section 3.1: while a counted transaction runs, every SQL statement is a
    ``state_statement``, and the values an INSERT, UPDATE or REPLACE writes (blob and text lengths,
    :data:`NUMBER_BYTES` per number) are the transaction's ``state_byte``."""

    def __init__(self) -> None:
        self.written = 0

    def __call__(self, sql: str) -> None:
        opcount.record("state_statement")
        if sql.lstrip()[:7].upper().startswith(_WRITES):
            self.written += _literal_bytes(sql)


def _literal_bytes(sql: str) -> int:
    """The bytes of the blob (``x'..'``), text (``'..'``) and number literals of an expanded statement."""
    total, at = 0, 0
    while True:
        start = sql.find("'", at)
        unquoted = sql[at:] if start < 0 else sql[at:start]
        total += NUMBER_BYTES * len(_NUMBER.findall(unquoted.rstrip("xX")))
        if start < 0:
            return total
        end = start + 1
        while True:                       # a quote doubled inside a text is one quote, not the end
            end = sql.find("'", end)
            if end < 0 or sql[end + 1:end + 2] != "'":
                break
            end += 2
        if end < 0:
            return total
        body = sql[start + 1:end]
        total += len(body) // 2 if sql[start - 1:start] in ("x", "X") else len(body.replace("''", "'").encode())
        at = end + 1


def input_digest(line: bytes) -> bytes:
    """Spec 3.2: SHA-256 of the input's canonical line (from, to, type, body)."""
    return hashlib.sha256(line).digest()
