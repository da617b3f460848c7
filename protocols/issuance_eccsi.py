"""The ECCSI/SAKKE issuance suite (specs/issuance.md section 10.4).

The PKG issues, through the unchanged enrollment of specs/issuance.md
sections 4-9, a key for the RFC 6509 identifier of the project identity:
an ECCSI pair (SSK, PVT) of RFC 6507 5.1.1 and a SAKKE RSK of RFC 6508
6.1.1, both under one KMS (RFC 6509 section 2.1).  The device checks both
(RFC 6507 5.1.2 ValidateSsk, RFC 6508 6.1.2 ValidateRSK) before it keeps them.

| spec 10.4 | here |
|---|---|
| 10.4.1 epochs, key periods | :func:`period_of_epoch`, :func:`epoch_of_period`, :func:`pkg_epoch_on`, |
| | :func:`epochs_held_on` |
| 10.4.2 the identifier | :func:`uri_of`, :func:`identifier_of` |
| 10.4.3 v, deterministically | :func:`derive_v` |
| 10.4.4 the key and its encoding | :class:`SuiteKey`, :func:`encode_key`, :func:`decode_key` |
| 10.4.5 the extractor (PKG) | :class:`EccsiSakkeExtractor` |
| 10.4.6 the device's check | :func:`check_key`, :func:`eccsi_sakke_key_verifier` |
| 10.5.5 ECCSI t-of-n through issuance | :class:`ThresholdEccsiNodeExtractor`, |
| | :func:`threshold_eccsi_share_verifier`, :func:`combine_eccsi_shares` |

Schemes: :mod:`protocols.schemes.eccsi`, :mod:`protocols.schemes.sakke`
(parameter set 1 of RFC 6509 Appendix A); neither is changed here.
"""

from __future__ import annotations

import datetime
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from protocols.errors import DecodeError, ParameterError, RecoveryError, VerificationError
from protocols.issuance import Identity, IssuedKey, KeyVerifier
from protocols.primitives.drbg import HmacDrbg
from protocols.primitives.rand import random_range
from protocols.schemes import eccsi, eccsi_threshold, sakke
from protocols.primitives.sakke_curve import PARAMETER_SET_1

__all__ = [
    "KEY_BYTES", "SUITE", "THRESHOLD_SUITE", "DeviceKeys", "ThresholdEccsiNodeExtractor", "combine_eccsi_shares",
    "threshold_eccsi_share_verifier", "EccsiSakkeExtractor", "SuiteKey", "check_key", "decode_key", "derive_v",
    "eccsi_sakke_key_verifier", "encode_key", "epoch_of_period", "epochs_held_on", "identifier_of",
    "period_of_epoch", "pkg_epoch_on", "signing_key", "uri_of",
]

SUITE = "usapp-eccsi-sakke-p256-p1-v1"
"""The suite name (specs/issuance.md 3.2 grammar): ECCSI on P-256, SAKKE on RFC 6509 parameter set 1."""

PARAMS = PARAMETER_SET_1
SSK_BYTES = eccsi.N                                   # 32
PVT_BYTES = eccsi.POINT_BYTES                         # 65
RSK_BYTES = 2 * 128 + 1                               # 257: 0x04 || x || y, L = 128 (RFC 6508 section 4)
KEY_BYTES = SSK_BYTES + PVT_BYTES + RSK_BYTES         # 354

EPOCH_ORIGIN_YEAR = 1970
"""Epoch e is the key period of month e counted from 1970-01 (epoch 0) (spec 10.4.1)."""
MAX_SUITE_EPOCH = (9999 - EPOCH_ORIGIN_YEAR) * 12 + 11
"""The epoch of 9999-12, the last four-digit key period (96359)."""

V_PERSONALIZATION = b"usapp-eccsi-v/v1"
"""The personalization string of the HMAC_DRBG that derives v (spec 10.4.3)."""

URI_PREFIX = "urn:usapp:"


# ---------------------------------------------------------------------------
# 10.4.1 epochs and key periods
# ---------------------------------------------------------------------------


def period_of_epoch(epoch: int) -> str:
    """Spec 10.4.1: the RFC 6509 key period "YYYY-MM" of ``epoch`` (months since 1970-01).
    ``ParameterError`` for an epoch past 9999-12 or not an integer in [0, 2^32)."""
    if type(epoch) is not int or not 0 <= epoch <= MAX_SUITE_EPOCH:
        raise ParameterError(f"an epoch of this suite is a month in [0, {MAX_SUITE_EPOCH}] (1970-01 to 9999-12)")
    return f"{EPOCH_ORIGIN_YEAR + epoch // 12:04d}-{epoch % 12 + 1:02d}"


