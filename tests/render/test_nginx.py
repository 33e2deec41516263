"""Outside judge of the web side (issue 14): this machine's nginx accepts every acme host's
nginx.conf (`nginx -t`), and, run on loopback, serves exactly the MTA-STS policy and the
autoconfig XML, the ACME challenge on port 80, a redirect for the web names and 404 elsewhere.

As for the other judges, a copy of the file has its absolute paths pointed into the build (and
the certificate paths at a test certificate); nothing else is changed."""

from __future__ import annotations

import re
import shutil
import socket
import ssl
import subprocess
import time
from pathlib import Path

import pytest

from provisioner.layout import ACME_LINK_DIR, ACME_WEBROOT, WEB_ROOT
from provisioner.site.types import OsRelease
from tests.render.helpers import render_example
from tests.render.releases import declared
from tests.render.test_acme import acme_site

pytestmark = pytest.mark.skipif(shutil.which("nginx") is None, reason="nginx is installed by tests/run.sh")


def certificate(directory: Path, names: list[str]) -> Path:
    """A self-signed certificate naming `names`, at directory/<name>/{fullchain,privkey}.pem for each certificate name."""
    directory.mkdir(parents=True, exist_ok=True)
    key, cert = directory / "privkey.pem", directory / "fullchain.pem"
    san = ",".join(f"DNS:{n}" for n in names)
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(cert), "-days", "2", "-subj", f"/CN={names[0]}", "-addext", f"subjectAltName={san}"],
        check=True,
        capture_output=True,
    )
    return cert


def judged_copy(conf: str, host_dir: Path, certs: Path, work: Path, ports: tuple[int, int] | None = None) -> Path:
    """The host's nginx.conf with its paths pointed at the build and `certs`; with `ports`, listening
    on loopback only, logs and pid in `work`, workers as root (the build is in a 0700 directory)."""
    text = conf.replace(ACME_LINK_DIR, str(certs)).replace(WEB_ROOT, str(host_dir) + WEB_ROOT)
    if ports:
        text = re.sub(r"^ *listen \[::\].*\n", "", text, flags=re.M)
        text = text.replace("listen 80", f"listen 127.0.0.1:{ports[0]}").replace("listen 443", f"listen 127.0.0.1:{ports[1]}")
        text = text.replace("user www-data;", "user root;").replace("/run/nginx.pid", str(work / "nginx.pid"))
        text = text.replace("/var/log/nginx/", str(work) + "/")
    path = work / "nginx.conf"
    path.write_text(text)
    return path


def render_acme(tmp_path: Path, example: str, release: OsRelease):
    site = acme_site(tmp_path, None, example)
    declared(site, release)
    return render_example(example, tmp_path, site)


@pytest.mark.parametrize("release", list(OsRelease))
@pytest.mark.parametrize("example", ["all-in-one", "multi-host"])
def test_nginx_accepts_every_acme_host_config(tmp_path: Path, example: str, release: OsRelease) -> None:
    import json

    trees, out = render_acme(tmp_path, example, release)
    layouts = json.loads((out / "manifest.json").read_text())["hosts"]
    judged = 0
    for host in trees:
        certs = tmp_path / f"certs-{host}"
        for cert in layouts[host]["layout"]["acme"]["certificates"]:
            certificate(certs / cert["name"], cert["names"])
        work = tmp_path / f"work-{host}"
        work.mkdir()
        conf = judged_copy((out / host / "etc/nginx/nginx.conf").read_text(), out / host, certs, work)
        result = subprocess.run(["nginx", "-t", "-c", str(conf)], capture_output=True, text=True, check=False)
        assert result.returncode == 0 and "test is successful" in result.stderr, (host, result.stderr)
        assert "[warn]" not in result.stderr, (host, result.stderr)
        judged += 1
    assert judged == len(trees)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def fetch(port: int, host: str, path: str, cafile: Path | None) -> tuple[int, dict[str, str], bytes]:
    """One HTTP/1.0 GET to 127.0.0.1:port for Host `host` (TLS with SNI `host`, verified against `cafile`)."""
    raw = socket.create_connection(("127.0.0.1", port), timeout=5)
    if cafile is not None:
        ctx = ssl.create_default_context(cafile=str(cafile))
        raw = ctx.wrap_socket(raw, server_hostname=host)
    with raw:
        raw.sendall(f"GET {path} HTTP/1.0\r\nHost: {host}\r\n\r\n".encode())
        data = b""
        while chunk := raw.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode().split("\r\n")
    headers = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
    return int(lines[0].split()[1]), headers, body


