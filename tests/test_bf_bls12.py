"""BF identity-based KEM on BLS12-381 and its threshold extraction (specs/ibe.md)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from protocols.errors import (
    DecodeError,
    ParameterError,
    RecoveryError,
    UsappError,
    VerificationError,
)
from protocols.primitives.bls12_381 import G1, G2, R
from protocols.primitives.drbg import HmacDrbg
from protocols.schemes import bf_bls12 as bf

identities = st.binary(min_size=1, max_size=64)


@pytest.fixture(scope="module")
def master():
    return bf.setup(HmacDrbg.from_seed("tests/bf-bls12/master"))


@pytest.fixture(scope="module")
def dkg():
    """A 3-of-5 distributed PKG from a joint-Feldman DKG."""
    rng = HmacDrbg.from_seed("tests/bf-bls12/dkg")
    nodes = [1, 2, 3, 4, 5]
    dealings = [bf.deal(i, 3, nodes, rng) for i in nodes]
    return nodes, dealings, bf.combine_dealings(dealings, 3, nodes)


@settings(max_examples=15, deadline=None)
@given(identity=identities, seed=st.binary(max_size=8))
def test_decapsulate_recovers_the_key_for_any_identity(master, identity, seed):
    key = bf.extract(master, identity)
    assert bf.verify_private_key(master.params, key)
    shared, enc = bf.encapsulate(master.params, identity, HmacDrbg.from_seed(seed))
    assert len(enc) == bf.ENC_BYTES and len(shared) == bf.KEY_BYTES
    assert bf.decapsulate(key, enc) == shared


@settings(max_examples=10, deadline=None)
@given(first=identities, second=identities)
def test_a_key_for_one_identity_never_opens_another(master, first, second):
    if first == second:
        return
    _, enc = bf.encapsulate(master.params, first, HmacDrbg.from_seed(first))
    with pytest.raises(VerificationError):
        bf.decapsulate(bf.extract(master, second), enc)
    assert not bf.verify_private_key(master.params, bf.PrivateKey(first, bf.extract(master, second).d))


@settings(max_examples=25, deadline=None)
@given(index=st.integers(0, bf.ENC_BYTES - 1), mask=st.integers(1, 255))
def test_any_change_to_an_encapsulation_is_refused(master, index, mask):
    identity = b"meter/42/epoch-7"
    key = bf.extract(master, identity)
    _, enc = bf.encapsulate(master.params, identity, HmacDrbg.from_seed("tamper"))
    changed = enc[:index] + bytes([enc[index] ^ mask]) + enc[index + 1:]
    with pytest.raises(UsappError):
        bf.decapsulate(key, changed)


def test_bad_encapsulations_raise_typed_errors(master):
    key = bf.extract(master, b"id")
    _, enc = bf.encapsulate(master.params, b"id", HmacDrbg.from_seed("bad"))
    with pytest.raises(DecodeError):
        bf.decapsulate(key, enc[:-1])
    with pytest.raises(DecodeError):
        bf.decapsulate(key, bytes([0xC0]) + bytes(95) + enc[96:])  # the identity: refused
    with pytest.raises(DecodeError):
        bf.decapsulate(key, bytes(96) + enc[96:])  # not a compressed point
    with pytest.raises(ParameterError):
        bf.encapsulate(master.params, b"", HmacDrbg.from_seed("x"))
    with pytest.raises(ParameterError):
        bf.MasterKey(0)
    with pytest.raises(ParameterError):
        bf.PublicParams(G2.identity())


def test_encapsulation_is_deterministic_for_a_seed(master):
    a = bf.encapsulate(master.params, b"id", HmacDrbg.from_seed("same"))
    b = bf.encapsulate(master.params, b"id", HmacDrbg.from_seed("same"))
    assert a == b


# ---------------------------------------------------------------------------
# Distributed PKG
# ---------------------------------------------------------------------------


def test_dealt_shares_verify_and_a_bad_one_names_its_dealer(dkg):
    nodes, dealings, _ = dkg
    for dealing in dealings:
        for node in nodes:
            bf.verify_dealt_share(dealing, node, dealing.shares[node])
    with pytest.raises(VerificationError, match="dealer 2: share for node 4"):
        bf.verify_dealt_share(dealings[1], 4, (dealings[1].shares[4] + 1) % R)


@settings(max_examples=10, deadline=None)
@given(subset=st.lists(st.sampled_from([1, 2, 3, 4, 5]), min_size=3, max_size=5, unique=True),
       identity=identities)
def test_any_t_of_n_shares_give_the_same_key(dkg, subset, identity):
    """Threshold issuance with any t of n shares equals single-PKG issuance
    with the (never assembled) master secret: same key, verified by pairing."""
    nodes, dealings, key = dkg
    shares = {i: bf.extract_share(bf.node_secret(dealings, i), identity) for i in subset}
    combined = bf.combine_key_shares(key, identity, shares)
    s = sum(_secret_of(d) for d in dealings) % R  # assembled here only, to compare
    assert combined.d == bf.extract(bf.MasterKey(s), identity).d
    shared, enc = bf.encapsulate(key.params, identity, HmacDrbg.from_seed(identity))
    assert bf.decapsulate(combined, enc) == shared


def _secret_of(dealing) -> int:
    """f_j(0) from t of the dealer's shares: only a test may assemble it."""
    from protocols.primitives import shamir

    points = sorted(dealing.shares)[:len(dealing.commitments)]
    return shamir.recover([shamir.Share(x, dealing.shares[x]) for x in points], len(points), prime=R)


