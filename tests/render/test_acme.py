"""tls.source acme (issue 14): what render makes for each host, the web side and the certificates.

The site is the bundled multi-host example (mx1 stores the mailboxes, mx2 is the backup MX, out1
relays) switched to acme, so everything else about it is as users have it."""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
from pathlib import Path

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from provisioner.dns.formats import autoconfig_xml
from provisioner.dns.records import mta_sts_id, mta_sts_policy, site_records, web_names
from provisioner.errors import SiteInvalid
from provisioner.keys.store import KeyState
from provisioner.layout import ACME_DEPLOY_HOOK, ACME_LINK_DIR, NGINX_CONF
from provisioner.render.acme import MAX_NAMES, host_certificates
from provisioner.site.model import Host
from provisioner.site.types import Service
from provisioner.site.validate import load_site
from tests.conftest import EXAMPLES
from tests.render.helpers import main_cf, render_example, text

NGINX = NGINX_CONF[1:]
HOOK = ACME_DEPLOY_HOOK[1:]


def acme_site(tmp_path: Path, change=None, example: str = "multi-host") -> Path:
    """A copy of an example with tls.source acme; `change(data)` edits the parsed file first."""
    site = tmp_path / "site" / example / "site.yaml"
    shutil.copytree(EXAMPLES / example, site.parent)
    data = yaml.safe_load(site.read_text())
    data["tls"] = {"source": "acme", "acme": {"email": "hostmaster@acme.example"}}
    if change:
        change(data)
    site.write_text(yaml.safe_dump(data, allow_unicode=True))
    return site


def render(tmp_path: Path, change=None, example: str = "multi-host"):
    return render_example(example, tmp_path, acme_site(tmp_path, change, example))


def test_the_mailbox_host_serves_the_web_side_and_every_host_answers_the_challenge(tmp_path: Path) -> None:
    trees, out = render(tmp_path)
    site = load_site(out.parent / "site/multi-host/site.yaml").site
    web = text(trees, "mx1", NGINX)
    assert "listen 443 ssl" in web and "mta-sts.acme.example" in web and "autoconfig.acme.example" in web
    for host in ("mx2", "out1"):
        conf = text(trees, host, NGINX)
        assert "443" not in conf and "mta-sts" not in conf and "/.well-known/acme-challenge/" in conf, host
        assert not [p for p in trees[host].files if p.startswith("var/www/provisioner/")], host
    # Exactly the policy the records' id hashes, and the autoconfig XML of the DNS build.
    policy_files = {p: f.content.decode() for p, f in trees["mx1"].files.items() if p.startswith("var/www/provisioner/mta-sts/")}
    wanted = {f"var/www/provisioner/mta-sts/{mta_sts_id(t)}.txt": t for t in site_records(site, KeyState(out.parent / "state")).mta_sts_policies.values()}
    assert policy_files == wanted
    assert text(trees, "mx1", "var/www/provisioner/autoconfig/config-v1.1.xml") == autoconfig_xml(site)


def test_postfix_and_dovecot_read_the_stable_acme_paths_and_nothing_is_shipped_there(tmp_path: Path) -> None:
    trees, out = render(tmp_path)
    for host, tree in trees.items():
        fqdn = load_site(out.parent / "site/multi-host/site.yaml").site.hosts[host].fqdn
        chain = main_cf(trees, host)["smtpd_tls_chain_files"]
        assert chain.split(", ") == [f"{ACME_LINK_DIR}/{fqdn}/privkey.pem", f"{ACME_LINK_DIR}/{fqdn}/fullchain.pem"], chain
        if "etc/dovecot/dovecot.conf" in tree.files:
            assert f"{ACME_LINK_DIR}/{fqdn}/fullchain.pem" in text(trees, host, "etc/dovecot/dovecot.conf")
        # Certbot and the role make what is there; a shipped file would fight the deploy hook.
        assert not [p for p in tree.files if p.startswith(("etc/ssl/", "etc/letsencrypt/live"))], host
    assert not (out.parent / "state/tls").exists()  # no self-signed pairs are made for acme


def test_the_manifest_tells_the_role_what_to_obtain_and_who_uses_it(tmp_path: Path) -> None:
    _, out = render(tmp_path)
    hosts = json.loads((out / "manifest.json").read_text())["hosts"]
    mx1 = hosts["mx1"]["layout"]
    assert "nginx" in mx1["services"] and mx1["units"]["nginx"] == "nginx"
    acme = mx1["acme"]
    assert acme["email"] == "hostmaster@acme.example"
    assert acme["directory"] == "https://acme-v02.api.letsencrypt.org/directory"  # the default: Let's Encrypt production
    [cert] = acme["certificates"]
    assert cert["name"] == "mx1.acme.example" and cert["names"][0] == "mx1.acme.example"
    assert set(cert["names"][1:]) == {n for _, names in web_names(load_site(out.parent / "site/multi-host/site.yaml").site) for n in names}
    assert cert["services"] == ["postfix", "dovecot", "nginx"]
    out1 = hosts["out1"]["layout"]["acme"]["certificates"]
    assert out1 == [
        {
            "name": "out1.acme.example",
            "names": ["out1.acme.example"],
            "fullchain": f"{ACME_LINK_DIR}/out1.acme.example/fullchain.pem",
            "privkey": f"{ACME_LINK_DIR}/out1.acme.example/privkey.pem",
            "services": ["postfix"],  # out1 runs no Dovecot, and its nginx serves no TLS
        }
    ]


