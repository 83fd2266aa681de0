"""Typed reading of YAML mappings, recording every problem with the path it concerns."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, TypeVar

from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError

__all__ = ["PathPart", "Problem", "Report", "Section", "Where", "describe", "json_problem"]

PathPart = str | int
E = TypeVar("E", bound=StrEnum)

_MAX_JSON_DEPTH = 64


@dataclass(frozen=True, slots=True)
class Where:
    """A position in the document: the raw path (to find a line) and its label for messages.

    The label names steps by index and name, as in ``steps[2] "ship".dependencies``.
    """

    path: tuple[PathPart, ...] = ()
    label: str = ""

    def key(self, name: str) -> Where:
        """The position of ``name`` inside this mapping."""
        return Where((*self.path, name), f"{self.label}.{name}" if self.label else name)

    def item(self, index: int, name: str | None = None) -> Where:
        """The position of list item ``index``, labelled with its name when it has one."""
        suffix = f' "{name}"' if name else ""
        return Where((*self.path, index), f"{self.label}[{index}]{suffix}")


@dataclass(frozen=True, slots=True)
class Problem:
    where: Where
    message: str
    is_error: bool


@dataclass(slots=True)
class Report:
    """Problems found in one template, errors and warnings in the order they were found."""

    problems: list[Problem] = field(default_factory=list)

    def error(self, where: Where, message: str) -> None:
        self.problems.append(Problem(where, message, is_error=True))

    def warn(self, where: Where, message: str) -> None:
        self.problems.append(Problem(where, message, is_error=False))

    @property
    def has_errors(self) -> bool:
        return any(p.is_error for p in self.problems)


def describe(value: Any) -> str:
    """A YAML-flavoured description of a value's type, for "must be X, got Y" messages."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return f"the boolean {str(value).lower()}"
    if isinstance(value, int | float):
        return f"the number {value!r}"
    if isinstance(value, str):
        return f'the string "{value}"'
    if isinstance(value, Mapping):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    return f"a {type(value).__name__}"


def json_problem(value: Any, depth: int = 0) -> str | None:
    """Why ``value`` is not plain JSON data (string keys, finite numbers), or ``None``.

    Templates are stored as JSON and read back elsewhere; a YAML-only value (an integer key, a
    binary or set tag, a NaN) would come back different, so it is refused at load.
    """
    if depth > _MAX_JSON_DEPTH:
        return f"nested more than {_MAX_JSON_DEPTH} levels deep"
    if value is None or isinstance(value, str | bool | int):
        return None
    if isinstance(value, float):
        return None if math.isfinite(value) else f"{value!r} is not a JSON number"
    if isinstance(value, list):
        problems = (json_problem(item, depth + 1) for item in value)
        return next((p for p in problems if p), None)
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                return f"key {key!r} is not a string"
            problem = json_problem(item, depth + 1)
            if problem:
                return problem
        return None
    return f"{describe(value)} is not JSON data"


