"""Client side of tests/network, run inside a namespace by the venv's python:

    ip netns exec NS .venv/bin/python tests/network/probes.py NAME 'JSON-KWARGS'

prints one JSON object. Real protocol exchanges only (smtplib, imaplib, poplib, dnspython,
dkimpy, pyspf); certificates are self-signed, so TLS is checked for being on, not for trust.
"""

from __future__ import annotations

import email
import email.policy
import email.utils
import imaplib
import json
import poplib
import smtplib
import ssl
import sys
from email.message import EmailMessage

import dns.message
import dns.query
import dns.rdatatype
import dns.resolver

TIMEOUT = 40


def _ctx() -> ssl.SSLContext:
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


def _message(
    mail_from: str,
    to: list[str],
    subject: str,
    body: str = "test body\n",
    from_header: str | None = None,
    headers: list[str] | None = None,
    smtputf8: bool = False,
) -> bytes:
    """The message; with `smtputf8`, UTF-8 header fields are sent as raw UTF-8 (RFC 6532), as an
    SMTPUTF8 client does, not as RFC 2047 encoded words."""
    msg = EmailMessage(policy=email.policy.SMTPUTF8 if smtputf8 else email.policy.default)
    for line in headers or ():  # written by the sender above everything else, as a spammer would
        name, _, value = line.partition(": ")
        msg[name] = value
    msg["From"] = from_header or mail_from
    msg["To"] = ", ".join(to)
    msg["Subject"] = subject
    msg["Date"] = email.utils.formatdate()
    msg["Message-ID"] = email.utils.make_msgid(domain=mail_from.rsplit("@", 1)[-1].encode("idna").decode() or "probe.test")
    msg.set_content(body)
    return msg.as_bytes()


def features(host: str, port: int, helo: str = "probe.foreign.test", tls: str = "starttls") -> dict:
    """EHLO keywords before and after STARTTLS (or on implicit TLS)."""
    out: dict = {}
    s: smtplib.SMTP
    if tls == "ssl":
        s = smtplib.SMTP_SSL(host, port, timeout=TIMEOUT, context=_ctx())
        s.ehlo(helo)
        out["tls"] = {"auth": s.has_extn("auth"), "auth_methods": s.esmtp_features.get("auth", "")}
        s.quit()
        return out
    s = smtplib.SMTP(host, port, timeout=TIMEOUT)
    s.ehlo(helo)
    out["plain"] = {"auth": s.has_extn("auth"), "starttls": s.has_extn("starttls")}
    if s.has_extn("starttls"):
        s.starttls(context=_ctx())
        s.ehlo(helo)
        out["tls"] = {"auth": s.has_extn("auth"), "auth_methods": s.esmtp_features.get("auth", "")}
    s.quit()
    return out


def submit(
    host: str,
    port: int,
    tls: str,
    user: str,
    password: str,
    mail_from: str,
    to: list[str],
    subject: str,
    from_header: str | None = None,
    smtputf8: bool = False,
) -> dict:
    """Authenticated submission; returns the AUTH, MAIL, RCPT and DATA replies."""
    out: dict = {}
    s: smtplib.SMTP
    if tls == "ssl":
        s = smtplib.SMTP_SSL(host, port, timeout=TIMEOUT, context=_ctx())
        s.ehlo("client.acme.test")
    else:
        s = smtplib.SMTP(host, port, timeout=TIMEOUT)
        s.ehlo("client.acme.test")
        s.starttls(context=_ctx())
        s.ehlo("client.acme.test")
    assert isinstance(s.sock, ssl.SSLSocket)
    out["tls_version"] = s.sock.version()
    try:
        code, text = s.login(user, password)
        out["auth"] = [code, text.decode()]
    except smtplib.SMTPAuthenticationError as e:
        out["auth"] = [e.smtp_code, _text(e.smtp_error)]
        s.quit()
        return out
    out.update(_transaction(s, mail_from, to, _message(mail_from, to, subject, from_header=from_header, smtputf8=smtputf8), smtputf8))
    s.quit()
    return out


