"""Dead resolvers on loopback, for tests/check/test_dead_resolver.py and bench/check_bench.py:
a UDP socket that reads every question and never answers (a firewall's DROP), and a port where
nothing listens (the kernel answers ICMP port unreachable)."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def black_hole(address: str) -> Iterator[int]:
    """Yields the port of a UDP socket on `address` that swallows every packet."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind((address, 0))
    sock.settimeout(0.2)
    stop = threading.Event()

    def swallow() -> None:
        while not stop.is_set():
            try:
                sock.recvfrom(4096)
            except TimeoutError:
                continue

    thread = threading.Thread(target=swallow, daemon=True)
    thread.start()
    try:
        yield int(sock.getsockname()[1])
    finally:
        stop.set()
        thread.join()
        sock.close()


def closed_port(address: str) -> int:
    """A UDP port on `address` where nothing listens (bound, then released)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind((address, 0))
        return int(sock.getsockname()[1])
