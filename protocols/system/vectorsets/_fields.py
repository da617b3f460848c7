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

# --------------------------------------------------------------------------
# Bounds (vectors/README.md, "Limits"): every value read from a vector file is
# bounded before any work that grows with it.  The defaults bound every field;
# a family passes tighter bounds (its spec's parameter limits) for counts,
# sizes, exponents and moduli.

MAX_INT_BITS = 8192
"""Default bound of a hex big integer (a Paillier n^2 for a 4096-bit n)."""
MAX_BYTES = 65536
"""Default bound of a hex byte string, in bytes."""
MAX_ITEMS = 4096
"""Default bound of a list's length."""
MAX_SMALL_INT = 2**64
"""Default bound of a JSON integer's magnitude."""
MAX_STRING = 2 * MAX_BYTES
"""Bound of any string in a vector (a hex byte string of MAX_BYTES bytes)."""
MAX_NODES = 200_000
"""Bound of the number of JSON values in one vector."""
UINT32 = 2**32 - 1
"""Largest epoch, sequence number or time a vector may carry where the spec encodes it in 4 bytes."""
UINT64 = 2**64 - 1
"""Largest epoch, sequence number, counter or time a vector may carry."""
MAX_PARTIES = 8
"""Most operators, nodes, authorities or participants of a threshold setup in one
vector (the files use at most 5; a ceremony's cost grows with the cube)."""
MAX_STEPS = 64
"""Most scripted steps in one vector (the files use at most 41)."""
MAX_COUNT = 1 << 16
"""Largest count of meters, members or a threshold over them read from a vector
(specs/aggregation.md: at most 2^16 meters)."""
MAX_DEGREE = 64
"""Largest polynomial degree (neighbour count) read from a vector (specs/aggregation.md)."""
MAX_ARITY = 16
"""Largest key-tree arity read from a vector (the files use 2 and 3)."""
MAX_FACTOR_BITS = 2048
"""Largest Paillier or RSA prime factor read from a vector (n of at most 4096 bits)."""
MAX_MODULUS_BITS = 4096
"""Largest Paillier or RSA modulus n read from a vector."""
MAX_PHE_EXPONENT = 2048
"""Largest |exponent| of a phe-style encoded number read from a vector (specs/paillier.md section 8)."""
MAX_JSON_DEPTH = 64
"""Deepest nesting of arrays and objects accepted in a vector file or in JSON text inside one."""

_JSON_STRING = re.compile(r'"[^"\\]*+(?:\\.[^"\\]*+)*+"')  # possessive: no backtracking stack on long strings
_NOT_BRACKET = re.compile(r"[^\[\]{}]+")


def json_depth(text: str) -> int:
    """The deepest nesting of ``[``/``{`` in JSON ``text`` outside strings: a
    linear scan, so hostile text is refused before ``json.loads`` recurses."""
    brackets = _NOT_BRACKET.sub("", _JSON_STRING.sub("", text))
    depth = deepest = 0
    for char in brackets:
        if char in "[{":
            depth += 1
            deepest = max(deepest, depth)
        else:
            depth -= 1
    return deepest


def out_of_range(name: str, value: object, low: object, high: object) -> VectorMismatchError:
    """The error of a field outside its bounds (``VectorMismatchError`` naming it)."""
    shown = value if isinstance(value, int) and abs(value) < 2**64 else "a larger value"
    return VectorMismatchError(
        f"field {name!r} is out of range: {shown} not in [{low}, {high}]", field=name,
    )


