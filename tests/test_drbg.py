"""Tests of protocols.primitives.drbg (HMAC_DRBG, SP 800-90A Rev. 1 section 10.1.2),
its vector family protocols.system.vectorsets.hmac_drbg, and the injected-randomness
helpers of protocols.primitives.rand that the DRBG feeds (ReplayRandom, random_below).
"""

from __future__ import annotations

import copy
import hashlib
import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from protocols.errors import (
    ParameterError,
    RandomnessError,
    StateError,
    VectorMismatchError,
)
from protocols.primitives.drbg import (
    HASH_SUITES,
    MAX_BYTES_PER_REQUEST,
    RESEED_INTERVAL,
    HmacDrbg,
)
from protocols.primitives.rand import ReplayRandom, random_below
from protocols.system.vectorsets import hmac_drbg as family_module
from protocols.system.vectorsets.hmac_drbg import FAMILY, parse_cavp_rsp, transcribe, verify_vector

VECTORS_FILE = Path(__file__).parent.parent / "vectors" / "hmac_drbg.json"
ENVELOPE = json.loads(VECTORS_FILE.read_text())
VECTORS = [v for v in ENVELOPE["vectors"] if v.get("result", "valid") == "valid"]
INVALID = [v for v in ENVELOPE["vectors"] if v.get("result") == "invalid"]


def fresh(hash_name: str = "SHA-256", **kwargs) -> HmacDrbg:
    """An instance seeded with fixed (test-only) inputs of the right lengths."""
    drbg = HmacDrbg(hash_name, **kwargs)
    drbg.instantiate(bytes(range(32)), bytes(range(16)), b"test")
    return drbg


def twins(seed: str = "twins") -> tuple[HmacDrbg, HmacDrbg]:
    return HmacDrbg.from_seed(seed), HmacDrbg.from_seed(seed)


# -- the CAVP vectors ----------------------------------------------------------------


def test_envelope_matches_family():
    assert ENVELOPE["protocol"] == FAMILY.protocol == "hmac-drbg"
    assert ENVELOPE["suite"] == FAMILY.suite
    assert FAMILY.file == VECTORS_FILE.name
    assert ENVELOPE["generated_by"] == "transcribed from NIST CAVP HMAC_DRBG.rsp by script"
    names = [v["name"] for v in VECTORS]
    assert len(names) == len(set(names))
    # every supported hash is covered, with and without reseed, pers and adin
    for hash_name in HASH_SUITES:
        for label in ("noreseed", "reseed"):
            for pers in ("0", "nonzero"):
                for adin in ("0", "nonzero"):
                    assert any(
                        v["hash"] == hash_name
                        and (label == "reseed") == ("entropy_input_reseed" in v)
                        and (pers == "0") == (v["personalization_string"] == "")
                        and (adin == "0") == (v["additional_input"] == ["", ""])
                        for v in VECTORS
                    ), (hash_name, label, pers, adin)


def test_file_is_pinned():
    canonical = json.dumps(ENVELOPE, sort_keys=True, separators=(",", ":")).encode()
    assert hashlib.sha256(canonical).hexdigest() == FAMILY.pinned_sha256
    assert VECTORS_FILE.read_text() == json.dumps(ENVELOPE, indent=2, sort_keys=True) + "\n"


@pytest.mark.parametrize("vector", VECTORS, ids=[v["name"] for v in VECTORS])
def test_cavp_vector_reproduces(vector):
    """CAVP semantics: instantiate, (reseed), generate twice; the second output is pinned."""
    expected = bytes.fromhex(vector["returned_bits"])
    drbg = HmacDrbg(vector["hash"])
    drbg.instantiate(
        bytes.fromhex(vector["entropy_input"]),
        bytes.fromhex(vector["nonce"]),
        bytes.fromhex(vector["personalization_string"]),
    )
    if "entropy_input_reseed" in vector:
        drbg.reseed(
            bytes.fromhex(vector["entropy_input_reseed"]),
            bytes.fromhex(vector["additional_input_reseed"]),
        )
    first, second = (bytes.fromhex(a) for a in vector["additional_input"])
    drbg.generate(len(expected), first)
    assert drbg.generate(len(expected), second) == expected
    assert drbg.reseed_counter == 3


