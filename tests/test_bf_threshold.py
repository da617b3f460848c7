"""Threshold extraction for RFC 5091 BF: the joint-Feldman DKG and the
distributed PKG (protocols/schemes/bf_threshold.py, specs/ibe.md 3.12).

The group is a small type-1 curve (96-bit p, 64-bit q) made by
``generate_type1_group`` with lowered minimum sizes, as
``tests/test_bf.py::test_small_group_generation_for_tests`` makes it, so
that pairings cost milliseconds.  Properties are hypothesis tests over the
threshold, the number of nodes, the DKG's randomness, the set of shares and
the identity; every rejection raises the typed error named.
"""

from __future__ import annotations

import dataclasses
import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from protocols.errors import ParameterError, RecoveryError, UsappError, VerificationError
from protocols.primitives import shamir
from protocols.primitives.drbg import HmacDrbg
from protocols.primitives.rand import ReplayRandom
from protocols.primitives.supersingular import INFINITY, Point, PointAdd1, PointMultiply
from protocols.schemes import bf_threshold as th
from protocols.schemes.bf import (
    SHA1,
    SHA256,
    BFMasterSecret,
    BFPrivateKey,
    BFPublicParameters,
    BFdecrypt,
    BFderivePubl,
    BFencrypt,
    BFextractPriv,
    generate_type1_group,
)

SMALL = {"min_p_bits": 64, "min_q_bits": 64}
NODES = (1, 2, 3, 4, 5)
ID = b"usapp-id-v1|serial=SM-0007|epoch=3"
identities = st.binary(min_size=1, max_size=48)


@pytest.fixture(scope="module")
def group():
    """(E, P): a small RFC 5091 type-1 group, 96-bit p and 64-bit q."""
    return generate_type1_group(96, 64, HmacDrbg.from_seed("usapp-tests/bf-threshold/group"), **SMALL)


@pytest.fixture(scope="module")
def setup(group):
    E, P = group
    return th.ThresholdParameters(E, P, SHA256, 3, NODES)


@pytest.fixture(scope="module")
def dkg(setup):
    """A 3-of-5 DKG: (dealings, DistributedKey, {node: s_i})."""
    rng = HmacDrbg.from_seed("usapp-tests/bf-threshold/dkg")
    dealings = [th.deal(setup, i, rng) for i in NODES]
    key = th.combine_dealings(setup, dealings)
    return dealings, key, {i: th.node_secret(setup, dealings, i) for i in NODES}


def master_secret(setup, secrets) -> BFMasterSecret:
    """s from t node secrets: only a test may assemble it."""
    points = sorted(secrets)[:setup.threshold]
    s = shamir.recover([shamir.Share(i, secrets[i]) for i in points], setup.threshold, prime=setup.q)
    return BFMasterSecret(s)


def run_dkg(group, t, n, seed):
    E, P = group
    setup = th.ThresholdParameters(E, P, SHA1, t, tuple(range(1, n + 1)))
    rng = HmacDrbg.from_seed(seed)
    dealings = [th.deal(setup, i, rng) for i in setup.nodes]
    key = th.combine_dealings(setup, dealings)
    return setup, dealings, key, {i: th.node_secret(setup, dealings, i) for i in setup.nodes}


# ---------------------------------------------------------------------------
# Correctness: any t of n shares give the single-PKG key (3.12 claims 1-3)


@settings(max_examples=30, deadline=None)
@given(tn=st.integers(1, 6).flatmap(lambda n: st.tuples(st.integers(1, n), st.just(n))),
       seed=st.binary(max_size=8), pick=st.randoms(use_true_random=False), id=identities)
def test_any_t_of_n_shares_give_the_key_bfextractpriv_gives(group, tn, seed, pick, id):
    t, n = tn
    setup, dealings, key, secrets = run_dkg(group, t, n, seed)
    E, P = group
    msk = master_secret(setup, secrets)  # assembled here only, to compare
    assert PointMultiply(E, msk.s, P) == key.params.P_pub
    assert msk.s == sum(shamir.recover([shamir.Share(i, d.shares[i]) for i in setup.nodes[:t]], t,
                                       prime=setup.q) for d in dealings) % setup.q
    subset = pick.sample(setup.nodes, pick.randint(t, n))
    shares = {i: th.extract_share(key.params, secrets[i], id) for i in subset}
    combined = th.combine_key_shares(key, id, shares)
    assert isinstance(combined, BFPrivateKey)
    assert combined == BFextractPriv(key.params, msk, id)


