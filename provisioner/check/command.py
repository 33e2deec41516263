"""`provision check` as one call: the site file and options in, one Report out (DNS, and with
`tls` the mail ports). The CLI shows the report; everything it needs to know is in it."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

from provisioner.check.findings import Report
from provisioner.check.run import CountProgress, run_check
from provisioner.errors import ProvisionError
from provisioner.keys.store import load_state, state_dir_for
from provisioner.mailauth.resolver import DnsResolver, Nameserver
from provisioner.site.validate import load_site


def nameservers(values: Sequence[str], option: str) -> list[Nameserver]:
    """IP[:PORT] strings from the command line, or a ProvisionError naming the option."""
    try:
        return [Nameserver.parse(v) for v in values]
    except ValueError as exc:
        raise ProvisionError(f"{option}: {exc}") from None


def check_command(
    site_path: Path,
    state: Path | None,
    vault_password: bytes | None,
    nameserver: Sequence[str] = (),
    dnsbl_nameserver: Sequence[str] = (),
    timeout: float = 2.0,
    concurrency: int = 32,
    tls: bool = False,
    tls_timeout: float = 5.0,
    progress: CountProgress | None = None,
    asking: Callable[[str], None] | None = None,
) -> Report:
    """Check what the world sees of the site. `asking(description)` is told, before the first
    question, which resolver is asked (a dead one is waited for; the caller may show it)."""
    servers = nameservers(nameserver, "--nameserver")
    dnsbl_servers = nameservers(dnsbl_nameserver, "--dnsbl-nameserver")
    loaded = load_site(site_path)
    keys = load_state(state_dir_for(loaded.path, state), vault_password)
    resolver = DnsResolver(servers or None, timeout)
    dnsbl_resolver = DnsResolver(dnsbl_servers, timeout) if dnsbl_servers else None
    if asking is not None:
        asking(resolver.describe())
    report = run_check(loaded.site, keys, resolver, dnsbl_resolver=dnsbl_resolver, concurrency=concurrency, timeout=timeout, progress=progress)
    if tls:
        from provisioner.check.tls import check_tls, with_findings

        report = with_findings(report, check_tls(loaded.site, timeout=tls_timeout))
    return report
