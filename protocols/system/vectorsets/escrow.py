"""Vector family ``escrow``: whole dual-ID escrow runs of specs/escrow.md (section 11).

Each vector (operation ``run``) provisions a fleet with
``escrow_fleet.provision(mode, meters, epochs, seed)`` (every key from one
HMAC_DRBG, listed under ``fleet``), then plays ``steps`` with every draw from
HMAC_DRBG(run_seed):

- ``issue``: ``Meter.request_hfid(epoch)``, ``Escrow.handle`` at the epoch's
  first second, ``Meter.receive_hfid``; outputs the request, the response,
  the credential and the HFID;
- ``send``: ``Meter.send(category, recipient, payload, time)`` and the
  recipient's ``receive``; outputs the message and the sender the receiver
  names;
- ``reidentify`` (mode escrowed): the listed authorities approve a
  reid-request for the meter's credential of the epoch, check the sealed
  link's proof under the fingerprint's label, give their shares, and the
  link opens; outputs the sealed link, the request, each share, the opened
  link and its padded plaintext.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any

from protocols import escrow as esc
from protocols.errors import VectorMismatchError
from protocols.primitives.drbg import HmacDrbg
from protocols.primitives import ed25519
from protocols.system import escrow_fleet
from protocols.system.vectorsets import VectorFamily
from protocols.system.vectorsets._fields import (
    bytes_field,
    dispatch,
    expect,
    expect_steps,
    field,
    list_field,
    recompute,
    small_int_field,
    str_field,
)

PROTOCOL = "escrow"
SUITE = "usapp-escrow-v1"
FILE = "escrow.json"
SEED = "usapp-vectors/escrow/"
_INPUTS = {"op", "serial", "epoch", "category", "recipient", "payload", "time", "authorities", "reason",
           "request_id"}


def _fleet_outputs(fleet: escrow_fleet.Fleet) -> dict:
    escrow = fleet.escrow
    out = {
        "lf_root": fleet.meters[sorted(fleet.meters)[0]].state.lf.root.hex(),
        "escrow_hpke_public": escrow.hpke_public.hex(),
        "meters": {s: {"chain": [c.hex() for c in m.state.lf.chain], "private_key": m.state.lf.private_key.hex()}
                   for s, m in sorted(fleet.meters.items())},
    }
    out["authorities_key"] = ed25519.SerializeElement(fleet.authority_info.group_public_key).hex()
    if fleet.mode == "escrowed":
        out["hf_ca_certificate"] = escrow.state.hf_ca_certificate.hex()
    else:
        out["rsa_public"] = {str(e): {"n": format(int(k.public.n), "x"), "e": format(int(k.public.e), "x")}
                             for e, k in sorted(escrow.state.rsa_keys.items())}
        out["epoch_keys"] = {str(e): m.hex() for e, m in sorted(escrow.state.epoch_keys.items())}
    return out


def _step(fleet: escrow_fleet.Fleet, step: Mapping[str, Any], rng: HmacDrbg) -> dict:
    op = str_field(step, "op")
    serial = str_field(step, "serial")
    if serial not in fleet.meters:
        raise VectorMismatchError(f"step: unknown meter {serial!r}")
    meter = fleet.meters[serial]
    if op == "issue":
        epoch = small_int_field(step, "epoch")
        request = meter.request_hfid(epoch, rng)
        response = fleet.escrow.handle(request, escrow_fleet.ORIGIN + epoch * escrow_fleet.EPOCH_SECONDS, rng)
        profile = meter.receive_hfid(response)
        return {"request": request.hex(), "response": response.hex(), "credential": profile.credential.hex(),
                "hfid": profile.hfid.hex()}
    if op == "send":
        recipient = str_field(step, "recipient")
        time = small_int_field(step, "time")
        message = meter.send(str_field(step, "category"), recipient, bytes_field(step, "payload"), time)
        received = fleet.receivers[recipient].receive(message, time)
        return {"message": message.hex(), "sender": received.sender}
    if op == "reidentify":
        epoch = small_int_field(step, "epoch")
        if epoch not in meter.state.hf:
            raise VectorMismatchError(f"reidentify: meter {serial} holds no HFID for epoch {epoch}")
        fingerprint = hashlib.sha256(meter.state.hf[epoch].credential).digest()
        sealed = fleet.escrow.sealed_link(fingerprint)
        request = esc.reidentification_request(fingerprint, str_field(step, "reason"),
                                               bytes_field(step, "request_id"))
        shares = {}
        for i in list_field(step, "authorities"):
            if type(i) is not int or not 1 <= i <= len(fleet.authorities):
                raise VectorMismatchError("field 'authorities' must list authority identifiers")
            fleet.authorities[i - 1].approve(request)
            shares[i] = fleet.authorities[i - 1].share(request, fleet.escrow, rng)
        record = esc.reidentify(fleet.authority_info, request, sealed, shares)
        return {"sealed_link": sealed.hex(), "reid_request": request.hex(),
                "shares": {str(i): s.hex() for i, s in shares.items()},
                "link": {"lfid_serial": record.lfid_serial, "epoch": record.epoch},
                "link_plaintext": esc.encode_link(record.lfid_serial, record.epoch, record.fingerprint).hex()}
    raise VectorMismatchError(f"unknown step op {op!r}")


def _outputs(v: Mapping[str, Any]) -> tuple[dict, list[dict]]:
    mode = str_field(v, "mode")
    if mode not in esc.MODES:
        raise VectorMismatchError(f"field 'mode': unknown mode {mode!r}")
    epochs, meters = small_int_field(v, "epochs"), small_int_field(v, "meters")
    if not 1 <= epochs <= 8 or not 1 <= meters <= 16:
        raise VectorMismatchError("fields 'epochs' and 'meters': a run has 1 to 8 epochs and 1 to 16 meters")
    fleet = escrow_fleet.provision(mode, meters, range(epochs), str_field(v, "fleet_seed"))
    rng = HmacDrbg.from_seed(str_field(v, "run_seed"))
    steps = list_field(v, "steps")
    if not steps or any(not isinstance(s, dict) for s in steps):
        raise VectorMismatchError("field 'steps' must be a non-empty list of objects")
    return _fleet_outputs(fleet), [_step(fleet, {k: s[k] for k in s if k in _INPUTS}, rng) for s in steps]


def _run(v: Mapping[str, Any]) -> None:
    steps = list_field(v, "steps")
    top, computed = recompute("run", lambda: _outputs(v))
    expect("fleet", field(v, "fleet"), top)
    expect_steps(steps, computed, _INPUTS)


OPERATIONS = {"run": _run}


def verify_vector(vector: Mapping[str, Any]) -> None:
    dispatch(OPERATIONS, vector)


def _at(epoch: int, offset: int) -> int:
    return escrow_fleet.ORIGIN + epoch * escrow_fleet.EPOCH_SECONDS + offset


def _case(name: str, mode: str, steps: list[dict]) -> dict:
    v: dict[str, Any] = {"operation": "run", "name": name, "mode": mode, "meters": 2, "epochs": 2,
                         "fleet_seed": SEED + name + "/fleet", "run_seed": SEED + name + "/run"}
    top, outputs = _outputs({**v, "steps": steps})
    v["fleet"] = top
    v["steps"] = [{**step, **out} for step, out in zip(steps, outputs)]
    return v


def build() -> dict:
    common = [
        {"op": "issue", "serial": "SM-00000", "epoch": 0},
        {"op": "issue", "serial": "SM-00001", "epoch": 0},
        {"op": "send", "serial": "SM-00000", "category": "technical", "recipient": "grid-operator",
         "payload": b"voltage 231.2 V".hex(), "time": _at(0, 900)},
        {"op": "send", "serial": "SM-00001", "category": "technical", "recipient": "grid-operator",
         "payload": b"voltage 229.8 V".hex(), "time": _at(0, 900)},
        {"op": "send", "serial": "SM-00000", "category": "customer", "recipient": "supplier",
         "payload": b"12.45 kWh".hex(), "time": _at(0, 80_000)},
        {"op": "send", "serial": "SM-00001", "category": "personal", "recipient": "household",
         "payload": b"kettle 07:02".hex(), "time": _at(0, 25_320)},
        {"op": "issue", "serial": "SM-00000", "epoch": 1},
        {"op": "send", "serial": "SM-00000", "category": "technical", "recipient": "grid-operator",
         "payload": b"voltage 230.4 V".hex(), "time": _at(1, 900)},
    ]
    reid = [{"op": "reidentify", "serial": "SM-00001", "epoch": 0, "authorities": [1, 3],
             "reason": "court order 17/2026", "request_id": bytes(range(16)).hex()}]
    vectors = [_case("escrowed-two-meters-two-epochs", "escrowed", common + reid),
               _case("blind-two-meters-two-epochs", "blind", common)]
    return {
        "protocol": PROTOCOL,
        "suite": SUITE,
        "source": "generated by the USaPP reference implementation; procedures in specs/escrow.md (sections 4 "
                  "to 8; vectors section 11), specs/blind_rsa.md and specs/threshold_elgamal.md",
        "generated_by": (f"usapp vectors generate (HMAC_DRBG SHA-256 from_seed: the fleet from "
                         f"usapp-escrow-fleet/{SEED}<name>/fleet through escrow_fleet.provision, every draw of "
                         f"the run from {SEED}<name>/run)"),
        "description": (
            "Whole escrow runs (operation 'run'). Inputs: mode, meters, epochs, fleet_seed (escrow_fleet.provision "
            "draws every key from it: its outputs are under 'fleet': the LFID root, the escrow's HPKE key, each "
            "meter's LFID chain and PKCS#8 key, the authorities' group key, and the HF CA certificate (escrowed) or "
            "the escrow's RSA key per epoch and its epoch-key message certified by authorities 1..t (blind)), "
            "run_seed (every draw of the steps), and steps: issue "
            "(serial, epoch; at the epoch's first second), send (serial, category, recipient, payload, time; "
            "received at that time), reidentify (serial, epoch, authorities, reason, request_id). Outputs, hex: "
            "request, response, credential, hfid; message and the receiver's sender name; sealed_link, "
            "reid_request, shares, the opened link and link_plaintext (the padded link, LINK_BYTES long)."),
        "vectors": vectors,
    }


FAMILY = VectorFamily(file=FILE, protocol=PROTOCOL, suite=SUITE, verify_vector=verify_vector, build=build)
