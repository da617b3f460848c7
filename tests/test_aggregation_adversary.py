"""Aggregation v2 played against the adversary of issue 13 (specs/aggregation.md, spec 11).

The adversary, in every test here unless a test narrows it: the utility.
It holds the Paillier private key, every meter key K_i, every aggregator
key K_a and the tag key K_alpha, so it MACs any message to any meter and
builds any aggregate-report over any meter reports it holds; it sees
every message and orders them as it likes; and it colludes with a set C
of meters fixed before setup, whose whole state (keys, round secrets, the
shares they hold) it reads.  Honest meters run the real
:class:`~protocols.aggregation.Meter` code and nothing else.

Each test plays one of the four v1 attacks of issue 13 or a
generalisation of them through the real classes (two more play the
asymmetric bundle closed by the confirmations and split directories),
then checks what the adversary can actually compute: it recovers every
secret for which it holds a threshold of shares, removes every mask it
knows from each honest meter's own ciphertext and compares the rest with
the meter's true packed plaintext.  ``Play`` records, beside what the
adversary sees, an *oracle* view of honest meters' secrets (their round
secrets and held shares, read from their state); the oracle is only used
to check the adversary's computation, never by it.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
from collections import defaultdict
from dataclasses import dataclass, field
from fractions import Fraction

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from protocols import aggregation as agg
from protocols.aggregation import messages as msg
from protocols.aggregation.schedule import (
    CONFIRM_BYTES,
    SHARE_BYTES,
    commit_message,
    confirmation,
    mac_key,
    pair_mask,
    round_secret,
    self_mask,
    static_secret,
    tag_alphas,
    tag_beta,
)
from protocols.errors import (
    AggregateMismatchError,
    ConsistencyError,
    DecodeError,
    ParameterError,
    RecoveryError,
    ReplayError,
    StateError,
    VerificationError,
)
from protocols.primitives import cbor, shamir
from protocols.primitives.drbg import HmacDrbg
from protocols.schemes.paillier import FastEncryptor
from protocols.system.neighbourhood import post_order

REFUSALS = (ConsistencyError, ReplayError, VerificationError, StateError, DecodeError, RecoveryError)
"""The typed errors an honest meter answers a request it will not serve with."""

PROPERTY = settings(deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much,
                                                          HealthCheck.function_scoped_fixture])


@pytest.fixture(scope="module")
def encryptor(paillier_key):
    return FastEncryptor.create(paillier_key.public_key, HmacDrbg.from_seed("tests/adversary/encryptor"))


def make(paillier_key, count, seed, fanout=4, **options):
    """A provisioned neighbourhood; the first of the seeds ``seed``, ``seed/1``, ... whose graph gives
    every meter at least t neighbours (a setup that does not is refused, spec 3.4)."""
    meters = [f"m{i:02d}" for i in range(count)]
    tree, root = agg.balanced_tree(meters, fanout)
    for attempt in range(20):
        name = seed if attempt == 0 else f"{seed}/{attempt}"
        try:
            return agg.provision(paillier_key, meters, tree, root, HmacDrbg.from_seed("tests/adversary/" + name),
                                 **options)
        except ParameterError:
            continue
    raise ParameterError(f"no seed of {seed} gives every meter t neighbours")


def readings_for(p, seed):
    rng = HmacDrbg.from_seed("tests/adversary/readings/" + seed)
    limit = 1 << p.hood.value_bits
    return {m: [int.from_bytes(rng.random_bytes(8), "big") % limit for _ in range(p.hood.slots)]
            for m in p.hood.meters}


# ---------------------------------------------------------------------------
# The adversary's tools: one round played through the real classes
# ---------------------------------------------------------------------------


@dataclass
class Play:
    """One round of one neighbourhood as the adversary plays it.

    ``adverts``, ``bundles`` (the bundles it sent and the meter accepted),
    ``reports``, ``signatures`` and ``released`` are what the adversary
    sees; ``secrets`` and ``held`` are the oracle (each meter's eps, sigma
    and the shares it holds, read from its state), of which the adversary
    may use only the corrupt meters' entries.
    """

    p: agg.Provisioned
    corrupt: frozenset
    round: int
    rng: HmacDrbg
    encryptor: FastEncryptor
    adverts: dict = field(default_factory=dict)
    mask_public: dict = field(default_factory=dict)
    secrets: dict = field(default_factory=dict)
    held: dict = field(default_factory=dict)
    bundles: dict = field(default_factory=dict)
    readings: dict = field(default_factory=dict)
    reports: dict = field(default_factory=dict)
    signatures: dict = field(default_factory=lambda: defaultdict(dict))
    released: dict = field(default_factory=dict)
    answers: dict = field(default_factory=dict)
    refusals: list = field(default_factory=list)
    views: dict = field(default_factory=dict)
    """For a split-view play: the directory each meter revealed for (default: ``p.hood``)."""

    @property
    def hood(self) -> agg.Neighbourhood:
        return self.p.hood

    def hood_of(self, name: str) -> agg.Neighbourhood:
        return self.views.get(name, self.p.hood)

    @property
    def honest(self) -> list[str]:
        return [m for m in self.hood.meters if m not in self.corrupt]

    def meter(self, name: str) -> agg.Meter:
        return agg.Meter(self.hood_of(name), self.p.meters[name])

    def key(self, name: str, direction: bytes) -> bytes:
        return mac_key(self.p.utility.meter_keys[name], direction)

    def maps(self, reporting, missing) -> tuple[bytes, bytes]:
        return self.hood.bitmap(reporting), self.hood.bitmap(missing)

    def signed(self, reporting, missing, digest: bytes | None = None) -> dict:
        """The committee signatures the adversary holds on (R, M) for this round (and directory)."""
        return self.signatures.get((self.round, digest or self.hood.digest, *self.maps(reporting, missing)), {})


def new_play(p, corrupt, round_id, encryptor, seed) -> Play:
    return Play(p, frozenset(corrupt), round_id, HmacDrbg.from_seed(f"tests/adversary/play/{seed}/{round_id}"),
                encryptor)


def advertise(play: Play, meters) -> None:
    """Spec 6.2 at each meter (real code); the oracle records the fresh secrets."""
    for m in play.hood.meters:
        if m in meters:
            play.adverts[m] = play.meter(m).advertise(play.round, play.rng)
            state = play.p.meters[m]
            play.secrets[m] = (state.epsilon, state.sigma)
            play.mask_public[m] = cbor.decode(play.adverts[m])[4]


def reseal(play: Play, raw: bytes, schema: dict, kind: bytes, meter: str, changes: dict) -> bytes:
    """The utility rewrites fields of one of its own messages to ``meter`` and MACs it again with K_meter."""
    mac_field = max(schema)
    body = {k: v for k, v in cbor.decode(raw).items() if k != mac_field}
    body.update(changes)
    return msg.seal(body, play.key(meter, b"down"), kind, mac_field)


def deliver_bundles(play: Play, omit=None) -> None:
    """Spec 6.3: the utility's real bundles, except that for each meter in ``omit`` it leaves out the
    given advertising neighbours (a forged, MAC-valid bundle).  A meter left with fewer than t
    neighbours refuses (RecoveryError) and so never reports."""
    omit = omit or {}
    _, out = agg.Utility(play.hood, play.p.utility).bundles(play.round, list(play.adverts.values()))
    for m, raw in out.items():
        drop = set(omit.get(m, ()))
        if drop:
            f = cbor.decode(raw)
            keep = [i for i, peer in enumerate(f[4]) if peer not in drop]
            raw = reseal(play, raw, msg.MASK_BUNDLE, b"mask-bundle", m, {
                4: [f[4][i] for i in keep],
                5: b"".join(f[5][32 * i:32 * i + 32] for i in keep),
                6: b"".join(f[6][agg.BOX_BYTES * i:agg.BOX_BYTES * (i + 1)] for i in keep)})
        try:
            play.bundles[m] = play.meter(m).accept_bundle(raw)
        except RecoveryError:
            continue
        play.held[m] = dict(play.p.meters[m].held)


def report(play: Play, meters, readings) -> None:
    """Spec 6.4 at each meter that accepted a bundle (real code)."""
    for m in play.hood.meters:
        if m in meters and m in play.bundles:
            play.reports[m] = play.meter(m).report(play.round, readings[m], play.rng, encryptor=play.encryptor)
            play.readings[m] = list(readings[m])


def honest_round(play: Play, readings, participants=None) -> None:
    participants = play.hood.meters if participants is None else participants
    advertise(play, participants)
    deliver_bundles(play)
    report(play, participants, readings)


def forge_root(play: Play, meters) -> bytes:
    """The utility, holding every K_a, runs the real Aggregator code with fresh states over the
    meter-reports of ``meters`` only and returns the root's aggregate-report."""
    hood = play.hood
    outputs = {m: play.reports[m] for m in meters}
    for node in post_order(hood.tree, hood.root):
        inputs = [outputs[c] for c in hood.children(node) if c in outputs]
        if inputs:
            state = agg.AggregatorState(node, play.p.utility.aggregator_keys[node])
            outputs[node] = agg.Aggregator(hood, state).aggregate(play.round, inputs)
    return outputs[hood.root]


