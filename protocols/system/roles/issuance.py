"""Issuance roles as processes: PKG nodes of a t-of-n distributed PKG and enrolling devices
(specs/roles.md section 8, specs/issuance.md sections 5, 8, 9, 10).

A PKG node holds only its share s_i of the master secret (specs/issuance.md 10.2);
a device enrolls with every node, checks each node's share and combines t of them
(10.3).  Each handler loads the role's state, calls one method of
:class:`protocols.issuance.Pkg` or :class:`protocols.issuance.Meter`, and saves
the changed state in the same transaction (specs/roles.md 3.2).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519
from cryptography.x509.oid import NameOID

from protocols import issuance as iss
from protocols import issuance_eccsi as ie
from protocols.errors import DecodeError, ParameterError, StateError, StateFileError, UsappError
from protocols.primitives import cbor, hashing
from protocols.primitives.bls12_381 import G2
from protocols.primitives.drbg import HmacDrbg
from protocols.primitives.sakke_curve import PARAMETER_SET_1 as PS1
from protocols.schemes import bf_bls12, eccsi, sakke
from protocols.system.roles import harness, wire
from protocols.system.roles.base import Context, Deployment, RoleSpec
from protocols.system.roles.wire import Envelope

PROTOCOL = "issuance"
SCHEMA_VERSION = 1
NOW = 1_767_225_600
"""The deployment's initial clock, 2026-01-01T00:00:00Z (specs/roles.md 8.1)."""
EPOCH = 7
NAMESPACE = "role-meters"
NOT_BEFORE = dt.datetime(2025, 1, 1, tzinfo=dt.timezone.utc)
NOT_AFTER = dt.datetime(2035, 1, 1, tzinfo=dt.timezone.utc)
MAX_NODES = 16
MAX_DEVICES = 64
MAX_ENV_BYTES = 256
"""Every env body (specs/roles.md 8.3) is at most this many bytes."""
MAX_REQUEST_BYTES = 64
REQUEST = "challenge-request"
CHALLENGE, ENROLLMENT, DELIVERY = "challenge", "enrollment", "key-delivery"
ENROLLED, LOG = "enrolled", "log"


def _stored(what: str, decode: Callable[[], Any]) -> Any:
    """Decode a stored value; any fault is a corrupt state file (never a silent reset)."""
    try:
        return decode()
    except (UsappError, ValueError, TypeError, KeyError, IndexError) as exc:
        raise StateFileError(f"stored {what} is corrupt: {type(exc).__name__}: {exc}") from None


def _env_body(envelope: Envelope, schema: dict[int, type]) -> dict:
    """Spec 8.3: an env message comes from env, is at most MAX_ENV_BYTES, and is exactly ``schema``."""
    if envelope.sender != wire.HARNESS:
        raise DecodeError(f"{envelope.type} is accepted only from {wire.HARNESS}, not from {envelope.sender}")
    if len(envelope.body) > MAX_ENV_BYTES:
        raise DecodeError(f"{envelope.type}: body of {len(envelope.body)} bytes exceeds {MAX_ENV_BYTES}")
    return cbor.decode_map(envelope.body, schema, name=envelope.type, max_size=MAX_ENV_BYTES)


def _uint(value: int, high: int, what: str) -> int:
    if not 0 <= value <= high:
        raise DecodeError(f"{what} out of range [0, {high}]")
    return value


# ---------------------------------------------------------------------------
# The PKG node
# ---------------------------------------------------------------------------

PKG_TABLES = (
    "CREATE TABLE pkg_challenges (nonce BLOB PRIMARY KEY, expires INTEGER NOT NULL, used INTEGER NOT NULL) STRICT",
    "CREATE TABLE pkg_revoked (namespace TEXT NOT NULL, serial TEXT NOT NULL, PRIMARY KEY (namespace, serial)) "
    "STRICT",
    "CREATE TABLE pkg_log (idx INTEGER PRIMARY KEY, entry BLOB NOT NULL, challenge BLOB NOT NULL UNIQUE) STRICT",
)
_PKG_CONFIG = {1: int, 2: bytes, 3: list, 4: int, 5: int}
_ECCSI_PKG_CONFIG = {**_PKG_CONFIG, 6: str, 7: bytes}
"""An ECCSI/SAKKE PKG (specs/issuance.md 10.4) adds {6: the suite, 7: I2OSP(z, 128)}; its key 2 is
I2OSP(KSAK, 32).  A BLS12-381 node's config is exactly the five keys."""
ECCSI_SUITE = ie.SUITE


def _record(record: dict[str, object], schema: dict[str, type]) -> dict[str, Any]:
    if set(record) != set(schema) or any(type(record[k]) is not t for k, t in schema.items()):
        raise ParameterError(f"a provisioning record has exactly the fields {sorted(schema)} with their types")
    return record


def _anchor_list(anchors: list) -> tuple[iss.TrustAnchor, ...]:
    out = []
    for item in anchors:
        cert, roles, namespace = item
        out.append(iss.TrustAnchor(cert, frozenset(roles), namespace))
    return tuple(out)


def pkg_provision(ctx: Context, record: dict[str, object]) -> None:
    """Spec 8.1, 8.4: the pkg record -> kv ``pkg``, ``epoch``, ``clock``."""
    fields = {"node": int, "share": bytes, "anchors": list, "epoch": int, "now": int, "challenge_lifetime": int,
              "max_outstanding": int}
    if "suite" in record:                                        # specs/issuance.md 10.4: one KMS, no shares
        fields.update(suite=str, z=bytes)
    r = _record(record, fields)
    anchors = []
    for a in r["anchors"]:
        if not isinstance(a, dict):
            raise ParameterError("an anchor is a map")
        a = _record(a, {"certificate": bytes, "roles": list, "namespace": str})
        if any(not isinstance(role, str) for role in a["roles"]):
            raise ParameterError("an anchor's roles are text")
        anchors.append([a["certificate"], sorted(a["roles"]), a["namespace"]])
    config = {1: r["node"], 2: r["share"], 3: anchors, 4: r["challenge_lifetime"], 5: r["max_outstanding"]}
    if "suite" in r:
        config.update({6: r["suite"], 7: r["z"]})
    _pkg(config, r["epoch"], cache={})                           # every value checked by the protocol classes
    ctx.put("pkg", cbor.encode(config))
    ctx.put("epoch", cbor.encode(r["epoch"]))
    ctx.put("clock", cbor.encode(iss._check_time(r["now"])))


