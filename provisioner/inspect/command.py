"""`provision inspect` as one call: a message (file or standard input) and the trust options in,
an Inspection out. The CLI shows it and maps its verdict to the exit code (report.EXIT)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from provisioner.errors import ProvisionError
from provisioner.inspect.analyze import Inspection, Trust, inspect_message
from provisioner.inspect.message import parse_message, read_input
from provisioner.mailauth.resolver import CachingResolver, DnsResolver, Nameserver


def inspect_command(
    message: str,
    stdin: object,
    site_path: Path | None = None,
    trust: Sequence[str] = (),
    trust_address: Sequence[str] = (),
    verify: bool = False,
    nameserver: Sequence[str] = (),
    timeout: float = 2.0,
    max_bytes: int = 64 * 1024 * 1024,
) -> Inspection:
    if nameserver and not verify:
        raise ProvisionError("--nameserver is used by --verify; add --verify")
    try:
        servers = [Nameserver.parse(n) for n in nameserver]
    except ValueError as exc:
        raise ProvisionError(f"--nameserver: {exc}") from None
    try:
        trusted = Trust.of(trust, trust_address)
    except ValueError as exc:
        raise ProvisionError(f"--trust-address: {exc}") from None
    if site_path is not None:
        from provisioner.site.validate import load_site

        trusted = Trust.from_site(load_site(site_path).site, trusted.names, map(str, trusted.addresses))
    source, data = read_input(message, stdin, max_bytes)
    resolver = CachingResolver(DnsResolver(servers or None, timeout)) if verify else None
    return inspect_message(parse_message(source, data), trusted, resolver)
