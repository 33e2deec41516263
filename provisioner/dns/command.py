"""`provision dns` and the rotation part of `provision keys`: site file in, records out.

Here, not in the CLI, because both need the site, the key state beside it and the record list;
the CLI only parses options and prints what these return.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from provisioner.dns import dns_output, note_warnings
from provisioner.dns.authoritative import AuthoritativeAsker, zone_servers
from provisioner.dns.records import site_records
from provisioner.dns.rotation import GRACE, Ask, RotationRefused, dns_gate, rotation_report
from provisioner.errors import ProvisionError
from provisioner.files import atomic_write
from provisioner.keys.store import KeyState, ensure_keys, rotate, state_dir_for
from provisioner.mailauth.resolver import DnsResolver, Nameserver
from provisioner.site.idn import to_a_label_or_error
from provisioner.site.validate import load_site


@dataclass(frozen=True)
class DnsOutput:
    data: bytes  # what to print when no output file was named (empty when one was written)
    warnings: list[str] = field(default_factory=list)


def dns_command(
    site_path: Path,
    state: Path | None,
    vault_password: bytes | None,
    fmt: str,
    lang: str = "en",
    standalone: bool = False,
    output: Path | None = None,
) -> DnsOutput:
    """The records of the site in one format; written to `output` (atomically) when given.

    Missing DKIM keys are made first: their public keys are records."""
    if fmt == "pdf" and output is None:
        raise ProvisionError("a PDF goes to a file: add -o sheet.pdf")
    loaded = load_site(site_path)
    ks, _ = ensure_keys(loaded.site, state_dir_for(loaded.path, state), vault_password=vault_password)
    records = site_records(loaded.site, ks)
    data = dns_output(loaded.site, records, fmt, lang, standalone)
    warnings = note_warnings(records.notes, "provision dns --format json (notes)")
    if output is not None:
        atomic_write(output, data, 0o644)
        return DnsOutput(b"", warnings)
    return DnsOutput(data, warnings)


def rotate_command(
    site_path: Path,
    state: Path | None,
    vault_password: bytes | None,
    domains: list[str],
    all_domains: bool = False,
    force: bool = False,
    today: dt.date | None = None,
    nameserver: Sequence[str] = (),
    grace: dt.timedelta = GRACE,
    timeout: float = 2.0,
    now: dt.datetime | None = None,
) -> list[str]:
    """Rotate the DKIM keys of `domains` (or every domain): the DNS work it asks for, as lines.

    Unless `force`, refused (RotationRefused) while a standby selector is not served by every
    authoritative server of its zone for its TTL + `grace` (provisioner.dns.rotation, the DNS
    gate). The servers are the zone's NS hosts, found through the system resolver, or exactly
    `nameserver` (IP[:PORT] each) when given. `now` is the clock (UTC), for tests."""
    now = now or dt.datetime.now(dt.UTC)
    today = today or now.date()
    try:
        servers = [Nameserver.parse(v) for v in nameserver]
    except ValueError as exc:
        raise ProvisionError(f"--nameserver: {exc}") from None
    loaded = load_site(site_path)
    targets = sorted(loaded.site.domains) if all_domains else [to_a_label_or_error(d) for d in domains]

    def gate(ks: KeyState) -> None:
        dns_gate(ks, targets, _askers(servers, timeout), str(site_path), now, grace)

    ks = rotate(loaded.site, state_dir_for(loaded.path, state), targets, today=today, vault_password=vault_password, force=force, gate=gate)
    return [line for domain in targets for line in rotation_report(ks, domain, today)]


def _askers(servers: list[Nameserver], timeout: float) -> Callable[[str], Ask]:
    """Per domain, the asker of its zone's authoritative servers: `servers` when given, else the
    NS hosts of the zone holding the domain's selectors, found through the system resolver."""
    if servers:
        fixed = AuthoritativeAsker(servers, timeout)
        return lambda _domain: fixed.ask
    resolver = DnsResolver(None, timeout)

    def ask_for(domain: str) -> Ask:
        zone, found, problem = zone_servers(f"_domainkey.{domain}", resolver)
        if not found:
            raise RotationRefused([f"{domain}: cannot find the authoritative servers of its zone ({problem}); name them with --nameserver IP[:PORT]"])
        return AuthoritativeAsker(found, timeout).ask

    return ask_for

