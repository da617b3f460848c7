"""Spec 7: the aggregator -- checks headers, multiplies ciphertexts, forwards one report."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

from gmpy2 import gcd, mpz

from protocols.aggregation import messages as msg
from protocols.aggregation.hood import Neighbourhood
from protocols.aggregation.schedule import CONFIRM_BYTES, MAC_BYTES, VERSION, mac_key
from protocols.errors import (
    DuplicateContributionError,
    InjectedContributionError,
    InvalidCiphertextError,
    RecoveryError,
    ReplayError,
)
from protocols.primitives import cbor
from protocols.schemes.paillier import Ciphertext, PublicKey, product_mod


def _mpz_from_bytes_of_int(data: bytes, byteorder: Literal["little", "big"]) -> mpz:
    return mpz(int.from_bytes(data, byteorder))


_MPZ_FROM_BYTES = getattr(mpz, "from_bytes", _mpz_from_bytes_of_int)
"""gmpy2 2.2 and later read bytes into an mpz directly; 2.1.5, which the project allows, cannot."""
_MAC_KEY_HEAD = bytes((6,)) + msg.MAC_HEAD
"""Key 6 and the head of the 32-byte MAC that ends a meter-report."""


@dataclass
class AggregatorState:
    """What an aggregator stores (spec 7.1): its key and the inputs of its
    latest round, kept for an audit (spec 9)."""

    aggregator_id: str
    key: bytes = field(repr=False)
    last_round: int = -1
    retained: dict = field(default_factory=dict, repr=False)


Contribution = tuple[str, mpz, Sequence[str], Sequence[bytes]]
"""(sender, c, covered meters, their confirmations) of one decoded input."""


def fold_product(values: Sequence[mpz], public_key: PublicKey) -> tuple[mpz, int | None]:
    """Spec 7.1 step 3 on ciphertexts already range-checked (0 < c < n^2, step 1): their product
    mod n^2, and None, or the index of the first value that is not a unit mod n.

    The unit check is one gcd, on the product: gcd(prod mod n^2, n) = gcd(prod, n), which is 1
    iff every factor's gcd with n is 1.  Only a product that fails it is searched factor by factor.
    """
    acc = product_mod(values, public_key.nsquare)
    if gcd(acc, public_key.n) == 1:
        return acc, None
    n = public_key.n
    return acc, next(i for i, c in enumerate(values) if gcd(c, n) != 1)


def _fold(hood: Neighbourhood, contributions: Sequence[Contribution]) -> mpz:
    """Spec 7.1 step 3: the product of the contributions' ciphertexts mod n^2; a product that is
    not a unit mod n names the first contribution that is not one."""
    acc, bad = fold_product([c for _, c, _, _ in contributions], hood.public_key)
    if bad is not None:
        raise InvalidCiphertextError(f"the ciphertext from {contributions[bad][0]} is not a unit mod n")
    return acc


def combine(contributions: Sequence[Contribution], round_id: int, sender: str, hood: Neighbourhood) -> dict:
    """Spec 7.1 steps 3-4: product of the ciphertexts; union of covered sets, in directory order,
    each meter's confirmations carried along."""
    entries: dict[str, bytes] = {}
    for _, _, covered, confirmations in contributions:
        for meter, value in zip(covered, confirmations):
            if meter in entries:
                raise DuplicateContributionError(f"meter {meter} arrives at {sender} twice")
            entries[meter] = value
    pk = hood.public_key
    acc = _fold(hood, contributions)
    covered = sorted(entries, key=hood.index)
    return {1: VERSION, 2: round_id, 3: sender, 4: Ciphertext._trusted(pk, acc).to_bytes(), 5: covered,
            6: [entries[m] for m in covered]}


def contribution_of(part: msg.MeterReport | msg.AggregateReport) -> Contribution:
    return part.sender, part.ciphertext.c, part.covered, part.confirmation_list


class Aggregator:
    """The aggregator role (spec 7)."""

    def __init__(self, hood: Neighbourhood, state: AggregatorState) -> None:
        hood.children(state.aggregator_id)
        self.hood = hood
        self.state = state

    def aggregate(self, round_id: int, inputs: Sequence[bytes]) -> bytes:
        """Spec 7.1: combine the children's reports of one round into one report."""
        hood, state = self.hood, self.state
        msg.check_round(round_id)
        if round_id <= state.last_round:
            raise ReplayError(f"aggregator {state.aggregator_id} already aggregated round {state.last_round}")
        if not inputs:
            raise RecoveryError(f"aggregator {state.aggregator_id} received no report for round {round_id}")
        children = set(hood.children(state.aggregator_id))
        contributions, seen = [], set()
        encoded: list[tuple[int, bytes, bytes]] | None = []  # (index, CBOR of the id, CBOR of the confirmations)
        reader = _MeterReportReader(hood, round_id)
        read, index = reader.read_encoded, hood._index
        for raw in inputs:
            fast = read(raw)
            if fast is None:  # an aggregate-report, or anything the fast reader does not accept
                part = msg.decode_child(raw, hood)
                message_round, sender, contribution = part.round, part.sender, contribution_of(part)
                encoded = None
            else:
                sender, c, confirmations, id_cbor, conf_cbor = fast
                message_round, contribution = round_id, (sender, c, (sender,), (confirmations,))
                if encoded is not None:
                    encoded.append((index[sender], id_cbor, conf_cbor))
            if sender not in children:
                raise InjectedContributionError(f"{sender} is not a child of {state.aggregator_id}")
            if sender in seen:
                raise DuplicateContributionError(f"{state.aggregator_id} received two reports from {sender}")
            seen.add(sender)
            if message_round != round_id:
                msg.check_round_of(message_round, round_id, "report", sender)
            contributions.append(contribution)
        key = mac_key(state.key, b"up")
        if encoded is None:
            out = msg.seal(combine(contributions, round_id, state.aggregator_id, hood), key, b"aggregate-report", 7)
        else:
            out = _seal_meter_fold(hood, contributions, encoded, round_id, state.aggregator_id, key)
        state.last_round = round_id
        state.retained = {round_id: tuple(bytes(raw) for raw in inputs)}
        return out