def commit_request(play: Play, member: str, reporting, missing) -> bytes:
    r_map, m_map = play.maps(reporting, missing)
    body = {1: agg.VERSION, 2: play.round, 3: member, 4: r_map, 5: m_map}
    return msg.seal(body, play.key(member, b"down"), b"commit-request", max(msg.COMMIT_REQUEST))


def ask_committee(play: Play, member: str, reporting, missing) -> bytes:
    """One committee signature on (R, M): a corrupt member's is made directly with its Ed25519 seed;
    an honest member runs the real sign_commit (and may raise)."""
    hood = play.hood_of(member)
    r_map, m_map = play.maps(reporting, missing)
    if member in play.corrupt:
        signature = Ed25519PrivateKey.from_private_bytes(play.p.meters[member].signing_seed).sign(
            commit_message(hood.group_id, hood.digest, play.round, r_map, m_map))
    else:
        signature = cbor.decode(play.meter(member).sign_commit(commit_request(play, member, reporting, missing)))[4]
    play.signatures[(play.round, hood.digest, r_map, m_map)][member] = signature
    return signature


def confirmation_for(play: Play, sender: str, recipient: str) -> bytes:
    """The best confirmation (spec 5.7) from ``sender`` to ``recipient`` the adversary has: taken from
    sender's meter-report if it confirmed recipient, made with the pair key if sender is corrupt,
    else a guess."""
    hood = play.hood
    if sender in play.corrupt and sender in play.mask_public and recipient in play.mask_public:
        state = play.p.meters[sender]
        secret = static_secret(hood.digest, sender, state.x25519_private, recipient, hood.meter_public[recipient])
        return confirmation(secret, hood.group_id, play.round, sender, recipient, play.mask_public[sender],
                            play.mask_public[recipient])
    if sender in play.reports and recipient in play.bundles.get(sender, ()):
        values = cbor.decode(play.reports[sender])[5]
        i = play.bundles[sender].index(recipient)
        return values[CONFIRM_BYTES * i:CONFIRM_BYTES * (i + 1)]
    return bytes(CONFIRM_BYTES)


def unmask_request(play: Play, meter: str, reporting, missing, signed=None) -> bytes:
    """A MAC-valid unmask-request showing ``meter`` the sets (R, M) with every signature the adversary
    holds on the sets ``signed`` (default: on (R, M) itself) and the confirmations it holds."""
    hood = play.hood_of(meter)
    r_map, m_map = play.maps(reporting, missing)
    sigs = play.signed(*(signed or (reporting, missing)), hood.digest)
    signers = [s for s in hood.committee if s in sigs]
    confirmations = b"".join(confirmation_for(play, peer, meter)
                             for peer in play.bundles.get(meter, ()) if peer in set(reporting))
    body = {1: agg.VERSION, 2: play.round, 3: meter, 4: r_map, 5: m_map, 6: signers,
            7: b"".join(sigs[s] for s in signers), 8: confirmations}
    return msg.seal(body, play.key(meter, b"down"), b"unmask-request", max(msg.UNMASK_REQUEST))


def show(play: Play, meter: str, reporting, missing, signed=None):
    """Send one forged unmask-request to an honest meter; record what it releases.

    Returns the typed error it refused with, or None if it answered.  The
    share released for each bundled neighbour is recorded as a sigma-share
    if the sets said the neighbour reported, an eps-share otherwise (test 6
    checks the meter does exactly that)."""
    reporting, missing = set(reporting), set(missing)
    raw = unmask_request(play, meter, reporting, missing, signed)
    try:
        answer = play.meter(meter).unmask(raw)
    except REFUSALS as exc:
        play.refusals.append(exc)
        return exc
    shares = msg.chunks(cbor.decode(answer)[4], SHARE_BYTES, len(play.bundles[meter]), "test")
    assert meter not in play.released, f"{meter} answered twice in round {play.round}"
    play.released[meter] = {peer: ("sigma" if peer in reporting else "eps", int.from_bytes(y, "big"))
                            for peer, y in zip(play.bundles[meter], shares)}
    play.answers[meter] = (frozenset(reporting), frozenset(missing))
    return None


# ---------------------------------------------------------------------------
# What the adversary can compute from what it saw
# ---------------------------------------------------------------------------


@dataclass
class Knowledge:
    eps: dict
    sigma: dict

    def secret(self, kind: str) -> dict:
        return self.eps if kind == "eps" else self.sigma


def what_the_utility_knows(play: Play) -> Knowledge:
    """Every round secret the adversary can rebuild: t shares from honest releases and corrupt holders,
    and the corrupt meters' own secrets."""
    hood, t = play.hood, play.hood.threshold
    points = defaultdict(dict)
    for releaser, items in play.released.items():
        for peer, (kind, y) in items.items():
            points[(peer, kind)][hood.neighbours(peer).index(releaser) + 1] = y
    for c in play.corrupt:
        for peer, (e, s) in play.held.get(c, {}).items():
            x = hood.neighbours(peer).index(c) + 1
            points[(peer, "eps")][x] = e
            points[(peer, "sigma")][x] = s
    known = Knowledge({}, {})
    for (meter, kind), pts in points.items():
        if len(pts) >= t:
            shares = [shamir.Share(x, y) for x, y in sorted(pts.items())]
            value = shamir.recover(shares, t)
            assert value == play.secrets[meter][0 if kind == "eps" else 1], "oracle check: a wrong share"
            known.secret(kind)[meter] = value
    for c in play.corrupt:
        if c in play.secrets:
            known.eps[c], known.sigma[c] = play.secrets[c]
    return known


