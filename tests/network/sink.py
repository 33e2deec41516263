"""The outside world's mail server for tests/network: a tiny SMTP sink (no TLS, no AUTH).

    python sink.py DIR ADDRESS [PORT [NAMESERVER]]

Accepts every message and writes it to DIR/<n>.json with the connection's peer and local
address, HELO, envelope sender and recipients, the data (Return-Path added) and the message
as a receiving MTA delivers it ("delivered": Return-Path and a Received line in Postfix's
layout on top, the peer's reverse name asked of NAMESERVER, "unknown" without one). Plain
standard library, so it runs with any python3 in any namespace.
"""

from __future__ import annotations

import asyncio
import email.utils
import ipaddress
import itertools
import json
import random
import socket
import struct
import sys
from pathlib import Path

counter = itertools.count(1)
NAME = "inet.foreign.test"


def reverse_name(address: str, nameserver: str | None) -> str:
    """The PTR of `address` from `nameserver` over UDP (RFC 1035 §4), or "unknown" as Postfix says."""
    if not nameserver:
        return "unknown"
    qid = random.randrange(65536)
    qname = ipaddress.ip_address(address).reverse_pointer
    query = struct.pack("!HHHHHH", qid, 0x0100, 1, 0, 0, 0) + _name(qname) + struct.pack("!HH", 12, 1)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(3)
        try:
            s.sendto(query, (nameserver, 53))
            reply = s.recv(4096)
        except OSError:
            return "unknown"
    try:
        return _ptr(reply, qid)
    except (struct.error, IndexError, UnicodeDecodeError):  # a reply this reader cannot follow
        return "unknown"


def _ptr(reply: bytes, qid: int) -> str:
    rid, flags, qd, an = struct.unpack("!HHHH", reply[:8])
    if rid != qid or flags & 0xF or not an:
        return "unknown"
    at = 12
    for _ in range(qd):
        at = _skip(reply, at) + 4
    for _ in range(an):
        at = _skip(reply, at)
        rtype, _, _, length = struct.unpack("!HHIH", reply[at : at + 10])
        if rtype == 12:
            return _read(reply, at + 10).rstrip(".")
        at += 10 + length
    return "unknown"


def _name(name: str) -> bytes:
    return b"".join(bytes([len(label)]) + label.encode() for label in name.rstrip(".").split(".")) + b"\0"


def _skip(packet: bytes, at: int) -> int:
    while packet[at]:
        if packet[at] >= 0xC0:
            return at + 2
        at += packet[at] + 1
    return at + 1


def _read(packet: bytes, at: int) -> str:
    labels = []
    while packet[at]:
        if packet[at] >= 0xC0:
            at = struct.unpack("!H", packet[at : at + 2])[0] & 0x3FFF
            continue
        labels.append(packet[at + 1 : at + 1 + packet[at]].decode())
        at += packet[at] + 1
    return ".".join(labels) + "."


def received(helo: str, reverse: str, peer: str, number: int, rcpts: list[str], by: str = NAME, protocol: str = "ESMTP") -> str:
    """Postfix's layout (smtpd/smtpd.c): from HELO (REVERSE [IP]) by HOST (...) with ESMTP id N for <rcpt>; date."""
    rcpt = f"\r\n\tfor <{rcpts[0]}>" if len(rcpts) == 1 else ""
    return f"Received: from {helo or peer} ({reverse} [{peer}])\r\n\tby {by} (sink) with {protocol} id {number:04d}{rcpt}; {email.utils.formatdate(localtime=True)}\r\n"


async def session(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, out: Path, nameserver: str | None) -> None:
    peer = writer.get_extra_info("peername")[0]
    local = writer.get_extra_info("sockname")[0]
    helo, sender = "", None
    rcpts: list[str] = []

    async def say(line: str) -> None:
        writer.write(line.encode() + b"\r\n")
        await writer.drain()

    await say("220 inet.foreign.test ESMTP sink")
    try:
        while line := await reader.readline():
            text = line.decode("utf-8", "replace").rstrip("\r\n")
            verb = text[:4].upper()
            if verb in ("EHLO", "HELO"):
                helo = text[5:].strip()
                await say("250-inet.foreign.test\r\n250-8BITMIME\r\n250 SMTPUTF8" if verb == "EHLO" else "250 inet.foreign.test")
            elif verb == "MAIL":
                sender, rcpts = text.split(":", 1)[1].strip().split(" ")[0].strip("<>"), []
                await say("250 2.1.0 Ok")
            elif verb == "RCPT":
                rcpts.append(text.split(":", 1)[1].strip().split(" ")[0].strip("<>"))
                await say("250 2.1.5 Ok")
            elif verb == "DATA":
                await say("354 End data with <CR><LF>.<CR><LF>")
                lines = []
                while (chunk := await reader.readline()) not in (b".\r\n", b".\n", b""):
                    lines.append(chunk[1:] if chunk.startswith(b"..") else chunk)
                number, body = next(counter), b"".join(lines).decode("utf-8", "surrogateescape")
                reverse = await asyncio.get_running_loop().run_in_executor(None, reverse_name, peer, nameserver)
                record = {
                    "peer": peer,
                    "local": local,
                    "helo": helo,
                    "mail_from": sender,
                    "rcpt_to": rcpts,
                    "data": f"Return-Path: <{sender}>\r\n" + body,
                    "delivered": f"Return-Path: <{sender}>\r\n" + received(helo, reverse, peer, number, rcpts) + body,
                }
                path = out / f"{number:04d}.json"
                path.with_suffix(".tmp").write_text(json.dumps(record))
                path.with_suffix(".tmp").rename(path)
                sender, rcpts = None, []
                await say("250 2.0.0 Ok: queued")
            elif verb == "RSET":
                sender, rcpts = None, []
                await say("250 2.0.0 Ok")
            elif verb == "NOOP":
                await say("250 2.0.0 Ok")
            elif verb == "QUIT":
                await say("221 2.0.0 Bye")
                break
            else:
                await say("502 5.5.2 Error: command not recognized")
    finally:
        writer.close()


async def main() -> None:
    out, address = Path(sys.argv[1]), sys.argv[2]
    port = int(sys.argv[3]) if len(sys.argv) > 3 else 25
    nameserver = sys.argv[4] if len(sys.argv) > 4 else None
    out.mkdir(parents=True, exist_ok=True)
    server = await asyncio.start_server(lambda r, w: session(r, w, out, nameserver), address, port)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(main())
