"""rspamd running from the rendered configuration decides as docs/inbound.md says.

Debian's rspamd 3.4 (this machine) with the all-in-one example's local.d, asking nsd on a
loopback address of its own (policy.resolvers) for our zones, as `provision dns` writes them, and
for three senders' zones with DMARC p=reject, p=quarantine and p=none. Messages are scanned the
way the milter hands them over (client address, MAIL FROM, HELO, MTA-Name = myhostname).
"""

from __future__ import annotations

import base64
import json
import shutil
from collections.abc import Iterator
from dataclasses import dataclass

import dkim
import pytest
import yaml_rs
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from provisioner.dns.formats import zone_text
from provisioner.dns.records import site_records
from provisioner.keys.store import KeyState, ensure_keys
from provisioner.site.validate import load_site
from tests.conftest import EXAMPLES, FIXED_DAY
from tests.dns.conftest import serve, stop
from tests.render.helpers import render_example
from tests.render.inbound_live import running, scan

pytestmark = pytest.mark.skipif(shutil.which("rspamd") is None or shutil.which("nsd") is None, reason="rspamd and nsd: tests/run.sh installs them")

DNS = "127.0.0.154"  # nsd's own loopback address (tests/dns uses .153)
OUTSIDE = "203.0.113.5"  # a client no zone authorises
SENDER = "198.51.100.7"  # the senders' authorised address
MX = "mail.smallco.example"
SOA = "@ 3600 IN SOA ns.{z}. hostmaster.{z}. 1 3600 600 86400 300\n@ 3600 IN NS ns.{z}.\nns 3600 IN A 127.0.0.1\n"
GTUBE = b"XJS*C4JDBQADN1.NSBN3*2IDNEN*GTUBE-STANDARD-ANTI-UBE-TEST-EMAIL*C.34X"


@dataclass(frozen=True)
class Filter:
    port: int
    keys: KeyState
    sender_key: bytes


def _txt(text: str) -> str:
    return '"' + text.replace('"', '\\"') + '"'


def _sender_zone(zone: str, policy: str, public: bytes) -> str:
    body = SOA.format(z=zone)
    body += f"@ 3600 IN TXT {_txt(f'v=spf1 ip4:{SENDER} -all')}\n"
    body += f"_dmarc 3600 IN TXT {_txt(f'v=DMARC1; p={policy}')}\n"
    p = public.decode()
    body += f"s1._domainkey 3600 IN TXT {_txt('v=DKIM1; k=rsa; p=' + p[:200])} {_txt(p[200:])}\n"
    return f"$ORIGIN {zone}.\n$TTL 3600\n" + body


@pytest.fixture(scope="module")
def live(tmp_path_factory) -> Iterator[Filter]:
    work = tmp_path_factory.mktemp("inbound-live")
    site = yaml_rs.loads((EXAMPLES / "all-in-one/site.yaml").read_text(), parse_datetime=False)
    site["policy"]["resolvers"] = [DNS]
    site["policy"]["inbound"] = {"trusted_forwarders": ["forwarder.example"]}
    site_path = work / "site.yaml"
    site_path.write_text(json.dumps(site))  # JSON is YAML
    trees, out = render_example("all-in-one", work, site_path)
    options = (out / "mail/etc/rspamd/local.d/options.inc").read_text()
    assert f'nameserver = ["{DNS}"]' in options  # policy.resolvers reaches rspamd: no other resolver is asked
    loaded = load_site(site_path)
    keys, _ = ensure_keys(loaded.site, work / "state", today=FIXED_DAY, workers=1)  # the keys render_example made
    records = site_records(loaded.site, keys, today=FIXED_DAY)
    zones = {z: zone_text(records, z, standalone=True) for z in records.zones()}
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    public = private.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)

    senders = ("reject.example", "quarantine.example", "none.example", "forwarder.example", "other.example")
    for zone, policy in zip(senders, ("reject", "quarantine", "none", "none", "none"), strict=True):
        zones[zone] = _sender_zone(zone, policy, base64.b64encode(public))
    pem = private.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    nsd = serve(zones, work / "nsd", address=DNS)
    try:
        with running(out / "mail", work / "rspamd") as port:
            yield Filter(port, keys, pem)
    finally:
        stop(nsd)


def message(sender: str, body: bytes = b"Lunch at noon?\r\n", extra: bytes = b"") -> bytes:
    return (
        f"From: Someone <{sender}>\r\nTo: Alice <alice@smallco.example>\r\nSubject: lunch\r\n"
        f"Message-ID: <m1@{sender.split('@')[1]}>\r\nDate: Sun, 29 Nov 2026 10:00:00 +0000\r\n".encode()
        + extra
        + b"MIME-Version: 1.0\r\nContent-Type: text/plain\r\n\r\n"
        + body
    )


def signed(msg: bytes, domain: str, selector: str, pem: bytes) -> bytes:
    return dkim.sign(msg, selector.encode(), domain.encode(), pem, include_headers=[b"from", b"to", b"subject", b"date", b"message-id"]) + msg


def ar(result: dict) -> str:
    return str(result["milter"]["add_headers"]["Authentication-Results"]["value"])


