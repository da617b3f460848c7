"""Targets of the protocols layer: every role's message handlers, and the message decoders.

Each role is set up once, honestly, from fixed DRBG seeds (the configurations
of the vector generators, smaller); its valid messages are the seeds.  A
handler's ``call`` works on a deep copy of the role's state as it was just
before the valid message arrived, so a mutant meets exactly the state the
valid message met.  Keys, certificates and the master secrets of issuance
come from vectors/issuance.json.
"""

from __future__ import annotations

import copy
import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, cast

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from protocols import aggregation as agg
from protocols import escrow as esc
from protocols import groupkeys as gk
from protocols import integrity as ig
from protocols import issuance as iss
from protocols.errors import VerificationError
from protocols.primitives.drbg import HmacDrbg
from protocols.schemes import bf_bls12, hpke
from protocols.schemes.paillier import generate_keypair
from protocols.system import escrow_fleet
from protocols.system import neighbourhood as nb

from .registry import ANY, Target
from .seeds import vectors

# -- aggregation (specs/aggregation.md) ---------------------------------------------------


@dataclass
class AggregationRun:
    """One honest round over 5 meters (fanout 3), with each role's state before each step."""

    p: agg.Provisioned
    adverts: dict[str, bytes]
    before_bundle: dict[str, Any]          # meter states just before accept_bundle
    bundles: dict[str, bytes]
    utility_before_bundles: Any
    meter_reports: dict[str, bytes]
    aggregator_before: dict[str, Any]
    aggregate_inputs: dict[str, list[bytes]]
    aggregate_reports: dict[str, bytes]
    rs_before_receive: agg.RoundState
    utility_before_receive: Any
    commit_requests: dict[str, bytes]
    meters_before_commit: dict[str, Any]
    commit_signatures: list[bytes]
    rs_before_signatures: agg.RoundState
    requests: dict[str, bytes]
    meters_before_unmask: dict[str, Any]
    responses: list[bytes]
    rs_before_finish: agg.RoundState
    utility_before_signatures: Any
    utility_before_finish: Any


ROUND = 1


@functools.cache
def aggregation_run() -> AggregationRun:
    key = generate_keypair(2048, HmacDrbg.from_seed("usapp-tests/paillier-2048"))
    meters = [f"m{i}" for i in range(5)]
    tree, root = agg.balanced_tree(meters, 3)
    p = agg.provision(key, meters, tree, root, HmacDrbg.from_seed("tests/fuzz/aggregation/hood"))
    hood, rng = p.hood, HmacDrbg.from_seed("tests/fuzz/aggregation/round")
    adverts = {m: agg.Meter(hood, p.meters[m]).advertise(ROUND, rng) for m in meters}
    utility_before_bundles = copy.deepcopy(p.utility)
    utility = agg.Utility(hood, p.utility)
    rs, bundles = utility.bundles(ROUND, list(adverts.values()))
    before_bundle = {m: copy.deepcopy(p.meters[m]) for m in meters}
    for m in meters:
        agg.Meter(hood, p.meters[m]).accept_bundle(bundles[m])
    limit = 1 << hood.value_bits
    reports = {m: agg.Meter(hood, p.meters[m]).report(ROUND, [i % limit] * hood.slots, rng)
               for i, m in enumerate(meters)}
    outputs = dict(reports)
    aggregator_before, inputs, aggregates = {}, {}, {}
    for node in nb.post_order(hood.tree, hood.root):
        inputs[node] = [outputs[c] for c in hood.children(node) if c in outputs]
        aggregator_before[node] = copy.deepcopy(p.aggregators[node])
        outputs[node] = aggregates[node] = agg.Aggregator(hood, p.aggregators[node]).aggregate(ROUND, inputs[node])
    rs_before_receive = copy.deepcopy(rs)
    utility_before_receive = copy.deepcopy(p.utility)
    rs = utility.receive(rs, aggregates[hood.root])
    commit_requests = utility.commit_requests(rs)
    utility_before_signatures = copy.deepcopy(p.utility)
    meters_before_commit = {m: copy.deepcopy(p.meters[m]) for m in commit_requests}
    signatures = [agg.Meter(hood, p.meters[m]).sign_commit(r) for m, r in commit_requests.items()]
    rs_before_signatures = copy.deepcopy(rs)
    utility.collect_signatures(rs, signatures)
    requests = utility.unmask_requests(rs)
    meters_before_unmask = {m: copy.deepcopy(p.meters[m]) for m in requests}
    responses = [agg.Meter(hood, p.meters[m]).unmask(r) for m, r in requests.items()]
    rs_before_finish = copy.deepcopy(rs)
    utility_before_finish = copy.deepcopy(p.utility)
    utility.finish(rs, responses)
    return AggregationRun(p, adverts, before_bundle, bundles, utility_before_bundles, reports, aggregator_before,
                          inputs, aggregates, rs_before_receive, utility_before_receive, commit_requests,
                          meters_before_commit, signatures, rs_before_signatures, requests, meters_before_unmask,
                          responses, rs_before_finish, utility_before_signatures, utility_before_finish)


