"""Issue 15's "Proven by" on the test network: rspamd, installed and run by the role on mx1 and
mx2 (Debian 13, systemd), judges what the outside sends to port 25.

The senders (tests/network/senders.py): reject.test (p=reject), quarantine.test (p=quarantine),
none.test (p=none) and forwarder.test (an ARC sealer in policy.inbound.trusted_forwarders), their
zones and DKIM key served by the test nsd beside the site's; inet (192.0.2.100) is their one
authorised address, "stranger" (192.0.2.66) an address none of them lists.

Case 10: each message of cases 1-7 is read by `provision inspect --site --verify --nameserver
<test nsd>`, as delivered; a refused message has no copy on the server, so it is inspected as
sent, below the Received line and Return-Path mx1 would have written for it. Without --verify
(only what mx1's Authentication-Results say): mx1's field lands right BELOW its own Received line
(Postfix 3.10, rspamd 3.12); inspect --site believes it there because the site's MX hosts remove
every field a message arrives with (test_inspect_without_verify_believes_mx1).
"""

from __future__ import annotations

import email
import email.utils
import json
import re
import uuid
from pathlib import Path

from provisioner.apply import apply
from tests.network.senders import FORWARDER, GTUBE, SELECTOR, STRANGER, broken, forwarded, message, signed
from tests.network.test_network import ADDR, ALICE, BOB, BOB_PW, DOMAIN, FQDN, INFO_A, INFO_PW, Testnet, _inspected, broken_build
from tests.network.test_network import _alice_submits as alice_submits

MX1 = FQDN["mx1"]


def _subject(what: str) -> str:
    return f"{what} {uuid.uuid4().hex[:10]}"


def _send(testnet: Testnet, where: str, host: str, mail_from: str, to: str, data: bytes, tmp_path: Path) -> dict:
    """`where` (inet or stranger) hands `data` to `host`'s port 25 as it is."""
    path = tmp_path / f"{uuid.uuid4().hex}.eml"
    path.write_bytes(data)
    helo = {"inet": "inet.foreign.test", "stranger": STRANGER[1]}[where]
    return testnet.probe(testnet.net.nodes[where], "send_raw", host=ADDR[host], port=25, mail_from=mail_from, to=[to], path=str(path), helo=helo)


def _refused(testnet: Testnet, reply: dict, host: str, peer: str, mark: int, reason: str) -> None:
    """5xx to DATA with `reason`; smtpd's session summary says DATA was not accepted (nothing queued)."""
    assert reply["rcpt"] and all(r[0] == 250 for r in reply["rcpt"].values()), reply
    assert reply["data"][0] == 554 and "5.7.1" in reply["data"][1] and reason in reply["data"][1], reply
    assert testnet.wait_session_end(host, ADDR[peer], mark).get("data") == (0, 1), testnet.log(host)


def _results(path: Path) -> list[str]:
    return [" ".join(v.split()) for v in email.message_from_bytes(path.read_bytes()).get_all("Authentication-Results", [])]


def _dmarc(path: Path) -> str:
    """mx1's DMARC result in the one Authentication-Results field of the delivered message."""
    (field,) = _results(path)
    assert field.startswith(MX1 + ";"), field
    found = re.search(r"\bdmarc=(\w+)", field)
    assert found, field
    return found.group(1)


def _as_sent(tmp_path: Path, data: bytes, peer: str, mail_from: str, to: str) -> Path:
    """A refused message as mx1 would have stored it: its Return-Path and Received line on top."""
    ip, name = {"inet": (ADDR["inet"], "inet.foreign.test"), "stranger": STRANGER}[peer]
    received = f"Received: from {name} ({name} [{ip}])\r\n\tby {MX1} (Postfix) with ESMTPS id 4ABCDEF\r\n\tfor <{to}>; {email.utils.formatdate()}\r\n"
    path = tmp_path / f"as-sent-{uuid.uuid4().hex[:8]}.eml"
    path.write_bytes(f"Return-Path: <{mail_from}>\r\n{received}".encode() + data)
    return path