def _pkg(config: dict, epoch: int, challenges: dict[bytes, iss.ChallengeRecord] | None = None,
         revoked: set[tuple[str, str]] | None = None, log: iss.IssuanceLog | None = None, *,
         cache: dict[str, object]) -> iss.Pkg:
    share = config[2]
    extractor: iss.KeyExtractor
    if 6 in config:
        extractor = _eccsi_extractor(config, cache)
    elif len(share) != 32 or not 1 <= int.from_bytes(share, "big") < bf_bls12.R:
        raise ParameterError("a node's share is 32 bytes, an integer in [1, r)")
    else:
        extractor = iss.ThresholdNodeExtractor(config[1], int.from_bytes(share, "big"))
    state = iss.PkgState(_anchor_list(config[3]), epoch, config[4], config[5], challenges or {}, revoked or set(),
                         log or iss.IssuanceLog())
    return iss.Pkg(state, extractor)


EXTRACTOR_CACHE = "eccsi-extractor"
"""ctx.cache entry of an ECCSI/SAKKE PKG: (KSAK and z as stored, the extractor), so that KPAK = [KSAK]G
and Z = [z]P are computed once per process, not at every input (they are the KMS's setup, not issuance)."""


def _eccsi_extractor(config: dict, cache: dict[str, object]) -> ie.EccsiSakkeExtractor:
    """Spec 10.4.5: the single KMS of the ECCSI/SAKKE suite (SAKKE cannot be split, 10.5.4)."""
    if config[6] != ECCSI_SUITE or config[1] != 1 or len(config[2]) != eccsi.N or len(config[7]) != PS1.L:
        raise ParameterError(f"an {ECCSI_SUITE} PKG is node 1 with a 32-octet KSAK and a 128-octet z")
    key = (config[2], config[7])
    kept = cache.get(EXTRACTOR_CACHE)
    if isinstance(kept, tuple) and kept[0] == key:
        return kept[1]
    extractor = ie.EccsiSakkeExtractor(eccsi.kms_from_ksak(int.from_bytes(config[2], "big")),
                                       sakke.kms_from_z(PS1, int.from_bytes(config[7], "big")))
    cache[EXTRACTOR_CACHE] = (key, extractor)
    return extractor


def _load_pkg(ctx: Context) -> tuple[iss.Pkg, int]:
    """The node's Pkg from its state (spec 8.4) and its clock; StateFileError if anything is corrupt."""
    config = _stored("pkg configuration", lambda: _pkg_config(ctx.need("pkg")))
    epoch = _stored("epoch", lambda: _int(cbor.decode(ctx.need("epoch"))))
    clock = _stored("clock", lambda: _int(cbor.decode(ctx.need("clock"))))
    rows = ctx.db.execute("SELECT nonce, expires, used FROM pkg_challenges").fetchall()
    challenges = _stored("challenges", lambda: {_bytes(n): iss.ChallengeRecord(_int(e), _flag(u)) for n, e, u in rows})
    revoked = _stored("revocations", lambda: {(_text(a), _text(b)) for a, b in
                                              ctx.db.execute("SELECT namespace, serial FROM pkg_revoked")})
    log = _stored("issuance log", lambda: _cached_log(ctx))
    return _stored("pkg state", lambda: _pkg(config, epoch, challenges, revoked, log, cache=ctx.cache)), clock


def _pkg_config(raw: bytes) -> dict:
    m = cbor.decode(raw)
    return cbor.expect_map(m, _ECCSI_PKG_CONFIG if isinstance(m, dict) and 6 in m else _PKG_CONFIG, name="pkg")


def _verified_log(entries: list[bytes]) -> iss.IssuanceLog:
    iss.verify_log(entries)
    return iss.IssuanceLog(entries)


LOG_CACHE = "pkg-log"
"""ctx.cache entry: (entries as stored, all verified) kept between inputs (roles spec 3.2, 8.4)."""


def _cached_log(ctx: Context) -> iss.IssuanceLog:
    """The issuance log: verified from its rows when the process starts (or after a refusal), then
    kept; the rows' count and last entry must still match the kept copy."""
    last = ctx.db.execute("SELECT idx, entry FROM pkg_log ORDER BY idx DESC LIMIT 1").fetchone()
    kept = ctx.cache.get(LOG_CACHE)
    if isinstance(kept, tuple) and ((last is None and not kept) or
                                    (last is not None and len(kept) == last[0] + 1 and kept[-1] == last[1])):
        return iss.IssuanceLog(list(kept))
    entries = [_bytes(row[0]) for row in ctx.db.execute("SELECT entry FROM pkg_log ORDER BY idx")]
    log = _verified_log(entries)
    ctx.cache[LOG_CACHE] = tuple(entries)
    return log


def _int(value: object) -> int:
    if type(value) is not int or value < 0:
        raise TypeError("expected an unsigned integer")
    return value


def _flag(value: object) -> bool:
    if value not in (0, 1):
        raise TypeError("expected 0 or 1")
    return bool(value)


def _bytes(value: object) -> bytes:
    if not isinstance(value, bytes):
        raise TypeError("expected a blob")
    return value


def _text(value: object) -> str:
    if not isinstance(value, str):
        raise TypeError("expected text")
    return value


def _save_challenges(ctx: Context, before: dict[bytes, tuple[int, bool]], pkg: iss.Pkg) -> None:
    after = {n: (r.expires, r.used) for n, r in pkg.state.challenges.items()}
    for nonce in before.keys() - after.keys():
        ctx.db.execute("DELETE FROM pkg_challenges WHERE nonce = ?", (nonce,))
    for nonce, (expires, used) in after.items():
        if before.get(nonce) != (expires, used):
            ctx.db.execute("INSERT INTO pkg_challenges VALUES (?, ?, ?) ON CONFLICT(nonce) DO UPDATE SET "
                           "expires = excluded.expires, used = excluded.used", (nonce, expires, int(used)))


