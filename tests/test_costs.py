"""Per-role traces and the golden file of the meter-side steps (specs/costs.md section 3)."""

from __future__ import annotations

import json
import os
import sys
import tempfile

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from protocols.errors import ParameterError, StateError
from protocols.primitives import opcount
from protocols.system import costs
from protocols.system.roles import integrity as integrity_roles
from protocols.system.roles import store as store_mod
from protocols.system.roles.store import Identity, Store

SMALL_INTEGRITY = {"meters": 2, "records": 4, "cheat_at": 1}


def _sample(step: str, counts: dict[str, int], seconds: float, received: int, sent: int,
            role: str = "meter") -> costs.Sample:
    return costs.Sample("integrity", role, step, counts, seconds, received, sent)


# --------------------------------------------------------------------------
# Aggregation of samples (section 3.2)


def test_aggregate_gives_per_invocation_means_and_counts_invocations() -> None:
    samples = [_sample("receipt", {"hash_block:sha256": 2, "state_commit": 1}, 0.002, 100, 10),
               _sample("receipt", {"hash_block:sha256": 4, "state_commit": 1}, 0.004, 120, 0),
               _sample("probe", {"state_commit": 1}, 0.001, 5, 7),
               _sample("receipt", {"state_commit": 1}, 0.001, 1, 1, role="utility")]
    traces = {t.key: t for t in costs.aggregate(samples)}
    receipt = traces[("integrity", "meter", "receipt")]
    assert receipt.invocations == 2
    assert receipt.counts == {"hash_block:sha256": 3.0, "state_commit": 1.0}
    assert receipt.seconds == pytest.approx(0.003)
    assert (receipt.bytes_received, receipt.bytes_sent) == (110.0, 5.0)
    assert traces[("integrity", "utility", "receipt")].invocations == 1
    assert len(traces) == 3


def test_aggregate_drops_zero_counts() -> None:
    (trace,) = costs.aggregate([_sample("probe", {"random_byte": 0, "state_commit": 1}, 0.001, 0, 0)])
    assert trace.counts == {"state_commit": 1.0}


# --------------------------------------------------------------------------
# The state commit counted by the store (section 3.1)


def test_store_counts_one_commit_its_statements_and_the_bytes_it_writes(tmp_path) -> None:
    store = Store.create(str(tmp_path / "s.sqlite"), Identity("p", "r", "i", 1), ())
    try:
        with store.transaction():
            store.put("outside", b"not counted")
        with opcount.counting() as counts:
            with store.transaction():
                store.put("a", b"x" * 20000)
                store.put("b'c", b"")
        assert counts == {"state_commit": 1, "state_statement": 4, "state_byte": 1 + 20000 + 3}
        with opcount.counting() as refused:
            with pytest.raises(KeyError):
                with store.transaction():
                    store.put("b", b"y" * 100)
                    raise KeyError("a refused input")
        assert refused == {"state_statement": 3}               # BEGIN, the upsert, ROLLBACK
        with opcount.counting() as sql:
            with store.transaction():
                store.db.execute("CREATE TABLE t (a INTEGER, b TEXT) STRICT")
                store.db.execute("INSERT INTO t VALUES (?, ?)", (12345678901, "h\u00e9"))
                store.db.execute("DELETE FROM t WHERE a = 1")
        assert sql["state_byte"] == store_mod.NUMBER_BYTES + 3    # a number and 3 UTF-8 bytes; DELETE writes none
        assert sql["state_statement"] == 5
        with store.transaction():
            store.put("after", b"the callback is gone")   # no counter open: nothing recorded, no error
    finally:
        store.close()


_VALUES = st.one_of(st.binary(max_size=300),       # text as a role stores it: UTF-8, so no lone surrogates
                    st.text(st.characters(blacklist_characters="\x00", blacklist_categories=("Cs",)), max_size=60),
                    st.integers(-2**63, 2**63 - 1),
                    st.floats(allow_nan=False, allow_infinity=False))