def _inspect_agrees(testnet: Testnet, path: Path, verdict: str) -> None:
    """Case 10: `provision inspect --site --verify` (the test nsd) gives `verdict` for `path`."""
    report = _inspected(testnet.inspect(testnet.inet, path, "--site", str(testnet.site), "--format", "json"))
    assert report["verdict"] == verdict and report["evidence"] == "verify", (report["verdict"], report["evidence"], report["summary"])


def _folder(path: Path) -> str:
    """The mailbox folder a Maildir file is in (Maildir++: INBOX, or .Junk)."""
    return path.parent.parent.name.lstrip(".") if path.parent.parent.name.startswith(".") else "INBOX"


# ------------------------------------------------------------------------------- 1, 9


def test_spoof_of_our_domain_is_refused_on_both_mx(testnet: Testnet, tmp_path: Path) -> None:
    """Cases 1 and 9: From alice@acme.test, unsigned, from inet's own address (SPF passes for
    foreign.test, which is not aligned): 554 5.7.1 at DATA on mx1 and on the backup MX mx2."""
    for host in ("mx1", "mx2"):
        subject = _subject(f"ceo fraud via {host}")
        data = message(ALICE, BOB, subject)
        mark = testnet.log_mark(host)
        reply = _send(testnet, "inet", host, "mallory@foreign.test", BOB, data, tmp_path)
        _refused(testnet, reply, host, "inet", mark, "not authenticated")
        assert not testnet.maildir("mx1", subject)
    _inspect_agrees(testnet, _as_sent(tmp_path, data, "inet", "mallory@foreign.test", BOB), "fail")


# ------------------------------------------------------------------------------- 2, 3


def test_senders_dmarc_reject_refused_and_quarantine_into_junk(testnet: Testnet, tmp_path: Path) -> None:
    """Case 2: p=reject, a broken signature, from the stranger: 554. Case 3: the same for
    p=quarantine: delivered into bob's Junk folder (IMAP: in Junk, not in INBOX)."""
    sent = {}
    for zone in ("reject.test", "quarantine.test"):
        subject = _subject(f"broken {zone}")
        data = broken(signed(message(f"news@{zone}", BOB, subject), zone, SELECTOR, testnet.sender_key))
        mark = testnet.log_mark("mx1")
        sent[zone] = (subject, data, mark, _send(testnet, "stranger", "mx1", f"news@{zone}", BOB, data, tmp_path))
    subject, data, mark, reply = sent["reject.test"]
    _refused(testnet, reply, "mx1", "stranger", mark, "p=reject")
    assert not testnet.maildir("mx1", subject)
    _inspect_agrees(testnet, _as_sent(tmp_path, data, "stranger", "news@reject.test", BOB), "fail")

    subject, _, _, reply = sent["quarantine.test"]
    assert reply["data"][0] == 250, reply
    (path,) = testnet.wait_maildir(subject)
    assert _folder(path) == "Junk" and _dmarc(path) == "fail", (path, _results(path))
    junk = testnet.probe(testnet.client, "imap", host=ADDR["mx1"], user=BOB, password=BOB_PW, folder="Junk")
    inbox = testnet.probe(testnet.client, "imap", host=ADDR["mx1"], user=BOB, password=BOB_PW)
    assert subject in junk["subjects"] and subject not in inbox["subjects"], (junk, inbox)
    _inspect_agrees(testnet, path, "fail")


# ------------------------------------------------------------------------------------ 4


def test_genuine_mail_of_a_reject_domain_reaches_the_inbox(testnet: Testnet, tmp_path: Path) -> None:
    subject = _subject("genuine reject.test")
    data = signed(message("news@reject.test", BOB, subject), "reject.test", SELECTOR, testnet.sender_key)
    reply = _send(testnet, "inet", "mx1", "news@reject.test", BOB, data, tmp_path)
    assert reply["data"][0] == 250, reply
    (path,) = testnet.wait_maildir(subject)
    (field,) = _results(path)
    assert _folder(path) == "INBOX" and field.startswith(MX1 + "; "), field
    assert {m: re.search(rf"\b{m}=(\w+)", field).group(1) for m in ("spf", "dkim", "dmarc")} == dict.fromkeys(("spf", "dkim", "dmarc"), "pass"), field  # type: ignore[union-attr]
    _inspect_agrees(testnet, path, "pass")


