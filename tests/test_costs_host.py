"""The host model and its check (specs/costs.md section 5), on synthetic kernels and synthetic traces."""

from __future__ import annotations

import pytest

from protocols.errors import ParameterError
from protocols.system import costs, costs_host
from protocols.system.costs_host import Checked, HostProfile


def _kernels(known: dict[str, int]):
    def kernel(key: str):
        if key not in known:
            raise ParameterError(f"no kernel for {key}")
        return lambda: sum(range(50))

    def units(key: str) -> int:
        return known[key]

    return kernel, units


def test_measure_host_measures_kernels_state_and_base(tmp_path) -> None:
    profile = costs_host.measure_host(["fake:a", "fake:b", "missing", "state_commit", "state_byte"],
                                      repeats=2, min_time=0.001, kernels=_kernels({"fake:a": 1, "fake:b": 10}),
                                      directory=str(tmp_path))
    assert set(profile.seconds) == {"fake:a", "fake:b", "state_commit", "state_byte", "state_statement"}
    assert profile.unmeasured == ("missing",)
    assert all(v >= 0 for v in profile.seconds.values()) and profile.base >= 0
    committed = profile.detail["empty_input_counts"][costs.PROBE_COMMITTED]
    refused = profile.detail["empty_input_counts"][costs.PROBE_REFUSED]
    assert committed["state_commit"] == 1 and "state_commit" not in refused
    assert committed["state_statement"] >= 3    # BEGIN, the journal, COMMIT
    assert refused["state_statement"] == 2      # BEGIN, ROLLBACK
    small, large = profile.detail["commit_state_bytes"]
    assert large > small > 0
    assert "probe_input_seconds" not in profile.detail and "speed" not in profile.detail
    assert list(tmp_path.iterdir()) == []            # the kernels' state files are removed


def test_probe_times_from_the_runs_set_the_base_and_the_commit(tmp_path) -> None:
    """Section 5.1: with the empty party's times from the runs, the base is its refused input less that
    input's counts, and the commit what its committed input costs more."""
    probes = {costs.PROBE_REFUSED: [0.004] * 3, costs.PROBE_COMMITTED: [0.010] * 3}
    profile = costs_host.measure_host(["fake:a"], repeats=2, min_time=0.001, kernels=_kernels({"fake:a": 1}),
                                      directory=str(tmp_path), probe_seconds=probes)
    refused = profile.detail["empty_input_counts"][costs.PROBE_REFUSED]
    committed = profile.detail["empty_input_counts"][costs.PROBE_COMMITTED]
    seconds = profile.seconds
    assert profile.base == pytest.approx(0.004 - sum(n * seconds.get(k, 0.0) for k, n in refused.items()))
    rest = sum(n * seconds.get(k, 0.0) for k, n in committed.items() if k != "state_commit")
    assert seconds["state_commit"] == pytest.approx(0.010 - profile.base - rest)
    assert profile.detail["probe_inputs"] == 6 and "speed" not in profile.detail


def test_the_speed_workload_in_the_runs_scales_the_kernel_costs(tmp_path) -> None:
    profile = costs_host.measure_host(["fake:a"], repeats=2, min_time=0.001, kernels=_kernels({"fake:a": 1}),
                                      directory=str(tmp_path), probe_seconds={costs.PROBE_SPEED: [0.5, 1.0, 2.0]})
    speed = profile.detail["speed"]
    before, after = speed["kernels_seconds"]
    assert speed["runs_seconds"] == 1.0
    assert speed["runs_over_kernels"] == pytest.approx(1.0 / before)
    low, high = speed["kernel_paces"]
    assert 0 < low <= high


def test_each_kernel_is_taken_at_the_reference_pace() -> None:
    from protocols.primitives import opcount

    def kernel(key: str):
        return lambda: opcount.record(key)
    plain = costs_host.measure_kernels(["k:a"], (kernel, lambda k: 1), {}, repeats=3, min_time=0.002)[0]["k:a"]
    paced = costs_host.measure_kernels(["k:a"], (kernel, lambda k: 1), {}, repeats=3, min_time=0.002,
                                       pace=lambda: 1000.0)[0]["k:a"]
    assert paced > 100 * plain        # timed while the machine ran 1000x faster than at the reference


