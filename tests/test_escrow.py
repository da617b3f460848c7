"""Dual-ID escrow anonymisation (protocols/escrow.py, specs/escrow.md)."""

from __future__ import annotations

import copy
import hashlib
import itertools

import gmpy2
import pytest
from cryptography import x509
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from protocols import escrow as esc
from protocols.errors import (
    DecodeError,
    ParameterError,
    PolicyError,
    RecoveryError,
    ReplayError,
    StateError,
    UsappError,
    VerificationError,
)
from protocols.primitives import cbor
from protocols.primitives.drbg import HmacDrbg
from protocols.schemes import blind_rsa, hpke, threshold_elgamal
from protocols.system import escrow_fleet

EPOCHS = range(0, 3)
START = escrow_fleet.ORIGIN
DAY = escrow_fleet.EPOCH_SECONDS


def at(epoch: int, offset: int = 3600) -> int:
    return START + epoch * DAY + offset


@pytest.fixture(scope="module")
def fleets():
    return {mode: escrow_fleet.provision(mode, 4, EPOCHS, seed=f"test-{mode}") for mode in esc.MODES}


@pytest.fixture
def fleet(fleets, request):
    return copy.deepcopy(fleets[request.param])


both = pytest.mark.parametrize("fleet", esc.MODES, indirect=True)


def issue(fleet, serial: str, epoch: int, rng=None) -> esc.HfProfile:
    meter = fleet.meters[serial]
    rng = rng or HmacDrbg.from_seed(f"issue/{serial}/{epoch}")
    request = meter.request_hfid(epoch, rng)
    return meter.receive_hfid(fleet.escrow.handle(request, at(epoch, 0), rng))


# -- profiles and the run ---------------------------------------------------------------


@both
def test_profiles_of_fig5(fleet):
    meter = fleet.meters["SM-00001"]
    lf = meter.state.lf
    assert lf.hardware_id == "SM-00001" and lf.root and lf.chain
    hf = issue(fleet, "SM-00001", 1)
    assert hf.epoch == 1 and len(hf.hfid) == 16 and hf.root
    assert b"SM-00001" not in hf.credential
    if fleet.mode == "escrowed":
        cert = x509.load_der_x509_certificate(hf.credential)
        assert cert.subject.rfc4514_string() == "CN=usapp HFID"
        assert int(cert.not_valid_before_utc.timestamp()) == at(1, 0)


@both
def test_each_category_reaches_its_recipient_under_its_profile(fleet):
    meter = fleet.meters["SM-00002"]
    hf = issue(fleet, "SM-00002", 0)
    now = at(0)
    technical = fleet.receivers["grid-operator"].receive(meter.send("technical", "grid-operator", b"V=231.2", now), now)
    assert technical.sender == "hfid:" + hf.hfid.hex() and technical.payload == b"V=231.2"
    assert "SM-00002" not in technical.sender
    billing = fleet.receivers["supplier"].receive(meter.send("customer", "supplier", b"kWh=12.5", now), now)
    assert billing.sender == "lfid:SM-00002" and billing.epoch is None
    personal = fleet.receivers["household"].receive(meter.send("personal", "household", b"kettle 07:02", now), now)
    assert personal.category == "personal"


@both
def test_hfids_rotate_every_epoch(fleet):
    ids = {issue(fleet, "SM-00000", e).hfid for e in EPOCHS}
    assert len(ids) == len(EPOCHS)


# -- one HFID per meter and epoch -------------------------------------------------------


@both
def test_a_second_hfid_for_the_same_meter_and_epoch_is_refused(fleet):
    issue(fleet, "SM-00003", 1)
    meter = fleet.meters["SM-00003"]
    with pytest.raises(StateError):
        meter.request_hfid(1)
    twin = esc.Meter(copy.deepcopy(meter.state))   # the same meter, forgetting it was served
    twin.state.hf.clear()
    issued = set(fleet.escrow.state.issued)
    with pytest.raises(ReplayError):
        fleet.escrow.handle(twin.request_hfid(1, HmacDrbg.from_seed("twin")), at(1, 0))
    assert fleet.escrow.state.issued == issued
    issue(fleet, "SM-00003", 2)                    # the next epoch is fine


@both
def test_requests_for_far_epochs_and_other_modes_are_refused(fleet):
    meter = fleet.meters["SM-00000"]
    with pytest.raises(StateError):
        fleet.escrow.handle(meter.request_hfid(2, HmacDrbg.from_seed("far")), at(0))
    m = cbor.decode(fleet.meters["SM-00001"].request_hfid(0, HmacDrbg.from_seed("m")))
    m[3] = "blind" if fleet.mode == "escrowed" else "escrowed"
    with pytest.raises(VerificationError):
        fleet.escrow.handle(cbor.encode(m), at(0))