# ------------------------------------------------------------------------------------ 5


def test_a_trusted_forwarders_arc_seal_vouches_for_broken_dkim(testnet: Testnet, tmp_path: Path) -> None:
    """reject.test's signed message, its body changed by the list at forwarder.test (DKIM broken,
    SPF is the list's): DMARC fails, the valid ARC chain of a trusted forwarder gets it delivered."""
    subject = _subject("via the list")
    original = signed(message("news@reject.test", BOB, subject), "reject.test", SELECTOR, testnet.sender_key)
    reply = _send(testnet, "inet", "mx1", f"bounce@{FORWARDER}", BOB, forwarded(original, testnet.sender_key), tmp_path)
    assert reply["data"][0] == 250, reply
    (path,) = testnet.wait_maildir(subject)
    (field,) = _results(path)
    assert "arc=pass" in field and _dmarc(path) == "fail", field
    # inspect weighs DMARC, not ARC: it agrees with the server's results (dmarc=fail).
    _inspect_agrees(testnet, path, "fail")


# ------------------------------------------------------------------------------------ 6


def test_gtube_is_refused(testnet: Testnet, tmp_path: Path) -> None:
    """The content filter's test string, in otherwise authentic mail of none.test (SPF aligned)."""
    subject = _subject("gtube")
    data = message("news@none.test", BOB, subject, body=GTUBE + b"\r\n")
    mark = testnet.log_mark("mx1")
    reply = _send(testnet, "inet", "mx1", "news@none.test", BOB, data, tmp_path)
    assert reply["data"][0] == 554 and "5.7.1" in reply["data"][1], reply
    assert testnet.wait_session_end("mx1", ADDR["inet"], mark).get("data") == (0, 1), testnet.log("mx1")
    assert not testnet.maildir("mx1", subject)
    # Refused for its content, not its origin: inspect finds it authentic.
    _inspect_agrees(testnet, _as_sent(tmp_path, data, "inet", "news@none.test", BOB), "pass")


# ------------------------------------------------------------------------------------ 7


def test_a_forged_authentication_results_is_gone_at_delivery(testnet: Testnet, tmp_path: Path) -> None:
    """A sender writes `Authentication-Results: mx1...; dmarc=pass` itself, from an address none.test
    does not authorise (p=none: delivered). Only mx1's own field reaches the mailbox: dmarc=fail."""
    subject = _subject("forged results")
    forged = f"Authentication-Results: {MX1}; spf=pass smtp.mailfrom=none.test; dkim=pass header.d=none.test; dmarc=pass header.from=none.test\r\n"
    data = message("news@none.test", BOB, subject, extra=forged.encode())
    reply = _send(testnet, "stranger", "mx1", "news@none.test", BOB, data, tmp_path)
    assert reply["data"][0] == 250, reply
    (path,) = testnet.wait_maildir(subject)
    (field,) = _results(path)
    assert "spf=fail" in field and _dmarc(path) == "fail", field
    _inspect_agrees(testnet, path, "fail")


# ------------------------------------------------------------------------------------ 8


def test_our_users_mail_to_another_of_our_domains_is_signed_not_judged(testnet: Testnet) -> None:
    subject = _subject("to the other domain")
    alice_submits(testnet, INFO_A, subject)
    (path,) = testnet.wait_maildir(subject)
    delivered = email.message_from_bytes(path.read_bytes())
    assert _folder(path) == "INBOX" and f"d={DOMAIN};" in " ".join(str(delivered["DKIM-Signature"]).split()), delivered.items()
    assert delivered["X-Spam"] is None and _results(path) == [], delivered.items()  # not judged: no rspamd field
    imap = testnet.probe(testnet.client, "imap", host=ADDR["mx1"], user=INFO_A, password=INFO_PW)
    assert subject in imap["subjects"], imap


