"""Retiring the web side of tls.source acme (issue 14): the layout decides which hosts stop nginx
and certbot's timer (layout.RETIRED_WEB), the role's mailhost_services stops them only where they
are ours. The booted proof is tests/network/test_acme.py (the site goes back to self-signed)."""

from __future__ import annotations

import itertools
import json
import os
import sys
from pathlib import Path

import pytest

from provisioner.layout import ACME_WEBROOT, NGINX_CONF, RELEASE_MAJOR, SERVICE_MARKERS, host_layout
from tests.apply.test_services_module import SYSTEMCTL, services

ACME = {"certificates": [{"name": "mx1.example.test"}]}


@pytest.mark.parametrize("release", sorted(RELEASE_MAJOR))
@pytest.mark.parametrize("present", [set(c) for n in range(len(SERVICE_MARKERS) + 1) for c in itertools.combinations(SERVICE_MARKERS, n)])
@pytest.mark.parametrize("acme", [None, ACME])
def test_nginx_and_the_timer_are_retired_exactly_where_the_tree_no_longer_has_them(release: str, present: set[str], acme: dict | None) -> None:
    layout = host_layout([SERVICE_MARKERS[name] for name in present], release, acme=acme)
    retired = layout["retired_web"]
    assert ("nginx" in retired) == ("nginx" not in present)
    assert ("certbot" in retired) == (acme is None)
    if "nginx" in retired:
        assert retired["nginx"]["unit"] == "nginx" and retired["nginx"]["ours"]["path"] == NGINX_CONF
    if "certbot" in retired:
        assert retired["certbot"]["unit"] == "certbot.timer" and retired["certbot"]["ours"]["contains"] == ACME_WEBROOT
    # Never both running and retired; the rspamd/OpenDKIM retirement is untouched.
    assert not set(retired) & set(layout["services"]) and "opendkim" not in retired


def test_the_rendered_nginx_conf_carries_what_ours_looks_for(tmp_path: Path) -> None:
    from provisioner.templating import render_template

    text = render_template(
        "nginx/nginx.conf.j2",
        site="s",
        host="h",
        web=False,
        ipv6=False,
        webroot=ACME_WEBROOT,
        mta_sts=[],
        servers=[],
        default_cert=type("C", (), {"fullchain": "/f", "privkey": "/k"})(),
        mta_sts_root="/m",
        autoconfig_file="/a",
    )
    assert host_layout([], "debian-13")["retired_web"]["nginx"]["ours"]["contains"] in text.splitlines()[0]


@pytest.fixture
def systemctl(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    fake = tmp_path / "bin" / "systemctl"
    fake.parent.mkdir()
    fake.write_text(SYSTEMCTL.replace("PYTHON", sys.executable, 1))
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{fake.parent}:{os.environ['PATH']}")
    units = tmp_path / "units.json"
    units.write_text(json.dumps({u: {"LoadState": "loaded", "ActiveState": "active", "UnitFileState": "enabled"} for u in ("nginx.service", "certbot.timer")}))
    monkeypatch.setenv("FAKE_UNITS", str(units))
    return units


def _units(tmp_path: Path, nginx: str, renewals: dict[str, str]) -> dict[str, object]:
    (tmp_path / "nginx.conf").write_text(nginx)
    (tmp_path / "renewal").mkdir(exist_ok=True)
    for name, text in renewals.items():
        (tmp_path / "renewal" / name).write_text(text)
    retired = host_layout([], "debian-13")["retired_web"]
    retired["nginx"]["ours"]["path"] = str(tmp_path / "nginx.conf")
    retired["certbot"]["ours"]["path"] = str(tmp_path / "renewal" / "*.conf")
    return retired


OURS_NGINX = "# Rendered by provision for site s, host h: do not edit\n"
OURS_RENEWAL = f"[renewalparams]\nauthenticator = webroot\nwebroot_path = {ACME_WEBROOT},\n"


@pytest.mark.parametrize(
    ("nginx", "renewals", "stopped"),
    [
        (OURS_NGINX, {"mx1.conf": OURS_RENEWAL, "mx1-2.conf": OURS_RENEWAL}, ["nginx", "certbot"]),
        # A user's own web server, or certbot renewing a certificate of theirs (tls.source files): left running.
        ("user { www-data; }\n", {"mx1.conf": OURS_RENEWAL, "mail.conf": "[renewalparams]\nauthenticator = standalone\n"}, []),
        (OURS_NGINX, {}, ["nginx"]),  # no renewal configuration at all: nothing says the timer is ours
    ],
)
def test_the_module_stops_only_what_is_ours(tmp_path: Path, systemctl: Path, nginx: str, renewals: dict[str, str], stopped: list[str]) -> None:
    units = _units(tmp_path, nginx, renewals)
    report, changed = services.run({"action": "stop", "services": list(units), "units": units})
    assert report["stop"] == stopped and changed == bool(stopped)
    states = json.loads(systemctl.read_text())
    for name, unit in (("nginx", "nginx.service"), ("certbot", "certbot.timer")):
        assert (states[unit]["ActiveState"] == "inactive") == (name in stopped)
    # The files stay.
    assert (tmp_path / "nginx.conf").read_text() == nginx and len(list((tmp_path / "renewal").iterdir())) == len(renewals)


def test_a_unit_that_is_not_installed_is_left_alone(tmp_path: Path, systemctl: Path) -> None:
    systemctl.write_text("{}")
    units = _units(tmp_path, OURS_NGINX, {"mx1.conf": OURS_RENEWAL})
    assert services.run({"action": "stop", "services": list(units), "units": units}) == (
        {"provisioner": "services", "start": [], "started": [], "stop": []},
        False,
    )