@both
def test_a_request_signed_by_another_meter_or_unknown_root_is_refused(fleet, fleets):
    meter = fleet.meters["SM-00000"]
    request = cbor.decode(meter.request_hfid(0, HmacDrbg.from_seed("x")))
    request[5] = list(fleet.meters["SM-00001"].state.lf.chain)
    with pytest.raises(VerificationError):
        fleet.escrow.handle(cbor.encode(request), at(0))
    other = escrow_fleet.provision(fleet.mode, 1, EPOCHS, seed="another-utility")
    stranger = other.meters["SM-00000"]
    stranger.state.escrow_hpke_public = meter.state.escrow_hpke_public
    stranger.state.authorities_key = meter.state.authorities_key
    stranger.state.epoch_keys = dict(meter.state.epoch_keys)
    with pytest.raises(VerificationError):
        fleet.escrow.handle(stranger.request_hfid(0, HmacDrbg.from_seed("y")), at(0))


# -- credentials ------------------------------------------------------------------------


@both
def test_forged_credential_is_refused(fleet):
    other = escrow_fleet.provision(fleet.mode, 1, EPOCHS, seed="forger")
    forged = issue(other, "SM-00000", 0)   # a credential from another escrow, for epoch 0
    meter = fleet.meters["SM-00000"]
    meter.state.hf[0] = forged
    message = meter.send("technical", "grid-operator", b"x", at(0))
    with pytest.raises(VerificationError):
        fleet.receivers["grid-operator"].receive(message, at(0))


@both
def test_expired_credential_and_credential_replayed_in_another_epoch(fleet):
    meter = fleet.meters["SM-00001"]
    issue(fleet, "SM-00001", 0)
    message = meter.send("technical", "grid-operator", b"x", at(0))
    with pytest.raises(StateError, match="expired"):
        fleet.receivers["grid-operator"].receive(message, at(2))
    # the epoch-0 credential presented in epoch 1
    meter.state.hf[1] = meter.state.hf[0]
    moved = meter.send("technical", "grid-operator", b"y", at(1))
    with pytest.raises(StateError):
        fleet.receivers["grid-operator"].receive(moved, at(1))


@both
def test_a_checked_credential_is_not_trusted_in_another_epoch(fleet):
    meter = fleet.meters["SM-00001"]
    receiver = fleet.receivers["grid-operator"]
    issue(fleet, "SM-00001", 0)
    receiver.receive(meter.send("technical", "grid-operator", b"x", at(0)), at(0))   # checked and remembered
    assert receiver.state.verified[0]
    meter.state.hf[1] = meter.state.hf[0]
    with pytest.raises(StateError):
        receiver.receive(meter.send("technical", "grid-operator", b"y", at(1)), at(1))
    # a message under a remembered credential still needs its own valid signature
    m = cbor.decode(meter.send("technical", "grid-operator", b"z", at(0, 7200)))
    m[10] = b"forged"
    with pytest.raises(VerificationError):
        receiver.receive(cbor.encode(m), at(0, 7200))


@both
def test_replayed_data_messages_are_refused(fleet):
    meter = fleet.meters["SM-00002"]
    issue(fleet, "SM-00002", 0)
    for category, recipient in (("technical", "grid-operator"), ("customer", "supplier")):
        message = meter.send(category, recipient, b"r", at(0))
        fleet.receivers[recipient].receive(message, at(0))
        with pytest.raises(ReplayError):
            fleet.receivers[recipient].receive(message, at(0))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_any_single_byte_change_of_a_data_message_is_refused(fleets, data):
    fleet = copy.deepcopy(fleets[data.draw(st.sampled_from(esc.MODES))])
    meter = fleet.meters["SM-00000"]
    issue(fleet, "SM-00000", 0)
    category, recipient = data.draw(st.sampled_from([("technical", "grid-operator"), ("customer", "supplier")]))
    message = meter.send(category, recipient, b"reading 42", at(0))
    i = data.draw(st.integers(0, len(message) - 1))
    tampered = message[:i] + bytes([message[i] ^ data.draw(st.integers(1, 255))]) + message[i + 1:]
    receiver = fleet.receivers[recipient]
    before = dict(receiver.state.last_seq)
    with pytest.raises(UsappError):
        receiver.receive(tampered, at(0))
    assert receiver.state.last_seq == before


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_any_single_byte_change_of_an_hfid_request_is_refused(fleets, data):
    fleet = copy.deepcopy(fleets[data.draw(st.sampled_from(esc.MODES))])
    request = fleet.meters["SM-00000"].request_hfid(0, HmacDrbg.from_seed("flip"))
    i = data.draw(st.integers(0, len(request) - 1))
    tampered = request[:i] + bytes([request[i] ^ data.draw(st.integers(1, 255))]) + request[i + 1:]
    with pytest.raises(UsappError):
        fleet.escrow.handle(tampered, at(0))
    assert fleet.escrow.state.issued == set()


