"""What an administrator would check in the rendered configuration, host by host."""

from __future__ import annotations

import functools
import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from provisioner.errors import SiteInvalid
from provisioner.site.validate import load_site
from tests.conftest import EXAMPLES
from tests.render.helpers import main_cf, render_example, text
from tests.render.test_smarthost_tls import make_pki


@pytest.fixture(scope="module")
def multi(tmp_path_factory) -> dict:
    trees, _ = render_example("multi-host", tmp_path_factory.mktemp("multi"))
    return trees


def master_services(trees, host: str) -> dict[str, str]:
    services = {}
    for line in text(trees, host, "etc/postfix/master.cf").splitlines():
        if line and not line[0].isspace() and not line.startswith("#"):
            fields = line.split()
            services[f"{fields[0]}/{fields[1]}"] = fields[7]
    return services


def test_relay_control_on_every_host(multi) -> None:
    for host in multi:
        params = main_cf(multi, host)
        assert params["compatibility_level"] == "3.6"
        assert params["smtpd_relay_restrictions"] == "permit_mynetworks, permit_sasl_authenticated, reject_unauth_destination"
        assert params["smtpd_sasl_auth_enable"] == "no"  # never AUTH on 25
        assert params["smtpd_tls_auth_only"] == "yes"
        assert params["smtpd_tls_security_level"] == "may"


def test_mynetworks_is_loopback_plus_relay_networks_only_on_relay_hosts(multi) -> None:
    loopback = "127.0.0.0/8 [::ffff:127.0.0.0]/104 [::1]/128"
    assert main_cf(multi, "mx1")["mynetworks"] == loopback
    assert main_cf(multi, "mx2")["mynetworks"] == loopback
    assert main_cf(multi, "out1")["mynetworks"] == loopback + " 192.168.10.0/24"
    assert main_cf(multi, "out1")["smtpd_client_restrictions"] == "permit_mynetworks, reject"


def test_virtual_domains_are_not_in_mydestination(multi) -> None:
    params = main_cf(multi, "mx1")
    assert "acme.example" not in params["mydestination"]
    assert params["virtual_transport"] == "dovecot"  # dovecot-lda through pipe(8): tests/render/test_idn_smtputf8.py
    domains = text(multi, "mx1", "etc/postfix/virtual_domains")
    assert "acme.example\tOK" in domains and "xn--r8jz45g.jp\tOK" in domains
    assert "legacy.acme.example" not in domains


def test_postscreen_only_on_port_25_of_mx_hosts(multi) -> None:
    assert master_services(multi, "mx1")["smtp/inet"] == "postscreen"
    assert master_services(multi, "mx2")["smtp/inet"] == "postscreen"
    assert master_services(multi, "out1")["smtp/inet"] == "smtpd"
    assert master_services(multi, "mx1")["submission/inet"] == "smtpd"
    assert "postscreen_dnsbl_sites" not in main_cf(multi, "out1")
    assert main_cf(multi, "mx1")["postscreen_dnsbl_sites"] == "zen.spamhaus.org=127.0.0.[2..11]*3"


def test_submission_requires_tls_and_auth(multi) -> None:
    master = text(multi, "mx1", "etc/postfix/master.cf")
    submission = master.split("\nsubmission ")[1].split("\nsubmissions ")[0]
    assert "-o smtpd_tls_security_level=encrypt" in submission
    assert "-o smtpd_sasl_auth_enable=yes" in submission
    assert "-o smtpd_relay_restrictions=permit_sasl_authenticated,reject" in submission
    assert "reject_sender_login_mismatch" in submission
    submissions = master.split("\nsubmissions ")[1].split("\npickup ")[0]
    assert "-o smtpd_tls_wrappermode=yes" in submissions
    assert "smtpd_tls_security_level" not in submissions  # PF-07: ignored with wrappermode
    assert "submission/inet" not in master_services(multi, "mx2")


def test_backup_mx_accepts_only_existing_recipients(multi) -> None:
    params = main_cf(multi, "mx2")
    assert params["relay_domains"] == "lmdb:/etc/postfix/relay_domains"
    assert params["relay_recipient_maps"] == "lmdb:/etc/postfix/relay_recipients"
    assert "virtual_mailbox_domains" not in params
    recipients = text(multi, "mx2", "etc/postfix/relay_recipients")
    assert "alice@acme.example\tOK" in recipients
    assert "taro@xn--r8jz45g.jp\tOK" in recipients
    assert "nobody@xn--r8jz45g.jp" not in recipients


