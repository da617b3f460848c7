"""The issuance and integrity roles with the ECCSI suites (issue 21; specs/issuance.md 10.4,
specs/integrity.md 3.3, specs/roles.md sections 8 and 10).

* ``issuance`` deployed with ``suite="usapp-eccsi-sakke-p256-p1-v1"``: one KMS (SAKKE cannot be
  split, 10.5.4); every device enrolls through the PKG and device roles, holds the KMS's key for its
  identifier, signs (verified from the identifier alone) and decapsulates; replays, revocation and
  epochs are refused as with the default suite;
* ``integrity`` deployed with ``suite="eccsi-p256"``: meters enrolled through the issuance protocol
  sign ECCSI records; the utility and the arbiter hold only the KPAK and each meter's URI; the
  cheating utility is located and named, the restored meter resyncs;
* both through ``protocols.system.costs.deployment`` (how the integrator traces them), and the
  defaults unchanged.
"""

from __future__ import annotations

import sqlite3

import pytest

from protocols import integrity as ig
from protocols import issuance as iss
from protocols import issuance_eccsi as ie
from protocols.errors import ParameterError, StateFileError, UsappError, VerificationError
from protocols.primitives import cbor
from protocols.primitives.drbg import HmacDrbg
from protocols.schemes import eccsi
from protocols.system import costs
from protocols.system.roles import harness
from protocols.system.roles import integrity as integrity_roles
from protocols.system.roles import issuance as issuance_roles
from protocols.system.roles.process import Party, role_spec, write_deployment

ISSUANCE = {"suite": ie.SUITE}
INTEGRITY = {"suite": ig.SUITE_ECCSI}


def _run(protocol: str, directory, options: dict) -> tuple[harness.Checks, harness.Network, dict]:
    checks, network, figures = harness.run_scenario(protocol, str(directory), in_process=True, options=options)
    assert checks.ok, [(c.name, c) for c in checks.results if not c.passed]
    return checks, network, figures


# --------------------------------------------------------------------------
# issuance


def test_the_issuance_scenario_passes_with_the_eccsi_sakke_suite(tmp_path):
    checks, network, figures = _run("issuance", tmp_path, ISSUANCE)
    assert figures == {"nodes": 1, "threshold": 1, "devices": 2, "issuances": 4, "messages": 45}
    names = [c.name for c in checks.results]
    assert sum("ECCSI/SAKKE key for its identifier, signs and decapsulates" in n for n in names) == 2
    assert any("revoked, is refused" in n for n in names)
    deliveries = [iss.decode_delivery(m.body) for m in network.transcript if m.type == issuance_roles.DELIVERY]
    assert deliveries and all(d.suite == ie.SUITE for d in deliveries)


def test_the_eccsi_issuance_scenario_passes_between_processes(tmp_path):
    """``usapp interop issuance --option suite=...``: every party its own process, state in its file."""
    checks, _, figures = harness.run_scenario("issuance", str(tmp_path), options=ISSUANCE)
    assert checks.ok, [c.name for c in checks.results if not c.passed]
    assert figures["issuances"] == 4


def test_the_eccsi_deployment_is_one_kms_and_its_options_are_checked():
    deployment = costs.deployment("issuance", ISSUANCE)          # how the integrator traces it
    assert deployment == issuance_roles.deploy(costs.SCENARIO_SEED, **ISSUANCE)
    pkgs = [r for role, r in deployment.parties.values() if role == "pkg"]
    devices = [r for role, r in deployment.parties.values() if role == "device"]
    assert len(pkgs) == 1 and pkgs[0]["suite"] == ie.SUITE and len(pkgs[0]["z"]) == 128
    assert all(d["suite"] == ie.SUITE and d["threshold"] == 1 and len(d["p_pub"]) == 65 + 257 for d in devices)
    assert deployment.public["epoch"] == ie.epoch_of_period("2026-01")    # the PKG's month on 2026-01-01
    kms = issuance_roles.eccsi_kms(deployment)
    assert deployment.public["p_pub"] == kms.KPAK + kms.Z
    for bad in ({"nodes": 3}, {"threshold": 2, "nodes": 1}, {"epoch": ie.MAX_SUITE_EPOCH}, {"suite": "other"}):
        with pytest.raises(ParameterError, match="option"):
            issuance_roles.deploy("x", **{**ISSUANCE, **bad})