@both
def test_tampered_or_misdirected_response_is_refused(fleet):
    meter = fleet.meters["SM-00000"]
    request = meter.request_hfid(0, HmacDrbg.from_seed("r"))
    response = fleet.escrow.handle(request, at(0))
    m = cbor.decode(response)
    m[6] = bytes([m[6][0] ^ 1]) + m[6][1:]
    with pytest.raises(VerificationError):
        meter.receive_hfid(cbor.encode(m))
    with pytest.raises(StateError):        # a response for an epoch it did not ask for
        fleet.meters["SM-00001"].receive_hfid(response)
    assert meter.receive_hfid(response).epoch == 0


@pytest.mark.parametrize("bad", [b"", b"\xa0", cbor.encode({1: 1, 2: "adp"}), cbor.encode({1: 2, 2: "cdp"}),
                                 cbor.encode([1, 2]), b"\xff" * 40])
def test_malformed_messages(fleets, bad):
    fleet = fleets["blind"]
    with pytest.raises(DecodeError):
        fleet.receivers["supplier"].receive(bad, at(0))
    with pytest.raises(DecodeError):
        fleet.escrow.handle(bad, at(0))


# -- spheres of control -----------------------------------------------------------------


@both
def test_spheres_of_control(fleet):
    meter = fleet.meters["SM-00000"]
    issue(fleet, "SM-00000", 0)
    now = at(0)
    for category, recipient in (("technical", "supplier"), ("customer", "grid-operator"), ("personal", "supplier"),
                                ("personal", "grid-operator"), ("technical", "household"), ("gossip", "supplier")):
        with pytest.raises(PolicyError):
            meter.send(category, recipient, b"x", now)
    # a receiver refuses a message addressed to another recipient
    with pytest.raises(PolicyError):
        fleet.receivers["supplier"].receive(meter.send("personal", "household", b"x", now), now)
    # a category under the wrong profile, signed properly, is refused by the receiver
    cdp = cbor.decode(meter.send("customer", "supplier", b"x", now))
    cdp[4], cdp[5], cdp[6] = "technical", "grid-operator", 99
    cdp[9] = escrow_sign_lf(meter, cdp)
    with pytest.raises(PolicyError, match="HFID profile"):
        fleet.receivers["grid-operator"].receive(cbor.encode(cdp), now)
    adp = cbor.decode(meter.send("technical", "grid-operator", b"x", now))
    adp[6], adp[7], adp[8] = "customer", "supplier", 99
    adp[11] = escrow_sign_hf(meter, adp)
    with pytest.raises(PolicyError, match="LFID profile"):
        fleet.receivers["supplier"].receive(cbor.encode(adp), now)


def escrow_sign_lf(meter: esc.Meter, m: dict) -> bytes:
    from protocols.schemes import certificates
    return certificates.sign(meter._lf_key, esc.tbs("cdp", m, 9))


def escrow_sign_hf(meter: esc.Meter, m: dict) -> bytes:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    return Ed25519PrivateKey.from_private_bytes(meter.state.hf[m[4]].private_key).sign(esc.tbs("adp", m, 11))


def test_check_sphere_table():
    assert esc.check_sphere("technical", "HFID", "grid-operator") is None
    assert esc.check_sphere("customer", "LFID", "supplier") is None
    assert esc.check_sphere("personal", "LFID", "household") is None
    for args in (("technical", "LFID", "grid-operator"), ("customer", "HFID", "supplier"),
                 ("personal", "LFID", "supplier"), ("other", "LFID", "supplier")):
        with pytest.raises(PolicyError):
            esc.check_sphere(*args)


# -- re-identification (mode escrowed) --------------------------------------------------


@pytest.mark.parametrize("fleet", ["escrowed"], indirect=True)
def test_reidentification_needs_t_of_n_authorities(fleet):
    hf = issue(fleet, "SM-00002", 0)
    fingerprint = hashlib.sha256(hf.credential).digest()
    sealed = fleet.escrow.sealed_link(fingerprint)
    request = esc.reidentification_request(fingerprint, "court order 17/2026", bytes(16))
    a1, a2, a3 = fleet.authorities
    with pytest.raises(StateError):
        a1.share(request, fleet.escrow)                       # not approved
    for a in (a1, a3):
        a.approve(request)
    shares = {1: a1.share(request, fleet.escrow, HmacDrbg.from_seed("s1")),
              3: a3.share(request, fleet.escrow, HmacDrbg.from_seed("s3"))}
    record = esc.reidentify(fleet.authority_info, request, sealed, shares)
    assert (record.lfid_serial, record.epoch, record.fingerprint) == ("SM-00002", 0, fingerprint)
    with pytest.raises(RecoveryError):
        esc.reidentify(fleet.authority_info, request, sealed, {1: shares[1]})
    bad = bytearray(shares[3])
    bad[40] ^= 1
    with pytest.raises((VerificationError, DecodeError)):
        esc.reidentify(fleet.authority_info, request, sealed, {1: shares[1], 3: bytes(bad)})
    other = esc.reidentification_request(fingerprint, "another reason", bytes(16))
    with pytest.raises(VerificationError):   # shares bound to one request
        esc.reidentify(fleet.authority_info, other, sealed, shares)


