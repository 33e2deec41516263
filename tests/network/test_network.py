"""The issue's test network, end to end: `provision apply` converges three Debian 13 hosts
booting systemd (tests/hosts/nspawn.py) over SSH, then real SMTP, IMAP and POP3 exchanges prove
what the site file promises.

Hosts (systemd-nspawn containers of the trixie golden rootfs, each in its own namespaces and
cgroup; the other nodes are bare network namespaces; all on one bridge, 192.0.2.0/24 only):
    mx1  192.0.2.10   mx, submission, imap, pop3 (mailboxes)
    mx2  192.0.2.20   backup-mx
    out1 192.0.2.11   relay for relay.networks = 192.0.2.192/26
    dns  192.0.2.53   nsd serving the zones provision generated + foreign.test, partner.test
    inet 192.0.2.100  the outside world: tests/network/sink.py, MX of foreign.test; the
                      transport next hop of partner.test (whose own MX, 192.0.2.102, is dead)
    provider 192.0.2.25 the site's smarthost smtp.provider.test (tests/network/smarthost.py):
                      587, STARTTLS, then AUTH with the site's login, certificate from a test CA
                      the site declares; it hands accepted mail on to inet, as a provider would
    client 192.0.2.200 inside relay.networks (no other host is)
    stranger 192.0.2.66 an address no sender's SPF lists (tests/network/test_inbound.py)
nsd also serves the inbound senders' zones (reject.test, quarantine.test, none.test,
forwarder.test: tests/network/senders.py). rspamd judges port 25 on mx1 and mx2.
Site: tests/network/site.yaml (rendered from a copy beside the provider's CA, made per run).
Test passwords: alice -> alice-net-pw, bob -> bob-net-pw; the smarthost: acme-relay.

Outbound port 25 is blocked for the site (OP25B): mail to the world goes mx1/out1 -> provider
-> inet, so inet sees the provider's address, which the site's SPF includes (spf.provider.test).
Only relay.transports (partner.test) still go straight to their next hop.

Needs root, debootstrap, systemd-nspawn (systemd-container), nsd, ssh (client), nc
(netcat-openbsd); the first run builds the trixie golden rootfs from the Debian mirror, later
runs reuse it.
PROVISIONER_SKIP_TESTBED=1 skips it.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from provisioner.dns.formats import zone_text
from provisioner.dns.records import site_records
from provisioner.keys.store import KeyState, ensure_keys
from provisioner.site.validate import load_site
from tests.apply.sites import edited_build
from tests.dns.conftest import nsd_conf
from tests.hosts.nspawn import BootedHost, suite_of
from tests.network.net import DNS_ADDRESS, Network, Node
from tests.network.senders import STRANGER, make_senders
from tests.network.smarthost import PASSWORD_ENV
from tests.render.test_smarthost_tls import make_pki

REPO = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
SITE = HERE / "site.yaml"
PROVISION = str(Path(sys.executable).parent / "provision")
PY = sys.executable
DOMAIN = "acme.test"
ALICE, ALICE_PW = "alice@acme.test", "alice-net-pw"
BOB, BOB_PW = "bob@acme.test", "bob-net-pw"
IDN_U, IDN_A = "ビジネス.test", "xn--yckc3dwa.test"  # the site's IDN domain, as written and as its A-label
INFO_U, INFO_A, INFO_PW = f"info@{IDN_U}", f"info@{IDN_A}", "info-net-pw"  # its mailbox; the login is the A-label
ADDR = {
    "mx1": "192.0.2.10",
    "out1": "192.0.2.11",
    "mx2": "192.0.2.20",
    "provider": "192.0.2.25",
    "stranger": STRANGER[0],
    "inet": "192.0.2.100",
    "client": "192.0.2.200",
}
FQDN = {"mx1": "mx1.acme.test", "mx2": "mx2.acme.test", "out1": "out1.acme.test"}
HOSTS = ("mx1", "mx2", "out1")
RELEASE = "debian-13"  # every host's os: in site.yaml
PROVIDER = "smtp.provider.test"  # relay.smarthost.host
RELAY_USER, RELAY_PW = "acme-relay", "acme-relay-net-pw"  # relay.smarthost.username, the {env:} password
SITE_ENV = {"NETTEST_SMARTHOST_PASSWORD": RELAY_PW}

pytestmark = pytest.mark.skipif(os.environ.get("PROVISIONER_SKIP_TESTBED") == "1", reason="PROVISIONER_SKIP_TESTBED=1")

FOREIGN_ZONES = {
    "foreign.test": f"""\
$ORIGIN foreign.test.
$TTL 300
@ IN SOA ns1.foreign.test. hostmaster.foreign.test. 1 7200 3600 1209600 300
@ IN NS ns1.foreign.test.
ns1 IN A {DNS_ADDRESS}
@ IN MX 10 inet.foreign.test.
inet IN A {ADDR["inet"]}
stranger IN A {STRANGER[0]}
@ IN TXT "v=spf1 ip4:{ADDR["inet"]} -all"
""",
    # The MX is a dead address: mail gets there only by relay.transports.
    "partner.test": """\
$ORIGIN partner.test.
$TTL 300
@ IN SOA ns1.partner.test. hostmaster.partner.test. 1 7200 3600 1209600 300
@ IN NS ns1.foreign.test.
@ IN MX 10 mx.partner.test.
mx IN A 192.0.2.102
""",
    # The smarthost's provider: its server, and the SPF record its customers include.
    "provider.test": f"""\
