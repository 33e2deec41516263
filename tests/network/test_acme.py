"""tls.source acme on the test network (issue 14): Debian's pebble (an RFC 8555 test CA) in its
own namespace, nsd serving the zones provision generated, two booted Debian 13 hosts.

    mx1    192.0.2.10  mx, submission, imap: the mailbox host, so it serves the web side
    mx2    192.0.2.20  backup-mx
    dns    192.0.2.53  nsd: acme.test (with the mta-sts./autoconfig. CNAMEs) and pebble.test
    pebble 192.0.2.30  pebble: ACME on 14000, its management API on 15000 (the roots), http-01 to port 80
    client 192.0.2.200 where the checks connect from

pebble's API certificate comes from a test CA the hosts' certbot trusts (mailhost_acme_ca_bundle);
the certificates pebble issues chain to a root it makes per run, which only these tests trust.
Proves: a first apply gets mx1 a certificate for its fqdn + mta-sts + autoconfig and mx2 one for
its fqdn; IMAPS, SMTPS, SMTP STARTTLS and HTTPS present them, verified against pebble's root; the
MTA-STS policy is served over HTTPS and matches the TXT id; a forced renewal is served by every
service with no manual step; a challenge that cannot succeed keeps the previous certificate and
the apply says why. Run alone under flock /tmp/provisioner-heavy.lock (docs/testing.md).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from provisioner.dns.formats import zone_text
from provisioner.dns.records import site_records
from provisioner.keys.store import ensure_keys
from provisioner.site.validate import load_site
from tests.conftest import ALICE_HASH
from tests.hosts.nspawn import BootedHost, suite_of
from tests.network.net import DNS_ADDRESS, Network, Node
from tests.network.pebble import API_CA_ON_HOST, DIRECTORY, PEBBLE, start_ca_and_dns, trust_pebble

REPO = Path(__file__).resolve().parents[2]
PROVISION = str(Path(sys.executable).parent / "provision")
PY = sys.executable
RELEASE = "debian-13"
HOSTS = {"mx1": ("mx1.acme.test", "192.0.2.10"), "mx2": ("mx2.acme.test", "192.0.2.20")}
CLIENT = "192.0.2.200"

pytestmark = pytest.mark.skipif(os.environ.get("PROVISIONER_SKIP_TESTBED") == "1", reason="PROVISIONER_SKIP_TESTBED=1")

SITE = f"""\
version: 1
name: acmetest
hosts:
  mx1:
    fqdn: mx1.acme.test
    os: {RELEASE}
    ipv4: [192.0.2.10]
    services: [mx, submission, imap]
    mx_priority: 10
    ansible: {{host: 192.0.2.10, user: root}}
  mx2:
    fqdn: mx2.acme.test
    os: {RELEASE}
    ipv4: [192.0.2.20]
    services: [backup-mx]
    mx_priority: 20
    ansible: {{host: 192.0.2.20, user: root}}
policy:
  dnsbl: []
  mta_sts: {{mode: enforce}}
tls:
  source: acme
  acme: {{email: hostmaster@acme.test, directory: "{DIRECTORY}"}}
domains:
  acme.test:
    mailboxes:
      alice: {{password: "{ALICE_HASH}"}}
    aliases: {{postmaster: alice}}
"""

# What the client runs in its namespace: the certificate a TLS service presents, verified
# against pebble's root (the chain the server sends must lead there), as {serial, names}.
PROBE = r"""
import json, socket, ssl, sys
from cryptography import x509
kind, host, port, name, cafile = sys.argv[1:6]
ctx = ssl.create_default_context(cafile=cafile)
def describe(der):
    cert = x509.load_der_x509_certificate(der)
    names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value.get_values_for_type(x509.DNSName)
    return {"serial": format(cert.serial_number, "x"), "names": sorted(names)}
if kind == "smtp":
    raw = socket.create_connection((host, int(port)), timeout=20)
    reader = raw.makefile("rb")
    def reply():
        while True:
            line = reader.readline()
            if line[3:4] != b"-":
                return line
    reply(); raw.sendall(b"EHLO client.test\r\n"); reply(); raw.sendall(b"STARTTLS\r\n")
    assert reply().startswith(b"220")
    with ctx.wrap_socket(raw, server_hostname=name) as s:
        out = describe(s.getpeercert(binary_form=True))