def _meter_of(states: dict[str, Any], data: bytes, messages: dict[str, bytes]) -> agg.Meter:
    """The meter a message is for: the one whose valid message shares the longest prefix with ``data``
    (the one it was most likely mutated from), so that a mutant meets the state its seed met."""
    run = aggregation_run()

    def shared(m: str) -> int:
        raw = messages[m]
        return next((i for i, (a, b) in enumerate(zip(raw, data)) if a != b), min(len(raw), len(data)))

    return agg.Meter(run.p.hood, copy.deepcopy(states[max(sorted(messages), key=shared)]))


def agg_accept_bundle(data: bytes) -> object:
    run = aggregation_run()
    return _meter_of(run.before_bundle, data, run.bundles).accept_bundle(data)


def agg_utility_bundles(data: bytes) -> object:
    """The utility gets the first meter's advert replaced by ``data``."""
    run = aggregation_run()
    adverts = [data] + [run.adverts[m] for m in sorted(run.adverts)[1:]]
    return agg.Utility(run.p.hood, copy.deepcopy(run.utility_before_bundles)).bundles(ROUND, adverts)


def _first_aggregator() -> str:
    run = aggregation_run()
    return next(node for node, inputs in run.aggregate_inputs.items()
                if any(i in run.meter_reports.values() for i in inputs))


def agg_aggregate(data: bytes) -> object:
    """A leaf aggregator gets its first child's meter-report replaced by ``data``."""
    run = aggregation_run()
    node = _first_aggregator()
    inputs = [data] + run.aggregate_inputs[node][1:]
    return agg.Aggregator(run.p.hood, copy.deepcopy(run.aggregator_before[node])).aggregate(ROUND, inputs)


def agg_utility_receive(data: bytes) -> object:
    run = aggregation_run()
    utility = agg.Utility(run.p.hood, copy.deepcopy(run.utility_before_receive))
    return utility.receive(copy.deepcopy(run.rs_before_receive), data)


def agg_sign_commit(data: bytes) -> object:
    run = aggregation_run()
    return _meter_of(run.meters_before_commit, data, run.commit_requests).sign_commit(data)


def agg_collect_signatures(data: bytes) -> object:
    run = aggregation_run()
    utility = agg.Utility(run.p.hood, copy.deepcopy(run.utility_before_signatures))
    utility.collect_signatures(copy.deepcopy(run.rs_before_signatures), [data] + run.commit_signatures[1:])
    return None


def agg_unmask(data: bytes) -> object:
    run = aggregation_run()
    return _meter_of(run.meters_before_unmask, data, run.requests).unmask(data)


def agg_finish(data: bytes) -> object:
    run = aggregation_run()
    utility = agg.Utility(run.p.hood, copy.deepcopy(run.utility_before_finish))
    return utility.finish(copy.deepcopy(run.rs_before_finish), [data] + run.responses[1:])


# -- group keys (specs/groupkeys.md) -------------------------------------------------------

GROUP = b"nbh-fuzz"
NOW = 1_800_000_000


@dataclass
class GroupRun:
    meter: gk.Meter           # m000, before any of the messages below
    messages: dict[str, bytes]
    command_public: bytes
    controller: gk.Controller
    directory: dict[bytes, bytes]