def epoch_of_period(period: str) -> int:
    """Spec 10.4.1: the inverse of :func:`period_of_epoch`; ``ParameterError`` before 1970-01."""
    eccsi.Identifier(period, "urn:x:y")                      # validates "YYYY-MM"
    year, month = int(period[:4]), int(period[5:])
    if year < EPOCH_ORIGIN_YEAR:
        raise ParameterError("key periods before 1970-01 have no epoch in this suite")
    return (year - EPOCH_ORIGIN_YEAR) * 12 + month - 1


def pkg_epoch_on(day: datetime.date) -> int:
    """Spec 10.4.1: the epoch the PKG issues on ``day``: the latest period RFC 6509 3.3 accepts
    that day, so the PKG moves to month m + 1 on the second-to-last day of month m."""
    return epoch_of_period(eccsi.accepted_periods(day)[-1])


def epochs_held_on(day: datetime.date) -> tuple[int, ...]:
    """Spec 10.4.1: the epochs whose keys a device holds (and a verifier accepts) on ``day``:
    one, or two around the monthly change (RFC 6509 3.3), oldest first."""
    return tuple(epoch_of_period(p) for p in eccsi.accepted_periods(day))


# ---------------------------------------------------------------------------
# 10.4.2 the RFC 6509 identifier of a project identity
# ---------------------------------------------------------------------------


def uri_of(namespace: str, role: str, serial: str) -> str:
    """Spec 10.4.2: ``urn:usapp:<namespace>:<role>:<serial>`` (at most 102 characters)."""
    Identity(namespace, serial, role, 0)                      # the grammar of specs/issuance.md 2.2
    return f"{URI_PREFIX}{namespace}:{role}:{serial}"


def identifier_of(identity: bytes) -> eccsi.Identifier:
    """Spec 10.4.2: the RFC 6509 identifier (period of the epoch, the URN) of an identity's
    encoding; ``DecodeError`` if it does not parse, ``ParameterError`` for an epoch past 9999-12."""
    parsed = Identity.parse(identity)
    return eccsi.Identifier(period_of_epoch(parsed.epoch), uri_of(parsed.namespace, parsed.role, parsed.serial))


# ---------------------------------------------------------------------------
# 10.4.3 v, deterministically (an intentional departure from RFC 6507 5.1.1 step 1)
# ---------------------------------------------------------------------------


def derive_v(KSAK: int, ID: bytes) -> HmacDrbg:
    """Spec 10.4.3: the HMAC_DRBG (SP 800-90A 10.1.2, SHA-256) whose draws replace RFC 6507's
    random v: entropy_input = I2OSP(KSAK, 32), nonce = ID, personalization = V_PERSONALIZATION.
    v = RandomRange(drbg, 1, q); step 5's restart draws again from the same instance.

    Intentional departure from RFC 6507 5.1.1 step 1 ("a random ephemeral value v"), in the way
    RFC 6979 derives ECDSA's k: the extractor interface (specs/issuance.md 3.2) requires
    extraction to be deterministic in (master secret, identity), and a logged issuance must be
    reproducible; v stays unpredictable to anyone without the KSAK."""
    if type(KSAK) is not int or not 0 < KSAK < eccsi.q:
        raise ParameterError("the KSAK is a non-zero integer modulo q")
    drbg = HmacDrbg("SHA-256")
    drbg.instantiate(eccsi.I2OSP_N(KSAK), bytes(ID), V_PERSONALIZATION)
    return drbg


# ---------------------------------------------------------------------------
# 10.4.4 the key
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class SuiteKey:
    """Spec 10.4.4: what the PKG delivers: the ECCSI SSK (32 octets) and PVT (65), the SAKKE RSK
    (257).  The representation hides the SSK and the RSK."""

    SSK: bytes = field(repr=False)
    PVT: bytes
    RSK: bytes = field(repr=False)


def encode_key(key: SuiteKey) -> bytes:
    """Spec 10.4.4: SSK || PVT || RSK, 354 octets."""
    return key.SSK + key.PVT + key.RSK


def decode_key(data: object) -> SuiteKey:
    """Spec 10.4.4: split a delivered key; exactly 354 octets, else ``DecodeError`` (the values are
    checked by :func:`check_key`)."""
    if not isinstance(data, (bytes, bytearray)) or len(data) != KEY_BYTES:
        raise DecodeError(f"an {SUITE} key is {KEY_BYTES} octets")
    data = bytes(data)
    return SuiteKey(data[:SSK_BYTES], data[SSK_BYTES:SSK_BYTES + PVT_BYTES], data[SSK_BYTES + PVT_BYTES:])