@pytest.mark.parametrize("vector", VECTORS + INVALID, ids=[v["name"] for v in VECTORS + INVALID])
def test_family_verifies_vector(vector):
    FAMILY.verify_vector(vector)


def test_invalid_vectors_are_derived_and_documented():
    """The derived refusals (not from CAVP) are exactly derive_negatives of the transcribed
    vectors, every flag is in the notes, and each names a spec error."""
    assert INVALID == family_module.derive_negatives(VECTORS)
    assert ENVELOPE["notes"] == family_module.NOTES
    assert {f for v in INVALID for f in v["flags"]} == set(family_module.NOTES)
    assert all("not from the source" in v["origin"] for v in INVALID)
    assert {v["error"]: None for v in INVALID}.keys() == {"ParameterError", "RandomnessError"}


@pytest.mark.parametrize(
    "flag, changes, what",
    [
        ("OversizedRequest", {"requested_bytes": 16}, "accepted"),
        ("ReseedRequired", {"reseed_interval": 2}, "accepted"),
        ("ShortEntropy", {"error": "RandomnessError"}, "refused with ParameterError"),
        ("UnsupportedHash", {"hash": "SHA-256"}, "accepted"),
        ("OversizedRequest", {"returned_bits": "00"}, "returned_bits"),
    ],
)
def test_invalid_vector_that_is_accepted_or_misnamed_is_a_mismatch(flag, changes, what):
    vector = dict(next(v for v in INVALID if v["flags"] == [flag]), **changes)
    with pytest.raises(VectorMismatchError, match=what):
        verify_vector(vector)


def test_valid_vector_may_not_carry_invalid_fields():
    with pytest.raises(VectorMismatchError, match="requested_bytes"):
        verify_vector(dict(VECTORS[0], requested_bytes=1))


def _tampered(**changes):
    vector = copy.deepcopy(VECTORS[-1])  # has reseed, personalization and additional input
    for key, value in changes.items():
        if value is None:
            del vector[key]
        else:
            vector[key] = value
    return vector


def _flip_last_hex_digit(text: str) -> str:
    return text[:-1] + ("0" if text[-1] != "0" else "1")


@pytest.mark.parametrize(
    "changes, field",
    [
        ({"returned_bits": _flip_last_hex_digit(VECTORS[-1]["returned_bits"])}, "returned_bits"),
        ({"entropy_input": _flip_last_hex_digit(VECTORS[-1]["entropy_input"])}, "returned_bits"),
        ({"returned_bits": None}, "returned_bits"),
        ({"nonce": None}, "nonce"),
        ({"entropy_input_reseed": None}, "entropy_input_reseed"),
        ({"nonce": "0g"}, "nonce"),
        ({"nonce": "abc"}, "nonce"),
        ({"nonce": VECTORS[-1]["nonce"].upper()}, "nonce"),
        ({"nonce": 12}, "nonce"),
        ({"returned_bits": ""}, "returned_bits"),
        ({"additional_input": ["00"]}, "additional_input"),
        ({"additional_input": "00"}, "additional_input"),
        ({"additional_input": ["", "zz"]}, "additional_input[1]"),
        ({"hash": "SHA-1"}, "hash"),
        ({"hash": None}, "hash"),
        ({"entropy_input": "00" * 8}, "entropy_input"),
    ],
)
def test_family_rejects_bad_vector(changes, field):
    vector = _tampered(**changes)
    with pytest.raises(VectorMismatchError) as info:
        verify_vector(vector)
    assert vector.get("name", "") in str(info.value)
    assert field in str(info.value)


@pytest.mark.parametrize("vector", [None, [], "x", {}, {"name": 3}])
def test_family_rejects_non_vectors(vector):
    with pytest.raises(VectorMismatchError):
        verify_vector(vector)


