"""The records of the web side and of ACME (issue 14): mta-sts./autoconfig. only when served, to
the web host; no autodiscover name then; CAA for the site's CA (RFC 8659, accounturi RFC 8657)."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml

from provisioner.dns.formats import octodns_zone, zone_text
from provisioner.dns.records import caa_value, site_records
from provisioner.keys.store import ensure_keys
from provisioner.site.model import Site
from provisioner.site.validate import validate_data
from tests.conftest import EXAMPLES, FIXED_DAY

MULTI = yaml.safe_load((EXAMPLES / "multi-host/site.yaml").read_text())


def site_of(tls: dict | None, change=None) -> Site:
    data = copy.deepcopy(MULTI)
    if tls is not None:
        data["tls"] = tls
    if change:
        change(data)
    site, issues = validate_data(data)
    assert site is not None, issues
    return site


ACME = {"source": "acme", "acme": {"email": "hostmaster@acme.example"}}


@pytest.fixture(scope="module")
def keys_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("state")


def records(site: Site, state: Path):
    keys, _ = ensure_keys(site, state, today=FIXED_DAY, workers=1)
    return site_records(site, keys, FIXED_DAY)


def by_type(rs, rtype: str) -> dict[str, str]:
    return {r.name: r.value for r in rs.records if r.type == rtype}


def test_acme_publishes_the_served_names_at_the_web_host_and_no_autodiscover(keys_dir: Path) -> None:
    before = records(site_of(None), keys_dir)
    after = records(site_of(ACME), keys_dir)
    cnames = by_type(after, "CNAME")
    domains_with_policy = sorted(after.mta_sts_policies)
    assert {n for n in cnames if n.startswith("mta-sts.")} == {f"mta-sts.{d}" for d in domains_with_policy}
    assert all(cnames[f"mta-sts.{d}"] == "mx1.acme.example." for d in domains_with_policy)  # the mailbox host
    assert {n for n in cnames if n.startswith("autoconfig.")} == {n for n in by_type(before, "CNAME") if n.startswith("autoconfig.")}
    assert not [n for n in cnames if n.startswith("autodiscover.")]
    # The note asking to serve the policy by hand goes: it is served.
    assert not [n for n in after.notes if "Serve build/dns/mta-sts" in n.en]
    assert [n for n in before.notes if "Serve build/dns/mta-sts" in n.en]
    # Nothing else changes: the same records but for the web side's and CAA.
    changed = {"CNAME", "CAA"}
    assert {(r.name, r.type, r.value) for r in before.records if r.type not in changed} == {
        (r.name, r.type, r.value) for r in after.records if r.type not in changed
    }


def test_self_signed_and_files_publish_what_they_did(keys_dir: Path) -> None:
    files = {"source": "files", "files": {"cert": "/etc/ssl/c.pem", "key": "/etc/ssl/k.pem"}}
    for tls in (None, files):
        rs = records(site_of(tls), keys_dir)
        cnames = by_type(rs, "CNAME")
        assert not [n for n in cnames if n.startswith("mta-sts.")] and not by_type(rs, "CAA")
        assert cnames["autodiscover.acme.example"] == cnames["autoconfig.acme.example"] == "mx1.acme.example."


def test_mode_none_publishes_no_mta_sts_name(keys_dir: Path) -> None:
    rs = records(site_of(ACME, lambda d: d["policy"].__setitem__("mta_sts", {"mode": "none"})), keys_dir)
    assert not [n for n in by_type(rs, "CNAME") if n.startswith("mta-sts.")]


def test_caa_allows_the_ca_on_every_host_name(keys_dir: Path) -> None:
    site = site_of(ACME)
    caa = by_type(records(site, keys_dir), "CAA")
    assert caa == {h.fqdn: '0 issue "letsencrypt.org"' for h in site.hosts.values()}
    account = site_of({"source": "acme", "acme": {"email": "h@acme.example", "account_uri": "https://acme-v02.api.letsencrypt.org/acme/acct/42"}})
    assert caa_value(account) == '0 issue "letsencrypt.org; accounturi=https://acme-v02.api.letsencrypt.org/acme/acct/42"'
    staging = site_of({"source": "acme", "acme": {"email": "h@acme.example", "directory": "https://acme-staging-v02.api.letsencrypt.org/directory"}})
    assert caa_value(staging) == '0 issue "letsencrypt.org"'


def test_an_unknown_ca_gets_no_caa_but_a_note(keys_dir: Path) -> None:
    site = site_of({"source": "acme", "acme": {"email": "h@acme.example", "directory": "https://pebble.test:14000/dir"}})
    rs = records(site, keys_dir)
    assert not by_type(rs, "CAA")
    assert [n for n in rs.notes if "No CAA record" in n.en]


def test_caa_is_written_in_every_format(keys_dir: Path) -> None:
    rs = records(site_of(ACME), keys_dir)
    assert 'mx1.acme.example.' in zone_text(rs, "acme.example") and '0 issue "letsencrypt.org"' in zone_text(rs, "acme.example")
    octo = yaml.safe_load(octodns_zone(rs, "acme.example"))
    [caa] = [entry for entry in octo["mx1"] if entry["type"] == "CAA"]
    assert caa.get("values", [caa.get("value")]) == [{"flags": 0, "tag": "issue", "value": "letsencrypt.org"}]
