"""Lock files: floating references (image tags, model branches, S3 prefixes) resolved to pins.

``trtbuild lock recipes/x.toml`` writes ``recipes/x.lock`` beside the recipe. A lock is *stale* when the
inputs it resolved (toolchain image, model source, requested revision) changed since it was written.
"""

from __future__ import annotations

import datetime as dt
import stat
import tomllib
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from registry.api import DIGEST_RE, digest_of
from trtbuild.errors import LockError, RunnerUnavailable
from trtbuild.recipe.load import LoadedRecipe
from trtbuild.recipe.model_config import SHA_RE

LOCK_VERSION = 1
ImageResolver = Callable[[str], str]
RevisionResolver = Callable[[str, str | None], str]


@dataclass(frozen=True)
class Lock:
    inputs_digest: str
    toolchain: str
    image: str
    image_digest: str
    model_source: str
    requested_revision: str | None
    revision: str | None
    locked_at: str

    def to_toml(self, recipe_name: str) -> str:
        import tomli_w

        body = {
            "version": LOCK_VERSION,
            "recipe": recipe_name,
            **{k: v for k, v in asdict(self).items() if v is not None},
        }
        return (
            "# Written by `trtbuild lock`: pins for the floating references of the recipe beside it.\n"
            "# Commit it with the recipe; `trtbuild build --locked` refuses a missing or stale lock.\n"
            + tomli_w.dumps(body)
        )


def lock_path_for(recipe_path: Path) -> Path:
    return recipe_path.with_suffix(".lock")


def inputs_digest(loaded: LoadedRecipe) -> str:
    """Digest of exactly what a lock resolves: change any of these and the lock is stale."""
    tc, model = loaded.toolchain, loaded.recipe.model
    return digest_of(
        {
            "toolchain": tc.name,
            "image": tc.image,
            "pinned_digest": tc.digest,
            "source": model.source,
            "revision": model.revision,
        }
    )


MAX_LOCK_BYTES = 64 << 10
MAX_FIELD_CHARS = 1024
_REQUIRED = ("inputs_digest", "toolchain", "image", "image_digest", "model_source", "locked_at")
_OPTIONAL = ("requested_revision", "revision")