def test_python_opcodes_are_priced_on_the_cbor_codec_and_calls_and_cbor_bytes_then_cost_nothing() -> None:
    from protocols.primitives import cbor

    bodies = [cbor.encode({1: i, 2: b"x" * i, 3: [i, i + 1]}) for i in range(20)] + [b"\xff not cbor"]
    seconds = costs_host.measure_python(bodies, repeats=2, min_time=0.001)
    assert set(seconds) == {costs.PYTHON_OPCODE, costs.PYTHON_CALL, *costs_host.CBOR_KEYS}
    assert seconds[costs.PYTHON_OPCODE] > 0
    assert all(seconds[k] == 0 for k in (costs.PYTHON_CALL, *costs_host.CBOR_KEYS))
    assert costs_host.measure_python([b"\xff"], repeats=1, min_time=0.001) == {}


def test_a_kernels_side_counts_are_measured_and_solved_together() -> None:
    from protocols.primitives import opcount

    def kernel(key: str):
        if key == "k:a":
            return lambda: (opcount.record("k:a", 4), opcount.record("k:b"))
        if key == "k:b":
            return lambda: opcount.record("k:b", 2)
        raise ParameterError(key)

    found, unmeasured, counts = costs_host.measure_kernels(["k:a"], (kernel, {"k:a": 4, "k:b": 2}.__getitem__),
                                                            {}, repeats=2, min_time=0.001)
    assert set(found) == {"k:a", "k:b"} and unmeasured == []
    python = costs.PYTHON_KEYS
    assert {k: {op: n for op, n in c.items() if op not in python} for k, c in counts.items()} == {
        "k:a": {"k:a": 4, "k:b": 1}, "k:b": {"k:b": 2}}
    assert counts["k:a"][costs.PYTHON_CALL] >= 1                 # the kernel's own lambda
    assert counts["k:a"][costs.PYTHON_OPCODE] >= counts["k:a"][costs.PYTHON_CALL]
    assert all(v >= 0 for v in found.values())
    assert costs_host.measure_kernels(["x"], (kernel, len), {}, repeats=1, min_time=0.001)[:2] == ({}, ["x"])


def test_a_kernel_with_no_units_is_refused(tmp_path) -> None:
    with pytest.raises(ParameterError, match="units"):
        costs_host.measure_host(["fake:a"], repeats=1, min_time=0.001, kernels=_kernels({"fake:a": 0}),
                                directory=str(tmp_path))


def test_prediction_is_base_plus_counts_times_costs() -> None:
    profile = HostProfile({"a": 2e-3, "b": 1e-6}, base=5e-4)
    assert profile.predict({"a": 2, "b": 1000}) == pytest.approx(5e-4 + 4e-3 + 1e-3)
    assert profile.predict({"a": 0, "c": 0}) == pytest.approx(5e-4)
    assert profile.predict({"c": 1}) is None


def test_first_time_instructions_are_priced_beyond_the_base_inputs_own() -> None:
    first = costs.PYTHON_FIRST_OPCODE
    profile = HostProfile({first: 3e-8, costs.PYTHON_OPCODE: 1e-8}, base=5e-5, base_first_opcodes=1000)
    assert profile.predict({first: 4000, costs.PYTHON_OPCODE: 9000}) == pytest.approx(5e-5 + 3000 * 3e-8 + 9e-5)
    assert profile.predict({first: 600, costs.PYTHON_OPCODE: 900}) == pytest.approx(5e-5 + 9e-6)   # none beyond
    assert profile.to_json()["base_first_opcodes"] == 1000


def _measured(seconds: tuple[float, ...], counts: dict[str, float]) -> dict[str, costs.Measured]:
    trace = costs.StepTrace("integrity", "meter", "receipt", 4, counts, seconds[0], 10, 20)
    return {"integrity": costs.Measured([trace], {trace.key: seconds})}