# ---------------------------------------------------------------------------
# 10.4.5 the extractor
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class EccsiSakkeExtractor:
    """Spec 10.4.5: the KMS behind :class:`protocols.issuance.KeyExtractor`.  Holds the KSAK
    (RFC 6507 4.2) and the SAKKE master secret z (RFC 6508 6.1); deterministic in them and the
    identity.  The representation hides both."""

    eccsi_kms: eccsi.EccsiKms = field(repr=False)
    sakke_kms: sakke.SakkeKms = field(repr=False)
    suite: str = SUITE

    def __post_init__(self) -> None:
        if not isinstance(self.eccsi_kms, eccsi.EccsiKms) or not isinstance(self.sakke_kms, sakke.SakkeKms):
            raise ParameterError("the extractor needs an EccsiKms and a SakkeKms")
        if self.sakke_kms.params != PARAMS:
            raise ParameterError("the SAKKE KMS must use RFC 6509 parameter set 1")

    @property
    def KPAK(self) -> bytes:
        return self.eccsi_kms.KPAK

    @property
    def Z(self) -> bytes:
        return self.sakke_kms.public_key

    def extract(self, identity: bytes) -> bytes:
        """Spec 10.4.5: ID = the identifier of ``identity`` (10.4.2); (SSK, PVT) by RFC 6507 5.1.1
        with v from :func:`derive_v`; RSK = [(ID + z)^-1]P by RFC 6508 6.1.1; encoded (10.4.4)."""
        ID = identifier_of(identity).encode()
        drbg = derive_v(self.eccsi_kms.KSAK, ID)
        while True:
            v = random_range(drbg, 1, eccsi.q)
            try:
                issued = eccsi.construct_ssk_pvt_with_v(self.eccsi_kms, ID, v)
                break
            except ParameterError:          # RFC 6507 5.1.1 step 5 (SSK or HS zero), about 2^-255: next draw
                continue
        RSK = sakke.ExtractRSK(self.sakke_kms, ID)
        return encode_key(SuiteKey(issued.SSK, issued.PVT, RSK))


# ---------------------------------------------------------------------------
# 10.4.6 the device's check
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class DeviceKeys:
    """Spec 10.4.6: a checked key: the identifier, the ECCSI signing key, the SAKKE receiver key."""

    identifier: eccsi.Identifier
    signing: eccsi.SigningKey
    receiver: sakke.ReceiverKey


def check_key(KPAK: bytes, Z: sakke.KmsPublicKey | bytes, identity: bytes, key: bytes) -> DeviceKeys:
    """Spec 10.4.6: the device's check of a delivered key, in this order: the identity's
    identifier (``DecodeError``, ``ParameterError``); 354 octets (``DecodeError``); RFC 6507 5.1.2
    ValidateSsk under the KPAK (``DecodeError`` for a point off the curve, ``VerificationError``);
    RFC 6508 6.1.2 ValidateRSK under Z (``DecodeError`` for a point off E or outside E[q],
    ``VerificationError``)."""
    ID = identifier_of(identity)
    parts = decode_key(key)
    signing = eccsi.ValidateSsk(KPAK, ID.encode(), parts.SSK, parts.PVT)
    receiver = sakke.ValidateRSK(PARAMS, Z, ID.encode(), parts.RSK)
    return DeviceKeys(ID, signing, receiver)


def eccsi_sakke_key_verifier(KPAK: bytes, Z: bytes) -> KeyVerifier:
    """Spec 10.4.6: the ``verify_key`` of :class:`protocols.issuance.Meter` for this suite.  The
    KPAK and Z are checked once here (``DecodeError``); the verifier returns True for a key that
    passes :func:`check_key` and raises its typed error otherwise (the meter reports it as the
    ``VerificationError`` of specs/issuance.md 7.3 step 5)."""
    eccsi.check_kpak(KPAK)
    z_public = sakke.KmsPublicKey.decode(PARAMS, Z)

    def verify(identity: bytes, key: bytes) -> bool:
        check_key(KPAK, z_public, identity, key)
        return True

    return verify


def signing_key(KPAK: bytes, issued: IssuedKey) -> eccsi.SigningKey:
    """The ECCSI signing key of an accepted :class:`protocols.issuance.IssuedKey` (ValidateSsk
    again: two P-256 multiplications, no pairing), for the integrity protocol (specs/integrity.md 3.3)."""
    if issued.suite != SUITE:
        raise ParameterError(f"the key is of suite {issued.suite!r}, not {SUITE!r}")
    ID = identifier_of(issued.identity).encode()
    parts = decode_key(issued.key)
    return eccsi.ValidateSsk(KPAK, ID, parts.SSK, parts.PVT)



