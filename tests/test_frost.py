"""FROST(Ed25519, SHA-512), RFC 9591 (protocols/schemes/frost.py, specs/frost.md).

The RFC's Appendix E.1 vector; properties (any t-of-n subset signs, and the
signature verifies under ``frost.verify`` and under ``cryptography``'s RFC 8032
verifier; t - 1 honest shares plus a forged one do not; a share for one
message does not help on another); identifiable abort; nonce single use; the
input checks of RFC 9591 section 5, each with its exact typed error; and the
distributed key generation.
"""

from __future__ import annotations

import dataclasses
import json
from itertools import combinations
from pathlib import Path

import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from hypothesis import given, settings
from hypothesis import strategies as st

from protocols.errors import DecodeError, ParameterError, ReplayError, StateError, VerificationError
from protocols.primitives import ed25519 as G
from protocols.primitives.drbg import HmacDrbg
from protocols.schemes import frost
from protocols.system.vectorsets import rfc9591

VECTORS = Path(__file__).resolve().parent.parent / "vectors" / "rfc9591.json"


def rfc8032_verify(pk: G.Element, msg: bytes, sig: frost.Signature) -> None:
    """An independent RFC 8032 verifier (OpenSSL through ``cryptography``)."""
    Ed25519PublicKey.from_public_bytes(G.SerializeElement(pk)).verify(sig.to_bytes(), msg)


def dealer(t: int, n: int, seed: str):
    rng = HmacDrbg.from_seed(f"tests/frost/{seed}")
    secret = G.RandomScalar(rng) or 1
    shares, _, vss = frost.trusted_dealer_keygen(secret, n, t, rng)
    packages, group = frost.key_packages_from_dealer(shares, vss, n, t)
    return secret, packages, group


def run_signing(packages, group, signers, msg, rng):
    """Both rounds through Signer, then aggregate_and_verify."""
    parties = {i: frost.Signer(packages[i - 1]) for i in signers}
    commitments = [parties[i].commit(rng) for i in sorted(signers)]
    shares = [parties[i].sign(msg, commitments) for i in sorted(signers)]
    return commitments, shares, frost.aggregate_and_verify(group, commitments, msg, shares)


@pytest.fixture(scope="module")
def group_2_of_3():
    return dealer(2, 3, "2-of-3")


@pytest.fixture
def session(group_2_of_3):
    """A fresh 2-of-3 session with signers 1 and 3: (packages, group, signers, commitments)."""
    _, packages, group = group_2_of_3
    rng = HmacDrbg.from_seed("tests/frost/session")
    signers = {i: frost.Signer(packages[i - 1]) for i in (1, 3)}
    commitments = [signers[i].commit(rng) for i in (1, 3)]
    return packages, group, signers, commitments


# --------------------------------------------------------------------------
# RFC 9591 Appendix E.1


def test_rfc9591_appendix_e1_vector_recomputes():
    envelope = json.loads(VECTORS.read_text(encoding="utf-8"))
    vector = next(v for v in envelope["vectors"] if v["name"] == "E.1")
    rfc9591.verify_vector(vector)  # every field, byte for byte
    # and directly, the final signature under both verifiers
    pk = G.DeserializeElement(bytes.fromhex(vector["group_public_key"]))
    sig = frost.Signature.from_bytes(bytes.fromhex(vector["final_output"]["sig"]))
    msg = bytes.fromhex(vector["message"])
    frost.verify(msg, sig, pk)
    rfc8032_verify(pk, msg, sig)


def test_rfc9591_vector_mismatch_names_the_field():
    from protocols.errors import VectorMismatchError

    vector = json.loads(VECTORS.read_text(encoding="utf-8"))["vectors"][0]
    vector["round_one"]["3"]["binding_factor"] = "00" * 32
    with pytest.raises(VectorMismatchError, match="round_one.3.binding_factor"):
        rfc9591.verify_vector(vector)