def test_rsp_parser_round_trip():
    """The transcription parser reads a .rsp record built from a stored vector."""
    vector = next(v for v in VECTORS if v["name"].startswith("SHA-384-reseed-pers256-adin256"))
    rsp = "\r\n".join(
        [
            "# CAVS 14.3",
            "",
            "[SHA-384]",
            "[PredictionResistance = False]",
            "[PersonalizationStringLen = 256]",
            "[AdditionalInputLen = 256]",
            "",
            "COUNT = 0",
            f"EntropyInput = {vector['entropy_input']}",
            f"Nonce = {vector['nonce']}",
            f"PersonalizationString = {vector['personalization_string']}",
            f"EntropyInputReseed = {vector['entropy_input_reseed']}",
            f"AdditionalInputReseed = {vector['additional_input_reseed']}",
            f"AdditionalInput = {vector['additional_input'][0]}",
            f"AdditionalInput = {vector['additional_input'][1]}",
            f"ReturnedBits = {vector['returned_bits'].upper()}",
            "",
        ]
    )
    (record,) = parse_cavp_rsp(rsp)
    assert record["line"] == 8 and record["count"] == 0
    (again,) = transcribe({"reseed": rsp}, hashes=("SHA-384",))
    assert again["name"] == "SHA-384-reseed-pers256-adin256-count-0"
    assert {k: v for k, v in again.items() if k != "cavp_line"} == {
        k: v for k, v in vector.items() if k != "cavp_line"
    }


# -- limits: reseed interval, request size -------------------------------------------


def test_reseed_required_after_interval():
    drbg = fresh(reseed_interval=3)
    for _ in range(3):
        drbg.generate(16)
    with pytest.raises(RandomnessError, match="reseed required"):
        drbg.generate(16)
    with pytest.raises(RandomnessError):
        drbg.random_bytes(1)
    drbg.reseed(b"\x42" * 32)
    assert drbg.reseed_counter == 1
    assert len(drbg.generate(16)) == 16


def test_default_reseed_interval_is_2_48():
    drbg = fresh()
    assert drbg.reseed_interval == RESEED_INTERVAL == 2**48
    drbg.reseed_counter = RESEED_INTERVAL  # the 2^48-th request is still allowed
    drbg.generate(1)
    with pytest.raises(RandomnessError):
        drbg.generate(1)


def test_request_size_limit():
    assert MAX_BYTES_PER_REQUEST == 2**19 // 8 == 65536
    drbg = fresh()
    assert len(drbg.generate(MAX_BYTES_PER_REQUEST)) == MAX_BYTES_PER_REQUEST
    counter = drbg.reseed_counter
    with pytest.raises(RandomnessError, match="max_number_of_bits_per_request"):
        drbg.generate(MAX_BYTES_PER_REQUEST + 1)
    assert drbg.reseed_counter == counter  # a refused request changes nothing


# -- bad arguments and states --------------------------------------------------------


@pytest.mark.parametrize("hash_name", ["SHA-1", "sha256", "SHA256", "", None, "MD5"])
def test_unknown_hash(hash_name):
    with pytest.raises(ParameterError):
        HmacDrbg(hash_name)


@pytest.mark.parametrize("nbytes", [-1, 1.0, "8", None, True])
def test_bad_lengths(nbytes):
    drbg = fresh()
    with pytest.raises(ParameterError):
        drbg.generate(nbytes)
    with pytest.raises(ParameterError):
        drbg.random_bytes(nbytes)


@pytest.mark.parametrize("interval", [0, -1, 2**48 + 1, 1.5])
def test_bad_reseed_interval(interval):
    with pytest.raises(ParameterError):
        HmacDrbg(reseed_interval=interval)


def test_bad_inputs():
    drbg = HmacDrbg("SHA-384")
    with pytest.raises(ParameterError, match="at least 256"):
        drbg.instantiate(b"\x00" * 31, b"\x00" * 16)
    with pytest.raises(ParameterError):
        drbg.instantiate("entropy" * 8, b"\x00" * 16)
    with pytest.raises(ParameterError):
        drbg.instantiate(b"\x00" * 32, None)
    drbg.instantiate(bytearray(32), b"")
    with pytest.raises(ParameterError):
        drbg.generate(8, additional_input="adin")
    with pytest.raises(ParameterError):
        drbg.reseed(b"\x00" * 16)
    for seed in (None, 5, ["x"]):
        with pytest.raises(ParameterError):
            HmacDrbg.from_seed(seed)
    with pytest.raises(ParameterError):
        HmacDrbg.from_seed("\ud800")


