"""The rotation gate against a real authoritative server: nsd on a free loopback address serving
zones made from our own records (dns.records -> zone_text). The walk of docs/keys.md: rotate
refuses (standby absent) -> publish -> refuses (served < TTL + grace) -> rotates -> check says
every selector matches the state. Only loopback traffic: every question goes to the nsd."""

from __future__ import annotations

import datetime as dt
import json
import shutil
import socket
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from provisioner.check import run_check
from provisioner.dns.command import rotate_command
from provisioner.dns.formats import zone_text
from provisioner.dns.records import site_records
from provisioner.dns.rotation import SERVED_FILE, RotationRefused
from provisioner.keys.store import STATE_FILE, KeyStatus, ensure_keys, load_state
from provisioner.mailauth.resolver import DnsResolver, Nameserver
from provisioner.site.validate import load_site
from tests.check.conftest import drop
from tests.conftest import EXAMPLES, FIXED_DAY
from tests.dns.conftest import serve, stop

ADDRESS = "127.0.0.157"  # tests/dns uses .153, tests/check .154
DOMAIN = "smallco.example"
PROVISION = [sys.executable, "-m", "provisioner.cli"]
LATER = dt.datetime(2026, 11, 4, 10, 0, tzinfo=dt.UTC)  # the standby is 3 days old: the 2-day rule is met
HOUR = dt.timedelta(hours=1)


def _free_port(address: str) -> int:
    """A port free for UDP and TCP on `address` (nsd listens on both)."""
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
            udp.bind((address, 0))
            port = int(udp.getsockname()[1])
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as tcp:
                try:
                    tcp.bind((address, port))
                except OSError:
                    continue
        return port
    raise RuntimeError(f"no free port on {address}")


@dataclass
class Zone:
    """One nsd serving the site's zone; `publish(text)` restarts it with another zone text."""

    site_path: Path
    state: Path
    workdir: Path
    port: int
    proc: subprocess.Popen[bytes] | None = None

    @property
    def nameserver(self) -> str:
        return f"{ADDRESS}:{self.port}"

    def records(self, today: dt.date) -> str:
        site = load_site(self.site_path).site
        keys, _ = ensure_keys(site, self.state, today=today, workers=1)
        return zone_text(site_records(site, keys, today=today), DOMAIN, standalone=True)

    def publish(self, text: str) -> None:
        if self.proc is not None:
            stop(self.proc)
        shutil.rmtree(self.workdir / "nsd", ignore_errors=True)
        self.proc = serve({DOMAIN: text}, self.workdir / "nsd", ADDRESS, self.port)

    def standby(self) -> list[str]:
        return [k.selector for k in load_state(self.state).keys(DOMAIN, (KeyStatus.STANDBY,))]

    def rotate(self, now: dt.datetime, grace: dt.timedelta = HOUR) -> list[str]:
        return rotate_command(self.site_path, self.state, None, [DOMAIN], nameserver=[self.nameserver], grace=grace, now=now, timeout=2.0)


@pytest.fixture
def zone(tmp_path: Path) -> Iterator[Zone]:
    if shutil.which("nsd") is None:
        pytest.fail("nsd is not installed: run tests/run.sh, which installs it")
    shutil.copy(EXAMPLES / "all-in-one" / "site.yaml", tmp_path / "site.yaml")
    z = Zone(tmp_path / "site.yaml", tmp_path / "state", tmp_path, _free_port(ADDRESS))
    try:
        yield z
    finally:
        if z.proc is not None:
            stop(z.proc)  # by its PID (Popen.terminate)


def _without_standby(z: Zone, text: str) -> str:
    for selector in z.standby():
        text = drop(text, f"{selector}._domainkey.{DOMAIN}", "TXT")
    return text


def _with_value(text: str, name: str, value: str) -> str:
    lines = [line for line in text.splitlines() if not line.startswith(f"{name}. ")]
    return "\n".join([*lines, f"{name}. 3600 IN TXT {value}"]) + "\n"