@pytest.mark.parametrize("fleet", ["escrowed"], indirect=True)
def test_no_single_authority_or_the_escrow_opens_a_link(fleet):
    hf = issue(fleet, "SM-00001", 0)
    fingerprint = hashlib.sha256(hf.credential).digest()
    sealed = fleet.escrow.sealed_link(fingerprint)
    for authority in fleet.authorities:
        with pytest.raises(VerificationError):
            threshold_elgamal.open_with_secret(authority.key_package.secret_share, sealed,
                                               esc._link_aad(fingerprint))
    state = fleet.escrow.state
    for secret in (int.from_bytes(state.hpke_private, "little"), int.from_bytes(state.hf_ca_key, "little")):
        with pytest.raises(VerificationError):
            threshold_elgamal.open_with_secret(secret % (2**252), sealed, esc._link_aad(fingerprint))


def escrow_view(fleet, request: bytes) -> bytes:
    """What the escrow reads in a request: the HF public key (escrowed) or the blinded message (blind)."""
    m = cbor.decode(request)
    inner = hpke.OpenBase(m[6], fleet.escrow.state.hpke_private, esc._request_info(m[3], m[4]),
                          cbor.encode({k: m[k] for k in range(1, 6)}), m[7])
    return cbor.decode(inner)[1]


@pytest.mark.parametrize("fleet", ["blind"], indirect=True)
def test_blind_escrow_view_fits_every_credential_equally(fleet):
    """Blindness (RFC 9474 section 7.3, perfect): every blinded message the escrow saw is consistent
    with every credential the utility later meets, each through exactly one blinding factor r."""
    seen, credentials = [], []
    for serial in ("SM-00000", "SM-00001", "SM-00002"):
        meter = fleet.meters[serial]
        request = meter.request_hfid(0, HmacDrbg.from_seed(serial))
        seen.append(int.from_bytes(escrow_view(fleet, request), "big"))
        credentials.append(cbor.decode(meter.receive_hfid(fleet.escrow.handle(request, at(0))).credential))
    pk = fleet.escrow.epoch_public_key(0)
    n, e = int(pk.n), int(pk.e)
    d = int(fleet.escrow.state.rsa_keys[0].d)
    for blinded, credential in itertools.product(seen, credentials):
        s = int.from_bytes(credential[4], "big")
        r = pow(blinded, d, n) * int(gmpy2.invert(s, n)) % n   # the one r pairing this request and credential
        assert gmpy2.gcd(r, n) == 1
        assert pow(r, e, n) * pow(s, e, n) % n == blinded


@pytest.mark.parametrize("fleet", ["escrowed"], indirect=True)
def test_escrowed_mode_escrow_sees_the_key_it_certifies(fleet):
    """The contrast (spec 5.2): in escrowed mode the escrow reads the HF key, so it could link; that is
    why the link it keeps is sealed for the authorities and the blind mode exists."""
    meter = fleet.meters["SM-00000"]
    request = meter.request_hfid(0, HmacDrbg.from_seed("contrast"))
    key = escrow_view(fleet, request)
    hf = meter.receive_hfid(fleet.escrow.handle(request, at(0)))
    assert key in hf.credential


# -- bad roles ---------------------------------------------------------------------------


def test_bad_setup(fleets):
    fleet = fleets["escrowed"]
    with pytest.raises(ParameterError):
        esc.Escrow(esc.EscrowState("other", fleet.clock, fleet.escrow.state.lf_anchors, bytes(32)))
    with pytest.raises(ParameterError):
        esc.Escrow(esc.EscrowState("escrowed", fleet.clock, fleet.escrow.state.lf_anchors, bytes(32)))
    with pytest.raises(ParameterError):
        esc.EpochClock(0, 10)
    with pytest.raises(ParameterError):
        esc.Receiver(esc.ReceiverState("someone", "blind", fleet.clock))
    assert isinstance(blind_rsa.DEFAULT_VARIANT, blind_rsa.Variant)


# -- unlinkability: everything the utility sees ------------------------------------------

from collections import defaultdict  # noqa: E402

from cryptography.hazmat.primitives import serialization  # noqa: E402


