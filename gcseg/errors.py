"""Errors that reach the user as one readable line: what is wrong, where, and what to do."""

from __future__ import annotations

from pathlib import Path


class GcsegError(Exception):
    """Base class of every error gcseg reports to a user (CLI exit code 2, no traceback)."""

    def __init__(self, message: str, *, path: str | Path | None = None, fix: str | None = None):
        self.message = message
        self.path = None if path is None else str(path)
        self.fix = fix
        super().__init__(self.__str__())

    def __str__(self) -> str:
        where = f"{self.path}: " if self.path else ""
        fix = f" Fix: {self.fix}" if self.fix else ""
        return f"{where}{self.message}.{fix}" if not self.message.endswith(".") else f"{where}{self.message}{fix}"


class InputError(GcsegError):
    """A file or folder the user gave is missing, unreadable or inconsistent."""


class ConfigError(GcsegError):
    """A parameter is missing, of the wrong type or out of range."""


class ArtifactError(GcsegError):
    """A pipeline artifact is stale, foreign, truncated or of another schema version."""
