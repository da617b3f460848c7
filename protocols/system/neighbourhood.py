"""A neighbourhood simulation: every role of specs/aggregation.md wired together.

The protocol package gives each role its messages; this module plays the
network.  One round, in the order of spec 6-8:

1. every taking-part meter advertises (directory order), the utility
   answers each with its bundle, each meter accepts it;
2. meters with readings report (directory order); the tree aggregates
   (post-order) and the root reports to the utility;
3. the utility fixes the sets and asks the committee to sign them;
4. the utility sends the signed sets to every reporting meter, the meters
   answer with shares, and the utility finishes.

Every message is kept, so callers can count bytes or tamper.  All meters
draw from the one ``rng`` in that order (spec 12 fixes it for the vectors).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from protocols.aggregation import Aggregator, Meter, Provisioned, RoundResult, RoundState, Utility
from protocols.aggregation.partition import post_order  # re-exported: the tree walk the round uses
from protocols.errors import RecoveryError, StateError
from protocols.primitives.rand import RandomSource, resolve
from protocols.schemes.paillier import FastEncryptor, RandomiserPool


@dataclass
class Transcript:
    """Every message of one round, by sender (or, for the utility's messages, by recipient)."""

    round: int
    adverts: dict[str, bytes] = field(default_factory=dict)
    bundles: dict[str, bytes] = field(default_factory=dict)
    meter_reports: dict[str, bytes] = field(default_factory=dict)
    aggregate_reports: dict[str, bytes] = field(default_factory=dict)
    commit_requests: dict[str, bytes] = field(default_factory=dict)
    commit_signatures: dict[str, bytes] = field(default_factory=dict)
    requests: dict[str, bytes] = field(default_factory=dict)
    responses: dict[str, bytes] = field(default_factory=dict)
    state: RoundState | None = None
    result: RoundResult | None = None

    def upload_bytes(self) -> int:
        return sum(map(len, self.meter_reports.values()))

    def setup_bytes(self) -> int:
        """The advert / bundle exchange of spec 6.2-6.3."""
        return sum(map(len, self.adverts.values())) + sum(map(len, self.bundles.values()))

    def unmask_bytes(self) -> int:
        return (sum(map(len, self.commit_requests.values())) + sum(map(len, self.commit_signatures.values())) +
                sum(map(len, self.requests.values())) + sum(map(len, self.responses.values())))


Tamper = Callable[[str, list[bytes]], list[bytes]]
"""Called with an aggregator id and its inputs; returns the inputs it will use."""


def collect(p: Provisioned, round_id: int, readings: Mapping[str, Sequence[int]],
            rng: RandomSource | None = None, *, dropped: Sequence[str] = (),
            encryptors: Mapping[str, RandomiserPool | FastEncryptor] | None = None, tamper: Tamper | None = None) -> Transcript:
    """Phases 1-2 (spec 6-7): adverts and bundles, then the reports up the tree.

    Meters in ``readings`` take part and report; meters in ``dropped``
    advertise but fail before reporting (they become the missing set); any
    other meter takes no part.  ``tamper`` lets a test play a faulty aggregator.
    """
    hood = p.hood
    source = resolve(rng)
    transcript = Transcript(round_id)
    taking_part = [m for m in hood.meters if m in readings or m in dropped]
    for meter in taking_part:
        transcript.adverts[meter] = Meter(hood, p.meters[meter]).advertise(round_id, source)
    utility = Utility(hood, p.utility)
    transcript.state, transcript.bundles = utility.bundles(round_id, list(transcript.adverts.values()))
    for meter in taking_part:
        Meter(hood, p.meters[meter]).accept_bundle(transcript.bundles[meter])
    for meter in hood.meters:
        if meter in readings and meter not in dropped:
            encryptor = encryptors.get(meter) if encryptors else None
            transcript.meter_reports[meter] = Meter(hood, p.meters[meter]).report(
                round_id, readings[meter], source, encryptor=encryptor)
    outputs = dict(transcript.meter_reports)
    for node in post_order(hood.tree, hood.root):
        inputs = [outputs[child] for child in hood.children(node) if child in outputs]
        if tamper is not None:
            inputs = tamper(node, inputs)
        if inputs:
            outputs[node] = Aggregator(hood, p.aggregators[node]).aggregate(round_id, inputs)
            transcript.aggregate_reports[node] = outputs[node]
    return transcript


def finish(p: Provisioned, transcript: Transcript, *, silent: Sequence[str] = (),
           absent_committee: Sequence[str] = ()) -> RoundResult:
    """Phases 3-4 (spec 8): the committee signs the sets, the meters release shares, the utility finishes.

    Meters in ``silent`` reported but do not answer their unmask-request;
    committee members in ``absent_committee`` do not sign.
    """
    hood = p.hood
    utility = Utility(hood, p.utility)
    if hood.root not in transcript.aggregate_reports:
        raise RecoveryError(f"round {transcript.round}: no report reached the root")
    if transcript.state is None:
        raise StateError(f"round {transcript.round}: the utility sent no bundles")
    rs = utility.receive(transcript.state, transcript.aggregate_reports[hood.root])
    transcript.commit_requests = utility.commit_requests(rs)
    for member, request in transcript.commit_requests.items():
        if member not in absent_committee:
            transcript.commit_signatures[member] = Meter(hood, p.meters[member]).sign_commit(request)
    utility.collect_signatures(rs, list(transcript.commit_signatures.values()))
    transcript.requests = utility.unmask_requests(rs)
    for meter, request in transcript.requests.items():
        if meter not in silent:
            transcript.responses[meter] = Meter(hood, p.meters[meter]).unmask(request)
    transcript.result = utility.finish(rs, list(transcript.responses.values()))
    return transcript.result


def run_round(p: Provisioned, round_id: int, readings: Mapping[str, Sequence[int]],
              rng: RandomSource | None = None, **options) -> Transcript:
    """Both halves; ``options`` go to :func:`collect` (dropped, encryptors, tamper) and :func:`finish`
    (silent, absent_committee)."""
    silent = options.pop("silent", ())
    absent = options.pop("absent_committee", ())
    transcript = collect(p, round_id, readings, rng, **options)
    finish(p, transcript, silent=silent, absent_committee=absent)
    return transcript