def test_a_bad_key_share_is_detected_and_attributed(dkg):
    nodes, dealings, key = dkg
    identity = b"meter/7/epoch-1"
    shares = {i: bf.extract_share(bf.node_secret(dealings, i), identity) for i in (1, 2, 3)}
    shares[2] = shares[2] + G1.generator()
    with pytest.raises(VerificationError, match="node 2"):
        bf.combine_key_shares(key, identity, shares)
    with pytest.raises(VerificationError, match="node 9"):
        bf.verify_key_share(key, 9, identity, shares[1])
    with pytest.raises(RecoveryError):
        bf.combine_key_shares(key, identity, {i: shares[i] for i in (1, 3)})


def test_dkg_parameter_checks():
    with pytest.raises(ParameterError):
        bf.deal(1, 0, [1, 2])
    with pytest.raises(ParameterError):
        bf.deal(1, 3, [1, 2])
    with pytest.raises(ParameterError):
        bf.deal(1, 2, [1, 1])
    with pytest.raises(ParameterError):
        bf.combine_dealings([], 2, [1, 2])


# ---------------------------------------------------------------------------
# A rogue dealer (specs/ibe.md 4.5.4, specs/issuance.md 10.2)
# ---------------------------------------------------------------------------

NODES = [1, 2, 3, 4, 5]
CONTEXT = b"tests/bf-bls12/dkg-session-1"


@pytest.fixture(scope="module")
def honest_four():
    rng = HmacDrbg.from_seed("tests/bf-bls12/rogue")
    return [bf.deal(i, 3, NODES, rng, CONTEXT) for i in NODES[:4]]


def _rogue_dealing(honest, x: int, proof_from=None) -> bf.Dealing:
    """Dealer 5, rushing: it sees the others' commitments and sets C_0 = x g2 - sum of theirs, so that
    P_pub = x g2 for an x it knows.  It cannot know log C_0, so its shares and proof are guesses."""
    c0 = G2.generator() * x
    for d in honest:
        c0 = c0 + (-d.commitments[0])
    r, z = (proof_from.proof_commitment, proof_from.proof_response) if proof_from else (G2.generator() * 3, 11)
    return bf.Dealing(5, (c0, G2.generator() * 5, G2.generator() * 7), {i: 1 for i in NODES}, r, z)