@settings(max_examples=10, deadline=None)
@given(id=identities, m=st.binary(max_size=64), seed=st.binary(max_size=8))
def test_combined_key_decrypts_a_bfencrypt_ciphertext(dkg, id, m, seed):
    _, key, secrets = dkg
    combined = th.combine_key_shares(key, id, {i: th.extract_share(key.params, secrets[i], id)
                                               for i in (1, 3, 5)})
    ciphertext = BFencrypt(key.params, id, m, HmacDrbg.from_seed(seed))
    assert BFdecrypt(key.params, combined, ciphertext) == m


def test_every_t_subset_gives_the_same_key(dkg):
    _, key, secrets = dkg
    shares = {i: th.extract_share(key.params, secrets[i], ID) for i in NODES}
    keys = {th.combine_key_shares(key, ID, {i: shares[i] for i in subset}).S_id
            for subset in itertools.combinations(NODES, 3)}
    assert len(keys) == 1
    assert th.combine_key_shares(key, ID, list(shares.items())).S_id in keys  # pairs, all five


def test_the_dkg_output_is_a_valid_rfc5091_parameter_set(setup, dkg):
    _, key, secrets = dkg
    params = key.params
    assert params.version == 2 and params.curve == setup.curve and params.P == setup.P
    assert BFPublicParameters.from_der(params.to_der(), **SMALL) == params
    for i, V in key.verification_keys.items():
        assert V == PointMultiply(setup.curve, secrets[i], setup.P)
    dealings, _, _ = dkg
    P_pub = INFINITY
    for d in dealings:
        P_pub = PointAdd1(setup.curve, P_pub, d.commitments[0])
    assert P_pub == params.P_pub


def test_from_public_parameters_keeps_the_group(dkg, setup):
    _, key, _ = dkg
    again = th.ThresholdParameters.from_public_parameters(key.params, 2, (7, 8, 9))
    assert (again.curve, again.P, again.hashfcn, again.threshold, again.nodes) == \
        (setup.curve, setup.P, SHA256, 2, (7, 8, 9))


# ---------------------------------------------------------------------------
# Fewer than t shares (3.12 claim 4)


@settings(max_examples=10, deadline=None)
@given(t=st.integers(2, 5), seed=st.binary(max_size=8), id=identities)
def test_t_minus_one_shares_do_not_suffice(group, t, seed, id):
    setup, _, key, secrets = run_dkg(group, t, 5, seed)
    few = {i: th.extract_share(key.params, secrets[i], id) for i in setup.nodes[:t - 1]}
    with pytest.raises(RecoveryError):
        th.combine_key_shares(key, id, few)
    # Interpolating t - 1 shares as if the threshold were t - 1 misses the key.
    E = setup.curve
    lambdas = shamir.lagrange_at_zero(list(few), prime=setup.q)
    guess = INFINITY
    for (i, d), lam in zip(few.items(), lambdas):
        guess = PointAdd1(E, guess, PointMultiply(E, lam, d))
    assert guess != BFextractPriv(key.params, master_secret(setup, secrets), id).S_id


# ---------------------------------------------------------------------------
# Dealers and nodes that misbehave are named (3.12 claims 5-6)


def test_dealt_shares_verify_and_a_bad_one_names_its_dealer(setup, dkg):
    dealings, _, _ = dkg
    for d in dealings:
        for i in NODES:
            th.verify_dealt_share(setup, d, i, d.shares[i])
    bad = dealings[1]
    with pytest.raises(VerificationError, match="dealer 2: the share for node 4 does not match"):
        th.verify_dealt_share(setup, bad, 4, (bad.shares[4] + 1) % setup.q)
    with pytest.raises(VerificationError, match="dealer 2: the share for node 4 is not in"):
        th.verify_dealt_share(setup, bad, 4, setup.q)
    forged = dataclasses.replace(bad, shares={**bad.shares, 3: (bad.shares[3] + 5) % setup.q})
    with pytest.raises(VerificationError, match="dealer 2"):
        th.node_secret(setup, [dealings[0], forged, *dealings[2:]], 3)
    th.node_secret(setup, [dealings[0], forged, *dealings[2:]], 1)  # node 1's share is intact


