"""Who the message says it is from: envelope sender, From, Sender, and DMARC alignment.

RFC 7489 §3.1: an identifier is aligned with the From domain when it is the same domain
(strict) or has the same organizational domain (relaxed). The organizational domain is found
with the Public Suffix List (RFC 7489 §3.2); RFC 9989 replaces the list with a DNS tree walk,
which gives the same answer except where a domain publishes `psd=` (docs/inspect.md).
"""

from __future__ import annotations

import email.utils
from dataclasses import dataclass
from enum import StrEnum
from functools import lru_cache

import idna


class AlignmentResult(StrEnum):
    STRICT = "strict"  # the same domain: aligned under adkim=s / aspf=s too
    RELAXED = "relaxed"  # same organizational domain only: aligned under the default r
    NONE = "none"  # different organizations
    UNKNOWN = "unknown"  # one side is missing


@dataclass(frozen=True)
class HeaderAddress:
    display: str  # the display name, decoded
    address: str  # local@domain as written ("" for the null sender <>)

    @property
    def domain(self) -> str:
        return domain_of(self.address)


def domain_of(address: str) -> str:
    """The domain of an address, lower case, A-labels (so IDNs compare as DNS does)."""
    _, at, domain = address.rpartition("@")
    if not at:
        return ""
    return normal_domain(domain)


def normal_domain(domain: str) -> str:
    domain = domain.strip().strip("<>").rstrip(".").lower()
    if not domain:
        return ""
    try:
        return idna.encode(domain, uts46=True).decode("ascii")
    except UnicodeError:  # idna.IDNAError is one; a codec error too
        return domain


@dataclass(frozen=True)
class _Rules:
    normal: frozenset[str]
    wildcard: frozenset[str]  # "*.ck" stored as "ck"
    exception: frozenset[str]  # "!www.ck" stored as "www.ck"


@lru_cache(maxsize=1)
def _rules() -> _Rules:
    """The Public Suffix List as publicsuffixlist ships it (updated with that package), read
    into three sets: 20 ms, where building that package's own matcher takes 0.5 s per run."""
    from importlib.resources import files

    normal: set[str] = set()
    wildcard: set[str] = set()
    exception: set[str] = set()
    text = files("publicsuffixlist").joinpath("public_suffix_list.dat").read_text("utf-8")
    for line in text.splitlines():
        rule = line.strip().split(" ", 1)[0]
        if not rule or rule.startswith("//"):
            continue
        rule = rule.lstrip("!*.")
        rule = rule.lower() if rule.isascii() else normal_domain(rule)
        if line.startswith("!"):
            exception.add(rule)
        elif line.startswith("*."):
            wildcard.add(rule)
        else:
            normal.add(rule)
    return _Rules(frozenset(normal), frozenset(wildcard), frozenset(exception))


def public_suffix(domain: str) -> str:
    """publicsuffix.org's algorithm: the longest matching rule, an exception rule winning, and
    the implicit rule `*` (an unknown TLD is a public suffix of one label)."""
    rules = _rules()
    labels = domain.split(".")
    for i in range(len(labels)):
        name = ".".join(labels[i:])
        if name in rules.exception:
            return ".".join(labels[i + 1 :])
        if name in rules.normal:
            return name
        parent = ".".join(labels[i + 1 :])
        if i + 1 < len(labels) and parent in rules.wildcard and name not in rules.exception:
            return name
    return labels[-1]


def organizational_domain(domain: str) -> str:
    """RFC 7489 §3.2: the registered domain under the Public Suffix List (one label below the
    public suffix); a public suffix itself is its own organizational domain."""
    domain = normal_domain(domain)
    if not domain:
        return ""
    suffix = public_suffix(domain)
    if domain == suffix:
        return domain
    head = domain[: -len(suffix) - 1].rsplit(".", 1)[-1]
    return f"{head}.{suffix}"


def alignment(identifier: str, from_domain: str) -> AlignmentResult:
    a, b = normal_domain(identifier), normal_domain(from_domain)
    if not a or not b:
        return AlignmentResult.UNKNOWN
    if a == b:
        return AlignmentResult.STRICT
    if organizational_domain(a) == organizational_domain(b):
        return AlignmentResult.RELAXED
    return AlignmentResult.NONE


def aligned(identifier: str, from_domain: str, mode: str = "r") -> bool:
    """Aligned under adkim/aspf `mode` ('r' relaxed, 's' strict)."""
    found = alignment(identifier, from_domain)
    return found is AlignmentResult.STRICT or (found is AlignmentResult.RELAXED and mode != "s")


def mailboxes(value: str) -> list[HeaderAddress]:
    """RFC 5322 §3.4 address list, display names decoded. Nothing for a value too long or nested
    too deep for email.utils (it recurses once per comment level); parse_message notes those."""
    from provisioner.inspect.message import decode_value, parsable

    if not parsable(value):
        return []
    try:
        pairs = email.utils.getaddresses([value])
    except RecursionError:  # bounded by parsable(); kept so that no input can reach the user as a traceback
        return []
    return [HeaderAddress(decode_value(name), addr) for name, addr in pairs if addr or name]


def return_path(value: str) -> HeaderAddress | None:
    """RFC 5322 §3.6.7 Return-Path: `<addr>` or the null path `<>` (a bounce)."""
    from provisioner.inspect.message import parsable

    text = value.strip()
    if text.replace(" ", "") == "<>":
        return HeaderAddress("", "")
    if not parsable(text):
        return None
    try:
        _, addr = email.utils.parseaddr(text)
    except RecursionError:
        return None
    return HeaderAddress("", addr) if addr else None