$ORIGIN provider.test.
$TTL 300
@ IN SOA ns1.provider.test. hostmaster.provider.test. 1 7200 3600 1209600 300
@ IN NS ns1.foreign.test.
smtp IN A {ADDR["provider"]}
spf IN TXT "v=spf1 ip4:{ADDR["provider"]} -all"
""",
}


@dataclass
class Testnet:
    __test__ = False

    net: Network
    site: Path  # the copy of site.yaml beside the provider's CA
    hosts: dict[str, BootedHost]
    inet: Node
    client: Node
    sink: Path
    smarthost: Path  # what tests/network/smarthost.py recorded
    build: Path
    state: Path
    inventory: Path
    env: dict[str, str]
    keys: KeyState
    timings: dict[str, float]
    sender_key: bytes = b""  # the DKIM key of tests/network/senders.py's domains

    def probe(self, where: Node, name: str, **kwargs: object) -> dict:
        result = where.netns_exec(PY, HERE / "probes.py", name, json.dumps(kwargs), timeout=180)
        assert result.returncode == 0, f"{name} in {where.role}: {result.stdout}\n{result.stderr}"
        return json.loads(result.stdout)

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        common = [str(self.site), "-i", str(self.inventory), "--build", str(self.build), "--state", str(self.state)]
        return subprocess.run(
            [PROVISION, *args, *common], capture_output=True, text=True, env={**os.environ, **self.env}, cwd=REPO, timeout=600, stdin=subprocess.DEVNULL
        )

    def sink_messages(self) -> list[dict]:
        return [json.loads(p.read_text()) for p in sorted(self.sink.glob("*.json"))]

    def smarthost_messages(self) -> list[dict]:
        return [json.loads(p.read_text()) for p in sorted(self.smarthost.glob("[0-9]*.json"))]

    def smarthost_sessions(self) -> list[dict]:
        return [json.loads(p.read_text()) for p in sorted(self.smarthost.glob("session-*.json"))]

    def wait_smarthost(self, subject: str, timeout: float = 60) -> dict:
        """The smarthost's record of the message (it is accepted only after a login)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for message in self.smarthost_messages():
                if f"Subject: {subject}" in message["data"]:
                    return message
            time.sleep(0.3)
        raise AssertionError(f"{subject!r} never reached the smarthost; mx1 log:\n{self.log('mx1')}\nout1 log:\n{self.log('out1')}")

    def wait_sink(self, subject: str, timeout: float = 60) -> dict:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for message in self.sink_messages():
                if f"Subject: {subject}" in message["data"]:
                    return message
            time.sleep(0.3)
        raise AssertionError(f"{subject!r} never reached inet; mx1 log:\n{self.log('mx1')}\nout1 log:\n{self.log('out1')}")

    def delivered(self, subject: str, into: Path) -> Path:
        """The message as inet delivered it (Return-Path and its Received line on top), as a file."""
        message = self.wait_sink(subject)
        path = into / f"{subject.replace(' ', '-')}.eml"
        path.write_bytes(message["delivered"].encode("utf-8", "surrogateescape"))
        return path

    def inspect(self, where: Node, path: Path, *args: str) -> subprocess.CompletedProcess[str]:
        """`provision inspect PATH --verify` against the test DNS, from a namespace that reaches it."""
        return where.netns_exec(PROVISION, "inspect", path, "--verify", "--nameserver", DNS_ADDRESS, *args, timeout=120)

    def inspect_unverified(self, where: Node, path: Path, *args: str) -> subprocess.CompletedProcess[str]:
        """`provision inspect PATH` without --verify: only what the headers say."""
        return where.netns_exec(PROVISION, "inspect", path, *args, timeout=120)

    def maildir(self, host: str, subject: str) -> list[Path]:
        base = self.hosts[host].root / "var/vmail"
        return [p for p in base.rglob("*") if p.is_file() and p.parent.name in ("new", "cur") and f"Subject: {subject}".encode() in p.read_bytes()]

    def wait_maildir(self, subject: str, host: str = "mx1", timeout: float = 60) -> list[Path]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = self.maildir(host, subject)
            if found:
                return found
            time.sleep(0.3)
        raise AssertionError(f"{subject!r} never reached a mailbox on {host}:\n{self.log(host)}")

    def log(self, host: str, lines: int | None = 40) -> str:
        path = self.hosts[host].root / POSTFIX_LOG
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines if lines else 0 :]) if path.exists() else "(no log)"

    def log_mark(self, host: str) -> int:
        """Where `host`'s Postfix log ends now: wait_session_end() reads only what follows."""
        path = self.hosts[host].root / POSTFIX_LOG
        return path.stat().st_size if path.exists() else 0

    def wait_session_end(self, host: str, peer: str, mark: int, timeout: float = 30) -> dict[str, tuple[int, int]]:
        """smtpd(8)'s summary of the first SMTP session from `peer` that `host` logged after
        `mark`, written once the client has gone: `disconnect from NAME[PEER] ehlo=1 mail=1
        rcpt=0/9 quit=1 commands=3/12`, as {command: (accepted, sent)}. A session whose rcpt
        count is 0 queued nothing: no mail from it can arrive anywhere later."""
        path = self.hosts[host].root / POSTFIX_LOG
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with path.open("rb") as f:
                f.seek(mark)
                text = f.read().decode(errors="replace")
            for found in SESSION_END.finditer(text):
                if found["peer"] == peer:
                    counts = (item.split("=", 1) for item in found["counts"].split())
                    return {cmd: (int(n.split("/")[0]), int(n.split("/")[-1])) for cmd, n in counts}
            time.sleep(0.2)
        raise AssertionError(f"{host} logged no end of a session from {peer} in {timeout:.0f}s:\n{self.log(host)}")

    def nothing_accepted(self, host: str, peer: str, mark: int) -> None:
        """The session from `peer` ended with no recipient (so no message) accepted."""
        counts = self.wait_session_end(host, peer, mark)
        assert counts.get("rcpt", (0, 0))[0] == 0 and counts.get("data", (0, 0))[0] == 0, (counts, self.log(host))


POSTFIX_LOG = "var/log/postfix.log"  # the site's maillog_file (postlogd)
SESSION_END = re.compile(r"/smtpd\[\d+\]: disconnect from \S*\[(?P<peer>[^\]]+)\](?::\d+)? (?P<counts>[^\n]*)")


def _subject(what: str) -> str:
    return f"{what} {uuid.uuid4().hex[:10]}"