def test_context_string_and_hash_domain_separation():
    assert frost.CONTEXT_STRING == b"FROST-ED25519-SHA512-v1"
    import hashlib

    m = b"abc"
    assert frost.H2(m) == int.from_bytes(hashlib.sha512(m).digest(), "little") % G.L
    assert frost.H4(m) == hashlib.sha512(b"FROST-ED25519-SHA512-v1msgabc").digest()
    assert frost.H5(m) == hashlib.sha512(b"FROST-ED25519-SHA512-v1comabc").digest()
    assert len({frost.H1(m), frost.H2(m), frost.H3(m)}) == 3


# --------------------------------------------------------------------------
# Properties


@st.composite
def threshold_subsets(draw):
    n = draw(st.integers(min_value=2, max_value=5))
    t = draw(st.integers(min_value=2, max_value=n))
    signers = draw(st.sets(st.integers(min_value=1, max_value=n), min_size=t, max_size=n))
    return t, n, sorted(signers)


@settings(max_examples=8, deadline=None)
@given(params=threshold_subsets(), msg=st.binary(max_size=64), seed=st.integers(0, 2**32))
def test_any_threshold_subset_signs_and_rfc8032_verifies(params, msg, seed):
    t, n, signers = params
    _, packages, group = dealer(t, n, f"subset-{seed}")
    rng = HmacDrbg.from_seed(f"tests/frost/nonces-{seed}")
    _, _, signature = run_signing(packages, group, signers, msg, rng)
    frost.verify(msg, signature, group.group_public_key)
    frost.verify(msg, signature.to_bytes(), G.SerializeElement(group.group_public_key))
    rfc8032_verify(group.group_public_key, msg, signature)


@settings(max_examples=6, deadline=None)
@given(forged=st.integers(min_value=0, max_value=G.L - 1), seed=st.integers(0, 2**32))
def test_t_minus_1_shares_plus_a_forged_share_do_not_verify(forged, seed):
    """3-of-4: signers 1, 2 honest, participant 4's share replaced by any scalar."""
    _, packages, group = dealer(3, 4, "3-of-4")
    rng = HmacDrbg.from_seed(f"tests/frost/forge-{seed}")
    signers = {i: frost.Signer(packages[i - 1]) for i in (1, 2, 4)}
    commitments = [signers[i].commit(rng) for i in (1, 2, 4)]
    msg = b"open valve 7"
    shares = [signers[i].sign(msg, commitments) for i in (1, 2)]
    honest_4 = signers[4].sign(msg, commitments)
    if forged == honest_4.share:
        return
    shares.append(frost.SignatureShare(4, forged))
    signature = frost.aggregate(commitments, msg, group.group_public_key, shares)
    with pytest.raises(VerificationError):
        frost.verify(msg, signature, group.group_public_key)
    with pytest.raises(InvalidSignature):
        rfc8032_verify(group.group_public_key, msg, signature)
    with pytest.raises(VerificationError, match="participant 4"):
        frost.aggregate_and_verify(group, commitments, msg, shares)


def test_binding_a_share_for_message_a_does_not_help_on_message_b(session):
    packages, group, signers, commitments = session
    share_1_for_a = signers[1].sign(b"message A", commitments)
    share_3_for_b = signers[3].sign(b"message B", commitments)
    for msg in (b"message A", b"message B"):
        signature = frost.aggregate(commitments, msg, group.group_public_key, [share_1_for_a, share_3_for_b])
        with pytest.raises(VerificationError):
            frost.verify(msg, signature, group.group_public_key)
    with pytest.raises(VerificationError, match="participant 3"):
        frost.verify_signature_share(3, group.public_key(3), commitments[1], share_3_for_b.share,
                                     commitments, group.group_public_key, b"message A")


def test_secret_recovers_from_any_threshold_of_dealer_shares():
    secret, packages, _ = dealer(3, 5, "recover")
    for subset in combinations(packages, 3):
        points = [(kp.identifier, kp.secret_share) for kp in subset]
        assert frost.secret_share_combine(points, 3) == secret
    with pytest.raises(ParameterError):
        frost.secret_share_combine([(1, packages[0].secret_share)], 3)


# --------------------------------------------------------------------------
# Identifiable abort and the coordinator's checks