def pkg_handle(ctx: Context, envelope: Envelope) -> list[Envelope]:
    """Spec 8.2: one input of a PKG node."""
    pkg, clock = _load_pkg(ctx)
    before = {n: (r.expires, r.used) for n, r in pkg.state.challenges.items()}
    kind = envelope.type
    if kind == REQUEST:
        request = cbor.decode_map(envelope.body, {1: int, 2: int}, name=REQUEST, max_size=MAX_REQUEST_BYTES)
        _uint(request[1], iss.MAX_EPOCH, "challenge-request epoch")
        _uint(request[2], iss.MAX_TIME, "challenge-request number")
        challenge = pkg.challenge(clock, ctx.rng)                          # issuance 5.1
        _save_challenges(ctx, before, pkg)
        return [ctx.send(envelope.sender, CHALLENGE, challenge)]
    if kind == ENROLLMENT:
        logged = len(pkg.state.log.entries)
        delivery = pkg.enroll(envelope.body, clock, ctx.rng)               # issuance 5.3
        ctx.crash_point("issued")
        nonce = iss.decode_delivery(delivery).challenge
        for index, entry in enumerate(pkg.state.log.entries[logged:], start=logged):
            ctx.db.execute("INSERT INTO pkg_log VALUES (?, ?, ?)", (index, entry, nonce))
        ctx.crash_point("logged")
        ctx.cache[LOG_CACHE] = tuple(pkg.state.log.entries)   # as now stored (verified as appended)
        _save_challenges(ctx, before, pkg)
        return [ctx.send(envelope.sender, DELIVERY, delivery)]
    if kind == "env.tick":
        now = _uint(_env_body(envelope, {1: int})[1], iss.MAX_TIME, "now")
        if now < clock:
            raise StateError(f"the clock goes back from {clock} to {now}")
        ctx.put("clock", cbor.encode(now))
        return []
    if kind == "env.epoch":
        epoch = _uint(_env_body(envelope, {1: int})[1], iss.MAX_EPOCH, "epoch")
        pkg.advance_epoch(epoch)                                           # issuance 8
        ctx.put("epoch", cbor.encode(epoch))
        ctx.db.execute("DELETE FROM pkg_challenges")
        return []
    if kind == "env.revoke":
        m = _env_body(envelope, {1: str, 2: str})
        pkg.revoke(m[1], m[2])
        ctx.db.execute("INSERT OR IGNORE INTO pkg_revoked VALUES (?, ?)", (m[1], m[2]))
        return []
    if kind == "env.log":
        _env_body(envelope, {1: int})
        body = cbor.encode({1: list(pkg.state.log.entries), 2: pkg.state.log.head, 3: pkg.state.epoch})
        return [ctx.send(wire.HARNESS, LOG, body)]
    raise DecodeError(f"a PKG node does not accept {kind!r}")


# ---------------------------------------------------------------------------
# The device
# ---------------------------------------------------------------------------

DEVICE_TABLES = (
    "CREATE TABLE dev_pending (nonce BLOB PRIMARY KEY, node INTEGER NOT NULL, seq INTEGER NOT NULL UNIQUE, "
    "identity BLOB NOT NULL, suite TEXT NOT NULL, hpke_private BLOB) STRICT",
    "CREATE TABLE dev_shares (epoch INTEGER NOT NULL, node INTEGER NOT NULL, identity BLOB NOT NULL, "
    "share BLOB NOT NULL, PRIMARY KEY (epoch, node)) STRICT",
    "CREATE TABLE dev_keys (epoch INTEGER PRIMARY KEY, identity BLOB NOT NULL, key BLOB NOT NULL) STRICT",
)
_DEVICE_CONFIG = {1: str, 2: str, 3: str, 4: str, 5: bytes, 6: list, 7: int, 8: bytes, 9: list}
_ATTEMPT = {1: int, 2: int, 3: int, 4: dict, 5: list, 6: bool}


def device_provision(ctx: Context, record: dict[str, object]) -> None:
    """Spec 8.1, 8.4: the device record -> kv ``device``."""
    r = _record(record, {"namespace": str, "serial": str, "role": str, "suite": str, "device_key": bytes,
                         "chain": list, "threshold": int, "p_pub": bytes, "nodes": list})
    nodes = []
    for n in r["nodes"]:
        if not isinstance(n, dict):
            raise ParameterError("a node is a map")
        n = _record(n, {"node": int, "id": str, "verification_key": bytes})
        nodes.append([n["node"], wire.check_id(n["id"], "node id"), n["verification_key"]])
    if len({n[1] for n in nodes}) != len(nodes):
        raise ParameterError("every node of a device has its own id")
    config = {1: r["namespace"], 2: r["serial"], 3: r["role"], 4: r["suite"], 5: r["device_key"],
              6: r["chain"], 7: r["threshold"], 8: r["p_pub"], 9: nodes}
    if r["suite"] == ECCSI_SUITE:
        try:
            ie.eccsi_sakke_key_verifier(*_eccsi_publics(config))      # the KPAK on P-256, Z in E[q] (10.4.6)
        except DecodeError as exc:
            raise ParameterError(f"the device's KPAK || Z: {exc}") from None
    else:
        _distributed_key(config)
    iss.Meter(_meter_state(config), lambda identity, key: False)   # checks the key against the certificate
    ctx.put("device", cbor.encode(config))


def _meter_state(config: dict) -> iss.MeterState:
    return iss.MeterState(config[1], config[2], config[3], config[4], config[5], tuple(config[6]))


def _distributed_key(config: dict) -> bf_bls12.DistributedKey:
    try:
        keys = {int(n): G2.from_bytes(vk) for n, _, vk in config[9]}
        key = bf_bls12.DistributedKey(config[7], bf_bls12.PublicParams.from_bytes(config[8]), keys)
    except (DecodeError, ValueError, TypeError) as exc:
        raise ParameterError(f"the device's distributed key is malformed: {exc}") from None
    if not 1 <= key.threshold <= len(keys) <= MAX_NODES or len(keys) != len(config[9]):
        raise ParameterError("the device needs 1 <= threshold <= nodes <= 16, each node once")
    return key