def network(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Testnet]:
    """The package's one test network (conftest.py's `testnet` fixture), torn down after its last test."""
    if os.geteuid() != 0 or not shutil.which("debootstrap"):
        pytest.fail("the test network needs root and debootstrap: run tests/run.sh as root, which installs it")
    for tool in ("nsd", "nc", "ssh", "ssh-keygen", "systemd-nspawn"):
        if not shutil.which(tool):
            pytest.fail(f"{tool} is not installed: tests/run.sh installs it")
    timings: dict[str, float] = {}
    work = tmp_path_factory.mktemp("network")
    build, state = work / "build", work / "state"
    # The provider's test CA, declared by the site (relay.smarthost.tls_ca), and its certificate.
    pki = make_pki(PROVIDER)
    site_path = work / "site" / "site.yaml"
    (site_path.parent / "certs").mkdir(parents=True)
    shutil.copy(SITE, site_path)
    (site_path.parent / "certs/provider-ca.pem").write_bytes(pki.ca)
    (work / "provider.crt").write_bytes(pki.by_ca.cert)
    (work / "provider.key").write_bytes(pki.by_ca.key)
    # Render once first: the DKIM keys it makes are records the DNS must serve (apply renders again).
    rendered = subprocess.run(
        [PROVISION, "render", str(site_path), "-o", str(build), "--state", str(state)], capture_output=True, text=True, cwd=REPO, env={**os.environ, **SITE_ENV}
    )
    assert rendered.returncode == 0, rendered.stdout + rendered.stderr
    site = load_site(site_path).site
    keys, _ = ensure_keys(site, state, workers=1)
    records = site_records(site, keys)
    zones = {zone: zone_text(records, zone, standalone=True) for zone in records.zones()}
    zones["2.0.192.in-addr.arpa"] += "100.2.0.192.in-addr.arpa. 3600 IN PTR inet.foreign.test.\n"
    zones["2.0.192.in-addr.arpa"] += f"25.2.0.192.in-addr.arpa. 3600 IN PTR {PROVIDER}.\n"
    zones["2.0.192.in-addr.arpa"] += f"{STRANGER[0].rsplit('.', 1)[1]}.2.0.192.in-addr.arpa. 3600 IN PTR {STRANGER[1]}.\n"
    zones.update(FOREIGN_ZONES)
    senders = make_senders(ADDR["inet"])
    zones.update(senders.zones)

    net = Network.create()
    try:
        t0 = time.monotonic()
        net.fleet.golden(suite_of(RELEASE))  # built from the mirror on the first run only
        timings["golden"] = time.monotonic() - t0
        t0 = time.monotonic()
        dns_node = net.add_node("dns", DNS_ADDRESS)
        conf = nsd_conf(zones, work / "nsd", DNS_ADDRESS)
        net.start("dns", "nsd", "-d", "-c", conf, log=work / "nsd" / "nsd.out")
        inet = net.add_node("inet", ADDR["inet"])
        sink = work / "sink"
        net.start("inet", PY, HERE / "sink.py", sink, ADDR["inet"], "25", DNS_ADDRESS, log=work / "sink.log")
        net.add_node("provider", ADDR["provider"])
        smarthost = work / "smarthost"
        credentials: list[str | Path] = ["--cert", work / "provider.crt", "--key", work / "provider.key", "--user", RELAY_USER, "--name", PROVIDER]
        hand_on = ["--relay", f"{ADDR['inet']}:25", "--nameserver", DNS_ADDRESS]
        net.start(
            "provider",
            PY,
            HERE / "smarthost.py",
            smarthost,
            ADDR["provider"],
            "587",
            *credentials,
            *hand_on,
            log=work / "smarthost.log",
            env={PASSWORD_ENV: RELAY_PW},
        )
        client = net.add_node("client", ADDR["client"])
        net.add_node("stranger", ADDR["stranger"])
        hosts = net.add_hosts({role: (RELEASE, FQDN[role], ADDR[role]) for role in HOSTS})
        net.wait_port(inet, DNS_ADDRESS, 53)  # nsd listens on TCP too
        net.wait_port(inet, ADDR["inet"], 25)
        net.wait_port(inet, ADDR["provider"], 587)
        timings["network"] = time.monotonic() - t0
        inventory = net.fleet.inventory(work / "hosts.yml", HOSTS, {"mailhost_apt_update_cache": False})
        env = {**net.fleet.ansible_env(), **SITE_ENV}
        tn = Testnet(net, site_path, hosts, inet, client, sink, smarthost, build, state, inventory, env, keys, timings, senders.pem)
        assert dns_node.address == DNS_ADDRESS

        t0 = time.monotonic()
        cold = tn.cli("apply", "--yes", "--format", "json")
        timings["cold_apply"] = time.monotonic() - t0
        assert cold.returncode == 0, cold.stdout[-5000:] + cold.stderr[-5000:]
        stats = json.loads(cold.stdout)["stats"]
        assert set(stats) == set(HOSTS) and all(stats[h]["changed"] > 0 for h in HOSTS), stats
        assert all(h.system_state() == "running" for h in hosts.values()), {r: h.failed_units() for r, h in hosts.items()}
        up = f"network up and booted {timings['network']:.1f}s"
        print(f"\nnetwork: golden {timings['golden']:.1f}s, {up}, cold apply (3 hosts, SSH) {timings['cold_apply']:.1f}s")
        yield tn
    finally:
        net.close()
    assert net.leftovers() == []


# ------------------------------------------------------------------------------------ 10


def test_reapply_changes_nothing_and_plan_is_clean(testnet: Testnet) -> None:
    t0 = time.monotonic()
    again = testnet.cli("apply", "--yes", "--format", "json")
    testnet.timings["reapply"] = time.monotonic() - t0
    assert again.returncode == 0, again.stdout[-5000:] + again.stderr[-5000:]
    stats = json.loads(again.stdout)["stats"]
    assert {h: stats[h]["changed"] for h in HOSTS} == {h: 0 for h in HOSTS}, stats
    t0 = time.monotonic()
    after = testnet.cli("plan")
    testnet.timings["plan"] = time.monotonic() - t0
    assert after.returncode == 0, after.stdout + after.stderr
    print(f"\nnetwork: idempotent re-apply {testnet.timings['reapply']:.1f}s, plan {testnet.timings['plan']:.1f}s")


