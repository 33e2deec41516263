"""Issue 12 item 11: mail to an IDN domain in its own script (RCPT TO:<info@ビジネス.jp> with
SMTPUTF8, RFC 6531) is accepted like the A-label form, by a real Postfix.

A throwaway Postfix instance (Debian's, its own queue, a loopback port) gets the recipient-side
settings and every lookup table `render` makes for the mailbox host (mx1) and the backup MX
(mx2) of examples/multi-host plus the domain ビジネス.jp. An SMTPUTF8 client then asks RCPT for
hosted, unknown and foreign addresses in both spellings. Left out of the instance, each with its
reason: TLS (no certificate files here; not what is tested), the outbound SMTP client and the
smarthost, milters (no OpenDKIM here), postscreen (master.cf runs smtpd directly), and
mynetworks, replaced so that the loopback client is a stranger and relay control applies.

Delivery: the rendered Dovecot (dovecot.conf with its paths moved into a temporary directory)
and the rendered master.cf service `dovecot` (pipe(8) to dovecot-lda) store the mail; it is read
back from the Maildir. Dovecot 2.3's LMTP offers no SMTPUTF8, and Postfix's lmtp(8) returned such
mail as undeliverable (5.6.7): test_dovecot_lmtp_offers_no_smtputf8 keeps that reason observed.
"""

from __future__ import annotations

import email
import email.message
import email.policy
import os
import re
import shutil
import smtplib
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from provisioner.keys.store import ensure_keys
from provisioner.keys.tls import ensure_tls
from provisioner.render import render_site
from provisioner.render.dovecot import LDA_LOG, USERS_FILE, VMAIL_HOME
from provisioner.render.postfix import DELIVERY_SERVICE, DOVECOT_LDA, VMAIL_UID, VMAIL_USER
from provisioner.render.tree import HostTree
from provisioner.site.types import OsRelease
from provisioner.site.validate import load_site
from tests.conftest import ALICE_HASH, EXAMPLES, FIXED_DAY
from tests.render.helpers import ENV
from tests.render.releases import declared
from tests.render.test_smarthost_tls import MASTER_CF, Instance, free_port, running

pytestmark = [
    pytest.mark.judge,
    pytest.mark.skipif(
        os.geteuid() != 0 or not all(shutil.which(t) for t in ("postfix", "postmap", "postalias")),
        reason="needs root and Debian's postfix (tests/run.sh installs it)",
    ),
]

U_LABEL, A_LABEL = "ビジネス.jp", "xn--yckc3dwa.jp"
EXAMPLE_U, EXAMPLE_A = "例え.jp", "xn--r8jz45g.jp"  # already in examples/multi-host
QUOTA = "1M"  # info@ビジネス.jp: two 600 kB messages do not fit

# Not the recipient side, or replaced by the harness (see the module docstring).
LEFT_OUT = ("smtp_", "smtpd_tls_", "postscreen_", "milter_", "smtpd_milters", "non_smtpd_milters")
LEFT_OUT_KEYS = {"relayhost", "default_transport", "inet_interfaces", "inet_protocols", "maillog_file", "mynetworks"}


@pytest.fixture(scope="module")
def trees(tmp_path_factory: pytest.TempPathFactory) -> dict[str, HostTree]:
    tmp = tmp_path_factory.mktemp("idn")
    site_dir = tmp / "site"
    shutil.copytree(EXAMPLES / "multi-host", site_dir)
    text = (site_dir / "site.yaml").read_text()
    added = f'  {U_LABEL}:\n    mailboxes:\n      info:\n        password: "{ALICE_HASH}"\n        quota: {QUOTA}\n    aliases: {{postmaster: info}}\n'
    assert "\n  legacy.acme.example:\n" in text
    (site_dir / "site.yaml").write_text(text.replace("\n  legacy.acme.example:\n", f"\n{added}  legacy.acme.example:\n", 1))
    declared(site_dir / "site.yaml", OsRelease.DEBIAN_12)  # delivered by this machine's Dovecot 2.3 and Postfix 3.7
    loaded = load_site(site_dir / "site.yaml")
    assert A_LABEL in loaded.site.domains
    keys, _ = ensure_keys(loaded.site, tmp / "state", today=FIXED_DAY, workers=1)
    ensure_tls(loaded.site, keys)
    return render_site(loaded, keys, tmp / "state", ENV)