def known_mask(play: Play, known: Knowledge, j: str, peer: str) -> int | None:
    """m_{j,peer}(r) if the adversary holds either end's round mask key (spec 5.4), else None."""
    hood, r = play.hood, play.round
    if j in known.eps:
        secret = round_secret(hood.group_id, r, j, known.eps[j], peer, play.mask_public[peer])
    elif peer in known.eps:
        secret = round_secret(hood.group_id, r, peer, known.eps[peer], j, play.mask_public[j])
    else:
        return None
    return pair_mask(secret, r, hood.public_key.n)


def stripped(play: Play, known: Knowledge, j: str) -> int:
    """Dec(c_j) minus every part of j's blinding the adversary knows, mod n."""
    hood, n = play.hood, play.hood.public_key.n
    ct = msg.MeterReport.decode(play.reports[j], hood).ciphertext
    value = int(play.p.utility.private_key.decrypt(ct))
    if j in known.sigma:
        value -= self_mask(known.sigma[j], play.round, n)
    for peer in play.bundles[j]:
        mask = known_mask(play, known, j, peer)
        if mask is not None:
            value -= hood.sign(j, peer) * mask
    return value % n


def true_packed(play: Play, j: str) -> int:
    """pack(v_j, tau_j) mod n: j's plaintext before blinding (no noise in these tests)."""
    hood, state = play.hood, play.p.meters[j]
    values = play.readings[j]
    alphas = tag_alphas(state.tag_key, play.round, hood.slots)
    tag = (sum(a * v for a, v in zip(alphas, values)) + tag_beta(state.key, play.round)) % agg.TAG_PRIME
    return hood.layout.pack(values, tag) % hood.public_key.n


def exposed(play: Play, known: Knowledge, j: str) -> bool:
    """The explicit check: does removing all the adversary knows from Dec(c_j) give pack(v_j, tau_j)?"""
    return stripped(play, known, j) == true_packed(play, j)


def isolatable_sets(play: Play, known: Knowledge) -> list[frozenset]:
    """The smallest sets K of honest reporting meters whose sum the adversary can separate (spec 11.2).

    Honest reporter j can be in such a set only if sigma_j is known; every
    mask m_jp in c_j that it does not know must cancel, so p must be in K
    too and must have masked with j.  K are the connected components of
    that relation with no uncancellable mask.
    """
    nodes = {j for j in play.reports if j not in play.corrupt and j in known.sigma}
    links, tainted = defaultdict(set), set()
    for j in nodes:
        for peer in play.bundles[j]:
            if known_mask(play, known, j, peer) is None:
                if peer in nodes and j in play.bundles[peer]:
                    links[j].add(peer)
                else:
                    tainted.add(j)
    sets, seen = [], set()
    for start in sorted(nodes):
        if start in seen:
            continue
        component, stack = set(), [start]
        while stack:
            j = stack.pop()
            if j not in component:
                component.add(j)
                stack.extend(links[j] - component)
        seen |= component
        if not component & tainted:
            sets.append(frozenset(component))
    return sets


def sum_separated(play: Play, known: Knowledge, members) -> bool:
    """The explicit check for a set: the stripped ciphertexts of K add up to the sum of their packs."""
    n = play.hood.public_key.n
    return sum(stripped(play, known, j) for j in members) % n == sum(true_packed(play, j) for j in members) % n


def compromised(play: Play) -> set:
    """C and every honest meter with >= t corrupt neighbours (both of whose secrets C holds shares of).

    The closed-set condition of spec 11.2 / C5 must count these meters with C: an honest j with fewer
    than t corrupt neighbours is exposed alone when its other reporting neighbours each have >= t corrupt
    neighbours (their eps, hence m_jp, is known; they still release shares of sigma_j).  Found by
    test 7, e.g. N = 7, k = 4, t = 3, C = 4 meters.  The bound's total is unaffected: such a neighbour
    is already the s = 1 event of 11.5."""
    hood = play.hood
    return set(play.corrupt) | {m for m in hood.meters
                                if sum(p in play.corrupt for p in hood.neighbours(m)) >= hood.threshold}


def equivocation_possible(play: Play) -> bool:
    """Spec 11.5 term 1: at least 2 tau - kappa committee members are corrupt."""
    hood = play.hood
    bad = sum(m in play.corrupt for m in hood.committee)
    return bad >= 2 * hood.committee_threshold - hood.committee_size


def check_bound(play: Play) -> dict:
    """The assertions of spec 11.2-11.5 on one played round; returns what was found (for events)."""
    hood, t = play.hood, play.hood.threshold
    known = what_the_utility_knows(play)
    c_star = compromised(play)
    sets = isolatable_sets(play, known)
    for members in sets:
        assert sum_separated(play, known, members), f"model and reality disagree on {sorted(members)}"
    for j in play.reports:
        if j not in play.corrupt:
            assert exposed(play, known, j) == (frozenset({j}) in sets and all(
                known_mask(play, known, j, peer) is not None for peer in play.bundles[j])), j
    found = {"sets": sets, "known": known, "only_with_c_star": False}
    consistent = len(set(play.answers.values())) <= 1
    if not equivocation_possible(play):  # spec 11.3: every honest meter that released saw one (R, M)
        assert consistent, "honest meters released shares for different sets"
    if not consistent:
        return found
    for j in play.honest:
        if j in known.eps and j in known.sigma:
            assert sum(p in play.corrupt for p in hood.neighbours(j)) >= t, f"both secrets of {j} leaked"
    for members in sets:
        inside = members | c_star
        closed = all(sum(p in inside for p in hood.neighbours(j)) >= t for j in members)
        assert len(members) >= hood.min_reporting or closed, (
            f"the adversary separated the sum of {sorted(members)} (fewer than {hood.min_reporting}) "
            f"though some member has fewer than {t} neighbours in the set or compromised")
        direct = all(sum(p in members or p in play.corrupt for p in hood.neighbours(j)) >= t for j in members)
        if closed and not direct:
            found["only_with_c_star"] = True
    for j in play.reports:
        if j not in play.corrupt and exposed(play, known, j):
            assert sum(p in c_star for p in hood.neighbours(j)) >= t, f"{j} exposed with too few compromised"
    return found


# ---------------------------------------------------------------------------
# 1. Issue 13 attack 1: the self-correction unmask
# ---------------------------------------------------------------------------


