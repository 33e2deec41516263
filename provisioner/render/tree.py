"""What render produces: files for a host, each with its target path, owner and mode."""

from __future__ import annotations

from dataclasses import dataclass, field

from jinja2 import Environment, FileSystemLoader, StrictUndefined

from provisioner.datadir import data_dir

TEMPLATES = data_dir("templates")  # the checkout's templates/, or the wheel's provisioner/templates


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

    def add(self, path: str, content: str | bytes, mode: int = 0o644, owner: str = "root", group: str = "root", secret: bool = False) -> None:
        data = content.encode() if isinstance(content, str) else content
        if path in self.files:
            raise ValueError(f"{self.host}: {path} rendered twice")  # a bug, not user error
        self.files[path] = RenderedFile(path, data, mode, owner, group, secret)


_ENV: Environment | None = None


def templates() -> Environment:
    global _ENV
    if _ENV is None:
        _ENV = Environment(
            loader=FileSystemLoader(str(TEMPLATES)),
            undefined=StrictUndefined,
            keep_trailing_newline=True,
            trim_blocks=True,
            lstrip_blocks=True,
            autoescape=False,
        )
    return _ENV


def render_template(name: str, **context: object) -> str:
    return templates().get_template(name).render(**context)


def table(entries: dict[str, str] | list[tuple[str, str]], header: str) -> str:
    """A Postfix lookup table source: sorted `key<TAB>value` lines under a comment header."""
    items = sorted(entries.items() if isinstance(entries, dict) else entries)
    return header + "".join(f"{key}\t{value}\n" for key, value in items)