def test_hosts_have_their_own_names(testnet: Testnet) -> None:
    for role, host in testnet.hosts.items():
        # Debian 13 under systemd, every unit the apply started still up (a dead one: degraded).
        assert host.run("sh", "-c", ". /etc/os-release && echo $VERSION_ID").stdout.strip() == "13"
        assert host.system_state() == "running", (role, host.failed_units())
        assert host.run("systemctl", "is-active", "postfix").stdout.strip() == "active", role
        assert host.run("hostname").stdout.strip() == FQDN[role]
        assert host.run("postconf", "-h", "myhostname").stdout.strip() == FQDN[role]
    banner = testnet.probe(testnet.inet, "send", host=ADDR["mx2"], port=25, mail_from="x@foreign.test", to=["bob@acme.test"], subject="banner only")
    assert banner["banner"][1].startswith("mx2.acme.test ESMTP"), banner


# ------------------------------------------------------------------------------------- 1


def test_submission_and_mailbox_access(testnet: Testnet) -> None:
    s587, s465 = _subject("via 587"), _subject("via 465")
    r = testnet.probe(
        testnet.client, "submit", host=ADDR["mx1"], port=587, tls="starttls", user=ALICE, password=ALICE_PW, mail_from=ALICE, to=[BOB], subject=s587
    )
    assert r["auth"][0] == 235 and r["rcpt"][BOB][0] == 250 and r["data"][0] == 250, r
    r = testnet.probe(testnet.client, "submit", host=ADDR["mx1"], port=465, tls="ssl", user=ALICE, password=ALICE_PW, mail_from=ALICE, to=[BOB], subject=s465)
    assert r["auth"][0] == 235 and r["data"][0] == 250 and r["tls_version"] in ("TLSv1.2", "TLSv1.3"), r
    for subject in (s587, s465):
        (path,) = testnet.wait_maildir(subject)
        assert "/bob/" in str(path) or "bob" in str(path), path
    imap = testnet.probe(testnet.client, "imap", host=ADDR["mx1"], user=BOB, password=BOB_PW)
    assert imap["login"] == "OK" and imap["tls"] in ("TLSv1.2", "TLSv1.3") and {s587, s465} <= set(imap["subjects"]), imap
    pop = testnet.probe(testnet.client, "pop3", host=ADDR["mx1"], user=BOB, password=BOB_PW)
    assert pop["pass"].startswith("+OK") and {s587, s465} <= set(pop["subjects"]), pop


# ------------------------------------------------------------------------------------- 2


def test_auth_only_after_starttls_never_on_25_and_wrong_password(testnet: Testnet) -> None:
    sub = testnet.probe(testnet.client, "features", host=ADDR["mx1"], port=587)
    assert sub["plain"] == {"auth": False, "starttls": True} and sub["tls"]["auth"] is True, sub
    assert "PLAIN" in sub["tls"]["auth_methods"].upper(), sub
    implicit = testnet.probe(testnet.client, "features", host=ADDR["mx1"], port=465, tls="ssl")
    assert implicit["tls"]["auth"] is True, implicit
    for host in ("mx1", "mx2", "out1"):
        smtp = testnet.probe(testnet.client, "features", host=ADDR[host], port=25)
        assert smtp["plain"]["auth"] is False and smtp["plain"]["starttls"] is True and smtp["tls"]["auth"] is False, (host, smtp)
    wrong = testnet.probe(testnet.client, "auth_wrong", host=ADDR["mx1"], port=587, user=ALICE, password="not-alice-net-pw")
    assert wrong["auth"][0] == 535, wrong


# ------------------------------------------------------------------------------------- 3

RELAY_TRICKS = [
    "carol@foreign.test",
    "carol%foreign.test@acme.test",
    "carol%foreign.test@mx1.acme.test",
    "foreign.test!carol@acme.test",
    "foreign.test!carol@mx1.acme.test",
    '"carol@foreign.test"@acme.test',
    '"carol@foreign.test"@mx1.acme.test',
    "@acme.test:carol@foreign.test",
    "@mx1.acme.test:carol@foreign.test",
]


def test_no_relay_from_the_internet(testnet: Testnet) -> None:
    before = len(testnet.sink_messages())
    subject = _subject("relay attempt")
    accepted = {}
    for target in ("mx1", "mx2"):
        mark = testnet.log_mark(target)
        r = testnet.probe(testnet.inet, "send", host=ADDR[target], port=25, mail_from="mallory@foreign.test", to=RELAY_TRICKS, subject=subject)
        assert r["mail"][0] == 250, r
        assert r["auth_offered"] is False
        accepted.update({(target, rcpt): reply for rcpt, reply in r["rcpt"].items() if not 500 <= reply[0] < 600})
        # The server's own word: the session is over and none of its recipients was taken.
        assert testnet.wait_session_end(target, ADDR["inet"], mark).get("rcpt") == (0, len(RELAY_TRICKS)), testnet.log(target)
    relayed = testnet.sink_messages()[before:]
    assert not relayed, relayed
    assert not accepted, (accepted, testnet.log("mx1", 60))
    assert not testnet.maildir("mx1", subject)


# ------------------------------------------------------------------------------------- 4