class Section:
    """One mapping of the document being read.

    Each reader returns the converted value, or ``default`` when the key is absent or null (null
    means "not given" everywhere) or when the value is wrong, in which case a problem is recorded.

    Args:
        report: where problems go.
        where: the mapping's own position.
        raw: the mapping.
        known: keys this mapping may have; any other key gets one warning.
    """

    def __init__(
        self, report: Report, where: Where, raw: Mapping[str, Any], known: Iterable[str]
    ) -> None:
        self.report = report
        self.where = where
        self.raw = raw
        known_keys = frozenset(known)
        for key in raw:
            if key not in known_keys:
                report.warn(where.key(str(key)), "unknown key, ignored")

    def at(self, key: str) -> Where:
        return self.where.key(key)

    def has(self, key: str) -> bool:
        return self.raw.get(key) is not None

    def missing(self, key: str) -> None:
        self.report.error(self.at(key), "required field is missing")

    def wrong(self, key: str, expected: str) -> None:
        self.report.error(self.at(key), f"must be {expected}, got {describe(self.raw[key])}")

    def text(self, key: str, *, required: bool = False, max_len: int | None = None) -> str | None:
        value = self.raw.get(key)
        if value is None:
            if required:
                self.missing(key)
            return None
        if not isinstance(value, str):
            self.wrong(key, "a string")
            return None
        if max_len is not None and len(value) > max_len:
            self.report.error(self.at(key), f"is {len(value)} characters long; at most {max_len}")
            return None
        return value

    def integer(
        self,
        key: str,
        low: int,
        high: int,
        default: int | None = None,
        advisory: tuple[int, int] | None = None,
    ) -> int | None:
        """An integer within the hard limits ``low..high``; outside ``advisory`` only warns."""
        value = self.raw.get(key)
        if value is None:
            return default
        if isinstance(value, bool) or not isinstance(value, int):
            self.wrong(key, "an integer")
            return default
        if not low <= value <= high:
            self.report.error(self.at(key), f"must be between {low} and {high}, got {value}")
            return default
        if advisory is not None and not advisory[0] <= value <= advisory[1]:
            self.report.warn(
                self.at(key),
                f"{value} is outside the recommended range {advisory[0]}..{advisory[1]}; accepted",
            )
        return value

    def flag(self, key: str, default: bool | None = None) -> bool | None:
        value = self.raw.get(key)
        if value is None:
            return default
        if not isinstance(value, bool):
            self.wrong(key, "true or false")
            return default
        return value

    def choice(self, key: str, enum: type[E], default: E | None = None) -> E | None:
        value = self.raw.get(key)
        if value is None:
            return default
        try:
            return enum(value)
        except ValueError:
            allowed = ", ".join(member.value for member in enum)
            self.report.error(self.at(key), f"must be one of {allowed}; got {describe(value)}")
            return default

    def words(self, key: str, allowed: Iterable[str], default: str) -> str:
        """A string from a fixed set that the domain keeps as plain ``str``."""
        value = self.raw.get(key)
        options = list(allowed)
        if value is None:
            return default
        if value not in options:
            self.report.error(
                self.at(key), f"must be one of {', '.join(options)}; got {describe(value)}"
            )
            return default
        return str(value)

    def mapping(self, key: str, *, required: bool = False) -> dict[str, Any] | None:
        value = self.raw.get(key)
        if value is None:
            if required:
                self.missing(key)
            return None
        if not isinstance(value, dict):
            self.wrong(key, "a mapping")
            return None
        return value

    def sequence(self, key: str, *, required: bool = False) -> list[Any] | None:
        value = self.raw.get(key)
        if value is None:
            if required:
                self.missing(key)
            return None
        if not isinstance(value, list):
            self.wrong(key, "a list")
            return None
        return value

    def string_list(self, key: str) -> list[str] | None:
        items = self.sequence(key)
        if items is None:
            return None
        good = True
        for i, item in enumerate(items):
            if not isinstance(item, str):
                self.report.error(self.at(key).item(i), f"must be a string, got {describe(item)}")
                good = False
        return items if good else None

    def json(self, key: str) -> Any:
        """Opaque data stored as it is; it only has to survive a trip through JSON."""
        value = self.raw.get(key)
        problem = json_problem(value)
        if problem:
            self.report.error(self.at(key), f"must be plain JSON data: {problem}")
            return None
        return value

    def schema(
        self, key: str, *, required: bool = False, strict: bool = True
    ) -> dict[str, Any] | None:
        """A JSON Schema object; invalid = error, or a warning if not ``strict``."""
        value = self.raw.get(key)
        if value is None:
            if required:
                self.missing(key)
            return None
        if not isinstance(value, dict):
            self.wrong(key, "a mapping (a JSON Schema object)")
            return None
        if self.json(key) is None:
            return None
        problem = schema_problem(value)
        if problem is None:
            return value
        if strict:
            self.report.error(self.at(key), problem)
            return None
        self.report.warn(self.at(key), problem + "; stored as is")
        return value


def schema_problem(schema: Any) -> str | None:
    """Why ``schema`` is not a valid JSON Schema (draft 2020-12 meta-schema), or ``None``."""
    try:
        Draft202012Validator.check_schema(schema)
    except SchemaError as exc:
        where = "/".join(str(p) for p in exc.absolute_path) or "top level"
        return f"not a valid JSON Schema: {exc.message} (at {where})"
    return None