def _eccsi_publics(config: dict) -> tuple[bytes, bytes]:
    """Spec 10.4.6 for a device of the ECCSI/SAKKE suite: one KMS (node list of one node, threshold
    1, no verification key) whose public parameters (key 8, ``p_pub`` in the record) are KPAK || Z,
    65 + 257 octets; ``ParameterError`` otherwise (the points are checked by the verifier)."""
    publics = config[8]
    if config[7] != 1 or len(config[9]) != 1 or config[9][0][0] != 1 or config[9][0][2] != b"" \
            or len(publics) != eccsi.POINT_BYTES + PS1.point_bytes:
        raise ParameterError(f"an {ECCSI_SUITE} device enrolls with one KMS (node 1, threshold 1) whose "
                             "parameters are KPAK || Z (322 octets)")
    return publics[:eccsi.POINT_BYTES], publics[eccsi.POINT_BYTES:]


VERIFIER_CACHE = "eccsi-verifier"
"""ctx.cache entry of an ECCSI/SAKKE device: (KPAK || Z, its verify_key); the KPAK and Z are checked
once per process (spec 10.4.6: "once, when the verifier is made")."""


DISTRIBUTED_KEY_CACHE = "distributed-key"
"""ctx.cache entry of a BLS12-381 device: (the stored threshold, P_pub and node keys, the decoded key)."""


class _Device:
    """The device's state as loaded for one input."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.config = _stored("device configuration",
                              lambda: cbor.decode_map(ctx.need("device"), _DEVICE_CONFIG, name="device"))
        self.eccsi = self.config[4] == ECCSI_SUITE
        if self.eccsi:
            self.publics = _stored("device configuration", lambda: _eccsi_publics(self.config))
            self.threshold = 1
        else:
            self.key = _stored("device configuration", lambda: self._distributed_key())
            self.threshold = self.key.threshold
        self.nodes = {str(i): int(n) for n, i, _ in self.config[9]}
        raw = ctx.get("attempt")
        self.attempt = None if raw is None else _stored(
            "attempt", lambda: cbor.decode_map(raw, _ATTEMPT, name="attempt"))

    def _distributed_key(self) -> bf_bls12.DistributedKey:
        """The PKG's P_pub and node keys, decoded (and subgroup-checked) once per process, not at every
        input: a meter keeps them decoded (specs/costs.md 3.1)."""
        stored = (self.config[7], self.config[8], tuple((int(n), bytes(vk)) for n, _, vk in self.config[9]))
        kept = self.ctx.cache.get(DISTRIBUTED_KEY_CACHE)
        if isinstance(kept, tuple) and kept[0] == stored:
            return kept[1]
        key = _distributed_key(self.config)
        self.ctx.cache[DISTRIBUTED_KEY_CACHE] = (stored, key)
        return key

    def meter(self, node: int) -> iss.Meter:
        """Node ``node``'s view: the pending enrollments with it and its shares (issuance 10.3)."""
        state = _meter_state(self.config)
        rows = self.ctx.db.execute("SELECT nonce, identity, suite, hpke_private FROM dev_pending WHERE node = ? "
                                   "ORDER BY seq", (node,)).fetchall()
        state.pending = _stored("pending enrollments", lambda: {
            _bytes(n): iss.PendingEnrollment(_bytes(i), _text(s), None if h is None else _bytes(h))
            for n, i, s, h in rows})
        shares = self.ctx.db.execute("SELECT epoch, identity, share FROM dev_shares WHERE node = ?", (node,))
        state.keys = _stored("shares", lambda: {
            _int(e): iss.IssuedKey(_bytes(i), _int(e), state.suite, _bytes(k)) for e, i, k in shares})
        return _stored("device configuration", lambda: iss.Meter(state, self.verifier(node)))

    def verifier(self, node: int) -> iss.KeyVerifier:
        """Spec 10.3 (a node's share) or 10.4.6 (the one KMS's key)."""
        if not self.eccsi:
            return iss.threshold_share_verifier(self.key, node)
        kept = self.ctx.cache.get(VERIFIER_CACHE)
        if isinstance(kept, tuple) and kept[0] == self.config[8]:
            return kept[1]
        verify = ie.eccsi_sakke_key_verifier(*self.publics)
        self.ctx.cache[VERIFIER_CACHE] = (self.config[8], verify)
        return verify

    def combine(self, shares: dict[int, iss.IssuedKey]) -> iss.IssuedKey:
        """Spec 10.3: t shares combined; spec 10.4: the one KMS's key, already checked on receipt."""
        if self.eccsi:
            (issued,) = shares.values()
            return issued
        return iss.combine_issued_shares(self.key, shares)

    def save_pending(self, node: int, before: dict[bytes, bytes | None], meter: iss.Meter) -> None:
        after = meter.state.pending
        for nonce in before.keys() - after.keys():
            self.ctx.db.execute("DELETE FROM dev_pending WHERE nonce = ?", (nonce,))
        for nonce, p in after.items():
            if nonce not in before:
                seq = self.ctx.db.execute("SELECT COALESCE(MAX(seq), 0) + 1 FROM dev_pending").fetchone()[0]
                self.ctx.db.execute("INSERT INTO dev_pending VALUES (?, ?, ?, ?, ?, ?)",
                                    (nonce, node, seq, p.identity, p.suite, p.hpke_private))
            elif before[nonce] != p.hpke_private:
                self.ctx.db.execute("UPDATE dev_pending SET hpke_private = ? WHERE nonce = ?",
                                    (p.hpke_private, nonce))

    def save_attempt(self) -> None:
        self.ctx.put("attempt", cbor.encode(self.attempt))

    def latest_key_epoch(self) -> int | None:
        row = self.ctx.db.execute("SELECT MAX(epoch) FROM dev_keys").fetchone()
        return None if row[0] is None else int(row[0])


