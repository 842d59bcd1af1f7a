"""References to artifacts: ``sha256:<hex>``, ``name:tag`` and ``name@sha256:<hex>``."""

from __future__ import annotations

import re
from dataclasses import dataclass

from registry.errors import InvalidReference

# The grammar of names and tags (docker's, letters of either case allowed):
#   NAME      = COMPONENT ("/" COMPONENT)*, at most 200 characters, and not 7-64 hex digits
#   COMPONENT = ALNUM+ (SEP ALNUM+)*   with SEP one of "." "_" "__" or one or more "-"
#   TAG       = [A-Za-z0-9_] [A-Za-z0-9_.-]{0,127}
# ASCII only: no spaces, control characters or newlines. A name that reads as a hash (prefix) is refused, so
# a bare reference of hex digits always means a hash.
_COMPONENT = r"[A-Za-z0-9]+(?:(?:[._]|__|-+)[A-Za-z0-9]+)*"
NAME_RE = re.compile(rf"^(?=.{{1,200}}\Z){_COMPONENT}(?:/{_COMPONENT})*\Z")
HASHLIKE_RE = re.compile(r"^[0-9a-fA-F]{7,64}\Z")
TAG_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9._-]{0,127}\Z")
DIGEST_RE = re.compile(r"^sha256:[0-9a-f]{64}\Z")
_FORMS = "use sha256:<64 hex>, NAME:TAG or NAME@sha256:<64 hex>"
NAME_RULE = (
    "a name is up to 200 characters: letters, digits and single separators ('.', '_', '__', '-'), in "
    "'/'-separated parts, e.g. team/llama-3.1-8b-fp8; not 7-64 hex digits (that reads as a hash)"
)


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


def name_problem(name: object) -> str | None:
    """Why ``name`` is not a valid artifact name, or None when it is."""
    if not isinstance(name, str) or not NAME_RE.match(name):
        return "not a valid name"
    if HASHLIKE_RE.match(name):
        return "reads as a hash"
    return None


def check_name(name: str) -> str:
    problem = name_problem(name)
    if problem is not None:
        raise InvalidReference(f"invalid artifact name {name!r}: {problem}", hint=NAME_RULE)
    return name


def check_tag(tag: str) -> str:
    if not isinstance(tag, str) or not TAG_RE.match(tag):
        raise InvalidReference(
            f"invalid tag {tag!r}", hint="a tag is 1-128 characters of letters, digits, '.', '_', '-'"
        )
    return tag


def check_digest(digest: str) -> str:
    if not isinstance(digest, str) or not DIGEST_RE.match(digest):
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