def check_shape(vector: Any) -> None:
    """Bound a whole vector before a family reads it: at most :data:`MAX_NODES`
    values, lists of at most :data:`MAX_ITEMS`, strings of at most
    :data:`MAX_STRING` characters, integers of magnitude at most
    :data:`MAX_SMALL_INT` (floats are bounded by nature; a reader that
    wants an integer refuses them).  Iterative (no recursion)."""
    stack: list[tuple[str, Any]] = [("", vector)]
    seen = 0
    while stack:
        path, node = stack.pop()
        seen += 1
        if seen > MAX_NODES:
            raise VectorMismatchError(f"vector holds more than {MAX_NODES} values")
        name = path or "(vector)"
        if isinstance(node, dict):
            stack.extend((f"{path}.{key}" if path else str(key), child) for key, child in node.items())
        elif isinstance(node, list):
            if len(node) > MAX_ITEMS:
                raise VectorMismatchError(f"field {name!r}: list longer than {MAX_ITEMS}", field=path or None)
            stack.extend((f"{path}[{index}]", child) for index, child in enumerate(node))
        elif isinstance(node, str):
            if len(node) > MAX_STRING:
                raise VectorMismatchError(f"field {name!r}: string longer than {MAX_STRING}", field=path or None)
        elif isinstance(node, int) and not isinstance(node, bool) and abs(node) > MAX_SMALL_INT:
            raise out_of_range(path, node, -MAX_SMALL_INT, MAX_SMALL_INT)


def hexint(value: int) -> str:
    """A non-negative integer as minimal lower-case hex ("0" for zero)."""
    if value < 0:
        raise VectorMismatchError("hexint takes a non-negative integer")
    return format(int(value), "x")


def reference_hex(value: str) -> str:
    """A published reference set's "0x..." hex (any case) as lower-case hex without the prefix."""
    if not value.startswith("0x"):
        raise VectorMismatchError("a reference value must start with 0x")
    return value[2:].lower()


def field(vector: Mapping[str, Any], name: str) -> Any:
    if not isinstance(vector, Mapping):
        raise VectorMismatchError(f"field {name!r}: its parent is not an object", field=name)
    if name not in vector:
        raise VectorMismatchError(f"field {name!r} is missing", field=name)
    return vector[name]


def int_field(vector: Mapping[str, Any], name: str, *, max_bits: int = MAX_INT_BITS, low: int = 0) -> int:
    """A big integer stored as minimal lower-case hex, of at most ``max_bits``
    bits (checked on the text, before conversion) and at least ``low``."""
    value = field(vector, name)
    if isinstance(value, str) and len(value) > (max_bits + 3) // 4:  # minimal hex: no leading zeros
        raise VectorMismatchError(f"field {name!r} is longer than {max_bits} bits", field=name)
    if not isinstance(value, str) or not _HEX.fullmatch(value):
        raise VectorMismatchError(f"field {name!r} is not a minimal lower-case hex integer", field=name)
    number = int(value, 16)
    if number.bit_length() > max_bits or number < low:
        raise out_of_range(name, number, low, f"2^{max_bits} - 1")
    return number


def int_list_field(vector: Mapping[str, Any], name: str, *, max_items: int = MAX_ITEMS,
                   max_bits: int = MAX_INT_BITS) -> list[int]:
    value = list_field(vector, name, max_items=max_items)
    if not value:
        raise VectorMismatchError(f"field {name!r} must be a non-empty list of hex integers", field=name)
    return [int_field({name: item}, name, max_bits=max_bits) for item in value]


def bytes_field(vector: Mapping[str, Any], name: str, *, max_len: int = MAX_BYTES,
                size: int | None = None) -> bytes:
    """Hex bytes, at most ``max_len`` bytes (checked before decoding), exactly
    ``size`` bytes when given (a key or seed of fixed length)."""
    value = field(vector, name)
    if not isinstance(value, str):
        raise VectorMismatchError(f"field {name!r} is not lower-case hex bytes", field=name)
    if len(value) > 2 * max_len:
        raise VectorMismatchError(f"field {name!r} is longer than {max_len} bytes", field=name)
    if not _HEX_BYTES.fullmatch(value):
        raise VectorMismatchError(f"field {name!r} is not lower-case hex bytes", field=name)
    if size is not None and len(value) != 2 * size:
        raise VectorMismatchError(f"field {name!r} must be {size} bytes", field=name)
    return bytes.fromhex(value)