def test_relay_networks_relay_through_out1_without_auth(testnet: Testnet) -> None:
    subject = _subject("client relay")
    r = testnet.probe(
        testnet.client,
        "send",
        host=ADDR["out1"],
        port=25,
        mail_from="dave@acme.test",
        to=["erin@foreign.test"],
        subject=subject,
        helo="client.acme.test",
        starttls=True,
    )
    assert r["rcpt"]["erin@foreign.test"][0] == 250 and r["data"][0] == 250, r
    via = _via_smarthost(testnet, subject, "out1")
    assert via["rcpt_to"] == ["erin@foreign.test"], via
    got = testnet.wait_sink(subject)
    assert got["peer"] == ADDR["provider"] and got["rcpt_to"] == ["erin@foreign.test"] and got["helo"] == PROVIDER, got
    # out1 signs what its networks send for the site's domains; the world sees the provider's
    # address, which passes SPF through the site's include.
    seen = testnet.probe(testnet.inet, "authenticate", path=str(testnet.sink / _name_of(testnet, subject)), nameserver=DNS_ADDRESS, client_ip=ADDR["provider"])
    assert seen["dkim"] is True and seen["d"] == DOMAIN and seen["spf"][0] == "pass", seen

    outside = _subject("outside relay")
    mark = testnet.log_mark("out1")
    r = testnet.probe(testnet.inet, "send", host=ADDR["out1"], port=25, mail_from="mallory@foreign.test", to=["erin@foreign.test"], subject=outside)
    assert all(500 <= reply[0] < 600 for reply in r["rcpt"].values()), r
    testnet.nothing_accepted("out1", ADDR["inet"], mark)
    assert not any(f"Subject: {outside}" in m["data"] for m in testnet.sink_messages())


def _alice_submits(testnet: Testnet, to: str | list[str], subject: str, smtputf8: bool = False) -> dict:
    """alice's mail program: 587, STARTTLS, her login, one message to `to` (with SMTPUTF8 and raw
    UTF-8 headers when asked); the server's replies."""
    to = [to] if isinstance(to, str) else to
    r = testnet.probe(
        testnet.client,
        "submit",
        host=ADDR["mx1"],
        port=587,
        tls="starttls",
        user=ALICE,
        password=ALICE_PW,
        mail_from=ALICE,
        to=to,
        subject=subject,
        smtputf8=smtputf8,
    )
    assert r["data"][0] == 250, r
    return r


def _via_smarthost(testnet: Testnet, subject: str, sender: str) -> dict:
    """The smarthost's record of `subject`: `sender` handed it over after logging in with the
    site's credentials, over TLS that Postfix verified against the site's CA, AUTH only after TLS."""
    via = testnet.wait_smarthost(subject)
    assert (via["peer"], via["helo"], via["user"]) == (ADDR[sender], FQDN[sender], RELAY_USER) and via["tls"] in ("TLSv1.2", "TLSv1.3"), via
    session = json.loads((testnet.smarthost / f"session-{via['session']:04d}.json").read_text())
    logins = [(x["username"], x["password"], x["accepted"]) for x in session["logins"]]
    assert logins == [(RELAY_USER, RELAY_PW, True)] and session["logins"][0]["mechanism"] in ("PLAIN", "LOGIN"), session["logins"]
    assert session["starttls"] and not [line for tls, line in session["lines"] if not tls and line.upper().startswith("AUTH")], session["lines"]
    verified = f"Verified TLS connection established to {PROVIDER}[{ADDR['provider']}]:587"
    assert verified in testnet.log(sender, lines=None), testnet.log(sender)
    return via


def _name_of(testnet: Testnet, subject: str) -> str:
    for path in sorted(testnet.sink.glob("*.json")):
        if f"Subject: {subject}" in json.loads(path.read_text())["data"]:
            return path.name
    raise AssertionError(subject)


# ------------------------------------------------------------------------------------- 5


def test_outbound_mail_is_dkim_signed_spf_passes_and_aligns(testnet: Testnet) -> None:
    subject = _subject("to the world")
    _alice_submits(testnet, "carol@foreign.test", subject)
    via = _via_smarthost(testnet, subject, "mx1")
    assert via["mail_from"] == ALICE and via["rcpt_to"] == ["carol@foreign.test"], via
    got = testnet.wait_sink(subject)
    assert got["peer"] == ADDR["provider"] and got["helo"] == PROVIDER, got
    (active,) = [k.selector for k in testnet.keys.signing_keys(DOMAIN)]
    seen = testnet.probe(testnet.inet, "authenticate", path=str(testnet.sink / _name_of(testnet, subject)), nameserver=DNS_ADDRESS, client_ip=ADDR["provider"])
    assert seen["dkim"] is True, seen
    assert (seen["d"], seen["s"]) == (DOMAIN, active), seen
    assert seen["spf"][0] == "pass", seen
    assert seen["from"] == ALICE and seen["return_path"].rsplit("@", 1)[1] == seen["from"].rsplit("@", 1)[1] == seen["d"], seen


def test_the_smarthost_hears_auth_only_after_tls_and_checks_the_login(testnet: Testnet) -> None:
    """Every session a site host opened with the provider: STARTTLS first, AUTH only inside TLS,
    the site's login accepted; no host logged a SASL failure. The provider really checks."""
    subject = _subject("smarthost sessions")
    _alice_submits(testnet, "gina@foreign.test", subject)
    _via_smarthost(testnet, subject, "mx1")
    ours = [s for s in testnet.smarthost_sessions() if s["peer"] in (ADDR["mx1"], ADDR["out1"], ADDR["mx2"])]
    assert ours, "no site host talked to the smarthost"
    for session in ours:
        before_tls = [line.split(" ", 1)[0].upper() for tls, line in session["lines"] if not tls]
        assert session["starttls"] and session["tls"] in ("TLSv1.2", "TLSv1.3") and before_tls[-1] == "STARTTLS", session
        assert "AUTH" not in before_tls and "MAIL" not in before_tls, session["lines"]
        assert all((x["username"], x["password"], x["accepted"]) == (RELAY_USER, RELAY_PW, True) for x in session["logins"]), session["logins"]
    for host in HOSTS:
        assert "SASL authentication failed" not in testnet.log(host, lines=None) and "No worthy mechs" not in testnet.log(host, lines=None), testnet.log(host)
    # The provider behaves like a real one, so the checks above can fail: no AUTH before
    # STARTTLS, a wrong password refused, no mail without a login.
    features = testnet.probe(testnet.client, "features", host=ADDR["provider"], port=587)
    assert features["plain"] == {"auth": False, "starttls": True} and features["tls"]["auth"] is True, features
    wrong = testnet.probe(testnet.client, "auth_wrong", host=ADDR["provider"], port=587, user=RELAY_USER, password="not-" + RELAY_PW)
    assert wrong["auth"][0] == 535, wrong
    anonymous = testnet.probe(
        testnet.client, "send", host=ADDR["provider"], port=587, mail_from=ALICE, to=["gina@foreign.test"], subject=subject, starttls=True
    )
    assert anonymous["mail"][0] == 530, anonymous


