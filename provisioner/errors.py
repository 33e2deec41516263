"""Errors users see. Everything below the CLI raises these; the CLI maps them to exit codes."""

from __future__ import annotations

from dataclasses import dataclass

from provisioner.textsafe import visible


@dataclass(frozen=True, order=True)
class Problem:
    """One problem in a site file, pointing at its source. Its text form is one line with the
    file's controls made visible (a key or value may carry ESC, CR, LF or bidi controls); the
    fields themselves keep the exact text (for JSON)."""

    file: str
    line: int
    column: int
    path: str
    message: str
    hint: str = ""

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}:{self.column}"
        text = f"{where}: {self.path}: {self.message}" if self.path else f"{where}: {self.message}"
        return visible(f"{text} (hint: {self.hint})" if self.hint else text)


class ProvisionError(Exception):
    """A user-facing error: printed without a traceback, exit code 1."""


class SiteInvalid(ProvisionError):
    """The site file has problems; all of them are listed."""

    def __init__(self, problems: list[Problem]):
        self.problems = sorted(problems)
        super().__init__("\n".join(str(p) for p in self.problems))