def test_self_correction_attack_is_refused(paillier_key, encryptor):
    """v1 attack 1 adapted: the utility tells a target "all your neighbours are missing" while telling
    the neighbours the target reported, with per-meter bitmaps, with no, too few, or misplaced committee
    signatures, and with the committee asked twice.  Adversary: the utility with 11 corrupt committee
    members (2 tau - kappa - 1 = 11 for kappa = 30, tau = 21).  Every honest meter refuses with a typed
    error or releases only what the one signed set allows, and no target's reading can be computed."""
    p = make(paillier_key, 30, "self-correction", degree=8)
    hood, t = p.hood, p.hood.threshold
    assert (hood.committee_size, hood.committee_threshold, t) == (30, 21, 6)
    corrupt = set(hood.committee[:2 * hood.committee_threshold - hood.committee_size - 1])
    targets = []
    for m in hood.meters:
        if m not in corrupt and sum(q in corrupt for q in hood.neighbours(m)) < t and \
                not any(m in hood.neighbours(x) or m == x for x in targets):
            targets.append(m)
    targets = targets[:4]
    assert len(targets) == 4
    everyone = set(hood.meters)
    readings = readings_for(p, "self-correction")

    # Round 1: the lie about target 0 is signed first (the committee signs one set per round).
    play = new_play(p, corrupt, 1, encryptor, "self-correction")
    honest_round(play, readings)
    honest_sets = (everyone, set())
    lies = {j: (everyone - set(hood.neighbours(j)), set(hood.neighbours(j))) for j in targets}
    # (a) no signatures at all, then the corrupt members' only: every meter refuses
    for j in targets:
        assert isinstance(show(play, j, *lies[j]), ConsistencyError)
        for q in hood.neighbours(j):
            if q not in corrupt:
                assert isinstance(show(play, q, *honest_sets), ConsistencyError)
    for member in sorted(corrupt):
        for j in targets:
            ask_committee(play, member, *lies[j])
        ask_committee(play, member, *honest_sets)
    for j in targets:
        assert isinstance(show(play, j, *lies[j]), ConsistencyError)
    # (b) the honest members split: the first 10 sign the lie about target 0, the other 9 the truth
    honest_members = [m for m in hood.committee if m not in corrupt]
    for member in honest_members[:10]:
        ask_committee(play, member, *lies[targets[0]])
    for member in honest_members[10:]:
        ask_committee(play, member, *honest_sets)
    # (c) asked twice, for any set, every honest member refuses
    for member in honest_members:
        for sets in (honest_sets, lies[targets[1]], lies[targets[0]]):
            with pytest.raises(ReplayError):
                ask_committee(play, member, *sets)
    assert len(play.signed(*lies[targets[0]])) == hood.committee_threshold
    assert len(play.signed(*honest_sets)) == hood.committee_threshold - 1
    # (d) per-meter bitmaps: the targets' neighbours are shown the truth (20 signatures, or the lie's 21
    # signatures under the truth); other targets their own lies; then everyone the one signed set
    for j in targets:
        for q in hood.neighbours(j):
            if q not in corrupt:
                assert isinstance(show(play, q, *honest_sets), ConsistencyError)
                assert isinstance(show(play, q, *honest_sets, signed=lies[targets[0]]), ConsistencyError)
    for j in targets[1:]:
        assert isinstance(show(play, j, *lies[j]), ConsistencyError)
        assert isinstance(show(play, j, *lies[j], signed=lies[targets[0]]), ConsistencyError)
    for m in play.honest:
        outcome = show(play, m, *lies[targets[0]])
        assert (outcome is None) == (m not in hood.neighbours(targets[0])), (m, outcome)
    assert play.answers[targets[0]] == tuple(map(frozenset, lies[targets[0]]))
    known = what_the_utility_knows(play)
    # the lie bought target 0's neighbours' mask keys, hence all of target 0's pairwise masks ...
    assert all(known_mask(play, known, targets[0], q) is not None for q in play.bundles[targets[0]])
    # ... but not its self-mask seed: the neighbours that hold its shares were all "missing"
    for j in targets:
        assert j not in known.sigma or j not in known.eps
        assert not exposed(play, known, j)
    check_bound(play)

    # Round 2: the truth is signed first; the lie can then not be signed, and shown with the truth's
    # signatures it is refused.
    play = new_play(p, corrupt, 2, encryptor, "self-correction")
    honest_round(play, readings)
    for member in hood.committee:
        ask_committee(play, member, *honest_sets)
    for member in honest_members:
        with pytest.raises(ReplayError):
            ask_committee(play, member, *lies[targets[0]])
    for j in targets:
        assert isinstance(show(play, j, *lies[j]), ConsistencyError)
        assert isinstance(show(play, j, *lies[j], signed=honest_sets), ConsistencyError)
    for m in play.honest:
        if m not in targets:
            assert show(play, m, *honest_sets) is None
    known = what_the_utility_knows(play)
    for j in targets:
        assert j in known.sigma and j not in known.eps
        assert not exposed(play, known, j)
    check_bound(play)


def _asymmetric_bundle_attack(paillier_key, encryptor):
    """The target's bundle holds its 2 corrupt neighbours and 2 honest ones, which the signed sets call
    missing (their eps is rebuilt from their other neighbours); the 2 honest neighbours left out of its
    bundle are called reporting, so they would release shares of the target's sigma."""
    p = make(paillier_key, 12, "asymmetric", degree=6, threshold=4, min_reporting=4, committee_size=3)
    hood, t = p.hood, p.hood.threshold
    target = hood.meters[0]
    around = list(hood.neighbours(target))
    corrupt = set(around[:2 * t - hood.degree])  # 2 corrupt neighbours, fewer than t = 4
    play = new_play(p, corrupt, 1, encryptor, "asymmetric")
    advertise(play, hood.meters)
    kept = [q for q in around if q in corrupt] + [q for q in around if q not in corrupt][:t - len(corrupt)]
    deliver_bundles(play, {target: [q for q in around if q not in kept]})
    report(play, hood.meters, readings_for(p, "asymmetric"))
    lie = (set(play.reports) - set(kept), set(kept))
    for member in hood.committee:
        ask_committee(play, member, *lie)
    outcomes = {m: show(play, m, *lie) for m in play.honest}
    return play, target, [q for q in around if q not in kept], outcomes


def test_asymmetric_bundle_is_refused(paillier_key, encryptor, monkeypatch):
    """Spec 8.4 step 5 (the confirmations).  Adversary: the utility with 2t - k = 2 corrupt neighbours of
    a target (k = 6, t = 4) and an honest committee, which signs the one lie it is shown first.  The
    neighbours left out of the target's bundle refuse (the target never confirmed masking with them), so
    the target's reading stays hidden; with the confirmation check removed the same play computes it."""
    play, target, left_out, outcomes = _asymmetric_bundle_attack(paillier_key, encryptor)
    for q in left_out:
        assert isinstance(outcomes[q], ConsistencyError) and "confirm" in str(outcomes[q])
    known = what_the_utility_knows(play)
    assert target not in known.sigma and not exposed(play, known, target)
    check_bound(play)
    monkeypatch.setattr(agg.Meter, "_check_confirmations", lambda *args: None)
    play, target, left_out, outcomes = _asymmetric_bundle_attack(paillier_key, encryptor)
    assert all(outcomes[q] is None for q in left_out)
    assert exposed(play, what_the_utility_knows(play), target)


# ---------------------------------------------------------------------------
# 2. Issue 13 attack 2: grinding the graph
# ---------------------------------------------------------------------------


def _corrupt_neighbours(hood, target, corrupt) -> int:
    return sum(q in corrupt for q in hood.neighbours(target))


