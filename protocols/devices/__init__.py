"""Device profiles: what each counted operation costs a meter's microcontroller (specs/costs.md section 4).

A profile is a JSON file shipped in this package, one per device (``cortex-m4-80mhz.json``, ...): the
core, its clock, the active current per MHz and supply voltage of a representative MCU for energy, and
for every operation key of specs/costs.md section 2.1 its cycle count with the figure's source, whether
it is measured or derived, and a note on how (section 4.1 gives the format, 4.2 the figures, 4.3 the
derivations).  ``protocols/devices/derive.py`` holds the derivations and writes the files.

::

    profile = load("cortex-m4-80mhz")
    c = cycles(profile, "modexp_bit:2048") * 2048
    profile.ms(c), profile.mj(c)

Every file is validated when it is loaded; a malformed one is refused with :class:`DecodeError`, an
unknown device or operation key with :class:`ParameterError`.
"""

from __future__ import annotations

import importlib.resources
import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from protocols.errors import DecodeError, ParameterError, shown

__all__ = ["DeviceProfile", "OpFigure", "MAX_PROFILE_BYTES", "SCALINGS", "cycles", "load", "names", "parse"]

MAX_PROFILE_BYTES = 256 * 1024
"""A profile file longer than this is refused before it is parsed (section 4.1)."""

MAX_OPS = 1024
MAX_TEXT = 4000
MAX_CYCLES = 1e15
MAX_SIZE_BITS = 65536
MAX_KEY_CHARS = 64

SCALINGS: Mapping[str, int] = MappingProxyType({"constant": 0, "linear": 1, "quadratic": 2, "cubic": 3})
"""Exponent of the power law a size rule follows outside its anchor sizes (section 4.1)."""

_NAME = re.compile(r"[a-z0-9][a-z0-9-]{0,62}")
_KEY = re.compile(r"[a-z0-9_]+(?::[a-z0-9_]+)?")
_RULE_KEY = re.compile(r"[a-z0-9_]+:[a-z_]*\*")
_SIZED_ARG = re.compile(r"([a-z_]*?)([0-9]{1,6})")

_TOP = frozenset({"name", "core", "mcu", "clock_hz", "active_current_ua_per_mhz", "supply_v", "energy_source",
                  "energy_derived", "energy_note", "ops"})
_FIGURE = frozenset({"cycles", "source", "derived", "note"})
_RULE = frozenset({"cycles_at", "scaling", "source", "derived", "note"})


@dataclass(frozen=True)
class OpFigure:
    """The cost of one operation key: a cycle count, or for a rule key (``name:prefix*``) anchor sizes
    with their cycle counts and the scaling beyond them (section 4.1)."""

    key: str
    source: str
    derived: bool
    note: str
    cycles: float | None = None
    cycles_at: tuple[tuple[int, float], ...] = ()
    scaling: str | None = None

    def at(self, bits: int) -> float:
        """Cycles of this rule at operand size ``bits``: exact at an anchor, a power law through the two
        anchors around ``bits``, and the rule's scaling beyond the first or last anchor."""
        if not self.cycles_at or self.scaling is None:
            raise ParameterError(f"{self.key!r} is not a size rule")
        if isinstance(bits, bool) or not isinstance(bits, int) or not 1 <= bits <= MAX_SIZE_BITS:
            raise ParameterError(f"operand size must be an int in 1..{MAX_SIZE_BITS}, not {shown(bits)}")
        anchors = self.cycles_at
        for size, count in anchors:
            if size == bits:
                return count
        k = SCALINGS[self.scaling]
        first_s, first_c = anchors[0]
        last_s, last_c = anchors[-1]
        if bits <= first_s:
            return first_c * (bits / first_s) ** k
        if bits >= last_s:
            return last_c * (bits / last_s) ** k
        for (s0, c0), (s1, c1) in zip(anchors, anchors[1:]):
            if s0 <= bits <= s1:
                slope = math.log(c1 / c0) / math.log(s1 / s0)
                return c0 * (bits / s0) ** slope
        raise ParameterError(f"no anchor interval of {self.key!r} holds {bits}")  # unreachable: anchors sorted


