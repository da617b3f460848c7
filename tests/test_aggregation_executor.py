"""Spec 13: executors, the tree as the partition, failure handling (specs/aggregation.md 13.1-13.4).

The Dask test runs a LocalCluster of 2 workers with processes=False (worker
threads in this process): it starts in about a second and needs no worker
start-up import of the package; the process pool covers separate processes.
"""

from __future__ import annotations

import copy
import dataclasses
import os
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from protocols import aggregation as agg
from protocols.aggregation.city import MeterMessages, utility_round
from protocols.aggregation.executor import InProcess, Outcome, ProcessPool, make_executor, run_tasks
from protocols.aggregation.partition import SubtreeJob, aggregate_tree, cut, fold_subtree, retained_inputs
from protocols.errors import (
    DuplicateContributionError,
    InjectedContributionError,
    ParameterError,
    RecoveryError,
    ReplayError,
)
from protocols.primitives.drbg import HmacDrbg
from protocols.system.neighbourhood import run_round

METERS = 24
FANOUT = 4


@pytest.fixture(scope="module")
def played(paillier_key):
    """One sequential round of 24 meters (two dropped) under a 3-level tree: the reference."""
    meters = [f"m{i:02d}" for i in range(METERS)]
    tree, root = agg.balanced_tree(meters, FANOUT)
    p = agg.provision(paillier_key, meters, tree, root, HmacDrbg.from_seed("tests/executor/hood"), degree=8)
    pristine = copy.deepcopy(p)
    rng = HmacDrbg.from_seed("tests/executor/round")
    dropped = ("m03", "m17")
    readings = {m: [int.from_bytes(rng.random_bytes(4), "big")] for m in meters if m not in dropped}
    transcript = run_round(p, 1, readings, rng, dropped=dropped)
    messages = MeterMessages(1, tuple(transcript.adverts.values()), tuple(transcript.meter_reports.items()),
                             tuple(transcript.commit_signatures.values()), tuple(transcript.responses.values()))
    return pristine, transcript, messages


def replay(played, executor, **options):
    pristine, _, messages = played
    p = copy.deepcopy(pristine)
    return utility_round(p.hood, p.utility, p.aggregators, messages, executor, **options), p


def reference_sent(transcript):
    return ([(f"bundle {m}", raw) for m, raw in transcript.bundles.items()]
            + [(f"aggregate-report {n}", raw) for n, raw in transcript.aggregate_reports.items()]
            + [(f"commit-request {m}", raw) for m, raw in transcript.commit_requests.items()]
            + [(f"unmask-request {m}", raw) for m, raw in transcript.requests.items()])


def test_in_process_replay_equals_the_sequential_round(played):
    _, transcript, _ = played
    out, _ = replay(played, None)
    assert out.result == transcript.result
    assert sorted(out.sent) == sorted(reference_sent(transcript))
    assert out.result.missing == ("m03", "m17")


def test_same_seed_same_bytes_in_process_process_pool_and_dask(played):
    """Spec 13.2: byte-identical sums and transcript whichever executor folds the subtrees."""
    pytest.importorskip("distributed")
    results = {}
    with InProcess() as ex:
        results["inprocess"] = replay(played, ex)[0]
    with ProcessPool(2) as ex:
        results["process"] = replay(played, ex)[0]
    from protocols.aggregation.executor import DaskExecutor
    with DaskExecutor(workers=2, processes=False) as ex:
        results["dask"] = replay(played, ex, depth=2)[0]
    first = results["inprocess"]
    for name, out in results.items():
        assert out.result == first.result, name
        assert out.sent == first.sent, name
        assert out.transcript_digest() == first.transcript_digest(), name
    assert first.result == played[1].result


class DiesOnce:
    """A subtree task whose first run, for one subtree, kills its worker process (os._exit) or raises."""

    def __init__(self, marker: Path, node: str, how: str) -> None:
        self.marker, self.node, self.how = str(marker), node, how

    def __call__(self, job: SubtreeJob):
        if job.node == self.node and not os.path.exists(self.marker):
            Path(self.marker).write_text("died")
            if self.how == "exit":
                os._exit(3)
            raise OSError("worker lost")
        return fold_subtree(job)


class AlwaysDies:
    def __init__(self, node: str) -> None:
        self.node = node

    def __call__(self, job: SubtreeJob):
        if job.node == self.node:
            os._exit(3)
        return fold_subtree(job)


def subtree_jobs(played):
    pristine, _, messages = played
    p = copy.deepcopy(pristine)
    hood = p.hood
    tops = cut(hood, 1)
    jobs = []
    for top in tops:
        nodes = agg.partition.post_order(hood.tree, top)
        below = {c for n in nodes for c in hood.children(n) if c not in hood.tree}
        jobs.append(SubtreeJob(hood, top, 1, tuple(p.aggregators[n] for n in nodes),
                               tuple((m, r) for m, r in messages.reports if m in below)))
    return jobs


