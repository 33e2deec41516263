"""Ask a zone's authoritative servers themselves, not a resolver's cache (the rotation gate).

A recursive resolver answers from its cache: it may still hold the selector's absence (RFC 2308
negative caching) or an old value, and a provider's secondaries may lag the primary. So the gate
finds the zone's servers (NS, then their addresses) and asks each one directly, without recursion
(RD=0), and accepts only authoritative answers (AA=1, RFC 1035 §4.1.1). Every question has its
own timeout; a server that does not answer in time counts as not serving the record.

Everything a server says is hostile: values are kept as text (undecodable bytes replaced), their
number and length are bounded, and callers print them through textsafe.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

from provisioner.mailauth.resolver import Nameserver, Resolver, absolute

MAX_SERVERS = 16  # an NS set larger than this is hostile or broken; ask the first 16 (sorted)
MAX_VALUES = 16  # TXT records kept per answer
MAX_VALUE_CHARS = 4096  # a DKIM key record is < 1 KiB; longer values are cut


class Served(StrEnum):
    ANSWER = "answer"  # authoritative, with records of the type
    ABSENT = "absent"  # authoritative NXDOMAIN or NODATA
    NO_ANSWER = "no-answer"  # timeout, refused, not authoritative (lame), malformed


@dataclass(frozen=True)
class ServerAnswer:
    server: str  # as the user would name it: IP or IP:PORT
    outcome: Served
    values: tuple[str, ...] = ()  # TXT: the strings of one record joined (RFC 6376 §3.6.2.2)
    ttl: int = 0  # the answer's TTL (positive) or the negative TTL (RFC 2308 §5)
    detail: str = ""


class AuthoritativeAsker:
    """TXT questions to each of a fixed list of servers, RD=0, `timeout` seconds each."""

    def __init__(self, servers: Sequence[Nameserver], timeout: float = 2.0) -> None:
        self.servers = tuple(servers)[:MAX_SERVERS]
        self.timeout = timeout

    def describe(self) -> str:
        return ", ".join(str(s) for s in self.servers)

    def ask(self, name: str, rdtype: str = "TXT") -> list[ServerAnswer]:
        return [ask_server(server, name, rdtype, self.timeout) for server in self.servers]


def _text(rdata: object) -> str:
    strings = getattr(rdata, "strings", None)
    if strings is not None:
        return b"".join(strings).decode("utf-8", "replace")[:MAX_VALUE_CHARS]
    return str(getattr(rdata, "to_text", lambda: rdata)())[:MAX_VALUE_CHARS]


def ask_server(server: Nameserver, name: str, rdtype: str, timeout: float) -> ServerAnswer:
    """One question to one server, without recursion; UDP, then TCP when the reply is truncated."""
    import dns.exception
    import dns.flags
    import dns.message
    import dns.query
    import dns.rcode
    import dns.rdatatype

    label = str(server)
    query = dns.message.make_query(absolute(name), rdtype)
    query.flags &= ~dns.flags.RD
    try:
        response = dns.query.udp(query, server.ip, port=server.port, timeout=timeout)
        if response.flags & dns.flags.TC:
            response = dns.query.tcp(query, server.ip, port=server.port, timeout=timeout)
    except dns.exception.Timeout:
        return ServerAnswer(label, Served.NO_ANSWER, detail=f"no reply in {timeout:g} s")
    except (dns.exception.DNSException, OSError, ValueError) as exc:
        return ServerAnswer(label, Served.NO_ANSWER, detail=f"{type(exc).__name__}: {exc}"[:200])
    rcode = response.rcode()
    if not response.flags & dns.flags.AA:
        return ServerAnswer(label, Served.NO_ANSWER, detail=f"not authoritative for the name ({dns.rcode.to_text(rcode)}, AA not set)")
    wanted = dns.rdatatype.from_text(rdtype)
    if rcode == dns.rcode.NOERROR:
        for rrset in response.answer:
            if rrset.rdtype == wanted:
                return ServerAnswer(label, Served.ANSWER, tuple(_text(rd) for rd in list(rrset)[:MAX_VALUES]), int(rrset.ttl))
    if rcode in (dns.rcode.NOERROR, dns.rcode.NXDOMAIN):
        # RFC 2308 §5: a resolver keeps the absence for min(SOA TTL, SOA MINIMUM)
        negative = [min(int(rr.ttl), int(rd.minimum)) for rr in response.authority if rr.rdtype == dns.rdatatype.SOA for rd in rr]
        return ServerAnswer(label, Served.ABSENT, ttl=negative[0] if negative else 0, detail="NXDOMAIN" if rcode == dns.rcode.NXDOMAIN else "no TXT record")
    return ServerAnswer(label, Served.NO_ANSWER, detail=dns.rcode.to_text(rcode))


def zone_servers(name: str, resolver: Resolver) -> tuple[str, list[Nameserver], str]:
    """The zone holding `name` and the addresses of its NS hosts, found through `resolver`:
    (zone, servers, problem). The closest enclosing name with an NS set is the zone (a zone cut,
    RFC 1034 §4.2.1). `problem` says why `servers` is empty."""
    labels = absolute(name).rstrip(".").split(".")
    for i in range(len(labels) - 1):
        zone = ".".join(labels[i:])
        answer = resolver.resolve(zone, "NS")
        if answer.failed:
            return zone, [], f"the NS question for {zone} failed: {answer.describe()}"
        if not answer.ok:
            continue
        hosts = sorted({h.lower().rstrip(".") for h in answer.records})[:MAX_SERVERS]
        servers: list[Nameserver] = []
        for host in hosts:
            for family in ("A", "AAAA"):
                addresses = resolver.resolve(host, family)
                for address in sorted(addresses.records) if addresses.ok else []:
                    try:
                        servers.append(Nameserver.parse(address))
                    except ValueError:
                        continue
        servers = sorted(set(servers), key=lambda s: (s.ip, s.port))[:MAX_SERVERS]
        return zone, servers, "" if servers else f"no address found for the NS hosts of {zone} ({', '.join(hosts)})"
    return labels[-1], [], f"no NS record found for {name} or a parent"
