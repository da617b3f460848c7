"""Vector family ``escrow``: whole dual-ID escrow runs of specs/escrow.md (section 11).

Each vector (operation ``run``) provisions a fleet with
``escrow_fleet.provision(mode, meters, epochs, rng=HMAC_DRBG(fleet_seed))``
(section 11.2: every draw listed by name under ``fleet.draws``, every key
exported under ``fleet``), then plays ``steps`` with every draw from
HMAC_DRBG(run_seed), each step listing its own draws by name and, per role
(meter, escrow, receiver, authority, combiner), its input, output,
intermediates and state before and after (section 11.3):

- ``request``: ``Meter.request_hfid(epoch)`` only (the escrow does not answer);
- ``issue``: ``Meter.request_hfid(epoch)``, ``Escrow.handle`` at the epoch's
  first second (or at ``at``), ``Meter.receive_hfid`` by the meter (or by
  ``deliver_to``);
- ``replay_request``: the escrow handles the meter's last request again;
- ``send``: ``Meter.send(category, recipient, payload, time)`` and the
  recipient's ``receive`` at ``time`` (or at ``receive_at``);
- ``replay_message``: the recipient receives the meter's last message again;
- ``reidentify`` (mode escrowed): the ``approve`` authorities (default: all
  listed) approve a reid-request, the listed authorities give shares, and the
  link opens;
- ``decode_link``: the link decoder of section 4.8 on ``link``.

``edit`` (on issue, send, reidentify) changes the message a step passes on:
``{"truncate": k}`` keeps the first k bytes, ``{"flip": i}`` XORs byte i with
0x01, ``{"append": hex}`` appends bytes.  A vector with ``result`` "invalid"
ends with a step that the protocol refuses with the error ``error``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from protocols import escrow as esc
from protocols.errors import UsappError, VectorMismatchError
from protocols.primitives import cbor, ed25519
from protocols.primitives.drbg import HmacDrbg
from protocols.schemes import hpke, threshold_elgamal
from protocols.system import escrow_fleet
from protocols.system.vectorsets import VectorFamily
from protocols.system.vectorsets._fields import (
    MAX_PARTIES,
    MAX_STEPS,
    UINT32,
    UINT64,
    bytes_field,
    dispatch,
    edit_bytes,
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
AUTHORITIES, THRESHOLD = 3, 2
GROUP = b"escrow-authorities"
_INPUTS = {"op", "serial", "epoch", "category", "recipient", "payload", "time", "authorities", "reason",
           "request_id", "at", "deliver_to", "receive_at", "edit", "approve", "link", "approve_request_id",
           "approve_edit", "fingerprint", "link_of"}
_VECTOR_INPUTS = {"operation", "name", "mode", "meters", "epochs", "fleet_seed", "run_seed", "steps", "result",
                  "flags", "error", "comment"}
ERRORS = ("DecodeError", "ParameterError", "VerificationError", "StateError", "ReplayError", "RecoveryError",
          "PolicyError", "ConsistencyError")
_MASK253 = (1 << 253) - 1

NOTES = {
    "Truncated": "a message cut short: the decoder refuses it (DecodeError)",
    "TrailingBytes": "bytes appended after a well-formed message or link (DecodeError)",
    "Tampered": "one byte of a signed or sealed value flipped: the signature, AEAD or proof check refuses it",
    "Replay": "a request or data message delivered a second time (ReplayError)",
    "WrongEpoch": "a request handled, or a data message received, outside the epochs it is valid for (StateError)",
    "WrongKey": "a response opened by a meter it was not sealed to (VerificationError)",
    "NotApproved": "an authority asked for a share of a request it did not approve (StateError)",
    "ApprovalReused": "a second share asked of an authority for a request whose one approval it already used "
                      "(StateError)",
    "UnknownCredential": "a reid-request naming a credential the escrow holds no sealed link for (StateError)",
    "WrongLink": "the escrow answers an authority with another credential's sealed link, whose proof does not "
                 "verify under the requested fingerprint's label (VerificationError)",
    "TooFewShares": "fewer than t decryption shares (RecoveryError)",
    "NonCanonicalLink": "a link plaintext with a wrong length prefix or non-zero padding (DecodeError)",
    "Refusal": "a protocol step refuses its input: the vector's last step raises 'error'",
}


# ---------------------------------------------------------------------------
# Recording and naming draws (specs/escrow.md section 11.2 and 11.3)
# ---------------------------------------------------------------------------


class _Recorder:
    """A RandomSource that passes draws through and keeps them in order."""

    def __init__(self, source) -> None:
        self.source = source
        self.draws: list[bytes] = []

    def random_bytes(self, n: int) -> bytes:
        data = self.source.random_bytes(n)
        self.draws.append(data)
        return data

    def mark(self) -> int:
        return len(self.draws)


def _scalar_ok(data: bytes) -> bool:
    """RandomScalar = RandomBelow(L): 32 bytes, low 253 bits kept, accepted when < L."""
    return (int.from_bytes(data, "big") & _MASK253) < ed25519.L


def _below_ok(n: int) -> Callable[[bytes], bool]:
    mask = (1 << (n - 1).bit_length()) - 1
    return lambda data: (int.from_bytes(data, "big") & mask) < n


Schedule = list[tuple[str, Callable[[bytes], bool] | None]]


def _named(draws: list[bytes], schedule: Schedule) -> list[dict]:
    """Name each draw after the schedule of the spec; a rejected attempt is named '<name>/rejected'."""
    out, position = [], 0
    for name, accept in schedule:
        while True:
            if position >= len(draws):
                raise VectorMismatchError(f"draws: the run drew fewer values than the schedule names ({name})")
            data = draws[position]
            position += 1
            ok = accept is None or accept(data)
            out.append({"name": name if ok else name + "/rejected", "hex": data.hex()})
            if ok:
                break
    if position != len(draws):
        raise VectorMismatchError("draws: the run drew more values than the schedule names")
    return out


def _fleet_schedule(mode: str, meters: int, epochs: int) -> Schedule:
    s: Schedule = [("lf_root_key", None), ("escrow_hpke_ikm", None)]
    for i in range(1, AUTHORITIES + 1):
        s += [(f"authority{i}.a{j}", _scalar_ok) for j in range(THRESHOLD)] + [(f"authority{i}.k", _scalar_ok)]
    if mode == "escrowed":
        s.append(("hf_ca_key", None))
    else:
        for e in range(epochs):
            s += [(f"epoch{e}.rsa_p_seed", None), (f"epoch{e}.rsa_q_seed", None)]
            for i in range(1, THRESHOLD + 1):
                s += [(f"epoch{e}.authority{i}.hiding_nonce", None), (f"epoch{e}.authority{i}.binding_nonce", None)]
    s += [(f"meter{i}.device_key", None) for i in range(meters)]
    return s


# ---------------------------------------------------------------------------
# The fleet (section 11.2)
# ---------------------------------------------------------------------------


_T = TypeVar("_T")


def _present(value: _T | None, what: str) -> _T:
    """A fleet value the run needs (absent: the fleet is not the one section 11.2 provisions)."""
    if value is None:
        raise VectorMismatchError(f"the fleet has no {what}")
    return value


def _scalar_hex(k: int) -> str:
    return ed25519.SerializeScalar(k).hex()


def _fleet_outputs(fleet: escrow_fleet.Fleet, draws: list[dict]) -> dict:
    escrow = fleet.escrow
    info = _present(fleet.authority_info, "authorities' public key package")
    out: dict[str, Any] = {
        "draws": draws,
        "lf_root_key": _present(fleet.lf_ca_key, "LFID root key").private_bytes_raw().hex(),
        "lf_root": fleet.meters[sorted(fleet.meters)[0]].state.lf.root.hex(),
        "escrow_hpke_private": escrow.state.hpke_private.hex(),
        "escrow_hpke_public": escrow.hpke_public.hex(),
        "authorities": {
            "n": info.MAX_PARTICIPANTS, "t": info.MIN_PARTICIPANTS,
            "group_public_key": ed25519.SerializeElement(info.group_public_key).hex(),
            "secret_shares": {str(a.key_package.identifier): _scalar_hex(a.key_package.secret_share)
                              for a in fleet.authorities},
            "verifying_shares": {str(i + 1): ed25519.SerializeElement(pk).hex()
                                 for i, pk in enumerate(info.participant_public_keys)},
        },
        "meters": {s: {"chain": [c.hex() for c in m.state.lf.chain], "private_key": m.state.lf.private_key.hex()}
                   for s, m in sorted(fleet.meters.items())},
    }
    if fleet.mode == "escrowed":
        out["hf_ca_key"] = _present(escrow.state.hf_ca_key, "HF CA key").hex()
        out["hf_ca_certificate"] = _present(escrow.state.hf_ca_certificate, "HF CA certificate").hex()
    else:
        out["rsa_keys"] = {str(e): {"p": format(int(k.p), "x"), "q": format(int(k.q), "x"),
                                    "n": format(int(k.public.n), "x"), "e": format(int(k.public.e), "x"),
                                    "d": format(int(k.d), "x"), "spki": esc.rsa_public_der(k.public).hex(),
                                    "epoch_key": escrow.state.epoch_keys[e].hex()}
                           for e, k in sorted(escrow.state.rsa_keys.items())}
    return out


# ---------------------------------------------------------------------------
# Steps (section 11.3)
# ---------------------------------------------------------------------------


def _edit(data: bytes, step: Mapping[str, Any]) -> bytes:
    edit = step.get("edit")
    return data if edit is None else edit_bytes(data, edit, "edit")


class _Run:
    """A fleet and the state the steps need (the last request and message of each meter)."""

    def __init__(self, fleet: escrow_fleet.Fleet, rng: _Recorder) -> None:
        self.fleet = fleet
        self.rng = rng
        self.last_request: dict[str, bytes] = {}
        self.last_message: dict[str, tuple[bytes, str]] = {}

    def meter(self, step: Mapping[str, Any], name: str = "serial") -> esc.Meter:
        serial = str_field(step, name)
        if serial not in self.fleet.meters:
            raise VectorMismatchError(f"step: unknown meter {serial!r}")
        return self.fleet.meters[serial]

    def issued(self) -> list[list]:
        return [[s, e] for s, e in sorted(self.fleet.escrow.state.issued)]

    # -- the meter asks (section 5.1) --------------------------------------
    def request(self, step: Mapping[str, Any]) -> tuple[dict, bytes]:
        meter, epoch = self.meter(step), small_int_field(step, "epoch", low=0, high=UINT32)
        first = self.rng.mark()
        request = meter.request_hfid(epoch, self.rng)
        self.last_request[str_field(step, "serial")] = request
        hf_private = self.rng.draws[first]
        reply_private, reply_public = hpke.DeriveKeyPair(self.rng.draws[first + 1])
        pending = meter.state.pending[epoch]
        hf_public = esc._ed_public(hf_private)
        inter = {"hf_private": hf_private.hex(), "hf_public": hf_public.hex(), "reply_private": reply_private.hex(),
                 "reply_public": reply_public.hex()}
        if meter.state.mode == "escrowed":
            content = hf_public
        else:
            enc, ct = _request_ct(request)
            content = cbor.decode(hpke.OpenBase(enc, self.fleet.escrow.state.hpke_private,
                                                esc._request_info("blind", epoch), _request_aad(request), ct))[1]
            inter["prepared_message"] = _present(pending.blind_message, "prepared message").hex()
            inter["blinded_message"] = content.hex()
        inter["sealed_content"] = cbor.encode({1: content, 2: reply_public}).hex()
        inter["hpke_info"] = esc._request_info(meter.state.mode, epoch).hex()
        inter["hpke_aad"] = _request_aad(request).hex()
        role = {"role": "meter", "action": "request_hfid",
                "state_before": {"hf_epochs": sorted(e for e in meter.state.hf)},
                "intermediates": inter, "output": request.hex(),
                "state_after": {"hf_epochs": sorted(e for e in meter.state.hf)}}
        return role, request

    # -- the escrow answers (sections 5.2, 5.3) ----------------------------
    def handle(self, step: Mapping[str, Any], request: bytes, epoch: int) -> tuple[dict, bytes]:
        now = small_int_field(step, "at", low=0, high=UINT64) if "at" in step else \
            escrow_fleet.ORIGIN + epoch * escrow_fleet.EPOCH_SECONDS
        role: dict[str, Any] = {"role": "escrow", "action": "handle", "time": now,
                                "state_before": {"issued": self.issued()}, "input": request.hex()}
        first = self.rng.mark()
        response = self.fleet.escrow.handle(request, now, self.rng)
        st = self.fleet.escrow.state
        inter: dict[str, Any] = {"hpke_info": esc._response_info(st.mode, epoch, request).hex()}
        if st.mode == "escrowed":
            serial_draw = self.rng.draws[first]
            certificate = self._certificate_of(response, request, step)
            fingerprint = hashlib.sha256(certificate).digest()
            sealed = st.links[fingerprint]
            record = self.meter(step).state.lf.hardware_id
            r = (int.from_bytes(_accepted(self.rng.draws[first + 1:], 0), "big") & _MASK253)
            s = (int.from_bytes(_accepted(self.rng.draws[first + 1:], 1), "big") & _MASK253)
            inter.update({"hf_serial": format(int.from_bytes(serial_draw, "big") >> 2 | 1 << 125, "x"),
                          "certificate": certificate.hex(), "fingerprint": fingerprint.hex(),
                          "lfid_serial": record, "link_plaintext": esc.encode_link(record, epoch, fingerprint).hex(),
                          "link_aad": esc._link_aad(fingerprint).hex(), "seal_r": _scalar_hex(r),
                          "seal_s": _scalar_hex(s), "sealed_link": sealed.hex()})
        else:
            inter["blind_signature"] = self._certificate_of(response, request, step).hex()
        role.update({"intermediates": inter, "output": response.hex(), "state_after": {"issued": self.issued()}})
        return role, response

    def _certificate_of(self, response: bytes, request: bytes, step: Mapping[str, Any]) -> bytes:
        """The response's plaintext, opened with the requesting meter's reply key (an intermediate)."""
        meter = self.meter(step)
        _, m = esc.decode_message(response)
        pending = meter.state.pending[m[4]]
        return hpke.OpenBase(m[5], pending.reply_private, esc._response_info(m[3], m[4], request), b"", m[6])

    # -- the meter receives (section 5.4) ----------------------------------
    def receive_hfid(self, meter: esc.Meter, response: bytes) -> dict:
        before = sorted(meter.state.hf)
        profile = meter.receive_hfid(response)
        return {"role": "meter", "action": "receive_hfid", "state_before": {"hf_epochs": before},
                "input": response.hex(), "output": {"credential": profile.credential.hex(),
                                                    "hfid": profile.hfid.hex()},
                "state_after": {"hf_epochs": sorted(meter.state.hf)}}

    def issue(self, step: Mapping[str, Any]) -> list[dict]:
        epoch = small_int_field(step, "epoch", low=0, high=UINT32)
        meter_role, request = self.request(step)
        request = _edit(request, step)
        escrow_role, response = self.handle(step, request, epoch)
        target = self.meter(step, "deliver_to") if "deliver_to" in step else self.meter(step)
        return [meter_role, escrow_role, self.receive_hfid(target, response)]

    def replay_request(self, step: Mapping[str, Any]) -> list[dict]:
        request = self.last_request.get(str_field(step, "serial"))
        if request is None:
            raise VectorMismatchError("replay_request: the meter sent no request")
        _, m = esc.decode_message(request)
        return [self.handle(step, request, m[4])[0]]

    # -- data messages (section 7) -----------------------------------------
    def receive(self, step: Mapping[str, Any], message: bytes, recipient: str, time: int) -> dict:
        receiver = self.fleet.receivers[recipient]
        before = dict(sorted(receiver.state.last_seq.items()))
        received = receiver.receive(message, time)
        return {"role": "receiver", "action": "receive", "recipient": recipient, "time": time,
                "state_before": {"last_seq": before}, "input": message.hex(),
                "output": {"kind": received.kind, "sender": received.sender, "seq": received.seq},
                "state_after": {"last_seq": dict(sorted(receiver.state.last_seq.items()))}}

    def send(self, step: Mapping[str, Any]) -> list[dict]:
        meter, recipient = self.meter(step), str_field(step, "recipient")
        if recipient not in self.fleet.receivers:
            raise VectorMismatchError(f"send: unknown recipient {recipient!r}")
        time = small_int_field(step, "time", low=0, high=UINT64)
        message = meter.send(str_field(step, "category"), recipient, bytes_field(step, "payload"), time)
        self.last_message[str_field(step, "serial")] = (message, recipient)
        _, m = esc.decode_message(message)
        kind = m[2]
        inter = {"tbs": esc.tbs(kind, m, 11 if kind == "adp" else 9).hex()}
        meter_role = {"role": "meter", "action": "send", "intermediates": inter, "output": message.hex()}
        at = small_int_field(step, "receive_at", low=0, high=UINT64) if "receive_at" in step else time
        return [meter_role, self.receive(step, _edit(message, step), recipient, at)]

    def replay_message(self, step: Mapping[str, Any]) -> list[dict]:
        last = self.last_message.get(str_field(step, "serial"))
        if last is None:
            raise VectorMismatchError("replay_message: the meter sent no message")
        at = small_int_field(step, "receive_at", low=0, high=UINT64) if "receive_at" in step else small_int_field(step, "time", low=0, high=UINT64)
        return [self.receive(step, last[0], last[1], at)]

    # -- re-identification (section 8) -------------------------------------
    def reidentify(self, step: Mapping[str, Any]) -> list[dict]:
        """Section 11.3 ``reidentify``: approvals, shares (each authority's approval state before and
        after), the combiner."""
        meter, epoch = self.meter(step), small_int_field(step, "epoch", low=0, high=UINT32)
        if epoch not in meter.state.hf:
            raise VectorMismatchError(f"reidentify: the meter holds no HFID for epoch {epoch}")
        fingerprint = hashlib.sha256(meter.state.hf[epoch].credential).digest()
        if "fingerprint" in step:
            fingerprint = bytes_field(step, "fingerprint")
        reason, request_id = str_field(step, "reason"), bytes_field(step, "request_id")
        request = esc.reidentification_request(fingerprint, reason, request_id)
        listed = list_field(step, "authorities", max_items=MAX_PARTIES)
        approve = list_field(step, "approve", max_items=MAX_PARTIES) if "approve" in step else listed
        approved_request = request
        if "approve_request_id" in step:
            approved_request = esc.reidentification_request(fingerprint, reason,
                                                            bytes_field(step, "approve_request_id"))
        if "approve_edit" in step:
            approved_request = edit_bytes(approved_request, step["approve_edit"], "approve_edit")
        roles: list[dict] = []
        for i in approve:
            authority = self._authority(i)
            before = _approvals(authority)
            authority.approve(approved_request)
            roles.append({"role": "authority", "identifier": i, "action": "approve",
                          "state_before": {"approved": before}, "input": approved_request.hex(),
                          "intermediates": {"request_digest": hashlib.sha256(approved_request).hexdigest()},
                          "output": "approved", "state_after": {"approved": _approvals(authority)}})
        links = self.fleet.escrow.state.links
        held = links.get(fingerprint)
        if "link_of" in step:                       # a compromised escrow answers with another credential's link
            other = self.meter(step, "link_of").state.hf.get(epoch)
            if other is None:
                raise VectorMismatchError("reidentify: 'link_of' names a meter without an HFID for the epoch")
            links[fingerprint] = links[hashlib.sha256(other.credential).digest()]
        shares = {}
        try:
            for i in listed:
                authority = self._authority(i)
                before = _approvals(authority)
                first = self.rng.mark()
                share = authority.share(request, self.fleet.escrow, self.rng)
                nonce = threshold_elgamal.nonce_generate_from_randomness(authority.key_package.secret_share,
                                                                         self.rng.draws[first])
                shares[i] = share
                roles.append({"role": "authority", "identifier": i, "action": "share",
                              "state_before": {"approved": before},
                              "input": {"reid_request": request.hex(),
                                        "sealed_link": self.fleet.escrow.sealed_link(fingerprint).hex()},
                              "intermediates": {"request_digest": hashlib.sha256(request).hexdigest(),
                                                "link_aad": esc._link_aad(fingerprint).hex(),
                                                "k": _scalar_hex(nonce)},
                              "output": share.hex(), "state_after": {"approved": _approvals(authority)}})
        finally:
            if "link_of" in step:
                if held is None:
                    del links[fingerprint]
                else:
                    links[fingerprint] = held
        sealed = self.fleet.escrow.sealed_link(fingerprint)
        shares = {i: (_edit(s, step) if i == listed[-1] else s) for i, s in shares.items()}
        record = esc.reidentify(_present(self.fleet.authority_info, "authorities' public key package"), request,
                                sealed, shares)
        roles.append({"role": "combiner", "action": "reidentify",
                      "input": {"reid_request": request.hex(), "sealed_link": sealed.hex(),
                                "shares": {str(i): s.hex() for i, s in shares.items()}},
                      "output": {"lfid_serial": record.lfid_serial, "epoch": record.epoch,
                                 "link_plaintext": esc.encode_link(record.lfid_serial, record.epoch,
                                                                   record.fingerprint).hex()}})
        return roles

    def _authority(self, i: object) -> esc.Authority:
        if type(i) is not int or not 1 <= i <= len(self.fleet.authorities):
            raise VectorMismatchError("authorities must be listed by identifier")
        return self.fleet.authorities[i - 1]

    def decode_link(self, step: Mapping[str, Any]) -> list[dict]:
        record = esc.decode_link(bytes_field(step, "link"))
        return [{"role": "combiner", "action": "decode_link",
                 "output": {"lfid_serial": record[1], "epoch": record[2], "fingerprint": record[3].hex()}}]


def _approvals(authority: esc.Authority) -> list[str]:
    """Section 11.3: an authority's approval state, the SHA-256 digests of the requests it approved and
    has not yet used, sorted, in hex."""
    return sorted(a.hex() for a in authority.approved)


def _request_ct(request: bytes) -> tuple[bytes, bytes]:
    _, m = esc.decode_message(request)
    return m[6], m[7]


def _request_aad(request: bytes) -> bytes:
    _, m = esc.decode_message(request)
    return cbor.encode({k: m[k] for k in range(1, 6)})


def _accepted(draws: list[bytes], index: int) -> bytes:
    """The index-th accepted RandomScalar draw among ``draws``."""
    ok = [d for d in draws if _scalar_ok(d)]
    return ok[index]


def _step_schedule(op: str, mode: str, step: Mapping[str, Any], fleet: escrow_fleet.Fleet,
                   drew_escrow: bool) -> Schedule:
    if op in ("issue", "request"):
        s: Schedule = [("hf_key", None), ("reply_ikm", None)]
        if mode == "blind":
            n = int(fleet.escrow.state.rsa_keys[small_int_field(step, "epoch", low=0, high=UINT32)].public.n)
            s += [("prepare_prefix", None), ("blind_salt", None), ("blind_r", _below_ok(n - 1))]
        s.append(("request_ikmE", None))
        if op == "issue" and drew_escrow:
            if mode == "escrowed":
                s += [("hf_serial", None), ("seal_r", _scalar_ok), ("seal_s", _scalar_ok)]
            s.append(("response_ikmE", None))
        return s
    if op == "replay_request" and drew_escrow:
        return [("hf_serial", None), ("seal_r", _scalar_ok), ("seal_s", _scalar_ok), ("response_ikmE", None)]
    if op == "reidentify":
        return [(f"authority{i}.dleq_nonce", None) for i in list_field(step, "authorities", max_items=MAX_PARTIES)]
    return []


def _play(run: _Run, step: Mapping[str, Any]) -> dict:
    op = str_field(step, "op")
    handlers = {"issue": run.issue, "request": lambda s: [run.request(s)[0]], "replay_request": run.replay_request,
                "send": run.send, "replay_message": run.replay_message, "reidentify": run.reidentify,
                "decode_link": run.decode_link}
    if op not in handlers:
        raise VectorMismatchError(f"unknown step op {op!r}")
    first = run.rng.mark()
    roles = handlers[op](step)
    draws = run.rng.draws[first:]
    drew_escrow = any(r["role"] == "escrow" and "output" in r for r in roles)
    named = _named(draws, _step_schedule(op, run.fleet.mode, step, run.fleet, drew_escrow))
    return {"draws": named, "roles": roles}


def _outputs(v: Mapping[str, Any]) -> tuple[dict, list[dict], str | None]:
    """The fleet, the outputs of each step, and the error name the last step raised (or None)."""
    mode = str_field(v, "mode")
    if mode not in esc.MODES:
        raise VectorMismatchError(f"field 'mode': unknown mode {mode!r}")
    epochs, meters = small_int_field(v, "epochs"), small_int_field(v, "meters")
    if not 1 <= epochs <= 8 or not 1 <= meters <= 16:
        raise VectorMismatchError("fields 'epochs' and 'meters': a run has 1 to 8 epochs and 1 to 16 meters")
    fleet_rng = _Recorder(HmacDrbg.from_seed(str_field(v, "fleet_seed")))
    fleet = escrow_fleet.provision(mode, meters, range(epochs), authorities=AUTHORITIES, threshold=THRESHOLD,
                                   rng=fleet_rng)
    top = _fleet_outputs(fleet, _named(fleet_rng.draws, _fleet_schedule(mode, meters, epochs)))
    run = _Run(fleet, _Recorder(HmacDrbg.from_seed(str_field(v, "run_seed"))))
    steps = list_field(v, "steps", max_items=MAX_STEPS)
    if not steps or any(not isinstance(s, dict) for s in steps):
        raise VectorMismatchError("field 'steps' must be a non-empty list of objects")
    outputs: list[dict] = []
    for index, step in enumerate(steps):
        inputs = {k: step[k] for k in step if k in _INPUTS}
        if index == len(steps) - 1 and v.get("result") == "invalid":
            try:
                _play(run, inputs)
            except VectorMismatchError:
                raise
            except UsappError as exc:
                return top, outputs, type(exc).__name__
            return top, outputs, None
        outputs.append(_play(run, inputs))
    return top, outputs, None


def _guarded(v: Mapping[str, Any]) -> tuple[dict, list[dict], str | None]:
    """_outputs, with a lookup that an edited input makes fail reported as a mismatch."""
    try:
        return _outputs(v)
    except (KeyError, IndexError) as exc:
        raise VectorMismatchError(f"the inputs do not describe a run the spec allows ({type(exc).__name__}: "
                                  f"{exc})") from None


def _run(v: Mapping[str, Any]) -> None:
    for key in v:
        if key not in _VECTOR_INPUTS and key != "fleet":
            raise VectorMismatchError(f"field {key!r} is neither an input nor an output")
    steps = list_field(v, "steps")
    top, computed, error = recompute("run", lambda: _guarded(v))
    expect("fleet", field(v, "fleet"), top)
    if v.get("result", "valid") == "invalid":
        expected = str_field(v, "error")
        if error != expected:
            raise VectorMismatchError(f"field 'error': expected the last step refused with {expected}, "
                                      f"got {error or 'acceptance'}")
        expect_steps(steps[:-1], computed, _INPUTS)
        for key in steps[-1]:
            if key not in _INPUTS:
                raise VectorMismatchError(f"field 'steps[{len(steps) - 1}].{key}' is not an input")
    else:
        expect_steps(steps, computed, _INPUTS)


OPERATIONS = {"run": _run}


def verify_vector(vector: Mapping[str, Any]) -> None:
    dispatch(OPERATIONS, vector)


def _at(epoch: int, offset: int) -> int:
    return escrow_fleet.ORIGIN + epoch * escrow_fleet.EPOCH_SECONDS + offset


def _case(name: str, mode: str, steps: list[dict], *, error: str | None = None, flags: tuple[str, ...] = (),
          comment: str | None = None) -> dict:
    v: dict[str, Any] = {"operation": "run", "name": name}
    if error is not None:
        v.update({"result": "invalid", "error": error, "flags": list(flags) + ["Refusal"]})
        assert error in ERRORS
    if comment:
        v["comment"] = comment
    v.update({"mode": mode, "meters": 2, "epochs": 2, "fleet_seed": SEED + name + "/fleet",
              "run_seed": SEED + name + "/run"})
    top, outputs, raised = _outputs({**v, "steps": steps})
    if raised != error:
        raise VectorMismatchError(f"{name}: expected {error}, got {raised}")
    v["fleet"] = top
    v["steps"] = [{**step, **out} for step, out in zip(steps, outputs)] + steps[len(outputs):]
    return v


_ISSUE0 = {"op": "issue", "serial": "SM-00000", "epoch": 0}
_SEND0 = {"op": "send", "serial": "SM-00000", "category": "technical", "recipient": "grid-operator",
          "payload": b"voltage 231.2 V".hex(), "time": _at(0, 900)}
_REID = {"op": "reidentify", "serial": "SM-00000", "epoch": 0, "authorities": [1, 3],
         "reason": "court order 17/2026", "request_id": bytes(range(16)).hex()}


def _negatives() -> list[dict]:
    good_link = esc.encode_link("SM-00000", 0, bytes(32))
    return [
        _case("escrowed-request-truncated", "escrowed", [{**_ISSUE0, "edit": {"truncate": 100}}],
              error="DecodeError", flags=("Truncated",)),
        _case("escrowed-request-trailing-byte", "escrowed", [{**_ISSUE0, "edit": {"append": "00"}}],
              error="DecodeError", flags=("TrailingBytes",)),
        _case("escrowed-request-signature-tampered", "escrowed", [{**_ISSUE0, "edit": {"flip": -1}}],
              error="VerificationError", flags=("Tampered",),
              comment="the last byte (of the LFID signature, key 8) flipped"),
        _case("escrowed-request-replayed", "escrowed",
              [_ISSUE0, {"op": "replay_request", "serial": "SM-00000", "at": _at(0, 60)}],
              error="ReplayError", flags=("Replay",)),
        _case("escrowed-request-for-a-past-epoch", "escrowed", [{**_ISSUE0, "at": _at(1, 0)}],
              error="StateError", flags=("WrongEpoch",)),
        _case("escrowed-request-two-epochs-ahead", "escrowed",
              [{"op": "issue", "serial": "SM-00000", "epoch": 2, "at": _at(0, 0)}],
              error="StateError", flags=("WrongEpoch",)),
        _case("escrowed-response-to-another-meter", "escrowed",
              [{"op": "request", "serial": "SM-00001", "epoch": 0}, {**_ISSUE0, "deliver_to": "SM-00001"}],
              error="VerificationError", flags=("WrongKey",)),
        _case("escrowed-adp-signature-tampered", "escrowed", [_ISSUE0, {**_SEND0, "edit": {"flip": -1}}],
              error="VerificationError", flags=("Tampered",),
              comment="the last byte (of the HF key's signature, key 11) flipped"),
        _case("escrowed-adp-truncated", "escrowed", [_ISSUE0, {**_SEND0, "edit": {"truncate": 60}}],
              error="DecodeError", flags=("Truncated",)),
        _case("escrowed-adp-replayed", "escrowed",
              [_ISSUE0, _SEND0, {"op": "replay_message", "serial": "SM-00000", "time": _at(0, 960)}],
              error="ReplayError", flags=("Replay",)),
        _case("escrowed-adp-received-after-its-epoch-expired", "escrowed",
              [_ISSUE0, {**_SEND0, "receive_at": _at(2, 0)}], error="StateError", flags=("WrongEpoch",)),
        _case("escrowed-share-without-approval", "escrowed", [_ISSUE0, {**_REID, "approve": [1]}],
              error="StateError", flags=("NotApproved",)),
        _case("escrowed-share-none-approved", "escrowed", [_ISSUE0, {**_REID, "approve": []}],
              error="StateError", flags=("NotApproved",), comment="no authority approved the request"),
        _case("escrowed-share-approved-another-request", "escrowed",
              [_ISSUE0, {**_REID, "approve_request_id": bytes(range(1, 17)).hex()}],
              error="StateError", flags=("NotApproved",),
              comment="the authorities approved the same fingerprint and reason under another request id"),
        _case("escrowed-share-approval-reused", "escrowed", [_ISSUE0, _REID, {**_REID, "approve": []}],
              error="StateError", flags=("ApprovalReused", "Replay"),
              comment="the same request again after authorities 1 and 3 used their approvals"),
        _case("escrowed-approve-request-truncated", "escrowed",
              [_ISSUE0, {**_REID, "approve_edit": {"truncate": 40}}], error="DecodeError", flags=("Truncated",),
              comment="authority 1 is given the request's first 40 bytes to approve"),
        _case("escrowed-approve-request-trailing-byte", "escrowed",
              [_ISSUE0, {**_REID, "approve_edit": {"append": "00"}}], error="DecodeError",
              flags=("TrailingBytes",), comment="authority 1 is given the request and one 0x00 byte to approve"),
        _case("escrowed-share-unknown-credential", "escrowed", [_ISSUE0, {**_REID, "fingerprint": bytes(32).hex()}],
              error="StateError", flags=("UnknownCredential",),
              comment="an approved request naming the all-zero fingerprint, which no credential has"),
        _case("escrowed-share-another-credentials-link", "escrowed",
              [_ISSUE0, {"op": "issue", "serial": "SM-00001", "epoch": 0}, {**_REID, "link_of": "SM-00001"}],
              error="VerificationError", flags=("WrongLink", "Tampered"),
              comment="the escrow answers the authorities with SM-00001's sealed link for SM-00000's credential"),
        _case("escrowed-one-share-of-two", "escrowed", [_ISSUE0, {**_REID, "authorities": [2]}],
              error="RecoveryError", flags=("TooFewShares",)),
        _case("escrowed-share-proof-tampered", "escrowed", [_ISSUE0, {**_REID, "edit": {"flip": 40}}],
              error="VerificationError", flags=("Tampered",)),
        _case("blind-request-replayed", "blind",
              [_ISSUE0, {"op": "replay_request", "serial": "SM-00000", "at": _at(0, 60)}],
              error="ReplayError", flags=("Replay",)),
        _case("blind-adp-signature-tampered", "blind", [_ISSUE0, {**_SEND0, "edit": {"flip": -1}}],
              error="VerificationError", flags=("Tampered",),
              comment="the last byte (of the HF key's signature, key 11) flipped"),
        _case("blind-response-to-another-meter", "blind",
              [{"op": "request", "serial": "SM-00001", "epoch": 0}, {**_ISSUE0, "deliver_to": "SM-00001"}],
              error="VerificationError", flags=("WrongKey",)),
        _case("link-truncated", "escrowed", [{"op": "decode_link", "serial": "SM-00000", "link": good_link[:-1].hex()}],
              error="DecodeError", flags=("Truncated", "NonCanonicalLink")),
        _case("link-trailing-byte", "escrowed",
              [{"op": "decode_link", "serial": "SM-00000", "link": (good_link + b"\0").hex()}],
              error="DecodeError", flags=("TrailingBytes", "NonCanonicalLink")),
        _case("link-non-zero-padding", "escrowed",
              [{"op": "decode_link", "serial": "SM-00000", "link": (good_link[:-1] + b"\1").hex()}],
              error="DecodeError", flags=("NonCanonicalLink",)),
        _case("link-length-prefix-too-long", "escrowed",
              [{"op": "decode_link", "serial": "SM-00000", "link": (b"\0\x7f" + good_link[2:]).hex()}],
              error="DecodeError", flags=("NonCanonicalLink",)),
    ]


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
    reid = [{"op": "reidentify", "serial": "SM-00001", "epoch": 0, "authorities": [1, 3], "approve": [1, 2, 3],
             "reason": "court order 17/2026", "request_id": bytes(range(16)).hex()}]
    vectors = [_case("escrowed-two-meters-two-epochs", "escrowed", common + reid),
               _case("blind-two-meters-two-epochs", "blind", common)] + _negatives()
    return {
        "protocol": PROTOCOL,
        "suite": SUITE,
        "source": "generated by the USaPP reference implementation; procedures in specs/escrow.md (sections 4 "
                  "to 8; provisioning and vectors section 11), specs/blind_rsa.md and specs/threshold_elgamal.md",
        "generated_by": ("usapp vectors generate (HMAC_DRBG SHA-256 from_seed: the fleet from fleet_seed through "
                         "escrow_fleet.provision, every draw of the steps from run_seed; every draw is also "
                         "listed by name)"),
        "description": (
            "Whole escrow runs (operation 'run'); the format is specs/escrow.md section 11 and "
            "vectors/schema/escrow.json. Inputs: mode, meters, epochs, fleet_seed, run_seed and steps. "
            "'fleet' holds every draw of provisioning by name and every key it made; each step holds its "
            "draws by name and, per role, input, intermediates, output and state. A vector with result "
            "'invalid' ends with a step refused with 'error'."),
        "notes": NOTES,
        "vectors": vectors,
    }


FAMILY = VectorFamily(file=FILE, protocol=PROTOCOL, suite=SUITE, verify_vector=verify_vector, build=build)
