"""Whole aggregation rounds whose meters disagree on the DP mechanism (specs/dp.md 4.5,
specs/aggregation.md 3.2 key 7).

Adversary: the utility (or a misconfigured meter) makes one meter run the round under
a noise configuration that differs from the directory the others hold only in the
mechanism -- [SCRCS11] shares where the directory says Skellam, or the reverse.  A
meter that added the wrong kind of share would silently change the released noise
(Skellam shares sum to the central noise only if every honest meter draws them), so
the round must stop with a typed error before any share of the wrong kind is drawn.

Both ways it can happen are played through the real round code (``Meter``,
``Utility``, ``Aggregator``):

- the meter joined the agreed directory but runs the round on its own copy with its
  configured mechanism: the copy's digest differs (key 7 binds the mechanism whenever
  it is not the default), and the meter refuses to act on it (``StateError``);
- split view at setup: the utility shows that meter a directory with the other
  mechanism and the rest the true one, so each revealed its graph nonce for a
  different digest; the pairwise share boxes are keyed by the digest, so the bundles
  do not open on either side (``VerificationError``) and no meter reports.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from fractions import Fraction

import pytest

from protocols import aggregation as agg
from protocols.aggregation.partition import post_order
from protocols.errors import StateError, UsappError, VerificationError
from protocols.primitives.drbg import HmacDrbg
from protocols.privacy import dp
from protocols.privacy.dp import Mechanism, NoiseShareConfig, PrivacyLevel

METERS = tuple(f"m{i}" for i in range(6))
ODD = "m0"
DIRECTIONS = [(Mechanism.SKELLAM, Mechanism.SCRCS11), (Mechanism.SCRCS11, Mechanism.SKELLAM)]


def _noise(mechanism: Mechanism) -> NoiseShareConfig:
    # min_reporting defaults to ceil(6 / 2) = 3; 8-bit readings
    return NoiseShareConfig(PrivacyLevel.LOW, 255, 3, Fraction(1, 2), Fraction(1, 1000), mechanism)


def _exactly(kind: type[UsappError], call):
    with pytest.raises(kind) as info:
        call()
    assert type(info.value) is kind, f"{type(info.value).__name__}: {info.value}"
    return info.value


@pytest.fixture
def drawn(monkeypatch) -> list[Mechanism]:
    """The mechanism of every noise share a meter draws, in order."""
    seen: list[Mechanism] = []
    real = dp.clamped_noise_share

    def recording(config, rng=None):
        seen.append(config.mechanism)
        return real(config, rng)

    monkeypatch.setattr(dp, "clamped_noise_share", recording)
    return seen


def _round(p: agg.Provisioned, hoods: Mapping[str, agg.Neighbourhood], round_id: int, rng) -> agg.RoundResult:
    """specs/aggregation.md 6-8 as protocols.system.neighbourhood runs them, except that each
    meter acts on its own copy of the directory (``hoods``; the agreed one otherwise)."""
    hood = p.hood

    def meter(m: str) -> agg.Meter:
        return agg.Meter(hoods.get(m, hood), p.meters[m])

    adverts = [meter(m).advertise(round_id, rng) for m in hood.meters]
    utility = agg.Utility(hood, p.utility)
    state, bundles = utility.bundles(round_id, adverts)
    for m in hood.meters:
        meter(m).accept_bundle(bundles[m])
    outputs = {m: meter(m).report(round_id, [17] * hood.slots, rng) for m in hood.meters}
    for node in post_order(hood.tree, hood.root):
        outputs[node] = agg.Aggregator(hood, p.aggregators[node]).aggregate(
            round_id, [outputs[c] for c in hood.children(node) if c in outputs])
    rs = utility.receive(state, outputs[hood.root])
    utility.collect_signatures(rs, [meter(m).sign_commit(r) for m, r in utility.commit_requests(rs).items()])
    return utility.finish(rs, [meter(m).unmask(r) for m, r in utility.unmask_requests(rs).items()])


def _provision(paillier_key, mechanism: Mechanism, seed: str) -> agg.Provisioned:
    tree, root = agg.balanced_tree(list(METERS), 3)
    return agg.provision(paillier_key, list(METERS), tree, root, HmacDrbg.from_seed(f"tests/dp-round/{seed}"),
                         value_bits=8, noise=_noise(mechanism))


@pytest.mark.parametrize("agreed,configured", DIRECTIONS)
def test_agreed_round_draws_the_directory_mechanism(paillier_key, drawn, agreed, configured):
    """Control: with every meter on the agreed directory the round releases, and every share drawn
    is of the directory's mechanism."""
    p = _provision(paillier_key, agreed, f"control/{agreed.value}")
    result = _round(p, {}, 1, HmacDrbg.from_seed("round"))
    assert result.noisy and len(drawn) == len(METERS) and set(drawn) == {agreed}


