"""What render produces: files for a host, each with its target path, owner and mode."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class RenderedFile:
    path: str  # target path without the leading slash, e.g. etc/postfix/main.cf
    content: bytes
    mode: int = 0o644
    owner: str = "root"
    group: str = "root"
    secret: bool = False  # never shown in diffs or logs


@dataclass
class HostTree:
    host: str
    files: dict[str, RenderedFile] = field(default_factory=dict)
    acme: dict[str, Any] | None = None  # the certificates the role obtains (render.acme.add_acme), into the manifest's layout

    def add(self, path: str, content: str | bytes, mode: int = 0o644, owner: str = "root", group: str = "root", secret: bool = False) -> None:
        data = content.encode() if isinstance(content, str) else content
        if path in self.files:
            raise ValueError(f"{self.host}: {path} rendered twice")  # a bug, not user error
        self.files[path] = RenderedFile(path, data, mode, owner, group, secret)


def table(entries: dict[str, str] | list[tuple[str, str]], header: str) -> str:
    """A Postfix lookup table source: sorted `key<TAB>value` lines under a comment header."""
    items = sorted(entries.items() if isinstance(entries, dict) else entries)
    return header + "".join(f"{key}\t{value}\n" for key, value in items)