elif kind == "https":
    path = sys.argv[6]
    with ctx.wrap_socket(socket.create_connection((host, int(port)), timeout=20), server_hostname=name) as s:
        out = describe(s.getpeercert(binary_form=True))
        s.sendall(f"GET {path} HTTP/1.0\r\nHost: {name}\r\n\r\n".encode())
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    out["status"] = head.split()[1].decode(); out["head"] = head.decode(); out["body"] = body.decode()
else:
    with ctx.wrap_socket(socket.create_connection((host, int(port)), timeout=20), server_hostname=name) as s:
        out = describe(s.getpeercert(binary_form=True))
print(json.dumps(out))
"""


@dataclass
class AcmeNet:
    __test__ = False

    net: Network
    hosts: dict[str, BootedHost]
    client: Node
    site: Path
    build: Path
    state: Path
    inventory: Path
    env: dict[str, str]
    root_ca: Path  # pebble's issuing root of this run
    first_apply: subprocess.CompletedProcess[str]
    seconds: float

    def cli(self, *args: str, site: Path | None = None) -> subprocess.CompletedProcess[str]:
        common = [str(site or self.site), "-i", str(self.inventory), "--build", str(self.build), "--state", str(self.state)]
        return subprocess.run([PROVISION, *args, *common], capture_output=True, text=True, env=self.env, cwd=REPO, timeout=900, stdin=subprocess.DEVNULL)

    def check(self, *extra: str) -> tuple[int, list[dict[str, str]]]:
        """`provision check --tls` from the client, verified against pebble's root, asking the
        network's nsd: its exit status and every finding (JSON)."""
        args = ["check", str(self.site), "--state", str(self.state), "--nameserver", DNS_ADDRESS, "--tls", "--ca", str(self.root_ca), "--format", "json"]
        result = self.client.netns_exec(PROVISION, *args, *extra, timeout=300)
        assert result.returncode in (0, 1) and result.stdout.startswith("{"), result.stdout[-3000:] + result.stderr[-3000:]
        report = json.loads(result.stdout)
        return result.returncode, [finding for entry in report["domains"] for finding in entry["findings"]]

    def host_cert(self, host: str, tmp_path: Path) -> str:
        """--host-cert HOST=FILE: the newest certificate on the host, copied from certbot's live/."""
        fqdn = HOSTS[host][0]
        path = tmp_path / f"{host}-cert.pem"
        path.write_text(self.hosts[host].run("cat", f"/etc/letsencrypt/live/{fqdn}/cert.pem").stdout)
        return f"{host}={path}"

    def presented(self, kind: str, host: str, port: int, name: str, *extra: str) -> dict:
        result = self.client.netns_exec(PY, "-c", PROBE, kind, HOSTS[host][1], str(port), name, str(self.root_ca), *extra, timeout=60)
        assert result.returncode == 0, f"{kind} {host}:{port} ({name}): {result.stderr[-3000:]}"
        return json.loads(result.stdout)

    def served_serials(self, host: str) -> dict[str, str]:
        fqdn = HOSTS[host][0]
        found = {"smtp25": self.presented("smtp", host, 25, fqdn)["serial"]}
        if host == "mx1":
            found["imaps"] = self.presented("tls", host, 993, fqdn)["serial"]
            found["smtps"] = self.presented("tls", host, 465, fqdn)["serial"]
            found["https"] = self.presented("https", host, 443, "mta-sts.acme.test", "/.well-known/mta-sts.txt")["serial"]
        return found


