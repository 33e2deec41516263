"""Inbound authentication as rendered (docs/inbound.md): rspamd's local.d on mx and backup-mx
hosts only, its milter on port 25 only, OpenDKIM signing only, the Junk sieve script; each site
setting reaches the file it governs; rspamd's own configtest (Debian 12 here, Debian 13 in the
judge root), sievec and doveconf accept the result."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml_rs

from provisioner.render.tree import HostTree
from provisioner.site.types import OsRelease
from tests.conftest import EXAMPLES
from tests.render.helpers import render_example, text
from tests.render.inbound_live import conf_dir, configtest, free_port

LOCAL_D = "etc/rspamd/local.d"


def variant(tmp_path: Path, example: str, change: Any) -> tuple[dict[str, HostTree], Path]:
    site = yaml_rs.loads((EXAMPLES / example / "site.yaml").read_text(), parse_datetime=False)
    change(site)
    path = tmp_path / "site" / "site.yaml"
    shutil.copytree(EXAMPLES / example, path.parent)  # its secrets and certificates beside it
    path.write_text(json.dumps(site))
    return render_example(example, tmp_path, path)


def _tuned(site: dict) -> None:
    site["policy"]["inbound"] = {"spam": {"junk": 4.5, "reject": 20}, "trusted_forwarders": ["lists.forwarder.example", "fwd.example"]}
    site["policy"]["resolvers"] = ["192.0.2.53", "2001:db8::53"]
    site["domains"]["legacy.acme.example"]["inbound"] = {"dmarc": "quarantine"}


def _off(site: dict) -> None:
    site["policy"]["inbound"] = {"spam": "off", "dmarc": "monitor"}


def test_rspamd_only_on_hosts_that_receive_internet_mail(tmp_path: Path) -> None:
    trees, _ = render_example("multi-host", tmp_path)
    judged = {host for host, tree in trees.items() if f"{LOCAL_D}/milter_headers.conf" in tree.files}
    assert judged == {h for h, tree in trees.items() if "postscreen" in text(trees, h, "etc/postfix/master.cf")} == {"mx1", "mx2"}
    for host, tree in trees.items():
        master = text(trees, host, "etc/postfix/master.cf")
        main = text(trees, host, "etc/postfix/main.cf")
        assert "11332" not in main  # never in main.cf: submission (587/465) and pickup are signed, not judged
        if host in judged:
            smtpd = master.split("\nsmtpd     pass")[1].split("\n# ")[0]
            assert "-o smtpd_milters=inet:127.0.0.1:11332" in smtpd and "-o milter_default_action=tempfail" in smtpd
            assert master.count("11332") == 1
        if "etc/opendkim.conf" in tree.files:  # OpenDKIM signs only: no second Authentication-Results
            assert "\nMode\t\t\ts\n" in text(trees, host, "etc/opendkim.conf")
    # mx2 (backup-mx, no submission) runs no OpenDKIM at all; mx1 signs submission on 25 too.
    assert "etc/opendkim.conf" not in trees["mx2"].files
    assert "smtpd_milters=inet:127.0.0.1:11332,unix:opendkim/opendkim.sock" in text(trees, "mx1", "etc/postfix/master.cf")


def test_defaults(tmp_path: Path) -> None:
    trees, _ = render_example("multi-host", tmp_path)
    actions = text(trees, "mx1", f"{LOCAL_D}/actions.conf")
    assert "add_header = 6;" in actions and "reject = 15;" in actions and "greylist = null;" in actions
    enforce = text(trees, "mx1", f"{LOCAL_D}/maps/own-enforce.map").splitlines()
    assert {"acme.example", "legacy.acme.example", "xn--r8jz45g.jp", "例え.jp"} <= set(enforce)
    assert not [line for line in text(trees, "mx1", f"{LOCAL_D}/maps/own-quarantine.map").splitlines() if not line.startswith("#")]
    options = text(trees, "mx1", f"{LOCAL_D}/options.inc")
    assert "nameserver" not in options and 'local_addrs = ["127.0.0.0/8", "::1"];' in options
    assert "TRUSTED_FORWARDER" not in text(trees, "mx1", f"{LOCAL_D}/force_actions.conf") + text(trees, "mx1", f"{LOCAL_D}/multimap.conf")
    for module in ("greylist", "rbl", "fuzzy_check", "classifier-bayes", "dkim_signing"):
        assert "enabled = false;" in text(trees, "mx1", f"{LOCAL_D}/{module}.conf")
    assert 'filename = "/var/log/rspamd/rspamd.log";' in text(trees, "mx1", f"{LOCAL_D}/logging.inc")
    settings = text(trees, "mx1", f"{LOCAL_D}/settings.conf")
    assert all(f'"{a}"' in settings for a in ("192.0.2.10", "192.0.2.11", "2001:db8::10", "192.168.10.0/24"))


def test_each_setting_reaches_its_file(tmp_path: Path) -> None:
    trees, _ = variant(tmp_path, "multi-host", _tuned)
    actions = text(trees, "mx2", f"{LOCAL_D}/actions.conf")
    assert "add_header = 4.5;" in actions and "reject = 20;" in actions
    assert 'nameserver = ["192.0.2.53", "2001:db8::53"];' in text(trees, "mx2", f"{LOCAL_D}/options.inc")
    quarantine = text(trees, "mx2", f"{LOCAL_D}/maps/own-quarantine.map").splitlines()
    assert "legacy.acme.example" in quarantine and "legacy.acme.example" not in text(trees, "mx2", f"{LOCAL_D}/maps/own-enforce.map").splitlines()
    forwarders = text(trees, "mx2", f"{LOCAL_D}/maps/trusted-forwarders.map")
    assert r"/(^|;)\s*d\s*=\s*lists\.forwarder\.example\s*(;|$)/i" in forwarders and r"fwd\.example" in forwarders
    assert "TRUSTED_FORWARDER_SEAL" in text(trees, "mx2", f"{LOCAL_D}/multimap.conf")
    rules = text(trees, "mx2", f"{LOCAL_D}/force_actions.conf")
    assert rules.count("!(TRUSTED_FORWARDER_SEAL & ARC_ALLOW)") == 4  # every DMARC verdict but the DNS tempfail yields to a trusted chain

    off, _ = variant(tmp_path / "off", "all-in-one", _off)
    actions = text(off, "mail", f"{LOCAL_D}/actions.conf")
    assert "add_header = null;" in actions and "reject = null;" in actions
    monitor = text(off, "mail", f"{LOCAL_D}/maps/own-monitor.map").splitlines()
    assert "smallco.example" in monitor


def _sites(tmp_path: Path) -> list[tuple[str, dict[str, HostTree], Path]]:
    out = []
    for name, example, change in (("multi-host", "multi-host", None), ("tuned", "multi-host", _tuned), ("off", "all-in-one", _off)):
        here = tmp_path / name
        trees, build = variant(here, example, change) if change else render_example(example, here)
        out.append((name, trees, build))
    return out


@pytest.mark.skipif(shutil.which("rspamadm") is None, reason="rspamd: tests/run.sh installs it")
def test_rspamadm_configtest_debian_12(tmp_path: Path) -> None:
    judged = 0
    for name, trees, build in _sites(tmp_path):
        for host, tree in trees.items():
            if f"{LOCAL_D}/milter_headers.conf" not in tree.files:
                continue
            work = tmp_path / "judge" / name / host
            work.mkdir(parents=True)
            result = configtest(conf_dir(build / host, work, free_port()), work)
            assert result.returncode == 0 and result.stdout.strip() == "syntax OK", (name, host, result.stdout, result.stderr)
            assert result.stderr == "", (name, host, result.stderr)  # a bad selector or symbol is only a message here
            judged += 1
    assert judged == 5


def test_rspamadm_configtest_refuses_a_broken_file(tmp_path: Path) -> None:
    """The judge can fail: a bad selector (exit 0, an error message) and a UCL syntax error (exit 1)."""
    if shutil.which("rspamadm") is None:
        pytest.skip("rspamd: tests/run.sh installs it")
    trees, build = render_example("all-in-one", tmp_path)
    work = tmp_path / "judge"
    work.mkdir()
    conf = conf_dir(build / "mail", work, free_port())
    multimap = conf / "local.d/multimap.conf"
    multimap.write_text(multimap.read_text().replace("from('mime')", "frob('mime')"))
    assert "selector frob is unknown" in configtest(conf, work).stderr
    (conf / "local.d/actions.conf").write_text("reject = ;;\n")
    assert configtest(conf, work).returncode != 0


@pytest.mark.skipif(shutil.which("sievec") is None, reason="dovecot-sieve: tests/run.sh installs it")
def test_sievec_compiles_the_junk_script(tmp_path: Path) -> None:
    trees, build = render_example("all-in-one", tmp_path)
    script = build / "mail/etc/dovecot/sieve/junk.sieve"
    result = subprocess.run(["sievec", str(script), str(tmp_path / "junk.svbin")], capture_output=True, text=True, check=False)
    assert result.returncode == 0 and result.stderr == "", result.stderr
    assert 'fileinto :create "Junk"' in script.read_text() and 'header :is "X-Spam" "Yes"' in script.read_text()


@pytest.mark.skipif(os.geteuid() != 0, reason="the Debian 13 judge root needs root (debootstrap, chroot)")
def test_debian_13_judges(tmp_path: Path) -> None:
    """rspamd 3.12's configtest, Pigeonhole 2.4's sievec and doveconf 2.4 (sieve_script) accept it."""
    from tests.render.trixie_judge import in_root, judge_root, staged

    def trixie(site: dict) -> None:
        site["hosts"]["mail"]["os"] = OsRelease.DEBIAN_13.value
        site["policy"]["resolvers"] = ["192.0.2.53"]  # the root has no resolv.conf (rspamd says so on stderr)

    root = judge_root()
    trees, build = variant(tmp_path, "all-in-one", trixie)
    with staged(root, build / "mail") as inside:
        here = root / str(inside).lstrip("/")
        conf = here / "rspamd"
        shutil.copytree(root / "etc/rspamd", conf)
        shutil.copytree(here / LOCAL_D, conf / "local.d", dirs_exist_ok=True)
        c = Path("/") / conf.relative_to(root)
        result = in_root(root, "rspamadm", f"--var=CONFDIR={c}", f"--var=LOCAL_CONFDIR={c}", "configtest", "-c", f"{c}/rspamd.conf")
        # rspamadm's own resolver, before any configuration: the root has no /etc/resolv.conf.
        noise = "cannot parse resolv.conf and no nameservers defined, so no ways to resolve addresses\n"
        assert result.returncode == 0 and result.stderr.replace(noise, "") == "", result.stderr
        assert in_root(root, "rspamadm", "--version").stdout.startswith("Rspamadm 3.12"), "the judge is rspamd 3.12"
        result = in_root(root, "sievec", f"{inside}/etc/dovecot/sieve/junk.sieve", f"{inside}/junk.svbin")
        assert result.returncode == 0 and result.stderr == "", result.stderr
        dovecot = here / "etc/dovecot/dovecot.conf"
        dovecot.write_text(dovecot.read_text().replace(" /etc/", f" {inside}/etc/").replace("= /etc/", f"= {inside}/etc/"))
        result = in_root(root, "doveconf", "-c", f"{inside}/etc/dovecot/dovecot.conf", "-n")
        assert result.returncode == 0 and result.stderr == "", result.stderr
        assert "sieve_script junk" in result.stdout and "type = before" in result.stdout