@functools.cache
def group_run() -> GroupRun:
    """A controller and 5 meters, a plain Ed25519 command key for the operators (as tests/test_groupkeys.py)."""
    rng = HmacDrbg.from_seed("tests/fuzz/groupkeys")
    command_key = Ed25519PrivateKey.from_private_bytes(rng.random_bytes(32))
    command_public = command_key.public_key().public_bytes_raw()

    def sign(body: dict) -> bytes:
        return gk.encode_command(body, command_key.sign(gk.command_tbs(body)))

    controller = gk.Controller(gk.ControllerState(GROUP, 0, 3, rng.random_bytes(32)))
    checkpoint = sign(gk.checkpoint_body(GROUP, 0, 0, controller.public_key, NOW + 3600))
    devices, meters = {}, {}
    for i in range(5):
        member = b"m%03d" % i
        sk, pk = hpke.DeriveKeyPair(rng.random_bytes(32))
        devices[member] = pk
        meters[member] = gk.Meter.provision(GROUP, member, sk, command_public, checkpoint, NOW)
    for member, welcome in controller.start_epoch(devices, rng).items():
        meters[member].receive(welcome, NOW)
    meter = copy.deepcopy(meters[b"m000"])
    body = gk.command_body(GROUP, 1, "disconnect", {1: [b"m001"]}, not_after=NOW + 3600, epoch=0)
    messages = {
        "data": controller.send(b"demand response"),
        "command": sign(body),
        "checkpoint": sign(gk.checkpoint_body(GROUP, 0, 0, controller.public_key, NOW + 7200)),
        "resync": copy.deepcopy(controller).resync(b"m000", rng),
    }
    controller_for_rekey = copy.deepcopy(controller)
    messages["rekey"] = controller_for_rekey.rekey({}, [b"m003"], rng)[0]
    new = gk.Controller(gk.ControllerState(GROUP, 1, 3, rng.random_bytes(32)))
    directory = dict(sorted(devices.items()))
    args = {1: 1, 2: new.public_key, 3: gk.directory_hash(GROUP, 1, directory)}
    messages["rekey-group"] = sign(gk.command_body(GROUP, 2, "rekey-group", args, not_after=NOW + 3600, epoch=0))
    return GroupRun(meter, messages, command_public, new, directory)


def gk_meter_receive(data: bytes) -> object:
    return copy.deepcopy(group_run().meter).receive(data, NOW)


def gk_controller_recover(data: bytes) -> object:
    run = group_run()
    return copy.deepcopy(run.controller).recover(data, run.command_public, dict(run.directory),
                                                 HmacDrbg.from_seed("tests/fuzz/recover"))


# -- escrow (specs/escrow.md) ---------------------------------------------------------------


@dataclass
class EscrowRun:
    fleet: escrow_fleet.Fleet          # before the requests below
    requests: list[bytes]
    responses: list[bytes]
    meter_before_response: esc.Meter
    data: dict[str, bytes]             # recipient -> a data message sent to it
    receivers_before: dict[str, esc.Receiver]
    epoch_keys: list[bytes]
    authorities_key: bytes | None


def _at(epoch: int, offset: int = 3600) -> int:
    return escrow_fleet.ORIGIN + epoch * escrow_fleet.EPOCH_SECONDS + offset


@functools.cache
def escrow_run(mode: str) -> EscrowRun:
    fleet = escrow_fleet.provision(mode, 2, range(0, 2), seed=f"fuzz-{mode}", rsa_bits=2048)
    before = copy.deepcopy(fleet)
    rng = HmacDrbg.from_seed(f"tests/fuzz/escrow/{mode}")
    meter = fleet.meters["SM-00000"]
    request = meter.request_hfid(0, rng)
    meter_before_response = copy.deepcopy(meter)
    response = fleet.escrow.handle(request, _at(0, 0), rng)
    meter.receive_hfid(response)
    receivers_before = copy.deepcopy(fleet.receivers)
    data = {recipient: meter.send(category, recipient, b"V=231.2", _at(0))
            for category, recipient in (("technical", "grid-operator"), ("customer", "supplier"),
                                        ("personal", "household"))}
    epoch_keys = list(fleet.escrow.state.epoch_keys.values())
    authorities_key = meter.state.authorities_key
    return EscrowRun(before, [request], [response], meter_before_response, data, receivers_before, epoch_keys,
                     authorities_key)