@pytest.fixture(scope="module")
def acmenet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AcmeNet]:
    if os.geteuid() != 0 or not shutil.which("pebble") or not shutil.which("nsd"):
        pytest.fail("needs root, pebble and nsd: tests/run.sh installs them")
    work = tmp_path_factory.mktemp("acmenet")
    site_path, build, state = work / "site" / "site.yaml", work / "build", work / "state"
    site_path.parent.mkdir()
    site_path.write_text(SITE)
    rendered = subprocess.run([PROVISION, "render", str(site_path), "-o", str(build), "--state", str(state)], capture_output=True, text=True, cwd=REPO)
    assert rendered.returncode == 0, rendered.stdout + rendered.stderr
    site = load_site(site_path).site
    keys, _ = ensure_keys(site, state, workers=1)
    records = site_records(site, keys)
    # Every zone, the reverse one too: `check` judges the PTR records (FCrDNS) from the client.
    zones = {zone: zone_text(records, zone, standalone=True) for zone in records.zones()}
    net = Network.create()
    try:
        net.fleet.golden(suite_of(RELEASE))
        client, pki = start_ca_and_dns(net, zones, work, CLIENT)
        hosts = net.add_hosts({role: (RELEASE, fqdn, address) for role, (fqdn, address) in HOSTS.items()})
        for host in hosts.values():
            trust_pebble(host, pki)
        inventory = net.fleet.inventory(work / "hosts.yml", list(HOSTS), {"mailhost_apt_update_cache": False, "mailhost_acme_ca_bundle": API_CA_ON_HOST})
        root = work / "pebble-root.pem"
        (work / "api-ca.pem").write_bytes(pki.ca)
        # The API certificate names pebble.test; asked by address, so the chain is checked, not the name.
        fetch = "import ssl,sys,urllib.request; c=ssl.create_default_context(cafile=sys.argv[2]); c.check_hostname=False; sys.stdout.write(urllib.request.urlopen(sys.argv[1], context=c).read().decode())"
        fetched = client.netns_exec(PY, "-c", fetch, f"https://{PEBBLE}:15000/roots/0", str(work / "api-ca.pem"))
        assert fetched.returncode == 0 and "BEGIN CERTIFICATE" in fetched.stdout, fetched.stderr
        root.write_text(fetched.stdout)
        an = AcmeNet(net, hosts, client, site_path, build, state, inventory, net.fleet.ansible_env(), root, subprocess.CompletedProcess([], 0), 0.0)
        started = time.monotonic()
        an.first_apply = an.cli("apply", "--yes")
        an.seconds = time.monotonic() - started
        print(f"\nacme network: first apply (2 hosts, pebble) {an.seconds:.1f}s")
        yield an
    finally:
        net.close()
    assert net.leftovers() == []


def _live(host: BootedHost, link: str) -> str:
    return host.run("readlink", "-f", link).stdout.strip()


def test_first_apply_obtains_the_certificates_and_every_service_presents_them(acmenet: AcmeNet) -> None:
    applied = acmenet.first_apply
    assert applied.returncode == 0, applied.stdout[-6000:] + applied.stderr[-3000:]
    mx1 = acmenet.presented("tls", "mx1", 993, "mx1.acme.test")
    assert mx1["names"] == sorted(["mx1.acme.test", "mta-sts.acme.test", "autoconfig.acme.test"])
    assert acmenet.presented("tls", "mx1", 465, "mx1.acme.test")["serial"] == mx1["serial"]
    assert acmenet.presented("smtp", "mx1", 25, "mx1.acme.test")["serial"] == mx1["serial"]
    assert acmenet.presented("smtp", "mx2", 25, "mx2.acme.test")["names"] == ["mx2.acme.test"]
    # The stable paths now lead into certbot's live/ directory.
    assert _live(acmenet.hosts["mx1"], "/etc/ssl/provisioner/acme/mx1.acme.test/fullchain.pem").startswith("/etc/letsencrypt/archive/mx1.acme.test/")


def test_the_mta_sts_policy_and_autoconfig_are_served_over_https(acmenet: AcmeNet) -> None:
    served = acmenet.presented("https", "mx1", 443, "mta-sts.acme.test", "/.well-known/mta-sts.txt")
    assert served["status"] == "200" and "content-type: text/plain" in served["head"].lower()
    site = load_site(acmenet.site).site
    from provisioner.dns.records import mta_sts_id
    from provisioner.keys.store import KeyState

    records = site_records(site, KeyState(acmenet.state))
    assert served["body"] == records.mta_sts_policies["acme.test"]
    txt = next(r.value for r in records.records if r.name == "_mta-sts.acme.test")
    assert txt == f"v=STSv1; id={mta_sts_id(served['body'])}"
    assert "mx: mx1.acme.test\r\n" in served["body"] and "mx: mx2.acme.test\r\n" in served["body"]
    auto = acmenet.presented("https", "mx1", 443, "autoconfig.acme.test", "/mail/config-v1.1.xml")
    assert auto["status"] == "200" and "<hostname>mx1.acme.test</hostname>" in auto["body"]