# ------------------------------------------------------------------------------ inspect
# `provision inspect --verify` reads what the roles' servers wrote and re-checks it over the test DNS.


def _inspected(result: subprocess.CompletedProcess[str]) -> dict:
    assert result.returncode in (0, 2, 3), result.stdout + result.stderr
    return json.loads(result.stdout)


def _border(report: dict) -> dict:
    (border,) = [hop for hop in report["received"] if hop["border"]]
    return border


def test_inspect_outbound_mail_as_the_receiver_sees_it_is_an_aligned_pass(testnet: Testnet, tmp_path: Path) -> None:
    subject = _subject("inspect outbound")
    _alice_submits(testnet, "carol@foreign.test", subject)
    eml = testnet.delivered(subject, tmp_path)
    (active,) = [k.selector for k in testnet.keys.signing_keys(DOMAIN)]

    result = testnet.inspect(testnet.inet, eml, "--trust", "inet.foreign.test", "--format", "json")
    report = _inspected(result)
    assert result.returncode == 0 and report["verdict"] == "pass" and report["evidence"] == "verify", report
    signatures = [(s["domain"], s["selector"], s["alignment"], s["verify"]["result"]) for s in report["signatures"]]
    assert signatures == [(DOMAIN, active, "strict", "pass")], report["signatures"]
    assert (report["spf"]["address"], report["spf"]["domain"], report["spf"]["result"]) == (ADDR["provider"], DOMAIN, "pass"), report["spf"]
    dmarc = report["dmarc"]
    assert dmarc["result"] == "pass" and dmarc["policy"] == "reject" and dmarc["spf_aligned"] is True and DOMAIN in dmarc["dkim_aligned_pass"], dmarc
    # mx1 hands the mail to the smarthost (OP25B), which hands it to inet; inet's line is the border.
    border = _border(report)
    assert (border["ip"], border["from"], border["by"], border["problems"]) == (ADDR["provider"], PROVIDER, "inet.foreign.test", []), border
    assert report["received"][0]["with"] == "ESMTPSA" and report["received"][0]["ip"] == ADDR["client"], report["received"]
    assert [(h["ip"], h["by"], h["with"]) for h in report["received"] if h["by"] == PROVIDER] == [(ADDR["mx1"], PROVIDER, "ESMTPSA")], report["received"]

    ja = testnet.inspect(testnet.inet, eml, "--trust", "inet.foreign.test", "--lang", "ja")
    assert ja.returncode == 0, ja.stdout + ja.stderr
    verdict = ja.stdout.split("判定: ", 1)[1].splitlines()
    assert verdict[0] == "合格: 本物" and "本物です" in verdict[1] and DOMAIN in verdict[1], ja.stdout


def test_inspect_local_mail_signed_on_submission_passes_on_dkim(testnet: Testnet) -> None:
    subject = _subject("inspect local")
    _alice_submits(testnet, BOB, subject)
    (path,) = testnet.wait_maildir(subject)
    (active,) = [k.selector for k in testnet.keys.signing_keys(DOMAIN)]

    result = testnet.inspect(testnet.client, path, "--site", str(testnet.site), "--format", "json")
    report = _inspected(result)
    assert result.returncode == 0 and report["verdict"] == "pass", report
    signatures = [(s["domain"], s["selector"], s["alignment"], s["verify"]["result"]) for s in report["signatures"]]
    assert signatures == [(DOMAIN, active, "strict", "pass")], report["signatures"]
    # The border is the logged-in submission from the client, which SPF does not list: DMARC passes on DKIM.
    border = _border(report)
    assert (border["ip"], border["by"], border["with"], border["authenticated"]) == (ADDR["client"], FQDN["mx1"], "ESMTPSA", True), report["received"]
    assert (report["spf"]["address"], report["spf"]["domain"], report["spf"]["result"]) == (ADDR["client"], DOMAIN, "fail"), report["spf"]
    dmarc = report["dmarc"]
    assert dmarc["result"] == "pass" and dmarc["spf_aligned"] is False and dmarc["dkim_aligned_pass"] == [DOMAIN], dmarc
    assert any("logged in to mx1.acme.test" in s for s in report["summary"]), report["summary"]


# ------------------------------------------------------------------------------------- 6


def test_transport_route_wins_over_mx(testnet: Testnet) -> None:
    subject = _subject("to the partner")
    _alice_submits(testnet, "frank@partner.test", subject)
    got = testnet.wait_sink(subject)
    # partner.test's MX is 192.0.2.102, where nothing listens: this came by the transport, and
    # straight from mx1: a transport-map route is not sent through the smarthost.
    assert got["local"] == ADDR["inet"] and got["peer"] == ADDR["mx1"] and got["rcpt_to"] == ["frank@partner.test"], got


# ------------------------------------------------------------------------------------- 8


def test_sender_login_mismatch(testnet: Testnet) -> None:
    subject = _subject("as bob")
    mark = testnet.log_mark("mx1")
    r = testnet.probe(
        testnet.client,
        "submit",
        host=ADDR["mx1"],
        port=587,
        tls="starttls",
        user=ALICE,
        password=ALICE_PW,
        mail_from=BOB,
        to=["carol@foreign.test"],
        subject=subject,
    )
    assert r["auth"][0] == 235, r
    refused = r["mail"] if r["mail"][0] != 250 else r["rcpt"]["carol@foreign.test"]
    assert refused[0] == 553 and "not owned by user" in refused[1], r
    testnet.nothing_accepted("mx1", ADDR["client"], mark)
    assert not any(f"Subject: {subject}" in m["data"] for m in testnet.sink_messages() + testnet.smarthost_messages())


# ------------------------------------------------------------------------------------- 7


