"""The role's certbot command line, Debian's certbot and the rendered deploy hook against Debian's
pebble (an RFC 8555 test CA), all on loopback: pebble-challtestsrv answers pebble's DNS with
127.0.0.1, the rendered nginx.conf (tests/render/test_nginx.py's loopback copy) answers http-01
from the webroot certbot writes to. certbot gets --config-dir/--work-dir/--logs-dir in a
temporary directory (on a host they are /etc/letsencrypt and /var/lib, /var/log); the hook's
paths point there too, and a stand-in `service` records the reloads. What this cannot show (the
booted hosts, systemd, real reloads) is tests/network/test_acme.py's."""

from __future__ import annotations

import json
import os
import shutil
import socket
import ssl
import subprocess
import time
import urllib.request
from pathlib import Path

import jinja2
import pytest
import yaml

from provisioner.layout import ACME_LINK_DIR, LETSENCRYPT_LIVE
from tests.render.test_acme import render
from tests.render.test_nginx import certificate, free_port, judged_copy

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.skipif(
    not all(shutil.which(tool) for tool in ("pebble", "pebble-challtestsrv", "certbot", "nginx")), reason="tests/run.sh installs pebble, certbot and nginx"
)


def wait_port(port: int) -> None:
    for _ in range(100):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.1)
    raise AssertionError(f"nothing listens on 127.0.0.1:{port}")


def role_argv(entry: dict, cert: dict) -> list[str]:
    """The role's certbot command (tasks/acme.yml) for `cert`, rendered as Ansible would."""
    task = yaml.safe_load((ROOT / "roles/mailhost/tasks/acme.yml").read_text())[0]
    env = jinja2.Environment(undefined=jinja2.StrictUndefined)
    return [env.from_string(str(arg)).render(mailhost_manifest=entry, item=cert) for arg in task["ansible.builtin.command"]["argv"]]