@settings(max_examples=60, deadline=None)
@given(rows=st.lists(st.tuples(_VALUES, _VALUES), min_size=1, max_size=5))
def test_state_byte_is_the_bytes_of_the_values_written(rows) -> None:
    """Property: whatever the values (quotes, x before a quote, digits in texts; no NUL, which SQLite's
    expanded text stops at), ``state_byte`` of an
    INSERT is the sum of their sizes: blob and UTF-8 text lengths, 8 per number."""
    def size(value: object) -> int:
        if isinstance(value, bytes):
            return len(value)
        if isinstance(value, str):
            return len(value.encode())
        return store_mod.NUMBER_BYTES

    with tempfile.TemporaryDirectory() as directory:
        store = Store.create(os.path.join(directory, "s.sqlite"), Identity("p", "r", "i", 1),
                             ("CREATE TABLE t (a ANY, b ANY) STRICT",))
        try:
            with opcount.counting() as counts:
                with store.transaction():
                    store.db.executemany("INSERT INTO t VALUES (?, ?)", rows)
        finally:
            store.close()
    assert counts["state_byte"] == sum(size(a) + size(b) for a, b in rows)


# --------------------------------------------------------------------------
# A traced run (section 3.1)


def test_trace_of_a_real_run_counts_each_step() -> None:
    measured = costs.trace_protocol("integrity", timed_runs=2, options=SMALL_INTEGRITY)
    traces = {t.key: t for t in measured.traces}
    meter = {t.step for t in measured.traces if t.role == "meter"}
    assert {"env.reading", "receipt", "inclusion"} <= meter
    for trace in measured.traces:
        assert trace.invocations >= 1 and trace.seconds > 0
        assert len(measured.run_seconds[trace.key]) == 2
        if trace.step.endswith(costs.REFUSED_SUFFIX):
            assert "state_commit" not in trace.counts
        else:
            assert trace.counts["state_commit"] == 1
    reading = traces[("integrity", "meter", "env.reading")]
    assert reading.bytes_received > 0 and reading.bytes_sent > 0
    assert any(t.step.endswith(costs.REFUSED_SUFFIX) for t in measured.traces)   # the cheating utility


def test_align_names_timed_samples_from_the_counted_run() -> None:
    counted = [_sample("receipt", {"state_commit": 1}, 0.5, 1, 2), _sample("receipt (re-sent)", {}, 0.5, 1, 2),
               _sample("probe (refused)", {"hash_block:sha256": 1}, 0.5, 3, 0)]
    timed = [_sample("receipt", {}, 0.1, 1, 2), _sample("receipt", {}, 0.2, 1, 2),
             _sample("probe (refused)", {}, 0.3, 3, 0)]
    aligned = costs.align(counted, timed)
    assert [(s.step, s.seconds, dict(s.counts)) for s in aligned] == [
        ("receipt", 0.1, {"state_commit": 1}), ("receipt (re-sent)", 0.2, {}),
        ("probe (refused)", 0.3, {"hash_block:sha256": 1})]
    with pytest.raises(StateError, match="diverged"):
        costs.align(counted, timed[::-1])
    with pytest.raises(StateError, match="handled"):
        costs.align(counted, timed[:2])


def test_a_failed_scenario_is_not_traced(monkeypatch) -> None:
    def broken(net, deployment, checks) -> dict:
        checks.check("a claim that does not hold", False)
        return {}

    monkeypatch.setattr(integrity_roles, "scenario", broken)
    with pytest.raises(StateError, match="failed its checks"):
        costs.trace_protocol("integrity", options=SMALL_INTEGRITY)


def test_bad_arguments_are_refused() -> None:
    with pytest.raises(ParameterError):
        costs.trace_protocol("telepathy")
    with pytest.raises(ParameterError):
        costs.trace_protocol("integrity", timed_runs=-1)


# --------------------------------------------------------------------------
# The golden file (section 3.3)


def _doc(counts: dict[str, int], invocations: int = 3, step: str = "receipt") -> dict:
    return {"steps": [{"protocol": "integrity", "role": "meter", "step": step, "invocations": invocations,
                       "counts": counts, "bytes_received": 136, "bytes_sent": 0}]}


