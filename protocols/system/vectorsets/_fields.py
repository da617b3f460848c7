"""Reading and comparing vector fields: every problem is a VectorMismatchError.

Shared by every family (hex big integers, hex byte strings, lists, plain
JSON values), so that a malformed or edited field is reported with its name,
never as a KeyError or ValueError.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from protocols.errors import UsappError, VectorMismatchError

_HEX = re.compile(r"0|[1-9a-f][0-9a-f]*")
_HEX_BYTES = re.compile(r"(?:[0-9a-f]{2})*")


def hexint(value: int) -> str:
    """A non-negative integer as minimal lower-case hex ("0" for zero)."""
    if value < 0:
        raise VectorMismatchError("hexint takes a non-negative integer")
    return format(int(value), "x")


def field(vector: Mapping[str, Any], name: str) -> Any:
    if name not in vector:
        raise VectorMismatchError(f"field {name!r} is missing")
    return vector[name]


def int_field(vector: Mapping[str, Any], name: str) -> int:
    """A big integer stored as minimal lower-case hex."""
    value = field(vector, name)
    if not isinstance(value, str) or not _HEX.fullmatch(value):
        raise VectorMismatchError(f"field {name!r} is not a minimal lower-case hex integer")
    return int(value, 16)


def int_list_field(vector: Mapping[str, Any], name: str) -> list[int]:
    value = field(vector, name)
    if not isinstance(value, list) or not value:
        raise VectorMismatchError(f"field {name!r} must be a non-empty list of hex integers")
    return [int_field({name: item}, name) for item in value]


def bytes_field(vector: Mapping[str, Any], name: str) -> bytes:
    value = field(vector, name)
    if not isinstance(value, str) or not _HEX_BYTES.fullmatch(value):
        raise VectorMismatchError(f"field {name!r} is not lower-case hex bytes")
    return bytes.fromhex(value)


def small_int_field(vector: Mapping[str, Any], name: str) -> int:
    """A JSON integer (not a bool)."""
    value = field(vector, name)
    if not isinstance(value, int) or isinstance(value, bool):
        raise VectorMismatchError(f"field {name!r} must be a JSON integer")
    return value


def str_field(vector: Mapping[str, Any], name: str) -> str:
    value = field(vector, name)
    if not isinstance(value, str):
        raise VectorMismatchError(f"field {name!r} must be a string")
    return value


def expect(name: str, stored: Any, computed: Any) -> None:
    """Raise naming ``name`` when the stored value differs from the recomputed one."""
    if stored != computed:
        raise VectorMismatchError(f"field {name!r} does not recompute to its stored value")


def expect_int(vector: Mapping[str, Any], name: str, computed: int) -> None:
    expect(name, int_field(vector, name), int(computed))


def dispatch(operations: Mapping[str, Callable[[Mapping[str, Any]], None]],
             vector: Mapping[str, Any]) -> None:
    """Verify ``vector`` with the function its ``operation`` field names."""
    operation = str_field(vector, "operation")
    if operation not in operations:
        raise VectorMismatchError(f"unknown operation {operation!r}")
    operations[operation](vector)


def list_field(vector: Mapping[str, Any], name: str) -> list:
    value = field(vector, name)
    if not isinstance(value, list):
        raise VectorMismatchError(f"field {name!r} must be a list")
    return value


def hex_list_field(vector: Mapping[str, Any], name: str) -> list[bytes]:
    """A list of hex byte strings."""
    return [bytes_field({name: item}, name) for item in list_field(vector, name)]


def recompute(name: str, compute: Callable[[], Any]) -> Any:
    """Run a recomputation; a typed error from the code is reported against ``name``."""
    try:
        return compute()
    except VectorMismatchError:
        raise
    except UsappError as exc:
        raise VectorMismatchError(f"field {name!r}: {exc}") from exc


def expect_steps(steps: list, computed: list[Mapping[str, Any]], inputs: set[str] | frozenset[str]) -> None:
    """Compare a scripted run's stored steps with the recomputed outputs: every stored key must be an
    input or an output, and every output must equal its stored value (named ``steps[i].key``)."""
    if len(steps) != len(computed):
        raise VectorMismatchError("field 'steps': wrong number of steps")
    for index, (stored, outputs) in enumerate(zip(steps, computed)):
        for key in stored:
            if key not in inputs and key not in outputs:
                raise VectorMismatchError(f"field 'steps[{index}].{key}' is not an output of the step")
        for name, value in outputs.items():
            expect(f"steps[{index}].{name}", stored.get(name), value)


def expect_outputs(vector: Mapping[str, Any], outputs: Mapping[str, Any], inputs: Iterable[str]) -> None:
    """Every key of ``vector`` must be an input or an output, and every output must equal its stored value."""
    inputs = set(inputs)
    for key in vector:
        if key not in inputs and key not in outputs:
            raise VectorMismatchError(f"field {key!r} is neither an input nor an output")
    for name, value in outputs.items():
        expect(name, field(vector, name), value)