# ----------------------------------------------------------------------------------- 10


def test_inspect_without_verify_believes_mx1(testnet: Testnet, tmp_path: Path) -> None:
    """Case 10 without --verify: the verdict from mx1's Authentication-Results alone (genuine mail: pass)."""
    subject = _subject("unverified")
    data = signed(message("news@reject.test", BOB, subject), "reject.test", SELECTOR, testnet.sender_key)
    assert _send(testnet, "inet", "mx1", "news@reject.test", BOB, data, tmp_path)["data"][0] == 250
    (path,) = testnet.wait_maildir(subject)
    assert _dmarc(path) == "pass"
    report = _inspected(testnet.inspect_unverified(testnet.inet, path, "--site", str(testnet.site), "--format", "json"))
    assert report["verdict"] == "pass", (report["verdict"], report["summary"])


# ------------------------------------------------------------------------------ the role


def test_an_rspamd_config_the_filter_refuses_fails_apply_on_that_host_only(testnet: Testnet, tmp_path: Path) -> None:
    """rspamadm configtest exits 0 for a module that refuses its settings: the role reads its
    stderr. mx2's multimap with an unknown selector: refused at validation, mx2's live file and
    rspamd untouched, port 25 still judged; the other hosts fine."""
    live_path = testnet.hosts["mx2"].root / "etc/rspamd/local.d/multimap.conf"
    live = live_path.read_bytes()
    build = broken_build(testnet, tmp_path, "mx2", "/etc/rspamd/local.d/multimap.conf", lambda text: text.replace('selector = "from(', 'selector = "frob('))
    failed = apply(None, build, testnet.inventory, env=testnet.env)
    assert failed.exit_code == 1
    assert [(f.host, f.task) for f in failed.failures] == [("mx2", "Validate the staged rspamd configuration")], failed.failures
    assert "frob" in failed.failures[0].message, failed.failures[0]
    assert failed.stats["mx1"]["failures"] == 0 and failed.stats["out1"]["failures"] == 0, failed.stats
    assert live_path.read_bytes() == live
    assert testnet.hosts["mx2"].run("systemctl", "is-active", "rspamd").stdout.strip() == "active"
    mark = testnet.log_mark("mx2")
    reply = _send(testnet, "inet", "mx2", "mallory@foreign.test", BOB, message(ALICE, BOB, _subject("still judged")), tmp_path)
    _refused(testnet, reply, "mx2", "inet", mark, "not authenticated")


def test_opendkim_is_retired_where_rspamd_took_over(testnet: Testnet) -> None:
    """An mx-only host that ran OpenDKIM (an older build verified with it): the apply stops and
    disables it, and leaves its files."""
    mx2 = testnet.hosts["mx2"]
    mx2.run("apt-get", "install", "-y", "-qq", "--no-install-recommends", "--no-download", "opendkim", timeout=300)
    mx2.run("systemctl", "enable", "--now", "opendkim")
    assert mx2.run("systemctl", "is-active", "opendkim").stdout.strip() == "active"
    applied = testnet.cli("apply", "--yes", "--limit", "mx2", "--format", "json")
    assert applied.returncode == 0, applied.stdout[-3000:] + applied.stderr[-3000:]
    assert mx2.run("systemctl", "is-active", "opendkim", check=False).stdout.strip() == "inactive"
    assert mx2.run("systemctl", "is-enabled", "opendkim", check=False).stdout.strip() == "disabled"
    assert (mx2.root / "etc/opendkim.conf").exists()  # the package's file: never deleted
    again = testnet.cli("apply", "--yes", "--limit", "mx2", "--format", "json")
    assert again.returncode == 0 and json.loads(again.stdout)["stats"]["mx2"]["changed"] == 0, again.stdout[-3000:]