def test_the_rotation_walk_through_the_gate(zone: Zone) -> None:
    full = zone.records(FIXED_DAY)
    standby = zone.standby()
    dkim_yaml = (zone.state / STATE_FILE).read_bytes()

    # 1. the standby is not served: refused, nothing changed, nothing recorded
    zone.publish(_without_standby(zone, full))
    with pytest.raises(RotationRefused) as refused:
        zone.rotate(LATER)
    text = str(refused.value)
    assert f"the standby selector {standby[0]} is not yet served by every authoritative server" in text
    assert f"{zone.nameserver}: no record (NXDOMAIN)" in text
    assert f"provision keys {zone.site_path} --rotate {DOMAIN}" in text and "--force" in text
    assert (zone.state / STATE_FILE).read_bytes() == dkim_yaml
    assert not (zone.state / SERVED_FILE).exists()

    # 2. published: served from now, so rotation waits the TTL (3600 s) + grace (1 h)
    zone.publish(full)
    with pytest.raises(RotationRefused) as waiting:
        zone.rotate(LATER)
    assert "is served by every authoritative server since 2026-11-04 10:00:00 UTC" in str(waiting.value)
    assert "Rotation is possible from 2026-11-04 12:00:00 UTC" in str(waiting.value)
    served = json.loads((zone.state / SERVED_FILE).read_text())["served"]
    assert served[f"{standby[0]}._domainkey.{DOMAIN}"]["first_seen"] == "2026-11-04T10:00:00+00:00"
    assert oct((zone.state / SERVED_FILE).stat().st_mode & 0o777) == "0o644"

    # 3. a second before: still refused, and first_seen is not moved by asking again
    with pytest.raises(RotationRefused, match="possible from 2026-11-04 12:00:00 UTC"):
        zone.rotate(LATER + 2 * HOUR - dt.timedelta(seconds=1))
    assert (zone.state / STATE_FILE).read_bytes() == dkim_yaml

    # 4. TTL + grace after it was first served: rotated
    lines = zone.rotate(LATER + 2 * HOUR)
    assert lines[0] == f"{DOMAIN}:" and f"signing now with {standby[0]}" in lines[1]
    keys = load_state(zone.state)
    assert [k.selector for k in keys.signing_keys(DOMAIN)] == standby
    assert zone.standby() != standby

    # 5. publish the new records (apply's part): check says every selector is as the state knows it
    today = (LATER + 2 * HOUR).date()
    zone.publish(zone.records(today))
    site = load_site(zone.site_path).site
    report = run_check(site, load_state(zone.state), DnsResolver([Nameserver(ADDRESS, zone.port)], 2.0), concurrency=4, today=today)
    dkim = {f.subject: f for f in report.findings if f.id.startswith("dkim.")}
    states = {name.split("._domainkey.")[0]: (f.id, f.state.split(" ")[0]) for name, f in dkim.items()}
    new_standby = zone.standby()[0]
    assert states[standby[0]] == ("dkim.match", "active:")
    assert states[new_standby] == ("dkim.match", "standby")
    retired = next(g.name for g in keys.domains[DOMAIN] if g.status is KeyStatus.RETIRED)
    assert states[retired] == ("dkim.match", "retired")

    # 6. the next rotation starts from nothing: the new standby was never seen served
    with pytest.raises(RotationRefused, match=f"standby selector {new_standby} is served by every authoritative server since"):
        zone.rotate(LATER + 3 * dt.timedelta(days=1))