def device_handle(ctx: Context, envelope: Envelope) -> list[Envelope]:
    """Spec 8.2: one input of a device."""
    dev = _Device(ctx)
    kind = envelope.type
    if kind == "env.enroll":
        m = _env_body(envelope, {1: int, 2: int})
        epoch, now = _uint(m[1], iss.MAX_EPOCH, "epoch"), _uint(m[2], iss.MAX_TIME, "now")
        latest = dev.latest_key_epoch()
        if latest is not None and epoch < latest:
            raise StateError(f"asked to enroll for epoch {epoch}, before the latest key held ({latest})")
        number = 1 if dev.attempt is None else dev.attempt[3] + 1
        dev.attempt = {1: epoch, 2: now, 3: number, 4: {}, 5: [], 6: False}
        dev.save_attempt()
        request = cbor.encode({1: epoch, 2: number})
        return [ctx.send(ident, REQUEST, request) for ident in sorted(dev.nodes, key=lambda i: dev.nodes[i])]
    if kind not in (CHALLENGE, DELIVERY):
        raise DecodeError(f"a device does not accept {kind!r}")
    node = dev.nodes.get(envelope.sender)
    if node is None:
        raise StateError(f"{kind} from {envelope.sender}, which is not a PKG node of this device")
    meter = dev.meter(node)
    before = {n: p.hpke_private for n, p in meter.state.pending.items()}
    if kind == CHALLENGE:
        attempt = dev.attempt
        if attempt is None or node in attempt[4]:
            raise StateError(f"a challenge from node {node} that this device did not ask for")
        challenge = iss.decode_challenge(envelope.body)
        if challenge.epoch != attempt[1]:
            raise StateError(f"challenge for epoch {challenge.epoch}, the device is enrolling for {attempt[1]}")
        enrollment = meter.enroll(envelope.body, ctx.rng)                  # issuance 5.2
        dev.save_pending(node, before, meter)
        attempt[4][node] = challenge.nonce
        dev.save_attempt()
        return [ctx.send(envelope.sender, ENROLLMENT, enrollment)]
    issued = meter.receive(envelope.body)                                  # issuance 7.3, 10.3
    ctx.crash_point("share-checked")
    dev.save_pending(node, before, meter)
    ctx.db.execute("INSERT INTO dev_shares VALUES (?, ?, ?, ?) ON CONFLICT(epoch, node) DO UPDATE SET "
                   "identity = excluded.identity, share = excluded.share",
                   (issued.epoch, node, issued.identity, issued.key))
    attempt = dev.attempt
    nonce = iss.decode_delivery(envelope.body).challenge
    if attempt is None or attempt[6] or attempt[4].get(node) != nonce:
        return []                                   # a late share of an earlier attempt: kept, nothing more
    attempt[5].append(node)
    outputs = []
    if len(attempt[5]) >= dev.threshold:
        shares = {n: meter.state.keys[issued.epoch] if n == node else dev.meter(n).key(issued.epoch)
                  for n in sorted(attempt[5])[:dev.threshold]}
        combined = dev.combine(shares)                                     # issuance 10.3, 10.4
        ctx.db.execute("INSERT INTO dev_keys VALUES (?, ?, ?) ON CONFLICT(epoch) DO UPDATE SET "
                       "identity = excluded.identity, key = excluded.key",
                       (combined.epoch, combined.identity, combined.key))
        attempt[6] = True
        outputs.append(ctx.send(wire.HARNESS, ENROLLED, cbor.encode({
            1: combined.identity, 2: combined.epoch, 3: hashing.sha256(combined.key).digest(),
            4: sorted(shares)})))
    dev.save_attempt()
    return outputs


ROLES = {
    "pkg": RoleSpec(PROTOCOL, "pkg", SCHEMA_VERSION, PKG_TABLES, pkg_provision, pkg_handle),
    "device": RoleSpec(PROTOCOL, "device", SCHEMA_VERSION, DEVICE_TABLES, device_provision, device_handle),
}


# ---------------------------------------------------------------------------
# Deployment (spec 8.1)
# ---------------------------------------------------------------------------


def _ed25519(rng: HmacDrbg) -> ed25519.Ed25519PrivateKey:
    return ed25519.Ed25519PrivateKey.from_private_bytes(rng.random_bytes(32))


def _name(common: str, serial: str | None = None) -> x509.Name:
    attributes = [x509.NameAttribute(NameOID.ORGANIZATION_NAME, "USaPP Role Meters Ltd"),
                  x509.NameAttribute(NameOID.COMMON_NAME, common)]
    if serial is not None:
        attributes.append(x509.NameAttribute(NameOID.SERIAL_NUMBER, serial))
    return x509.Name(attributes)


def _certificate(subject: x509.Name, public_key: ed25519.Ed25519PublicKey, issuer: x509.Name,
                 signing_key: ed25519.Ed25519PrivateKey, number: int, ca: bool) -> bytes:
    builder = (x509.CertificateBuilder().subject_name(subject).issuer_name(issuer).public_key(public_key)
               .serial_number(number).not_valid_before(NOT_BEFORE).not_valid_after(NOT_AFTER)
               .add_extension(x509.BasicConstraints(ca=ca, path_length=0 if ca else None), critical=True)
               .add_extension(x509.KeyUsage(
                   digital_signature=not ca, content_commitment=False, key_encipherment=False,
                   data_encipherment=False, key_agreement=False, key_cert_sign=ca, crl_sign=ca,
                   encipher_only=False, decipher_only=False), critical=True))
    if not ca:
        builder = builder.add_extension(x509.ExtendedKeyUsage([iss.ROLE_OIDS["meter"]]), critical=False)
    return builder.sign(signing_key, None).public_bytes(serialization.Encoding.DER)


def node_id(node: int) -> str:
    return f"pkg-{node}"


def device_id(index: int) -> str:
    return f"device-{index}"


def serial_of(index: int) -> str:
    return f"SM-{index:06d}"


SUITES = (bf_bls12.SUITE, ECCSI_SUITE)
"""The suites a deployment can issue: the BLS12-381 BF suite t-of-n (10.1-10.3, the default) or the
ECCSI/SAKKE suite from one KMS (10.4; SAKKE's half cannot be split, 10.5.4)."""