def recipient_settings(tree: HostTree) -> list[tuple[str, str]]:
    out = []
    for line in tree.files["etc/postfix/main.cf"].content.decode().splitlines():
        key, sep, value = line.partition(" = ")
        if sep and not line.startswith("#") and key not in LEFT_OUT_KEYS and not key.startswith(LEFT_OUT):
            out.append((key, value))
    return out


@contextmanager
def postfix_instance(tree: HostTree, dovecot: Dovecot | None = None) -> Iterator[Instance]:
    """The rendered recipient side; with `dovecot`, the rendered delivery service too, its
    dovecot-lda reading that instance's configuration and running as nobody (no vmail user here)."""
    root = Path(tempfile.mkdtemp(prefix="provision-idn-"))
    root.chmod(0o755)
    etc, data = root / "etc", root / "data"
    for d in (etc, data, root / "queue"):
        d.mkdir(mode=0o755)
    shutil.chown(data, "postfix")
    port = free_port()
    harness = {
        "queue_directory": f"{root}/queue",
        "data_directory": str(data),
        "inet_interfaces": "loopback-only",
        "inet_protocols": "ipv4",
        "mynetworks": "192.0.2.254/32",  # not the client: relay control applies to it
        "maillog_file": f"{root}/maillog",
        "maillog_file_prefixes": str(root),
    }
    rendered = [(k, v.replace("/etc/postfix/", f"{etc}/")) for k, v in recipient_settings(tree)]
    assert not {k for k, _ in rendered} & set(harness), "the harness must not override a rendered setting"
    (etc / "main.cf").write_text("".join(f"{k} = {v}\n" for k, v in [*harness.items(), *rendered]))
    delivery = ""
    if dovecot is not None:
        assert ("virtual_transport", DELIVERY_SERVICE) in rendered
        assert (f"{DELIVERY_SERVICE}_destination_recipient_limit", "1") in rendered
        delivery = delivery_service(tree).replace(f"user={VMAIL_USER}:{VMAIL_USER}", "user=nobody:nogroup")
        delivery = delivery.replace(f"argv={DOVECOT_LDA} ", f"argv={DOVECOT_LDA} -c {dovecot.conf} ")
    (etc / "master.cf").write_text(MASTER_CF.format(port=port) + delivery)
    for _, value in rendered:
        for name in re.findall(rf"lmdb:{re.escape(str(etc))}/(\w+)", value):
            if not (etc / name).exists():
                (etc / name).write_bytes(tree.files[f"etc/postfix/{name}"].content)
                tool = "postalias" if name == "aliases" else "postmap"
                subprocess.run([tool, "-c", str(etc), f"lmdb:{etc / name}"], check=True)
    started = subprocess.run(["postfix", "-c", str(etc), "start"], capture_output=True, text=True, check=False)
    with running(Instance(root, port), etc, started) as instance:
        yield instance


def ask(port: int, recipients: list[str], smtputf8: bool = True) -> list[tuple[int, str]]:
    """EHLO, MAIL FROM (with SMTPUTF8), then one RCPT per address (a fresh transaction each)."""
    replies = []
    with smtplib.SMTP("127.0.0.1", port, timeout=10) as client:
        client.ehlo("client.far.example")
        assert client.has_extn("smtputf8"), "Postfix must announce SMTPUTF8 (smtputf8_enable)"
        for address in recipients:
            code, _ = client.mail("sender@far.example", options=["SMTPUTF8"] if smtputf8 else [])
            assert code == 250
            client.send(f"RCPT TO:<{address}>\r\n".encode())  # raw: smtplib would refuse UTF-8 without SMTPUTF8
            code, reply = client.getreply()
            replies.append((code, reply.decode("utf-8", "replace")))
            client.rset()
    return replies


HOSTED = [
    f"info@{U_LABEL}",
    f"info@{A_LABEL}",
    f"INFO@{U_LABEL.upper()}",  # Postfix case-folds (SMTPUTF8_README); katakana has no case, .JP has
    f"postmaster@{U_LABEL}",
    f"taro@{EXAMPLE_U}",
    f"taro@{EXAMPLE_A}",
    f"postmaster@{EXAMPLE_U}",
]
UNKNOWN = [f"nobody@{U_LABEL}", f"nobody@{A_LABEL}", f"たろう@{U_LABEL}", f"nobody@{EXAMPLE_U}"]
FOREIGN = ["someone@far.example", "someone@外国.jp", "someone@xn--ogt35b.jp"]