def _transaction(s: smtplib.SMTP, mail_from: str, to: list[str], data: bytes, smtputf8: bool = False) -> dict:
    """MAIL (with SMTPUTF8 when asked: smtplib then sends the commands as UTF-8, RFC 6531 §3.4),
    each RCPT, DATA; and the message's Message-ID, which the receiving side logs."""
    out: dict = {"smtputf8_offered": s.has_extn("smtputf8"), "message_id": email.message_from_bytes(data)["Message-ID"]}
    code, text = s.mail(mail_from, options=["SMTPUTF8"] if smtputf8 else [])
    out["mail"] = [code, text.decode()]
    if code != 250:
        s.rset()
        return out
    out["rcpt"] = {}
    for rcpt in to:
        # Raw RCPT TO: smtplib.rcpt() would run the address through email.utils.parseaddr,
        # which turns a source route (@a:user@b) into something else.
        code, text = s.docmd("RCPT", f"TO:<{rcpt}>")
        out["rcpt"][rcpt] = [code, text.decode()]
    if any(c == 250 for c, _ in out["rcpt"].values()):
        code, text = s.data(data)
        out["data"] = [code, text.decode()]
    else:
        s.rset()
    return out


def send(
    host: str,
    port: int,
    mail_from: str,
    to: list[str],
    subject: str,
    helo: str = "inet.foreign.test",
    source: str | None = None,
    starttls: bool = False,
    from_header: str | None = None,
    headers: list[str] | None = None,
    smtputf8: bool = False,
) -> dict:
    """Unauthenticated SMTP (port 25): the replies to MAIL, each RCPT, DATA. `from_header`: the
    From field when it is not the envelope sender (a spoof); `smtputf8`: an SMTPUTF8 client."""
    s = smtplib.SMTP(timeout=TIMEOUT, source_address=(source, 0) if source else None)
    code, banner = s.connect(host, port)
    s._host = host  # type: ignore[attr-defined]  # connect() alone leaves it empty; STARTTLS needs it
    out: dict = {"banner": [code, banner.decode()]}
    s.ehlo(helo)
    if starttls and s.has_extn("starttls"):
        s.starttls(context=_ctx())
        s.ehlo(helo)
    out["auth_offered"] = s.has_extn("auth")
    message = _message(mail_from, to, subject, from_header=from_header, headers=headers, smtputf8=smtputf8)
    out.update(_transaction(s, mail_from, to, message, smtputf8))
    s.quit()
    return out


def send_raw(host: str, port: int, mail_from: str, to: list[str], path: str, helo: str = "inet.foreign.test") -> dict:
    """Port 25 with STARTTLS, the message exactly as the file holds it (signed, sealed: not rewritten)."""
    s = smtplib.SMTP(host, port, timeout=TIMEOUT)
    out: dict = {"banner": [s.ehlo(helo)[0], ""]}
    s.starttls(context=_ctx())
    s.ehlo(helo)
    with open(path, "rb") as handle:
        out.update(_transaction(s, mail_from, to, handle.read()))
    s.quit()
    return out


def auth_wrong(host: str, port: int, user: str, password: str) -> dict:
    s = smtplib.SMTP(host, port, timeout=TIMEOUT)
    s.ehlo("client.acme.test")
    s.starttls(context=_ctx())
    s.ehlo("client.acme.test")
    reply: bytes | str
    try:
        code, reply = s.login(user, password)
    except smtplib.SMTPAuthenticationError as e:
        code, reply = e.smtp_code, e.smtp_error
    s.close()
    return {"auth": [code, _text(reply)]}


def _text(reply: bytes | str) -> str:
    """An SMTP reply's text (smtplib gives bytes, or str for some errors)."""
    return reply.decode() if isinstance(reply, bytes) else reply