# ---------------------------------------------------------------------------
# 10.5.5 ECCSI split t-of-n through the issuance protocol
# ---------------------------------------------------------------------------

THRESHOLD_SUITE = "usapp-eccsi-p256-threshold-v1"
"""Spec 10.5.5: the ECCSI-only suite of the split KMS (no SAKKE RSK: spec 10.5.4)."""

NodeRounds = Callable[[bytes, tuple[int, ...]], tuple[Mapping[int, bytes], Mapping[int, bytes]]]
"""Spec 10.5.5: the node-to-node rounds of 10.5.2 for (ID, S): every node's commitment and U_i."""


@dataclass(frozen=True)
class ThresholdEccsiNodeExtractor:
    """Spec 10.5.5: node ``key.node``'s extractor.  Each node runs its own
    :class:`protocols.issuance.Pkg` (its own checks and log); ``extract`` runs the commit and reveal
    rounds with the other nodes of ``S`` through ``rounds`` and returns
    I2OSP(SSK_i, 32) || U_j for each j of S in order (32 + 65 t octets)."""

    key: eccsi_threshold.NodeKey = field(repr=False)
    kms: eccsi_threshold.ThresholdKms
    S: tuple[int, ...]
    rounds: NodeRounds = field(repr=False)
    suite: str = THRESHOLD_SUITE

    def extract(self, identity: bytes) -> bytes:
        ID = identifier_of(identity).encode()
        S = eccsi_threshold.session(self.kms, self.S)
        commitments, reveals = self.rounds(ID, S)
        answer = eccsi_threshold.respond(self.key, self.kms, ID, S, commitments, reveals)
        return answer + b"".join(bytes(reveals[j]) for j in S)


def _split_delivery(kms: eccsi_threshold.ThresholdKms, S: tuple[int, ...], key: bytes) -> tuple[bytes, dict]:
    if not isinstance(key, (bytes, bytearray)) or len(key) != eccsi.N + PVT_BYTES * len(S):
        raise DecodeError(f"a node's delivery is {eccsi.N + PVT_BYTES * len(S)} octets")
    key = bytes(key)
    return key[:eccsi.N], {j: key[eccsi.N + PVT_BYTES * k:eccsi.N + PVT_BYTES * (k + 1)] for k, j in enumerate(S)}


def threshold_eccsi_share_verifier(kms: eccsi_threshold.ThresholdKms, S: Sequence[int], node: int) -> KeyVerifier:
    """Spec 10.5.5: the device's ``verify_key`` for node ``node``: the delivery splits (``DecodeError``)
    and passes [SSK_i]G = [lambda_i]KPAK_i + [HS]U_i (``VerificationError`` naming the node)."""
    eccsi_threshold.check_publics(kms)
    session = eccsi_threshold.session(kms, S)

    def verify(identity: bytes, key: bytes) -> bool:
        ID = identifier_of(identity).encode()
        answer, reveals = _split_delivery(kms, session, key)
        eccsi_threshold.verify_response(kms, ID, session, reveals, node, answer)
        return True

    return verify


def combine_eccsi_shares(kms: eccsi_threshold.ThresholdKms, S: Sequence[int],
                         shares: Mapping[int, IssuedKey]) -> eccsi.SigningKey:
    """Spec 10.5.5: the t deliveries (one per node of S, each accepted by its verifier) carry one
    identity, epoch and suite and the same U_j (``VerificationError``); combined by 10.5.3."""
    session = eccsi_threshold.session(kms, S)
    if set(shares) != set(session):
        raise RecoveryError("a delivery from every node of the session is needed")
    first = shares[session[0]]
    answers, reveals = {}, None
    for node in session:
        share = shares[node]
        if (share.identity, share.epoch, share.suite) != (first.identity, first.epoch, THRESHOLD_SUITE):
            raise VerificationError(f"node {node}'s delivery is for another identity, epoch or suite")
        answers[node], theirs = _split_delivery(kms, session, share.key)
        if reveals is not None and theirs != reveals:
            raise VerificationError(f"node {node} delivered other U_j than node {session[0]}")
        reveals = theirs
    if reveals is None:                              # unreachable: a session has t >= 1 nodes
        raise RecoveryError("no deliveries")
    return eccsi_threshold.combine(kms, identifier_of(first.identity).encode(), session, reveals, answers)