def esc_handle(mode: str) -> Callable[[bytes], object]:
    def call(data: bytes) -> object:
        fleet = copy.deepcopy(escrow_run(mode).fleet)
        return fleet.escrow.handle(data, _at(0, 0), HmacDrbg.from_seed("tests/fuzz/escrow/handle"))
    return call


def esc_receive_hfid(mode: str) -> Callable[[bytes], object]:
    def call(data: bytes) -> object:
        return copy.deepcopy(escrow_run(mode).meter_before_response).receive_hfid(data)
    return call


def esc_receiver(mode: str) -> Callable[[bytes], object]:
    def call(data: bytes) -> object:
        run = escrow_run(mode)
        recipient = next((r for r, raw in run.data.items() if raw == data), "grid-operator")
        return copy.deepcopy(run.receivers_before[recipient]).receive(data, _at(0))
    return call


def _escrow_seeds(mode: str, what: str) -> Callable[[], list[bytes]]:
    def seeds() -> list[bytes]:
        value = getattr(escrow_run(mode), what)
        return list(value.values()) if isinstance(value, dict) else list(value)
    return seeds


def esc_verify_epoch_key(data: bytes) -> object:
    return esc.verify_epoch_key(data, escrow_run("blind").authorities_key)


# -- integrity (specs/integrity.md) ---------------------------------------------------------

METER_ID = b"SM-fuzz"
T0, PERIOD = 1_767_225_600, 1800


@dataclass
class IntegrityRun:
    utility: ig.Utility          # before the last record
    meter: ig.Meter              # before the feedback
    records: list[bytes]
    feedback: bytes
    heads: list[bytes]
    last_record: bytes
    meter_before_receipt: ig.Meter
    probe: bytes
    inclusion: bytes
    head: ig.TreeHead


@functools.cache
def integrity_run() -> IntegrityRun:
    rng = HmacDrbg.from_seed("tests/fuzz/integrity")
    utility = ig.Utility(ig.UtilityState(rng.random_bytes(32)))
    meter = ig.Meter(ig.MeterState(METER_ID, rng.random_bytes(32), utility.public_key))
    utility.register(METER_ID, meter.public_key)
    records, heads = [], []
    for i in range(6):
        record = meter.record(T0 + i * PERIOD, [100 * i, 10 * i])
        if i == 5:
            utility_before = copy.deepcopy(utility)
        receipt = utility.accept(record, T0 + i * PERIOD + 60)
        if i == 5:
            meter_before_receipt = copy.deepcopy(meter)
        meter.receipt(receipt)
        records.append(record)
        heads.append(receipt)
    feedback = utility.feedback(METER_ID, 0, T0 + 6 * PERIOD)
    head = utility.tree_head(METER_ID, T0 + 6 * PERIOD)
    return IntegrityRun(utility_before, copy.deepcopy(meter), records, feedback, heads, records[-1],
                        meter_before_receipt, utility.probe(METER_ID, 3, 6), utility.inclusion(METER_ID, 2, 6), head)


def ig_receipt(data: bytes) -> object:
    return copy.deepcopy(integrity_run().meter_before_receipt).receipt(data)


def ig_probe(data: bytes) -> object:
    run = integrity_run()
    return copy.deepcopy(run.meter).check_probe(data, run.head)


def ig_inclusion(data: bytes) -> object:
    run = integrity_run()
    return copy.deepcopy(run.meter).check_inclusion(data, run.head)


def ig_accept(data: bytes) -> object:
    run = integrity_run()
    return copy.deepcopy(run.utility).accept(data, T0 + 5 * PERIOD + 60)


def ig_check(data: bytes) -> object:
    finding = copy.deepcopy(integrity_run().meter).check(data)
    if not finding.match:   # a mismatch is a finding about the log, returned, not raised: not an acceptance
        raise _Refused(finding.reason or "mismatch")
    return finding


class _Refused(VerificationError):
    """The meter's check found a mismatch: the feedback is not accepted."""


# -- issuance (specs/issuance.md) -----------------------------------------------------------