def test_utility_cannot_grind_the_graph(paillier_key):
    """v1 attack 2: the utility re-draws the graph until corrupt meters sit next to a target.
    Adversary: the utility with a set C of 5 meters of 20 (degree 6, t = 4)."""
    p = make(paillier_key, 20, "grind", degree=6)
    hood = p.hood
    assert hood.threshold == 4
    corrupt = {"m01", "m05", "m09", "m13", "m17"}
    target = "m10"
    # (a) after the reveals, any change of the directory re-derives a graph the meters do not accept
    other_tree, other_root = agg.balanced_tree(list(hood.meters), 5)
    changes = [{"group_id": b"ground-1"}, {"group_id": b"neighbourhood "}, {"threshold": 5}, {"min_reporting": 11},
               {"committee_size": 19}, {"committee_threshold": 19}, {"degree": 4}, {"slots": 2}, {"value_bits": 31},
               {"tree": other_tree, "root": other_root},
               {"meter_public": {**hood.meter_public, "m01": p.meters["m05"].x25519_public}}]
    redrawn = 0
    for change in changes:
        try:
            other = dataclasses.replace(hood, **change)
        except (ParameterError, VerificationError):
            continue
        redrawn += 1
        assert other.digest != hood.digest
        for m in hood.meters:
            with pytest.raises(StateError):
                agg.Meter(other, p.meters[m])
            with pytest.raises(ReplayError):
                agg.reveal_graph_nonce(p.meters[m], other)
    assert redrawn == len(changes)
    # (b) the corrupt meters grind their nonces after seeing the honest commitments only
    second = {m: agg.commit_to_graph(p.meters[m], HmacDrbg.from_seed(f"grind/2/{m}")) for m in hood.meters
              if m not in corrupt}
    guess = {m: bytes(32) for m in second}  # the honest nonces are hidden; any guess is as good as this one
    honest_nonce = {m: p.meters[m].graph_nonce for m in second}

    def graph_for(corrupt_nonce: bytes, honest_nonces: dict) -> agg.Neighbourhood | None:
        nonces = {**honest_nonces, **{c: corrupt_nonce for c in corrupt}}
        commitments = {m: agg.graph_commitment(m, nonces[m]) for m in hood.meters}
        draft = dataclasses.replace(hood, commitments=commitments, reveals=None)
        try:
            return dataclasses.replace(draft, reveals=nonces)
        except ParameterError:  # a graph with a meter below t neighbours: that setup would be refused
            return None

    def count(corrupt_nonce: bytes, honest_nonces: dict) -> int:
        graph = graph_for(corrupt_nonce, honest_nonces)
        return -1 if graph is None else _corrupt_neighbours(graph, target, corrupt)

    candidates = [HmacDrbg.from_seed(f"grind/candidate/{i}").random_bytes(32) for i in range(200)]
    predicted = [count(c, guess) for c in candidates]
    chosen = candidates[max(range(len(candidates)), key=predicted.__getitem__)]
    assert max(predicted) >= hood.threshold  # by its own (wrong) reckoning the grind succeeded
    for c in corrupt:  # the corrupt meters commit with the chosen nonce (their own commit_to_graph, re-aimed)
        agg.commit_to_graph(p.meters[c])
        p.meters[c].graph_nonce = chosen
    commitments = {**second, **{c: agg.graph_commitment(c, chosen) for c in corrupt}}
    draft = agg.draft_directory(p.utility.private_key, p.meters, commitments, hood.tree, hood.root, hood.group_id,
                                degree=6)
    reveals = {m: agg.reveal_graph_nonce(p.meters[m], draft) for m in hood.meters}
    actual = dataclasses.replace(draft, reveals=reveals)
    assert set(actual.neighbours(target)) == set(graph_for(chosen, honest_nonce).neighbours(target))
    real = _corrupt_neighbours(actual, target, corrupt)
    hindsight = [count(c, honest_nonce) for c in candidates]
    assert real < hood.threshold <= max(hindsight)  # only knowing the honest nonces would have let it grind
    # a corrupt meter cannot re-open its commitment to the hindsight-best nonce ...
    best = candidates[max(range(len(candidates)), key=hindsight.__getitem__)]
    with pytest.raises(VerificationError):
        dataclasses.replace(actual, reveals={**reveals, **{c: best for c in corrupt}})
    # ... nor get the honest meters to reveal again for a directory with new corrupt commitments
    regrind = dataclasses.replace(draft, commitments={**commitments, **{c: agg.graph_commitment(c, best)
                                                                          for c in corrupt}})
    for m in second:
        with pytest.raises(ReplayError):
            agg.reveal_graph_nonce(p.meters[m], regrind)
    # (c) a third setup is the last draw: a fourth commitment is refused by every meter
    third = agg.run_setup(p.utility.private_key, p.meters, hood.tree, hood.root, HmacDrbg.from_seed("grind/3"),
                          degree=6)
    draws = {hood.neighbours(target), actual.neighbours(target), third.neighbours(target)}
    assert len(draws) == 3
    for m in hood.meters:
        with pytest.raises(StateError):
            agg.commit_to_graph(p.meters[m])
    with pytest.raises(StateError):
        agg.run_setup(p.utility.private_key, p.meters, hood.tree, hood.root, HmacDrbg.from_seed("grind/4"), degree=6)


# ---------------------------------------------------------------------------
# 3. Issue 13 attack 3: shrinking the reporting set
# ---------------------------------------------------------------------------


def test_reporting_set_below_minimum_is_refused(paillier_key, encryptor):
    """v1 attack 3: every meter reports, the utility (holding every K_a) builds a root report over a
    few of them.  Adversary: the utility, first with an honest committee, then (same round, the
    strongest case) with the whole committee of 3 corrupt, so that it holds signatures on any sets."""
    p = make(paillier_key, 12, "shrink", degree=6, committee_size=3)
    hood = p.hood
    assert hood.min_reporting == 6
    readings = readings_for(p, "shrink")
    small = list(hood.meters[:hood.min_reporting - 1])
    # the utility's own receipt refuses the forged root report
    play = new_play(p, set(), 1, encryptor, "shrink")
    honest_round(play, readings)
    rs, _ = agg.Utility(hood, p.utility).bundles(1, list(play.adverts.values()))
    with pytest.raises(RecoveryError):
        agg.Utility(hood, p.utility).receive(rs, forge_root(play, small))
    # a utility that skips its own check: every committee member and every meter refuses
    sets = (set(small), set(hood.meters) - set(small))
    for member in hood.committee:
        with pytest.raises(ConsistencyError):
            ask_committee(play, member, *sets)
    play.corrupt = frozenset(hood.committee)
    for member in hood.committee:
        ask_committee(play, member, *sets)
    for m in hood.meters:
        if m not in play.corrupt:
            assert isinstance(show(play, m, *sets), ConsistencyError)
    # the boundary: min_reporting meters are enough for the committee (here the corrupt one) and the meters
    enough = (set(hood.meters[:hood.min_reporting]), set(hood.meters[hood.min_reporting:]))
    for member in hood.committee:
        ask_committee(play, member, *enough)
    assert not play.released
    answered = [m for m in enough[0] if m not in play.corrupt and show(play, m, *enough) is None]
    assert answered
    check_bound(play)


# ---------------------------------------------------------------------------
# 4. Issue 13 attack 4: the lone meter
# ---------------------------------------------------------------------------


class RogueMeter(agg.Meter):
    """A meter that skips its own range check; it tags whatever it reports with its K_i and K_alpha."""

    def _check_readings(self, readings):
        pass