def test_check_compares_with_the_median_of_the_runs() -> None:
    profile = HostProfile({"a": 1e-3}, base=0.0)
    (row,) = costs_host.check(_measured((0.001, 0.004, 0.002), {"a": 3}), profile)
    assert row.measured == pytest.approx(0.002) and row.runs == 3
    assert row.model_error == pytest.approx(0.5)
    assert row.within_target is False
    (unknown,) = costs_host.check(_measured((0.001,), {"z": 1}), profile)
    assert unknown.model_error is None and unknown.within_target is None


def test_summary_counts_hits_misses_and_unpredicted() -> None:
    trace = costs.StepTrace("p", "r", "s", 1, {}, 1.0, 0, 0)
    rows = [Checked(trace, 1.1, 1.0, 1), Checked(trace, 2.0, 1.0, 1), Checked(trace, None, 1.0, 1),
            Checked(trace, 0.8, 1.0, 1)]
    s = costs_host.summary(rows)
    assert (s["steps"], s["within_25pct"], s["missed"], s["unpredicted"]) == (4, 2, 1, 1)
    assert s["max_abs_error"] == pytest.approx(1.0)


def test_counted_keys_lists_every_nonzero_key() -> None:
    assert costs_host.counted_keys(_measured((1.0,), {"a": 1, "b": 0, "state_commit": 1})) == ["a", "state_commit"]


def test_markdown_has_a_summary_and_a_row_per_step() -> None:
    from protocols.system.costs_report import CostRow

    rows = [CostRow("integrity", "meter", "receipt", "host", 97, 1e6, 0.5, None, 10, 20, measured_ms=0.6,
                    model_error=-1 / 6, meter_side=True),
            CostRow("integrity", "utility", "record", "host", 97, None, None, None, 10, 20, measured_ms=0.4)]
    meta = {"model_check": {"within_25pct": 1, "steps": 2, "median_abs_error": 1 / 6, "max_abs_error": 1 / 6},
            "clock": "perf_counter", "runs": 7}
    text = costs_host.markdown(rows, meta)
    assert text.startswith("1 of 2 steps within 25% (1 of 1 meter-side), median |error| 17%, max 17%")
    assert "| integrity | meter * | receipt | 97 | 0.500 | 0.600 | -17% |" in text
    assert "| integrity | utility | record | 97 | - | 0.400 | - |" in text


def test_pythons_two_prices_solve_the_codec_passes_in_the_runs() -> None:
    a, b = 8e-9, 30e-9                                          # per instruction, per first-time instruction
    passes = [(o * a + f * b, o, f) for o, f in ((1000, 400), (3000, 600), (500, 450), (9000, 900))]
    assert costs_host.python_in_runs(passes) == (pytest.approx(a), pytest.approx(b))
    assert costs_host.python_in_runs([(1e-6, 10, 5), (2e-6, 20, 10)]) is None      # one ratio: undetermined
    assert costs_host.python_in_runs([]) is None
    cheap = [(1e-9, 1000, 10), (5e-6, 10, 100)]                  # a negative price is clamped at 0
    assert min(costs_host.python_in_runs(cheap) or (-1.0,)) >= 0.0


def test_measure_host_prices_python_from_the_codec_passes(tmp_path) -> None:
    from protocols.primitives import cbor

    bodies = [cbor.encode({1: i, 2: [i, i + 1]}) for i in range(10)]
    passes = [(1000 * 8e-9 + 500 * 30e-9, 1000, 500), (4000 * 8e-9 + 700 * 30e-9, 4000, 700)]
    profile = costs_host.measure_host([], repeats=1, min_time=0.001, kernels=(_no_kernel, len), bodies=bodies,
                                      directory=str(tmp_path), codec_passes=passes)
    assert profile.seconds[costs.PYTHON_OPCODE] == pytest.approx(8e-9)
    assert profile.seconds[costs.PYTHON_FIRST_OPCODE] == pytest.approx(30e-9)
    assert profile.detail["python_opcode_kernel"] > 0
    assert profile.detail["codec_passes"]["passes"] == 2
    without = costs_host.measure_host([], repeats=1, min_time=0.001, kernels=(_no_kernel, len), bodies=bodies,
                                      directory=str(tmp_path))
    assert without.seconds[costs.PYTHON_FIRST_OPCODE] == 0.0 and "codec_passes" not in without.detail


def _no_kernel(key: str):
    raise ParameterError(key)