def test_bad_commitments_name_their_dealer(setup, dkg):
    dealings, _, _ = dkg
    E = setup.curve
    d = dealings[2]
    C = d.commitments
    off_curve = Point(C[1].x, (C[1].y + 1) % E.p)
    outside = E.random_point(HmacDrbg.from_seed("outside the subgroup"))
    assert E.is_on_curve(outside) and not E.in_subgroup(outside)
    shifted = PointAdd1(E, C[1], setup.P)  # a valid point, but not [a_1]P
    for bad in (off_curve, outside, INFINITY, shifted):
        tampered = dataclasses.replace(d, commitments=(C[0], bad, C[2]))
        with pytest.raises(VerificationError, match="dealer 3"):
            th.verify_dealt_share(setup, tampered, 1, d.shares[1])
        if bad is not shifted:  # malformed: refused by anyone, before any share is seen
            with pytest.raises(VerificationError, match="dealer 3: commitment C_1"):
                th.combine_dealings(setup, [dealings[0], tampered])
    with pytest.raises(VerificationError, match="dealer 3: 3 commitments expected"):
        th.combine_dealings(setup, [dataclasses.replace(d, commitments=C[:2])])


def test_a_bad_key_share_names_its_node(setup, dkg):
    _, key, secrets = dkg
    E = setup.curve
    shares = {i: th.extract_share(key.params, secrets[i], ID) for i in (1, 2, 3)}
    wrong = {**shares, 2: PointAdd1(E, shares[2], setup.P)}
    with pytest.raises(VerificationError, match="node 2 is not"):
        th.combine_key_shares(key, ID, wrong)
    with pytest.raises(VerificationError, match="node 2"):
        th.verify_key_share(key, 2, ID, shares[3])  # node 3's share presented as node 2's
    with pytest.raises(VerificationError, match="node 1"):
        th.verify_key_share(key, 1, b"another identity", shares[1])
    with pytest.raises(VerificationError, match="node 9, which is not a PKG node"):
        th.verify_key_share(key, 9, ID, shares[1])
    for i in shares:
        th.verify_key_share(key, i, ID, shares[i])


def test_key_shares_off_the_curve_or_outside_the_subgroup(setup, dkg):
    _, key, secrets = dkg
    E = setup.curve
    d1 = th.extract_share(key.params, secrets[1], ID)
    outside = E.random_point(HmacDrbg.from_seed("another point outside the subgroup"))
    assert not E.in_subgroup(outside)
    bad_points = {
        "not on the curve": Point(d1.x, (d1.y + 1) % E.p),
        "not in the subgroup": outside,
        "point at infinity": INFINITY,
        "outside \\[0, p\\)": Point(d1.x + E.p, d1.y),
        "must be a point": (d1.x, d1.y),
    }
    for reason, bad in bad_points.items():
        with pytest.raises(VerificationError, match=f"node 1.*{reason}"):
            th.verify_key_share(key, 1, ID, bad)
        with pytest.raises(VerificationError, match="node 1"):
            th.combine_key_shares(key, ID, {1: bad, 2: d1, 3: d1})


# ---------------------------------------------------------------------------
# Node numbers, thresholds, duplicates, parameters (3.12 claim 7)


def test_node_numbers_and_thresholds_are_validated(group, setup, dkg):
    E, P = group
    q = int(E.q)
    for nodes, t in (((1, 2, 2), 2), ((0, 1, 2), 2), ((1, 2, q), 2), ((1, -3), 1), ((1, True), 1),
                     ((1, 2, 3), 0), ((1, 2, 3), 4), ((1, 2, 3), True), ((), 1), ("abc", 1)):
        with pytest.raises(ParameterError):
            th.ThresholdParameters(E, P, SHA256, t, nodes)
    with pytest.raises(ParameterError, match="node number 2 appears twice"):
        th.ThresholdParameters(E, P, SHA256, 2, (1, 2, 2))
    with pytest.raises(ParameterError, match="dealer 6 is not one of the PKG nodes"):
        th.deal(setup, 6, HmacDrbg.from_seed("x"))
    with pytest.raises(ParameterError):
        th.deal(setup, 0, HmacDrbg.from_seed("x"))
    dealings, key, secrets = dkg
    with pytest.raises(ParameterError, match="dealer 1 appears twice"):
        th.combine_dealings(setup, [dealings[0], dealings[0]])
    with pytest.raises(ParameterError, match="dealer 1 appears twice"):
        th.node_secret(setup, [dealings[0], dealings[0]], 2)
    with pytest.raises(ParameterError):
        th.combine_dealings(setup, [])
    with pytest.raises(ParameterError):
        th.node_secret(setup, dealings, 0)
    share = th.extract_share(key.params, secrets[1], ID)
    with pytest.raises(ParameterError, match="two key shares from node 1"):
        th.combine_key_shares(key, ID, [(1, share), (2, share), (1, share)])
    for node in (0, -1, q, True, "1"):
        with pytest.raises(ParameterError):
            th.verify_key_share(key, node, ID, share)
    with pytest.raises(ParameterError):
        th.combine_key_shares(key, ID, {0: share})
    for bad in (0, q, True, 1.0):
        with pytest.raises(ParameterError):
            th.extract_share(key.params, bad, ID)


