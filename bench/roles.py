"""Role processes (specs/roles.md): what durability costs, throughput through a process, state size.

- commit: one input through a party (parse, journal lookup, handle, journal entry, COMMIT) with the
  state file at ``synchronous=FULL`` (what ``usapp role`` uses: the commit is on disk before the
  answer leaves) against the same party at ``synchronous=OFF`` (no fsync), measured in the same run;
  the difference is the durable commit's cost per message.  The handler is a minimal one (one kv
  write), so the figure is the framework's, not a protocol's.
- throughput: signed integrity records sent as lines to a real ``usapp role integrity utility``
  process, one after another (each answered before the next is sent, as the harness does), at
  logs of growing size, against ``integrity.Utility.accept`` on the same records in memory.
- size: each party's state file after a whole ``usapp interop`` run (in process), per meter per day:
  aggregation (a round is a day of 24 hourly readings), integrity (48 half-hourly records a day).
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from protocols import integrity as ig
from protocols.primitives import cbor
from protocols.system.benchmark import BenchConfig, Benchmark, Comparison, Figures, compare, format_columns, spread
from protocols.system.roles import harness, wire
from protocols.system.roles.base import Context, RoleSpec
from protocols.system.roles.process import Party, provision_party
from protocols.system.roles.wire import Envelope


def _toy_provision(ctx: Context, record: dict[str, object]) -> None:
    ctx.put("count", cbor.encode(0))


def _toy_handle(ctx: Context, message: Envelope) -> list[Envelope]:
    count = cbor.decode(ctx.need("count")) + 1
    ctx.put("count", cbor.encode(count))
    return [ctx.send(message.sender, "toy.answer", cbor.encode(count))]


TOY = RoleSpec("integrity", "bench-toy", 1, (), _toy_provision, _toy_handle)


def _party(directory: str, name: str, synchronous: str) -> Party:
    path = os.path.join(directory, f"{name}.sqlite")
    provision_party(TOY, path, name, {})
    party = Party.open(TOY, path, name)
    party.store.db.execute(f"PRAGMA synchronous={synchronous}")
    return party


def _commit(config: BenchConfig, directory: str) -> Comparison:
    full, off = _party(directory, "full", "FULL"), _party(directory, "off", "OFF")
    counters = {"full": 0, "off": 0}

    def send(party: Party, name: str) -> None:
        counters[name] += 1      # a new line each time (a re-sent line would be answered from the journal)
        party.handle(Envelope("env", name, "env.tick", counters[name].to_bytes(8, "big")))

    result = compare("roles: one input through a party, synchronous=FULL (durable)", lambda: send(full, "full"),
                     lambda: send(off, "off"), baseline_name="the same party at synchronous=OFF (no fsync)",
                     repeats=config.repeats, unit="message")
    full.close()
    off.close()
    return result


def _records(count: int) -> tuple[bytes, list[bytes]]:
    key = Ed25519PrivateKey.from_private_bytes(bytes(range(32)))
    public = key.public_key().public_bytes_raw()
    return public, [ig.encode_record(key, b"meter-000", 1_700_000_000 + 1800 * i, i, [i, 2 * i]).to_bytes()
                    for i in range(count)]


def _throughput(config: BenchConfig, directory: str, sizes: tuple[int, ...], batch: int) -> Figures:
    from protocols.system.roles import integrity as roles_integrity

    deployment = roles_integrity.deploy("bench", meters=1, records=1, cheat_at=-1)
    meter_record = deployment.parties["meter-000"][1]
    key = Ed25519PrivateKey.from_private_bytes(meter_record["device_key"])  # type: ignore[arg-type]
    records = [ig.encode_record(key, b"meter-000", 1_700_000_000 + 1800 * i, i, [i, 2 * i]).to_bytes()
               for i in range(max(sizes) + batch)]
    rows, values = [], []
    for size in sizes:
        run_dir = os.path.join(directory, f"throughput-{size}")
        os.makedirs(run_dir)
        from protocols.system.roles.process import write_deployment
        write_deployment(deployment, run_dir)
        state = os.path.join(run_dir, "utility.sqlite")
        command = harness.role_command("integrity", "utility", state, "utility", None)
        endpoint = harness.ProcessEndpoint("utility", command)
        endpoint.exchange(Envelope("env", "utility", "env.clock", cbor.encode({1: 1_800_000_000})))
        config.progress(f"roles: filling a utility log to {size:,} records")
        for data in records[:size]:
            endpoint.exchange(Envelope("meter-000", "utility", "record", data))
        samples = []
        for repeat in range(config.repeats):
            chunk = records[size + repeat * batch // config.repeats: size + (repeat + 1) * batch // config.repeats]
            start = time.perf_counter()
            for data in chunk:
                outputs, status = endpoint.exchange(Envelope("meter-000", "utility", "record", data))
                if status.type != wire.OK:
                    raise RuntimeError(f"the utility refused a record: {wire.read_refusal(status.body)}")
            samples.append(len(chunk) / (time.perf_counter() - start))
        endpoint.close()
        public = key.public_key().public_bytes_raw()
        memory = ig.Utility(ig.UtilityState(bytes(32)))
        memory.register(b"meter-000", public)
        for data in records[:size]:
            memory.accept(data, 1_800_000_000)
        start = time.perf_counter()
        for data in records[size:size + batch]:
            memory.accept(data, 1_800_000_000)
        in_memory = batch / (time.perf_counter() - start)
        s = spread(samples)
        values.append({"log_records": size, "messages_per_s": s, "in_memory_per_s": in_memory})
        rows.append((f"{size:,}", f"{s['median']:.0f} ({s['min']:.0f}..{s['max']:.0f})", f"{in_memory:.0f}",
                     f"{in_memory / s['median']:.1f}"))
    text = "\n".join(format_columns(
        ("log records", "records/s through the process (median, min..max)", "in memory/s", "ratio"), rows))
    return Figures("roles: integrity records through a utility process", {"throughput": values}, text + "\n")


def _file_bytes(path: str) -> int:
    import sqlite3

    db = sqlite3.connect(path)
    try:
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        pages = db.execute("PRAGMA page_count").fetchone()[0] - db.execute("PRAGMA freelist_count").fetchone()[0]
        return int(pages * db.execute("PRAGMA page_size").fetchone()[0])
    finally:
        db.close()


def _sizes(config: BenchConfig, directory: str) -> Figures:
    rows, values = [], {}
    for protocol, options, days in (("aggregation", {}, 2), ("integrity", {"meters": 2, "records": 48}, 1)):
        config.progress(f"roles: a whole {protocol} run for the state file sizes")
        before_dir, after_dir = os.path.join(directory, f"{protocol}-init"), os.path.join(directory, protocol)
        from protocols.system.roles.process import protocol_module, write_deployment
        deployment = protocol_module(protocol).deploy("bench", **options)
        write_deployment(deployment, before_dir)
        checks, network, _ = harness.run_scenario(protocol, after_dir, seed="bench", init_seed="bench",
                                                  in_process=True, options=options)
        meters = [i for i, (role, _) in deployment.parties.items() if role == "meter"]
        for ident, (role, _) in sorted(deployment.parties.items()):
            if role == "meter" and ident != meters[0]:
                continue
            grown = (_file_bytes(os.path.join(after_dir, f"{ident}.sqlite"))
                     - _file_bytes(os.path.join(before_dir, f"{ident}.sqlite")))
            share = len(meters) if role != "meter" else 1
            per = grown / days / share
            values[f"{protocol}/{ident}"] = {"bytes_per_meter_per_day": per, "meters": len(meters), "days": days,
                                            "checks_passed": checks.ok}
            rows.append((protocol, f"{role} ({ident})", f"{per:,.0f}",
                         f"{len(meters)} meters, {days} day(s)"))
    text = "\n".join(format_columns(("protocol", "party", "state bytes per meter per day", "run"),
                                    rows))
    return Figures("roles: state file growth", values, text + "\n")


def run(config: BenchConfig) -> list[Comparison | Figures]:
    with tempfile.TemporaryDirectory(prefix="usapp-bench-roles-") as directory:
        results: list[Comparison | Figures] = [_commit(config, directory)]
        sizes = (100, 1_000) if config.quick else (100, 1_000, 10_000)
        results.append(_throughput(config, directory, sizes, 60 if config.quick else 300))
        results.append(_sizes(config, directory))
    return results


BENCHMARK = Benchmark(
    name="roles",
    description="role processes: the durable commit per message, records/s through a utility process, "
                "state file bytes per meter per day",
    run=run,
)