def test_bad_signature_share_names_the_culprit(session):
    packages, group, signers, commitments = session
    msg = b"shed load"
    shares = [signers[i].sign(msg, commitments) for i in (1, 3)]
    tampered = [shares[0], frost.SignatureShare(3, (shares[1].share + 1) % G.L)]
    with pytest.raises(VerificationError, match="participant 3"):
        frost.aggregate_and_verify(group, commitments, msg, tampered)
    with pytest.raises(VerificationError, match="participant 3"):
        frost.verify_signature_share(3, group.public_key(3), commitments[1], tampered[1].share,
                                     commitments, group.group_public_key, msg)
    frost.verify_signature_share(1, group.public_key(1), commitments[0], shares[0].share,
                                 commitments, group.group_public_key, msg)


def test_share_from_a_non_participant_is_refused(session):
    packages, group, signers, commitments = session
    msg = b"m"
    shares = [signers[i].sign(msg, commitments) for i in (1, 3)]
    intruder = frost.SignatureShare(2, shares[0].share)
    with pytest.raises(VerificationError, match="participant 2, who is not in the signing set"):
        frost.aggregate(commitments, msg, group.group_public_key, shares + [intruder])
    with pytest.raises(VerificationError, match="participant 2"):
        frost.aggregate_and_verify(group, commitments, msg, [shares[0], intruder, shares[1]])
    with pytest.raises(ParameterError, match="invalid participant: 2"):
        frost.binding_factor_for_participant(
            frost.compute_binding_factors(group.group_public_key, commitments, msg), 2)
    with pytest.raises(ParameterError, match="no signature share"):
        frost.aggregate(commitments, msg, group.group_public_key, shares[:1])
    with pytest.raises(VerificationError, match="two signature shares"):
        frost.aggregate(commitments, msg, group.group_public_key, [shares[0], shares[0], shares[1]])


def test_commitment_list_checks(session, group_2_of_3):
    packages, group, signers, commitments = session
    _, _, group5 = dealer(2, 5, "2-of-5")
    c1, c3 = commitments
    with pytest.raises(ParameterError, match="not sorted"):
        frost.validate_commitment_list([c3, c1], 2, 3)
    with pytest.raises(ParameterError, match="duplicate"):
        frost.validate_commitment_list([c1, c1], 2, 3)
    with pytest.raises(ParameterError, match="between 2 and 3"):
        frost.validate_commitment_list([c1], 2, 3)
    with pytest.raises(ParameterError, match="not in the commitment_list"):
        frost.validate_commitment_list([c1, c3], 2, 3, identifier=2)
    with pytest.raises(ParameterError, match=r"not in \[1, 3\]"):
        frost.validate_commitment_list([c1, dataclasses.replace(c3, identifier=4)], 2, 3)
    # the signer applies them before touching its nonces
    with pytest.raises(ParameterError, match="not sorted"):
        signers[1].sign(b"m", [c3, c1])
    with pytest.raises(ParameterError, match="between 2 and 3"):
        signers[1].sign(b"m", [c1])
    with pytest.raises(ParameterError, match="participant 1 is not in"):
        signers[1].sign(b"m", [dataclasses.replace(c1, identifier=2), c3])
    assert signers[1].pending == 1
    # the coordinator too: fewer than MIN signers
    share = signers[1].sign(b"m", commitments)
    with pytest.raises(ParameterError, match="between 2 and 3"):
        frost.aggregate_and_verify(group, [c1], b"m", [share])
    # the RFC helpers refuse unsorted or duplicated lists as well
    for bad in ([c3, c1], [c1, c1]):
        with pytest.raises(ParameterError):
            frost.encode_group_commitment_list(bad)


@pytest.mark.parametrize("identifier", [0, -1, 4, True, "1"])
def test_identifiers_outside_one_to_max_are_refused(identifier):
    with pytest.raises(ParameterError):
        frost.check_identifier(identifier, 3)


def test_parameters_are_checked():
    for t, n in ((1, 3), (4, 3), (0, 0), (2, G.L)):
        with pytest.raises(ParameterError):
            frost.check_parameters(t, n)
    with pytest.raises(ParameterError):
        frost.trusted_dealer_keygen(0, 3, 2)


# --------------------------------------------------------------------------
# Nonce single use


