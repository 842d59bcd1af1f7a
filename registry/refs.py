"""References to artifacts: ``sha256:<hex>``, ``name:tag`` and ``name@sha256:<hex>``."""

from __future__ import annotations

import re
from dataclasses import dataclass

from registry.errors import InvalidReference

NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._/-]{0,199}$")
TAG_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9._-]{0,127}$")
DIGEST_RE = re.compile(r"^sha256:[0-9a-f]{64}$")
_FORMS = "use sha256:<64 hex>, NAME:TAG or NAME@sha256:<64 hex>"


@dataclass(frozen=True)
class Ref:
    """A parsed reference: a digest, a name with a tag, or a name pinned to a digest."""

    digest: str | None = None
    name: str | None = None
    tag: str | None = None

    def __str__(self) -> str:
        if self.tag:
            return f"{self.name}:{self.tag}"
        if self.name:
            return f"{self.name}@{self.digest}"
        return str(self.digest)


def check_name(name: str) -> str:
    if not NAME_RE.match(name or ""):
        raise InvalidReference(
            f"invalid artifact name {name!r}",
            hint="a name is 1-200 characters of letters, digits, '.', '_', '-', '/', starting with a letter or digit",
        )
    return name


def check_tag(tag: str) -> str:
    if not TAG_RE.match(tag or ""):
        raise InvalidReference(
            f"invalid tag {tag!r}", hint="a tag is 1-128 characters of letters, digits, '.', '_', '-'"
        )
    return tag


def check_digest(digest: str) -> str:
    if not DIGEST_RE.match(digest or ""):
        raise InvalidReference(
            f"invalid digest {digest!r}", hint="a digest is sha256: followed by 64 lowercase hex digits"
        )
    return digest


def parse_ref(text: str) -> Ref:
    """Parse REF; raises InvalidReference naming the accepted forms."""
    text = (text or "").strip()
    if text.startswith("sha256:"):
        return Ref(digest=check_digest(text))
    if "@" in text:
        name, _, digest = text.partition("@")
        return Ref(digest=check_digest(digest), name=check_name(name))
    if ":" in text:
        name, _, tag = text.rpartition(":")
        return Ref(name=check_name(name), tag=check_tag(tag))
    raise InvalidReference(f"invalid reference {text!r}", hint=_FORMS)


def parse_name_tag(text: str) -> tuple[str, str]:
    """Parse ``NAME:TAG`` (the target of ``trtbuild tag``)."""
    name, sep, tag = (text or "").rpartition(":")
    if not sep or "@" in text:
        raise InvalidReference(f"invalid tag reference {text!r}", hint="use NAME:TAG, e.g. llama-8b-fp8:prod")
    return check_name(name), check_tag(tag)