@pytest.mark.parametrize("agreed,configured", DIRECTIONS)
def test_meter_running_its_own_mechanism_is_refused(paillier_key, drawn, agreed, configured):
    """The meter's copy differs from the directory it joined only in the mechanism: key 7 changes
    the digest, so the meter refuses to act (StateError) before advertising or drawing anything."""
    p = _provision(paillier_key, agreed, f"own/{agreed.value}")
    own = dataclasses.replace(p.hood, noise=dataclasses.replace(p.hood.noise, mechanism=configured))
    assert own.digest != p.hood.digest and own.directory_cbor() != p.hood.directory_cbor()
    error = _exactly(StateError, lambda: _round(p, {ODD: own}, 1, HmacDrbg.from_seed("round")))
    assert "did not reveal its graph nonce for this directory" in str(error)
    assert drawn == [] and p.meters[ODD].advertised == -1


@pytest.mark.parametrize("agreed,configured", DIRECTIONS)
def test_split_view_of_the_mechanism_stops_the_round(paillier_key, drawn, agreed, configured):
    """The utility shows one meter a directory with the other mechanism at setup.  Every meter
    reveals (its floors say nothing of the mechanism), but the two digests key different share
    boxes: the odd meter cannot open its peers' boxes and each peer cannot open the odd meter's
    (VerificationError, naming the sender), so no meter reports and no share is drawn."""
    p = _provision(paillier_key, agreed, f"split/{agreed.value}")
    states, hood = p.meters, p.hood
    rng = HmacDrbg.from_seed(f"tests/dp-round/split-setup/{agreed.value}")
    order = sorted(states, key=str.encode)
    commitments = {m: agg.commit_to_graph(states[m], rng) for m in order}
    key = p.utility.private_key

    def draft(mechanism):
        return agg.draft_directory(key, states, commitments, hood.tree, hood.root, hood.group_id,
                                   value_bits=8, noise=_noise(mechanism))

    true, shown = draft(agreed), draft(configured)
    reveals = {m: agg.reveal_graph_nonce(states[m], shown if m == ODD else true) for m in order}
    true, shown = dataclasses.replace(true, reveals=reveals), dataclasses.replace(shown, reveals=reveals)
    p = dataclasses.replace(p, hood=true)
    round_rng = HmacDrbg.from_seed("round")
    _exactly(VerificationError, lambda: _round(p, {ODD: shown}, 1, round_rng))
    # every meter, on its own view, refuses the bundle the utility made for it
    adverts = [agg.Meter(shown if m == ODD else true, states[m]).advertise(2, round_rng) for m in true.meters]
    _, bundles = agg.Utility(true, p.utility).bundles(2, adverts)
    for m in true.meters:
        error = _exactly(VerificationError,
                         lambda m=m: agg.Meter(shown if m == ODD else true, states[m]).accept_bundle(bundles[m]))
        assert "does not open" in str(error) and (m == ODD or ODD in str(error))
    assert drawn == []
