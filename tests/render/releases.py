"""The bundled examples (and the test network's site) declared for one release: a copy with
`os:` written under every host's fqdn, so render takes the release from the site file."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

from provisioner.render.tree import HostTree
from provisioner.site.types import OsRelease
from tests.conftest import EXAMPLES
from tests.render.helpers import render_example

_FQDN = re.compile(r"^(    fqdn: .*\n)", re.M)
_OS = re.compile(r"^    os: .*\n", re.M)


def declared(site: Path, release: OsRelease) -> None:
    """Write `os: <release>` into every host of the site file at `site` (four-space host keys),
    in place of any `os:` it declares."""
    text = _OS.sub("", site.read_text())
    site.write_text(_FQDN.sub(rf"\g<1>    os: {release.value}\n", text))


def render_for(example: str, release: OsRelease, tmp_path: Path) -> tuple[dict[str, HostTree], Path]:
    """Render an example (or "network": the test network's site) for hosts that run `release`."""
    if example == "network":
        from tests.render.test_judges import network_site

        site = network_site(tmp_path)
    else:
        site = tmp_path / "site" / example / "site.yaml"
        shutil.copytree(EXAMPLES / example, site.parent)
    declared(site, release)
    return render_example(example, tmp_path, site)
