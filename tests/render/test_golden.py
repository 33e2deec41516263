"""Golden files for the bundled examples, compared byte for byte.

Regenerate after an intended change with UPDATE_GOLDEN=1 and review the diff.
Key material and certificates differ per run by design; they are checked elsewhere.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest

from provisioner.dns.formats import record_files
from provisioner.dns.records import site_records
from provisioner.keys.store import load_state
from provisioner.site.validate import load_site
from tests.conftest import FIXED_DAY
from tests.render.helpers import render_example

GOLDEN = Path(__file__).resolve().parents[1] / "golden"
EXAMPLES = ["all-in-one", "multi-host"]


def comparable(path: str, secret: bool) -> bool:
    return not secret and not path.endswith((".crt", ".key", ".private"))


@pytest.mark.parametrize("example", EXAMPLES)
def test_rendered_files_match_golden(example: str, tmp_path: Path) -> None:
    trees, _ = render_example(example, tmp_path)
    rendered = {f"{host}/{f.path}": f.content for host, tree in trees.items() for f in tree.files.values() if comparable(f.path, f.secret)}
    root = GOLDEN / example
    if os.environ.get("UPDATE_GOLDEN"):
        for rel, content in rendered.items():
            (root / rel).parent.mkdir(parents=True, exist_ok=True)
            (root / rel).write_bytes(content)
    on_disk = {str(p.relative_to(root)): p.read_bytes() for p in root.rglob("*") if p.is_file() and not str(p.relative_to(root)).startswith("dns/")}
    assert sorted(on_disk) == sorted(rendered), "set of rendered files changed"
    for rel, content in rendered.items():
        assert content == on_disk[rel], f"{example}/{rel} differs from golden"


# A DKIM key value (after k=rsa; / k=ed25519;), also when split into quoted strings.
_KEY = re.compile(r'(k=(?:rsa|ed25519)(?:\\)*; p=)[A-Za-z0-9+/=]+(?:"\s"[A-Za-z0-9+/=]+)*')


def masked(name: str, content: bytes) -> bytes:
    """DKIM public keys differ per run (new keys); everything around them is compared."""
    text = content.decode()
    if name.endswith("records.json"):
        doc = json.loads(text)
        for record in doc["records"]:
            record["value"] = _KEY.sub(r"\1<key>", record["value"])
            if record["strings"] and "<key>" in record["value"]:
                record["strings"] = ["<split key>"]
        text = json.dumps(doc, indent=2, sort_keys=True, ensure_ascii=False) + "\n"
    return _KEY.sub(r"\1<key>", text).encode()


@pytest.mark.parametrize("example", EXAMPLES)
def test_dns_outputs_match_golden(example: str, tmp_path: Path) -> None:
    from tests.conftest import EXAMPLES as EXAMPLE_DIR

    render_example(example, tmp_path)
    site = load_site(EXAMPLE_DIR / example / "site.yaml").site
    files = record_files(site, site_records(site, load_state(tmp_path / "state"), today=FIXED_DAY))
    rendered = {name: masked(name, content) for name, content in files.items()}
    root = GOLDEN / example
    if os.environ.get("UPDATE_GOLDEN"):
        for rel, content in rendered.items():
            (root / rel).parent.mkdir(parents=True, exist_ok=True)
            (root / rel).write_bytes(content)
    on_disk = {str(p.relative_to(root)): p.read_bytes() for p in (root / "dns").rglob("*") if p.is_file()}
    assert sorted(on_disk) == sorted(rendered)
    for rel, content in rendered.items():
        assert content == on_disk[rel], f"{example}/{rel} differs from golden"
