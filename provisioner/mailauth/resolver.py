"""DNS only: an injectable resolver that returns typed answers and never raises.

`provision check` asks every question through a `Resolver`. The real one (`DnsResolver`) is
dnspython, pointed at the system resolver or at `--nameserver IP[:PORT]`; `StaticResolver` answers
from a table for unit tests; `CachingResolver` remembers answers for the length of one run (the
SPF walk, pyspf and the DMARC report checks ask the same names again).
"""

from __future__ import annotations

import ipaddress
import threading
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Protocol

from provisioner.errors import ProvisionError

# dnspython (with its DoH/DoQ machinery, 0.1 s to import) is imported where a question is
# asked, so commands that only read (provision inspect without --verify) do not pay for it.


class Outcome(StrEnum):
    ANSWER = "answer"
    NXDOMAIN = "nxdomain"  # the name does not exist
    NODATA = "nodata"  # the name exists, but has no record of this type
    TIMEOUT = "timeout"  # no reply at all: timed out, or the network refused to carry the question
    SERVFAIL = "servfail"  # a reply, but no answer: SERVFAIL, REFUSED, a malformed reply


@dataclass(frozen=True)
class Answer:
    """What one question got. TXT values are the strings of one record joined without spaces
    (RFC 7208 §3.3, RFC 6376 §3.6.2.2); other types are dnspython's presentation form."""

    name: str  # absolute, with the trailing dot
    rdtype: str
    outcome: Outcome
    records: tuple[str, ...] = ()
    detail: str = ""

    @property
    def ok(self) -> bool:
        return self.outcome is Outcome.ANSWER

    @property
    def void(self) -> bool:
        """RFC 7208 §4.6.4: a void lookup is NXDOMAIN or NOERROR with no answer."""
        return self.outcome in (Outcome.NXDOMAIN, Outcome.NODATA)

    @property
    def failed(self) -> bool:
        return self.outcome in (Outcome.TIMEOUT, Outcome.SERVFAIL)

    def describe(self) -> str:
        if self.ok:
            return " | ".join(self.records)
        return {
            Outcome.NXDOMAIN: "NXDOMAIN (no such name)",
            Outcome.NODATA: f"no {self.rdtype} record",
            Outcome.TIMEOUT: f"no answer ({self.detail or 'timeout'})",
            Outcome.SERVFAIL: f"lookup failed ({self.detail or 'SERVFAIL'})",
        }[self.outcome]


class Resolver(Protocol):
    def resolve(self, name: str, rdtype: str) -> Answer:
        """Ask one question. `name` is made absolute; never raises."""
        ...


def absolute(name: str) -> str:
    """Names are always asked absolute: a relative name gets the search domain appended, which
    made DNSBL checks report false listings (BL-01: a search domain appended to a relative name)."""
    return name if name.endswith(".") else name + "."


@dataclass(frozen=True)
class Nameserver:
    ip: str
    port: int = 53

    @classmethod
    def parse(cls, text: str) -> Nameserver:
        """`IP`, `IPv4:PORT`, `[IPv6]:PORT` or a bare IPv6 address. Raises ValueError."""
        text = text.strip()
        host, port = text, 53
        if text.startswith("["):
            host, _, rest = text[1:].partition("]")
            if rest:
                if not rest.startswith(":"):
                    raise ValueError(f"{text!r}: expected [IPv6]:PORT")
                port = _port(rest[1:], text)
        elif text.count(":") == 1:
            host, _, port_text = text.partition(":")
            port = _port(port_text, text)
        try:
            ip = str(ipaddress.ip_address(host))
        except ValueError:
            raise ValueError(f"{text!r} is not an IP address (give the nameserver as IP or IP:PORT)") from None
        return cls(ip, port)

    def __str__(self) -> str:
        if self.port == 53:
            return self.ip
        return f"[{self.ip}]:{self.port}" if ":" in self.ip else f"{self.ip}:{self.port}"


def _port(text: str, whole: str) -> int:
    if not text.isdigit() or not 0 < int(text) < 65536:
        raise ValueError(f"{whole!r}: the port must be a number from 1 to 65535")
    return int(text)


def _rdata_text(rdata: object) -> str:
    strings = getattr(rdata, "strings", None)
    if strings is not None:
        return b"".join(strings).decode("utf-8", "replace")
    return str(rdata.to_text()).lower() if hasattr(rdata, "to_text") else str(rdata)  # type: ignore[union-attr]