def test_self_signed_and_files_sites_get_no_web_server(tmp_path: Path) -> None:
    for example in ("all-in-one", "multi-host"):
        trees, out = render_example(example, tmp_path / example, None)
        for host, tree in trees.items():
            assert not [p for p in tree.files if "nginx" in p or "letsencrypt" in p or p.startswith("var/www")], (example, host)
        assert all("acme" not in entry["layout"] for entry in json.loads((out / "manifest.json").read_text())["hosts"].values())


def test_a_declared_web_host_takes_the_web_side(tmp_path: Path) -> None:
    def web_on_mx2(data: dict) -> None:
        data["hosts"]["mx2"]["services"].append("web")

    trees, out = render(tmp_path, web_on_mx2)
    assert "listen 443" in text(trees, "mx2", NGINX) and "listen 443" not in text(trees, "mx1", NGINX)
    site = load_site(out.parent / "site/multi-host/site.yaml").site
    cnames = {r.name: r.value for r in site_records(site, KeyState(out.parent / "state")).records if r.type == "CNAME"}
    assert cnames["mta-sts.acme.example"] == "mx2.acme.example." and cnames["autoconfig.acme.example"] == "mx2.acme.example."
    hook = text(trees, "mx1", HOOK)
    assert 'services="postfix:postfix dovecot:dovecot"' in hook  # mx1's nginx only answers the challenge


def test_mode_none_serves_no_policy_and_asks_for_no_mta_sts_name(tmp_path: Path) -> None:
    def no_sts(data: dict) -> None:
        data["policy"]["mta_sts"] = {"mode": "none"}

    trees, out = render(tmp_path, no_sts)
    assert "mta-sts" not in text(trees, "mx1", NGINX)
    assert not [p for p in trees["mx1"].files if "mta-sts" in p]
    layout = json.loads((out / "manifest.json").read_text())["hosts"]["mx1"]["layout"]
    assert not [n for c in layout["acme"]["certificates"] for n in c["names"] if n.startswith("mta-sts.")]


def test_the_deploy_hook_links_the_new_certificate_and_reloads_exactly_its_users(tmp_path: Path) -> None:
    trees, _ = render(tmp_path)
    hook = text(trees, "mx1", HOOK)
    assert trees["mx1"].files[HOOK].mode == 0o755
    links = tmp_path / "links"
    live = tmp_path / "live"
    script = tmp_path / "hook.sh"
    script.write_text(hook.replace(ACME_LINK_DIR, str(links)).replace("/etc/letsencrypt/live", str(live)).replace("/run/systemd/system", str(tmp_path / "none")))
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    calls = tmp_path / "calls"
    (bin_dir / "service").write_text(f'#!/bin/sh\necho "$@" >> {calls}\n')  # records the reloads
    (bin_dir / "service").chmod(0o755)
    env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}"}
    lineage = live / "mx1.acme.example"
    lineage.mkdir(parents=True)
    for name in ("fullchain", "privkey"):
        (lineage / f"{name}.pem").write_text(name)
    # A placeholder file is where the link goes, as on a host before the first certificate.
    (links / "mx1.acme.example").mkdir(parents=True)
    (links / "mx1.acme.example/fullchain.pem").write_text("self-signed placeholder")
    result = subprocess.run(["sh", str(script)], env={**env, "RENEWED_LINEAGE": str(lineage)}, capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr
    for name in ("fullchain", "privkey"):
        path = links / "mx1.acme.example" / f"{name}.pem"
        assert stat.S_ISLNK(path.lstat().st_mode) and os.readlink(path) == f"{lineage}/{name}.pem"
    assert calls.read_text().splitlines() == ["postfix reload", "dovecot reload", "nginx reload"]
    calls.unlink()
    other = subprocess.run(["sh", str(script)], env={**env, "RENEWED_LINEAGE": str(live / "someone-else")}, capture_output=True, text=True, check=False)
    assert other.returncode == 0 and not calls.exists()  # another lineage of the host: left alone


def test_a_failed_reload_fails_the_hook(tmp_path: Path) -> None:
    trees, _ = render(tmp_path)
    script = tmp_path / "hook.sh"
    links, live = tmp_path / "links", tmp_path / "live"
    script.write_text(
        text(trees, "out1", HOOK).replace(ACME_LINK_DIR, str(links)).replace("/etc/letsencrypt/live", str(live)).replace("/run/systemd/system", str(tmp_path / "none"))
    )
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "service").write_text("#!/bin/sh\nexit 1\n")
    (bin_dir / "service").chmod(0o755)
    (live / "out1.acme.example").mkdir(parents=True)
    env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}", "RENEWED_LINEAGE": str(live / "out1.acme.example")}
    assert subprocess.run(["sh", str(script)], env=env, capture_output=True, check=False).returncode == 1  # certbot logs it


