"""Issue 12 item 1, served: `policy.spf.include: [_spf.isp.test]` is published by a real nsd
and judged valid by checkdmarc and by `provision check`, which count the lookups through it.

The site is the bundled all-in-one example with the include added in its site file (so the
site-file type is what accepts it); the provider's zone is served beside the generated ones.
Its own address is 127.0.0.166 (the other served tests use .153 and .154). Beside tests/dns because
checkdmarc builds a dnspython Resolver, which reads /etc/resolv.conf before taking our nameserver
(tests/check refuses that read); every question still goes to the nsd only.
"""

from __future__ import annotations

from pathlib import Path

import checkdmarc.spf

from provisioner.check import Severity, run_check
from provisioner.dns.formats import zone_text
from provisioner.dns.records import site_records
from provisioner.keys.store import ensure_keys
from provisioner.mailauth.resolver import DnsResolver, Nameserver
from provisioner.site.validate import load_site
from tests.check.conftest import BL_ZONE, blocklist_zone
from tests.conftest import EXAMPLES, FIXED_DAY
from tests.dns.conftest import serve, stop

ADDRESS = "127.0.0.166"
PROVIDER = "isp.test"
INCLUDE = f"_spf.{PROVIDER}"
# The provider's record costs two more lookups (an include of its own, an a:): 3 in all.
PROVIDER_ZONE = f"""\
$ORIGIN {PROVIDER}.
$TTL 3600
@ 3600 IN SOA ns1.{PROVIDER}. hostmaster.{PROVIDER}. 1 7200 3600 1209600 3600
@ 3600 IN NS ns1.{PROVIDER}.
ns1 3600 IN A 127.0.0.1
_spf 3600 IN TXT "v=spf1 ip4:198.51.100.0/24 include:_spf2.{PROVIDER} a:smtp.{PROVIDER} -all"
_spf2 3600 IN TXT "v=spf1 ip6:2001:db8:5::/48 -all"
smtp 3600 IN A 198.51.100.25
"""


def test_underscore_include_is_served_and_judged_valid(tmp_path: Path) -> None:
    text = (EXAMPLES / "all-in-one/site.yaml").read_text()
    assert "\npolicy:\n" in text
    text = text.replace("\npolicy:\n", f"\npolicy:\n  spf:\n    include: [{INCLUDE.upper()}]\n  dnsbl: [{{zone: {BL_ZONE}}}]\n", 1)
    (tmp_path / "site").mkdir()
    (tmp_path / "site/site.yaml").write_text(text)
    site = load_site(tmp_path / "site/site.yaml").site
    assert site.policy.spf.include == (INCLUDE,)
    keys, _ = ensure_keys(site, tmp_path / "state", today=FIXED_DAY, workers=1)
    records = site_records(site, keys, today=FIXED_DAY)
    domain = "smallco.example"
    published = next(r.value for r in records.records if r.name == domain and r.type == "TXT" and r.value.startswith("v=spf1"))
    assert f" include:{INCLUDE} " in published
    zones = {z: zone_text(records, z, standalone=True) for z in records.zones()}
    assert f"include:{INCLUDE}" in zones[domain]
    zones[PROVIDER] = PROVIDER_ZONE
    zones[BL_ZONE] = blocklist_zone()

    proc = serve(zones, tmp_path / "nsd", ADDRESS, 53)  # nsd-checkzone and nsd-checkconf first
    try:
        spf = checkdmarc.spf.check_spf(domain, nameservers=[ADDRESS], timeout=3)
        resolver = DnsResolver([Nameserver(ADDRESS, 53)], timeout=2.0)
        report = run_check(site, keys, resolver, dnsbl_resolver=resolver, concurrency=4, today=FIXED_DAY)
    finally:
        stop(proc)

    assert spf["valid"], spf
    assert spf["record"] == published
    assert spf["dns_lookups"] == 3, spf

    spf_findings = [f for f in report.findings if f.domain == domain and f.id.startswith("spf.")]
    assert [f for f in spf_findings if not f.passed] == [], [(f.id, f.seen) for f in spf_findings]
    lookups = next(f for f in spf_findings if f.id == "spf.lookups")
    assert lookups.severity is Severity.PASS and lookups.seen == "3 lookups"
    assert {"spf.match", "spf.authorized"} <= {f.id for f in spf_findings}
    assert report.exit_status() == 0, [(f.id, f.seen) for f in report.findings if not f.passed]
