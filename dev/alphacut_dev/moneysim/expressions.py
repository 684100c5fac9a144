"""DynamoDB's expression language, as much of it as the money path writes: update expressions
(SET with ``+``/``-`` and ``if_not_exists``, REMOVE, ADD), condition and key-condition expressions
(comparisons, ``BETWEEN``, ``AND``/``OR``/``NOT``, parentheses, ``attribute_exists``,
``attribute_not_exists``, ``begins_with``), and document paths with ``#names`` and ``.`` into maps.
Values stay in DynamoDB's JSON (``{"N": "12"}``, ``{"S": "x"}``, ``{"M": {...}}``); numbers are
integers here (millicredits and seconds).

A parsed expression is kept per text (the money path writes a few dozen texts, millions of times).
Anything outside this subset raises ``Unsupported``: the model refuses what it does not know
rather than guess.

Usage::

    update = parse_update("SET balance = balance - :a ADD inflight :one")
    item = apply_update(update, item, names, values)
    holds = evaluate(parse_condition("balance >= :a AND attribute_not_exists(#e)"), item, names, values)
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from typing import Any

Value = dict[str, Any]
Item = dict[str, Value]

_TOKEN = re.compile(r"\s*(<>|<=|>=|[=<>(),.+\-]|[#:]?[A-Za-z_][A-Za-z0-9_]*)")


class Unsupported(Exception):
    """An expression or value outside what the model implements."""


class Invalid(Exception):
    """What DynamoDB answers with a ValidationException (an ADD to a string, a missing value)."""


def _tokens(text: str) -> list[str]:
    found, at = [], 0
    while at < len(text):
        match = _TOKEN.match(text, at)
        if match is None:
            if text[at:].strip() == "":
                break
            raise Unsupported(f"cannot read {text[at:]!r}")
        found.append(match.group(1))
        at = match.end()
    return found


@dataclass(frozen=True)
class Path:
    parts: tuple[str, ...]  # each a name or a #placeholder


@dataclass(frozen=True)
class Placeholder:
    name: str  # ":value"


@dataclass(frozen=True)
class Call:
    function: str
    args: tuple[Any, ...]


@dataclass(frozen=True)
class Arithmetic:
    left: Any
    operator: str
    right: Any


class _Reader:
    def __init__(self, text: str):
        self.tokens, self.at = _tokens(text), 0

    def peek(self, ahead: int = 0) -> str | None:
        index = self.at + ahead
        return self.tokens[index] if index < len(self.tokens) else None

    def take(self, expected: str | None = None) -> str:
        token = self.peek()
        if token is None or (expected is not None and token.upper() != expected):
            raise Unsupported(f"expected {expected or 'more'}, found {token!r}")
        self.at += 1
        return token

    def path(self) -> Path:
        parts = [self.take()]
        while self.peek() == ".":
            self.take()
            parts.append(self.take())
        return Path(tuple(parts))

    def operand(self) -> Any:
        token = self.peek()
        if token is None:
            raise Unsupported("an operand is missing")
        if token.startswith(":"):
            self.take()
            return Placeholder(token)
        if self.peek(1) == "(":
            function = self.take().lower()
            self.take("(")
            args = [self.operand()]
            while self.peek() == ",":
                self.take()
                args.append(self.operand())
            self.take(")")
            return Call(function, tuple(args))
        return self.path()


@functools.lru_cache(maxsize=1024)
def parse_update(text: str) -> tuple[tuple[str, Any, Any], ...]:
    """The actions of an update expression, in order: (SET, path, value), (REMOVE, path, None),
    (ADD, path, placeholder)."""
    reader, actions, clause = _Reader(text), [], ""
    while reader.peek() is not None:
        token = reader.peek()
        assert token is not None
        if token.upper() in ("SET", "REMOVE", "ADD", "DELETE"):
            clause = reader.take().upper()
            if clause == "DELETE":
                raise Unsupported("DELETE (sets) is not used by the money path")
        elif token == ",":
            reader.take()
        elif clause == "SET":
            path = reader.path()
            reader.take("=")
            value = reader.operand()
            if reader.peek() in ("+", "-"):
                value = Arithmetic(value, reader.take(), reader.operand())
            actions.append(("SET", path, value))
        elif clause == "REMOVE":
            actions.append(("REMOVE", reader.path(), None))
        elif clause == "ADD":
            path = reader.path()
            actions.append(("ADD", path, reader.operand()))
        else:
            raise Unsupported(f"an update expression starts with a clause, not {token!r}")
    return tuple(actions)


@functools.lru_cache(maxsize=1024)
def parse_condition(text: str) -> Any:
    reader = _Reader(text)
    tree = _or(reader)
    if reader.peek() is not None:
        raise Unsupported(f"unexpected {reader.peek()!r} in {text!r}")
    return tree


def _or(reader: _Reader) -> Any:
    tree = _and(reader)
    while (reader.peek() or "").upper() == "OR":
        reader.take()
        tree = ("OR", tree, _and(reader))
    return tree


def _and(reader: _Reader) -> Any:
    tree = _not(reader)
    while (reader.peek() or "").upper() == "AND":
        reader.take()
        tree = ("AND", tree, _not(reader))
    return tree


def _not(reader: _Reader) -> Any:
    if (reader.peek() or "").upper() == "NOT":
        reader.take()
        return ("NOT", _not(reader))
    if reader.peek() == "(":
        reader.take()
        tree = _or(reader)
        reader.take(")")
        return tree
    left = reader.operand()
    token = reader.peek()
    if isinstance(left, Call) and (token is None or token.upper() in ("AND", "OR") or token == ")"):
        return ("CALL", left)
    operator = reader.take().upper()
    if operator == "BETWEEN":
        low = reader.operand()
        reader.take("AND")
        return ("BETWEEN", left, low, reader.operand())
    if operator not in ("=", "<>", "<", "<=", ">", ">="):
        raise Unsupported(f"comparison {operator!r}")
    return ("CMP", operator, left, reader.operand())


# ---- evaluation -------------------------------------------------------------------------------
def _names(path: Path, names: dict[str, str]) -> list[str]:
    resolved = []
    for part in path.parts:
        if part.startswith("#"):
            if part not in names:
                raise Invalid(
                    f"An expression attribute name used in the document path is not defined: {part}"
                )
            resolved.append(names[part])
        else:
            resolved.append(part)
    return resolved


def _get(item: Item, path: Path, names: dict[str, str]) -> Value | None:
    parts = _names(path, names)
    value: Value | None = item.get(parts[0])
    for part in parts[1:]:
        if value is None or "M" not in value:
            return None
        value = value["M"].get(part)
    return value


def _value(operand: Any, item: Item, names: dict[str, str], values: dict[str, Value]) -> Value | None:
    if isinstance(operand, Placeholder):
        if operand.name not in values:
            raise Invalid(f"An expression attribute value used in expression is not defined: {operand.name}")
        return values[operand.name]
    if isinstance(operand, Path):
        return _get(item, operand, names)
    if isinstance(operand, Call) and operand.function == "if_not_exists":
        present = _get(item, operand.args[0], names)
        return present if present is not None else _value(operand.args[1], item, names, values)
    if isinstance(operand, Arithmetic):
        left, right = (_value(side, item, names, values) for side in (operand.left, operand.right))
        if left is None or right is None or "N" not in left or "N" not in right:
            raise Invalid("The provided operand for arithmetic is missing or not a number")
        total = int(left["N"]) + (int(right["N"]) if operand.operator == "+" else -int(right["N"]))
        return {"N": str(total)}
    raise Unsupported(f"operand {operand!r}")


def _comparable(value: Value | None) -> tuple[str, Any] | None:
    if value is None:
        return None
    if "N" in value:
        return ("N", int(value["N"]))
    if "S" in value:
        return ("S", value["S"])
    return ("other", repr(sorted(value.items())))


def evaluate(tree: Any, item: Item, names: dict[str, str], values: dict[str, Value]) -> bool:
    """Whether a parsed condition holds on ``item`` (an absent item is ``{}``)."""
    kind = tree[0]
    if kind == "AND":
        return evaluate(tree[1], item, names, values) and evaluate(tree[2], item, names, values)
    if kind == "OR":
        return evaluate(tree[1], item, names, values) or evaluate(tree[2], item, names, values)
    if kind == "NOT":
        return not evaluate(tree[1], item, names, values)
    if kind == "CALL":
        call: Call = tree[1]
        if call.function == "attribute_exists":
            return _get(item, call.args[0], names) is not None
        if call.function == "attribute_not_exists":
            return _get(item, call.args[0], names) is None
        if call.function == "begins_with":
            value, prefix = (
                _value(call.args[0], item, names, values),
                _value(call.args[1], item, names, values),
            )
            return bool(value and prefix and "S" in value and value["S"].startswith(prefix.get("S", "\0")))
        raise Unsupported(f"function {call.function}")
    if kind == "BETWEEN":
        value, low, high = (_comparable(_value(side, item, names, values)) for side in tree[1:])
        if value is None or low is None or high is None or not value[0] == low[0] == high[0]:
            return False
        return bool(low[1] <= value[1] <= high[1])
    _, operator, left_operand, right_operand = tree
    left = _comparable(_value(left_operand, item, names, values))
    right = _comparable(_value(right_operand, item, names, values))
    if left is None or right is None:
        return operator == "<>" and (left is None) != (right is None)
    if operator == "=":
        return left == right
    if operator == "<>":
        return left != right
    if left[0] != right[0]:
        return False
    return {
        "<": left[1] < right[1],
        "<=": left[1] <= right[1],
        ">": left[1] > right[1],
        ">=": left[1] >= right[1],
    }[operator]


def _set(item: Item, parts: list[str], value: Value | None) -> None:
    """Set (or with None remove) a path; a path into a map that is not there is invalid."""
    target: dict[str, Value] = item
    for part in parts[:-1]:
        inner = target.get(part)
        if inner is None or "M" not in inner:
            raise Invalid("The document path provided in the update expression is invalid for update")
        inner = {"M": dict(inner["M"])}  # copy on write: items handed out before stay as they were
        target[part] = inner
        target = inner["M"]
    if value is None:
        target.pop(parts[-1], None)
    else:
        target[parts[-1]] = value


def apply_update(
    actions: tuple[tuple[str, Any, Any], ...], item: Item, names: dict[str, str], values: dict[str, Value]
) -> Item:
    """A new item: ``actions`` applied to ``item`` (all operands read from the item as it was)."""
    result = dict(item)
    computed = []
    for clause, path, operand in actions:
        if clause == "SET":
            computed.append((clause, path, _value(operand, item, names, values)))
        elif clause == "ADD":
            amount = _value(operand, item, names, values)
            present = _get(item, path, names)
            if amount is None or "N" not in amount or (present is not None and "N" not in present):
                raise Invalid("An operand in the update expression has an incorrect data type")
            base = int(present["N"]) if present is not None else 0
            computed.append((clause, path, {"N": str(base + int(amount["N"]))}))
        else:
            computed.append((clause, path, None))
    for clause, path, value in computed:
        _set(result, _names(path, names), value if clause != "REMOVE" else None)
    return result