def _certificate_fields(prefix: str, der: bytes) -> dict:
    cert = x509.load_der_x509_certificate(der)
    return {
        f"{prefix}.der": der, f"{prefix}.len": len(der), f"{prefix}.serial": cert.serial_number,
        f"{prefix}.subject": cert.subject.rfc4514_string(), f"{prefix}.issuer": cert.issuer.rfc4514_string(),
        f"{prefix}.not_before": int(cert.not_valid_before_utc.timestamp()),
        f"{prefix}.not_after": int(cert.not_valid_after_utc.timestamp()),
        f"{prefix}.key": cert.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw),
        f"{prefix}.signature": cert.signature, f"{prefix}.extensions": repr(list(cert.extensions)),
    }


SLOT = 900
"""The common 15-minute schedule of technical data; times are also compared modulo it."""


def utility_view(message: bytes) -> dict:
    """Every field of a data message as the utility sees it, flattened (credentials and certificates
    parsed into their own fields), plus sizes and the time's phase in the schedule."""
    m = cbor.decode(message)
    if m[2] == "adp":
        f = {"len": len(message), "mode": m[3], "epoch": m[4], "category": m[6], "recipient": m[7], "seq": m[8],
             "time": m[9], "time.phase": m[9] % SLOT, "payload": m[10], "payload.len": len(m[10]), "sig": m[11], "credential": m[5],
             "credential.len": len(m[5])}
        if m[3] == "escrowed":
            f.update(_certificate_fields("credential", m[5]))
        else:
            c = cbor.decode(m[5])
            f.update({"credential.epoch": c[1], "credential.key": c[2], "credential.prefix": c[3],
                      "credential.sig": c[4]})
        return f
    f = {"len": len(message), "category": m[4], "recipient": m[5], "seq": m[6], "time": m[7],
         "time.phase": m[7] % SLOT, "payload": m[8],
         "payload.len": len(m[8]), "sig": m[9], "chain.len": len(m[3])}
    f.update(_certificate_fields("lfid", m[3][0]))
    return f


def linking_fields(hf: list[tuple[str, dict]], lf: list[tuple[str, dict]]) -> list[str]:
    """Each HF field (and pair of HF fields) against each LF field (and pair): would matching equal
    values, or nearest times, pick an HF message's true LFID more often than chance?  Returns the
    features that link.  Score per HF message: [true meter in the matched set] - |set| / meters."""
    meters = len({t for t, _ in lf})
    budget = 2 * len(hf) ** 0.5 + 1

    def features(records):
        keys = sorted(records[0][1])
        singles = {(k,): [r[k] for _, r in records] for k in keys}
        small = [k for k in keys if len(set(singles[(k,)])) <= 4 * meters]
        pairs = {(a, b): list(zip(singles[(a,)], singles[(b,)])) for a, b in itertools.combinations(small, 2)}
        return {**singles, **pairs}

    hf_features, lf_features = features(hf), features(lf)
    hf_truth, lf_truth = [t for t, _ in hf], [t for t, _ in lf]
    found = []
    for g, lf_values in lf_features.items():
        index = defaultdict(set)
        for truth, value in zip(lf_truth, lf_values):
            index[value].add(truth)
        for f, hf_values in hf_features.items():
            score = 0.0
            for truth, value in zip(hf_truth, hf_values):
                matched = index.get(value)
                if matched:
                    score += (truth in matched) - len(matched) / meters
            if score > budget:
                found.append(f"{'+'.join(f)} ~ {'+'.join(g)}")
    # nearest in time
    lf_times = sorted(zip((r["time"] for _, r in lf), lf_truth))
    score = 0.0
    for truth, record in hf:
        best = min(abs(t - record["time"]) for t, _ in lf_times)
        matched = {s for t, s in lf_times if abs(t - record["time"]) == best}
        score += (truth in matched) - len(matched) / meters
    if score > budget:
        found.append("time ~ nearest time")
    return found


class _ReuseFirst:
    """A broken rng that hands out ``first`` for the first 32-byte draw (to plant a link on purpose)."""

    def __init__(self, first: bytes, inner) -> None:
        self.first, self.inner = first, inner

    def random_bytes(self, n: int) -> bytes:
        if self.first is not None and n == 32:
            out, self.first = self.first, None
            return out
        return self.inner.random_bytes(n)


