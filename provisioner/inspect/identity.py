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


class Alignment(StrEnum):
    STRICT = "strict"  # the same domain: aligned under adkim=s / aspf=s too
    RELAXED = "relaxed"  # same organizational domain only: aligned under the default r
    NONE = "none"  # different organizations
    UNKNOWN = "unknown"  # one side is missing


@dataclass(frozen=True)
class Mailbox:
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
    except idna.IDNAError:
        return domain


@lru_cache(maxsize=1)
def _psl():  # type: ignore[no-untyped-def]
    from publicsuffixlist import PublicSuffixList

    return PublicSuffixList()


def organizational_domain(domain: str) -> str:
    """RFC 7489 §3.2: the registered domain under the Public Suffix List (one label below the
    public suffix); a public suffix itself is its own organizational domain."""
    domain = normal_domain(domain)
    if not domain:
        return ""
    return _psl().privatesuffix(domain) or domain


def alignment(identifier: str, from_domain: str) -> Alignment:
    a, b = normal_domain(identifier), normal_domain(from_domain)
    if not a or not b:
        return Alignment.UNKNOWN
    if a == b:
        return Alignment.STRICT
    if organizational_domain(a) == organizational_domain(b):
        return Alignment.RELAXED
    return Alignment.NONE


def aligned(identifier: str, from_domain: str, mode: str = "r") -> bool:
    """Aligned under adkim/aspf `mode` ('r' relaxed, 's' strict)."""
    found = alignment(identifier, from_domain)
    return found is Alignment.STRICT or (found is Alignment.RELAXED and mode != "s")


def mailboxes(value: str) -> list[Mailbox]:
    """RFC 5322 §3.4 address list, display names decoded."""
    from provisioner.inspect.message import decode_value

    return [Mailbox(decode_value(name), addr) for name, addr in email.utils.getaddresses([value]) if addr or name]


def return_path(value: str) -> Mailbox | None:
    """RFC 5322 §3.6.7 Return-Path: `<addr>` or the null path `<>` (a bounce)."""
    text = value.strip()
    if text.replace(" ", "") == "<>":
        return Mailbox("", "")
    _, addr = email.utils.parseaddr(text)
    return Mailbox("", addr) if addr else None
