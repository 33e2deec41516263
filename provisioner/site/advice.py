"""Warnings about a valid site: things that work as written but will surprise its author.

Each is one line naming the site key, what will happen and what to do; `render` and `validate`
print them on stderr. Errors (what render refuses) are in validate.py, not here.
"""

from __future__ import annotations

import ipaddress
import re

from provisioner.site.model import Site
from provisioner.site.types import Service, TlsSource

SMTP_PORT = 25
# transport(5): TRANSPORT:NEXTHOP[:PORT]; smtp and relay default to port 25 (services(5)).
_TRANSPORT = re.compile(r"(smtp|relay|lmtp):(\[?)([^\]:]*)\]?(?::([0-9]+))?")

SELF_SIGNED = (
    "tls.source is self-signed: every mail program will warn about the certificate on ports {ports} "
    "(and some refuse to connect) until the hosts have a certificate from a public CA; "
    "see docs/certificates.md (tls.source: acme, or certbot and tls.source: files)"
)


def _direct_port_25(transport: str) -> str | None:
    """The next hop of a transport that connects to port 25 of a host outside the private
    networks, else None (an LMTP hop, another port, or a LAN address is not blocked)."""
    found = _TRANSPORT.fullmatch(transport)
    if found is None or found.group(1) == "lmtp":
        return None
    if int(found.group(4) or SMTP_PORT) != SMTP_PORT:
        return None
    host = found.group(3)
    try:
        if ipaddress.ip_address(host).is_private:
            return None
    except ValueError:
        pass
    return host


def site_warnings(site: Site) -> list[str]:
    """Every warning for `site`, in a fixed order."""
    warnings = []
    if site.tls.source is TlsSource.SELF_SIGNED:
        ports = []
        if site.hosts_with(Service.IMAP):
            ports.append("993 (IMAP)")
        if site.hosts_with(Service.POP3):
            ports.append("995 (POP3)")
        if site.hosts_with(Service.SUBMISSION):
            ports.append("465 and 587 (sending)")
        if ports:
            warnings.append(SELF_SIGNED.format(ports=", ".join(ports)))
    if site.relay.smarthost is not None:
        routes = [(f"relay.transports.{dest}", hop) for dest, hop in sorted(site.relay.transports.items())]
        routes += [(f"domains.{name}.relay_to", site.domains[name].relay_to or "") for name in sorted(site.domains) if site.domains[name].relay_to]
        for key, transport in routes:
            host = _direct_port_25(transport)
            if host is not None:
                warnings.append(
                    f"{key}: {transport} connects directly to port 25 of {host}, bypassing the smarthost "
                    f"{site.relay.smarthost.host}; where the provider blocks outbound port 25 (OP25B) that mail is deferred "
                    "and bounced after days. Use a port the next hop offers (e.g. :587 with its consent), or remove the entry "
                    "to send through the smarthost"
                )
    return warnings