def _seal_meter_fold(hood: Neighbourhood, contributions: Sequence[Contribution],
                     encoded: list[tuple[int, bytes, bytes]], round_id: int, sender: str, key: bytes) -> bytes:
    """Spec 7.1 steps 3-4 when every input is a meter-report read by the fast reader (7.3): the same
    bytes as ``seal(combine(...))``, with keys 5 and 6 laid out from the inputs' own canonical
    encodings of the ids and confirmations instead of decoded and encoded again."""
    pk = hood.public_key
    acc = _fold(hood, contributions)
    encoded.sort()
    count = cbor.head(4, len(encoded))
    ciphertext = Ciphertext._trusted(pk, acc).to_bytes()
    body = b"".join((b"\xa6\x01", cbor.head(0, VERSION), b"\x02", cbor.head(0, round_id), b"\x03",
                     cbor.encode(sender), b"\x04", cbor.head(2, len(ciphertext)), ciphertext,
                     b"\x05", count, *(e[1] for e in encoded), b"\x06", count, *(e[2] for e in encoded)))
    return msg.seal_encoded(body, 6, key, b"aggregate-report", 7)


class _MeterReportReader:
    """The aggregator's fast path for the meter-reports of one round (spec 7.3).

    Deterministic CBOR leaves a valid meter-report of round r from meter i
    exactly one encoding::

        a6 01 02 02 <r, shortest head> 03 <i as a text string, shortest head>
        04 <head of a byte string of len(n^2) bytes> <ciphertext>
        05 <head of a byte string of 16 m bytes> <confirmations> 06 58 20 <MAC, 32 bytes>

    with m at most the meter's degree.  :meth:`read` checks that layout
    byte for byte and 0 < c < n^2, and returns (sender, c, confirmations)
    -- what ``MeterReport.decode(raw, hood, unit_check=False)`` gives -- or
    None for anything else, which the general decoder then handles with its
    typed errors.
    """

    __slots__ = ("nsquare", "start", "ct_head", "ct_length", "meters", "neighbours", "tails")

    def __init__(self, hood: Neighbourhood, round_id: int) -> None:
        self.nsquare = hood.public_key.nsquare
        self.start = b"\xa6\x01" + cbor.head(0, VERSION) + b"\x02" + cbor.head(0, round_id) + b"\x03"
        self.ct_length = hood.public_key.ciphertext_length()
        self.ct_head = b"\x04" + cbor.head(2, self.ct_length)
        self.meters = hood._meter_by_text
        self.neighbours = hood._neighbours
        tails: dict[int, tuple[bytes, int]] = {}
        for m in range(hood.degree + 1):  # no meter has more neighbours than the degree (spec 3.4)
            head = b"\x05" + cbor.head(2, CONFIRM_BYTES * m)
            tails[len(head) + CONFIRM_BYTES * m + len(_MAC_KEY_HEAD) + MAC_BYTES] = (head, m)
        self.tails = tails
        """The length of what follows the ciphertext -> (key 5 and its head, confirmations m)."""

    def read(self, raw: object) -> tuple[str, mpz, bytes] | None:
        fast = self.read_encoded(raw)
        return None if fast is None else fast[:3]

    def read_encoded(self, raw: object) -> tuple[str, mpz, bytes, bytes, bytes] | None:
        """:meth:`read`, plus the report's own encodings of the sender id and of the confirmations
        (head included): canonical, since the layout was checked byte for byte.

        What follows the ciphertext, ``05 <head> <16 m bytes> 06 58 20 <MAC>``, has one length per
        m, so the length of the input names the only m it can hold.
        """
        if type(raw) is not bytes or not raw.startswith(self.start):
            return None
        pos = len(self.start)
        if len(raw) < pos + 2:
            return None
        first = raw[pos]  # the sender's head: 61..77 (1-23 bytes) or 78 nn (24-255 bytes)
        if 0x61 <= first <= 0x77:
            end = pos + first - 0x5F
        elif first == 0x78:
            end = pos + 2 + raw[pos + 1]
        else:
            return None
        sender = self.meters.get(raw[pos:end])
        if sender is None or not raw.startswith(self.ct_head, end):
            return None
        ct_start = end + len(self.ct_head)
        ct_end = ct_start + self.ct_length
        tail = self.tails.get(len(raw) - ct_end)
        if (tail is None or tail[1] > len(self.neighbours[sender]) or not raw.startswith(tail[0], ct_end)
                or not raw.startswith(_MAC_KEY_HEAD, len(raw) - len(_MAC_KEY_HEAD) - MAC_BYTES)):
            return None
        c = _MPZ_FROM_BYTES(raw[ct_start:ct_end], "big")
        if not 0 < c < self.nsquare:
            return None
        conf_end = len(raw) - len(_MAC_KEY_HEAD) - MAC_BYTES
        return sender, c, raw[ct_end + len(tail[0]):conf_end], raw[pos:end], raw[ct_end + 1:conf_end]