@dataclass
class IssuanceRun:
    pkg_before_enroll: iss.Pkg
    meter_before_enroll: iss.Meter
    meter_before_delivery: iss.Meter
    challenge: bytes
    enrollment: bytes
    delivery: bytes
    now: int
    log_entries: list[bytes]


@functools.cache
def issuance_run() -> IssuanceRun:
    """The first single-PKG vector's device, certificates and master secret, run live."""
    v = next(vectors("issuance", "enroll"))
    anchors = (iss.TrustAnchor(bytes.fromhex(v["root_certificate"]), frozenset(v["anchor_roles"]), v["namespace"]),)
    master = bf_bls12.MasterKey(int(v["master_secret"], 16))
    extractor = cast(iss.KeyExtractor, iss.Bls12Extractor(master))   # its suite is a read-only field
    pkg = iss.Pkg(iss.PkgState(anchors, v["epoch"]), extractor)
    meter = iss.Meter(iss.MeterState(v["namespace"], v["serial"], v["role"], v["suite"],
                                     bytes.fromhex(v["device_key"]), tuple(bytes.fromhex(c) for c in v["chain"])),
                      iss.bls12_key_verifier(master.params))
    rng = HmacDrbg.from_seed("tests/fuzz/issuance")
    now = v["now"]
    meter_before_enroll = copy.deepcopy(meter)
    challenge = pkg.challenge(now, rng)
    enrollment = meter.enroll(challenge, rng)
    pkg_before = copy.deepcopy(pkg)
    meter_before_delivery = copy.deepcopy(meter)
    delivery = pkg.enroll(enrollment, now, rng)
    meter.receive(delivery)
    entries = [bytes.fromhex(v["log_entry"])]
    return IssuanceRun(pkg_before, meter_before_enroll, meter_before_delivery, challenge, enrollment, delivery, now,
                       entries)


def iss_pkg_enroll(data: bytes) -> object:
    run = issuance_run()
    return copy.deepcopy(run.pkg_before_enroll).enroll(data, run.now, HmacDrbg.from_seed("tests/fuzz/iss/enroll"))


def iss_meter_enroll(data: bytes) -> object:
    return copy.deepcopy(issuance_run().meter_before_enroll).enroll(data, HmacDrbg.from_seed("tests/fuzz/iss/m"))


def iss_meter_receive(data: bytes) -> object:
    return copy.deepcopy(issuance_run().meter_before_delivery).receive(data)


def _group_seeds() -> list[bytes]:
    return list(group_run().messages.values())


def _agg_messages() -> list[bytes]:
    run = aggregation_run()
    return [*run.meter_reports.values(), *run.aggregate_reports.values()]