def test_a_rushing_rogue_dealer_cannot_set_the_master_key(honest_four):
    """Adversary: PKG node 5, dealing last; it sees every other dealer's commitments (public) and
    chooses its own.  Before the fix combine_dealings returned P_pub = x g2 and node_secret summed its
    unchecked shares, so node 5 decrypted alone.  Now each honest node's node_secret refuses its share
    and combine_dealings refuses its proof of possession, naming dealer 5."""
    x = 0x1234567
    for proof_from in (None, honest_four[0]):
        dealings = honest_four + [_rogue_dealing(honest_four, x, proof_from)]
        with pytest.raises(VerificationError, match="dealer 5: the proof of possession"):
            bf.combine_dealings(dealings, 3, NODES, CONTEXT)
        for node in NODES[:4]:
            with pytest.raises(VerificationError, match="dealer 5: share for node"):
                bf.node_secret(dealings, node)
    # without the rogue dealer (disqualified), the honest four give a key nobody holds
    key = bf.combine_dealings(honest_four, 3, NODES, CONTEXT)
    assert key.params.p_pub != G2.generator() * x
    identity = b"usapp-id-v2/acme/meter/SM-1/7"
    shares = {i: bf.extract_share(bf.node_secret(honest_four, i), identity) for i in (1, 2, 4)}
    combined = bf.combine_key_shares(key, identity, shares)
    shared, enc = bf.encapsulate(key.params, identity, HmacDrbg.from_seed("rogue-enc"))
    assert bf.decapsulate(combined, enc) == shared
    with pytest.raises(VerificationError):
        bf.decapsulate(bf.extract(bf.MasterKey(x), identity), enc)


def test_the_proof_of_possession_is_bound_to_its_context_and_dealer(honest_four):
    """A proof copied into another DKG (context, threshold, node list) or relabelled with another
    dealer does not verify; nor does a missing or altered one."""
    good = honest_four[1]
    bf.verify_possession(good, 3, NODES, CONTEXT)
    for threshold, nodes, context in ((3, NODES, b"another session"), (3, [1, 2, 3, 4, 6], CONTEXT),
                                      (3, [2, 1, 3, 4, 5], CONTEXT), (3, NODES + [6], CONTEXT)):
        with pytest.raises(VerificationError, match="dealer 2: the proof"):
            bf.verify_possession(good, threshold, nodes, context)
    relabelled = bf.Dealing(5, good.commitments, good.shares, good.proof_commitment, good.proof_response)
    with pytest.raises(VerificationError, match="dealer 5: the proof"):
        bf.verify_possession(relabelled, 3, NODES, CONTEXT)
    for r, z, message in ((None, None, "no proof"), (good.proof_commitment, R, "no proof"),
                          (good.proof_commitment, (good.proof_response + 1) % R, "does not verify"),
                          (G2.identity(), good.proof_response, "identity")):
        with pytest.raises(VerificationError, match=message):
            bf.verify_possession(bf.Dealing(2, good.commitments, good.shares, r, z), 3, NODES, CONTEXT)
    with pytest.raises(VerificationError, match="wrong degree"):
        bf.combine_dealings(honest_four[:1] + [bf.Dealing(2, good.commitments[:2], good.shares,
                                                           good.proof_commitment, good.proof_response)], 3, NODES,
                            CONTEXT)
    with pytest.raises(ParameterError, match="twice"):
        bf.combine_dealings([good, good], 3, NODES, CONTEXT)
    with pytest.raises(ParameterError, match="twice"):
        bf.node_secret([good, good], 1)
    with pytest.raises(ParameterError):
        bf.deal(1, 3, NODES, HmacDrbg.from_seed("x"), b"c" * 256)


def test_node_secret_checks_every_dealt_share(honest_four):
    tampered = dict(honest_four[2].shares)
    tampered[4] = (tampered[4] + 1) % R
    d = honest_four[2]
    dealings = [honest_four[0], bf.Dealing(3, d.commitments, tampered, d.proof_commitment, d.proof_response)]
    with pytest.raises(VerificationError, match="dealer 3: share for node 4"):
        bf.node_secret(dealings, 4)
    assert bf.node_secret(dealings, 1) == (honest_four[0].shares[1] + d.shares[1]) % R
    with pytest.raises(ParameterError, match="not dealt a share"):
        bf.node_secret(dealings, 9)