def test_a_bad_eccsi_provisioning_record_is_refused_and_leaves_no_file(tmp_path):
    """The device's KPAK || Z and the PKG's KSAK and z are checked when the party is provisioned."""
    from protocols.system.roles.process import provision_party

    deployment = issuance_roles.deploy("bad", devices=1, **ISSUANCE)
    role, device = deployment.parties["device-1"]
    publics = device["p_pub"]
    assert isinstance(publics, bytes)
    off_curve = publics[:64] + bytes([publics[64] ^ 1]) + publics[65:]
    for change in ({"p_pub": off_curve}, {"p_pub": publics[:-1]}, {"threshold": 2}):
        path = tmp_path / "device.sqlite"
        with pytest.raises(ParameterError):
            provision_party(role_spec("issuance", role), str(path), "device-1", {**device, **change})
        assert not path.exists()
    role, pkg = deployment.parties["pkg-1"]
    for change in ({"share": bytes(32)}, {"z": bytes(127)}, {"node": 2}):
        path = tmp_path / "pkg.sqlite"
        with pytest.raises(ParameterError):
            provision_party(role_spec("issuance", role), str(path), "pkg-1", {**pkg, **change})
        assert not path.exists()


def test_the_default_issuance_deployment_is_unchanged():
    """No option: the BLS12-381 t-of-n deployment, as before (the golden file and role vectors rely on it)."""
    default = issuance_roles.deploy("x", nodes=2, threshold=2, devices=1)
    assert "suite" not in default.public and default.public["epoch"] == issuance_roles.EPOCH
    assert all("suite" not in r for role, r in default.parties.values() if role == "pkg")
    assert cbor.encode(issuance_roles.deploy("x").parties) == cbor.encode(
        issuance_roles.deploy("x", nodes=3, threshold=2, epoch=issuance_roles.EPOCH).parties)


def test_a_device_refuses_an_eccsi_key_for_another_identity(tmp_path):
    """The device role runs the check of 10.4.6: a PKG whose KMS is another's delivers a key that fails
    it, and the device stays without a key (VerificationError, refused and rolled back)."""
    deployment = issuance_roles.deploy("refusal", devices=1, **ISSUANCE)
    other = issuance_roles.deploy("another-kms", devices=1, **ISSUANCE)
    pkg_id = issuance_roles.node_id(1)
    parties = dict(deployment.parties)
    parties[pkg_id] = other.parties[pkg_id]                  # the PKG holds another KMS's secrets
    swapped = type(deployment)(deployment.protocol, parties, deployment.public)
    network = harness.open_network(swapped, str(tmp_path), seed="tests", in_process=True)
    try:
        epoch, now = int(deployment.public["epoch"]), int(deployment.public["now"])
        network.deliver([issuance_roles.env(pkg_id, "env.tick", {1: now})])
        with pytest.raises(harness.Refused) as refused:
            issuance_roles.enroll(network, "device-1", epoch, now + 1)
        assert refused.value.error == "VerificationError"
    finally:
        network.close()


def test_the_enrolled_key_signs_for_its_identifier_only():
    kms = issuance_roles.eccsi_kms(issuance_roles.deploy("keys", devices=0, **ISSUANCE))
    epoch = ie.epoch_of_period("2026-01")
    issued = issuance_roles.enroll_in_process(kms, HmacDrbg.from_seed("tests/roles-eccsi"), "SM-000001",
                                              [epoch, epoch + 1], issuance_roles.NOW)
    assert [k.epoch for k in issued] == [epoch, epoch + 1] and all(k.suite == ie.SUITE for k in issued)
    key = ie.signing_key(kms.KPAK, issued[0])
    signature = eccsi.Sign(key, b"m", HmacDrbg.from_seed("j"))
    eccsi.Verify(kms.KPAK, key.ID, b"m", signature)
    with pytest.raises(VerificationError):
        eccsi.Verify(kms.KPAK, ie.signing_key(kms.KPAK, issued[1]).ID, b"m", signature)


# --------------------------------------------------------------------------
# integrity


def test_the_integrity_scenario_passes_with_eccsi_records(tmp_path):
    checks, network, figures = _run("integrity", tmp_path, INTEGRITY)
    assert figures["located"] == 20 and figures["verdict"] == "utility" and figures["verdict_kind"] == "forged"
    assert figures["match"] and figures["resync_adopted"] == 24 and figures["resync_resigned"] == 1
    records = [ig.decode_record(m.body) for m in network.transcript if m.type == "record"]
    assert records and all(r.suite == ig.SUITE_ECCSI and r.key_period == "2026-01" for r in records)
    assert all(len(r.signature) == ig.ECCSI_SIGNATURE_BYTES for r in records)
    verdicts = [m for m in network.transcript if m.type == "verdict"]
    assert len(verdicts) == 1 and integrity_roles.verdict_of(verdicts[0])[2] == "utility"


