"""One deterministic tar per host from the build: what the role ships in a single copy.

Owners, groups and modes come from the manifest (the renderer's decision), not from the build
directory on the controller, so the bundle is the same whoever renders it. Fixed mtimes and
sorted members make it byte-identical for an unchanged tree: Ansible's copy then reports no
change, and a re-apply touches nothing.
"""

from __future__ import annotations

import hashlib
import hmac
import io
import json
import os
import tarfile
from pathlib import Path
from typing import Any

from provisioner.errors import ProvisionError
from provisioner.keys.digest import secret_digest
from provisioner.render.writer import BUNDLES, INCOMPLETE, read_digest_keys


def read_manifest(build_dir: Path) -> dict[str, Any]:
    """The build's manifest; refused while a render into it has not finished (writer's INCOMPLETE)."""
    if os.path.lexists(build_dir / INCOMPLETE):
        raise ProvisionError(
            f"{build_dir} is incomplete: a render into it stopped before it finished, so manifest.json "
            f"does not describe its files; run `provision render SITE -o {build_dir}` again"
        )
    try:
        data: dict[str, Any] = json.loads((build_dir / "manifest.json").read_text())
    except FileNotFoundError:
        raise ProvisionError(f"{build_dir}/manifest.json not found: run `provision render SITE -o {build_dir}` first") from None
    except (OSError, ValueError) as exc:
        raise ProvisionError(f"{build_dir}/manifest.json: {exc}") from None
    if not isinstance(data.get("hosts"), dict):
        raise ProvisionError(f"{build_dir}/manifest.json has no hosts")
    return data


def write_bundles(build_dir: Path, hosts: list[str] | None = None) -> dict[str, Path]:
    """Write BUILD/.bundles/<host>.tar for each host (all in the manifest by default)."""
    build_dir = build_dir.absolute()
    manifest = read_manifest(build_dir)
    out = build_dir / BUNDLES
    out.mkdir(mode=0o700, exist_ok=True)
    written = {}
    digest_keys: dict[str, bytes] | None = None
    for host in sorted(hosts if hosts is not None else manifest["hosts"]):
        entry = manifest["hosts"].get(host)
        if entry is None:
            raise ProvisionError(f"{build_dir}/manifest.json has no host {host}")
        buffer = io.BytesIO()
        with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
            for file in sorted(entry["files"], key=lambda f: f["path"]):
                content = (build_dir / host / file["path"].lstrip("/")).read_bytes()
                if "hmac_sha256" in file:  # a secret: keyed digest (provisioner.keys.digest)
                    digest_keys = digest_keys if digest_keys is not None else read_digest_keys(build_dir)
                    same = host in digest_keys and hmac.compare_digest(secret_digest(digest_keys[host], content), file["hmac_sha256"])
                else:
                    same = hashlib.sha256(content).hexdigest() == file.get("sha256")
                if not same:
                    raise ProvisionError(f"{build_dir}/{host}{file['path']} differs from manifest.json: render again")
                info = tarfile.TarInfo(file["path"].lstrip("/"))
                info.size = len(content)
                info.mode = int(file["mode"], 8)
                info.uname, info.gname = file["owner"], file["group"]
                info.uid = info.gid = 0
                info.mtime = 0
                tar.addfile(info, io.BytesIO(content))
        target = out / f"{host}.tar"
        data = buffer.getvalue()
        if not target.exists() or target.read_bytes() != data:
            temporary = out / f".{host}.tar.new"
            fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
            os.replace(temporary, target)
        written[host] = target
    return written