def test_parameters_and_keys_are_validated(group, dkg):
    E, P = group
    _, key, _ = dkg
    outside = E.random_point(HmacDrbg.from_seed("not of order q"))
    for bad in (outside, INFINITY, Point(P.x, (P.y + 1) % E.p)):
        with pytest.raises(ParameterError):
            th.ThresholdParameters(E, bad, SHA256, 1, (1,))
        with pytest.raises(ParameterError, match="verification key of node 2"):
            th.DistributedKey(key.params, 2, {1: key.verification_keys[1], 2: bad})
    with pytest.raises(ParameterError):
        th.ThresholdParameters(E, P, "sha-256", 1, (1,))
    with pytest.raises(ParameterError):
        th.DistributedKey(key.params, 6, dict(key.verification_keys))
    with pytest.raises(ParameterError):
        th.DistributedKey(key.params, 1, {0: P})
    with pytest.raises(ParameterError):
        th.combine_key_shares("not a key", ID, {})


def test_verification_keys_that_do_not_match_p_pub_are_caught(setup, dkg):
    _, key, secrets = dkg
    # Shares and verification keys of another DKG, under this one's P_pub.
    rng = HmacDrbg.from_seed("usapp-tests/bf-threshold/other")
    other_dealings = [th.deal(setup, i, rng) for i in NODES]
    other = th.combine_dealings(setup, other_dealings)
    mixed = th.DistributedKey(key.params, 3, other.verification_keys)
    shares = {i: th.extract_share(key.params, th.node_secret(setup, other_dealings, i), ID) for i in (1, 2, 3)}
    with pytest.raises(VerificationError, match="combined key does not verify against P_pub"):
        th.combine_key_shares(mixed, ID, shares)


# ---------------------------------------------------------------------------
# Randomness and secrecy


class Recording:
    def __init__(self, inner):
        self.inner, self.draws = inner, []

    def random_bytes(self, n):
        chunk = self.inner.random_bytes(n)
        self.draws.append(chunk)
        return chunk


def test_dealing_draws_only_from_the_injected_rng(setup):
    recording = Recording(HmacDrbg.from_seed("usapp-tests/bf-threshold/replay"))
    first = th.deal(setup, 4, recording)
    replay = ReplayRandom(list(recording.draws))
    assert th.deal(setup, 4, replay) == first and replay.exhausted
    assert th.deal(setup, 4, HmacDrbg.from_seed("other")) != first


def test_secrets_stay_out_of_repr(dkg):
    dealings, key, secrets = dkg
    text = repr(dealings[0]) + repr(key) + repr(th.combine_key_shares(
        key, ID, {i: th.extract_share(key.params, secrets[i], ID) for i in (1, 2, 3)}))
    for value in list(dealings[0].shares.values()) + list(secrets.values()):
        assert str(value) not in text and hex(value)[2:] not in text


def test_every_error_is_typed(setup, dkg):
    _, key, _ = dkg
    for call in (lambda: th.verify_key_share(key, 1, "not bytes", INFINITY),
                 lambda: th.combine_key_shares(key, ID, 42),
                 lambda: th.combine_key_shares(key, ID, [(1,)]),
                 lambda: th.combine_dealings(setup, "dealings"),
                 lambda: th.verify_dealt_share(setup, "dealing", 1, 0)):
        with pytest.raises(UsappError):
            call()


def test_threshold_issuance_at_the_112_bit_level():
    setup = th.threshold_setup(2048, 2, (1, 2, 3), HmacDrbg.from_seed("usapp-tests/bf-threshold/2048"))
    assert setup.curve.q.bit_length() == 224
    rng = HmacDrbg.from_seed("usapp-tests/bf-threshold/2048-dkg")
    dealings = [th.deal(setup, i, rng) for i in setup.nodes]
    key = th.combine_dealings(setup, dealings)
    shares = {i: th.extract_share(key.params, th.node_secret(setup, dealings, i), ID) for i in (1, 3)}
    combined = th.combine_key_shares(key, ID, shares)
    assert BFdecrypt(key.params, combined, BFencrypt(key.params, ID, b"k" * 32, rng)) == b"k" * 32
    assert BFderivePubl(key.params, ID) != combined.S_id