def test_transport_map_lines(multi) -> None:
    transport = text(multi, "mx1", "etc/postfix/transport")
    assert "partner.example\tsmtp:[mx.partner.example]:25\n" in transport
    assert "legacy.acme.example\tsmtp:[mail.legacy.acme.example]:25\n" in transport


def test_smarthost_credentials_are_secret_and_its_certificate_is_verified(multi) -> None:
    f = multi["out1"].files["etc/postfix/sasl_passwd"]
    assert f.mode == 0o600 and f.secret
    assert f.content.decode().endswith("[smtp.provider.example]:587\tacme:example-smarthost-secret\n")
    params = main_cf(multi, "out1")
    assert params["relayhost"] == "[smtp.provider.example]:587"
    assert params["smtp_tls_security_level"] == "encrypt"  # the site's own hosts: TLS, self-signed allowed
    assert params["smtp_tls_CAfile"] == "/etc/ssl/certs/ca-certificates.crt"
    assert "example-smarthost-secret" not in text(multi, "out1", "etc/postfix/main.cf")
    for host in multi:
        # the password goes only where the certificate is verified for the name (secure); partners keep may
        policy = dict(line.split("\t") for line in text(multi, host, "etc/postfix/tls_policy").splitlines() if not line.startswith("#"))
        assert policy == {
            params["relayhost"]: "secure match=nexthop protocols=>=TLSv1.2",
            "[mx.partner.example]:25": "may",
            "[mail.legacy.acme.example]:25": "may",
        }
        assert not any(p.endswith("smarthost-ca.pem") for p in multi[host].files)


@functools.cache
def _ca_pem() -> bytes:
    return make_pki().ca


def _smarthost_site(tmp_path: Path, tls_ca: str | None = None, host: str = "smtp.provider.example") -> Path:
    site_dir = tmp_path / "site"
    shutil.copytree(EXAMPLES / "multi-host", site_dir)
    site = (site_dir / "site.yaml").read_text()
    site = site.replace("    host: smtp.provider.example\n", f"    host: {host}\n")
    if tls_ca is not None:
        site = site.replace("    password: {env: SMARTHOST_PASSWORD}\n", f"    password: {{env: SMARTHOST_PASSWORD}}\n    tls_ca: {tls_ca}\n")
    (site_dir / "site.yaml").write_text(site)
    return site_dir


def test_a_private_ca_for_the_smarthost_is_shipped_and_trusted_alone(tmp_path: Path) -> None:
    site_dir = _smarthost_site(tmp_path, "{file: certs/provider-ca.pem}")
    (site_dir / "certs").mkdir()
    (site_dir / "certs/provider-ca.pem").write_bytes(b"comment lines are dropped\n" + _ca_pem())
    trees, out = render_example("multi-host", tmp_path, site_dir / "site.yaml")
    manifest = json.loads((out / "manifest.json").read_text())
    for host, tree in trees.items():
        ca = tree.files["etc/ssl/provisioner/smarthost-ca.pem"]
        assert ca.content == _ca_pem() and ca.mode == 0o644 and not ca.secret
        assert "/etc/ssl/provisioner/smarthost-ca.pem" in {e["path"] for e in manifest["hosts"][host]["files"]}
        assert "/etc/ssl/provisioner/smarthost-ca.pem" not in manifest["hosts"][host]["postfix_tables"]
        policy = text(trees, host, "etc/postfix/tls_policy")
        # postconf(5) smtp_tls_trust_anchor_file: with a tafile only its anchors are trusted
        assert "[smtp.provider.example]:587\tsecure match=nexthop protocols=>=TLSv1.2 tafile=/etc/ssl/provisioner/smarthost-ca.pem\n" in policy


def _link_out(site_dir: Path) -> None:
    (site_dir / "certs").symlink_to(site_dir.parent / "elsewhere", target_is_directory=True)
    (site_dir.parent / "elsewhere").mkdir()
    (site_dir.parent / "elsewhere/provider-ca.pem").write_bytes(_ca_pem())


def _put(data: bytes):
    def write(site_dir: Path) -> None:
        (site_dir / "certs").mkdir()
        (site_dir / "certs/provider-ca.pem").write_bytes(data)

    return write


def _device(site_dir: Path) -> None:
    (site_dir / "certs").mkdir()
    (site_dir / "certs/provider-ca.pem").symlink_to("/dev/zero")


def _directory(site_dir: Path) -> None:
    (site_dir / "certs/provider-ca.pem").mkdir(parents=True)


