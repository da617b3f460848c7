"""Reading and comparing vector fields: every problem is a VectorMismatchError.

Shared by every family (hex big integers, hex byte strings, lists, plain
JSON values), so that a malformed or edited field is reported with its name,
never as a KeyError or ValueError.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from protocols import errors
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
        raise VectorMismatchError(f"field {name!r} is missing", field=name)
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
        raise VectorMismatchError(
            f"field {name!r} does not recompute to its stored value",
            field=name, expected=computed, actual=stored,
        )


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
        raise VectorMismatchError(f"field {name!r}: {exc}", field=name) from exc


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


# --------------------------------------------------------------------------
# Negative vectors (vectors/README.md "Negative vectors"; specs/conventions.md 4.5)

SPEC_ERROR_NAMES: frozenset[str] = frozenset({
    "DecodeError", "InvalidCiphertextError", "ParameterError", "KeyMismatchError",
    "EncodingOverflowError", "VerificationError", "VectorMismatchError",
    "AggregateMismatchError", "DuplicateContributionError", "DroppedContributionError",
    "InjectedContributionError", "ConsistencyError", "StateError", "ReplayError",
    "RecoveryError", "ResyncRequiredError", "PolicyError", "RandomnessError",
})
"""The error names of specs/conventions.md section 5.1: each is the name of the
class in ``protocols.errors`` (a test checks that they agree)."""

RESULTS = ("valid", "invalid", "acceptable")


def spec_error_name(exc: BaseException) -> str | None:
    """The spec's name for a raised error: the name of its most derived class
    in ``protocols.errors`` that section 5.1 lists (None for anything else)."""
    for cls in type(exc).__mro__:
        if cls.__name__ in SPEC_ERROR_NAMES and getattr(errors, cls.__name__, None) is cls:
            return cls.__name__
    return None


def vector_result(vector: Mapping[str, Any]) -> str:
    """The vector's ``result`` ("valid" when absent)."""
    result = vector.get("result", "valid")
    if result not in RESULTS:
        raise VectorMismatchError(f"field 'result' must be one of {', '.join(RESULTS)}", field="result")
    return result


def _expected_error(vector: Mapping[str, Any]) -> str:
    name = str_field(vector, "error")
    if name not in SPEC_ERROR_NAMES:
        raise VectorMismatchError(
            f"field 'error': {name!r} is not an error name of specs/conventions.md section 5.1",
            field="error", actual=name,
        )
    return name


def expect_refusal(vector: Mapping[str, Any], attempt: Callable[[], Any]) -> None:
    """Run ``attempt`` (the step an invalid vector exercises) and require that it
    refuses with exactly the error the vector's ``error`` names.

    Accepted, or refused with another error, is a ``VectorMismatchError``
    naming the vector (``field`` is ``result`` or ``error``; ``expected`` is
    what this implementation did, ``actual`` what the file says).
    """
    name = vector.get("name", "?")
    wanted = _expected_error(vector)
    try:
        attempt()
    except VectorMismatchError:
        raise
    except UsappError as exc:
        got = spec_error_name(exc)
        if got != wanted:
            raise VectorMismatchError(
                f"vector {name!r}: field 'error': refused with {got} but the vector expects {wanted}",
                field="error", expected=got, actual=wanted,
            ) from exc
        return
    raise VectorMismatchError(
        f"vector {name!r}: field 'result': invalid (expects {wanted}) but was accepted",
        field="result", expected="valid", actual="invalid",
    )


def edit_bytes(data: bytes, edit: object, what: str, *, negative_flip: bool = True,
               replace: bool = False) -> bytes:
    """A negative vector's one-step change of a message (vectors/README.md, Negative vectors).

    ``edit`` holds exactly one of ``{"truncate": k}`` (keep the first k bytes),
    ``{"flip": i}`` (XOR byte i with 1; from the end if negative and
    ``negative_flip``), ``{"append": hex}`` and, if ``replace``,
    ``{"replace": [offset, hex]}`` (overwrite from offset).  ``what`` is the
    field's name in the family's file, for the error message.
    """
    kinds = "truncate, flip, append" + (", replace" if replace else "")
    if not isinstance(edit, dict) or len(edit) != 1:
        raise VectorMismatchError(f"field {what!r} must hold exactly one of {kinds}", field=what)
    (how, value), = edit.items()
    low = -len(data) if negative_flip else 0
    if how == "truncate" and type(value) is int and 0 <= value < len(data):
        return data[:value]
    if how == "flip" and type(value) is int and low <= value < len(data):
        value %= len(data)
        return data[:value] + bytes([data[value] ^ 1]) + data[value + 1:]
    if how == "append" and isinstance(value, str):
        return data + bytes_field(edit, "append")
    if replace and how == "replace" and isinstance(value, list) and len(value) == 2 and type(value[0]) is int:
        new = bytes_field({"replace": value[1]}, "replace")
        return data[:value[0]] + new + data[value[0] + len(new):]
    raise VectorMismatchError(f"field {what!r}: unknown or out-of-range {what}", field=what)


def check_result(vector: Mapping[str, Any], attempt: Callable[[], Any]) -> None:
    """Run a vector's step according to its ``result``.

    valid (or absent): ``attempt`` must not raise (it compares its outputs
    itself; a typed error is a mismatch of ``result``); invalid: it must be
    refused with the vector's ``error`` (:func:`expect_refusal`); acceptable:
    either outcome, but a refusal must raise the vector's ``error`` if it names one.
    """
    result = vector_result(vector)
    if result == "invalid":
        expect_refusal(vector, attempt)
        return
    if result == "valid":
        recompute("result", attempt)
        return
    wanted = _expected_error(vector) if "error" in vector else None
    try:
        attempt()
    except VectorMismatchError:
        raise
    except UsappError as exc:
        got = spec_error_name(exc)
        if wanted is not None and got != wanted:
            raise VectorMismatchError(
                f"vector {vector.get('name', '?')!r}: refused with {got} but the vector allows only {wanted}",
                field="error", expected=got, actual=wanted,
            ) from exc