def test_lone_meter_moves_sum_only_within_physical_range(paillier_key, encryptor):
    """v1 attack 4, spec 8.5 step 6.  Adversary: one meter with its own K_i and K_alpha (not the utility).
    Outside [0, |R| (2^w - 1)] the round fails with AggregateMismatchError; inside, the release moves by
    exactly what the meter chose (the honest bound: no range proof)."""
    p = make(paillier_key, 6, "lone", value_bits=8)
    hood = p.hood
    low, high = hood.layout.physical_range(len(hood.meters))
    assert (low, high) == (0, 6 * 255)
    readings = readings_for(p, "lone")
    rogue = "m03"
    others = sum(v[0] for m, v in readings.items() if m != rogue)
    width = hood.layout.slot_bits
    cases = [(-others, True), (high - others, True), (256, True), (-1, others > 0),
             (-others - 1, False), (high - others + 1, False), (10 ** 6, False), (-(10 ** 6), False),
             (1 << (width + 3), False), (-(1 << width), False), ((1 << 130) + 5, False)]
    for round_id, (fake, accepted) in enumerate(cases, start=1):
        play = new_play(p, set(), round_id, encryptor, "lone")
        advertise(play, hood.meters)
        deliver_bundles(play)
        for m in hood.meters:
            cls = RogueMeter if m == rogue else agg.Meter
            play.reports[m] = cls(hood, p.meters[m]).report(round_id, [fake] if m == rogue else readings[m],
                                                            play.rng, encryptor=encryptor)
        utility = agg.Utility(hood, p.utility)
        rs, _ = utility.bundles(round_id, list(play.adverts.values()))
        rs = utility.receive(rs, forge_root(play, hood.meters))
        for member in hood.committee:
            ask_committee(play, member, set(hood.meters), set())
        utility.collect_signatures(rs, [cbor.encode({1: agg.VERSION, 2: round_id, 3: s, 4: sig}) for s, sig in
                                        play.signed(set(hood.meters), set()).items()])
        requests = utility.unmask_requests(rs)
        responses = [play.meter(m).unmask(r) for m, r in requests.items()]
        if accepted:
            result = utility.finish(rs, responses)
            assert result.sums[0] - (others + readings[rogue][0]) == fake - readings[rogue][0]
            assert low <= result.sums[0] <= high
        else:
            with pytest.raises(AggregateMismatchError):
                utility.finish(rs, responses)


# ---------------------------------------------------------------------------
# 5. The committee: one signature per round; equivocation needs 2 tau - kappa corrupt members
# ---------------------------------------------------------------------------


def test_committee_refuses_to_sign_twice_and_equivocation_fails(paillier_key, encryptor):
    """Spec 8.2 and 11.3.  Adversary: the utility with c corrupt committee members, kappa = 7, tau = 5.
    For c < 2 tau - kappa = 3 no way of asking the honest members gets tau signatures on two different
    sets; at c = 3 it does (the bound's equivocation term is tight).  A meter shown a set with
    signatures on another set refuses."""
    p = make(paillier_key, 10, "committee", degree=4, committee_size=7, committee_threshold=5)
    hood = p.hood
    kappa, tau = hood.committee_size, hood.committee_threshold
    play = new_play(p, set(), 1, encryptor, "committee")
    honest_round(play, readings_for(p, "committee"))
    a = (set(hood.meters), set())
    b = (set(hood.meters[1:]), {hood.meters[0]})
    round_id = 1
    for c in range(0, 2 * tau - kappa + 1):
        play.corrupt = frozenset(hood.committee[:c])
        honest = hood.committee[c:]
        both = 0
        for split in itertools.product((0, 1), repeat=len(honest)):  # each honest member signs a or b
            round_id += 1
            play.round = round_id
            for member in play.corrupt:
                ask_committee(play, member, *a)
                ask_committee(play, member, *b)
            for member, choice in zip(honest, split):
                ask_committee(play, member, *(a, b)[choice])
                with pytest.raises(ReplayError):
                    ask_committee(play, member, *(b, a)[choice])
            got = [len(play.signed(*s)) for s in (a, b)]
            both += min(got) >= tau
        assert (both > 0) == (c >= 2 * tau - kappa), c
    # a meter shown set b with the signatures on set a refuses
    fresh = make(paillier_key, 10, "committee-2", degree=4, committee_size=7, committee_threshold=5)
    play2 = new_play(fresh, set(), 1, encryptor, "committee-2")
    honest_round(play2, readings_for(fresh, "committee-2"))
    a = (set(fresh.hood.meters), set())
    b = (set(fresh.hood.meters[1:]), {fresh.hood.meters[0]})
    for member in fresh.hood.committee:
        ask_committee(play2, member, *a)
    for m in fresh.hood.meters[1:]:
        assert isinstance(show(play2, m, *b, signed=a), ConsistencyError)
    assert show(play2, fresh.hood.meters[1], *a) is None


def _split_view_setup(paillier_key):
    """A second setup in which the utility shows half the meters one directory and half another (they
    differ only in the aggregator tree), both listing every meter as it committed.  Each meter checks
    only its own entry and its floors (committee_floor 4), so all reveal; with every nonce the utility
    completes both.  It keeps the first seed whose committees have tau = 3 of their 4 members in the
    view that uses them (about 7 % of setups)."""
    options = dict(committee_size=4, committee_threshold=3)
    for attempt in range(300):
        p = make(paillier_key, 12, f"split-view/{attempt}", floors={"committee_floor": 4}, **options)
        meters = list(p.hood.meters)
        views = (set(meters[:6]), set(meters[6:]))
        rng = HmacDrbg.from_seed(f"tests/adversary/split-view/{attempt}")
        commitments = {m: agg.commit_to_graph(p.meters[m], rng) for m in meters}
        trees = (agg.balanced_tree(meters, 4), agg.balanced_tree(meters, 3, prefix="other"))
        drafts = [agg.draft_directory(p.utility.private_key, p.meters, commitments, tree, root, p.hood.group_id,
                                      **options) for tree, root in trees]
        nonces = {m: agg.reveal_graph_nonce(p.meters[m], drafts[0 if m in views[0] else 1]) for m in meters}
        hoods = [dataclasses.replace(draft, reveals=nonces) for draft in drafts]
        if all(sum(c in view for c in h.committee) >= h.committee_threshold for h, view in zip(hoods, views)):
            return p, hoods, views
    raise AssertionError("no split-view setup found")


def test_split_directories_give_one_signed_set(paillier_key, encryptor):
    """Spec 11.3 C3 and 5.3, with the directory as the adversary's tool.  Adversary: the utility alone
    (C empty), which writes the directories and shows half the meters one and half another.  With a
    complete graph (N = 12 <= k + 1) every meter's neighbours are the same in both views, and each view
    has its own committee.  Before the pair secret was bound to the directory digest the utility got two
    committee-signed sets and honest meters released shares for both; now a box sealed in one view does
    not open in the other, so no honest meter takes part in a round with meters of the other view."""
    p, hoods, views = _split_view_setup(paillier_key)
    play = new_play(dataclasses.replace(p, hood=hoods[0]), set(), 1, encryptor, "split-view")
    play.views = {m: hoods[0] if m in views[0] else hoods[1] for m in hoods[0].meters}
    advertise(play, hoods[0].meters)
    _, out = agg.Utility(hoods[0], p.utility).bundles(play.round, list(play.adverts.values()))
    for m, raw in out.items():
        before = dataclasses.asdict(p.meters[m])
        with pytest.raises(VerificationError, match="does not open"):
            play.meter(m).accept_bundle(raw)
        assert dataclasses.asdict(p.meters[m]) == before
    assert hoods[0].digest != hoods[1].digest
    a, b = sorted(views[0])[0], sorted(views[1])[0]
    assert agg.static_secret(hoods[0].digest, a, p.meters[a].x25519_private, b, hoods[0].meter_public[b]) != \
        agg.static_secret(hoods[1].digest, b, p.meters[b].x25519_private, a, hoods[1].meter_public[a])