def deploy(seed: str, nodes: int | None = None, threshold: int | None = None, devices: int = 2,
           epoch: int | None = None, now: int = NOW, challenge_lifetime: int = iss.DEFAULT_CHALLENGE_LIFETIME,
           **options: Any) -> Deployment:
    """Spec 8.1: the nodes' keys, the manufacturer root, every device's key and certificate.

    Option ``suite`` (specs/issuance.md 3.2) is ``usapp-bf-ibe-bls12381-v1`` (the default: a DKG of ``nodes``
    nodes, default 3, threshold default 2, epoch default 7) or ``usapp-eccsi-sakke-p256-p1-v1`` (one KMS:
    nodes and threshold 1; epoch default the month the PKG issues on the day of ``now``, 10.4.1).
    Draws from HMAC_DRBG("usapp-role-init/issuance/" || seed), in order: the DKG's dealings (BLS12-381)
    or the KSAK then z (RandomRange(1, q) of P-256, RandomRange(2, q) of SAKKE); the root's Ed25519
    key (32 bytes); each device's Ed25519 key (32 bytes)."""
    suite = options.pop("suite", bf_bls12.SUITE)
    if options:
        raise ParameterError(f"unknown issuance option(s): {', '.join(sorted(options))}")
    if suite not in SUITES:
        raise ParameterError(f"option suite must be one of {', '.join(SUITES)}")
    single = suite == ECCSI_SUITE
    nodes = (1 if single else 3) if nodes is None else nodes
    threshold = (1 if single else 2) if threshold is None else threshold
    if epoch is None:
        epoch = ie.pkg_epoch_on(dt.datetime.fromtimestamp(now, dt.timezone.utc).date()) if single and \
            type(now) is int and 0 <= now <= iss.MAX_TIME else EPOCH
    for name, value, low, high in (("nodes", nodes, 1, 1 if single else MAX_NODES),
                                   ("threshold", threshold, 1, nodes),
                                   ("devices", devices, 0, MAX_DEVICES),
                                   ("epoch", epoch, 0, ie.MAX_SUITE_EPOCH - 1 if single else iss.MAX_EPOCH),
                                   ("now", now, 0, iss.MAX_TIME), ("challenge_lifetime", challenge_lifetime, 1,
                                                                   iss.MAX_TIME)):
        if type(value) is not int or not low <= value <= high:
            raise ParameterError(f"option {name} must be an integer in [{low}, {high}]"
                                 + (f" with suite {suite} (one KMS: specs/issuance.md 10.5.4)" if single else ""))
    rng = HmacDrbg.from_seed(f"usapp-role-init/{PROTOCOL}/{seed}")
    numbers = list(range(1, nodes + 1))
    if single:
        return _deploy_eccsi(rng, devices, epoch, now, challenge_lifetime)
    context = f"usapp-role-init/{PROTOCOL}/{seed}".encode()
    dealings = [bf_bls12.deal(i, threshold, numbers, rng, context) for i in numbers]
    key = bf_bls12.combine_dealings(dealings, threshold, numbers, context)
    root_key = _ed25519(rng)
    root_name = _name("USaPP Role Meters Root CA")
    root = _certificate(root_name, root_key.public_key(), root_name, root_key, 1, True)
    anchors: list[object] = [{"certificate": root, "roles": ["meter"], "namespace": NAMESPACE}]
    parties: dict[str, tuple[str, dict[str, object]]] = {}
    for i in numbers:
        share = bf_bls12.node_secret(dealings, i).to_bytes(32, "big")
        parties[node_id(i)] = ("pkg", {"node": i, "share": share, "anchors": anchors, "epoch": epoch, "now": now,
                                       "challenge_lifetime": challenge_lifetime,
                                       "max_outstanding": iss.DEFAULT_MAX_OUTSTANDING})
    node_list: list[object] = [{"node": i, "id": node_id(i), "verification_key": key.verification_keys[i].to_bytes()}
                               for i in numbers]
    for j in range(1, devices + 1):
        device_key = _ed25519(rng)
        cert = _certificate(_name(f"meter {serial_of(j)}", serial_of(j)), device_key.public_key(), root_name,
                            root_key, 100 + j, False)
        parties[device_id(j)] = ("device", {
            "namespace": NAMESPACE, "serial": serial_of(j), "role": "meter", "suite": bf_bls12.SUITE,
            "device_key": device_key.private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.PKCS8,
                                                   serialization.NoEncryption()),
            "chain": [cert], "threshold": threshold, "p_pub": key.params.to_bytes(), "nodes": node_list})
    public: dict[str, object] = {"p_pub": key.params.to_bytes(), "threshold": threshold, "nodes": numbers,
                                 "epoch": epoch, "now": now}
    return Deployment(PROTOCOL, parties, public)


def _root(rng: HmacDrbg) -> tuple[ed25519.Ed25519PrivateKey, x509.Name, bytes]:
    root_key = _ed25519(rng)
    root_name = _name("USaPP Role Meters Root CA")
    return root_key, root_name, _certificate(root_name, root_key.public_key(), root_name, root_key, 1, True)


def device_credentials(rng: HmacDrbg, index: int, serial: str, root_key: ed25519.Ed25519PrivateKey,
                       root_name: x509.Name) -> tuple[bytes, bytes]:
    """Device ``index``'s PKCS#8 Ed25519 key (32 bytes drawn from ``rng``) and its certificate (number
    100 + index) for role meter and ``serial`` under the root."""
    device_key = _ed25519(rng)
    cert = _certificate(_name(f"meter {serial}", serial), device_key.public_key(), root_name, root_key, 100 + index,
                        False)
    return device_key.private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.PKCS8,
                                    serialization.NoEncryption()), cert