TARGETS = [
    # aggregation: meter, aggregator, utility
    Target("aggregation.Meter.accept_bundle", lambda: list(aggregation_run().bundles.values()), agg_accept_bundle,
           kind="cbor", examples=25),
    Target("aggregation.Utility.bundles(advert)", lambda: [aggregation_run().adverts["m0"]], agg_utility_bundles,
           kind="cbor", examples=25),
    Target("aggregation.Aggregator.aggregate(meter-report)",
           lambda: [aggregation_run().aggregate_inputs[_first_aggregator()][0]], agg_aggregate, kind="cbor",
           accept=ANY, examples=20),   # spec 7.1: an aggregator cannot check a meter's MAC (it lacks K_i)
    Target("aggregation.Utility.receive(aggregate-report)",
           lambda: [aggregation_run().aggregate_reports[aggregation_run().p.hood.root]], agg_utility_receive,
           kind="cbor", examples=15),
    Target("aggregation.Meter.sign_commit", lambda: list(aggregation_run().commit_requests.values()),
           agg_sign_commit, kind="cbor", examples=25),
    Target("aggregation.Utility.collect_signatures", lambda: aggregation_run().commit_signatures[:1],
           agg_collect_signatures, kind="cbor", examples=25),
    Target("aggregation.Meter.unmask", lambda: list(aggregation_run().requests.values()), agg_unmask, kind="cbor",
           examples=25),
    Target("aggregation.Utility.finish(unmask-response)", lambda: aggregation_run().responses[:1], agg_finish,
           kind="cbor", examples=15),
    # group keys: member and controller
    Target("groupkeys.decode_message", _group_seeds, gk.decode_message, kind="cbor", accept=ANY, examples=60),
    Target("groupkeys.Meter.receive", _group_seeds, gk_meter_receive, kind="cbor", examples=60),
    Target("groupkeys.Controller.recover", lambda: [group_run().messages["rekey-group"]], gk_controller_recover,
           kind="cbor", accept=ANY, examples=20),
    # escrow: escrow, meter, receivers
    Target("escrow.decode_message", lambda: escrow_run("blind").requests + escrow_run("blind").responses
           + list(escrow_run("blind").data.values()), esc.decode_message, kind="cbor", accept=ANY, examples=50),
    *[Target(f"escrow.Escrow.handle[{mode}]", _escrow_seeds(mode, "requests"), esc_handle(mode),
             kind="cbor", examples=15) for mode in esc.MODES],
    *[Target(f"escrow.Meter.receive_hfid[{mode}]", _escrow_seeds(mode, "responses"),
             esc_receive_hfid(mode), kind="cbor", examples=20) for mode in esc.MODES],
    *[Target(f"escrow.Receiver.receive[{mode}]", _escrow_seeds(mode, "data"),
             esc_receiver(mode), kind="cbor", examples=25) for mode in esc.MODES],
    Target("escrow.verify_epoch_key", lambda: escrow_run("blind").epoch_keys, esc_verify_epoch_key, kind="cbor",
           examples=20),
    # integrity: utility and meter
    Target("integrity.decode_record", lambda: integrity_run().records, ig.decode_record, kind="cbor",
           accept=ANY, examples=50),
    Target("integrity.decode_tree_head", lambda: integrity_run().heads, ig.decode_tree_head, kind="cbor",
           accept=ANY, examples=50),
    Target("integrity.Utility.accept", lambda: [integrity_run().last_record], ig_accept, kind="cbor", examples=40),
    Target("integrity.Meter.check(feedback)", lambda: [integrity_run().feedback], ig_check, kind="cbor",
           examples=40),
    Target("integrity.Meter.receipt", lambda: integrity_run().heads[-1:], ig_receipt, kind="cbor", examples=30),
    Target("integrity.Meter.check_probe", lambda: [integrity_run().probe], ig_probe, kind="cbor", accept=ANY,
           examples=30),   # returns whether the roots agree: a refusal is the only "no" that matters here
    Target("integrity.Meter.check_inclusion", lambda: [integrity_run().inclusion], ig_inclusion, kind="cbor",
           examples=30),
    # issuance: PKG and meter
    Target("issuance.decode_challenge", lambda: [issuance_run().challenge], iss.decode_challenge, kind="cbor",
           accept=ANY, examples=40),
    Target("issuance.decode_enrollment", lambda: [issuance_run().enrollment], iss.decode_enrollment, kind="cbor",
           accept=ANY, examples=40),
    Target("issuance.decode_delivery", lambda: [issuance_run().delivery], iss.decode_delivery, kind="cbor",
           accept=ANY, examples=40),
    Target("issuance.LogEntry.from_bytes", lambda: issuance_run().log_entries, iss.LogEntry.from_bytes,
           kind="cbor", accept=ANY, examples=40),
    Target("issuance.verify_log", lambda: issuance_run().log_entries, lambda d: iss.verify_log([d]), kind="cbor",
           accept=ANY, examples=30),
    Target("issuance.Identity.parse", lambda: _identities(), iss.Identity.parse,
           accept=ANY, examples=40),
    Target("issuance.Pkg.enroll", lambda: [issuance_run().enrollment], iss_pkg_enroll, kind="cbor", examples=20),
    Target("issuance.Meter.enroll(challenge)", lambda: [issuance_run().challenge], iss_meter_enroll, kind="cbor",
           accept=ANY, examples=20),
    Target("issuance.Meter.receive(delivery)", lambda: [issuance_run().delivery], iss_meter_receive, kind="cbor",
           examples=15),
]


def _identities() -> list[bytes]:
    return [iss.Identity(v["namespace"], v["serial"], v["role"], v["epoch"]).to_bytes()
            for v in vectors("issuance", "enroll")]