def test_nonce_reuse_is_a_replay_error(session):
    packages, group, signers, commitments = session
    signers[1].sign(b"first", commitments)
    with pytest.raises(ReplayError):
        signers[1].sign(b"first", commitments)
    with pytest.raises(ReplayError):
        signers[1].sign(b"second message", commitments)
    assert signers[1].pending == 0


def _extract_share_by_rollback(packages, group, snapshot, restore, rounds=3):
    """The rollback attack of specs/frost.md 5.5.  Adversary: the coordinator with participant 2's key
    share, who can snapshot participant 1's state after round one and restore it.  Each restore asks
    for one more share over the same nonces with a fresh co-signer commitment; three shares (three
    linear equations in the two nonces and sk_1) give sk_1.  Returns the shares it got and sk_1 if
    it got there."""
    rng = HmacDrbg.from_seed("tests/frost/rollback")
    victim = frost.Signer(packages[0])
    mine = victim.commit(rng)
    saved = snapshot(victim)
    msg = b"disconnect-all"
    equations = []
    for round_ in range(rounds):
        if round_:
            victim = restore(saved)
        _, theirs = frost.commit(2, packages[1].secret_share, rng)
        commitments = [mine, theirs]
        try:
            share = victim.sign(msg, commitments)
        except StateError:
            break
        factors = dict(frost.compute_binding_factors(group.group_public_key, commitments, msg))
        challenge = frost.compute_challenge(
            frost.compute_group_commitment(commitments, list(factors.items())), group.group_public_key, msg)
        equations.append((factors[1], frost.derive_interpolating_value([1, 2], 1) * challenge % G.L, share.share))
    if len(equations) < 3:
        return len(equations), None
    (r1, k1, z1), (r2, k2, z2), (r3, k3, z3) = equations
    a1, b1, c1 = (r1 - r2) % G.L, (k1 - k2) % G.L, (z1 - z2) % G.L
    a2, b2, c2 = (r1 - r3) % G.L, (k1 - k3) % G.L, (z1 - z3) % G.L
    return len(equations), (a1 * c2 - a2 * c1) * pow(a1 * b2 - a2 * b1, -1, G.L) % G.L


@pytest.mark.parametrize("how", ["deepcopy", "copy", "pickle", "export", "replace"])
def test_a_restored_snapshot_holds_no_pending_nonces(group_2_of_3, how):
    """Spec 5.5: a snapshot taken between round one and round two, restored, cannot sign again, however
    it was taken; without that the adversary of _extract_share_by_rollback recovers sk_1."""
    import copy
    import pickle

    snapshot, restore = {
        "deepcopy": (copy.deepcopy, copy.deepcopy),
        "copy": (copy.copy, copy.copy),
        "pickle": (pickle.dumps, pickle.loads),
        "export": (lambda s: s.export(), frost.Signer.restore),
        "replace": (lambda s: s, dataclasses.replace),
    }[how]
    _, packages, group = group_2_of_3
    shares, recovered = _extract_share_by_rollback(packages, group, snapshot, restore)
    assert (shares, recovered) == (1, None)
    assert recovered != packages[0].secret_share


def test_the_spent_record_is_journalled_before_the_share_exists(group_2_of_3):
    """Spec 5.5: sign hands the store the record with the nonces spent before computing the share;
    a store that fails to write leaves no share and no usable nonces; a restart from the record
    signs nothing with the old commitments."""
    _, packages, group = group_2_of_3
    rng = HmacDrbg.from_seed("tests/frost/journal")
    written: list[frost.SignerRecord] = []
    signer = frost.Signer(packages[0], journal=written.append)
    mine = signer.commit(rng)
    _, theirs = frost.commit(2, packages[1].secret_share, rng)
    share = signer.sign(b"m", [mine, theirs])
    assert isinstance(share, frost.SignatureShare)
    assert written and mine.to_bytes() in written[-1].spent and signer.pending == 0
    record = written[-1]
    assert not hasattr(record, "_pending") and "nonce" not in repr(record).lower()
    restarted = frost.Signer.restore(record)
    with pytest.raises(ReplayError):
        restarted.sign(b"m", [mine, theirs])

    def failing_store(record):
        raise OSError("disk full")

    broken = frost.Signer(packages[0], journal=failing_store)
    mine = broken.commit(rng)
    with pytest.raises(OSError):
        broken.sign(b"m", [mine, theirs])
    with pytest.raises(ReplayError):   # the nonces are spent although no share left
        broken.sign(b"m", [mine, theirs])


