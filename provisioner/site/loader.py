"""Read a site file: fast parse for the common case, positions only when they are needed.

The happy path parses with yaml-rs (Rust, YAML 1.2 core schema, rejects duplicate keys): an
8 MB site parses in well under a second, where PyYAML's C loader needs about five. Only when
something is wrong do we compose the document again with PyYAML, whose nodes carry line and
column marks, to point every problem at its source.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
import yaml_rs

from provisioner.errors import Problem, SiteInvalid

PathKey = tuple[str | int, ...]

_Loader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_YAML_RS_POSITION = re.compile(r"line (\d+), column (\d+)")


@dataclass
class Mark:
    line: int  # 1-based
    column: int  # 1-based


@dataclass
class SourceMap:
    """Where each key and value of a document is, by path (keys and list indexes)."""

    keys: dict[PathKey, Mark] = field(default_factory=dict)
    values: dict[PathKey, Mark] = field(default_factory=dict)
    duplicates: list[tuple[PathKey, Mark]] = field(default_factory=list)

    def locate(self, path: PathKey, at_key: bool = False) -> Mark:
        """The mark of `path`, or of its closest existing ancestor key."""
        if path in self.values:
            if at_key and path in self.keys:
                return self.keys[path]
            return self.values[path]
        for cut in range(len(path) - 1, 0, -1):
            prefix = path[:cut]
            if prefix in self.keys:
                return self.keys[prefix]
            if prefix in self.values:
                return self.values[prefix]
        return self.values.get((), Mark(1, 1))


def _mark(m: Any) -> Mark:
    return Mark(m.line + 1, m.column + 1)


def _walk(node: yaml.Node, path: PathKey, smap: SourceMap) -> None:
    smap.values[path] = _mark(node.start_mark)
    if isinstance(node, yaml.MappingNode):
        seen: set[str] = set()
        for key_node, value_node in node.value:
            key = str(key_node.value) if isinstance(key_node, yaml.ScalarNode) else repr(key_node.value)
            child = (*path, key)
            if key in seen:
                smap.duplicates.append((child, _mark(key_node.start_mark)))
                continue
            seen.add(key)
            smap.keys[child] = _mark(key_node.start_mark)
            _walk(value_node, child, smap)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            _walk(item, (*path, index), smap)


def source_map(text: str) -> tuple[SourceMap, Problem | None]:
    """Compose with PyYAML to learn positions; a syntax error comes back as a Problem."""
    smap = SourceMap()
    try:
        node = yaml.compose(text, Loader=_Loader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, col = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        message = f"YAML syntax error: {exc.problem or exc.context}"
        return smap, Problem("", line, col, "", message, "check indentation, quotes and brackets")
    except yaml.YAMLError as exc:  # composer errors without marks, e.g. several documents
        return smap, Problem("", 1, 1, "", f"YAML error: {exc}", "")
    if node is not None:
        _walk(node, (), smap)
    return smap, None


def read_text(path: Path) -> str:
    """The file's text, or a clear error for a missing file, a directory or binary data."""
    name = str(path)
    if not path.exists():
        raise SiteInvalid([Problem(name, 1, 1, "", "file not found", "check the path")])
    if path.is_dir():
        raise SiteInvalid([Problem(name, 1, 1, "", "is a directory, not a site file", "name the site.yaml inside it")])
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise SiteInvalid([Problem(name, 1, 1, "", f"cannot read: {exc.strerror}", "")]) from None
    if b"\x00" in raw:
        offset = raw.index(b"\x00")
        line = raw.count(b"\n", 0, offset) + 1
        raise SiteInvalid([Problem(name, line, 1, "", "binary data (NUL byte), not a YAML text file", "")])
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        raise SiteInvalid([Problem(name, line, 1, "", "not valid UTF-8 text", "save the file as UTF-8")]) from None
    return text.removeprefix("\ufeff")


def parse(text: str, name: str) -> Any:
    """Parse YAML text into plain Python data; syntax errors and duplicate keys are Problems."""
    try:
        return yaml_rs.loads(text, parse_datetime=False)
    except yaml_rs.YAMLDecodeError as exc:
        fast_error = str(exc)
    smap, syntax = source_map(text)
    problems = [
        Problem(name, m.line, m.column, dotted(p), "duplicate key", "each key may appear only once in a mapping; merge the two entries")
        for p, m in smap.duplicates
    ]
    if syntax is not None:
        problems.append(Problem(name, syntax.line, syntax.column, "", syntax.message, syntax.hint))
    if not problems:
        found = _YAML_RS_POSITION.search(fast_error)
        line, col = (int(found.group(1)), int(found.group(2))) if found else (1, 1)
        first = fast_error.splitlines()[-1] if fast_error else "YAML error"
        problems.append(Problem(name, line, col, "", f"YAML error: {first}", ""))
    raise SiteInvalid(problems)


def dotted(path: PathKey) -> str:
    """`domains.acme.example.mailboxes.alice` (list indexes as `[0]`)."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + part
    return out
