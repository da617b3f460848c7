"""Stored state of the integrity roles (specs/roles.md sections 10.3-10.5): load and save, strictly.

Each loader reads the role's own tables and kv entries, checks their shape and
raises :class:`~protocols.errors.StateFileError` for anything corrupt: a stored
value is never silently reset.  The Merkle logs are rebuilt from the stored
records (one row per leaf) at every load.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from protocols import integrity as ig
from protocols.errors import StateFileError, UsappError
from protocols.primitives import cbor
from protocols.schemes import merkle
from protocols.system.roles.base import Context

SCHEMA_VERSION = 1
"""Schema version of all three integrity roles (spec 10.3-10.5)."""

METER_TABLES = (
    "CREATE TABLE meter_records (counter INTEGER PRIMARY KEY, record BLOB NOT NULL) STRICT",
    "CREATE TABLE meter_receipts (seq INTEGER PRIMARY KEY, head BLOB NOT NULL) STRICT",
)
UTILITY_TABLES = (
    "CREATE TABLE utility_meters (party TEXT PRIMARY KEY, meter BLOB NOT NULL UNIQUE, public BLOB NOT NULL) STRICT",
    "CREATE TABLE utility_records (meter BLOB NOT NULL, counter INTEGER NOT NULL, record BLOB NOT NULL, "
    "PRIMARY KEY (meter, counter)) STRICT",
)
ARBITER_TABLES = (
    "CREATE TABLE arbiter_meters (party TEXT PRIMARY KEY, meter BLOB NOT NULL UNIQUE, public BLOB NOT NULL) STRICT",
    "CREATE TABLE arbiter_disputes (seq INTEGER PRIMARY KEY, meter BLOB NOT NULL, evidence BLOB NOT NULL, "
    "verdict BLOB) STRICT",
)

T = TypeVar("T")
STATE_LIMIT = 1 << 16
"""The largest kv entry of these roles except ``pending`` (bytes)."""


def strict(ctx: Context, what: str, build: Callable[[], T]) -> T:
    """Run ``build`` over stored values; any fault of theirs is a corrupt state file."""
    try:
        return build()
    except StateFileError:
        raise
    except (UsappError, ValueError, TypeError, KeyError, IndexError) as exc:
        raise StateFileError(f"{ctx.store.path}: stored {what} is corrupt: {type(exc).__name__}: {exc}") from None


def kv_map(ctx: Context, name: str, schema: dict, limit: int = STATE_LIMIT) -> dict:
    """A kv entry holding a CBOR map of ``schema`` (StateFileError if missing or malformed)."""
    raw = ctx.need(name)
    return strict(ctx, f"kv {name}", lambda: cbor.decode_map(raw, schema, name=name, max_size=limit))


def kv_uint(ctx: Context, name: str) -> int:
    raw = ctx.need(name)

    def build() -> int:
        value = cbor.decode(raw, max_size=16)
        if type(value) is not int or not 0 <= value <= ig.MAX_UINT64:
            raise ValueError(f"{name} must be an unsigned 64-bit integer")
        return value
    return strict(ctx, f"kv {name}", build)


def _rows(ctx: Context, sql: str, args: tuple = ()) -> list[tuple]:
    return list(ctx.db.execute(sql, args).fetchall())


# --------------------------------------------------------------------------
# Meter


@dataclass(frozen=True)
class MeterConfig:
    """kv ``config`` of a meter: CBOR {1: meter id, 2: device key, 3: utility public key,
    4: utility party id, 5: arbiter party id}."""

    meter: bytes
    device_key: bytes
    utility_public: bytes
    utility: str
    arbiter: str

    def encode(self) -> bytes:
        return cbor.encode({1: self.meter, 2: self.device_key, 3: self.utility_public, 4: self.utility,
                            5: self.arbiter})


def load_meter_config(ctx: Context) -> MeterConfig:
    m = kv_map(ctx, "config", {1: bytes, 2: bytes, 3: bytes, 4: str, 5: str})

    def build() -> MeterConfig:
        if len(m[2]) != 32 or len(m[3]) != 32 or not 1 <= len(m[1]) <= ig.LIMITS.meter_bytes:
            raise ValueError("key or meter id of the wrong length")
        return MeterConfig(m[1], m[2], m[3], m[4], m[5])
    return strict(ctx, "kv config", build)


def load_meter(ctx: Context) -> tuple[MeterConfig, ig.Meter, int]:
    """The meter's protocol object from its tables, and its durable boot counter (kv ``boot-counter``)."""
    cfg = load_meter_config(ctx)
    view = kv_map(ctx, "view", {1: int, 2: (int, type(None)), 3: (bytes, type(None))})
    counter = kv_uint(ctx, "boot-counter")
    rows = _rows(ctx, "SELECT counter, record FROM meter_records ORDER BY counter")
    heads = _rows(ctx, "SELECT head FROM meter_receipts ORDER BY seq")

    def build() -> ig.Meter:
        records = []
        for index, (number, data) in enumerate(rows):
            record = ig.decode_record(data)
            if number != index or record.counter != index or record.meter != cfg.meter:
                raise ValueError(f"record row {number} is out of place")
            records.append(record)
        checked = ig.decode_tree_head(view[3]) if view[3] is not None else None
        boot, restored = view[1], view[2]
        if not 0 <= boot <= counter or (restored is not None and not 0 <= restored <= len(records)):
            raise ValueError("boot above the boot counter, or restored_at past the records")
        state = ig.MeterState(cfg.meter, cfg.device_key, cfg.utility_public, records,
                              merkle.MerkleLog.from_entries([r.to_bytes() for r in records]), checked,
                              [ig.decode_tree_head(h) for (h,) in heads], boot, restored)
        return ig.Meter(state)
    return cfg, strict(ctx, "meter state", build), counter


