"""Read a site file: fast parse for the common case, positions only when they are needed.

The happy path parses with yaml-rs (Rust, YAML 1.2 core schema, rejects duplicate keys): an
8 MB site parses in well under a second, where PyYAML's C loader needs about five. Only when
something is wrong do we read the file again as a stream of PyYAML events, whose marks carry
line and column, to point every problem at its source.

The file arrives in pull requests, so it is hostile until proven otherwise: it is read only up
to MAX_BYTES, aliases are refused (one alias to a nested list is the "billion laughs"), explicit
tags are refused (yaml-rs ignores unknown ones), and node count and nesting depth are capped.
The event stream is never kept: memory is bounded by the file size plus the positions asked for.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import idna
import yaml
import yaml_rs

from provisioner.errors import Problem, SiteInvalid

PathKey = tuple[str | int, ...]

# A 5,000-domain site with 50,000 mailboxes (bench/gen_site.py) is 9 MB and 430,000 nodes.
MAX_BYTES = 16 * 1024 * 1024
MAX_NODES = 1_000_000
MAX_DEPTH = 32  # the deepest key of the model is 6 levels down
# Non-ASCII text in a site file is an IDN domain name (local parts, hashes and keys are ASCII),
# and each costs an IDNA 2008 conversion of about 20 us: a million would take half a minute.
MAX_NON_ASCII = 20_000

_Loader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_YAML_RS_POSITION = re.compile(r"line (\d+), column (\d+)")
# Any alias is an error in yaml-rs: none is replayed, so none can multiply the document.
_NO_ALIASES = yaml_rs.AliasLimits(max_total_replayed_events=0, max_replay_stack_depth=0, max_alias_expansions_per_anchor=0)
_NODE_EVENTS = (yaml.ScalarEvent, yaml.SequenceStartEvent, yaml.MappingStartEvent, yaml.AliasEvent)


@dataclass
class Mark:
    line: int  # 1-based
    column: int  # 1-based


@dataclass
class SourceMap:
    """Where keys and values of a document are, by path as written and with keys in lower case."""

    keys: dict[PathKey, Mark] = field(default_factory=dict)
    values: dict[PathKey, Mark] = field(default_factory=dict)

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


def _fold(part: str | int) -> str | int:
    return part.lower() if isinstance(part, str) else part


def spellings(path: PathKey) -> list[PathKey]:
    """Spellings `path` may have in the file, best first: as is, in lower case, as Unicode (IDN)."""
    out: list[PathKey] = [()]
    for part in path:
        options = list(dict.fromkeys([part, _fold(part)]))
        if isinstance(part, str) and "xn--" in part.lower():
            try:
                options.append(idna.decode(part.lower()))
            except (idna.IDNAError, UnicodeError):
                pass
        out = [(*prefix, option) for prefix in out for option in options][:16]
    return out


@dataclass
class _Frame:
    path: PathKey | None  # as written; None inside a complex key (not addressable)
    folded: PathKey
    is_map: bool
    index: int = 0
    expecting_key: bool = True
    key: str = ""
    seen: set[str] = field(default_factory=set)


MAX_SCAN_PROBLEMS = 1000


class _Enough(Exception):
    """Raised inside scan() once it has MAX_SCAN_PROBLEMS problems."""


@dataclass
class Scan:
    problems: list[Problem] = field(default_factory=list)
    smap: SourceMap = field(default_factory=SourceMap)


def scan(text: str, name: str, wanted: Iterable[PathKey] = ()) -> Scan:
    """Read the event stream once: limits, aliases, tags, duplicate keys, and marks of `wanted` paths.

    Nothing is composed, so a hostile file costs its parse and no more; it stops at the first
    limit exceeded or syntax error.
    """
    want = {path[:cut] for path in wanted for cut in range(len(path) + 1)}
    result = Scan()
    problems, smap = result.problems, result.smap
    stack: list[_Frame] = []
    nodes = non_ascii = 0

    def problem(mark: Any, path: PathKey | None, message: str, hint: str) -> None:
        where = _mark(mark)
        problems.append(Problem(name, where.line, where.column, dotted(path or ()), message, hint))
        if len(problems) >= MAX_SCAN_PROBLEMS:  # a million duplicate keys need not be a million lines
            raise _Enough

    try:
        for event in yaml.parse(text, Loader=_Loader):
            if isinstance(event, (yaml.SequenceEndEvent, yaml.MappingEndEvent)):
                stack.pop()
                continue
            if not isinstance(event, _NODE_EVENTS):
                continue
            nodes += 1
            if nodes > MAX_NODES:
                problem(event.start_mark, None, f"more than {MAX_NODES:,} values: too large for a site file", "split the site, or look for generated junk")
                break
            path: PathKey | None = ()
            folded: PathKey = ()
            is_key = False
            if stack:
                top = stack[-1]
                if top.path is None:
                    path = None
                elif not top.is_map:
                    path = (*top.path, top.index)
                    folded = (*top.folded, top.index) if want else ()
                    top.index += 1
                else:
                    if top.expecting_key:
                        is_key = True
                        top.key = str(event.value) if isinstance(event, yaml.ScalarEvent) else f"<{type(event).__name__}>"
                    top.expecting_key = not top.expecting_key
                    path = (*top.path, top.key)
                    folded = (*top.folded, str(_fold(top.key))) if want else ()
                    if is_key and top.key in top.seen:
                        problem(event.start_mark, path, "duplicate key", "each key may appear only once in a mapping; merge the two entries")
                    top.seen.add(top.key)
            if isinstance(event, yaml.ScalarEvent) and not event.value.isascii():
                non_ascii += 1
                if non_ascii > MAX_NON_ASCII:
                    hint = "a site file holds non-ASCII text only in internationalised domain names"
                    problem(event.start_mark, path, f"more than {MAX_NON_ASCII:,} non-ASCII names", hint)
                    break
            if isinstance(event, yaml.AliasEvent):
                problem(event.start_mark, path, f"alias *{event.anchor}: a site file does not use anchors and aliases", "write the value out in full")
            elif event.tag is not None:
                problem(event.start_mark, path, f"YAML tag {event.tag} is not accepted", "remove the tag; quote the value if it must be text")
            if path is not None and want:
                marks = smap.keys if is_key else smap.values
                for spelling in (path, folded):
                    if spelling in want:
                        marks.setdefault(spelling, _mark(event.start_mark))
            if isinstance(event, (yaml.SequenceStartEvent, yaml.MappingStartEvent)):
                if len(stack) >= MAX_DEPTH:
                    problem(event.start_mark, path, f"nested more than {MAX_DEPTH} levels deep", "a site file needs at most 6")
                    break
                stack.append(_Frame(None if is_key else path, folded, isinstance(event, yaml.MappingStartEvent)))
    except _Enough:
        problems.append(Problem(name, 1, 1, "", f"stopped reading after {MAX_SCAN_PROBLEMS} problems", "fix these first"))
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, col = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        problems.append(Problem(name, line, col, "", f"YAML syntax error: {exc.problem or exc.context}", _syntax_hint(text, exc)))
    except yaml.YAMLError as exc:  # errors without marks
        problems.append(Problem(name, 1, 1, "", f"YAML error: {exc}", ""))
    return result


# A password hash pasted unquoted: `password: {ARGON2ID}$argon2id$...` starts a YAML flow
# mapping at '{' (YAML 1.2 §7.4), so the text after '}' is a syntax error.
_UNQUOTED_HASH = re.compile(r"""(?<!['"])\{[A-Z][A-Z0-9.-]*\}\$""")


def _syntax_hint(text: str, exc: yaml.MarkedYAMLError) -> str:
    for mark in (exc.problem_mark, exc.context_mark):
        if mark is None:
            continue
        lines = text.split("\n", mark.line + 1)
        # The mark may stand past the last line (a flow mapping left open at the end of the file).
        found = _UNQUOTED_HASH.search(lines[mark.line][:4096]) if mark.line < len(lines) else None
        if found:
            scheme = found.group(0)[:-1]
            return f"a password hash must be quoted: YAML reads {scheme} as a mapping; write password: '{scheme}$...' as `provision passwd` prints it"
    return "check indentation, quotes and brackets"


def read_text(path: Path) -> str:
    """The file's text, or a clear error for a missing file, a directory, a huge file or binary data."""
    name = str(path)
    if not path.exists():
        raise SiteInvalid([Problem(name, 1, 1, "", "file not found", "check the path")])
    if path.is_dir():
        raise SiteInvalid([Problem(name, 1, 1, "", "is a directory, not a site file", "name the site.yaml inside it")])
    try:
        with path.open("rb") as stream:
            raw = stream.read(MAX_BYTES + 1)
    except OSError as exc:
        raise SiteInvalid([Problem(name, 1, 1, "", f"cannot read: {exc.strerror}", "")]) from None
    if len(raw) > MAX_BYTES:
        raise SiteInvalid([Problem(name, 1, 1, "", f"larger than {MAX_BYTES // 2**20} MiB: too large for a site file", "is this the right file?")])
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


def _within_limits(data: Any) -> bool:
    """Node count, depth and non-ASCII names of parsed data, counted like scan() counts events.

    Walked one depth at a time (no depth carried per value): 0.12 -> 0.05 s for the 5,000-domain
    site's 700,000 values. The counts only grow, so checking them once per depth decides the same."""
    nodes = non_ascii = 0
    level: list[Any] = [data]
    depth = 0
    while level:
        if depth > MAX_DEPTH:
            return False
        nodes += len(level)
        deeper: list[Any] = []
        for value in level:
            if isinstance(value, str):
                non_ascii += not value.isascii()
            elif isinstance(value, dict):
                nodes += len(value)
                non_ascii += sum(1 for key in value if isinstance(key, str) and not key.isascii())
                deeper.extend(value.values())
            elif isinstance(value, list):
                deeper.extend(value)
        if nodes > MAX_NODES or non_ascii > MAX_NON_ASCII:
            return False
        level, depth = deeper, depth + 1
    return True


def _may_exceed_limits(text: str) -> bool:
    """Could the text hold more than MAX_NODES nodes? A line holds a key and its value, and each
    flow or block indicator opens at most two more (`[a`, `{a: b`, `- - a`): a cheap upper estimate
    that sends dense files to the streaming scan before yaml-rs builds them (`_within_limits`
    still counts exactly)."""
    return 2 * (sum(text.count(indicator) for indicator in ",[{-?\n") + 1) + 1 > MAX_NODES


def parse(text: str, name: str) -> Any:
    """Parse YAML text into plain Python data; syntax errors, limits, aliases and tags are Problems."""
    if _may_exceed_limits(text) and (early := scan(text, name).problems):
        raise SiteInvalid(early)  # before yaml-rs builds millions of objects
    fast_error = ""
    try:
        data = yaml_rs.loads(text, parse_datetime=False, alias_limits=_NO_ALIASES)
    except yaml_rs.YAMLDecodeError as exc:
        fast_error = str(exc)
    else:
        # Aliases failed above; a tag needs a '!' somewhere, so most files skip the second read.
        if "!" not in text and _within_limits(data):
            return data
    problems = scan(text, name).problems
    if not problems and not fast_error:
        return data
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
