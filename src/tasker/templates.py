"""Load task templates from YAML text, files and directories (templates.md).

Every problem in every file is collected and raised together as one ``TemplateError``, one line
per problem: ``<file>[:<line>]: template <ns>/<name>@<ver>: <where>: <what>``. Warnings (unknown
keys, legacy spellings, values outside the original's recommended ranges) use the same format and
go to the ``tasker.templates`` logger; they never stop a template from loading.

YAML is read with YAML 1.2 core rules, as the original's parser does: ``yes``/``on`` stay strings,
``12:30`` is not a number, dates are not converted. A key repeated in one mapping is an error.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from tasker.domain.template import TaskTemplate
from tasker.errors import TemplateError
from tasker.template_parsing.document import parse_template, template_label
from tasker.template_parsing.fields import PathPart, Problem, Report, Where, describe

__all__ = ["load_template_file", "load_template_text", "load_templates"]

logger = logging.getLogger("tasker.templates")

_SUFFIXES = (".yaml", ".yml")


class _Yaml12Loader(yaml.SafeLoader):
    """SafeLoader with YAML 1.2 core schema resolution instead of PyYAML's YAML 1.1."""


_Yaml12Loader.yaml_implicit_resolvers = {}
for _tag, _pattern, _first in (
    ("null", r"~|null|Null|NULL|", ["~", "n", "N", ""]),
    ("bool", r"true|True|TRUE|false|False|FALSE", list("tTfF")),
    ("int", r"[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+", list("-+0123456789")),
    (
        "float",
        r"[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?"
        r"|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN)",
        list("-+.0123456789"),
    ),
    ("merge", r"<<", ["<"]),
):
    _Yaml12Loader.add_implicit_resolver(
        f"tag:yaml.org,2002:{_tag}", re.compile(f"^(?:{_pattern})$"), _first
    )


def _construct_int(loader: yaml.SafeLoader, node: Node) -> int:
    """YAML 1.2 ints: ``017`` is seventeen (not octal), ``0o17`` and ``0x1f`` are prefixed."""
    text = str(loader.construct_scalar(node))  # type: ignore[arg-type]  # an int tag is scalar
    if text.startswith(("0o", "0x")):
        return int(text, 0)
    return int(text, 10)


_SURROGATE = re.compile("[\ud800-\udfff]")


def _construct_str(loader: yaml.SafeLoader, node: Node) -> str:
    """Join UTF-16 surrogate pairs: JSON text (which is YAML) writes an emoji as two ``\\u``
    escapes, which PyYAML would otherwise keep as two lone surrogates."""
    text = str(loader.construct_scalar(node))  # type: ignore[arg-type]  # a str tag is scalar
    if not _SURROGATE.search(text):
        return text
    try:
        return text.encode("utf-16", "surrogatepass").decode("utf-16")
    except UnicodeDecodeError:
        raise yaml.constructor.ConstructorError(
            None, None, "string contains an unpaired UTF-16 surrogate escape", node.start_mark
        ) from None


_Yaml12Loader.add_constructor("tag:yaml.org,2002:int", _construct_int)
_Yaml12Loader.add_constructor("tag:yaml.org,2002:str", _construct_str)


@dataclass(slots=True)
class _Document:
    """One YAML document of a file: its data and the line (1-based) of each path in it."""

    data: Any
    lines: dict[tuple[PathPart, ...], int]
    duplicates: list[tuple[tuple[PathPart, ...], int]]

    def line_of(self, path: tuple[PathPart, ...]) -> int | None:
        """The line of ``path``, or of its nearest ancestor that has one."""
        while True:
            if path in self.lines:
                return self.lines[path]
            if not path:
                return None
            path = path[:-1]


def load_template_text(text: str, source: str = "<string>") -> TaskTemplate:
    """Load the one template in ``text`` (YAML, or JSON, which is YAML too).

    Args:
        text: the document.
        source: what to call it in messages (a file name).

    Returns:
        The validated template.

    Raises:
        TemplateError: every problem found, one per line; also when ``text`` holds no template
            or more than one (use ``load_templates`` for multi-document files).
    """
    loaded, problems = _load_text(text, source)
    templates = [template for template, _ in loaded]
    if not problems and len(templates) != 1:
        problems = [
            f"{source}: expected one template, found {len(templates)}"
            + ("; load multi-document files with load_templates" if templates else "")
        ]
    if problems:
        raise TemplateError(problems)
    return templates[0]


def load_template_file(path: str | Path) -> TaskTemplate:
    """Load the one template in a YAML file.

    Args:
        path: the file.

    Returns:
        The validated template.

    Raises:
        TemplateError: the file cannot be read, holds no template or several, or the template
            is invalid; every problem is listed.
    """
    source = str(path)
    text = _read(Path(path), source)
    if isinstance(text, list):
        raise TemplateError(text)
    return load_template_text(text, source)