def run_fleet(fleet, epochs: int = 3, per_epoch: int = 3, leak: str | None = None):
    """Every meter gets its HFID each epoch and sends technical data on the common schedule and one
    bill per epoch; returns the utility's (truth, view) records of HF and LF messages."""
    hf, lf = [], []
    serials = sorted(fleet.meters)
    for epoch in range(epochs):
        for i, serial in enumerate(serials):
            meter = fleet.meters[serial]
            rng = HmacDrbg.from_seed(f"run/{serial}/{epoch}")
            if leak == "key":   # the HF key is the LF key
                from cryptography.hazmat.primitives.serialization import load_der_private_key
                raw = load_der_private_key(meter.state.lf.private_key, None).private_bytes_raw()
                rng = _ReuseFirst(raw, rng)
            meter.receive_hfid(fleet.escrow.handle(meter.request_hfid(epoch, rng), at(epoch, 0), rng))
            offset = 7 * i if leak == "timing" else 0
            for k in range(per_epoch):
                t = at(epoch, SLOT * (k + 1) + offset)
                payload = HmacDrbg.from_seed(f"reading/{serial}/{epoch}/{k}").random_bytes(16)
                message = meter.send("technical", "grid-operator", payload, t)
                fleet.receivers["grid-operator"].receive(message, t)
                hf.append((serial, utility_view(message)))
            t = at(epoch, SLOT * 88 + offset)
            bill = meter.send("customer", "supplier", HmacDrbg.from_seed(f"bill/{serial}/{epoch}").random_bytes(16), t)
            fleet.receivers["supplier"].receive(bill, t)
            lf.append((serial, utility_view(bill)))
    return hf, lf


@pytest.mark.parametrize("mode", esc.MODES)
def test_nothing_the_utility_sees_links_an_hfid_to_an_lfid(fleets, mode):
    fleet = copy.deepcopy(fleets[mode])
    hf, lf = run_fleet(fleet)
    assert len(hf) == 4 * 3 * 3 and len(lf) == 4 * 3
    assert linking_fields(hf, lf) == []
    # ... nor two HFIDs of one meter in different epochs (the HF side against itself, across epochs)
    by_epoch = [[(t, r) for t, r in hf if r["epoch"] == e] for e in range(3)]
    assert linking_fields(by_epoch[1], by_epoch[0][:: 3]) == []


@pytest.mark.parametrize("mode", esc.MODES)
@pytest.mark.parametrize("leak", ["key", "timing"])
def test_the_linker_finds_a_planted_link(fleets, mode, leak):
    """The property above has teeth: a meter whose HF key is its LF key, or whose HF and LF messages
    share a per-meter time offset, is linked."""
    fleet = copy.deepcopy(fleets[mode])
    hf, lf = run_fleet(fleet, leak=leak)
    found = linking_fields(hf, lf)
    assert found, leak
    if leak == "key":
        assert any(f.startswith("credential.key ~ lfid.key") for f in found)
    else:
        assert any(f.startswith("time.phase ~ time.phase") for f in found)


# -- issue 14: attacks on re-identification and on the blind mode's epoch keys ----------------


def _fingerprint(profile: esc.HfProfile) -> bytes:
    return hashlib.sha256(profile.credential).digest()


@pytest.mark.parametrize("fleet", ["escrowed"], indirect=True)
def test_a_compromised_escrow_cannot_redirect_a_reidentification(fleet):
    """Spec 9.2, 8.2.  Adversary: the escrow, compromised after issuance (it controls its stored sealed
    links and what ``sealed_link`` answers; it knows no r, no authority share), colluding with the
    combiner.  Authorities approve a request for HFID f1; the escrow answers with f2's sealed link,
    or with a blob spliced around f2's R; each authority checks the blob's label (f1) and refuses,
    so no share for f2's R exists and f2's link stays closed."""
    f1 = _fingerprint(issue(fleet, "SM-00001", 0))
    f2 = _fingerprint(issue(fleet, "SM-00002", 0))
    links = fleet.escrow.state.links
    target = links[f2]
    request = esc.reidentification_request(f1, "court order 18/2026", bytes(16))
    a1, _, a3 = fleet.authorities
    for a in (a1, a3):
        a.approve(request)
    links[f1] = target                                   # f1 answered with f2's sealed link
    with pytest.raises(VerificationError, match="not well formed"):
        a1.share(request, fleet.escrow, HmacDrbg.from_seed("redirect/1"))
    own = threshold_elgamal.seal(fleet.authority_info.group_public_key, esc._link_aad(f1), b"x" * 64,
                                 HmacDrbg.from_seed("redirect/own"))
    links[f1] = target[:32] + own[32:]                   # f2's R spliced into a fresh blob labelled f1
    with pytest.raises(VerificationError, match="not well formed"):
        a3.share(request, fleet.escrow, HmacDrbg.from_seed("redirect/3"))
    assert a1.approved and a3.approved                   # a refused blob does not use the approval up


def _meter_with_serial(fleet, serial: str, rng) -> esc.Meter:
    """A meter of a second LFID manufacturer (root added to the escrow's anchors) with ``serial``."""
    ca_key = escrow_fleet.ed25519_key(rng)
    root = escrow_fleet.ca_certificate("LFID root 2", ca_key)
    anchor = esc.certificates.TrustAnchor(root, frozenset({"meter"}))
    if anchor not in fleet.escrow.state.lf_anchors:
        fleet.escrow.state.lf_anchors = fleet.escrow.state.lf_anchors + (anchor,)
    key = escrow_fleet.ed25519_key(rng)
    chain = (escrow_fleet.device_certificate(serial, key, "LFID root 2", ca_key, 7),)
    template = fleet.meters["SM-00000"].state
    return esc.Meter(esc.MeterState("escrowed", fleet.clock, esc.LfProfile(chain, escrow_fleet.pkcs8(key), root),
                                    template.escrow_hpke_public, hf_root=template.hf_root))


