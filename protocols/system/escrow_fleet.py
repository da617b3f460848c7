"""Provisioning for the escrow protocol (specs/escrow.md): CAs, meters, the escrow, receivers, authorities.

Used by the demo, the benchmark, the vectors and the tests.  Everything is
drawn from one randomness source, the caller's: the vectors pass HMAC_DRBG of
their fleet seed and the tests and benchmark a seed of their own, so their
runs are reproducible; the demo passes its own source (HMAC_DRBG of the seed
it prints).  With neither a seed nor a source the draws come from the OS
CSPRNG: there is no fixed default seed, whose keys anyone could recompute.
Ed25519 keys are 32 drawn bytes; the blind mode's RSA keys are made from
drawn primes (a deterministic generation for test fleets only: a deployed
escrow generates its keys with ``blind_rsa.generate_key``).

Order of draws (specs/escrow.md section 11.2): the LFID root key, the escrow's
HPKE key, the authorities' DKG (``groupkeys.operator_ceremony``, both modes);
mode escrowed: then the HF CA key; mode blind: then, per epoch, the RSA key
and its certification by authorities 1 .. t (``escrow.certify_epoch_key``);
then each meter's device key.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

import gmpy2
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.x509.oid import NameOID

from protocols import escrow as esc
from protocols import groupkeys
from protocols.errors import ParameterError
from protocols.primitives import ed25519
from protocols.primitives.drbg import HmacDrbg
from protocols.primitives.rand import RandomSource, random_bits, resolve
from protocols.schemes import blind_rsa, certificates, frost, hpke

NOT_BEFORE = dt.datetime(2025, 1, 1, tzinfo=dt.timezone.utc)
NOT_AFTER = dt.datetime(2035, 1, 1, tzinfo=dt.timezone.utc)
ORIGIN = 1_767_225_600  # 2026-01-01T00:00:00Z
EPOCH_SECONDS = 86_400


def ed25519_key(rng: RandomSource) -> Ed25519PrivateKey:
    return Ed25519PrivateKey.from_private_bytes(rng.random_bytes(32))


def _name(common: str, serial: str | None = None) -> x509.Name:
    attributes = [x509.NameAttribute(NameOID.ORGANIZATION_NAME, "USaPP reference fleet"),
                  x509.NameAttribute(NameOID.COMMON_NAME, common)]
    if serial is not None:
        attributes.append(x509.NameAttribute(NameOID.SERIAL_NUMBER, serial))
    return x509.Name(attributes)


def _certificate(subject: x509.Name, public_key: Ed25519PublicKey, issuer: x509.Name, signing_key: Ed25519PrivateKey,
                 number: int, ca: bool) -> bytes:
    cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(issuer).public_key(public_key)
            .serial_number(number).not_valid_before(NOT_BEFORE).not_valid_after(NOT_AFTER)
            .add_extension(x509.BasicConstraints(ca=ca, path_length=0 if ca else None), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=not ca, content_commitment=False, key_encipherment=False,
                                         data_encipherment=False, key_agreement=False, key_cert_sign=ca,
                                         crl_sign=ca, encipher_only=False, decipher_only=False), critical=True)
            .sign(signing_key, None))
    return cert.public_bytes(serialization.Encoding.DER)


def ca_certificate(common_name: str, key: Ed25519PrivateKey) -> bytes:
    """A self-signed Ed25519 root CA certificate (DER)."""
    return _certificate(_name(common_name), key.public_key(), _name(common_name), key, 1, True)


def device_certificate(serial: str, key: Ed25519PrivateKey, ca_name: str, ca_key: Ed25519PrivateKey,
                       number: int) -> bytes:
    """A meter's device certificate (the LFID certificate) with subject serialNumber ``serial``."""
    return _certificate(_name("smart meter", serial), key.public_key(), _name(ca_name), ca_key, number, False)