@contextmanager
def _mx1_down(testnet: Testnet) -> Iterator[None]:
    """Postfix on mx1 stopped (mail for the site then goes to the backup MX, which queues it);
    afterwards started again and mx2's queue flushed."""
    mx1 = testnet.hosts["mx1"]
    mx1.run("systemctl", "stop", "postfix", timeout=60)
    try:
        testnet.net.wait_port(testnet.inet, ADDR["mx1"], 25, closed=True)
        yield
    finally:
        mx1.run("systemctl", "start", "postfix", timeout=60)
    testnet.net.wait_port(testnet.inet, ADDR["mx1"], 25)
    testnet.hosts["mx2"].run("postqueue", "-f")


def _queue(testnet: Testnet, host: str) -> list[dict]:
    """`postqueue -j` on `host`: one entry per queued message."""
    return [json.loads(line) for line in testnet.hosts[host].run("postqueue", "-j").stdout.splitlines()]


def _queued_on_mx2(testnet: Testnet, recipient: str, timeout: float = 30) -> None:
    """Until mx2's queue holds a message for `recipient`."""
    deadline = time.monotonic() + timeout
    while not any(recipient in json.dumps(entry, ensure_ascii=False) for entry in _queue(testnet, "mx2")):
        assert time.monotonic() < deadline, (recipient, _queue(testnet, "mx2"), testnet.log("mx2"))
        time.sleep(0.3)


def test_backup_mx_queues_while_primary_is_down(testnet: Testnet) -> None:
    mx2 = testnet.hosts["mx2"]
    subject = _subject("while mx1 is down")
    with _mx1_down(testnet):
        r = testnet.probe(testnet.inet, "mx_deliver", domain=DOMAIN, nameserver=DNS_ADDRESS, mail_from="carol@foreign.test", to=[BOB], subject=subject)
        assert [name for _, name in r["mx"]] == [FQDN["mx1"], FQDN["mx2"]], r
        assert r["delivered_to"] == FQDN["mx2"] and r["tried"][0][0] == FQDN["mx1"], r
        assert r["rcpt"][BOB][0] == 250 and r["data"][0] == 250, r
        nosuch = testnet.probe(
            testnet.inet,
            "mx_deliver",
            domain=DOMAIN,
            nameserver=DNS_ADDRESS,
            mail_from="carol@foreign.test",
            to=["nosuch@acme.test"],
            subject=_subject("nobody"),
        )
        assert nosuch["delivered_to"] == FQDN["mx2"] and nosuch["rcpt"]["nosuch@acme.test"][0] == 550, nosuch
        _queued_on_mx2(testnet, BOB)
        assert not testnet.maildir("mx1", subject)
    (path,) = testnet.wait_maildir(subject, timeout=90)
    assert "bob" in str(path)
    assert mx2.run("postqueue", "-j").stdout.strip() == ""


# ------------------------------------------------------------------------ 11 (issue 12)
# An IDN domain in its own script (ビジネス.test): SMTPUTF8 senders (RFC 6531) reach the mailbox on
# mx1 with either spelling of the domain and a raw UTF-8 Subject (RFC 6532), directly and through
# the backup MX; Postfix hands every message to dovecot-lda (pipe(8): Dovecot 2.3's LMTP offers
# no SMTPUTF8, and Postfix bounced such mail with 5.6.7).

IDN_SUBJECT = "件名テスト"
LDA_LOG = "var/log/dovecot-lda.log"


def _queue_id(reply: list) -> str:
    """The queue file Postfix named in its reply: `250 2.0.0 Ok: queued as QID`."""
    found = re.search(r"queued as (\w+)", reply[1])
    assert reply[0] == 250 and found, reply
    return found.group(1)