def test_states():
    drbg = HmacDrbg()
    assert not drbg.instantiated
    with pytest.raises(StateError):
        drbg.generate(1)
    with pytest.raises(StateError):
        drbg.random_bytes(1)
    with pytest.raises(StateError):
        drbg.reseed(b"\x00" * 32)
    drbg.instantiate(b"\x00" * 32, b"\x00" * 16)
    with pytest.raises(StateError):
        drbg.instantiate(b"\x00" * 32, b"\x00" * 16)
    drbg.uninstantiate()
    assert not drbg.instantiated and drbg.Key == b"" and drbg.V == b""
    with pytest.raises(StateError):
        drbg.generate(1)


def test_restored_state_continues_stream_and_is_validated():
    original = HmacDrbg.from_seed("store")
    original.random_bytes(10)
    restored = HmacDrbg(
        original.hash_name,
        original.reseed_interval,
        Key=original.Key,
        V=original.V,
        reseed_counter=original.reseed_counter,
    )
    assert restored.random_bytes(50) == original.random_bytes(50)
    with pytest.raises(ParameterError):
        HmacDrbg(Key=b"\x00" * 31, V=b"\x00" * 32, reseed_counter=1)
    with pytest.raises(ParameterError):
        HmacDrbg(Key=b"\x00" * 32, V=b"\x00" * 32, reseed_counter=0)
    with pytest.raises(ParameterError):
        HmacDrbg(reseed_interval=2, Key=b"\x00" * 32, V=b"\x00" * 32, reseed_counter=4)


def test_no_secret_in_repr():
    drbg = HmacDrbg.from_seed("repr")
    text = repr(drbg)
    assert drbg.Key.hex() not in text and drbg.V.hex() not in text
    assert "Key" not in text and "V=" not in text
    assert drbg != HmacDrbg.from_seed("repr")  # equality is identity: no secret comparison


# -- from_seed and random_bytes ------------------------------------------------------


def test_from_seed_is_the_documented_derivation():
    seed, pers = "meter-17", b"vectors"
    entropy_input = hashlib.sha256(b"usapp-drbg-entropy" + seed.encode()).digest()
    nonce = hashlib.sha256(b"usapp-drbg-nonce" + seed.encode()).digest()[:16]
    manual = HmacDrbg("SHA-256")
    manual.instantiate(entropy_input, nonce, pers)
    assert HmacDrbg.from_seed(seed, pers).random_bytes(100) == manual.random_bytes(100)
    assert HmacDrbg.from_seed(seed.encode(), pers.decode()).random_bytes(100) == HmacDrbg.from_seed(
        seed, pers
    ).random_bytes(100)


def test_from_seed_check_value():
    """Pinned so that a vendor (and a future refactor) can check from_seed."""
    assert HmacDrbg.from_seed("usapp-example").random_bytes(32).hex() == (
        "bf5e91a0263e905f7618212ce8c0532a23c594d389b4bf2896d423ece755e233"
    )


def test_from_seed_determinism():
    a, b = twins("seed-a")
    sizes = (1, 33, 64, 0, 7)
    assert [a.random_bytes(n) for n in sizes] == [b.random_bytes(n) for n in sizes]
    streams = {
        HmacDrbg.from_seed(seed, pers).random_bytes(32)
        for seed, pers in [
            ("seed-a", b""),
            ("seed-b", b""),
            ("", b""),
            ("seed-a", b"p"),
            (b"seed-a\x00", b""),
        ]
    }
    assert len(streams) == 5


def test_random_bytes_large_is_chunked_generate_calls():
    n = 2 * MAX_BYTES_PER_REQUEST + 5
    a, b = twins("large")
    expected = b.generate(MAX_BYTES_PER_REQUEST) + b.generate(MAX_BYTES_PER_REQUEST) + b.generate(5)
    assert a.random_bytes(n) == expected
    assert a.reseed_counter == b.reseed_counter == 4
    assert a.V == b.V and a.Key == b.Key


