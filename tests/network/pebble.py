"""Debian's pebble (an RFC 8555 test CA) and nsd on the test network: what tests/network/test_acme.py
and bench/acme_apply.py both stand up before they boot their hosts.

    dns    192.0.2.53  nsd: the zones given, and pebble.test
    pebble 192.0.2.30  ACME on 14000, its management API on 15000 (the roots), http-01 to port 80,
                       no sleep before validating
    client (given)     where checks connect from

pebble's API certificate comes from a test CA made per run (`Pki.ca`); a host's certbot trusts
it once `trust_pebble` put it at API_CA_ON_HOST (the role's mailhost_acme_ca_bundle).
"""

from __future__ import annotations

import json
from pathlib import Path

from tests.hosts.nspawn import BootedHost
from tests.network.net import DNS_ADDRESS, Network, Node
from tests.render.test_smarthost_tls import Pki, make_pki

PEBBLE, PEBBLE_NAME = "192.0.2.30", "pebble.test"
DIRECTORY = f"https://{PEBBLE_NAME}:14000/dir"
API_CA_ON_HOST = "/etc/ssl/pebble-api-ca.pem"  # what the hosts' certbot trusts for pebble's API
ENV = {"PEBBLE_VA_NOSLEEP": "1", "PEBBLE_WFE_NONCEREJECT": "0", "PEBBLE_AUTHZREUSE": "0"}


def pebble_zone() -> str:
    return (
        f"$ORIGIN {PEBBLE_NAME}.\n$TTL 300\n@ IN SOA ns1.{PEBBLE_NAME}. hostmaster.{PEBBLE_NAME}. 1 7200 3600 1209600 300\n"
        f"@ IN NS ns1.{PEBBLE_NAME}.\nns1 IN A {DNS_ADDRESS}\n@ IN A {PEBBLE}\n"
    )


def pebble_config(work: Path, pki: Pki) -> Path:
    (work / "pebble-api.crt").write_bytes(pki.by_ca.cert)
    (work / "pebble-api.key").write_bytes(pki.by_ca.key)
    config = {
        "pebble": {
            "listenAddress": f"{PEBBLE}:14000",
            "managementListenAddress": f"{PEBBLE}:15000",
            "certificate": str(work / "pebble-api.crt"),
            "privateKey": str(work / "pebble-api.key"),
            "httpPort": 80,  # http-01 where the hosts' nginx answers
            "tlsPort": 443,
            "ocspResponderURL": "",
            "externalAccountBindingRequired": False,
        }
    }
    path = work / "pebble.json"
    path.write_text(json.dumps(config))
    return path


def start_ca_and_dns(net: Network, zones: dict[str, str], work: Path, client_address: str) -> tuple[Node, Pki]:
    """nsd serving `zones` and pebble.test, pebble, and a client node; returns (client, the
    API's test CA) once nsd and pebble answer the client."""
    from tests.dns.conftest import nsd_conf

    pki = make_pki(PEBBLE_NAME)
    net.add_node("dns", DNS_ADDRESS)
    net.start("dns", "nsd", "-d", "-c", nsd_conf({**zones, PEBBLE_NAME: pebble_zone()}, work / "nsd", DNS_ADDRESS), log=work / "nsd.out")
    net.add_node("pebble", PEBBLE)
    net.start("pebble", "pebble", "-config", pebble_config(work, pki), "-dnsserver", f"{DNS_ADDRESS}:53", log=work / "pebble.log", env=ENV)
    client = net.add_node("client", client_address)
    net.wait_port(client, DNS_ADDRESS, 53)
    net.wait_port(client, PEBBLE, 14000)
    return client, pki


def trust_pebble(host: BootedHost, pki: Pki) -> None:
    """The host's certbot trusts pebble's API (inventory: mailhost_acme_ca_bundle=API_CA_ON_HOST)."""
    (host.root / API_CA_ON_HOST[1:]).write_bytes(pki.ca)
