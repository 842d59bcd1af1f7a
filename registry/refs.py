"""References to artifacts, as docker takes them: ``sha256:<hex>`` or a unique prefix of at least 7 hex digits
(with or without ``sha256:``), ``name`` (= ``name:latest``), ``name:tag`` and ``name@sha256:<hex>``."""

from __future__ import annotations

import re
from dataclasses import dataclass

from registry.errors import InvalidReference

# The grammar of names and tags (docker's, letters of either case allowed):
#   NAME      = COMPONENT ("/" COMPONENT)*, at most 200 characters, and not 7-64 hex digits
#   COMPONENT = ALNUM+ (SEP ALNUM+)*   with SEP one of "." "_" "__" or one or more "-"
#   TAG       = [A-Za-z0-9_] [A-Za-z0-9_.-]{0,127}
# ASCII only: no spaces, control characters or newlines. A name that reads as a hash (prefix) is refused, so
# a bare reference of hex digits means a hash ("\Z": "$" would also accept a trailing newline).
_COMPONENT = r"[A-Za-z0-9]+(?:(?:[._]|__|-+)[A-Za-z0-9]+)*"
NAME_RE = re.compile(rf"^(?=.{{1,200}}\Z){_COMPONENT}(?:/{_COMPONENT})*\Z")
HASHLIKE_RE = re.compile(r"^[0-9a-fA-F]{7,64}\Z")
TAG_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9._-]{0,127}\Z")
SHA256_HEX = "[0-9a-f]{64}"  # the one digest pattern: lowercase hex, as sha256 writes it
HEX_DIGEST_RE = re.compile(rf"^{SHA256_HEX}\Z")  # blob keys, manifest file and chunk entries
DIGEST_RE = re.compile(rf"^sha256:{SHA256_HEX}\Z")  # artifact hashes, image digests
MIN_PREFIX = 7  # hex digits of the shortest hash prefix taken as a reference (docker takes short IDs too)
HEX_PREFIX_RE = re.compile(rf"^[0-9a-f]{{{MIN_PREFIX},64}}\Z")
DEFAULT_TAG = "latest"
NAME_RULE = (
    "a name is up to 200 characters: letters, digits and single separators ('.', '_', '__', '-'), in "
    "'/'-separated parts, e.g. team/llama-3.1-8b-fp8; not 7-64 hex digits (that reads as a hash)"
)
_FORMS = (
    "use sha256:<hex> or <hex> (the full hash or a unique prefix of at least 7 hex digits), NAME "
    "(= NAME:latest), NAME:TAG or NAME@sha256:<hex>"
)


@dataclass(frozen=True)
class Ref:
    """A parsed reference: a digest (or a unique prefix of one), a name with a tag, or a name pinned to a
    digest. ``partial``: ``digest`` is ``sha256:`` + 7-63 hex digits, expanded against the catalog.
    ``or_name``: bare hex that may also be a name (tried as ``NAME:latest`` when no hash has that prefix)."""

    digest: str | None = None
    name: str | None = None
    tag: str | None = None
    partial: bool = False
    or_name: bool = False

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


def _digest_or_prefix(hexpart: str, text: str) -> tuple[str, bool]:
    """(``sha256:<hex>``, partial?) for the hex after ``sha256:``; InvalidReference when it is neither a full
    digest nor a prefix of at least MIN_PREFIX hex digits."""
    if not HEX_PREFIX_RE.match(hexpart):
        raise InvalidReference(
            f"invalid digest {text!r}",
            hint=f"a digest is sha256: followed by 64 lowercase hex digits, or a unique prefix of at least "
            f"{MIN_PREFIX} of them",
        )
    return f"sha256:{hexpart}", len(hexpart) < 64


def parse_ref(text: str) -> Ref:
    """Parse REF; raises InvalidReference naming the accepted forms."""
    text = (text or "").strip()
    if text.startswith("sha256:"):
        digest, partial = _digest_or_prefix(text.removeprefix("sha256:"), text)
        return Ref(digest=digest, partial=partial)
    if "@" in text:
        name, _, digest_text = text.partition("@")
        if not digest_text.startswith("sha256:"):
            raise InvalidReference(f"invalid reference {text!r}", hint=_FORMS)
        digest, partial = _digest_or_prefix(digest_text.removeprefix("sha256:"), digest_text)
        return Ref(digest=digest, name=check_name(name), partial=partial)
    if ":" in text:
        name, _, tag = text.rpartition(":")
        return Ref(name=check_name(name), tag=check_tag(tag))
    if HEX_PREFIX_RE.match(text):
        return Ref(digest=f"sha256:{text}", partial=len(text) < 64, or_name=True)
    if text and NAME_RE.match(text):
        return Ref(name=text, tag=DEFAULT_TAG)
    raise InvalidReference(f"invalid reference {text!r}", hint=_FORMS)


def parse_name_tag(text: str) -> tuple[str, str]:
    """Parse ``NAME:TAG`` (the target of ``trtbuild tag``); a bare ``NAME`` means ``NAME:latest``."""
    text = text or ""
    if "@" in text:
        raise InvalidReference(f"invalid tag reference {text!r}", hint="use NAME:TAG, e.g. llama-8b-fp8:prod")
    name, sep, tag = text.rpartition(":")
    if not sep:
        return check_name(text), DEFAULT_TAG
    return check_name(name), check_tag(tag)