@dataclass(frozen=True)
class DeviceProfile:
    """One device: core, clock, energy model and the cost of each operation (section 4.1)."""

    name: str
    core: str
    mcu: str
    clock_hz: int
    active_current_ua_per_mhz: float
    supply_v: float
    energy_source: str
    energy_derived: bool
    energy_note: str
    ops: Mapping[str, OpFigure] = field(repr=False, hash=False)

    def ms(self, cycles: float) -> float:
        """Milliseconds that ``cycles`` take at this profile's clock."""
        c = _check_cycles(cycles)
        return c / self.clock_hz * 1000.0

    def mj(self, cycles: float) -> float:
        """Millijoules that ``cycles`` draw from the supply (section 4.4): time x active current x voltage,
        the current being ``active_current_ua_per_mhz`` x the clock in MHz."""
        c = _check_cycles(cycles)
        seconds = c / self.clock_hz
        amperes = self.active_current_ua_per_mhz * (self.clock_hz / 1e6) * 1e-6
        return seconds * amperes * self.supply_v * 1000.0


def _check_cycles(value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ParameterError(f"cycles must be a number, not {shown(value)}")
    c = float(value)
    if not math.isfinite(c) or c < 0:
        raise ParameterError(f"cycles must be finite and not negative, not {shown(value)}")
    return c


def cycles(profile: DeviceProfile, key: str) -> float:
    """Cycles of one unit of operation ``key`` on ``profile``: the key's own figure if the profile has
    one, else the rule ``name:prefix*`` at the key's size (``modexp_bit:1088`` by ``modexp_bit:*``,
    ``pairing:ss1536`` by ``pairing:ss*``).  ParameterError when neither exists."""
    if not isinstance(key, str) or len(key) > MAX_KEY_CHARS or not _KEY.fullmatch(key):
        raise ParameterError(f"not an operation key: {shown(key)}")
    figure = profile.ops.get(key)
    if figure is not None and figure.cycles is not None:
        return figure.cycles
    if ":" in key:
        name, arg = key.split(":", 1)
        sized = _SIZED_ARG.fullmatch(arg)
        if sized is not None:
            rule = profile.ops.get(f"{name}:{sized.group(1)}*")
            bits = int(sized.group(2))
            if rule is not None and 1 <= bits <= MAX_SIZE_BITS:
                return rule.at(bits)
    raise ParameterError(f"no figure for key {key!r} on device {profile.name!r}")


def names() -> list[str]:
    """The names of the shipped profiles, sorted."""
    root = importlib.resources.files(__name__)
    found = [entry.name[: -len(".json")] for entry in root.iterdir()
             if entry.name.endswith(".json") and entry.is_file()]
    return sorted(n for n in found if _NAME.fullmatch(n))


def load(name: str) -> DeviceProfile:
    """The shipped profile ``name`` (one of :func:`names`), validated."""
    if not isinstance(name, str) or not _NAME.fullmatch(name) or name not in names():
        raise ParameterError(f"no device profile named {shown(name)}; known: {', '.join(names())}")
    entry = importlib.resources.files(__name__) / f"{name}.json"
    with entry.open("rb") as handle:
        data = handle.read(MAX_PROFILE_BYTES + 1)
    return parse(data, expected_name=name)


def parse(data: bytes, expected_name: str | None = None) -> DeviceProfile:
    """Validate and decode the bytes of one profile file (section 4.1); DecodeError for anything malformed."""
    if not isinstance(data, (bytes, bytearray)):
        raise DecodeError(f"a profile is bytes, not {type(data).__name__}")
    if len(data) > MAX_PROFILE_BYTES:
        raise DecodeError(f"a profile has at most {MAX_PROFILE_BYTES} bytes, not {len(data)}")
    try:
        raw = json.loads(bytes(data).decode("utf-8"), parse_constant=_refuse_constant)
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError, ValueError) as exc:
        raise DecodeError(f"a profile is UTF-8 JSON: {exc.__class__.__name__}") from None
    obj = _object(raw, "profile", _TOP, _TOP)
    name = _text(obj["name"], "name")
    if not _NAME.fullmatch(name):
        raise DecodeError(f"profile name {shown(name)} is not of the form lower-case-with-dashes")
    if expected_name is not None and name != expected_name:
        raise DecodeError(f"file {expected_name!r} holds profile {name!r}")
    clock_hz = obj["clock_hz"]
    if isinstance(clock_hz, bool) or not isinstance(clock_hz, int) or not 1_000_000 <= clock_hz <= 1_000_000_000:
        raise DecodeError(f"clock_hz must be an int in 1 MHz..1 GHz, not {shown(clock_hz)}")
    ops_raw = obj["ops"]
    if not isinstance(ops_raw, dict) or not ops_raw or len(ops_raw) > MAX_OPS:
        raise DecodeError(f"ops must be an object of 1..{MAX_OPS} operation keys")
    ops = {key: _figure(key, value) for key, value in ops_raw.items()}
    return DeviceProfile(
        name=name, core=_text(obj["core"], "core"), mcu=_text(obj["mcu"], "mcu"), clock_hz=clock_hz,
        active_current_ua_per_mhz=_number(obj["active_current_ua_per_mhz"], "active_current_ua_per_mhz",
                                          0.1, 2000.0),
        supply_v=_number(obj["supply_v"], "supply_v", 0.5, 6.0),
        energy_source=_text(obj["energy_source"], "energy_source"),
        energy_derived=_flag(obj["energy_derived"], "energy_derived"),
        energy_note=_text(obj["energy_note"], "energy_note", allow_empty=True),
        ops=MappingProxyType(ops))