def test_random_bytes_zero_leaves_state_alone():
    drbg = HmacDrbg.from_seed("zero")
    key, v, counter = drbg.Key, drbg.V, drbg.reseed_counter
    assert drbg.random_bytes(0) == b""
    assert (drbg.Key, drbg.V, drbg.reseed_counter) == (key, v, counter)
    assert drbg.generate(0) == b""  # generate(0) is a request: the state moves on
    assert drbg.reseed_counter == counter + 1 and drbg.V != v


@settings(max_examples=60, deadline=None)
@given(a=st.integers(0, 300), b=st.integers(0, 300))
def test_split_requests_versus_one_request(a, b):
    """From equal states X and Y: X.random_bytes(a) == Y.random_bytes(a + b)[:a] always
    (one generate call yields a prefix-stable stream); X.random_bytes(b) afterwards equals
    Y's bytes [a:a+b] iff a == 0 or b == 0 (else X ran HMAC_DRBG_Update in between; with
    b >= 16 bytes a coincidence has probability 2^-128, so the test asserts inequality)."""
    x, y = twins(f"split-{a}-{b}")
    whole = y.random_bytes(a + b)
    head = x.random_bytes(a)
    assert head == whole[:a]
    tail = x.random_bytes(b)
    if a == 0 or b == 0:
        assert head + tail == whole
    elif b >= 16:
        assert tail != whole[a:]


@settings(max_examples=30, deadline=None)
@given(sizes=st.lists(st.integers(0, 200), max_size=6), seed=st.binary(max_size=8))
def test_same_seed_same_calls_same_bytes(sizes, seed):
    x, y = HmacDrbg.from_seed(seed), HmacDrbg.from_seed(seed)
    assert [x.random_bytes(n) for n in sizes] == [y.random_bytes(n) for n in sizes]
    assert all(len(x.random_bytes(n)) == n for n in sizes)


# -- the rand.py helpers the DRBG plugs into -----------------------------------------


def test_replay_random():
    replay = ReplayRandom([b"\x01\x02", b"\x03"])
    assert not replay.exhausted
    with pytest.raises(RandomnessError, match="2 bytes but 3"):
        replay.random_bytes(3)
    assert replay.random_bytes(2) == b"\x01\x02"  # a refused request does not advance
    assert replay.random_bytes(1) == b"\x03"
    assert replay.exhausted
    with pytest.raises(RandomnessError, match="exhausted"):
        replay.random_bytes(1)


def test_random_below_pinned_rule():
    """conventions section 3.2: k = bitlen(n - 1); read ceil(k/8) bytes big-endian,
    keep the low k bits, reject values >= n and draw again."""
    # n = 5: k = 3, one byte, mask 0b111; 0xfd -> 5 is rejected, 0x0b -> 3 is accepted.
    replay = ReplayRandom([b"\xfd", b"\x0b"])
    assert random_below(replay, 5) == 3 and replay.exhausted
    # n = 1000: k = 10, two bytes, mask 0x3ff; 0xffff -> 1023 rejected, 0x1234 -> 0x234 = 564.
    replay = ReplayRandom([b"\xff\xff", b"\x12\x34"])
    assert random_below(replay, 1000) == 564 and replay.exhausted
    # n = 256: k = 8, one byte read whole, never rejected.
    assert random_below(ReplayRandom([b"\xff"]), 256) == 255
    # n = 1 draws nothing; n < 1 is refused.
    assert random_below(ReplayRandom([]), 1) == 0
    with pytest.raises(ParameterError):
        random_below(ReplayRandom([]), 0)
    # a draw of the wrong length (the rule asks for 2 bytes) fails loudly
    with pytest.raises(RandomnessError):
        random_below(ReplayRandom([b"\x00"]), 1000)


@settings(max_examples=200, deadline=None)
@given(n=st.integers(1, 2**300), seed=st.binary(max_size=8))
def test_random_below_in_range(n, seed):
    assert 0 <= random_below(HmacDrbg.from_seed(seed), n) < n


def test_family_module_names_its_source():
    assert "canonical/go-sp800.90a-drbg" in ENVELOPE["source"]
    assert all(v["cavp_file"] in family_module.CAVP_FILES.values() for v in VECTORS)