def test_signer_record_and_restore_check_their_inputs(group_2_of_3):
    _, packages, _ = group_2_of_3
    with pytest.raises(ParameterError):
        frost.SignerRecord(packages[0], {bytes(96)})
    with pytest.raises(ParameterError):
        frost.SignerRecord(packages[0], frozenset({bytes(95)}))
    with pytest.raises(ParameterError):
        frost.SignerRecord("key", frozenset())
    with pytest.raises(ParameterError):
        frost.Signer.restore({"key_package": packages[0]})
    with pytest.raises(ParameterError):
        frost.Signer(packages[0], journal="store")
    with pytest.raises(ParameterError):
        frost.Signer(packages[0], spent=[])


@settings(max_examples=25, deadline=None)
@given(script=st.lists(st.sampled_from(["commit", "sign", "snapshot", "restore"]), min_size=1, max_size=14))
def test_no_interleaving_of_snapshots_and_restores_signs_twice_with_one_nonce_pair(group_2_of_3, script):
    """Spec 5.5, as a property: whatever order commits, signs, snapshots and restores come in, no
    commitment of participant 1 ever yields two signature shares."""
    import copy

    _, packages, _ = group_2_of_3
    rng = HmacDrbg.from_seed("tests/frost/interleave")
    signer = frost.Signer(packages[0])
    made: list[frost.SigningCommitments] = []
    snapshots = []
    signed: dict[bytes, int] = {}
    for i, step in enumerate(script):
        if step == "commit":
            made.append(signer.commit(rng))
        elif step == "snapshot":
            snapshots.append(copy.deepcopy(signer) if i % 2 else signer.export())
        elif step == "restore" and snapshots:
            saved = snapshots[-1]
            signer = copy.deepcopy(saved) if isinstance(saved, frost.Signer) else frost.Signer.restore(saved)
        elif step == "sign" and made:
            _, theirs = frost.commit(2, packages[1].secret_share, rng)
            for mine in made:
                try:
                    signer.sign(b"m", [mine, theirs])
                except StateError:          # ReplayError included
                    continue
                signed[mine.to_bytes()] = signed.get(mine.to_bytes(), 0) + 1
    assert all(count == 1 for count in signed.values())


def test_unknown_commitments_are_a_state_error(session, group_2_of_3):
    packages, group, signers, commitments = session
    rng = HmacDrbg.from_seed("tests/frost/other")
    _, forged = frost.commit(1, packages[0].secret_share, rng)
    with pytest.raises(StateError, match="no pending"):
        signers[1].sign(b"m", [forged, commitments[1]])
    assert signers[1].pending == 1  # its real nonces are still there


def test_each_commit_gives_fresh_nonces(group_2_of_3):
    _, packages, _ = group_2_of_3
    signer = frost.Signer(packages[0])
    rng = HmacDrbg.from_seed("tests/frost/fresh")
    a, b = signer.commit(rng), signer.commit(rng)
    assert a != b and signer.pending == 2


def test_sign_checks_the_nonces_match_the_list(session):
    packages, group, signers, commitments = session
    rng = HmacDrbg.from_seed("tests/frost/mismatch")
    nonces, _ = frost.commit(1, packages[0].secret_share, rng)
    with pytest.raises(ParameterError, match="round-one commitments"):
        frost.sign(1, packages[0].secret_share, group.group_public_key, nonces, b"m", commitments)


def test_secrets_stay_out_of_repr(session):
    packages, _, _, _ = session
    rng = HmacDrbg.from_seed("tests/frost/repr")
    nonces, _ = frost.commit(1, packages[0].secret_share, rng)
    assert str(packages[0].secret_share) not in repr(packages[0])
    assert str(nonces.hiding_nonce) not in repr(nonces)
    assert str(nonces.binding_nonce) not in repr(nonces)


def test_nonce_generate_takes_exactly_32_random_bytes():
    with pytest.raises(ParameterError):
        frost.nonce_generate_from_randomness(5, bytes(31))
    rng = HmacDrbg.from_seed("tests/frost/nonce")
    assert 0 <= frost.nonce_generate(5, rng) < G.L