def _delivery_lines(testnet: Testnet, host: str, qid: str, timeout: float = 90) -> list[str]:
    """The log lines of queue file `qid` on `host` that report a recipient's status (sent,
    deferred, bounced), once the queue manager has removed the file: every delivery is final."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        lines = testnet.log(host, lines=None).splitlines()
        if any(f" {qid}: removed" in line for line in lines):
            return [line for line in lines if f" {qid}: to=<" in line]
        time.sleep(0.3)
    raise AssertionError(f"queue file {qid} never left {host}'s queue:\n{testnet.log(host)}")


def _stored_by_the_lda(testnet: Testnet, qid: str, message_id: str, recipients: int = 1) -> list[str]:
    """Queue file `qid` on mx1 went to each recipient through the dovecot service (pipe(8) to
    dovecot-lda), which saved it into INBOX and logged no error."""
    lines = _delivery_lines(testnet, "mx1", qid)
    assert len(lines) == recipients, lines
    for line in lines:
        assert "relay=dovecot," in line and "status=sent (delivered via dovecot service)" in line, (line, testnet.log("mx1"))
    lda = testnet.hosts["mx1"].root / LDA_LOG
    text = lda.read_text(errors="replace")
    # Without a sieve script "saved mail to INBOX"; through the Junk sieve script (sieve_before) Pigeonhole's own line.
    stored = re.findall(rf"msgid={re.escape(message_id)}: (?:saved mail to INBOX|stored mail into mailbox 'INBOX')", text)
    assert len(stored) == recipients, text[-3000:]
    assert "Error" not in text and "Fatal" not in text, text[-3000:]
    return lines


def _read_back(testnet: Testnet, user: str, password: str, subjects: set[str]) -> None:
    """The mailbox over IMAPS on mx1, decoded as a mail program shows it."""
    imap = testnet.probe(testnet.client, "imap", host=ADDR["mx1"], user=user, password=password)
    assert imap["login"] == "OK" and subjects <= set(imap["subjects"]), (subjects, imap)


def test_idn_domain_in_both_spellings_reaches_the_mailbox_from_an_smtputf8_sender(testnet: Testnet) -> None:
    sent: dict[str, tuple[str, str]] = {}
    for rcpt in (INFO_U, INFO_A):
        subject = _subject(f"{IDN_SUBJECT} direct")
        # The sender looks up the domain as the recipient wrote it; dnspython asks for its A-label (RFC 5891 §5).
        domain = rcpt.rsplit("@", 1)[1]
        r = testnet.probe(
            testnet.inet, "mx_deliver", domain=domain, nameserver=DNS_ADDRESS, mail_from="carol@foreign.test", to=[rcpt], subject=subject, smtputf8=True
        )
        assert [name for _, name in r["mx"]] == [FQDN["mx1"], FQDN["mx2"]] and r["delivered_to"] == FQDN["mx1"], r
        assert r["smtputf8_offered"] and r["mail"][0] == 250 and r["rcpt"][rcpt][0] == 250, r
        sent[subject] = (_queue_id(r["data"]), r["message_id"])
    for subject, (qid, message_id) in sent.items():
        (line,) = _stored_by_the_lda(testnet, qid, message_id)
        assert f"to=<{INFO_A}>" in line, line  # the U-label is an alias of the A-label mailbox
        (path,) = testnet.wait_maildir(subject)  # stored as sent: the Subject in raw UTF-8
        assert f"/{IDN_A}/info/" in str(path), path
    _read_back(testnet, INFO_A, INFO_PW, set(sent))


def test_idn_domain_through_the_backup_mx(testnet: Testnet) -> None:
    """mx1 down: an SMTPUTF8 sender falls back to mx2, which queues the message; mx1 back, mx2
    passes it on with SMTPUTF8 (mx1 offers it) and mx1 delivers it."""
    subject = _subject(f"{IDN_SUBJECT} via mx2")
    with _mx1_down(testnet):
        r = testnet.probe(
            testnet.inet, "mx_deliver", domain=IDN_U, nameserver=DNS_ADDRESS, mail_from="carol@foreign.test", to=[INFO_U], subject=subject, smtputf8=True
        )
        assert r["delivered_to"] == FQDN["mx2"] and r["tried"][0][0] == FQDN["mx1"], r
        assert r["smtputf8_offered"] and r["rcpt"][INFO_U][0] == 250, r
        on_mx2 = _queue_id(r["data"])
        _queued_on_mx2(testnet, INFO_U)  # mx2 has no mailboxes: it keeps the address as the sender wrote it
    lines = [line for line in _delivery_lines(testnet, "mx2", on_mx2) if "status=sent" in line]
    assert len(lines) == 1 and f"relay={FQDN['mx1']}[{ADDR['mx1']}]:25" in lines[0], (lines, testnet.log("mx2"))
    _stored_by_the_lda(testnet, _queue_id([250, lines[0]]), r["message_id"])
    testnet.wait_maildir(subject)
    _read_back(testnet, INFO_A, INFO_PW, {subject})


def test_submission_with_a_utf8_subject_is_delivered_not_bounced(testnet: Testnet) -> None:
    """alice's mail program (587, SMTPUTF8, raw UTF-8 Subject) to bob and to the IDN mailbox: no 5.6.7."""
    subject = _subject(f"{IDN_SUBJECT} submitted")
    r = _alice_submits(testnet, [BOB, INFO_U], subject, smtputf8=True)
    assert r["auth"][0] == 235 and r["smtputf8_offered"] and r["rcpt"][BOB][0] == r["rcpt"][INFO_U][0] == 250, r
    _stored_by_the_lda(testnet, _queue_id(r["data"]), r["message_id"], recipients=2)
    assert len(testnet.wait_maildir(subject)) == 2
    _read_back(testnet, BOB, BOB_PW, {subject})
    _read_back(testnet, INFO_A, INFO_PW, {subject})
    assert "dsn=5.6.7" not in testnet.log("mx1", lines=None), testnet.log("mx1")


def test_unknown_idn_mailbox_is_refused_at_rcpt(testnet: Testnet) -> None:
    """Refused while the sender is still connected (550), on the mailbox host and the backup MX:
    never accepted and then bounced (backscatter). たろう: a non-ASCII local part, which no
    mailbox can have (the site file accepts ASCII local parts only)."""
    unknown = [f"nobody@{IDN_U}", f"たろう@{IDN_U}", f"nobody@{IDN_A}"]
    for host in ("mx1", "mx2"):
        r = testnet.probe(
            testnet.inet, "send", host=ADDR[host], port=25, mail_from="carol@foreign.test", to=unknown, subject=_subject("nobody"), starttls=True, smtputf8=True
        )
        assert r["smtputf8_offered"] and r["mail"][0] == 250, r
        assert {rcpt: (code, "5.1.1" in text) for rcpt, (code, text) in r["rcpt"].items()} == dict.fromkeys(unknown, (550, True)), (host, r)


# ------------------------------------------------------------------------------------- 9


def broken_build(testnet: Testnet, tmp_path: Path, host: str, path: str, edit: Callable[[str], str]) -> Path:
    """A copy of the build in which `host`'s file `path` is edited (and the manifests agree)."""
    return edited_build(testnet.build, tmp_path / "broken", host, path, edit)


def test_config_failing_validation_fails_apply_on_that_host_only(testnet: Testnet, tmp_path: Path) -> None:
    """A broken main.cf for mx2: apply fails at validation there, mx2 keeps serving, others fine."""
    from provisioner.apply import apply

    broken = broken_build(testnet, tmp_path, "mx2", "/etc/postfix/main.cf", lambda text: text + "this line has no equals sign\n")
    live = (testnet.hosts["mx2"].root / "etc/postfix/main.cf").read_bytes()

    failed = apply(None, broken, testnet.inventory, env=testnet.env)
    assert failed.exit_code == 1
    assert [(f.host, f.task) for f in failed.failures] == [("mx2", "Validate the staged Postfix main.cf")], failed.failures
    assert failed.stats["mx1"]["failures"] == 0 and failed.stats["out1"]["failures"] == 0, failed.stats
    assert (testnet.hosts["mx2"].root / "etc/postfix/main.cf").read_bytes() == live
    r = testnet.probe(testnet.inet, "send", host=ADDR["mx2"], port=25, mail_from="x@foreign.test", to=["nosuch@acme.test"], subject="still serving")
    assert r["banner"][1].startswith("mx2.acme.test ESMTP") and r["rcpt"]["nosuch@acme.test"][0] == 550, r