@pytest.mark.parametrize("host", ["mx1", "mx2"])
def test_both_spellings_of_an_idn_domain_are_accepted(host: str, trees: dict[str, HostTree]) -> None:
    """mx1 stores the mailboxes (virtual_mailbox_domains); mx2 is a backup MX (relay_domains)."""
    table = "virtual mailbox table" if host == "mx1" else "relay recipient table"
    with postfix_instance(trees[host]) as instance:
        hosted = ask(instance.port, HOSTED)
        unknown = ask(instance.port, UNKNOWN)
        foreign = ask(instance.port, FOREIGN)
        plain = ask(instance.port, [f"info@{U_LABEL}", f"info@{A_LABEL}"], smtputf8=False)
        log = instance.log
    assert [code for code, _ in hosted] == [250] * len(HOSTED), (hosted, log)
    for code, reply in unknown:
        assert code == 550 and f"User unknown in {table}" in reply, (unknown, log)
    for code, reply in foreign:
        assert code == 554 and "Relay access denied" in reply, (foreign, log)
    # RFC 6531 §3.4: a UTF-8 address only after MAIL FROM ... SMTPUTF8; the A-label always.
    assert plain[0][0] == 501 and "Bad recipient address syntax" in plain[0][1], plain
    assert plain[1][0] == 250, plain


@dataclass(frozen=True)
class Dovecot:
    root: Path
    conf: Path
    mail: Path  # the rendered mail home (/var/vmail), moved

    @property
    def lda_log(self) -> str:
        path = self.root / "lda.log"
        return path.read_text(errors="replace") if path.exists() else ""


def delivery_service(tree: HostTree) -> str:
    """The rendered master.cf entry of the delivery service: its line and continuation lines."""
    lines = tree.files["etc/postfix/master.cf"].content.decode().splitlines()
    start = next(i for i, line in enumerate(lines) if line.split()[:1] == [DELIVERY_SERVICE])
    end = next((i for i in range(start + 1, len(lines)) if not lines[i].startswith(" ")), len(lines))
    return "\n".join(lines[start:end]) + "\n"


def rendered_dovecot_conf(tree: HostTree, root: Path) -> str:
    """The rendered dovecot.conf with every host path moved under `root`, the vmail user replaced
    by nobody, and the client ports closed (delivery is what is tested)."""
    text = tree.files["etc/dovecot/dovecot.conf"].content.decode()
    cert, key = re.findall(r"^ssl_(?:cert|key) = <(\S+)$", text, re.M)
    for path in (cert, key):
        (root / "ssl" / Path(path).name).write_bytes(tree.files[path.lstrip("/")].content)
        (root / "ssl" / Path(path).name).chmod(0o600)  # the key as on the host: the LDA (nobody) must not need it
    moved = {
        cert: str(root / "ssl" / Path(cert).name),
        key: str(root / "ssl" / Path(key).name),
        "/var/log/dovecot.log": str(root / "dovecot.log"),
        LDA_LOG: str(root / "lda.log"),
        USERS_FILE: str(root / "users"),
        VMAIL_HOME: str(root / "vmail"),
        "/var/spool/postfix/private/": f"{root}/run/",
        f"user = {VMAIL_USER}\n": "user = nobody\n",
        f"={VMAIL_UID} ": f"={NOBODY} ",
        f"= {VMAIL_UID}\n": f"= {NOBODY}\n",
        "port = 993\n": "port = 0\n",
        "port = 995\n": "port = 0\n",
    }
    for old, new in moved.items():
        assert old in text, old
        text = text.replace(old, new)
    text = re.sub(r"^listen = .*$", "listen = 127.0.0.1", text, flags=re.M)
    return f"base_dir = {root}/run\nstate_dir = {root}/state\ninstance_name = provision-idn-{root.name}\n{text}"


NOBODY = 65534


