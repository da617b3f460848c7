"""A neighbourhood simulation: every role of specs/aggregation.md wired together.

The protocol module gives each role its messages; this module plays the
network: it carries meter reports up the aggregator tree (post-order), the
root's report to the utility, the unmask-requests down and the responses
back, and keeps every message so that callers can count bytes or tamper.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from protocols.aggregation import Aggregator, Meter, Provisioned, RoundResult, Utility
from protocols.primitives.rand import RandomSource


@dataclass
class Transcript:
    """Every message of one round, by sender."""

    round: int
    meter_reports: dict[str, bytes] = field(default_factory=dict)
    aggregate_reports: dict[str, bytes] = field(default_factory=dict)
    requests: dict[str, bytes] = field(default_factory=dict)
    responses: dict[str, bytes] = field(default_factory=dict)
    result: RoundResult | None = None

    def upload_bytes(self) -> int:
        return sum(map(len, self.meter_reports.values()))

    def unmask_bytes(self) -> int:
        return sum(map(len, self.requests.values())) + sum(map(len, self.responses.values()))


Tamper = Callable[[str, list[bytes]], list[bytes]]
"""Called with an aggregator id and its inputs; returns the inputs it will use."""


def post_order(tree: Mapping[str, Sequence[str]], root: str) -> list[str]:
    """Aggregators, children before parents."""
    order: list[str] = []
    stack = [(root, False)]
    while stack:
        node, done = stack.pop()
        if done:
            order.append(node)
            continue
        stack.append((node, True))
        stack.extend((child, False) for child in tree[node] if child in tree)
    return order


def collect(p: Provisioned, round_id: int, readings: Mapping[str, Sequence[int]],
            rng: RandomSource | None = None, *, encryptors: Mapping[str, object] | None = None,
            tamper: Tamper | None = None) -> Transcript:
    """Phase 1 (spec 6-7): meters in ``readings`` report; the tree aggregates.

    Meters absent from ``readings`` do not report.  ``tamper`` lets a test
    play a faulty aggregator.
    """
    hood = p.hood
    transcript = Transcript(round_id)
    for meter in hood.meters:
        if meter in readings:
            encryptor = encryptors.get(meter) if encryptors else None
            transcript.meter_reports[meter] = Meter(hood, p.meters[meter]).report(
                round_id, readings[meter], rng, encryptor=encryptor)
    outputs = dict(transcript.meter_reports)
    for node in post_order(hood.tree, hood.root):
        inputs = [outputs[child] for child in hood.children(node) if child in outputs]
        if tamper is not None:
            inputs = tamper(node, inputs)
        if inputs:
            outputs[node] = Aggregator(hood, p.aggregators[node]).aggregate(round_id, inputs)
            transcript.aggregate_reports[node] = outputs[node]
    return transcript


def finish(p: Provisioned, transcript: Transcript, *, silent: Sequence[str] = ()) -> RoundResult:
    """Phase 2 (spec 8): the utility receives the root's report and unmasks.

    Meters in ``silent`` reported but do not answer their unmask-request.
    """
    hood = p.hood
    utility = Utility(hood, p.utility)
    rs = utility.receive(transcript.round, transcript.aggregate_reports[hood.root])
    transcript.requests = utility.unmask_requests(rs)
    for meter, request in transcript.requests.items():
        if meter not in silent:
            transcript.responses[meter] = Meter(hood, p.meters[meter]).unmask(request)
    transcript.result = utility.finish(rs, list(transcript.responses.values()))
    return transcript.result


def run_round(p: Provisioned, round_id: int, readings: Mapping[str, Sequence[int]],
              rng: RandomSource | None = None, **options) -> Transcript:
    """Both phases; ``options`` go to :func:`collect` (encryptors, tamper) and :func:`finish` (silent)."""
    silent = options.pop("silent", ())
    transcript = collect(p, round_id, readings, rng, **options)
    finish(p, transcript, silent=silent)
    return transcript
