"""A real nsd on a loopback address serving the zones `provision` generated (docs/dns.md, "How it is tested")."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import dns.message
import dns.query
import dns.rdatatype
import pytest

from provisioner.dns.formats import zone_text
from provisioner.dns.records import RecordSet, site_records
from provisioner.keys.store import KeyState, ensure_keys
from provisioner.site.model import Site
from provisioner.site.validate import load_site
from tests.conftest import EXAMPLES, FIXED_DAY

NSD_ADDRESS = "127.0.0.153"  # port 53 on a loopback address of its own: resolvers that cannot take a port still reach it


@dataclass
class Served:
    site: Site
    keys: KeyState
    records: RecordSet
    address: str
    port: int
    workdir: Path

    def query(self, name: str, rtype: str) -> list[dns.rrset.RRset]:
        request = dns.message.make_query(name, rtype)
        response = dns.query.udp(request, self.address, port=self.port, timeout=3)
        return list(response.answer)


def _free(address: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            s.bind((address, port))
        except OSError:
            return False
    return True


def nsd_conf(zones: dict[str, str], workdir: Path, address: str = NSD_ADDRESS, port: int = 53) -> Path:
    """Zones and an nsd.conf in workdir, checked with nsd's own tools (nsd-checkzone, nsd-checkconf)."""
    zonedir = workdir / "zones"
    zonedir.mkdir(parents=True, exist_ok=True)
    stanzas = []
    for zone, text in sorted(zones.items()):
        path = zonedir / f"{zone}.zone"
        path.write_text(text)
        check = subprocess.run(["nsd-checkzone", zone, str(path)], capture_output=True, text=True)
        assert check.returncode == 0, f"nsd-checkzone {zone}: {check.stdout}{check.stderr}"
        stanzas.append(f'zone:\n  name: "{zone}"\n  zonefile: "{path}"\n')
    conf = workdir / "nsd.conf"
    conf.write_text(
        "server:\n"
        f"  ip-address: {address}@{port}\n"
        "  do-ip6: no\n"
        '  username: ""\n'
        '  chroot: ""\n'
        f'  zonesdir: "{zonedir}"\n'
        f'  pidfile: "{workdir}/nsd.pid"\n'
        f'  logfile: "{workdir}/nsd.log"\n'
        '  database: ""\n'
        f'  xfrdfile: "{workdir}/xfrd.state"\n'
        f'  zonelistfile: "{workdir}/zone.list"\n'
        "  server-count: 1\n"
        "remote-control:\n  control-enable: no\n" + "".join(stanzas)
    )
    check = subprocess.run(["nsd-checkconf", str(conf)], capture_output=True, text=True)
    assert check.returncode == 0, check.stderr
    return conf


def serve(zones: dict[str, str], workdir: Path, address: str = NSD_ADDRESS, port: int = 53) -> subprocess.Popen[bytes]:
    """Write zones and an nsd.conf into workdir, check them with nsd's own tools, start nsd."""
    conf = nsd_conf(zones, workdir, address, port)
    assert _free(address, port), f"{address}:{port} is in use"
    proc = subprocess.Popen(["nsd", "-d", "-c", str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    first = sorted(zones)[0]
    for _ in range(100):
        try:
            response = dns.query.udp(dns.message.make_query(first, "SOA"), address, port=port, timeout=0.2)
            if response.answer:
                return proc
        except (dns.exception.Timeout, OSError):
            pass
        if proc.poll() is not None:
            raise RuntimeError(f"nsd exited: {proc.stderr.read().decode() if proc.stderr else ''}")
        time.sleep(0.05)
    proc.terminate()
    raise RuntimeError("nsd did not answer")


def stop(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=5)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


@pytest.fixture(scope="module", params=["all-in-one", "multi-host"])
def served(request, tmp_path_factory) -> Iterator[Served]:
    if shutil.which("nsd") is None:
        pytest.fail("nsd is not installed: run tests/run.sh, which installs it")
    workdir = tmp_path_factory.mktemp(f"nsd-{request.param}")
    site = load_site(EXAMPLES / request.param / "site.yaml").site
    keys, _ = ensure_keys(site, workdir / "state", today=FIXED_DAY, workers=1)
    records = site_records(site, keys, today=FIXED_DAY)
    zones = {z: zone_text(records, z, standalone=True) for z in records.zones()}
    proc = serve(zones, workdir)
    try:
        yield Served(site, keys, records, NSD_ADDRESS, 53, workdir)
    finally:
        stop(proc)


@pytest.fixture(autouse=True)
def _checkdmarc_forgets_earlier_answers() -> Iterator[None]:
    """checkdmarc caches DNS answers per name for the whole process, whatever nameserver gave
    them: a test serving other records for the same domain (smallco.example) would read the
    earlier test's answers. Each test starts with an empty cache."""
    import checkdmarc.utils

    checkdmarc.utils.DNS_CACHE.clear()
    yield