def test_certbot_obtains_renews_with_the_same_key_and_the_hook_links_and_reloads(tmp_path: Path) -> None:
    trees, out = render(tmp_path / "render")
    entry = json.loads((out / "manifest.json").read_text())["hosts"]["mx1"]
    [cert] = entry["layout"]["acme"]["certificates"]
    work = tmp_path / "work"
    work.mkdir()
    le = tmp_path / "le"
    links = tmp_path / "links"
    webroot = out / "mx1" / entry["layout"]["acme"]["webroot"][1:]
    webroot.mkdir(parents=True)
    # The hook as rendered, its paths moved here; `service` stands in for the reloads.
    hook = tmp_path / "hook.sh"
    text = (out / "mx1/etc/letsencrypt/renewal-hooks/deploy/provisioner").read_text()
    hook.write_text(text.replace(ACME_LINK_DIR, str(links)).replace(LETSENCRYPT_LIVE, str(le / "live")).replace("/run/systemd/system", str(tmp_path / "none")))
    hook.chmod(0o755)
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "service").write_text(f'#!/bin/sh\necho "$@" >> {tmp_path}/reloads\n')
    (bin_dir / "service").chmod(0o755)
    # pebble's API certificate from a test CA; certbot trusts it through REQUESTS_CA_BUNDLE.
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(work / "api.key"), "-out", str(work / "api.crt"), "-days", "2"]
        + ["-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"],
        check=True,
        capture_output=True,
    )
    shutil.copy(work / "api.crt", work / "api-ca.pem")
    http, https, acme, management, dns = (free_port() for _ in range(5))
    (work / "pebble.json").write_text(
        json.dumps(
            {
                "pebble": {
                    "listenAddress": f"127.0.0.1:{acme}",
                    "managementListenAddress": f"127.0.0.1:{management}",
                    "certificate": str(work / "api.crt"),
                    "privateKey": str(work / "api.key"),
                    "httpPort": http,
                    "tlsPort": free_port(),
                    "ocspResponderURL": "",
                    "externalAccountBindingRequired": False,
                }
            }
        )
    )
    # nginx with the host's rendered configuration on loopback: port 80 -> `http`.
    certs = tmp_path / "certs"
    certificate(certs / cert["name"], cert["names"])
    conf = judged_copy((out / "mx1/etc/nginx/nginx.conf").read_text(), out / "mx1", certs, work, (http, https))
    procs = []
    try:
        procs.append(subprocess.Popen(["nginx", "-c", str(conf), "-g", "daemon off;"], stderr=subprocess.DEVNULL))
        procs.append(
            subprocess.Popen(
                ["pebble-challtestsrv", "-dns01", f"127.0.0.1:{dns}", "-http01", "", "-https01", "", "-tlsalpn01", "", "-management", f"127.0.0.1:{free_port()}", "-defaultIPv6", ""],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        )
        pebble_env = {**os.environ, "PEBBLE_VA_NOSLEEP": "1", "PEBBLE_WFE_NONCEREJECT": "0", "PEBBLE_AUTHZREUSE": "0"}
        procs.append(subprocess.Popen(["pebble", "-config", str(work / "pebble.json"), "-dnsserver", f"127.0.0.1:{dns}"], stdout=open(work / "pebble.log", "wb"), stderr=subprocess.STDOUT, env=pebble_env))  # noqa: SIM115
        for port in (http, acme):
            wait_port(port)
        argv = role_argv({**entry, "layout": {**entry["layout"], "acme": {**entry["layout"]["acme"], "directory": f"https://127.0.0.1:{acme}/dir", "webroot": str(webroot), "deploy_hook": str(hook)}}}, cert)
        dirs = ["--config-dir", str(le), "--work-dir", str(tmp_path / "lib"), "--logs-dir", str(tmp_path / "log")]
        env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}", "REQUESTS_CA_BUNDLE": str(work / "api-ca.pem")}
        ctx = ssl.create_default_context(cafile=str(work / "api-ca.pem"))
        first = subprocess.run([*argv, *dirs], capture_output=True, text=True, env=env, timeout=180, check=False)
        assert first.returncode == 0, first.stdout + first.stderr + (work / "pebble.log").read_text()[-3000:]
        # The hook linked the stable paths and reloaded exactly the certificate's users.
        for name in ("fullchain", "privkey"):
            assert os.readlink(links / cert["name"] / f"{name}.pem") == f"{le}/live/{cert['name']}/{name}.pem"
        assert (tmp_path / "reloads").read_text().splitlines() == [f"{s} reload" for s in cert["services"]]
        chain = (links / cert["name"] / "fullchain.pem").read_text()
        shown = subprocess.run(["openssl", "x509", "-noout", "-ext", "subjectAltName", "-serial"], input=chain, capture_output=True, text=True, check=True).stdout
        assert all(f"DNS:{n}" in shown for n in cert["names"])
        # A re-run with nothing due asks for nothing, changes nothing: the role reports unchanged.
        again = subprocess.run([*argv, *dirs], capture_output=True, text=True, env=env, timeout=180, check=False)
        assert again.returncode == 0 and "no action taken" in again.stdout + again.stderr, again.stdout + again.stderr
        # A forced renewal: a new certificate, the same key (--reuse-key), the hook ran again.
        (tmp_path / "reloads").unlink()
        spki = subprocess.run(["openssl", "x509", "-noout", "-pubkey"], input=chain, capture_output=True, text=True, check=True).stdout
        renewed = subprocess.run(["certbot", "renew", "--force-renewal", "--no-random-sleep-on-renew", *dirs], capture_output=True, text=True, env=env, timeout=180, check=False)
        assert renewed.returncode == 0, renewed.stdout + renewed.stderr
        new_chain = (links / cert["name"] / "fullchain.pem").read_text()
        assert new_chain != chain
        assert subprocess.run(["openssl", "x509", "-noout", "-pubkey"], input=new_chain, capture_output=True, text=True, check=True).stdout == spki
        assert (tmp_path / "reloads").read_text().splitlines() == [f"{s} reload" for s in cert["services"]]
        root = urllib.request.urlopen(f"https://127.0.0.1:{management}/roots/0", context=ctx).read()  # noqa: S310
        assert b"BEGIN CERTIFICATE" in root
    finally:
        for proc in procs:
            proc.terminate()
            proc.wait(timeout=10)