def pkcs8(key: Ed25519PrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def rsa_key(rng: RandomSource, bits: int = 2048) -> blind_rsa.PrivateKey:
    """An RSA key from drawn primes, specs/escrow.md section 11.2 (test fleets and vectors only)."""
    half = bits // 2
    while True:
        p = gmpy2.next_prime(random_bits(rng, half) | (3 << (half - 2)))
        q = gmpy2.next_prime(random_bits(rng, half) | (3 << (half - 2)))
        if p != q and (p * q).bit_length() == bits and gmpy2.gcd(65537, (p - 1) * (q - 1)) == 1:
            return blind_rsa.PrivateKey.from_factors(int(p), int(q))


@dataclass
class Fleet:
    """Everything a run needs: the escrow, the meters by serial, one receiver per recipient,
    the authorities (re-identification in mode escrowed, epoch-key certification in mode blind)
    and their group info."""

    mode: str
    clock: esc.EpochClock
    escrow: esc.Escrow
    meters: dict[str, esc.Meter]
    receivers: dict[str, esc.Receiver]
    authorities: list[esc.Authority] = field(default_factory=list)
    authority_info: frost.PublicKeyPackage | None = None
    lf_ca_key: Ed25519PrivateKey | None = field(default=None, repr=False)
    """The LFID root's key (exported by the vectors, specs/escrow.md section 11)."""


def provision(mode: str, meters: int, epochs: range, seed: str | None = None, *, authorities: int = 3,
              threshold: int = 2, rsa_bits: int = 2048, rng: RandomSource | None = None) -> Fleet:
    """A fleet of ``meters`` meters, an escrow in ``mode``, and keys for ``epochs`` (blind mode).

    Every draw comes from one source, in the order of specs/escrow.md section 11.2: ``rng`` if
    given (a vector passes a recording source to list the draws), else HMAC_DRBG("usapp-escrow-fleet/"
    + ``seed``) if a seed is given, else the OS CSPRNG.  Giving both is a ``ParameterError``."""
    if mode not in esc.MODES:
        raise ParameterError(f"mode must be one of {', '.join(esc.MODES)}")
    if seed is not None and rng is not None:
        raise ParameterError("give a seed or a randomness source, not both")
    source = HmacDrbg.from_seed("usapp-escrow-fleet/" + seed) if seed is not None else resolve(rng)
    return _provision(mode, meters, epochs, authorities, threshold, rsa_bits, source)


def _provision(mode: str, meters: int, epochs: range, authorities: int, threshold: int, rsa_bits: int,
               rng: RandomSource) -> Fleet:
    clock = esc.EpochClock(ORIGIN, EPOCH_SECONDS)
    lf_ca_key = ed25519_key(rng)
    lf_root = ca_certificate("LFID root", lf_ca_key)
    anchors = (certificates.TrustAnchor(lf_root, frozenset({"meter"})),)
    escrow_hpke_private, escrow_hpke_public = hpke.DeriveKeyPair(rng.random_bytes(32))
    state = esc.EscrowState(mode, clock, anchors, escrow_hpke_private)
    hf_root: bytes | None = None
    authorities_key: bytes | None = None
    operators, info = groupkeys.operator_ceremony(authorities, threshold, b"escrow-authorities", rng)
    fleet_authorities = [esc.Authority(op.state.signer.key_package) for op in operators]
    if mode == "escrowed":
        hf_ca_key = ed25519_key(rng)
        hf_root = ca_certificate("HFID escrow CA", hf_ca_key)
        state.hf_ca_key = hf_ca_key.private_bytes_raw()
        state.hf_ca_certificate = hf_root
        state.authorities = info
    else:
        authorities_key = ed25519.SerializeElement(info.group_public_key)
        for epoch in epochs:
            epoch_key = rsa_key(rng, rsa_bits)
            state.rsa_keys[epoch] = epoch_key
            state.epoch_keys[epoch] = esc.certify_epoch_key(fleet_authorities[:threshold], info, epoch,
                                                            epoch_key.public, rng)
    escrow = esc.Escrow(state)
    fleet_meters: dict[str, esc.Meter] = {}
    for i in range(meters):
        serial = f"SM-{i:05d}"
        key = ed25519_key(rng)
        chain = (device_certificate(serial, key, "LFID root", lf_ca_key, 1000 + i),)
        meter = esc.Meter(esc.MeterState(mode, clock, esc.LfProfile(chain, pkcs8(key), lf_root), escrow_hpke_public,
                                         hf_root=hf_root, authorities_key=authorities_key))
        for message in state.epoch_keys.values():
            meter.install_epoch_key(message)
        fleet_meters[serial] = meter
    receivers: dict[str, esc.Receiver] = {}
    for r in sorted(esc.RECIPIENTS):
        receivers[r] = esc.Receiver(esc.ReceiverState(r, mode, clock, anchors, hf_root,
                                                      authorities_key=authorities_key))
        for message in state.epoch_keys.values():
            receivers[r].install_epoch_key(message)
    return Fleet(mode, clock, escrow, fleet_meters, receivers, fleet_authorities, info, lf_ca_key)