def test_a_renewal_is_served_by_every_service_without_a_manual_step(acmenet: AcmeNet) -> None:
    before = {host: acmenet.served_serials(host) for host in HOSTS}
    for host in HOSTS:
        renewed = acmenet.hosts[host].run("env", f"REQUESTS_CA_BUNDLE={API_CA_ON_HOST}", "certbot", "renew", "--force-renewal", "--no-random-sleep-on-renew", check=False, timeout=180)
        assert renewed.returncode == 0, renewed.stdout + renewed.stderr
    deadline = time.monotonic() + 20
    while True:
        after = {host: acmenet.served_serials(host) for host in HOSTS}
        fresh = all(len(set(after[h].values())) == 1 and set(after[h].values()) != set(before[h].values()) for h in HOSTS)
        if fresh or time.monotonic() > deadline:
            break
        time.sleep(1)
    assert fresh, (before, after)
    # --reuse-key: the same key, so the same SPKI across the renewal.
    key = acmenet.hosts["mx1"].run("sh", "-c", "openssl x509 -in /etc/ssl/provisioner/acme/mx1.acme.test/fullchain.pem -noout -pubkey | sha256sum").stdout
    archive = acmenet.hosts["mx1"].run("sh", "-c", "for f in /etc/letsencrypt/archive/mx1.acme.test/cert*.pem; do openssl x509 -in $f -noout -pubkey | sha256sum; done").stdout
    assert set(archive.splitlines()) == {key.strip()}


def _errors(findings: list[dict[str, str]]) -> list[str]:
    return [f"{f['id']} {f['subject']}: {f['seen']}" for f in findings if f["severity"] == "error"]


def _stale(findings: list[dict[str, str]]) -> dict[str, str]:
    """subject -> advice of every tls.stale-certificate finding."""
    return {f["subject"]: f["advice"] for f in findings if f["id"] == "tls.stale-certificate"}


def test_check_tls_from_outside_passes_dns_certificates_and_the_policy(acmenet: AcmeNet, tmp_path: Path) -> None:
    status, findings = acmenet.check(*(f"--host-cert={acmenet.host_cert(h, tmp_path)}" for h in HOSTS))
    assert status == 0, _errors(findings)
    ids = {(f["id"], f["subject"]) for f in findings if f["severity"] == "pass"}
    # The web side's DNS: the mta-sts./autoconfig. CNAMEs to the web host, judged as what they are.
    assert ("mta-sts-host.match", "mta-sts.acme.test") in ids and ("autoconfig.match", "autoconfig.acme.test") in ids
    for fqdn, _ in HOSTS.values():
        assert ("tls.same-certificate", fqdn) in ids and ("tls.trusted", f"{fqdn}:25") in ids
    for port in (465, 587, 993, 443):
        assert ("tls.trusted", f"mx1.acme.test:{port}") in ids
    policy = "https://mta-sts.acme.test/.well-known/mta-sts.txt"
    for check in ("mta-sts.policy-fetched", "mta-sts.policy-id", "mta-sts.policy-mx", "mta-sts.policy-mode"):
        assert (check, policy) in ids, check


