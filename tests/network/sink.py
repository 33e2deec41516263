"""The outside world's mail server for tests/network: a tiny SMTP sink (no TLS, no AUTH).

    python sink.py DIR ADDRESS [PORT]

Accepts every message and writes it to DIR/<n>.json with the connection's peer and local
address, HELO, envelope sender and recipients and the data (Return-Path added, as a
delivering MTA does). Plain standard library, so it runs with any python3 in any namespace.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import sys
from pathlib import Path

counter = itertools.count(1)


async def session(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, out: Path) -> None:
    peer = writer.get_extra_info("peername")[0]
    local = writer.get_extra_info("sockname")[0]
    helo, sender, rcpts = "", None, []

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
                data = f"Return-Path: <{sender}>\r\n" + b"".join(lines).decode("utf-8", "surrogateescape")
                record = {"peer": peer, "local": local, "helo": helo, "mail_from": sender, "rcpt_to": rcpts, "data": data}
                path = out / f"{next(counter):04d}.json"
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
    out.mkdir(parents=True, exist_ok=True)
    server = await asyncio.start_server(lambda r, w: session(r, w, out), address, port)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(main())