def test_a_worker_killed_mid_round_is_retried_with_the_same_result(played, tmp_path):
    """Spec 13.3: a worker process that dies (os._exit) breaks the pool; its tasks run again."""
    jobs = subtree_jobs(played)
    expected = [fold_subtree(job).reports for job in jobs]
    with ProcessPool(2) as ex:
        got = run_tasks(ex, DiesOnce(tmp_path / "marker", jobs[1].node, "exit"), jobs, retries=1)
    assert (tmp_path / "marker").exists()
    assert [r.reports for r in got] == expected


def test_a_worker_that_keeps_dying_abandons_the_round(played):
    jobs = subtree_jobs(played)
    with ProcessPool(2) as ex:
        with pytest.raises(RecoveryError, match="abandoned") as info:
            run_tasks(ex, AlwaysDies(jobs[0].node), jobs, retries=1, labels=[j.node for j in jobs])
    assert type(info.value) is RecoveryError
    assert jobs[0].node in str(info.value)


def test_a_failing_dask_task_is_retried(played, tmp_path):
    pytest.importorskip("distributed")
    from protocols.aggregation.executor import DaskExecutor
    jobs = subtree_jobs(played)
    expected = [fold_subtree(job).reports for job in jobs]
    with DaskExecutor(workers=2, processes=False) as ex:
        got = run_tasks(ex, DiesOnce(tmp_path / "marker", jobs[0].node, "raise"), jobs, retries=1)
    assert [r.reports for r in got] == expected


def test_in_process_failure_without_retries_abandons(played, tmp_path):
    jobs = subtree_jobs(played)
    with pytest.raises(RecoveryError):
        run_tasks(InProcess(), DiesOnce(tmp_path / "m", jobs[0].node, "raise"), jobs, retries=0)


def test_a_protocol_error_in_a_task_is_not_retried(played):
    """A typed error is the round's answer (spec 13.3): it propagates at once, on every executor."""
    pristine, _, messages = played
    p = copy.deepcopy(pristine)
    reports = dict(messages.reports)
    first, second = list(reports)[:2]
    reports[second] = reports[first]  # a report under another meter's slot: its aggregator sees a stranger or a twin
    with ProcessPool(1) as ex:
        with pytest.raises((InjectedContributionError, DuplicateContributionError)):
            aggregate_tree(p.hood, p.aggregators, 1, reports, ex)


def test_late_report_is_refused_and_its_meter_is_missing(played):
    """Spec 13.3: once a subtree has forwarded the round, a late report is a ReplayError."""
    pristine, _, messages = played
    p = copy.deepcopy(pristine)
    reports = dict(messages.reports)
    late_meter = "m05"
    late = reports.pop(late_meter)
    out = aggregate_tree(p.hood, p.aggregators, 1, reports)
    root = agg.messages.AggregateReport.decode(out[p.hood.root], p.hood)
    assert late_meter not in root.covered
    parent = p.hood.parent(late_meter)
    with pytest.raises(ReplayError):
        agg.Aggregator(p.hood, p.aggregators[parent]).aggregate(1, [late])


def test_unknown_sender_is_injected(played):
    pristine, _, messages = played
    p = copy.deepcopy(pristine)
    with pytest.raises(InjectedContributionError):
        aggregate_tree(p.hood, p.aggregators, 1, {"stranger": messages.reports[0][1]})


def test_partitioned_tree_keeps_what_the_audit_needs(played):
    pristine, transcript, messages = played
    p = copy.deepcopy(pristine)
    for depth in (0, 1, 2, 3):
        q = copy.deepcopy(pristine)
        out = aggregate_tree(q.hood, q.aggregators, 1, dict(messages.reports), depth=depth)
        assert out == transcript.aggregate_reports
    aggregate_tree(p.hood, p.aggregators, 1, dict(messages.reports))
    kept = retained_inputs(p.aggregators, 1)
    assert set(kept) == set(transcript.aggregate_reports)
    utility = agg.Utility(p.hood, p.utility)
    rs = copy.deepcopy(transcript.state)
    rs.report = None
    rs = utility.receive(rs, transcript.aggregate_reports[p.hood.root])
    utility.audit(rs, kept)  # every aggregator consistent: no error


