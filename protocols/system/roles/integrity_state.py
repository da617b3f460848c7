"""Stored state of the integrity roles (specs/roles.md sections 10.3-10.5): load and save, strictly.

Each loader reads the role's own tables and kv entries, checks their shape and
raises :class:`~protocols.errors.StateFileError` for anything corrupt: a stored
value is never silently reset.  The Merkle logs are rebuilt from the stored
records (one row per leaf) at every load.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
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


def _last(ctx: Context, sql: str, args: tuple = ()) -> int:
    """MAX of an indexed column (-1 for no rows): a lookup, not a scan."""
    value = ctx.db.execute(sql, args).fetchone()[0]
    return -1 if value is None else int(value)


@dataclass(frozen=True)
class _Snapshot:
    """A log as stored (ctx.cache): its key (the last row numbers), decoded records, the Merkle levels."""

    key: tuple[int, ...]
    records: tuple[ig.Record, ...]
    levels: tuple[bytes, ...]
    receipts: tuple[ig.TreeHead, ...] = ()

    def log(self) -> merkle.MerkleLog:
        return merkle.MerkleLog([bytearray(level) for level in self.levels])


def _levels(log: merkle.MerkleLog) -> tuple[bytes, ...]:
    return tuple(bytes(level) for level in log.levels)


def _cached(ctx: Context, name: str, key: tuple[int, ...]) -> _Snapshot | None:
    entry = ctx.cache.get(name)
    return entry if isinstance(entry, _Snapshot) and entry.key == key else None


# --------------------------------------------------------------------------
# Meter


@dataclass(frozen=True)
class MeterConfig:
    """kv ``config`` of a meter: CBOR {1: meter id, 2: device key, 3: utility public key,
    4: utility party id, 5: arbiter party id}; a meter of the ECCSI record suite (specs/integrity.md
    3.3) adds {6: "eccsi-p256", 7: the KPAK, 8: [[key period, SSK, PVT], ...]} (an Ed25519 meter's
    config is exactly the five keys)."""

    meter: bytes
    device_key: bytes
    utility_public: bytes
    utility: str
    arbiter: str
    suite: str = ig.SUITE_ED25519
    kpak: bytes = b""
    keys: tuple[tuple[str, bytes, bytes], ...] = field(default=(), repr=False)

    def encode(self) -> bytes:
        body: dict[int, object] = {1: self.meter, 2: self.device_key, 3: self.utility_public, 4: self.utility,
                                   5: self.arbiter}
        if self.suite != ig.SUITE_ED25519:
            body.update({6: self.suite, 7: self.kpak, 8: [list(k) for k in self.keys]})
        return cbor.encode(body)

    def state(self, records: list[ig.Record] | None = None, log: merkle.MerkleLog | None = None,
              checked: ig.TreeHead | None = None, receipts: list[ig.TreeHead] | None = None, boot: int = 0,
              restored_at: int | None = None) -> ig.MeterState:
        """The protocol state of this config (its suite and keys) with the given records and view."""
        return ig.MeterState(self.meter, self.device_key, self.utility_public, [] if records is None else records,
                             merkle.MerkleLog() if log is None else log, checked,
                             [] if receipts is None else receipts, boot, restored_at,
                             suite=self.suite, kpak=self.kpak,
                             eccsi_keys={period: (SSK, PVT) for period, SSK, PVT in self.keys})


_METER_CONFIG = {1: bytes, 2: bytes, 3: bytes, 4: str, 5: str}
_ECCSI_METER_CONFIG = {**_METER_CONFIG, 6: str, 7: bytes, 8: list}
MAX_METER_KEYS = 4
"""Most key periods an ECCSI meter's config holds (RFC 6509 3.3 needs two at once; a deployment may
provision a few months ahead)."""


def load_meter_config(ctx: Context) -> MeterConfig:
    raw = ctx.need("config")
    m = strict(ctx, "kv config", lambda: cbor.decode(raw, max_size=STATE_LIMIT))
    schema = _ECCSI_METER_CONFIG if isinstance(m, dict) and 6 in m else _METER_CONFIG
    m = strict(ctx, "kv config", lambda: cbor.expect_map(m, schema, name="config"))

    def build() -> MeterConfig:
        if len(m[2]) != 32 or len(m[3]) != 32 or not 1 <= len(m[1]) <= ig.LIMITS.meter_bytes:
            raise ValueError("key or meter id of the wrong length")
        if 6 not in m:
            return MeterConfig(m[1], m[2], m[3], m[4], m[5])
        if m[6] != ig.SUITE_ECCSI or len(m[8]) > MAX_METER_KEYS or any(
                not isinstance(k, list) or len(k) != 3 or not isinstance(k[0], str)
                or not isinstance(k[1], bytes) or not isinstance(k[2], bytes) for k in m[8]):
            raise ValueError("an ECCSI meter's suite or keys are malformed")
        return MeterConfig(m[1], m[2], m[3], m[4], m[5], m[6], m[7], tuple((k[0], k[1], k[2]) for k in m[8]))
    return strict(ctx, "kv config", build)


VALIDATED_KEYS = "eccsi-validated-keys"
"""ctx.cache entry of an ECCSI meter: its keys as validated (RFC 6507 5.1.2) by the first load of the process,
reused by later loads, so that the validation is done (and counted) once, not at every input."""


def new_meter(cfg: MeterConfig, state: ig.MeterState, cache: dict[str, object]) -> ig.Meter:
    """``ig.Meter(state)``; an ECCSI meter reuses the keys a previous load of this process validated."""
    if cfg.suite == ig.SUITE_ED25519:
        return ig.Meter(state)
    kept = cache.get(VALIDATED_KEYS)
    meter = ig.Meter(state, kept if isinstance(kept, dict) else None)
    cache[VALIDATED_KEYS] = dict(meter.validated_keys)
    return meter


def load_meter(ctx: Context) -> tuple[MeterConfig, ig.Meter, int]:
    """The meter's protocol object from its tables, and its durable boot counter (kv ``boot-counter``)."""
    cfg = load_meter_config(ctx)
    view = kv_map(ctx, "view", {1: int, 2: (int, type(None)), 3: (bytes, type(None))})
    counter = kv_uint(ctx, "boot-counter")
    key = (_last(ctx, "SELECT MAX(counter) FROM meter_records"), _last(ctx, "SELECT MAX(seq) FROM meter_receipts"))
    snapshot = _cached(ctx, "meter", key)

    def build() -> ig.Meter:
        if snapshot is None:
            records = []
            for index, (number, data) in enumerate(_rows(ctx, "SELECT counter, record FROM meter_records "
                                                               "ORDER BY counter")):
                record = ig.decode_record(data)
                if number != index or record.counter != index or record.meter != cfg.meter:
                    raise ValueError(f"record row {number} is out of place")
                records.append(record)
            log = merkle.MerkleLog.from_entries([r.to_bytes() for r in records])
            receipts = [ig.decode_tree_head(h) for (h,) in _rows(ctx, "SELECT head FROM meter_receipts ORDER BY seq")]
            ctx.cache["meter"] = _Snapshot(key, tuple(records), _levels(log), tuple(receipts))
        else:
            records, log, receipts = list(snapshot.records), snapshot.log(), list(snapshot.receipts)
        checked = ig.decode_tree_head(view[3]) if view[3] is not None else None
        boot, restored = view[1], view[2]
        if not 0 <= boot <= counter or (restored is not None and not 0 <= restored <= len(records)):
            raise ValueError("boot above the boot counter, or restored_at past the records")
        return new_meter(cfg, cfg.state(records, log, checked, receipts, boot, restored), ctx.cache)
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
    key = (_last(ctx, "SELECT MAX(counter) FROM meter_records"), _last(ctx, "SELECT MAX(seq) FROM meter_receipts"))
    ctx.cache["meter"] = _Snapshot(key, tuple(st.records), _levels(st.log), tuple(st.receipts))


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
    """(meter id, public key) of meter party ``party`` in ``table``, or None.  The public key is the
    meter's 32-byte Ed25519 key, or for an ECCSI meter the KMS's 65-octet KPAK (:func:`record_key`)."""
    row = ctx.db.execute(f"SELECT meter, public FROM {table} WHERE party = ?", (party,)).fetchone()
    if row is None:
        return None
    meter, public = row
    if not isinstance(meter, bytes) or not isinstance(public, bytes) or len(public) not in (32, KPAK_BYTES):
        raise StateFileError(f"{ctx.store.path}: {table} row of {party} is corrupt")
    return meter, public