def _refuse_constant(token: str) -> Any:
    raise DecodeError(f"a profile holds no {token}")


def _object(value: object, what: str, required: frozenset[str], allowed: frozenset[str]) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise DecodeError(f"{what} must be a JSON object")
    unknown = set(value) - allowed
    if unknown:
        raise DecodeError(f"{what} has unknown field(s) {shown(sorted(unknown))}")
    missing = required - set(value)
    if missing:
        raise DecodeError(f"{what} lacks field(s) {shown(sorted(missing))}")
    return value


def _text(value: object, what: str, allow_empty: bool = False) -> str:
    if not isinstance(value, str) or len(value) > MAX_TEXT or (not allow_empty and not value.strip()):
        raise DecodeError(f"{what} must be a {'' if allow_empty else 'non-empty '}string of at most "
                          f"{MAX_TEXT} characters")
    return value


def _flag(value: object, what: str) -> bool:
    if not isinstance(value, bool):
        raise DecodeError(f"{what} must be true or false")
    return value


def _number(value: object, what: str, low: float, high: float) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise DecodeError(f"{what} must be a number")
    number = float(value)
    if not math.isfinite(number) or not low <= number <= high:
        raise DecodeError(f"{what} must lie in {low}..{high}, not {shown(value)}")
    return number


def _figure(key: object, value: object) -> OpFigure:
    if not isinstance(key, str) or len(key) > MAX_KEY_CHARS:
        raise DecodeError(f"not an operation key: {shown(key)}")
    is_rule = key.endswith("*")
    if is_rule and not _RULE_KEY.fullmatch(key):
        raise DecodeError(f"a rule key is name:prefix*, not {shown(key)}")
    if not is_rule and not _KEY.fullmatch(key):
        raise DecodeError(f"not an operation key: {shown(key)}")
    obj = _object(value, f"ops[{key!r}]", _RULE if is_rule else _FIGURE, _RULE if is_rule else _FIGURE)
    source = _text(obj["source"], f"ops[{key!r}].source")
    derived = _flag(obj["derived"], f"ops[{key!r}].derived")
    note = _text(obj["note"], f"ops[{key!r}].note", allow_empty=not derived)
    if not is_rule:
        return OpFigure(key=key, source=source, derived=derived, note=note,
                        cycles=_count(obj["cycles"], f"ops[{key!r}].cycles"))
    scaling = obj["scaling"]
    if scaling not in SCALINGS:
        raise DecodeError(f"ops[{key!r}].scaling must be one of {', '.join(SCALINGS)}")
    at = obj["cycles_at"]
    if not isinstance(at, dict) or not 1 <= len(at) <= 64:
        raise DecodeError(f"ops[{key!r}].cycles_at must map 1..64 sizes to cycles")
    anchors: list[tuple[int, float]] = []
    for size_text, count in at.items():
        if not re.fullmatch(r"[1-9][0-9]{0,5}", size_text) or int(size_text) > MAX_SIZE_BITS:
            raise DecodeError(f"ops[{key!r}].cycles_at: {shown(size_text)} is not a size in bits")
        anchors.append((int(size_text), _count(count, f"ops[{key!r}].cycles_at[{size_text}]")))
    anchors.sort()
    for (_, c0), (_, c1) in zip(anchors, anchors[1:]):
        if c1 < c0 or c0 == 0.0:
            raise DecodeError(f"ops[{key!r}].cycles_at must grow with the size and be positive")
    if anchors[0][1] == 0.0:
        raise DecodeError(f"ops[{key!r}].cycles_at must be positive")
    return OpFigure(key=key, source=source, derived=derived, note=note, cycles_at=tuple(anchors),
                    scaling=scaling)


def _count(value: object, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise DecodeError(f"{what} must be a number")
    number = float(value)
    if not math.isfinite(number) or not 0.0 <= number <= MAX_CYCLES:
        raise DecodeError(f"{what} must lie in 0..{MAX_CYCLES:g}, not {shown(value)}")
    return number
