"""Spec 13.4: the utility's side of one round, from the meters' messages, through an executor.

:func:`utility_round` plays spec 6.3 and 8 for the utility and spec 7 for
the aggregators (partitioned as in spec 13.2), in the order of a round:
bundles, the tree, receipt, commit-requests, signatures, unmask-requests,
finish.  Its outputs -- the utility's and the aggregators' messages and the
released sums -- depend only on its inputs, so a neighbourhood's round is
one task a city-wide executor can run anywhere (spec 13.4).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from protocols.aggregation.aggregator import AggregatorState
from protocols.aggregation.executor import Executor
from protocols.aggregation.hood import Neighbourhood
from protocols.aggregation.partition import aggregate_tree
from protocols.aggregation.utility import RoundResult, Utility, UtilityState
from protocols.errors import RecoveryError
from protocols.primitives import hashing


@dataclass(frozen=True)
class MeterMessages:
    """The meters' messages of one round as they reach the utility and the tree (spec 6-8)."""

    round: int
    adverts: tuple[bytes, ...]
    reports: tuple[tuple[str, bytes], ...]
    """(meter, meter-report): the reports that reached their aggregators by the cut-off."""
    signatures: tuple[bytes, ...]
    responses: tuple[bytes, ...]


@dataclass(frozen=True)
class UtilityRound:
    """What :func:`utility_round` produced: the released result and every message it sent."""

    result: RoundResult
    sent: tuple[tuple[str, bytes], ...]
    """(label, message) in sending order: bundles, aggregate-reports, commit- and unmask-requests."""

    def transcript_digest(self) -> bytes:
        """SHA-256 over the labelled messages, each length-prefixed: equal digests, equal bytes."""
        h = hashing.sha256()
        for label, message in self.sent:
            for part in (label.encode(), message):
                h.update(len(part).to_bytes(8, "big") + part)
        return h.digest()


def utility_round(hood: Neighbourhood, utility: UtilityState, aggregators: Mapping[str, AggregatorState],
                  messages: MeterMessages, executor: Executor | None = None, *, depth: int = 1,
                  retries: int = 1) -> UtilityRound:
    """Spec 13.2: one round at the utility and the tree; ``utility`` and ``aggregators`` advance.
    With an ``executor``, the subtrees below the cut (spec 13.2) and the slices of the unmasking
    (spec 8.5 steps 3-5) run on it; without one, everything runs in this thread.

    Raises what the steps raise (spec 6.3, 7.1, 8.1-8.5), ``RecoveryError``
    if no report reaches the root or a subtree task fails beyond its
    retries (spec 13.3).
    """
    role = Utility(hood, utility)
    rs, bundles = role.bundles(messages.round, list(messages.adverts))
    sent = [(f"bundle {m}", raw) for m, raw in bundles.items()]
    reports = aggregate_tree(hood, aggregators, messages.round, dict(messages.reports), executor, depth=depth,
                             retries=retries)
    sent += [(f"aggregate-report {node}", raw) for node, raw in reports.items()]
    if hood.root not in reports:
        raise RecoveryError(f"round {messages.round}: no report reached the root")
    role.receive(rs, reports[hood.root])
    sent += [(f"commit-request {m}", raw) for m, raw in role.commit_requests(rs).items()]
    role.collect_signatures(rs, list(messages.signatures))
    sent += [(f"unmask-request {m}", raw) for m, raw in role.unmask_requests(rs).items()]
    result = role.finish(rs, list(messages.responses), executor, retries=retries)
    return UtilityRound(result, tuple(sent))