def test_spoof_of_our_domain_is_refused_with_a_reason(live: Filter) -> None:
    """Issue 15 case 1: From our domain, unsigned, from an address our SPF does not list."""
    result = scan(live.port, message("ceo@smallco.example"), OUTSIDE, "ceo@smallco.example", "evil.example", MX)
    assert result["action"] == "reject", result["symbols"].keys()
    assert "not authenticated" in result["messages"]["smtp_message"]
    assert "dmarc=fail" in ar(result) and ar(result).startswith(MX + ";")


def test_our_domain_signed_with_our_key_is_taken(live: Filter) -> None:
    """The same From, signed with the site's DKIM key (aligned: RFC 7489 §3.1.1): not a spoof."""
    key = live.keys.signing_keys("smallco.example")[0]
    msg = signed(message("alice@smallco.example"), "smallco.example", key.selector, live.keys.read_private(key))
    result = scan(live.port, msg, OUTSIDE, "alice@smallco.example", "laptop.example", MX)
    assert result["action"] not in ("reject", "soft reject"), result["symbols"].keys()
    assert "dkim=pass" in ar(result) and "dmarc=pass" in ar(result)


def test_site_hosts_are_not_judged(live: Filter) -> None:
    """A site host (here the mx's own address) hands over mail it signed or judged already."""
    result = scan(live.port, message("ceo@smallco.example"), "192.0.2.10", "ceo@smallco.example", MX, MX)
    assert result["action"] not in ("reject", "soft reject", "add header")


def test_senders_dmarc_policies_are_honoured(live: Filter) -> None:
    """Cases 2, 3 and the p=none annotation: reject, Junk (add header), delivered."""
    forced = {}
    for zone in ("reject.example", "quarantine.example", "none.example"):
        result = scan(live.port, message(f"news@{zone}"), OUTSIDE, f"news@{zone}", "evil.example", MX)
        assert "dmarc=fail" in ar(result), (zone, ar(result))
        forced[zone] = sorted(s for s in result["symbols"] if s.startswith("FORCE_ACTION_"))
        if zone == "none.example":  # annotated only: what the score says (this one has no rDNS, an unknown HELO)
            assert result["action"] != "reject" and result["score"] < 15
        else:
            assert result["action"] == {"reject.example": "reject", "quarantine.example": "add header"}[zone]
    # p=quarantine: 'add header' at least (force_actions least = true; a score over it adds nothing).
    assert forced["reject.example"] == ["FORCE_ACTION_DMARC_REJECT"] and forced["none.example"] == []


def test_genuine_mail_of_a_reject_domain_passes(live: Filter) -> None:
    """Case 4: signed with the domain's key, from its SPF-authorised address."""
    msg = signed(message("news@reject.example"), "reject.example", "s1", live.sender_key)
    result = scan(live.port, msg, SENDER, "news@reject.example", "mail.reject.example", MX)
    assert result["action"] == "no action", result["symbols"].keys()
    assert all(f"{m}=pass" in ar(result) for m in ("spf", "dkim", "dmarc")), ar(result)


def test_gtube_is_refused(live: Filter) -> None:
    """Case 6: the content filter's own test string scores over policy.inbound.spam.reject."""
    result = scan(live.port, message("news@none.example", GTUBE + b"\r\n"), OUTSIDE, "news@none.example", "evil.example", MX)
    assert result["action"] == "reject"


def test_a_forged_authentication_results_is_removed(live: Filter) -> None:
    """Case 7 / RFC 8601 §5: every earlier Authentication-Results is removed, ours added."""
    forged = f"Authentication-Results: {MX}; dmarc=pass header.from=none.example\r\n".encode()
    result = scan(live.port, message("news@none.example", extra=forged), OUTSIDE, "news@none.example", "evil.example", MX)
    assert result["milter"]["remove_headers"]["Authentication-Results"] == 0  # 0: all of them
    assert "dmarc=fail" in ar(result)


def forwarded(sealer: str, pem: bytes) -> bytes:
    """A p=reject domain's signed message, its body changed by a list (DKIM broken), sealed by `sealer`."""
    original = signed(message("news@reject.example"), "reject.example", "s1", pem)
    changed = original.replace(b"Lunch at noon?", b"Lunch at noon?\r\n-- \r\nlist footer")
    seen = f"Authentication-Results: lists.{sealer}; dkim=pass header.d=reject.example; spf=pass smtp.mailfrom=reject.example; dmarc=pass\r\n"
    changed = seen.encode() + changed
    return b"".join(dkim.arc_sign(changed, b"s1", sealer.encode(), pem, f"lists.{sealer}".encode())) + changed


def test_a_trusted_forwarders_arc_chain_vouches(live: Filter) -> None:
    """Case 5 / IN-04: DKIM broken by a list, SPF not aligned; the ARC seal of forwarder.example
    (policy.inbound.trusted_forwarders) lifts the p=reject refusal; the same chain by another
    domain does not."""
    verdicts = {}
    for sealer in ("forwarder.example", "other.example"):
        result = scan(live.port, forwarded(sealer, live.sender_key), OUTSIDE, "bounce@" + sealer, "lists." + sealer, MX)
        assert "ARC_ALLOW" in result["symbols"] and "dmarc=fail" in ar(result), (sealer, sorted(result["symbols"]))
        verdicts[sealer] = result["action"]
    assert verdicts["other.example"] == "reject"
    assert verdicts["forwarder.example"] not in ("reject", "soft reject")