def _host() -> Host:
    return Host(fqdn="mx1.a.example", ipv4=("192.0.2.1",), services=(Service.MX, Service.IMAP), mx_priority=10)  # type: ignore[arg-type]


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(min_value=1, max_value=2), max_size=400))
def test_certificates_hold_at_most_100_names_and_never_split_a_domain(sizes: list[int]) -> None:
    web = [(f"d{i}.example", tuple(f"{p}.d{i}.example" for p in ("mta-sts", "autoconfig")[:n])) for i, n in enumerate(sizes)]
    certs = host_certificates(_host(), web)
    assert certs[0].name == "mx1.a.example" and certs[0].names[0] == "mx1.a.example"
    assert [c.name for c in certs[1:]] == [f"mx1.a.example-{i}" for i in range(2, len(certs) + 1)]
    assert all(0 < len(c.names) <= MAX_NAMES for c in certs)
    every = [n for c in certs for n in c.names]
    assert every == ["mx1.a.example"] + [n for _, names in web for n in names]  # each once, in order
    for _, names in web:
        assert len({c.name for c in certs if set(names) & set(c.names)}) == 1
    # Full certificates: a new one starts only when the next domain would not fit.
    for cert, following in zip(certs, certs[1:], strict=False):
        first_domain = following.names[0].split(".", 1)[1]
        assert len(cert.names) + len([n for _, names in web if _ == first_domain for n in names]) > MAX_NAMES


def test_a_big_site_splits_its_certificates_and_nginx_serves_each_name_with_its_own(tmp_path: Path) -> None:
    def many(data: dict) -> None:
        for i in range(60):
            data["domains"][f"d{i:02}.example"] = {"mailboxes": {"u": {"password": data["domains"]["acme.example"]["mailboxes"]["alice"]["password"]}}, "aliases": {"postmaster": "u"}}

    trees, out = render(tmp_path, many)
    certs = json.loads((out / "manifest.json").read_text())["hosts"]["mx1"]["layout"]["acme"]["certificates"]
    assert len(certs) >= 2 and all(len(c["names"]) <= MAX_NAMES for c in certs)
    conf = text(trees, "mx1", NGINX)
    for cert in certs[1:]:
        assert f"ssl_certificate {cert['fullchain']};" in conf
        assert cert["services"] == ["nginx"]  # only nginx reads the web names' certificates
    hook = text(trees, "mx1", HOOK)
    assert all(f'"/etc/letsencrypt/live/{c["name"]}")' in hook for c in certs)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda d: d["hosts"]["mx2"]["services"].append("web"), None),
        (lambda d: d.__setitem__("tls", {"source": "self-signed"}) or d["hosts"]["mx2"]["services"].append("web"), "web is served only with tls.source: acme"),
        (lambda d: [d["hosts"][h]["services"].append("web") for h in ("mx1", "mx2")], "only one host may serve web; mx1 already does"),
        (lambda d: d["tls"].pop("acme"), "source: acme needs tls.acme"),
        (lambda d: d["policy"].__setitem__("mta_sts", {"mode": "enforce"}), None),  # enforce: the certificates are trusted
        (lambda d: d["tls"]["acme"].__setitem__("email", "a@b.example\nx"), "contains characters that are not accepted"),
        (lambda d: d["tls"]["acme"].__setitem__("directory", 'http://ca.example/dir'), "contains characters that are not accepted"),
        (lambda d: d["tls"]["acme"].__setitem__("account_uri", 'https://ca.example/acct/1"; issue'), "contains characters that are not accepted"),
    ],
    ids=["web-on-mx2", "web-self-signed", "two-web-hosts", "no-acme-block", "enforce", "email-newline", "directory-http", "accounturi-quote"],
)
def test_acme_and_web_validation(tmp_path: Path, change, message: str | None) -> None:
    site = acme_site(tmp_path, change)
    if message is None:
        load_site(site)
        return
    with pytest.raises(SiteInvalid) as raised:
        load_site(site)
    shown = "\n".join(str(p) for p in raised.value.problems)
    assert message in shown and "site.yaml:" in shown, shown


def test_policy_text_is_what_the_served_file_holds(tmp_path: Path) -> None:
    trees, out = render(tmp_path)
    site = load_site(out.parent / "site/multi-host/site.yaml").site
    served = text(trees, "mx1", f"var/www/provisioner/mta-sts/{mta_sts_id(mta_sts_policy(site, site.mta_sts_policy('acme.example')))}.txt")
    assert served.startswith("version: STSv1\r\n") and "mx: mx1.acme.example\r\n" in served