# ---------------------------------------------------------------------------
# 6. One release per meter and round, of the share the signed sets call for
# ---------------------------------------------------------------------------


@settings(PROPERTY, max_examples=25)
@given(data=st.data())
def test_meter_releases_one_share_per_neighbour_per_round(paillier_key, encryptor, data):
    """Spec 6.1 and 8.4.  Adversary: the utility with every committee member corrupt, sending one honest
    meter any sequence of MAC-valid unmask-requests (any sets, with or without tau signatures, for an
    earlier, the current or a later round), and at any point running a new setup (so that a new
    committee, also corrupt, signs under a new directory) and going on under either directory."""
    p = make(paillier_key, 9, "one-release", degree=4, committee_size=3)
    hood = p.hood
    play = new_play(p, set(hood.committee), 1, encryptor, "one-release")
    absent = set(data.draw(st.lists(st.sampled_from(hood.meters), max_size=2, unique=True), label="absent"))
    honest_round(play, readings_for(p, "one-release"), [m for m in hood.meters if m not in absent])
    target = data.draw(st.sampled_from([m for m in hood.meters if m not in play.corrupt and m in play.reports]),
                       label="target")
    state = p.meters[target]
    held = dict(state.held)
    answered, resetup = None, False
    requests = data.draw(st.lists(st.tuples(st.lists(st.sampled_from((0, 1, 2)), min_size=9, max_size=9),
                                            st.sampled_from((True, True, False)), st.sampled_from((0, 1, 1, 1, 2)),
                                            st.integers(0, 5)), min_size=1, max_size=6), label="requests")
    hoods = [hood]
    for assignment, signed, round_shift, event_ in requests:
        if event_ == 0 and not resetup:  # a new setup in the middle of the round
            hoods.append(agg.run_setup(p.utility.private_key, p.meters, hood.tree, hood.root,
                                       HmacDrbg.from_seed("one-release/resetup"), degree=4, committee_size=3))
            resetup = True
            play.corrupt = frozenset(set(play.corrupt) | set(hoods[-1].committee)) - {target}
        play.p = dataclasses.replace(p, hood=hoods[event_ % len(hoods)])
        reporting = {m for m, a in zip(hood.meters, assignment) if a == 0}
        missing = {m for m, a in zip(hood.meters, assignment) if a == 1}
        if data.draw(st.booleans(), label="truthful"):
            reporting = set(play.reports) | {target}
            missing = set(play.bundles) - reporting
        play.round = round_shift  # 0: an earlier round, 1: this round, 2: a later one
        if signed:
            for member in play.hood.committee:
                if member in play.corrupt:
                    ask_committee(play, member, reporting, missing)
        before = dict(play.released)
        outcome = show(play, target, reporting, missing)
        if outcome is not None:
            assert play.released == before
            continue
        assert answered is None, "a second answer in one round"
        answered = (reporting, missing)
        assert round_shift == 1 and signed and not resetup and play.hood is hood
        assert target in reporting and len(reporting) >= hood.min_reporting
        for peer in set(hood.neighbours(target)) | set(play.bundles[target]):
            assert (peer in reporting or peer in missing) == (peer in play.bundles[target])
        for peer, (kind, y) in play.released[target].items():
            assert y == held[peer][1 if peer in reporting else 0]
            assert kind == ("sigma" if peer in reporting else "eps")
    assert state.held == ({} if answered or resetup else held)
    event("answered once" if answered else "refused every request")
    event("new setup mid-round" if resetup else "one setup")
    # the next round's secrets are fresh: nothing of this round's shares is held any longer
    play.round = 2
    assert isinstance(show(play, target, set(hood.meters), set()), StateError)
    play.p = dataclasses.replace(p, hood=hoods[-1])
    advertise(play, [target])
    assert state.held == {}


# ---------------------------------------------------------------------------
# 7. Whatever the utility does, it learns only sums over large or closed sets
# ---------------------------------------------------------------------------