def test_the_utility_and_the_arbiter_hold_only_the_kpak_and_the_uri():
    deployment = costs.deployment("integrity", INTEGRITY)        # how the integrator traces it
    kpak = deployment.public["kpak"]
    assert isinstance(kpak, bytes) and len(kpak) == 65
    for party in (integrity_roles.UTILITY, integrity_roles.ARBITER):
        rows = deployment.parties[party][1]["meters"]
        assert all(row["public"] == kpak and row["meter"].startswith(b"urn:usapp:role-meters:meter:SM-")
                   for row in rows)
    for ident, (role, record) in deployment.parties.items():
        if role != "meter":
            continue
        assert record["suite"] == ig.SUITE_ECCSI and record["kpak"] == kpak
        assert [k["period"] for k in record["keys"]] == ["2025-12", "2026-01"]
        key = ig.EccsiRecordKey(kpak, record["meter"])
        for k in record["keys"]:
            eccsi.ValidateSsk(kpak, key.identifier(k["period"]), k["SSK"], k["PVT"])


def test_integrity_options_are_checked_and_the_default_is_unchanged():
    with pytest.raises(ParameterError, match="suite"):
        integrity_roles.deploy("x", suite="rsa")
    default = integrity_roles.deploy("x", meters=3, records=5, cheat_at=-1)
    assert default == integrity_roles.deploy("x", meters=3, records=5, cheat_at=-1, suite=ig.SUITE_ED25519)
    assert "suite" not in default.public
    assert all(set(record) == {"meter", "device_key", "utility_public", "utility", "arbiter"}
               for role, record in default.parties.values() if role == "meter")
    eccsi_deployment = integrity_roles.deploy("x", meters=3, records=5, cheat_at=-1, **INTEGRITY)
    assert eccsi_deployment.public["readings"] == default.public["readings"]    # the same readings


def test_a_record_signed_by_another_meters_key_is_refused_by_the_utility(tmp_path):
    """The utility verifies from the meter's URI: a record made with meter 0's key but sent by meter 1
    (its id) is refused; one with meter 1's id but meter 0's key fails the ECCSI check."""
    deployment = integrity_roles.deploy("t", records=4, cheat_at=-1, **INTEGRITY)
    network = harness.open_network(deployment, str(tmp_path), seed="tests", in_process=True)
    try:
        integrity_roles.run_day(network, deployment, 1)
        sent = [m for m in network.transcript if m.type == "record"]
        from_0 = next(m for m in sent if m.sender == "meter-000")
        with pytest.raises(harness.Refused) as refused:
            network.send(type(from_0)("meter-001", integrity_roles.UTILITY, "record", from_0.body))
        assert refused.value.error == "VerificationError"
        record = ig.decode_record(from_0.body)
        other_uri = deployment.parties["meter-001"][1]["meter"]
        moved = ig.Record(other_uri, record.period, 1, record.registers, record.signature, record.boot,
                          record.suite, record.key_period)
        with pytest.raises(harness.Refused) as refused:
            network.send(type(from_0)("meter-001", integrity_roles.UTILITY, "record", moved.to_bytes()))
        assert refused.value.error == "VerificationError"
    finally:
        network.close()


def test_an_eccsi_meter_state_file_holds_its_keys_and_rejects_corrupt_ones(tmp_path):
    """The meter's config carries the suite, the KPAK and its keys; a corrupt key in the file is a
    StateFileError at the next input, never a silent reset."""
    deployment = integrity_roles.deploy("t", meters=1, records=2, cheat_at=-1, **INTEGRITY)
    write_deployment(deployment, str(tmp_path))
    path = str(tmp_path / "meter-000.sqlite")
    db = sqlite3.connect(path)
    (raw,) = db.execute("SELECT value FROM kv WHERE name = 'config'").fetchone()
    db.close()
    config = cbor.decode(raw)
    assert config[6] == ig.SUITE_ECCSI and config[7] == deployment.public["kpak"] and len(config[8]) == 2
    config[8][1][1] = bytes(32)                                           # the 2026-01 SSK = 0
    db = sqlite3.connect(path)
    with db:
        db.execute("UPDATE kv SET value = ? WHERE name = 'config'", (cbor.encode(config),))
    db.close()
    party = Party.open(role_spec("integrity", "meter"), path, "meter-000", "tests")
    try:
        with pytest.raises(StateFileError):
            party.handle(integrity_roles.reading("meter-000", deployment, 0))
    finally:
        party.close()


def test_both_protocols_trace_through_costs_deployment():
    """``costs.deployment(protocol, {"suite": ...})`` passes the option to ``deploy``; an unknown option is
    refused, not ignored."""
    assert costs.deployment("issuance", ISSUANCE).public["suite"] == ie.SUITE
    assert costs.deployment("integrity", INTEGRITY).public["suite"] == ig.SUITE_ECCSI
    with pytest.raises((ParameterError, TypeError)):
        costs.deployment("integrity", {"record_suite": ig.SUITE_ECCSI})
    with pytest.raises(UsappError):
        costs.deployment("issuance", {"suite": ig.SUITE_ECCSI})