def test_a_different_key_at_the_standby_is_refused_by_name(zone: Zone) -> None:
    full = zone.records(FIXED_DAY)
    standby = zone.standby()[0]
    active_line = next(line for line in full.splitlines() if line.startswith(f"{load_state(zone.state).signing_keys(DOMAIN)[0].selector}._domainkey."))
    zone.publish(_with_value(full, f"{standby}._domainkey.{DOMAIN}", active_line.split(" IN TXT ", 1)[1]))  # the active key at the standby
    with pytest.raises(RotationRefused) as refused:
        zone.rotate(LATER)
    assert f"the standby selector {standby} is served with a different key than the state's standby ({zone.nameserver} serves 'v=DKIM1; k=rsa; p=" in str(
        refused.value
    )
    assert not (zone.state / SERVED_FILE).exists()
    # check says the same of that selector
    site = load_site(zone.site_path).site
    report = run_check(site, load_state(zone.state), DnsResolver([Nameserver(ADDRESS, zone.port)], 2.0), concurrency=4, today=FIXED_DAY)
    row = next(f for f in report.findings if f.subject == f"{standby}._domainkey.{DOMAIN}")
    assert row.id == "dkim.mismatch" and row.state.startswith("standby since")


def test_a_hostile_value_at_the_standby_is_shown_escaped_and_refused(zone: Zone) -> None:
    """From the command line: exit 1, one error line per refusal, the server's text escaped."""
    full = zone.records(FIXED_DAY)
    standby = zone.standby()[0]
    zone.publish(_with_value(full, f"{standby}._domainkey.{DOMAIN}", '"v=DKIM1; p=AAAA\\027[8m\\013\\010forged"'))
    done = subprocess.run(
        [*PROVISION, "keys", str(zone.site_path), "--state", str(zone.state), "--rotate", DOMAIN, "--nameserver", zone.nameserver],
        capture_output=True,
        text=True,
        env={"NO_COLOR": "1", "COLUMNS": "200", "PATH": "/usr/bin:/bin"},
        check=False,
        timeout=60,
    )
    assert done.returncode == 1, done.stdout + done.stderr
    assert "Traceback" not in done.stderr and "\x1b" not in done.stderr and "\x0b" not in done.stderr
    assert f"error: {DOMAIN}: the standby selector {standby} is served with a different key" in done.stderr
    assert "\\x1b[8m" in done.stderr
    assert done.stderr.splitlines()[-1].startswith("--force rotates anyway")


def test_force_and_the_cli_walk(zone: Zone) -> None:
    """The command line: refused while waiting (exit 1, when it will be possible), then, once the
    recorded first sighting is TTL + grace old, rotated (exit 0). Time passes by editing the record."""
    zone.publish(zone.records(FIXED_DAY))
    args = [*PROVISION, "keys", str(zone.site_path), "--state", str(zone.state), "--rotate", DOMAIN, "--nameserver", zone.nameserver, "--grace", "60"]
    env = {"NO_COLOR": "1", "COLUMNS": "200", "PATH": "/usr/bin:/bin"}
    waiting = subprocess.run(args, capture_output=True, text=True, env=env, check=False, timeout=60)
    assert waiting.returncode == 1 and "Rotation is possible from" in waiting.stderr and "+ 1 min" in waiting.stderr, waiting.stderr
    path = zone.state / SERVED_FILE
    doc = json.loads(path.read_text())
    for entry in doc["served"].values():
        entry["first_seen"] = (dt.datetime.fromisoformat(entry["first_seen"]) - dt.timedelta(seconds=3661)).isoformat()
    path.write_text(json.dumps(doc))
    rotated = subprocess.run(args, capture_output=True, text=True, env=env, check=False, timeout=60)
    assert rotated.returncode == 0, rotated.stderr
    assert rotated.stdout.startswith(f"{DOMAIN}:\n  signing now with ")
    # --force skips the question: nsd is stopped, nothing answers, it rotates anyway
    stop(zone.proc)  # type: ignore[arg-type]
    zone.proc = None
    forced = subprocess.run([*args, "--force", "--timeout", "0.3"], capture_output=True, text=True, env=env, check=False, timeout=60)
    assert forced.returncode == 0, forced.stderr
