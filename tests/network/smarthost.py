"""A provider-like smarthost for the tests: submission with TLS, AUTH only after TLS, checked logins.

    python smarthost.py DIR ADDRESS PORT --cert C --key K --user U [--implicit] [--name N]
                        [--relay HOST:PORT] [--nameserver NS]

The password it accepts is read from the environment (SMARTHOST_TEST_PASSWORD), never from the
command line. Port modes: STARTTLS (RFC 3207, port 587 by default) or implicit TLS
(`--implicit`, RFC 8314 port 465). AUTH PLAIN (RFC 4616) and LOGIN are offered only once TLS
is on (RFC 4954 §4: "a server MAY... not advertise", §14: plaintext mechanisms need TLS), and
MAIL is refused until a login succeeded (RFC 4954 §6: 530 5.7.0).

It writes what it saw, as JSON, to DIR:
- session-NNNN.json, rewritten after every command: peer, local, the TLS protocol once the
  handshake is done, every line it read with whether TLS was on for it ("lines"), the logins
  it was given ("logins": mechanism, username, password, accepted) and the replies it gave.
- NNNN.json per accepted message: the sink's layout (tests/network/sink.py) plus "user",
  "tls" and "session". With --relay, the message is handed on by SMTP to HOST:PORT (the test
  network's outside world) with its own Received line on top before it is acknowledged, so
  the receiving side sees what mail from a provider looks like.
Standard library only, so it runs with any python3 in any namespace.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import binascii
import itertools
import json
import os
import smtplib
import ssl
import sys
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

if __package__:  # imported by the tests (for PASSWORD_ENV)
    from tests.network.sink import received, reverse_name
else:  # run as a script beside sink.py, by any python3
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from sink import received, reverse_name  # type: ignore[no-redef]

PASSWORD_ENV = "SMARTHOST_TEST_PASSWORD"
LINE_LIMIT = 4096  # RFC 5321 §4.5.3.1.4: a command line is at most 512 octets; text lines 1000
MESSAGE_LIMIT = 10 << 20
sessions = itertools.count(1)
messages = itertools.count(1)


@dataclass
class Options:
    out: Path
    name: str
    user: str
    password: str
    implicit: bool
    relay: tuple[str, int] | None
    nameserver: str | None
    context: ssl.SSLContext


@dataclass
class Session:
    number: int
    peer: str
    local: str
    opts: Options
    tls: str | None = None  # the negotiated protocol, once the handshake is done
    starttls: bool = False  # a STARTTLS was answered (the handshake may still fail)
    lines: list[tuple[bool, str]] = field(default_factory=list)  # (TLS on, line as read)
    logins: list[dict[str, object]] = field(default_factory=list)
    replies: list[str] = field(default_factory=list)
    user: str | None = None

    def save(self) -> None:
        record = {
            "peer": self.peer,
            "local": self.local,
            "implicit": self.opts.implicit,
            "starttls": self.starttls,
            "tls": self.tls,
            "lines": self.lines,
            "logins": self.logins,
            "replies": self.replies,
        }
        _write(self.opts.out / f"session-{self.number:04d}.json", record)


def _write(path: Path, record: Mapping[str, object]) -> None:
    path.with_suffix(".tmp").write_text(json.dumps(record))
    path.with_suffix(".tmp").rename(path)


def _b64(text: str) -> bytes:
    return base64.b64decode(text.strip(), validate=True)


async def session(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, opts: Options) -> None:
    s = Session(next(sessions), writer.get_extra_info("peername")[0], writer.get_extra_info("sockname")[0], opts)
    if opts.implicit:
        s.tls = writer.get_extra_info("ssl_object").version()
    helo, sender, rcpts = "", None, list[str]()

    async def say(*lines: str) -> None:
        s.replies.append("\n".join(lines))
        writer.write("".join(f"{line}\r\n" for line in lines).encode())
        await writer.drain()

    async def read() -> str:
        line = await reader.readline()
        text = line.decode("latin-1")
        if text:
            s.lines.append((s.tls is not None, text.rstrip("\r\n")))
        return text

    await say(f"220 {opts.name} ESMTP provider")
    try:
        while text := await read():
            command = text.rstrip("\r\n")
            verb = command.split(" ", 1)[0].upper()
            if verb in ("EHLO", "HELO"):
                helo = command[5:].strip()
                offer = ["250-AUTH PLAIN LOGIN"] if s.tls else ["250-STARTTLS"]
                await say(f"250-{opts.name}", *offer, "250 8BITMIME") if verb == "EHLO" else await say(f"250 {opts.name}")
            elif verb == "STARTTLS" and s.tls is None and not opts.implicit:
                await say("220 2.0.0 Ready to start TLS")
                s.starttls = True
                s.save()
                await writer.start_tls(opts.context)  # type: ignore[attr-defined]  # Python >= 3.11
                s.tls = writer.get_extra_info("ssl_object").version()
                helo = ""  # RFC 3207 §4.2: the client starts over with EHLO
            elif verb == "AUTH" and s.tls is None:
                await say("530 5.7.0 Must issue a STARTTLS command first")
            elif verb == "AUTH" and s.user is None:
                user, password, mechanism = await _login(command, say, read)
                ok = (user, password) == (opts.user, opts.password)
                s.logins.append({"mechanism": mechanism, "username": user, "password": password, "accepted": ok})
                if ok:
                    s.user = user
                    await say("235 2.7.0 Authentication successful")
                else:
                    await say("535 5.7.8 Authentication credentials invalid")
            elif verb == "MAIL" and s.user is None:
                await say("530 5.7.0 Authentication required")
            elif verb == "MAIL":
                sender, rcpts = command.split(":", 1)[1].strip().split(" ")[0].strip("<>"), []
                await say("250 2.1.0 Ok")
            elif verb == "RCPT" and sender is not None:
                rcpts.append(command.split(":", 1)[1].strip().split(" ")[0].strip("<>"))
                await say("250 2.1.5 Ok")
            elif verb == "DATA" and rcpts:
                await say("354 End data with <CR><LF>.<CR><LF>")
                body = await _data(reader)
                if body is None:
                    await say("552 5.3.4 Message too big")
                else:
                    await say(await _accept(s, helo, sender or "", rcpts, body))
                sender, rcpts = None, []
            elif verb == "RSET":
                sender, rcpts = None, []
                await say("250 2.0.0 Ok")
            elif verb == "NOOP":
                await say("250 2.0.0 Ok")
            elif verb == "QUIT":
                await say("221 2.0.0 Bye")
                break
            else:
                await say(
                    "503 5.5.1 Error: bad sequence of commands" if verb in ("AUTH", "RCPT", "DATA", "STARTTLS") else "502 5.5.2 Error: command not recognized"
                )
            s.save()
    except (OSError, ssl.SSLError, ValueError, asyncio.LimitOverrunError, asyncio.IncompleteReadError):
        pass  # a client that gives up or fails the handshake: what it said is recorded
    finally:
        s.save()
        writer.close()


async def _login(command: str, say: Callable[[str], Awaitable[None]], read: Callable[[], Awaitable[str]]) -> tuple[str, str, str]:
    """AUTH PLAIN [initial] (RFC 4616: authzid NUL authcid NUL passwd) or AUTH LOGIN."""
    parts = command.split()
    mechanism = parts[1].upper() if len(parts) > 1 else ""
    try:
        if mechanism == "PLAIN":
            if len(parts) < 3:
                await say("334 ")
                parts.append(await read())
            _, user, password = _b64(parts[2]).split(b"\0", 2)
            return user.decode(), password.decode(), mechanism
        if mechanism == "LOGIN":
            if len(parts) < 3:  # RFC 4954 §4: the client may send the username as an initial response
                await say("334 VXNlcm5hbWU6")
                parts.append(await read())
            user = _b64(parts[2])
            await say("334 UGFzc3dvcmQ6")
            return user.decode(), _b64(await read()).decode(), mechanism
    except (binascii.Error, ValueError, UnicodeDecodeError):
        pass
    return "", "", mechanism


async def _data(reader: asyncio.StreamReader) -> bytes | None:
    lines, size = [], 0
    while (chunk := await reader.readline()) not in (b".\r\n", b".\n", b""):
        size += len(chunk)
        if size <= MESSAGE_LIMIT:
            lines.append(chunk[1:] if chunk.startswith(b"..") else chunk)
    return b"".join(lines) if size <= MESSAGE_LIMIT else None


async def _accept(s: Session, helo: str, sender: str, rcpts: list[str], body: bytes) -> str:
    """Store the message; with --relay hand it on first (and refuse it temporarily if that fails)."""
    number, opts = next(messages), s.opts
    loop = asyncio.get_running_loop()
    reverse = await loop.run_in_executor(None, reverse_name, s.peer, opts.nameserver)
    # RFC 3848: ESMTPSA, authenticated over TLS.
    stamped = received(helo, reverse, s.peer, number, rcpts, by=opts.name, protocol="ESMTPSA").encode() + body
    relayed = None
    if opts.relay:
        try:
            relayed = await loop.run_in_executor(None, _hand_on, opts, sender, rcpts, stamped)
        except (OSError, smtplib.SMTPException) as e:
            return f"451 4.4.1 next hop failed: {e}"[:400].replace("\r", " ").replace("\n", " ")
    record = {
        "peer": s.peer,
        "local": s.local,
        "helo": helo,
        "mail_from": sender,
        "rcpt_to": rcpts,
        "user": s.user,
        "tls": s.tls,
        "session": s.number,
        "relayed": relayed,
        "data": f"Return-Path: <{sender}>\r\n" + stamped.decode("utf-8", "surrogateescape"),
    }
    _write(opts.out / f"{number:04d}.json", record)
    return f"250 2.0.0 Ok: queued as {number:04d}"


def _hand_on(opts: Options, sender: str, rcpts: list[str], data: bytes) -> str:
    assert opts.relay
    with smtplib.SMTP(*opts.relay, local_hostname=opts.name, timeout=30) as client:
        refused = client.sendmail(sender, rcpts, data)
    return f"{opts.relay[0]}:{opts.relay[1]}" + (f" refused {sorted(refused)}" if refused else "")


async def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("out", type=Path)
    parser.add_argument("address")
    parser.add_argument("port", type=int)
    parser.add_argument("--cert", required=True)
    parser.add_argument("--key", required=True)
    parser.add_argument("--user", required=True)
    parser.add_argument("--name", default="smtp.provider.test")
    parser.add_argument("--implicit", action="store_true")
    parser.add_argument("--relay")
    parser.add_argument("--nameserver")
    args = parser.parse_args(argv)
    relay = None
    if args.relay:
        host, port = args.relay.rsplit(":", 1)
        relay = (host, int(port))
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(args.cert, args.key)
    opts = Options(args.out, args.name, args.user, os.environ[PASSWORD_ENV], args.implicit, relay, args.nameserver, context)
    args.out.mkdir(parents=True, exist_ok=True)
    server = await asyncio.start_server(lambda r, w: session(r, w, opts), args.address, args.port, ssl=context if args.implicit else None, limit=LINE_LIMIT)
    port = server.sockets[0].getsockname()[1]
    (args.out / "port").write_text(f"{port}\n")  # port 0: the caller reads which one it got
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1:]))