def imap(host: str, user: str, password: str, folder: str = "INBOX") -> dict:
    """The subjects in `folder` (none when it does not exist)."""
    i = imaplib.IMAP4_SSL(host, 993, ssl_context=_ctx(), timeout=TIMEOUT)
    assert isinstance(i.sock, ssl.SSLSocket)
    out: dict = {"tls": i.sock.version(), "login": i.login(user, password)[0]}
    if i.select(folder, readonly=True)[0] != "OK":
        i.logout()
        return {**out, "subjects": []}
    _, data = i.search(None, "ALL")
    subjects = []
    for num in data[0].split():
        _, parts = i.fetch(num, "(RFC822)")
        first = parts[0]
        assert isinstance(first, tuple), parts
        # Decoded as a mail program shows it: raw UTF-8 (RFC 6532) or RFC 2047 encoded words.
        subjects.append(str(email.message_from_bytes(first[1], policy=email.policy.default)["Subject"]))
    out["subjects"] = subjects
    i.logout()
    return out


def pop3(host: str, user: str, password: str) -> dict:
    p = poplib.POP3_SSL(host, 995, context=_ctx(), timeout=TIMEOUT)
    p.user(user)
    out: dict = {"pass": p.pass_(password).decode()}
    count, _ = p.stat()
    subjects = []
    for n in range(1, count + 1):
        _, lines, _ = p.retr(n)
        subjects.append(email.message_from_bytes(b"\r\n".join(lines))["Subject"])
    out["subjects"] = subjects
    p.quit()  # nothing deleted
    return out


def mx_deliver(
    domain: str,
    nameserver: str,
    mail_from: str,
    to: list[str],
    subject: str,
    helo: str = "inet.foreign.test",
    from_header: str | None = None,
    headers: list[str] | None = None,
    smtputf8: bool = False,
) -> dict:
    """What a sending MTA does: MX records by preference, the first host that answers. `domain`
    is what the sender looks up: the A-label of an IDN domain (RFC 5891 §5)."""
    response = dns.query.udp(dns.message.make_query(domain, "MX"), nameserver, timeout=5)
    mxs = sorted((r.preference, r.exchange.to_text().rstrip(".")) for rrset in response.answer for r in rrset)
    tried = []
    for _, name in mxs:
        a = dns.query.udp(dns.message.make_query(name, "A"), nameserver, timeout=5)
        address = next(r.address for rrset in a.answer for r in rrset if rrset.rdtype == dns.rdatatype.A)
        try:
            result = send(address, 25, mail_from, to, subject, helo=helo, starttls=True, from_header=from_header, headers=headers, smtputf8=smtputf8)
        except OSError as e:
            tried.append([name, address, str(e)])
            continue
        return {"mx": mxs, "tried": tried, "delivered_to": name, **result}
    return {"mx": mxs, "tried": tried, "delivered_to": None}


def authenticate(path: str, nameserver: str, client_ip: str) -> dict:
    """DKIM (dkimpy) and SPF (pyspf) of a message the sink stored, with the test DNS only."""
    import dkim
    import spf

    resolver = dns.resolver.Resolver(configure=False)
    resolver.nameservers = [nameserver]
    resolver.lifetime = 5
    dns.resolver.default_resolver = resolver  # pyspf asks dnspython's default resolver

    def dnsfunc(name: bytes, timeout: int = 5) -> bytes:
        qname = name.decode() if isinstance(name, bytes) else name
        answer = resolver.resolve(qname, "TXT")
        return b"".join(b"".join(r.strings) for r in answer)

    stored = json.loads(open(path).read())
    raw = stored["data"].encode("utf-8", "surrogateescape")
    msg = email.message_from_bytes(raw)
    sig = dkim.parse_tag_value(msg["DKIM-Signature"].replace("\r\n", "").replace("\n", "").encode()) if msg["DKIM-Signature"] else {}
    verified = dkim.verify(raw, dnsfunc=dnsfunc)
    mail_from = stored["mail_from"]
    spf_result = spf.check2(i=client_ip, s=mail_from, h=stored["helo"])
    return {
        "dkim": verified,
        "d": sig.get(b"d", b"").decode(),
        "s": sig.get(b"s", b"").decode(),
        "from": email.utils.parseaddr(msg["From"])[1],
        "return_path": email.utils.parseaddr(msg["Return-Path"])[1],
        "spf": list(spf_result),
        "peer": stored["peer"],
    }


if __name__ == "__main__":
    name, kwargs = sys.argv[1], json.loads(sys.argv[2]) if len(sys.argv) > 2 else {}
    print(json.dumps(globals()[name](**kwargs)))