KPAK_BYTES = 65
"""An ECCSI meter's row holds the KPAK (RFC 6507 3.2: 0x04 || x || y) instead of an Ed25519 key."""


def record_key(meter: bytes, public: bytes) -> ig.MeterKey:
    """What verifies the records of a registered meter (specs/integrity.md 3.1, 3.3): its Ed25519 key,
    or ``EccsiRecordKey(KPAK, meter)``: the identity alone (``ParameterError`` for a bad KPAK or URI)."""
    return ig.EccsiRecordKey(public, meter) if len(public) == KPAK_BYTES else public


def party_of(ctx: Context, table: str, meter: bytes) -> str | None:
    row = ctx.db.execute(f"SELECT party FROM {table} WHERE meter = ?", (meter,)).fetchone()
    return None if row is None else str(row[0])


def load_utility(ctx: Context, meter: bytes, public: bytes) -> tuple[UtilityConfig, ig.Utility]:
    """The utility with one meter's log (rebuilt from its rows, one per leaf, counters 0, 1, ...)."""
    cfg = load_utility_config(ctx)
    name = f"utility/{meter.hex()}"
    key = (_last(ctx, "SELECT MAX(counter) FROM utility_records WHERE meter = ?", (meter,)),)
    snapshot = _cached(ctx, name, key)

    def build() -> ig.Utility:
        if snapshot is None:
            records = []
            for index, (number, data) in enumerate(_rows(ctx, "SELECT counter, record FROM utility_records "
                                                               "WHERE meter = ? ORDER BY counter", (meter,))):
                record = ig.decode_record(data)
                if number != index or record.meter != meter:
                    raise ValueError(f"log row {number} is out of place")
                records.append(record)
            log = merkle.MerkleLog.from_entries([r.to_bytes() for r in records])
            ctx.cache[name] = _Snapshot(key, tuple(records), _levels(log))
        else:
            records, log = list(snapshot.records), snapshot.log()
        state = ig.UtilityState(cfg.signing_key, {meter: record_key(meter, public)}, {meter: log}, {meter: records})
        return ig.Utility(state)
    return cfg, strict(ctx, "utility log", build)


def append_utility_record(ctx: Context, meter: bytes, record: ig.Record) -> None:
    """One accepted record: one new row of ``utility_records`` (never updated by an honest utility)."""
    ctx.db.execute("INSERT INTO utility_records VALUES (?, ?, ?)", (meter, record.counter, record.to_bytes()))
    ctx.cache.pop(f"utility/{meter.hex()}", None)


def remember_utility(ctx: Context, meter: bytes, utility: ig.Utility) -> None:
    """After :func:`append_utility_record`: keep the log as now stored, so the next input need not rebuild it."""
    key = (_last(ctx, "SELECT MAX(counter) FROM utility_records WHERE meter = ?", (meter,)),)
    ctx.cache[f"utility/{meter.hex()}"] = _Snapshot(key, tuple(utility.state.records[meter]),
                                                    _levels(utility.state.logs[meter]))