def save_meter(ctx: Context, meter: ig.Meter, counter: int, *, rewrite: bool = False) -> None:
    """Write what changed: new records and receipts appended (``rewrite``: the tables replaced,
    after a restore or a resync), kv ``view`` and ``boot-counter``."""
    st = meter.state
    if rewrite:
        ctx.db.execute("DELETE FROM meter_records")
        ctx.db.execute("DELETE FROM meter_receipts")
        stored_records = stored_receipts = 0
    else:
        stored_records = ctx.db.execute("SELECT COUNT(*) FROM meter_records").fetchone()[0]
        stored_receipts = ctx.db.execute("SELECT COUNT(*) FROM meter_receipts").fetchone()[0]
    ctx.db.executemany("INSERT INTO meter_records VALUES (?, ?)",
                       [(r.counter, r.to_bytes()) for r in st.records[stored_records:]])
    ctx.db.executemany("INSERT INTO meter_receipts (head) VALUES (?)",
                       [(h.to_bytes(),) for h in st.receipts[stored_receipts:]])
    ctx.put("view", cbor.encode({1: st.boot, 2: st.restored_at,
                                 3: st.checked.to_bytes() if st.checked is not None else None}))
    ctx.put("boot-counter", cbor.encode(counter))


# --------------------------------------------------------------------------
# Utility


@dataclass(frozen=True)
class UtilityConfig:
    """kv ``config`` of the utility: CBOR {1: signing key, 2: arbiter party id, 3: the cheating
    test variant's meter party id or null, 4: its record index or null}."""

    signing_key: bytes
    arbiter: str
    cheat_meter: str | None
    cheat_at: int | None

    def encode(self) -> bytes:
        return cbor.encode({1: self.signing_key, 2: self.arbiter, 3: self.cheat_meter, 4: self.cheat_at})


def load_utility_config(ctx: Context) -> UtilityConfig:
    m = kv_map(ctx, "config", {1: bytes, 2: str, 3: (str, type(None)), 4: (int, type(None))})

    def build() -> UtilityConfig:
        if len(m[1]) != 32 or (m[4] is not None and m[4] < 0):
            raise ValueError("signing key of the wrong length or a negative cheat index")
        return UtilityConfig(m[1], m[2], m[3], m[4])
    return strict(ctx, "kv config", build)


def registered(ctx: Context, table: str, party: str) -> tuple[bytes, bytes] | None:
    """(meter id, public key) of meter party ``party`` in ``table``, or None."""
    row = ctx.db.execute(f"SELECT meter, public FROM {table} WHERE party = ?", (party,)).fetchone()
    if row is None:
        return None
    meter, public = row
    if not isinstance(meter, bytes) or not isinstance(public, bytes) or len(public) != 32:
        raise StateFileError(f"{ctx.store.path}: {table} row of {party} is corrupt")
    return meter, public


def party_of(ctx: Context, table: str, meter: bytes) -> str | None:
    row = ctx.db.execute(f"SELECT party FROM {table} WHERE meter = ?", (meter,)).fetchone()
    return None if row is None else str(row[0])


def load_utility(ctx: Context, meter: bytes, public: bytes) -> tuple[UtilityConfig, ig.Utility]:
    """The utility with one meter's log (rebuilt from its rows, one per leaf, counters 0, 1, ...)."""
    cfg = load_utility_config(ctx)
    rows = _rows(ctx, "SELECT counter, record FROM utility_records WHERE meter = ? ORDER BY counter", (meter,))

    def build() -> ig.Utility:
        records = []
        for index, (number, data) in enumerate(rows):
            record = ig.decode_record(data)
            if number != index or record.meter != meter:
                raise ValueError(f"log row {number} is out of place")
            records.append(record)
        state = ig.UtilityState(cfg.signing_key, {meter: public},
                                {meter: merkle.MerkleLog.from_entries([r.to_bytes() for r in records])},
                                {meter: records})
        return ig.Utility(state)
    return cfg, strict(ctx, "utility log", build)


def append_utility_record(ctx: Context, meter: bytes, record: ig.Record) -> None:
    """One accepted record: one new row of ``utility_records`` (never updated by an honest utility)."""
    ctx.db.execute("INSERT INTO utility_records VALUES (?, ?, ?)", (meter, record.counter, record.to_bytes()))