@contextmanager
def dovecot_instance(tree: HostTree) -> Iterator[Dovecot]:
    """Debian's Dovecot 2.3 with the rendered configuration (paths moved, see above)."""
    if not shutil.which("dovecot"):
        pytest.skip("needs Debian's dovecot (tests/run.sh installs it)")
    root = Path(tempfile.mkdtemp(prefix="provision-idn-dovecot-"))
    root.chmod(0o755)
    for d in ("run", "state", "ssl", "vmail"):
        (root / d).mkdir()
    shutil.chown(root / "vmail", "nobody", "nogroup")
    (root / "lda.log").touch(0o640)
    shutil.chown(root / "lda.log", "nobody", "nogroup")  # as the role creates it for vmail
    (root / "users").write_bytes(tree.files[USERS_FILE.lstrip("/")].content)
    (root / "users").chmod(0o640)
    shutil.chown(root / "users", "root", "dovecot")
    conf = root / "dovecot.conf"
    conf.write_text(rendered_dovecot_conf(tree, root))
    with (root / "start.err").open("wb") as err:  # a pipe would stay open in the daemon's children
        subprocess.run(["dovecot", "-c", str(conf)], check=True, stdout=subprocess.DEVNULL, stderr=err)
    pid_file = root / "run/master.pid"
    try:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and not (root / "run/auth-userdb").exists():
            time.sleep(0.1)
        yield Dovecot(root, conf, root / "vmail")
    finally:
        _stop(pid_file)
        shutil.rmtree(root, ignore_errors=True)


def _stop(pid_file: Path) -> None:
    if pid_file.exists():
        master = int(pid_file.read_text().split()[0])
        os.kill(master, 15)  # the master this test started, by its pid
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and Path(f"/proc/{master}").exists():
            time.sleep(0.1)


def send(instance: Instance, sender: str, recipient: str, subject: str, body: str = "hello\r\n", smtputf8: bool = True) -> str:
    """One message over SMTP (MAIL FROM ... SMTPUTF8 unless told); the queue id Postfix gave."""
    message = f"From: {sender or 'MAILER-DAEMON@far.example'}\r\nTo: {recipient}\r\nSubject: {subject}\r\n\r\n{body}"
    with smtplib.SMTP("127.0.0.1", instance.port, timeout=10) as client:
        client.ehlo("client.far.example")
        code, _ = client.mail(sender, options=["SMTPUTF8"] if smtputf8 else [])
        assert code == 250
        client.send(f"RCPT TO:<{recipient}>\r\n".encode())  # raw: smtplib would refuse UTF-8 addresses
        code, reply = client.getreply()
        assert code == 250, reply
        code, reply = client.data(message.encode())
        assert code == 250, reply
    found = re.search(rb"queued as (\w+)", reply)
    assert found, reply
    return found[1].decode()


def outcome(instance: Instance, queue_id: str) -> str:
    """The delivery agent's log line for `queue_id` (status=sent, bounced or deferred)."""
    pattern = re.compile(rf"postfix/(?:pipe|lmtp)\[\d+\]: {queue_id}: .*status=\w+.*")
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        found = pattern.search(instance.log)
        if found:
            return found[0]
        time.sleep(0.2)
    raise AssertionError(f"no delivery attempt for {queue_id} logged within 30 s:\n" + instance.log)


def stored(dovecot: Dovecot, domain: str, local: str) -> dict[str, email.message.EmailMessage]:
    """The messages in the mailbox's Maildir (new/), by Subject, parsed as the MUA would."""
    out = {}
    for path in (dovecot.mail / domain / local / "Maildir" / "new").glob("*"):
        message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
        assert isinstance(message, email.message.EmailMessage)
        out[str(message["Subject"])] = message
    return out


# (sender, recipient as written, SMTPUTF8, subject): each must reach info@xn--yckc3dwa.jp.
MESSAGES = [
    ("sender@far.example", f"info@{U_LABEL}", True, "件名: U-label recipient"),
    ("sender@far.example", f"info@{A_LABEL}", True, "件名: A-label recipient"),
    ("sender@far.example", f"INFO@{U_LABEL.upper()}", True, "件名: upper case"),
    ("sender@far.example", f"postmaster@{U_LABEL}", True, "件名: alias in the U-label"),
    ("sender@far.example", f"info+tag@{A_LABEL}", True, "件名: with an extension"),
    ("田中@例え.jp", f"info@{U_LABEL}", True, "件名: UTF-8 sender"),
    ("", f"info@{U_LABEL}", True, "件名: null sender"),
    ("sender@far.example", f"info@{A_LABEL}", True, "ASCII subject, SMTPUTF8 requested"),
    ("sender@far.example", f"info@{A_LABEL}", False, "plain ASCII mail"),
]