def read_lock(loaded: LoadedRecipe) -> Lock | None:
    """The lock beside the recipe, or None when there is none. Parsed strictly: a lock with a wrong type,
    format or size, an unknown key, or (when it claims to be fresh) a field that disagrees with the recipe
    is an input error naming the field — never silently used or "fresh"."""
    path = lock_path_for(loaded.path)
    fix = f"regenerate it: trtbuild lock {loaded.path}"
    try:
        st = path.stat()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise LockError(f"{path}: cannot read: {exc.strerror}", hint=fix) from None
    if not stat.S_ISREG(st.st_mode):
        raise LockError(
            f"{path}: not a valid lock file: (file): not a regular file", hint=f"remove it; {fix}"
        )
    if st.st_size > MAX_LOCK_BYTES:
        raise LockError(
            f"{path}: not a valid lock file: (file): {st.st_size} bytes, more than {MAX_LOCK_BYTES}", hint=fix
        )
    try:
        data = tomllib.loads(path.read_text("utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError, RecursionError) as exc:
        raise LockError(f"{path}: not a valid lock file: {str(exc)[:200]}", hint=fix) from None

    def bad(field: str, why: str) -> LockError:
        return LockError(f"{path}: not a valid lock file: {field}: {why}", hint=fix)

    lock = _lock_from(data, bad)
    if is_fresh(lock, loaded):
        _check_agrees(lock, loaded, bad)
    return lock


def _lock_from(data: dict[str, Any], bad: Callable[[str, str], LockError]) -> Lock:
    """Types, formats and sizes of every field (independent of the recipe)."""
    version = data.get("version")
    if type(version) is not int or version != LOCK_VERSION:
        raise bad(
            "version", f"unsupported lock version {str(version)[:40]!r} (this trtbuild writes {LOCK_VERSION})"
        )
    unknown = sorted(set(data) - {"version", "recipe", *_REQUIRED, *_OPTIONAL})
    if unknown:
        raise bad(unknown[0][:80], "unknown key")
    for key in ("recipe", *_REQUIRED, *_OPTIONAL):
        value = data.get(key)
        if value is None and key in ("recipe", *_OPTIONAL):
            continue
        if not isinstance(value, str):
            raise bad(key, "missing" if value is None else f"must be a string, not {type(value).__name__}")
        if len(value) > MAX_FIELD_CHARS or any(ord(c) < 0x20 or ord(c) == 0x7F for c in value):
            raise bad(key, "too long or contains control characters (a newline ...)")
    for key in ("inputs_digest", "image_digest"):
        if not DIGEST_RE.match(data[key]):
            raise bad(key, "not sha256:<64 hex>")
    try:
        dt.datetime.fromisoformat(data["locked_at"])
    except ValueError:
        raise bad("locked_at", "not an ISO 8601 time") from None
    scheme = data["model_source"].partition("://")[0]
    revision = data.get("revision")
    if scheme == "hf" and not (isinstance(revision, str) and SHA_RE.match(revision)):
        raise bad("revision", "a Hugging Face model is pinned by its 40-hex commit sha")
    if scheme == "s3" and not (isinstance(revision, str) and DIGEST_RE.match(revision)):
        raise bad("revision", "an S3 prefix is pinned by the sha256:<64 hex> of its listing")
    if scheme == "file" and revision != data.get("requested_revision"):
        raise bad(
            "revision", "a local model is pinned by its content; the lock repeats the recipe's revision"
        )
    if scheme not in ("hf", "s3", "file"):
        raise bad("model_source", "must start with hf://, s3:// or file://")
    return Lock(
        inputs_digest=data["inputs_digest"],
        toolchain=data["toolchain"],
        image=data["image"],
        image_digest=data["image_digest"],
        model_source=data["model_source"],
        requested_revision=data.get("requested_revision"),
        revision=revision,
        locked_at=data["locked_at"],
    )


def _check_agrees(lock: Lock, loaded: LoadedRecipe, bad: Callable[[str, str], LockError]) -> None:
    """A lock whose inputs_digest matches the recipe must say what the recipe says: else it was edited."""
    tc, model = loaded.toolchain, loaded.recipe.model
    for field, locked, recipe in (
        ("toolchain", lock.toolchain, tc.name),
        ("image", lock.image, tc.image),
        ("model_source", lock.model_source, model.source),
        ("requested_revision", lock.requested_revision, model.revision),
        ("image_digest", lock.image_digest, tc.digest or lock.image_digest),
    ):
        if locked != recipe:
            raise bad(field, f"says {str(locked)[:80]!r} but the recipe and its toolchain say {recipe!r}")


def is_fresh(lock: Lock, loaded: LoadedRecipe) -> bool:
    return lock.inputs_digest == inputs_digest(loaded)


def lock_recipe(
    loaded: LoadedRecipe,
    *,
    image_resolver: ImageResolver | None = None,
    revision_resolver: RevisionResolver | None = None,
) -> tuple[Lock, Path]:
    """Resolve every floating reference of ``loaded`` and write the lock file beside it."""
    tc, model = loaded.toolchain, loaded.recipe.model
    pinned = tc.pinned_ref()
    image_digest = pinned.split("@", 1)[1] if pinned else (image_resolver or resolve_image_digest)(tc.image)
    revision = model.revision
    if model.scheme == "hf" and not (revision and SHA_RE.match(revision)):
        revision = (revision_resolver or resolve_hf_revision)(model.location, revision)
    elif model.scheme == "s3":
        revision = (revision_resolver or resolve_s3_listing)(model.location, revision)
    lock = Lock(
        inputs_digest=inputs_digest(loaded),
        toolchain=tc.name,
        image=tc.image,
        image_digest=image_digest,
        model_source=model.source,
        requested_revision=model.revision,
        revision=revision,
        locked_at=dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat(),
    )
    path = lock_path_for(loaded.path)
    tmp = path.with_suffix(".lock.tmp")
    tmp.write_text(lock.to_toml(loaded.path.name), "utf-8")
    tmp.replace(path)
    return lock, path


def resolve_image_digest(image: str) -> str:
    """Registry digest of an image tag, through the Docker Engine (docker SDK registry data)."""
    from docker.errors import APIError

    from trtbuild.docker_engine import docker_client

    try:
        client = docker_client()
    except RunnerUnavailable as exc:  # a lock error like the others of `trtbuild lock` (exit 2)
        raise LockError(
            f"cannot reach the Docker Engine to resolve {image}: {exc.args[0]}", hint=exc.hint
        ) from None
    try:
        digest = client.images.get_registry_data(image).id
    except APIError as exc:
        raise LockError(
            f"cannot resolve {image} to a digest: {exc.explanation or exc}",
            hint="check the image name and that `docker login nvcr.io` was done on this host",
        ) from None
    if not DIGEST_RE.match(digest):
        raise LockError(f"registry returned an unexpected digest for {image}: {digest!r}")
    return digest


def resolve_hf_revision(repo_id: str, revision: str | None) -> str:
    """Commit sha of a Hugging Face branch or tag."""
    from trtbuild import hub

    sha = hub.commit_of(repo_id, revision)
    if not sha or not SHA_RE.match(sha):
        raise LockError(f"hf://{repo_id}@{revision}: the Hub returned no commit sha")
    return sha


def resolve_s3_listing(location: str, revision: str | None) -> str:
    """Digest of an S3 prefix's listing (keys, sizes, ETags): an S3 prefix is pinned by its content."""
    import boto3
    from botocore.exceptions import BotoCoreError, ClientError

    bucket, _, prefix = location.partition("/")
    entries = []
    try:
        pages = boto3.client("s3").get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
        for page in pages:
            entries += [(o["Key"], o["Size"], o["ETag"]) for o in page.get("Contents", [])]
    except (BotoCoreError, ClientError) as exc:
        raise LockError(
            f"s3://{location}: cannot list: {exc}",
            hint="check AWS credentials / AWS_ENDPOINT_URL and the bucket name",
        ) from None
    if not entries:
        raise LockError(f"s3://{location}: no objects under this prefix", hint="check model.source")
    return digest_of(sorted(entries))