BAD_CA_FILES = {
    "missing": (lambda site_dir: None, "CA file certs/provider-ca.pem not found"),
    "link out of the site directory": (_link_out, "leads outside the site directory"),
    "link to a device": (_device, "leads outside the site directory"),
    "a directory": (_directory, "is not a regular file"),
    "too large": (_put(b"#" * ((1 << 20) + 1)), "is larger than 1024 KiB"),
    "with a private key": (_put(b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"), "holds a private key"),
    "not PEM": (_put(b"\x00\xff binary"), "holds no PEM certificate"),
}


@pytest.mark.parametrize("make, message", BAD_CA_FILES.values(), ids=BAD_CA_FILES.keys())
def test_a_bad_smarthost_ca_file_is_refused_with_its_position(make, message: str, tmp_path: Path) -> None:
    site_dir = _smarthost_site(tmp_path, "{file: certs/provider-ca.pem}")
    make(site_dir)
    with pytest.raises(SiteInvalid) as caught:
        render_example("multi-host", tmp_path, site_dir / "site.yaml")
    problems = [str(p) for p in caught.value.problems]
    assert len(problems) == 1 and ":53:" in problems[0] and "relay.smarthost.tls_ca.file: " in problems[0] and message in problems[0], problems
    assert not (tmp_path / "build").exists()


@pytest.mark.parametrize("host", ["192.0.2.25", "'[192.0.2.25]'", "'2001:db8::25'", "'[2001:db8::25]'"])
def test_a_smarthost_given_as_an_ip_address_is_refused(host: str, tmp_path: Path) -> None:
    site_dir = _smarthost_site(tmp_path, host=host)
    with pytest.raises(SiteInvalid) as caught:
        load_site(site_dir / "site.yaml")
    problems = [str(p) for p in caught.value.problems]
    assert len(problems) == 1 and "relay.smarthost.host: " in problems[0] and "certificate cannot be checked" in problems[0], problems


@pytest.mark.parametrize(
    "tls_ca",
    [
        "{file: ../outside.pem}",
        "{file: certs/../../outside.pem}",
        "{file: /etc/ssl/certs/ca-certificates.crt}",
        '{file: "certs/a\\nb.pem"}',
        '{file: "certs/ca.pem\\n"}',
        '{file: "certs/\\u202eb.pem"}',
        '{file: "certs/\\0.pem"}',
        "{file: ''}",
        "certs/ca.pem",
        "{path: /x.pem}",
    ],
)
def test_the_smarthost_ca_reference_stays_inside_the_site_directory(tls_ca: str, tmp_path: Path) -> None:
    site_dir = _smarthost_site(tmp_path, tls_ca)
    with pytest.raises(SiteInvalid) as caught:
        load_site(site_dir / "site.yaml")
    problems = [str(p) for p in caught.value.problems]
    assert problems and all(":53:" in p and "relay.smarthost.tls_ca" in p for p in problems), problems


def test_only_declared_address_families_send(multi) -> None:
    assert main_cf(multi, "mx1")["inet_protocols"] == "ipv4, ipv6"
    assert main_cf(multi, "mx2")["inet_protocols"] == "ipv4"  # no IPv6 in SPF for mx2


def test_milter_settings_come_from_opendkim(multi) -> None:
    assert main_cf(multi, "mx1")["smtpd_milters"] == "unix:opendkim/opendkim.sock"
    assert main_cf(multi, "out1")["non_smtpd_milters"] == "unix:opendkim/opendkim.sock"
    assert "smtpd_milters" not in main_cf(multi, "mx2")  # backup MX does not sign; rspamd judges its port 25 (master.cf)
    conf = text(multi, "mx1", "etc/opendkim.conf")
    assert re.search(r"^Mode\s+s$", conf, re.M)  # issue 15: rspamd verifies on mx hosts, OpenDKIM only signs
    assert re.search(r"^Mode\s+s$", text(multi, "out1", "etc/opendkim.conf"), re.M)
    assert "192.168.10.0/24" in text(multi, "out1", "etc/opendkim/TrustedHosts")
    assert "192.168.10.0/24" not in text(multi, "mx1", "etc/opendkim/TrustedHosts")


def test_opendkim_resolves_keys_itself_unless_resolvers_are_given(multi, tmp_path) -> None:
    conf = text(multi, "mx1", "etc/opendkim.conf")
    assert re.search(r"^TrustAnchorFile\s+/usr/share/dns/root.key$", conf, re.M) and "Nameservers" not in conf
    shutil.copytree(EXAMPLES / "multi-host", tmp_path / "site")  # with its secrets/
    site = tmp_path / "site" / "site.yaml"
    site.write_text((EXAMPLES / "multi-host" / "site.yaml").read_text().replace("\npolicy:\n", "\npolicy:\n  resolvers: [192.0.2.53, 2001:db8::53]\n", 1))
    trees, out = render_example("multi-host", tmp_path, site)
    conf = text(trees, "mx1", "etc/opendkim.conf")
    assert re.search(r"^Nameservers\s+192.0.2.53,2001:db8::53$", conf, re.M) and "TrustAnchorFile" not in conf
    judged = tmp_path / "opendkim.conf"  # OpenDKIM's own parser accepts it (paths pointed into the build)
    judged.write_text(conf.replace(":/etc/opendkim/", f":{out / 'mx1'}/etc/opendkim/"))
    result = subprocess.run(["opendkim", "-n", "-x", str(judged)], capture_output=True, text=True, check=False)
    assert result.returncode == 0 and result.stderr == "", result.stderr


def test_opendkim_tables_name_the_active_selectors(multi) -> None:
    signing = text(multi, "mx1", "etc/opendkim/SigningTable")
    assert "*@acme.example s202611a._domainkey.acme.example\n" in signing
    assert "*@acme.example s202611a-ed._domainkey.acme.example\n" in signing
    assert "s202611b" not in signing  # the standby is published, not used
    keytable = text(multi, "mx1", "etc/opendkim/KeyTable")
    assert "s202611a._domainkey.acme.example acme.example:s202611a:/etc/opendkim/keys/s202611a._domainkey.acme.example.private" in keytable
    key = multi["mx1"].files["etc/opendkim/keys/s202611a._domainkey.acme.example.private"]
    assert (key.mode, key.owner, key.group, key.secret) == (0o640, "root", "opendkim", True)
    assert not any("opendkim/keys" in p for p in multi["mx2"].files)  # only signing hosts hold keys


def test_dovecot_passwd_file_and_quota(multi) -> None:
    users = multi["mx1"].files["etc/dovecot/users"]
    assert (users.mode, users.group) == (0o640, "dovecot")
    lines = users.content.decode().splitlines()
    assert any(line.startswith("alice@acme.example:{ARGON2ID}$argon2id$") and line.endswith("userdb_quota_storage_size=2G") for line in lines)  # Dovecot 2.4 (debian-13, the default)
    assert any(line.startswith("bob@acme.example:{ARGON2ID}") for line in lines)  # from secrets/bob.hash
    conf = text(multi, "mx1", "etc/dovecot/dovecot.conf")
    assert "ssl = required" in conf and "inet_listener imap {\n    port = 0" in conf
    assert "etc/dovecot/dovecot.conf" not in multi["mx2"].files


def test_postmaster_gets_local_mail(multi) -> None:
    assert "root: postmaster@acme.example\n" in text(multi, "out1", "etc/postfix/aliases")


def test_manifest_lists_every_file_with_mode_and_owner(tmp_path: Path) -> None:
    trees, out = render_example("multi-host", tmp_path)
    manifest = json.loads((out / "manifest.json").read_text())
    entries = {e["path"]: e for e in manifest["hosts"]["mx1"]["files"]}
    assert set(entries) == {"/" + p for p in trees["mx1"].files}
    assert entries["/etc/postfix/sasl_passwd"]["mode"] == "0600"
    assert entries["/etc/dovecot/users"]["group"] == "dovecot"
    on_disk = out / "mx1/etc/postfix/sasl_passwd"
    assert on_disk.stat().st_mode & 0o777 == 0o600


def test_missing_secret_is_reported_with_its_position(tmp_path: Path) -> None:
    from provisioner.keys.store import ensure_keys
    from provisioner.keys.tls import ensure_tls
    from provisioner.render import render_site
    from provisioner.site.validate import load_site

    site_dir = tmp_path / "site"
    site_dir.mkdir()
    (site_dir / "site.yaml").write_text((EXAMPLES / "multi-host/site.yaml").read_text())
    loaded = load_site(site_dir / "site.yaml")
    keys, _ = ensure_keys(loaded.site, tmp_path / "state", workers=1)
    ensure_tls(loaded.site, keys)
    with pytest.raises(SiteInvalid) as caught:
        render_site(loaded, keys, tmp_path / "state", {})
    messages = [str(p).split(":", 1)[1] for p in caught.value.problems]
    assert messages == [
        "52:15: relay.smarthost.password: environment variable SMARTHOST_PASSWORD is not set (hint: export SMARTHOST_PASSWORD=... before rendering)",
        f"67:19: domains.acme.example.mailboxes.bob.password: secret file secrets/bob.hash not found (looked in {site_dir}) (hint: create it, or fix the path)",
    ]