def load_templates(paths: Iterable[str | Path]) -> list[TaskTemplate]:
    """Load every template under ``paths``, all or nothing.

    Directories are searched recursively for ``*.yaml`` and ``*.yml`` (sorted; names starting
    with a dot are skipped); a file may hold several templates, one per YAML document.

    Args:
        paths: files and directories.

    Returns:
        The templates, in file order then document order.

    Raises:
        TemplateError: every problem in every file, or two templates with the same namespace,
            name and version; nothing is returned if there is any.
    """
    templates: list[TaskTemplate] = []
    problems: list[str] = []
    seen: dict[tuple[str, str, str], str] = {}
    for file in _files(paths, problems):
        source = str(file)
        text = _read(file, source)
        if isinstance(text, list):
            problems.extend(text)
            continue
        loaded, file_problems = _load_text(text, source)
        problems.extend(file_problems)
        for template, origin in loaded:
            if template.key in seen:
                problems.append(
                    f"{origin}: template {template.label}: defined twice (also "
                    f"{seen[template.key]}); each namespace, name and version must be defined once"
                )
            else:
                seen[template.key] = origin
                templates.append(template)
    if problems:
        raise TemplateError(problems)
    return templates


def _files(paths: Iterable[str | Path], problems: list[str]) -> Iterator[Path]:
    for given in paths:
        path = Path(given)
        if path.is_dir():
            found = (
                p
                for p in path.rglob("*")
                if p.suffix in _SUFFIXES
                and p.is_file()
                and not any(part.startswith(".") for part in p.relative_to(path).parts)
            )
            yield from sorted(found)
        elif path.is_file():
            yield path
        else:
            problems.append(f"{given}: no such file or directory")


def _read(path: Path, source: str) -> str | list[str]:
    """The file's text, or the problem lines saying why it cannot be read."""
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        return [f"{source}: not UTF-8 text ({exc.reason} at byte {exc.start})"]
    except OSError as exc:
        return [f"{source}: cannot read: {exc.strerror or exc}"]


def _load_text(text: str, source: str) -> tuple[list[tuple[TaskTemplate, str]], list[str]]:
    """Each valid template with its ``source:line``, and the error lines; logs the warnings."""
    documents = _parse_yaml(text, source)
    if isinstance(documents, str):
        return [], [documents]
    templates: list[tuple[TaskTemplate, str]] = []
    errors: list[str] = []
    for doc in documents:
        origin = _location(source, doc.line_of(()))
        if not isinstance(doc.data, dict):
            errors.append(
                f"{origin}: a template must be a mapping of fields, got {describe(doc.data)}"
            )
            continue
        report = Report()
        for path, repeat_line in doc.duplicates:
            report.error(_where_of(path), f"key repeated in the same mapping (line {repeat_line})")
        template = parse_template(report, doc.data)
        label = template_label(doc.data)
        for problem in report.problems:
            line = _format(source, doc, label, problem)
            if problem.is_error:
                errors.append(line)
            else:
                logger.warning("%s", line)
        if template is not None and not report.has_errors:
            templates.append((template, origin))
    return templates, errors


def _where_of(path: tuple[PathPart, ...]) -> Where:
    where = Where()
    for part in path:
        where = where.item(part) if isinstance(part, int) else where.key(part)
    return where


def _format(source: str, doc: _Document, label: str, problem: Problem) -> str:
    parts = [_location(source, doc.line_of(problem.where.path)), f"template {label}"]
    if problem.where.label:
        parts.append(problem.where.label)
    parts.append(problem.message)
    return ": ".join(parts)


def _location(source: str, line: int | None) -> str:
    return source if line is None else f"{source}:{line}"


def _parse_yaml(text: str, source: str) -> list[_Document] | str:
    """Every non-empty document in ``text``, or the one-line syntax error."""
    loader = _Yaml12Loader(text)
    documents: list[_Document] = []
    try:
        while loader.check_node():
            node = loader.get_node()
            if node is None:
                continue
            data = loader.construct_document(node)
            if data is None:
                continue
            lines: dict[tuple[PathPart, ...], int] = {}
            duplicates: list[tuple[tuple[PathPart, ...], int]] = []
            _index(node, (), lines, duplicates, set())
            documents.append(_Document(data, lines, duplicates))
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"{source}:{mark.line + 1}" if mark else source
        column = f" (column {mark.column + 1})" if mark else ""
        return f"{where}: invalid YAML: {exc.problem or exc.context}{column}"
    except (yaml.YAMLError, ValueError, RecursionError) as exc:
        return f"{source}: invalid YAML: {exc}"
    finally:
        loader.dispose()
    return documents


def _index(
    node: Node,
    path: tuple[PathPart, ...],
    lines: dict[tuple[PathPart, ...], int],
    duplicates: list[tuple[tuple[PathPart, ...], int]],
    seen: set[int],
) -> None:
    """Record the line of every key and list item; each node is walked once, so aliases cannot
    make this loop or blow up (paths under an alias fall back to the alias's own line)."""
    lines.setdefault(path, node.start_mark.line + 1)
    if id(node) in seen:
        return
    seen.add(id(node))
    if isinstance(node, MappingNode):
        first: dict[str, int] = {}
        for key, value in node.value:
            if not isinstance(key, ScalarNode) or key.value == "<<":
                continue
            line = key.start_mark.line + 1
            child = (*path, key.value)
            if key.value in first:
                duplicates.append((child, line))
                continue
            first[key.value] = line
            lines[child] = line
            _index(value, child, lines, duplicates, seen)
    elif isinstance(node, SequenceNode):
        for i, item in enumerate(node.value):
            _index(item, (*path, i), lines, duplicates, seen)
