"""Typed errors of the registry. The CLI turns each into a plain message and its exit code."""

from __future__ import annotations


class RegistryError(Exception):
    """Base of every registry error. ``exit_code`` 1 = failure, 2 = invalid input."""

    exit_code = 1
    # the fix shown for an error raised without one: every error the CLI prints has a `fix:` line
    default_hint: str | None = "check TRTBUILD_DB_URL / TRTBUILD_STORE_URL (trtbuild doctor checks both)"

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.hint = hint or self.default_hint

    def __str__(self) -> str:
        msg = super().__str__()
        return f"{msg}\n  fix: {self.hint}" if self.hint else msg


class InvalidReference(RegistryError):
    exit_code = 2
    default_hint = (
        "a reference is sha256:<hex> or a unique prefix of at least 7 hex digits, NAME (= NAME:latest), "
        "NAME:TAG or NAME@sha256:<hex>"
    )


class NotFound(RegistryError):
    default_hint = "list what the registry holds: trtbuild ls --no-trunc"


class IntegrityError(RegistryError):
    """Bytes or a manifest did not match their digest."""

    default_hint = (
        "check the store: trtbuild verify REF; restore from a local copy: trtbuild verify REF --repair DIR"
    )


class UnsafeManifest(IntegrityError):
    """A manifest names an absolute path, ``..``, a duplicate or a link."""

    default_hint = "such an artifact is never pulled: remove it (trtbuild rm --force REF), push a clean copy"


class StoreUnavailable(RegistryError):
    default_hint = "check TRTBUILD_STORE_URL / --store-url, its AWS_* credentials and that the store answers"


class CatalogUnavailable(RegistryError):
    default_hint = "check TRTBUILD_DB_URL / --db-url and that the database answers"


class InvalidInput(RegistryError):
    """Bad input to the registry: a source directory, a name, a flag value. Exit code 2."""

    exit_code = 2
    default_hint = "see the command's --help"


class InUse(RegistryError):
    """The artifact is tagged or its build key is leased: not removed without force."""

    default_hint = "untag it first (trtbuild untag NAME:TAG), or pass --force"


class Interrupted(KeyboardInterrupt):
    """Ctrl-C or SIGTERM stopped a transfer; the message says what was kept. Exit code 130."""

    exit_code = 130