def test_check_tls_names_the_services_a_renewal_did_not_reload(acmenet: AcmeNet, tmp_path: Path) -> None:
    """The deploy hook prevented from reloading: certbot renews (live/ moves on, the stable paths
    follow it), the services keep the certificate they read at start, and check says which."""
    mx1 = acmenet.hosts["mx1"]
    hook = "/etc/letsencrypt/renewal-hooks/deploy/provisioner"
    mx1.run("cp", "-p", hook, "/root/provisioner-hook.saved")
    mx1.run("sh", "-c", f"printf '#!/bin/sh\nexit 0\n' > {hook}")
    try:
        env = f"REQUESTS_CA_BUNDLE={API_CA_ON_HOST}"
        renewed = mx1.run("env", env, "certbot", "renew", "--cert-name", "mx1.acme.test", "--force-renewal", "--no-random-sleep-on-renew", check=False, timeout=180)
        assert renewed.returncode == 0, renewed.stdout + renewed.stderr
        # All stale together: only the certificate on disk can tell.
        status, findings = acmenet.check(f"--host-cert={acmenet.host_cert('mx1', tmp_path)}")
        stale = _stale(findings)
        assert status == 1 and set(stale) == {f"mx1.acme.test:{port}" for port in (25, 465, 587, 993, 443)}, _errors(findings)
        assert {advice.split(" (", 1)[0] for advice in stale.values()} == {"reload postfix", "reload dovecot", "reload nginx"}
        # One stale service (Postfix and nginx reloaded by hand): the odd one out, without --host-cert.
        mx1.run("systemctl", "reload", "postfix.service", "nginx.service")
        deadline = time.monotonic() + 20
        while acmenet.served_serials("mx1")["smtp25"] != acmenet.served_serials("mx1")["https"] and time.monotonic() < deadline:
            time.sleep(1)
        status, findings = acmenet.check()
        assert status == 1 and set(_stale(findings)) == {"mx1.acme.test:993"}, _errors(findings)
        assert _stale(findings)["mx1.acme.test:993"].startswith("reload dovecot")
    finally:
        mx1.run("mv", "-f", "/root/provisioner-hook.saved", hook)
    # The real hook (what certbot runs after every renewal) puts it right.
    mx1.run("env", "RENEWED_LINEAGE=/etc/letsencrypt/live/mx1.acme.test", hook, timeout=60)
    deadline = time.monotonic() + 20
    while len(set(acmenet.served_serials("mx1").values())) != 1 and time.monotonic() < deadline:
        time.sleep(1)
    status, findings = acmenet.check(f"--host-cert={acmenet.host_cert('mx1', tmp_path)}")
    assert status == 0 and not _stale(findings), _errors(findings)


def test_a_challenge_that_fails_keeps_the_previous_certificate_and_the_apply_says_why(acmenet: AcmeNet, tmp_path: Path) -> None:
    before = acmenet.served_serials("mx1")
    # A new domain whose zone nobody serves: pebble cannot resolve mta-sts.new.test.
    text = acmenet.site.read_text() + f"  new.test:\n    mailboxes:\n      bob: {{password: \"{ALICE_HASH}\"}}\n    aliases: {{postmaster: bob}}\n"
    grown = acmenet.site.parent / "grown.yaml"
    grown.write_text(text)
    applied = acmenet.cli("apply", "--yes", site=grown)
    assert applied.returncode != 0
    said = applied.stdout + applied.stderr
    assert "certbot could not obtain mx1.acme.test" in said and "new.test" in said, said[-4000:]
    assert acmenet.served_serials("mx1") == before  # still serving, with the previous certificate
    assert acmenet.hosts["mx1"].system_state() == "running", acmenet.hosts["mx1"].failed_units()


def test_leaving_acme_stops_nginx_and_the_timer_and_keeps_their_files(acmenet: AcmeNet) -> None:
    """Back to self-signed (layout.RETIRED_WEB): nginx and certbot.timer are stopped and disabled
    on every host, as OpenDKIM is on an mx-only host; their files stay."""
    text = acmenet.site.read_text().replace("mta_sts: {mode: enforce}", "mta_sts: {mode: testing}")
    head, _, _ = text.partition("tls:\n")
    domains = text[text.index("domains:\n") :]
    plain = acmenet.site.parent / "self-signed.yaml"
    plain.write_text(head + domains)
    applied = acmenet.cli("apply", "--yes", site=plain)
    assert applied.returncode == 0, applied.stdout[-6000:] + applied.stderr[-3000:]
    for name, host in acmenet.hosts.items():
        for unit in ("nginx.service", "certbot.timer"):
            shown = host.run("systemctl", "show", "--property=ActiveState,UnitFileState", unit).stdout
            assert "ActiveState=inactive" in shown and "UnitFileState=disabled" in shown, (name, unit, shown)
        kept = host.run("sh", "-c", f"head -c 40 /etc/nginx/nginx.conf; ls /etc/letsencrypt/live/{HOSTS[name][0]}/cert.pem").stdout
        assert kept.startswith("# Rendered by provision") and kept.rstrip().endswith("cert.pem"), kept
        assert host.system_state() == "running", host.failed_units()
    # IMAPS now serves the self-signed certificate render made (its own issuer), not pebble's.
    probe = "import ssl,sys; from cryptography import x509; c = x509.load_pem_x509_certificate(ssl.get_server_certificate((sys.argv[1], 993)).encode()); print(c.issuer == c.subject)"
    served = acmenet.client.netns_exec(PY, "-c", probe, HOSTS["mx1"][1], timeout=60)
    assert served.stdout.strip() == "True", served.stdout + served.stderr
