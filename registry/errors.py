"""Typed errors of the registry. The CLI turns each into a plain message and its exit code."""

from __future__ import annotations


class RegistryError(Exception):
    """Base of every registry error. ``exit_code`` 1 = failure, 2 = invalid input."""

    exit_code = 1

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.hint = hint

    def __str__(self) -> str:
        msg = super().__str__()
        return f"{msg}\n  fix: {self.hint}" if self.hint else msg


class InvalidReference(RegistryError):
    exit_code = 2


class NotFound(RegistryError):
    pass


class IntegrityError(RegistryError):
    """Bytes or a manifest did not match their digest."""


class UnsafeManifest(IntegrityError):
    """A manifest names an absolute path, ``..``, a duplicate or a link."""


class StoreUnavailable(RegistryError):
    pass


class CatalogUnavailable(RegistryError):
    pass


class InvalidInput(RegistryError):
    """Bad input to the registry: a source directory, a name, a flag value. Exit code 2."""

    exit_code = 2


class Interrupted(KeyboardInterrupt):
    """Ctrl-C or SIGTERM stopped a transfer; the message says what was kept. Exit code 130."""

    exit_code = 130
