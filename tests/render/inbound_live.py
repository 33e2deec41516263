"""rspamd as rendered, running on loopback with a static DNS (nsd): helpers for test_inbound_live.

The configuration is Debian's /etc/rspamd with the rendered local.d over it (as on a host); only
the listening addresses, the log and the runtime directories are moved into a temp directory
(override.d, --var). DNS comes from nsd on a loopback address of its own: policy.resolvers.
"""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.dns.conftest import stop

SYSTEM_CONF = Path("/etc/rspamd")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def conf_dir(host_tree: Path, work: Path, port: int) -> Path:
    """Debian's configuration, the rendered local.d over it, workers moved to loopback ports of our own."""
    conf = work / "conf"
    shutil.copytree(SYSTEM_CONF, conf, dirs_exist_ok=True)
    shutil.copytree(host_tree / "etc/rspamd/local.d", conf / "local.d", dirs_exist_ok=True)
    override = conf / "override.d"
    override.mkdir(exist_ok=True)
    (override / "worker-normal.inc").write_text(f'bind_socket = "127.0.0.1:{port}";\ncount = 1;\n')
    (override / "worker-controller.inc").write_text("enabled = false;\n")
    (override / "worker-proxy.inc").write_text("enabled = false;\n")
    (override / "worker-fuzzy.inc").write_text("enabled = false;\n")
    (override / "logging.inc").write_text(f'type = "file";\nfilename = "{work}/rspamd.log";\nlevel = "info";\n')
    return conf


def variables(conf: Path, work: Path) -> list[str]:
    for name in ("db", "run"):
        (work / name).mkdir(exist_ok=True)
    return [f"--var=CONFDIR={conf}", f"--var=LOCAL_CONFDIR={conf}", f"--var=DBDIR={work}/db", f"--var=RUNDIR={work}/run"]


def configtest(conf: Path, work: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["rspamadm", *variables(conf, work), "configtest", "-c", str(conf / "rspamd.conf")], capture_output=True, text=True, check=False, timeout=120
    )


@contextmanager
def running(host_tree: Path, work: Path) -> Iterator[int]:
    """rspamd in the foreground as root (-i: a test, not a host), its normal worker on a free port."""
    port = free_port()
    conf = conf_dir(host_tree, work, port)
    cmd = ["rspamd", "-f", "-i", *variables(conf, work), "-c", str(conf / "rspamd.conf"), "-p", f"{work}/run/rspamd.pid"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", port)) == 0:
                    break
            if proc.poll() is not None:
                raise RuntimeError(f"rspamd exited: {proc.stderr.read().decode() if proc.stderr else ''}")
            time.sleep(0.1)
        else:
            raise RuntimeError("rspamd did not listen")
        yield port
    finally:
        stop(proc)


def scan(port: int, message: bytes, ip: str, mail_from: str, helo: str, mta_name: str) -> dict:
    """What rspamd tells the milter for this message (rspamc's JSON: action, symbols, milter)."""
    cmd = ["rspamc", "-h", f"127.0.0.1:{port}", "-j", "--ip", ip, "--from", mail_from, "--helo", helo, "--rcpt", "alice@smallco.example"]
    cmd += ["--header", f"MTA-Name={mta_name}"]
    result = subprocess.run(cmd, input=message, capture_output=True, check=False, timeout=60)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)