@pytest.mark.parametrize("fleet", ["escrowed"], indirect=True)
def test_sealed_link_length_does_not_reveal_the_serial_length(fleet):
    """Spec 9.1, 5.2 step 8.  Adversary: anyone (``sealed_link`` answers everyone); sees every sealed
    link and its length.  Every sealed link has the same length whatever the LFID serial's length
    (1 to 64 bytes); a longer serial is refused before any state changes."""
    lengths = {}
    for i, serial in enumerate(["A", "SM-00001", "X" * esc.MAX_SERIAL_BYTES]):
        meter = _meter_with_serial(fleet, serial, HmacDrbg.from_seed(f"length/{i}"))
        rng = HmacDrbg.from_seed(f"length/issue/{i}")
        hf = meter.receive_hfid(fleet.escrow.handle(meter.request_hfid(0, rng), at(0, 0), rng))
        lengths[serial] = len(fleet.escrow.sealed_link(_fingerprint(hf)))
    assert set(lengths.values()) == {threshold_elgamal.HEADER_BYTES + esc.LINK_BYTES + 16}, lengths
    long = _meter_with_serial(fleet, "X" * (esc.MAX_SERIAL_BYTES + 1), HmacDrbg.from_seed("length/long"))
    issued, links = set(fleet.escrow.state.issued), dict(fleet.escrow.state.links)
    with pytest.raises(ParameterError, match="serial"):
        fleet.escrow.handle(long.request_hfid(0, HmacDrbg.from_seed("length/long/r")), at(0, 0))
    assert fleet.escrow.state.issued == issued and fleet.escrow.state.links == links


@pytest.mark.parametrize("fleet", ["blind"], indirect=True)
def test_a_meter_refuses_an_epoch_key_the_authorities_did_not_certify(fleet):
    """Spec 9.5, 5.3.  Adversary: the escrow in mode blind (it holds and makes RSA keys and chooses
    what each meter and receiver is handed; at most t - 1 authorities would help it, here none).
    Its attempt to tag a meter with a key of its own for epoch 1: the statement it signs itself is
    refused by the meter and the receivers; the authorities refuse to certify a second key for an
    epoch; without a certified key the meter does not ask."""
    tagging = escrow_fleet.rsa_key(HmacDrbg.from_seed("tagging key"), 2048)
    victim = fleet.meters["SM-00001"]
    victim.state.epoch_keys.pop(1)
    forged = esc.epoch_key_message(1, tagging.public, bytes(64))
    with pytest.raises(VerificationError, match="authorities"):
        victim.install_epoch_key(forged)
    with pytest.raises(VerificationError, match="authorities"):
        fleet.receivers["grid-operator"].install_epoch_key(forged)
    with pytest.raises(StateError, match="epoch 1"):
        esc.certify_epoch_key(fleet.authorities[:2], fleet.authority_info, 1, tagging.public,
                              HmacDrbg.from_seed("tagging/certify"))
    with pytest.raises(StateError, match="no certified"):
        victim.request_hfid(1, HmacDrbg.from_seed("tagging/request"))
    genuine = fleet.escrow.epoch_key(1)
    victim.install_epoch_key(genuine)                  # the certified key: accepted, the meter proceeds
    issue(fleet, "SM-00001", 1)


@pytest.mark.parametrize("fleet", ["blind"], indirect=True)
def test_two_certified_keys_for_one_epoch_are_caught_as_equivocation(fleet):
    """Spec 9.5.  Adversary: the escrow with t authorities (beyond the assumption of 9.5: they sign a
    second key for epoch 1).  A meter or receiver holding the first certified key refuses the second
    (VerificationError naming the equivocation): the two signed messages are a transferable proof."""
    tagging = escrow_fleet.rsa_key(HmacDrbg.from_seed("tagging key"), 2048)
    colluders = [esc.Authority(a.key_package) for a in fleet.authorities[:2]]   # no memory of epoch 1
    second = esc.certify_epoch_key(colluders, fleet.authority_info, 1, tagging.public, HmacDrbg.from_seed("eq"))
    assert esc.verify_epoch_key(second, fleet.meters["SM-00000"].state.authorities_key)[1] == tagging.public
    with pytest.raises(VerificationError, match="equivocated"):
        fleet.meters["SM-00000"].install_epoch_key(second)
    with pytest.raises(VerificationError, match="equivocated"):
        fleet.receivers["grid-operator"].install_epoch_key(second)
    fleet.meters["SM-00000"].install_epoch_key(fleet.escrow.epoch_key(1))      # the same key again: fine