def test_mail_from_an_smtputf8_sender_is_stored_in_both_spellings(trees: dict[str, HostTree]) -> None:
    """An SMTPUTF8 client writes to info@ビジネス.jp and info@xn--yckc3dwa.jp with a UTF-8
    Subject: Postfix delivers through the rendered dovecot-lda service and each message is in the
    A-label mailbox, headers intact, Return-Path and Delivered-To set; plain ASCII mail too."""
    with dovecot_instance(trees["mx1"]) as dovecot, postfix_instance(trees["mx1"], dovecot) as instance:
        ids = [send(instance, sender, rcpt, subject, smtputf8=flag) for sender, rcpt, flag, subject in MESSAGES]
        lines = [outcome(instance, queue_id) for queue_id in ids]
        mailbox = stored(dovecot, A_LABEL, "info")
        lda_log = dovecot.lda_log
    for line in lines:
        assert "status=sent (delivered via dovecot service)" in line, line
    assert f"to=<info@{A_LABEL}>, orig_to=<info@{U_LABEL}>" in lines[0]
    assert sorted(mailbox) == sorted(subject for *_, subject in MESSAGES), lda_log
    for sender, rcpt, _, subject in MESSAGES:
        message = mailbox[subject]
        assert message["To"] == rcpt
        assert message["Return-Path"] == f"<{sender}>"  # null sender: <>, not MAILER-DAEMON
        assert message["Delivered-To"] in (f"info@{A_LABEL}", f"info+tag@{A_LABEL}")
        assert message.get_content() == "hello\n"
    assert lda_log.count("saved mail to INBOX") == len(MESSAGES), lda_log
    assert "Error" not in lda_log and "Warning" not in lda_log, lda_log  # stats-writer, auth-userdb, log file


def test_a_full_mailbox_bounces_with_the_quota_status(trees: dict[str, HostTree]) -> None:
    """The quota (1M here) holds through dovecot-lda: the message that does not fit is returned
    with 5.2.2 'Mailbox is full' (RFC 3463), as Dovecot's LMTP answered before; nothing is stored."""
    body = ("x" * 998 + "\r\n") * 600  # 600 kB
    with dovecot_instance(trees["mx1"]) as dovecot, postfix_instance(trees["mx1"], dovecot) as instance:
        first = outcome(instance, send(instance, "sender@far.example", f"info@{U_LABEL}", "件名: fits", body))
        second = outcome(instance, send(instance, "sender@far.example", f"info@{U_LABEL}", "件名: too much", body))
        mailbox = stored(dovecot, A_LABEL, "info")
    assert "status=sent" in first, first
    assert "dsn=5.2.2, status=bounced (Mailbox is full" in second, second
    assert sorted(mailbox) == ["件名: fits"]


DOVECOT_LMTP_CONF = """\
base_dir = {root}/run
state_dir = {root}/state
log_path = {root}/log
protocols = lmtp
ssl = no
listen = 127.0.0.1
default_internal_user = nobody
default_login_user = nobody
passdb {{
  driver = static
  args = nopassword=y
}}
userdb {{
  driver = static
  args = uid=nobody gid=nogroup home={root}/mail/%d/%n
}}
service lmtp {{
  inet_listener lmtp {{
    address = 127.0.0.1
    port = {port}
  }}
}}
"""


def test_dovecot_lmtp_offers_no_smtputf8() -> None:
    """Why delivery is not LMTP: Debian's Dovecot 2.3 LMTP does not announce SMTPUTF8 in its LHLO
    reply, and Postfix's lmtp(8) then bounces SMTPUTF8 mail with a UTF-8 address or header
    (5.6.7). When this fails, Dovecot gained SMTPUTF8: LMTP is worth measuring again."""
    if not shutil.which("dovecot"):
        pytest.skip("needs Debian's dovecot (tests/run.sh installs it)")
    root = Path(tempfile.mkdtemp(prefix="provision-idn-lmtp-"))
    root.chmod(0o755)
    for d in ("run", "state"):
        (root / d).mkdir()
    port = free_port()
    (root / "dovecot.conf").write_text(DOVECOT_LMTP_CONF.format(root=root, port=port))
    subprocess.run(["dovecot", "-c", str(root / "dovecot.conf")], check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                client = smtplib.LMTP("127.0.0.1", port, timeout=10)
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
        with client:
            code, _ = client.ehlo("mx1.acme.example")  # smtplib.LMTP sends LHLO
            assert code == 250
            assert client.has_extn("8bitmime") and not client.has_extn("smtputf8"), client.esmtp_features
    finally:
        _stop(root / "run/master.pid")
        shutil.rmtree(root, ignore_errors=True)