def test_cut_and_executor_arguments_are_checked(played):
    hood = played[0].hood
    assert cut(hood, 0) == (hood.root,)
    assert set(cut(hood, 1)) == {c for c in hood.children(hood.root) if c in hood.tree}
    for bad in (-1, "1", 10_000):
        with pytest.raises(ParameterError):
            cut(hood, bad)
    for name, workers in (("inprocess", 2), ("nope", 1), ("process", 0), ("process", "2")):
        with pytest.raises(ParameterError):
            make_executor(name, workers)
    with pytest.raises(ParameterError):
        run_tasks(InProcess(), abs, [1], retries=-1)
    with pytest.raises(ParameterError):
        run_tasks(InProcess(), abs, [1], labels=["a", "b"])
    assert run_tasks(InProcess(), abs, [-1, 2]) == [1, 2]
    assert Outcome(3).failure is None


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_fast_fold_equals_the_general_combine(played, data):
    """Spec 7.3: the aggregator's output laid out from the reports' own encodings is the same bytes
    as the general path, seal(combine(...)), for any subset and order of its meter children."""
    from protocols.aggregation.aggregator import combine, contribution_of
    from protocols.aggregation.schedule import mac_key

    pristine, _, messages = played
    hood = pristine.hood
    reports = dict(messages.reports)
    node = data.draw(st.sampled_from([a for a in hood.tree if all(c in hood.meter_public for c in hood.children(a))]))
    present = [m for m in hood.children(node) if m in reports]
    chosen = data.draw(st.lists(st.sampled_from(present), min_size=1, unique=True))
    inputs = [reports[m] for m in chosen]
    state = agg.AggregatorState(node, pristine.aggregators[node].key)
    fast = agg.Aggregator(hood, state).aggregate(1, inputs)
    parts = [agg.messages.decode_child(raw, hood) for raw in inputs]
    body = combine([contribution_of(part) for part in parts], 1, node, hood)
    assert fast == agg.messages.seal(body, mac_key(state.key, b"up"), b"aggregate-report", 7)


def test_unmasking_in_slices_fails_as_the_sequential_finish(played):
    """Spec 8.5 step 3 through slices (spec 13.2): with too few responses the first meter whose
    secret cannot be recovered is named, the same RecoveryError with or without an executor."""
    pristine, _, messages = played
    few = dataclasses.replace(messages, responses=messages.responses[:6])
    errors = []
    for executor in (None, InProcess(), ProcessPool(2)):
        p = copy.deepcopy(pristine)
        with pytest.raises(RecoveryError) as info:
            utility_round(p.hood, p.utility, p.aggregators, few, executor)
        if executor is not None:
            executor.close()
        assert type(info.value) is RecoveryError
        errors.append(str(info.value))
    assert errors[0] == errors[1] == errors[2]
    assert "shares of meter" in errors[0]
    p = copy.deepcopy(pristine)
    rs = _received(p, messages)
    with pytest.raises(ParameterError):
        agg.Utility(p.hood, p.utility).finish(rs, list(messages.responses), InProcess(), slices=0)
    result = agg.Utility(p.hood, p.utility).finish(rs, list(messages.responses), InProcess(), slices=50)
    assert result == played[1].result


def _received(p, messages):
    """The round state of ``messages`` up to the signatures, for a direct call of finish."""
    utility = agg.Utility(p.hood, p.utility)
    rs, _ = utility.bundles(messages.round, list(messages.adverts))
    reports = aggregate_tree(p.hood, p.aggregators, messages.round, dict(messages.reports))
    utility.receive(rs, reports[p.hood.root])
    utility.commit_requests(rs)
    utility.collect_signatures(rs, list(messages.signatures))
    utility.unmask_requests(rs)
    return rs


def test_audit_by_subtrees_names_the_same_aggregator(played):
    """Spec 9 through an executor (spec 13.2): a lower aggregator that used a child's report twice
    is named by the same DuplicateContributionError as the sequential walk; a clean tree passes."""
    pristine, transcript, messages = played
    p = copy.deepcopy(pristine)
    aggregate_tree(p.hood, p.aggregators, 1, dict(messages.reports))
    kept = retained_inputs(p.aggregators, 1)
    rs = _received(copy.deepcopy(pristine), messages)
    utility = agg.Utility(p.hood, p.utility)
    low = next(a for a in p.hood.tree if a in kept and all(c not in p.hood.tree for c in p.hood.children(a))
               and p.hood.parent(p.hood.parent(a) or "") is not None)
    bad = {**kept, low: (*kept[low], kept[low][0])}
    outcomes = []
    for executor in (None, InProcess(), ProcessPool(2)):
        utility.audit(rs, kept, executor)
        with pytest.raises(DuplicateContributionError) as info:
            utility.audit(rs, bad, executor)
        outcomes.append(str(info.value))
        if executor is not None:
            executor.close()
    assert outcomes[0] == outcomes[1] == outcomes[2]
    assert low in outcomes[0]


def test_directory_digest_binds_the_noise_mechanism_and_releases():
    """specs/aggregation.md 3.2 key 7: a directory that differs only in the DP mechanism or the
    releases per household-day has another digest (the default configuration's bytes are unchanged)."""
    from dataclasses import replace
    from fractions import Fraction

    from protocols.aggregation import hood as hood_module
    from protocols.privacy.dp import Mechanism, NoiseShareConfig, PrivacyLevel

    base = NoiseShareConfig(PrivacyLevel.MEDIUM, 1023, 4, Fraction(1, 2), Fraction(1, 1000))
    default = hood_module._noise_cbor(base)
    assert isinstance(default, list) and len(default) == 5
    skellam = hood_module._noise_cbor(replace(base, mechanism=Mechanism.SKELLAM))
    hourly = hood_module._noise_cbor(replace(base, releases=24))
    assert skellam != default and hourly != default and skellam != hourly
    assert skellam[5:] == ["skellam", 1] and hourly[5:] == ["scrcs11", 24]