def _lying_utility(paillier_key, encryptor, data, tag):
    count = data.draw(st.integers(6, 14), label="N")
    degree = data.draw(st.sampled_from((2, 4, 6)), label="degree")
    k = min(degree, count - 1)
    threshold = data.draw(st.integers(k // 2 + 1, k), label="t")  # spec 3.1: k'/2 < t <= k'
    min_reporting = data.draw(st.integers(2, max(2, 3 * count // 4)), label="min_reporting")
    kappa = data.draw(st.integers(1, min(count, 7)), label="kappa")
    tau = data.draw(st.integers(2 * kappa // 3 + 1, kappa), label="tau")  # spec 3.1: 2 kappa/3 < tau <= kappa
    seed = data.draw(st.integers(0, 1 << 16), label="seed")
    try:
        p = make(paillier_key, count, f"{tag}/{seed}", fanout=3, degree=degree, threshold=threshold,
                 min_reporting=min_reporting, committee_size=kappa, committee_threshold=tau)
    except ParameterError:
        return None
    hood = p.hood
    meters = list(hood.meters)
    # a plan against one target: "split" is v1 attack 1 (its neighbours told it reported, their own
    # neighbours told they are missing, some told the target is missing); "asymmetric" hands the target a
    # bundle of neighbours that will be called missing while the others are called reporting; "isolate"
    # calls all but a few of its neighbours missing; "random" has no target
    target = data.draw(st.sampled_from(meters), label="target")
    plan = data.draw(st.sampled_from(("random", "split", "asymmetric", "isolate")), label="plan")
    corrupt = set(data.draw(st.lists(st.sampled_from(meters), max_size=count - 1, unique=True), label="C"))
    if plan != "random":  # C is fixed before setup, but the adversary may be lucky: some of C next to the target
        around = data.draw(st.permutations(hood.neighbours(target)), label="corrupt neighbours")
        corrupt |= set(around[:data.draw(st.integers(0, threshold - 1), label="how many")])
    corrupt.discard(target)
    play = new_play(p, corrupt, 1, encryptor, f"{tag}/{seed}")
    advertising = [m for m in meters if (plan != "random" and m == target)
                   or data.draw(st.integers(0, 9), label=f"advertises {m}") > 0]
    advertise(play, advertising)
    omit = {}
    for m in advertising:
        peers = [q for q in hood.neighbours(m) if q in advertising]
        if plan == "asymmetric" and m == target:
            size = data.draw(st.integers(min(threshold, len(peers)), max(threshold, len(peers) - threshold)),
                             label="kept")
            ordered = [q for q in peers if q in corrupt] + data.draw(
                st.permutations([q for q in peers if q not in corrupt]), label="order")
            kept = ordered[:size]  # the corrupt neighbours first: their masks are known anyway
            omit[m] = [q for q in peers if q not in kept]
        elif peers and data.draw(st.integers(0, 11), label=f"shrinks {m}") == 0:
            omit[m] = data.draw(st.lists(st.sampled_from(peers), min_size=1, max_size=2, unique=True),
                                label=f"omitted from {m}")
    deliver_bundles(play, omit)
    readings = readings_for(p, f"{tag}/{seed}")
    report(play, [m for m in play.bundles if (plan != "random" and m == target)
                  or data.draw(st.integers(0, 5), label=f"reports {m}") > 0], readings)
    # candidate (R, M) sets: the truth, the plan's lies, variants with reports "dropped", arbitrary bitmaps
    bundled = set(play.adverts)  # the utility sent each advertiser a bundle; M is who then did not report
    truth = (set(play.reports), bundled - set(play.reports))

    def called_missing(names) -> tuple[set, set]:
        return truth[0] - set(names), (truth[1] | set(names)) & bundled

    neighbours = set(hood.neighbours(target))
    candidates = [truth]
    if plan == "split":
        candidates += [called_missing(neighbours), called_missing({target})]
    elif plan == "asymmetric":
        candidates.append(called_missing(play.bundles.get(target, ())))
    elif plan == "isolate":
        few = data.draw(st.lists(st.sampled_from(sorted(neighbours)), max_size=3, unique=True), label="kept in R")
        candidates.append(called_missing(neighbours - set(few)))
    for _ in range(data.draw(st.integers(0, 2), label="candidates")):
        if data.draw(st.booleans(), label="arbitrary"):
            marks = data.draw(st.lists(st.sampled_from((0, 1, 2)), min_size=count, max_size=count), label="sets")
            candidates.append(({m for m, a in zip(meters, marks) if a == 0},
                               {m for m, a in zip(meters, marks) if a == 1}))
        else:
            candidates.append(called_missing(data.draw(st.lists(st.sampled_from(meters), max_size=count,
                                                                unique=True), label="dropped")))
    indices = st.integers(0, len(candidates) - 1)
    for member in hood.committee:
        if member in corrupt:
            for sets in candidates:
                ask_committee(play, member, *sets)
    primary = data.draw(indices, label="the set most members are asked to sign first")
    asks = [(member, primary if data.draw(st.integers(0, 7), label=f"{member} asked") else data.draw(indices))
            for member in data.draw(st.permutations(hood.committee), label="order of asking")]
    asks += data.draw(st.lists(st.tuples(st.sampled_from(hood.committee), indices), max_size=kappa), label="asks")
    for member, index in asks:
        if member not in corrupt:
            try:
                ask_committee(play, member, *candidates[index])
            except (ConsistencyError, ReplayError):
                pass
    shows = []
    if plan == "split":  # target's neighbours: "it reported" or "it is missing"; everyone else: "they are missing"
        shows += [(m, data.draw(st.sampled_from((0, 2)), label=f"split {m}") if m in neighbours else 1, None)
                  for m in meters]
    elif plan != "random":
        shows += [(m, len(candidates) - 1 if plan == "isolate" else 1, None) for m in meters]
    shows += data.draw(st.lists(st.tuples(st.sampled_from(meters), indices, indices), max_size=3 * count),
                       label="shows")
    shows += [(m, data.draw(indices, label=f"last set for {m}"), None) for m in meters]
    for m, index, signed in shows:
        if m not in corrupt:
            show(play, m, *candidates[index], signed=None if signed is None else candidates[signed])
    return play


@settings(PROPERTY, max_examples=250)
@given(data=st.data())
def test_lying_utility_learns_only_large_sums(paillier_key, encryptor, data):
    """Spec 11.2-11.5.  Adversary: the utility with a corrupt set C of any size, which chooses who
    advertises, shrinks bundles, drops reports, asks the committee to sign any sets in any order and
    shows any signed or unsigned sets to any meters.  From every released share and C's whole state it
    separates only sums over sets K in which every member has >= t neighbours in K, C or the meters
    with >= t corrupt neighbours (or |K| >= min_reporting); no honest meter has both secrets rebuilt
    unless >= t of its neighbours are corrupt; and stripping what it knows from an honest c_j gives
    pack(v_j, tau_j) only then.  (Unless 2 tau - kappa committee members are corrupt: equivocation.)"""
    play = _lying_utility(paillier_key, encryptor, data, "lying")
    if play is None:
        event("setup refused: some meter has fewer than t neighbours")
        return
    found = check_bound(play)
    event("honest meters saw different sets" if len(set(play.answers.values())) > 1 else "one set")
    event("equivocation possible" if equivocation_possible(play) else "equivocation impossible")
    event(f"meters that released shares: {'none' if not play.released else 'some'}")
    for reason in {str(exc).split(":")[0][:60] for exc in play.refusals}:
        event(f"refusal: {reason}")
    event(f"smallest separated set: {min((len(s) for s in found['sets']), default=0)}")
    if found["only_with_c_star"]:
        event("a set closed only through meters with >= t corrupt neighbours")


@pytest.mark.slow
@settings(PROPERTY, max_examples=400)
@given(data=st.data())
def test_lying_utility_learns_only_large_sums_exhaustive(paillier_key, encryptor, data):
    play = _lying_utility(paillier_key, encryptor, data, "lying-slow")
    if play is not None:
        check_bound(play)


# ---------------------------------------------------------------------------
# 8. The bound of spec 11.5
# ---------------------------------------------------------------------------


def _count_tail(population: int, marked: int, draws: int, at_least: int) -> Fraction:
    """P[at least ``at_least`` marked among ``draws``] by enumerating every draw."""
    hits = total = 0
    for chosen in itertools.combinations(range(population), draws):
        total += 1
        hits += sum(x < marked for x in chosen) >= at_least
    return Fraction(hits, total)


def test_privacy_bound_terms():
    """Spec 11.5: the terms of protocols.aggregation.privacy_bound."""
    fractions = [i / 40 for i in range(0, 21)]
    for meters, degree, t, kappa, tau in ((100, 16, 11, 32, 22), (1000, 16, 11, 32, 22), (40, 8, 6, 20, 14)):
        bounds = [agg.privacy_bound(meters, degree, t, kappa, tau, g) for g in fractions]
        for a, b in zip(bounds, bounds[1:]):
            assert a.equivocation <= b.equivocation and a.target <= b.target
            assert a.small_sets <= b.small_sets and a.total <= b.total
        for b in bounds:
            corrupt = math.floor(b.corrupt_fraction * meters)
            if 2 * tau - kappa > corrupt:
                assert b.equivocation == 0.0
            assert b.total == min(1.0, b.setups * (b.equivocation + b.small_sets))
    # small cases against a count of every draw
    for meters, degree, t, kappa, tau, gamma in ((9, 4, 2, 5, 3, 1 / 3), (10, 4, 3, 6, 4, 0.4), (8, 6, 4, 4, 3, 0.5),
                                                 (12, 4, 2, 7, 5, 0.25)):
        bound = agg.privacy_bound(meters, degree, t, kappa, tau, gamma)
        corrupt = math.floor(gamma * meters)
        assert bound.equivocation == pytest.approx(float(_count_tail(meters, corrupt, kappa, 2 * tau - kappa)),
                                                   rel=1e-12, abs=1e-15)
        assert bound.target == pytest.approx(float(_count_tail(meters - 1, corrupt, min(degree, meters - 1), t)),
                                             rel=1e-12, abs=1e-15)
    assert agg.privacy_bound(100, 16, 11, 32, 22, 0.11).equivocation == 0.0  # 11 corrupt < 2 tau - kappa = 12
    assert agg.privacy_bound(100, 16, 11, 32, 22, 0.12).equivocation > 0.0