def small_int_field(vector: Mapping[str, Any], name: str, *, low: int = -MAX_SMALL_INT,
                    high: int = MAX_SMALL_INT) -> int:
    """A JSON integer (not a bool) in ``[low, high]``; a family passes the
    spec's limits for counts, sizes, exponents and parameters."""
    value = field(vector, name)
    if not isinstance(value, int) or isinstance(value, bool):
        raise VectorMismatchError(f"field {name!r} must be a JSON integer", field=name)
    if not low <= value <= high:
        raise out_of_range(name, value, low, high)
    return value


def node_key(key: object) -> int:
    """An object key naming a node or participant: decimal digits, 1 to :data:`MAX_PARTIES`."""
    if not isinstance(key, str) or not key.isascii() or not key.isdigit() or len(key) > 4 \
            or not 1 <= int(key) <= MAX_PARTIES:
        raise VectorMismatchError(f"key {str(key)[:20]!r} is not a node number in [1, {MAX_PARTIES}]")
    return int(key)


def str_field(vector: Mapping[str, Any], name: str, *, max_len: int = MAX_STRING) -> str:
    value = field(vector, name)
    if not isinstance(value, str):
        raise VectorMismatchError(f"field {name!r} must be a string", field=name)
    if len(value) > max_len:
        raise VectorMismatchError(f"field {name!r} is longer than {max_len} characters", field=name)
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


def list_field(vector: Mapping[str, Any], name: str, *, max_items: int = MAX_ITEMS) -> list:
    """A list of at most ``max_items`` items."""
    value = field(vector, name)
    if not isinstance(value, list):
        raise VectorMismatchError(f"field {name!r} must be a list", field=name)
    if len(value) > max_items:
        raise VectorMismatchError(f"field {name!r} has more than {max_items} items", field=name)
    return value


def hex_list_field(vector: Mapping[str, Any], name: str, *, max_items: int = MAX_ITEMS,
                   max_len: int = MAX_BYTES) -> list[bytes]:
    """A list of hex byte strings."""
    return [bytes_field({name: item}, name, max_len=max_len) for item in list_field(vector, name, max_items=max_items)]


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


def require_invalid(vector: Mapping[str, Any]) -> None:
    """A ``*-rejects`` operation's vector must be ``result: invalid`` (vectors/README.md, "Negative vectors")."""
    if vector_result(vector) != "invalid":
        raise VectorMismatchError("field 'result': a *-rejects vector is invalid", field="result")


def derived_negative(vector: Mapping[str, Any], section: str) -> None:
    """The header of a negative vector derived from an RFC's appendix vector: ``result: invalid``, a
    ``change`` string saying what was changed, and the appendix ``section`` it was derived from."""
    require_invalid(vector)
    str_field(vector, "change")
    expect("section", str_field(vector, "section"), section)


def invalid_vectors(operation: str, start: Mapping[str, Any], cases: Iterable[tuple[str, Mapping[str, Any], Any, str, str]],
                    check: Callable[[Mapping[str, Any]], None]) -> list[dict[str, Any]]:
    """One ``result: invalid`` vector per case ``(label, change, flags, error, comment)``: ``start`` with
    ``change`` applied, named ``<operation>-invalid-<label>``, each checked by ``check`` as it is made
    (vectors/README.md, "Negative vectors")."""
    out = []
    for label, change, flags, error, comment in cases:
        vector = {"name": f"{operation}-invalid-{label}", "operation": operation, **start, **change,
                  "result": "invalid", "flags": flags, "error": error, "comment": comment}
        check(vector)
        out.append(vector)
    return out


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


def role_vector(name: str, operation: str, role: str, inputs: Mapping[str, Any],
                outputs: Callable[[dict[str, Any]], Mapping[str, Any]] | None,
                result: str, flags: Iterable[str], error: str | None, comment: str | None) -> dict[str, Any]:
    """A per-role vector in the envelope's field order: name, operation, role,
    the inputs, the outputs (computed from the vector so far, valid vectors
    only), then result, flags and the optional error and comment."""
    vector: dict[str, Any] = {"name": name, "operation": operation, "role": role, **inputs}
    if outputs is not None:
        vector.update(outputs(vector))
    vector["result"] = result
    vector["flags"] = list(flags)
    if error:
        vector["error"] = error
    if comment:
        vector["comment"] = comment
    return vector
