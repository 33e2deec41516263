"""The web server of a host with tls.source acme (docs/certificates.md): nginx answering the ACME
http-01 challenge on port 80 on every host, and on the web host (Site.web_hosts) serving exactly
the MTA-STS policy we render at https://mta-sts.<domain>/.well-known/mta-sts.txt (RFC 8461 §3.3,
text/plain) and Thunderbird autoconfig at https://autoconfig.<domain>/mail/config-v1.1.xml.
No Microsoft autodiscover: its name is not published when the web side is served (dns.records).
"""

from __future__ import annotations

from provisioner.dns.formats import autoconfig_xml
from provisioner.dns.records import mta_sts_id, mta_sts_policy, publishes_mta_sts
from provisioner.layout import ACME_WEBROOT, NGINX_CONF, WEB_ROOT
from provisioner.render.acme import Certificate
from provisioner.render.tree import HostTree
from provisioner.site.model import Host, Site
from provisioner.templating import render_template

MTA_STS_ROOT = f"{WEB_ROOT}/mta-sts"
AUTOCONFIG_FILE = f"{WEB_ROOT}/autoconfig/config-v1.1.xml"


def add_web(tree: HostTree, site: Site, host: Host, certificates: list[Certificate], web: bool) -> None:
    """nginx.conf for the host (challenge only, or the web side too), and the files it serves."""
    mta_sts: list[tuple[str, str]] = []
    servers: list[dict[str, object]] = []
    if web:
        policies: dict[str, str] = {}
        xml = autoconfig_xml(site)
        for cert in certificates:
            sts_names = [n for n in cert.names if n.startswith("mta-sts.") and n != host.fqdn]
            auto_names = [n for n in cert.names if n.startswith("autoconfig.") and n != host.fqdn]
            for name in sts_names:
                domain = name.removeprefix("mta-sts.")
                assert publishes_mta_sts(site, domain)
                text = mta_sts_policy(site, site.mta_sts_policy(domain))
                file = f"{mta_sts_id(text)}.txt"
                policies[file] = text
                mta_sts.append((name, file))
            if sts_names:
                servers.append({"kind": "mta-sts", "names": sts_names, "cert": cert})
            if auto_names:
                servers.append({"kind": "autoconfig", "names": auto_names, "cert": cert})
        for file, text in sorted(policies.items()):
            tree.add(f"{MTA_STS_ROOT[1:]}/{file}", text)
        if xml is not None and any(server["kind"] == "autoconfig" for server in servers):
            tree.add(AUTOCONFIG_FILE[1:], xml)
    tree.add(
        NGINX_CONF[1:],
        render_template(
            "nginx/nginx.conf.j2",
            site=site.name,
            host=host.fqdn,
            web=web,
            ipv6=bool(host.ipv6),
            webroot=ACME_WEBROOT,
            mta_sts=mta_sts,
            servers=servers,
            default_cert=certificates[0],
            mta_sts_root=MTA_STS_ROOT,
            autoconfig_file=AUTOCONFIG_FILE,
        ),
    )