class DnsResolver:
    """dnspython; the system resolver unless `nameservers` are given. One timeout bounds each
    question (all tries, all servers), so a dead server costs `timeout` seconds, not more; with
    several servers each try gets its share, so a dead first server leaves time for the next."""

    def __init__(self, nameservers: Sequence[Nameserver] | None = None, timeout: float = 2.0) -> None:
        import dns.nameserver
        import dns.resolver

        if nameservers:
            self._resolver = dns.resolver.Resolver(configure=False)
            self._resolver.nameservers = [dns.nameserver.Do53Nameserver(ns.ip, ns.port) for ns in nameservers]
        else:
            self._resolver = dns.resolver.Resolver(configure=True)
        self._resolver.timeout = timeout / max(1, len(self._resolver.nameservers))
        self._resolver.lifetime = timeout
        self._resolver.search = []
        self._resolver.use_search_by_default = False
        self.nameservers = tuple(nameservers or ())
        self.timeout = timeout

    def describe(self) -> str:
        if self.nameservers:
            return ", ".join(str(ns) for ns in self.nameservers)
        system = ", ".join(str(getattr(ns, "address", ns)) for ns in self._resolver.nameservers)
        return f"system resolver ({system})" if system else "system resolver"

    def resolve(self, name: str, rdtype: str) -> Answer:
        import dns.exception
        import dns.resolver

        qname = absolute(name)
        try:
            result = self._resolver.resolve(qname, rdtype, search=False, raise_on_no_answer=False)
        except dns.resolver.NXDOMAIN:
            return Answer(qname, rdtype, Outcome.NXDOMAIN)
        except dns.resolver.NoAnswer:
            return Answer(qname, rdtype, Outcome.NODATA)
        except dns.exception.Timeout:
            return Answer(qname, rdtype, Outcome.TIMEOUT)
        except dns.resolver.NoNameservers as exc:
            errors = exc.kwargs.get("errors") or []
            if errors and all(response is None and isinstance(error, OSError) for *_, error, response in errors):
                # no server replied: the network refused (ICMP unreachable on TCP, no route)
                return Answer(qname, rdtype, Outcome.TIMEOUT, detail=f"{type(errors[-1][3]).__name__}: {errors[-1][3]}"[:200])
            return Answer(qname, rdtype, Outcome.SERVFAIL, detail=str(exc)[:200])
        except (dns.exception.DNSException, OSError, ValueError) as exc:
            return Answer(qname, rdtype, Outcome.SERVFAIL, detail=f"{type(exc).__name__}: {exc}"[:200])
        if result.rrset is None:
            return Answer(qname, rdtype, Outcome.NODATA)
        return Answer(qname, rdtype, Outcome.ANSWER, tuple(_rdata_text(rd) for rd in result.rrset))


@dataclass
class StaticResolver:
    """Answers from a table, for unit tests: {(name, TYPE): [values] | Outcome}. A name that has
    some other type gets NODATA, an unknown name NXDOMAIN. Every question is recorded."""

    table: Mapping[tuple[str, str], Sequence[str] | Outcome]
    asked: list[tuple[str, str]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._table = {(absolute(n).lower(), t.upper()): v for (n, t), v in self.table.items()}
        self._names = {n for n, _ in self._table}

    def resolve(self, name: str, rdtype: str) -> Answer:
        qname = absolute(name).lower()
        self.asked.append((qname, rdtype))
        value = self._table.get((qname, rdtype.upper()))
        if isinstance(value, Outcome):
            return Answer(qname, rdtype, value)
        if value:
            return Answer(qname, rdtype, Outcome.ANSWER, tuple(value))
        return Answer(qname, rdtype, Outcome.NODATA if qname in self._names else Outcome.NXDOMAIN)


class CachingResolver:
    """Remembers every answer of one run (thread-safe); a new run makes a new cache, so a
    re-check after publishing sees the new records."""

    def __init__(self, inner: Resolver) -> None:
        self.inner = inner
        self._cache: dict[tuple[str, str], Answer] = {}
        self._lock = threading.Lock()

    def resolve(self, name: str, rdtype: str) -> Answer:
        key = (absolute(name).lower(), rdtype.upper())
        with self._lock:
            hit = self._cache.get(key)
        if hit is not None:
            return hit
        answer = self.inner.resolve(name, rdtype)
        with self._lock:
            self._cache[key] = answer
        return answer


# ---------------------------------------------------------------------------- is anyone there?


class ResolverUnreachable(ProvisionError):
    """The resolver itself gives no reply: every question would time out, and each row would
    blame a zone that is not at fault. Raised once, before any record is judged."""

    def __init__(self, resolver: str, option: str, silent: Sequence[Answer], timeout: float) -> None:
        asked = ", ".join(f"{a.rdtype} {a.name}" for a in silent)
        self.resolver = resolver
        super().__init__(
            f"the DNS resolver {resolver} gave no reply to {asked} ({silent[-1].describe()}, {timeout:g} s each): "
            "it is down, is not a DNS server, or a firewall drops the packets; nothing was checked. "
            f"Check the network and firewall (UDP and TCP to that address), or name a working resolver with {option} IP[:PORT]"
        )


def silent_probe(resolver: Resolver, zone: str) -> list[Answer]:
    """Ask `. NS` (any recursive resolver knows it; an authoritative one refuses at once), then
    `<zone> SOA`. Any reply, even REFUSED or NXDOMAIN, shows the server is there: return [].
    Two questions, so one lost packet does not condemn a resolver. Returns the questions that got
    no reply: both, when nobody is listening."""
    silent = []
    for name, rdtype in ((".", "NS"), (zone, "SOA")):
        answer = resolver.resolve(name, rdtype)
        if answer.outcome is not Outcome.TIMEOUT:
            return []
        silent.append(answer)
    return silent


# ---------------------------------------------------------------------------- query names


Address = ipaddress.IPv4Address | ipaddress.IPv6Address


def reverse_name(address: Address | str) -> str:
    """in-addr.arpa / ip6.arpa (nibbles) name of an address, absolute."""
    return absolute(ipaddress.ip_address(address).reverse_pointer)


def dnsbl_name(address: Address | str, zone: str) -> str:
    """RFC 5782 §2.1/§2.4: reversed octets for IPv4, 32 reversed nibbles for IPv6 (not 16-bit
    groups: BL-02), under the list's zone, absolute (BL-01)."""
    ip = ipaddress.ip_address(address)
    if ip.version == 4:
        labels: Iterable[str] = reversed(str(ip).split("."))
    else:
        labels = reversed(ip.exploded.replace(":", ""))
    return ".".join(labels) + "." + absolute(zone.rstrip(".").lower())