@pytest.mark.parametrize("fleet", ["blind"], indirect=True)
def test_epoch_keys_are_used_only_for_their_epoch_and_only_certified(fleet):
    """Spec 5.3, 5.5: a meter holding epoch 2's certified key under epoch 1 refuses to use it; the
    escrow refuses to sign with a key that is not the certified one; an authority signs each
    epoch's key once and refuses a duplicate in its list."""
    meter = fleet.meters["SM-00002"]
    meter.state.epoch_keys[1] = fleet.escrow.epoch_key(2)
    with pytest.raises(VerificationError, match="certified for epoch 2"):
        meter.request_hfid(1, HmacDrbg.from_seed("wrong epoch"))
    fleet.escrow.state.rsa_keys[1] = escrow_fleet.rsa_key(HmacDrbg.from_seed("uncertified"), 2048)
    with pytest.raises(StateError, match="not the certified one"):
        issue(fleet, "SM-00001", 1)
    with pytest.raises(ParameterError, match="twice"):
        esc.certify_epoch_key([fleet.authorities[0]] * 2, fleet.authority_info, 5,
                              fleet.escrow.state.rsa_keys[0].public)
    with pytest.raises(StateError, match="certified"):
        fleet.escrow.epoch_key(7)
    no_key = esc.Meter(esc.MeterState("blind", fleet.clock, meter.state.lf, meter.state.escrow_hpke_public))
    with pytest.raises(StateError, match="authorities' key"):
        no_key.install_epoch_key(fleet.escrow.epoch_key(0))


@pytest.mark.parametrize("bad", [
    cbor.encode({1: 1, 2: "epoch-key", 3: -1, 4: b"k", 5: bytes(64)}),
    cbor.encode({1: 1, 2: "epoch-key", 3: 0, 4: b"", 5: bytes(64)}),
    cbor.encode({1: 1, 2: "epoch-key", 3: 0, 4: bytes(2049), 5: bytes(64)}),
    cbor.encode({1: 1, 2: "epoch-key", 3: 0, 4: b"k", 5: bytes(63)}),
    cbor.encode({1: 1, 2: "epoch-key", 3: 0, 4: b"k"}),
])
def test_malformed_epoch_key_messages(fleets, bad):
    with pytest.raises(DecodeError):
        fleets["blind"].meters["SM-00000"].install_epoch_key(bad)


def test_epoch_key_that_is_not_a_2048_bit_rsa_key_is_refused(fleets):
    """Spec 5.5: a message the authorities did sign, whose key is not the SPKI of an RSA key of at
    least 2048 bits, is a DecodeError at the meter."""
    from cryptography.hazmat.primitives.asymmetric import rsa as pyca_rsa
    from protocols.schemes import frost
    fleet = copy.deepcopy(fleets["blind"])
    small = pyca_rsa.generate_private_key(65537, 1024).public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    ed = fleet.escrow.state.hf_ca_certificate or b"\x30\x00"
    rng = HmacDrbg.from_seed("odd keys")
    for epoch, der in enumerate((small, ed, b"\x30\x00"), start=10):
        m = {1: 1, 2: "epoch-key", 3: epoch, 4: der}
        message = esc.tbs("epoch-key", m, 5)
        signers = fleet.authorities[:2]
        commitments = [a.commit(rng) for a in signers]
        shares = [a.signer.sign(message, commitments) for a in signers]
        m[5] = frost.aggregate_and_verify(fleet.authority_info, commitments, message, shares).to_bytes()
        with pytest.raises(DecodeError, match="epoch-key"):
            fleet.meters["SM-00000"].install_epoch_key(cbor.encode(m))


def test_link_encoding_is_fixed_length_and_strict():
    """Spec 8.1: every link is LINK_BYTES long; a wrong length, prefix, padding or body is a DecodeError."""
    fingerprint = bytes(range(32))
    for serial in ("A", "SM-00001", "é" * 32):
        link = esc.encode_link(serial, 2**32 - 1, fingerprint)
        assert len(link) == esc.LINK_BYTES
        assert esc.decode_link(link) == {1: serial, 2: 2**32 - 1, 3: fingerprint}
    for serial in ("", "X" * 65, "é" * 33, 7):
        with pytest.raises(ParameterError):
            esc.encode_link(serial, 0, fingerprint)
    good = esc.encode_link("SM-00001", 3, fingerprint)
    size = int.from_bytes(good[:2], "big")
    for bad in (good[:-1], good + b"\x00", b"\x00\x00" + good[2:], b"\x00\x7f" + good[2:],
                good[:-1] + b"\x01", (size - 1).to_bytes(2, "big") + good[2:],
                (size + 1).to_bytes(2, "big") + good[2:]):
        with pytest.raises(DecodeError):
            esc.decode_link(bad)