# --------------------------------------------------------------------------
# Wrong group key, encodings


def test_wrong_group_key_does_not_verify(session):
    packages, group, signers, commitments = session
    msg = b"m"
    shares = [signers[i].sign(msg, commitments) for i in (1, 3)]
    signature = frost.aggregate_and_verify(group, commitments, msg, shares)
    other = G.ScalarBaseMult(12345)
    with pytest.raises(VerificationError):
        frost.verify(msg, signature, other)
    with pytest.raises(InvalidSignature):
        rfc8032_verify(other, msg, signature)
    with pytest.raises(VerificationError):
        frost.verify(msg + b"!", signature, group.group_public_key)
    # shares made under one group key, aggregated under another
    wrong = frost.aggregate(commitments, msg, other, shares)
    with pytest.raises(VerificationError):
        frost.verify(msg, wrong, other)


def test_signature_encoding_rejections(session):
    packages, group, signers, commitments = session
    msg = b"m"
    shares = [signers[i].sign(msg, commitments) for i in (1, 3)]
    sig = frost.aggregate_and_verify(group, commitments, msg, shares).to_bytes()
    pk = G.SerializeElement(group.group_public_key)
    with pytest.raises(DecodeError, match="64 bytes"):
        frost.verify(msg, sig[:63], pk)
    with pytest.raises(DecodeError, match=">= L"):
        frost.verify(msg, sig[:32] + G.L.to_bytes(32, "little"), pk)
    with pytest.raises(DecodeError, match="identity"):
        frost.verify(msg, G.IDENTITY_ENCODING + sig[32:], pk)
    with pytest.raises(DecodeError, match="small order"):
        frost.verify(msg, sig, bytes.fromhex("ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f"))
    flipped = bytearray(sig)
    flipped[40] ^= 1
    with pytest.raises((VerificationError, DecodeError)):
        frost.verify(msg, bytes(flipped), pk)


def test_commitment_and_share_encodings_round_trip_and_reject(session):
    _, _, _, commitments = session
    c = commitments[0]
    assert frost.SigningCommitments.from_bytes(c.to_bytes()) == c
    with pytest.raises(DecodeError):
        frost.SigningCommitments.from_bytes(c.to_bytes()[:-1])
    with pytest.raises(DecodeError, match="identifier 0"):
        frost.SigningCommitments.from_bytes(bytes(32) + c.to_bytes()[32:])
    with pytest.raises(DecodeError, match="identity"):
        frost.SigningCommitments.from_bytes(c.to_bytes()[:32] + G.IDENTITY_ENCODING + c.to_bytes()[64:])
    assert frost.SignatureShare.from_bytes(1, G.SerializeScalar(7)).share == 7
    with pytest.raises(DecodeError):
        frost.SignatureShare.from_bytes(1, G.L.to_bytes(32, "little"))
    with pytest.raises(ParameterError):
        frost.SignatureShare(0, 7)


def test_vss_verify_names_the_participant():
    rng = HmacDrbg.from_seed("tests/frost/vss")
    shares, _, vss = frost.trusted_dealer_keygen(99, 3, 2, rng)
    frost.vss_verify(shares[1], vss)
    with pytest.raises(VerificationError, match="participant 2"):
        frost.vss_verify((2, (shares[1][1] + 1) % G.L), vss)


# --------------------------------------------------------------------------
# Distributed key generation (Komlo-Goldberg Figure 1; specs/frost.md section 7)


def run_dkg(t, n, seed, context=b"usapp operators / test"):
    rng = HmacDrbg.from_seed(f"tests/frost/dkg-{seed}")
    secrets, round1 = {}, {}
    for i in range(1, n + 1):
        secrets[i], round1[i] = frost.dkg_part1(i, n, t, context, rng)
    sent = {i: frost.dkg_part2(secrets[i], round1) for i in secrets}
    return secrets, round1, sent


def finish_dkg(secrets, round1, sent):
    results = {i: frost.dkg_part3(secrets[i], round1, {l: sent[l][i] for l in secrets if l != i})
               for i in secrets}
    return [results[i][0] for i in sorted(results)], {g for _, g in results.values()}