def test_golden_differences_name_the_step_and_the_key() -> None:
    old = _doc({"hash_block:sha256": 4, "state_commit": 1})
    assert costs.golden_differences(old, old) == []
    more = _doc({"hash_block:sha256": 5, "state_commit": 1, "ed25519_sign": 1})
    assert costs.golden_differences(old, more) == [
        "integrity/meter/receipt: count ed25519_sign 0 -> 1",
        "integrity/meter/receipt: count hash_block:sha256 4 -> 5"]
    assert costs.golden_differences(old, _doc({"hash_block:sha256": 4, "state_commit": 1}, 4)) == [
        "integrity/meter/receipt: invocations 3 -> 4"]
    moved = _doc({"state_commit": 1}, step="probe")
    assert costs.golden_differences(old, moved) == ["integrity/meter/probe: new step",
                                                    "integrity/meter/receipt: step no longer happens"]
    with pytest.raises(ParameterError):
        costs.golden_differences({}, old)


def test_python_calls_are_counted_and_the_previous_profiler_restored() -> None:
    def f() -> int:
        return 1

    def outer(frame, event, arg) -> None:
        return None

    sys.setprofile(outer)
    try:
        with opcount.counting() as counts:
            with costs.python_calls():
                for _ in range(5):
                    f()
        assert sys.getprofile() is outer
    finally:
        sys.setprofile(None)
    assert counts[costs.PYTHON_CALL] >= 5


def test_opcodes_are_counted_only_when_asked_and_the_previous_trace_restored() -> None:
    def f(n: int) -> int:
        return sum(i * i for i in range(n))

    def outer(frame, event, arg):
        return None

    sys.settrace(outer)
    try:
        with opcount.counting() as few:
            with costs.python_calls(opcodes=True):
                f(10)
        with opcount.counting() as many:
            with costs.python_calls(opcodes=True):
                f(1000)
        assert sys.gettrace() is outer
    finally:
        sys.settrace(None)
    assert 0 < few[costs.PYTHON_OPCODE] < many[costs.PYTHON_OPCODE]
    with opcount.counting() as plain:
        with costs.python_calls():
            f(10)
    assert costs.PYTHON_OPCODE not in plain and plain[costs.PYTHON_CALL] >= 1
    assert costs.is_host_only(costs.PYTHON_OPCODE) and costs.is_unpinned(costs.PYTHON_OPCODE)
    # the first-time instructions: a loop's body counts once however often it runs
    assert few[costs.PYTHON_FIRST_OPCODE] == many[costs.PYTHON_FIRST_OPCODE] < few[costs.PYTHON_OPCODE]
    assert costs.PYTHON_FIRST_OPCODE not in plain
    assert costs.is_host_only(costs.PYTHON_FIRST_OPCODE) and costs.is_unpinned(costs.PYTHON_FIRST_OPCODE)


def test_a_p256_conversion_to_affine_coordinates_is_a_host_only_library_call() -> None:
    from protocols.schemes import eccsi

    point = eccsi.base_multiply(5)
    with opcount.counting() as counts:
        with costs.python_calls():
            encoded = eccsi.encode_point(point)
    assert counts[f"{costs.LIBRARY_CALL}:p256_affine"] == 1      # one inversion per encoding, not three
    assert encoded == eccsi.encode_point(eccsi.G() * 5)
    with pytest.raises(ParameterError, match="infinity"):
        eccsi.encode_point(eccsi.G() * eccsi.q)


def test_library_entry_points_are_counted_as_host_only_keys() -> None:
    from cryptography.hazmat.primitives.asymmetric import ed25519, x25519
    assert len(costs.library_entry_points()) == len(costs.LIBRARY_ENTRY_POINTS)
    with opcount.counting() as counts:
        with costs.python_calls():
            x25519.X25519PrivateKey.from_private_bytes(bytes(range(32)))
            ed25519.Ed25519PrivateKey.from_private_bytes(bytes(range(32)))
            ed25519.Ed25519PrivateKey.from_private_bytes(bytes(range(32)))
            x25519.X25519PublicKey.from_public_bytes(bytes(range(32)))   # not an entry point
    assert counts["library_call:x25519_load"] == 1
    assert counts["library_call:ed25519_load"] == 2
    assert all(costs.is_host_only(k) and costs.is_unpinned(k) for k in counts if k.startswith("library_call:"))
    assert not costs.is_host_only("point_decode:ed25519") and costs.is_host_only("state_statement")