def _deploy_eccsi(rng: HmacDrbg, devices: int, epoch: int, now: int, challenge_lifetime: int) -> Deployment:
    """Spec 8.1 with the ECCSI/SAKKE suite (specs/issuance.md 10.4): one PKG holding the KSAK and z."""
    kms = ie.EccsiSakkeExtractor(eccsi.KeyGen(rng), sakke.KeyGen(PS1, rng))
    root_key, root_name, root = _root(rng)
    anchors: list[object] = [{"certificate": root, "roles": ["meter"], "namespace": NAMESPACE}]
    parties: dict[str, tuple[str, dict[str, object]]] = {node_id(1): ("pkg", {
        "node": 1, "share": eccsi.I2OSP_N(kms.eccsi_kms.KSAK), "anchors": anchors, "epoch": epoch, "now": now,
        "challenge_lifetime": challenge_lifetime, "max_outstanding": iss.DEFAULT_MAX_OUTSTANDING,
        "suite": ECCSI_SUITE, "z": PS1.encode_fp(kms.sakke_kms.z)})}
    publics = kms.KPAK + kms.Z
    for j in range(1, devices + 1):
        device_key, cert = device_credentials(rng, j, serial_of(j), root_key, root_name)
        parties[device_id(j)] = ("device", {
            "namespace": NAMESPACE, "serial": serial_of(j), "role": "meter", "suite": ECCSI_SUITE,
            "device_key": device_key, "chain": [cert], "threshold": 1, "p_pub": publics,
            "nodes": [{"node": 1, "id": node_id(1), "verification_key": b""}]})
    public: dict[str, object] = {"p_pub": publics, "threshold": 1, "nodes": [1], "epoch": epoch, "now": now,
                                 "suite": ECCSI_SUITE}
    return Deployment(PROTOCOL, parties, public)


def enroll_in_process(kms: ie.EccsiSakkeExtractor, rng: HmacDrbg, serial: str, epochs: list[int], now: int
                      ) -> list[iss.IssuedKey]:
    """A device enrolled for the ECCSI/SAKKE keys of ``epochs`` through the issuance protocol itself
    (specs/issuance.md sections 5 to 7 and 10.4: the PKG's certificate and signature checks, HPKE
    delivery, the device's check of 10.4.6), in process: for the deployments of other protocols
    whose parties hold such keys (the integrity roles' ECCSI meters).  Draws from ``rng``: the root's
    and the device's Ed25519 keys (32 bytes each), then per epoch the challenge nonce, the device's
    HPKE ikm and the PKG's ikmE (32 bytes each)."""
    root_key, root_name, root = _root(rng)
    device_key, cert = device_credentials(rng, 1, serial, root_key, root_name)
    anchor = iss.TrustAnchor(root, frozenset({"meter"}), NAMESPACE)
    pkg = iss.Pkg(iss.PkgState((anchor,), epochs[0]), kms)
    meter = iss.Meter(iss.MeterState(NAMESPACE, serial, "meter", ECCSI_SUITE, device_key, (cert,)),
                      ie.eccsi_sakke_key_verifier(kms.KPAK, kms.Z))
    issued = []
    for epoch in epochs:
        if epoch != pkg.state.epoch:
            pkg.advance_epoch(epoch)
        issued.append(meter.receive(pkg.enroll(meter.enroll(pkg.challenge(now, rng), rng), now, rng)))
    return issued


# ---------------------------------------------------------------------------
# The scenario (spec 8.5)
# ---------------------------------------------------------------------------


def eccsi_kms(deployment: Deployment) -> ie.EccsiSakkeExtractor:
    """The one KMS of an ECCSI/SAKKE deployment, from its PKG's record (the harness knows the deployment)."""
    record = next(record for role, record in deployment.parties.values() if role == "pkg")
    cache: dict[str, object] = {}
    return _eccsi_extractor({1: record["node"], 2: record["share"], 6: record["suite"], 7: record["z"]}, cache)


def expected_key(deployment: Deployment, identity: bytes) -> bytes:
    """What the harness expects a device to hold: the shares of nodes 1..t combined (issuance 10.3), or
    the one KMS's extraction (10.4.5)."""
    if deployment.public.get("suite") == ECCSI_SUITE:
        return eccsi_kms(deployment).extract(identity)
    device = next(record for role, record in deployment.parties.values() if role == "device")
    config = {7: device["threshold"], 8: device["p_pub"], 9: [[n["node"], n["id"], n["verification_key"]]
                                                            for n in device["nodes"]]}  # type: ignore[attr-defined]
    key = _distributed_key(config)
    shares = {}
    for role, record in deployment.parties.values():
        node = record.get("node")
        if role == "pkg" and isinstance(node, int) and node <= key.threshold:
            share = record["share"]
            if not isinstance(share, bytes):
                raise ParameterError("a pkg record's share is bytes")
            shares[node] = bf_bls12.extract_share(int.from_bytes(share, "big"), identity)
    return bf_bls12.combine_key_shares(key, identity, shares).to_bytes()


def env(to: str, kind: str, body: dict) -> Envelope:
    """An input from the environment (spec 8.3)."""
    return Envelope(wire.HARNESS, to, kind, cbor.encode(body))


def read_report(message: Envelope) -> dict:
    """The body of a device's ``enrolled`` report (spec 8.2)."""
    return cbor.decode_map(message.body, {1: bytes, 2: int, 3: bytes, 4: list}, name=ENROLLED)


def enroll(net: harness.Network, device: str, epoch: int, now: int) -> dict | None:
    """env.enroll to ``device`` and everything it causes; the device's report (None if it made none)."""
    reports = [m for m in net.deliver([env(device, "env.enroll", {1: epoch, 2: now})]) if m.type == ENROLLED]
    return read_report(reports[-1]) if reports else None


def read_log(net: harness.Network, node: str, query: int) -> tuple[tuple[iss.LogEntry, ...], int]:
    """env.log to ``node``: its verified log (VerificationError if the chain is broken) and its epoch."""
    answer = net.send(env(node, "env.log", {1: query}))
    m = cbor.decode_map(answer[0].body, {1: list, 2: bytes, 3: int}, name=LOG, max_size=wire.MAX_BODY_BYTES)
    return iss.verify_log(m[1], expected_head=m[2]), m[3]


def deliveries(transcript: list[Envelope], node: str) -> list[bytes]:
    """The identities of every key-delivery ``node`` sent, in order."""
    return [iss.decode_delivery(m.body).identity for m in transcript if m.sender == node and m.type == DELIVERY]