def test_nginx_serves_exactly_the_web_side(tmp_path: Path) -> None:
    import json

    trees, out = render_acme(tmp_path, "multi-host", OsRelease.DEBIAN_12)
    cert = json.loads((out / "manifest.json").read_text())["hosts"]["mx1"]["layout"]["acme"]["certificates"][0]
    certs = tmp_path / "certs"
    cafile = certificate(certs / cert["name"], cert["names"])
    host_dir = out / "mx1"
    token = host_dir / ACME_WEBROOT[1:] / ".well-known/acme-challenge/tok3n"
    token.parent.mkdir(parents=True)
    token.write_text("tok3n.thumbprint")
    work = tmp_path / "work"
    work.mkdir()
    ports = (free_port(), free_port())
    conf = judged_copy((host_dir / "etc/nginx/nginx.conf").read_text(), host_dir, certs, work, ports)
    server = subprocess.Popen(["nginx", "-c", str(conf), "-g", "daemon off;"], stderr=subprocess.PIPE)
    try:
        for _ in range(50):
            try:
                socket.create_connection(("127.0.0.1", ports[1]), timeout=1).close()
                break
            except OSError:
                time.sleep(0.1)
        policy = next(p for p in trees["mx1"].files if p.startswith("var/www/provisioner/mta-sts/"))
        status, headers, body = fetch(ports[1], "mta-sts.acme.example", "/.well-known/mta-sts.txt", cafile)
        assert (status, headers["content-type"]) == (200, "text/plain") and body == trees["mx1"].files[policy].content
        status, headers, body = fetch(ports[1], "autoconfig.acme.example", "/mail/config-v1.1.xml", cafile)
        assert (status, headers["content-type"]) == (200, "application/xml")
        assert body == trees["mx1"].files["var/www/provisioner/autoconfig/config-v1.1.xml"].content
        # Nothing else: not the other name's file, not the directory, not another name.
        assert fetch(ports[1], "autoconfig.acme.example", "/.well-known/mta-sts.txt", cafile)[0] == 404
        assert fetch(ports[1], "mta-sts.acme.example", "/mail/config-v1.1.xml", cafile)[0] == 404
        assert fetch(ports[1], "mta-sts.acme.example", "/", cafile)[0] == 404
        assert fetch(ports[1], "mx1.acme.example", "/.well-known/mta-sts.txt", cafile)[0] == 404
        # Port 80: the challenge for any name, a redirect for the web names, 404 otherwise.
        for name in ("mx1.acme.example", "mta-sts.acme.example", "autoconfig.xn--r8jz45g.jp"):
            status, _, body = fetch(ports[0], name, "/.well-known/acme-challenge/tok3n", None)
            assert (status, body) == (200, b"tok3n.thumbprint"), name
        status, headers, _ = fetch(ports[0], "mta-sts.acme.example", "/.well-known/mta-sts.txt", None)
        assert (status, headers["location"]) == (301, "https://mta-sts.acme.example/.well-known/mta-sts.txt")
        assert fetch(ports[0], "mx1.acme.example", "/", None)[0] == 404
        assert fetch(ports[0], "mx1.acme.example", "/.well-known/acme-challenge/missing", None)[0] == 404
    finally:
        server.terminate()
        server.wait(timeout=10)