def test_golden_leaves_python_calls_out() -> None:
    traces = costs.aggregate([_sample("receipt", {"state_commit": 1, costs.PYTHON_CALL: 900}, 0.1, 1, 2)])
    assert costs.golden(traces)["steps"][0]["counts"] == {"state_commit": 1}


def test_golden_keeps_only_meter_side_steps() -> None:
    traces = costs.aggregate([_sample("receipt", {"state_commit": 1}, 0.1, 1, 2),
                              _sample("record", {"state_commit": 1}, 0.1, 1, 2, role="utility")])
    doc = costs.golden(traces)
    assert [(s["role"], s["step"]) for s in doc["steps"]] == [("meter", "receipt")]
    assert doc["regenerate"] == "python -m protocols.system.costs --write-golden"


@pytest.fixture(scope="module")
def all_traces() -> list[costs.StepTrace]:
    return [t for m in costs.trace_all().values() for t in m.traces]


def test_meter_side_counts_match_the_golden_file(all_traces) -> None:
    """A change that makes a meter do more (or less) work shows here; if it is intended, regenerate the file
    with ``python -m protocols.system.costs --write-golden`` and review its diff."""
    expected = json.loads(costs.GOLDEN_PATH.read_text())
    assert expected["format"] == costs.GOLDEN_FORMAT
    changed = costs.golden_differences(expected, costs.golden(all_traces))
    assert not changed, "meter-side costs changed:\n" + "\n".join(changed)


def test_every_protocol_has_meter_side_steps(all_traces) -> None:
    for protocol, roles in costs.METER_ROLES.items():
        assert any(t.protocol == protocol and t.role in roles for t in all_traces), protocol


def test_the_eccsi_variants_are_traced_with_their_suite(all_traces) -> None:
    """Section 3: the issuance and integrity runs with the ECCSI/SAKKE suite are traced beside the defaults;
    their meter-side steps count the suite's operations, not the default's."""
    assert set(costs.VARIANTS) <= {t.protocol for t in all_traces}
    by_key = {t.key: t.counts for t in all_traces}
    delivery = by_key[("issuance-eccsi", "device", "key-delivery")]
    assert delivery.get("pairing:sakke1024") == 1 and delivery.get("point_mul:p256", 0) >= 1
    assert "pairing:bls12_381" not in delivery
    reading = by_key[("integrity-eccsi", "meter", "env.reading")]
    assert 1 <= reading.get("point_mul_base:p256", 0) < 1.1 and "ed25519_sign" not in reading   # + first load
    assert costs.base_protocol("integrity-eccsi") == "integrity" and costs.base_protocol("escrow") == "escrow"


def test_write_golden_round_trips() -> None:
    with tempfile.TemporaryDirectory() as directory:
        path = os.path.join(directory, "g.json")
        assert costs.main(["--write-golden", "--golden", path, "--protocol", "integrity"]) == 0
        with open(path) as f:
            doc = json.load(f)
    assert doc["steps"] and all(s["protocol"] == "integrity" and s["role"] == "meter" for s in doc["steps"])


def test_timed_runs_hand_the_empty_party_one_input_after_each_input() -> None:
    """Section 5.2: the probe's committed and refused inputs alternate after every input of a timed run,
    and the speed workload runs after every fourth; the counted run has no probe."""
    measured = costs.trace_protocol("issuance", timed_runs=1)
    inputs = sum(t.invocations for t in measured.traces)
    probes = measured.probe_seconds
    assert len(probes[costs.PROBE_COMMITTED]) + len(probes[costs.PROBE_REFUSED]) == inputs
    assert len(probes[costs.PROBE_SPEED]) == inputs // 4
    assert all(t > 0 for kind in probes.values() for t in kind)
    assert costs.trace_protocol("issuance").probe_seconds == {}