def _eccsi_key_works(public: dict[str, object], identity: bytes, key: bytes, label: str) -> bool:
    """Spec 10.4.6 and the done-when of issue 21: the key passes the device's check; an ECCSI signature
    by it verifies with the KPAK and the identifier alone, and not for the next epoch's identifier; a
    SAKKE encapsulation to the identifier decapsulates.  The harness's own draws come from a DRBG of the
    device's name."""
    publics = public["p_pub"]
    if not isinstance(publics, bytes):
        return False
    KPAK, Z = publics[:eccsi.POINT_BYTES], publics[eccsi.POINT_BYTES:]
    keys = ie.check_key(KPAK, Z, identity, key)
    rng = HmacDrbg.from_seed(f"usapp-role-scenario/{PROTOCOL}/{label}")
    ID = keys.identifier.encode()
    message = b"usapp interop: " + identity
    eccsi.Verify(KPAK, ID, message, eccsi.Sign(keys.signing, message, rng))
    parsed = iss.Identity.parse(identity)
    later = ie.identifier_of(iss.Identity(parsed.namespace, parsed.serial, parsed.role, parsed.epoch + 1).to_bytes())
    try:
        eccsi.Verify(KPAK, later.encode(), message, eccsi.Sign(keys.signing, message, rng))
        return False
    except UsappError:
        pass
    ssv, data = sakke.Encapsulate(PS1, Z, ID, rng)
    return sakke.Decapsulate(keys.receiver, data) == ssv


def scenario(net: harness.Network, deployment: Deployment, checks: harness.Checks) -> dict:
    """Spec 8.5: enroll every device with the t-of-n PKG, then replays, revocation, re-enrollment, epochs."""
    public = deployment.public
    epoch, now, t = int(public["epoch"]), int(public["now"]), int(public["threshold"])  # type: ignore[call-overload]
    nodes = sorted(i for i, (role, _) in deployment.parties.items() if role == "pkg")
    devices = sorted(i for i, (role, _) in deployment.parties.items() if role == "device")
    queries = iter(range(1, 1 << 30))
    net.deliver([env(n, "env.tick", {1: now}) for n in nodes])
    keys: dict[str, bytes] = {}
    for index, device in enumerate(devices, start=1):
        report = enroll(net, device, epoch, now + index)
        identity = iss.Identity(NAMESPACE, serial_of(int(device.rsplit("-", 1)[1])), "meter", epoch).to_bytes()
        if not checks.check(f"{device} holds the key of {identity.decode()}", report is not None
                            and report[1] == identity, f"report {report!r:.200}"):
            continue
        if report is None:
            continue
        expected = expected_key(deployment, identity)
        keys[device] = report[3]
        if public.get("suite") == ECCSI_SUITE:
            checks.check(f"{device}: its key is the KMS's ECCSI/SAKKE key for its identifier, signs and decapsulates",
                         report[4] == [1] and report[3] == hashing.sha256(expected).digest()
                         and _eccsi_key_works(public, identity, expected, device), f"nodes {report[4]}")
            continue
        checks.check(f"{device}: its key is combined from {t} node shares and verifies under P_pub",
                     len(report[4]) == t and report[3] == hashing.sha256(expected).digest()
                     and iss.bls12_key_verifier(bf_bls12.PublicParams.from_bytes(public["p_pub"]))(  # type: ignore[arg-type]
                         identity, expected), f"nodes {report[4]}")

    def logs_name_each_issuance_once(label: str) -> None:
        for node in nodes:
            entries, _ = read_log(net, node, next(queries))
            logged = sorted(e.identity for e in entries)
            checks.check(f"{label}: {node}'s log verifies and names each of its {len(logged)} issuances once",
                         logged == sorted(deliveries(net.transcript, node)),
                         f"log {len(logged)} entries, {len(deliveries(net.transcript, node))} deliveries")

    logs_name_each_issuance_once("after enrollment")
    if not devices:
        return {"nodes": len(nodes), "devices": 0, "messages": len(net.transcript)}
    first, last = devices[0], devices[-1]
    enrollment = next(m for m in net.transcript if m.type == ENROLLMENT and m.sender == first)
    before = len(deliveries(net.transcript, enrollment.to))
    again = net.send(enrollment)
    checks.check("a re-sent enrollment line is answered from the journal: the same delivery, no new issuance",
                 len(again) == 1 and again[0].body == next(m.body for m in net.transcript if m.type == DELIVERY
                                                           and m.to == first and m.sender == enrollment.to)
                 and len(read_log(net, enrollment.to, next(queries))[0]) == before)
    checks.refused("an enrollment replayed by another party is refused",
                   lambda: net.send(Envelope("eavesdropper", enrollment.to, ENROLLMENT, enrollment.body)),
                   "ReplayError")
    serial = serial_of(int(last.rsplit("-", 1)[1]))
    net.deliver([env(n, "env.revoke", {1: NAMESPACE, 2: serial}) for n in nodes])
    checks.refused(f"{last}, revoked, is refused a new key", lambda: enroll(net, last, epoch, now + 100),
                   "VerificationError")
    report = enroll(net, first, epoch, now + 200)
    checks.check(f"{first} enrolling again in epoch {epoch} gets the same key (extraction is deterministic)",
                 report is not None and report[3] == keys.get(first))
    logs_name_each_issuance_once("after re-enrollment")
    net.deliver([env(n, "env.epoch", {1: epoch + 1}) for n in nodes])
    checks.refused(f"an enrollment for epoch {epoch} is refused after the nodes move to epoch {epoch + 1}",
                   lambda: net.send(Envelope("eavesdropper", enrollment.to, ENROLLMENT, enrollment.body)),
                   "StateError")
    checks.refused(f"{first} refuses a challenge for epoch {epoch + 1} when asked to enroll for {epoch}",
                   lambda: enroll(net, first, epoch, now + 300), "StateError")
    report = enroll(net, first, epoch + 1, now + 400)
    checks.check(f"{first} gets a new key for epoch {epoch + 1}",
                 report is not None and report[2] == epoch + 1 and report[3] != keys.get(first))
    checks.refused(f"{last}, revoked, is refused in epoch {epoch + 1} too",
                   lambda: enroll(net, last, epoch + 1, now + 500), "VerificationError")
    logs_name_each_issuance_once("at the end")
    issued = sum(len(deliveries(net.transcript, n)) for n in nodes)
    return {"nodes": len(nodes), "threshold": t, "devices": len(devices), "issuances": issued,
            "messages": len(net.transcript)}
