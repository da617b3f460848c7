"""Spec 13.2: the aggregator tree as the partition -- subtrees folded as tasks, the top combined.

The aggregators ``depth`` levels below the root (:func:`cut`) each fold
their subtree in one task (:func:`fold_subtree`: every aggregator of the
subtree, children before parents, exactly :meth:`Aggregator.aggregate`)
and forward one aggregate-report; the aggregators above the cut then run
in the caller, on those reports and on any meter attached above the cut.
Every aggregator's report is the same bytes as in a sequential round, so
the root's report, the sets and the released sums are too (spec 13.2).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from protocols.aggregation.aggregator import Aggregator, AggregatorState
from protocols.aggregation.executor import Executor, InProcess, run_tasks
from protocols.aggregation.hood import Neighbourhood
from protocols.errors import InjectedContributionError, ParameterError


@dataclass(frozen=True)
class SubtreeJob:
    """One task of spec 13.2: a subtree's aggregators and the reports of the meters below it."""

    hood: Neighbourhood
    node: str
    round: int
    aggregators: tuple[AggregatorState, ...]
    """Copies of the subtree's aggregator states, children before parents."""
    reports: tuple[tuple[str, bytes], ...]
    """(meter, meter-report) for the meters below ``node`` whose reports arrived by the cut-off."""


@dataclass(frozen=True)
class SubtreeResult:
    """What a subtree task returns: its aggregate-reports by node and the aggregators' new states."""

    node: str
    reports: tuple[tuple[str, bytes], ...]
    aggregators: tuple[AggregatorState, ...]


def post_order(tree: Mapping[str, Sequence[str]], top: str) -> list[str]:
    """The aggregators of the subtree under ``top`` (a node of ``tree``, each aggregator's children),
    children before parents (spec 7)."""
    order: list[str] = []
    stack = [(top, False)]
    while stack:
        node, done = stack.pop()
        if done:
            order.append(node)
            continue
        stack.append((node, True))
        stack.extend((child, False) for child in tree[node] if child in tree)
    return order


def cut(hood: Neighbourhood, depth: int = 1) -> tuple[str, ...]:
    """Spec 13.2: the aggregators ``depth`` levels below the root (fewer where a branch is shallower:
    an aggregator with no aggregator child above that depth is cut where it is)."""
    if type(depth) is not int or not 0 <= depth <= len(hood.tree):
        raise ParameterError("the cut depth must be a non-negative integer no larger than the tree")
    level = [hood.root]
    for _ in range(depth):
        below = []
        for node in level:
            children = [c for c in hood.children(node) if c in hood.tree]
            below.extend(children if children else [node])
        if below == level:
            break
        level = below
    return tuple(level)


def fold_subtree(job: SubtreeJob) -> SubtreeResult:
    """Spec 13.2 (one task): run :meth:`Aggregator.aggregate` over the subtree, children before
    parents; an aggregator none of whose children sent anything sends nothing (spec 7.1)."""
    states = {s.aggregator_id: dataclasses.replace(s, retained=dict(s.retained)) for s in job.aggregators}
    outputs = dict(job.reports)
    made = []
    for node in post_order(job.hood.tree, job.node):
        inputs = [outputs[child] for child in job.hood.children(node) if child in outputs]
        if inputs:
            outputs[node] = Aggregator(job.hood, states[node]).aggregate(job.round, inputs)
            made.append((node, outputs[node]))
    return SubtreeResult(job.node, tuple(made), tuple(states[node] for node in post_order(job.hood.tree, job.node)))


def aggregate_tree(hood: Neighbourhood, aggregators: Mapping[str, AggregatorState], round_id: int,
                   reports: Mapping[str, bytes], executor: Executor | None = None, *, depth: int = 1,
                   retries: int = 1) -> dict[str, bytes]:
    """Spec 13.2: every aggregate-report of the round, by aggregator (the root's under ``hood.root``
    unless nothing arrived).

    ``reports`` are the meter-reports that arrived by the cut-off (spec
    13.3: a later one is refused by its aggregator with ``ReplayError``);
    an unknown sender is an ``InjectedContributionError`` from the
    aggregator it names, as in spec 7.1.  The subtrees below the cut run on
    ``executor`` (in-process by default) with the failure rule of
    :func:`~protocols.aggregation.executor.run_tasks`; ``aggregators`` are
    updated only when the whole tree has aggregated.
    """
    runner = InProcess() if executor is None else executor
    for meter in reports:
        if meter not in hood.meter_public:
            raise InjectedContributionError(f"a report from {meter!r}, which is not a meter of this neighbourhood")
    tops = cut(hood, depth)
    below: dict[str, str] = {}
    for top in tops:
        if top == hood.root:
            continue
        for node in post_order(hood.tree, top):
            below.update((child, top) for child in hood.children(node) if child not in hood.tree)
    jobs = []
    for top in tops:
        if top == hood.root:
            continue
        members = post_order(hood.tree, top)
        mine = tuple((m, r) for m, r in reports.items() if below.get(m) == top)
        jobs.append(SubtreeJob(hood, top, round_id, tuple(aggregators[a] for a in members), mine))
    results = run_tasks(runner, fold_subtree, jobs, retries=retries, labels=[f"subtree {j.node}" for j in jobs])
    states = {s.aggregator_id: s for result in results for s in result.aggregators}
    outputs: dict[str, bytes] = {m: r for m, r in reports.items() if m not in below}
    for result in results:
        outputs.update(result.reports)
    done = set(states)
    for node in post_order(hood.tree, hood.root):
        if node in done:
            continue
        state = dataclasses.replace(aggregators[node], retained=dict(aggregators[node].retained))
        inputs = [outputs[child] for child in hood.children(node) if child in outputs]
        if inputs:
            outputs[node] = Aggregator(hood, state).aggregate(round_id, inputs)
        states[node] = state
    for node, state in states.items():
        target = aggregators[node]
        target.last_round, target.retained = state.last_round, state.retained
    return {node: outputs[node] for node in post_order(hood.tree, hood.root) if node in outputs}


def retained_inputs(aggregators: Mapping[str, AggregatorState], round_id: int) -> dict[str, Sequence[bytes]]:
    """Spec 9: what each aggregator kept for ``round_id``, as :meth:`Utility.audit` takes it."""
    return {node: s.retained[round_id] for node, s in aggregators.items() if round_id in s.retained}