@settings(max_examples=4, deadline=None)
@given(params=threshold_subsets(), seed=st.integers(0, 2**32))
def test_dkg_then_sign(params, seed):
    t, n, signers = params
    secrets, round1, sent = run_dkg(t, n, seed)
    packages, groups = finish_dkg(secrets, round1, sent)
    [group] = groups  # everyone derives the same group info
    # the group secret no one held is the sum of the constant terms
    total = sum(s.coefficients[0] for s in secrets.values()) % G.L
    assert G.ScalarBaseMult(total) == group.group_public_key
    points = [(kp.identifier, kp.secret_share) for kp in packages[:t]]
    assert frost.secret_share_combine(points, t) == total
    msg = b"close breaker %d" % seed
    _, _, signature = run_signing(packages, group, signers, msg, HmacDrbg.from_seed(f"dkg-sign-{seed}"))
    rfc8032_verify(group.group_public_key, msg, signature)


def test_dkg_invalid_proof_names_the_culprit():
    secrets, round1, _ = run_dkg(2, 3, "bad-proof")
    bad = dataclasses.replace(round1[2], proof_mu=(round1[2].proof_mu + 1) % G.L)
    with pytest.raises(VerificationError, match="participant 2: invalid proof"):
        frost.dkg_part2(secrets[1], {**round1, 2: bad})
    # a proof replayed under another context or identifier fails too
    with pytest.raises(VerificationError, match="participant 3"):
        frost.dkg_verify_proof(round1[3], 2, 3, b"another context")
    with pytest.raises(VerificationError, match="participant 1"):
        frost.dkg_verify_proof(dataclasses.replace(round1[3], identifier=1), 2, 3, b"usapp operators / test")
    # a commitment of the wrong length
    short = dataclasses.replace(round1[3], commitment=round1[3].commitment[:1])
    with pytest.raises(VerificationError, match="participant 3: commitment has 1"):
        frost.dkg_part2(secrets[1], {**round1, 3: short})


def test_dkg_rogue_key_without_knowledge_is_caught():
    """Participant 3 replaces its constant commitment by PK_target - sum(others) (a
    rogue-key attempt); it cannot prove knowledge of the discrete log."""
    secrets, round1, _ = run_dkg(2, 3, "rogue")
    target = G.ScalarBaseMult(42)
    rogue_phi0 = target - round1[1].commitment[0] - round1[2].commitment[0]
    rogue = dataclasses.replace(round1[3], commitment=(rogue_phi0,) + round1[3].commitment[1:])
    with pytest.raises(VerificationError, match="participant 3"):
        frost.dkg_part2(secrets[1], {**round1, 3: rogue})


def test_dkg_bad_share_names_the_sender():
    secrets, round1, sent = run_dkg(2, 3, "bad-share")
    received = {l: sent[l][1] for l in (2, 3)}
    received[3] = dataclasses.replace(received[3], value=(received[3].value + 1) % G.L)
    with pytest.raises(VerificationError, match="participant 3 sent participant 1"):
        frost.dkg_part3(secrets[1], round1, received)
    with pytest.raises(ParameterError, match="one round 2 share"):
        frost.dkg_part3(secrets[1], round1, {2: sent[2][1]})
    with pytest.raises(ParameterError, match="exactly participants"):
        frost.dkg_part2(secrets[1], {1: round1[1], 2: round1[2]})


def test_dkg_secrets_stay_out_of_repr():
    secrets, _, sent = run_dkg(2, 3, "repr")
    assert str(secrets[1].coefficients[0]) not in repr(secrets[1])
    assert str(sent[1][2].value) not in repr(sent[1][2])


def test_a_repeating_rng_is_caught_at_commit(group_2_of_3):
    from protocols.primitives.rand import ReplayRandom

    _, packages, _ = group_2_of_3
    signer = frost.Signer(packages[0])
    same = [bytes([7]) * 32, bytes([9]) * 32]
    signer.commit(ReplayRandom(list(same)))
    with pytest.raises(ReplayError, match="seen before"):
        signer.commit(ReplayRandom(list(same)))
