"""Lock files: floating references (image tags, model branches, S3 prefixes) resolved to pins.

``trtbuild lock recipes/x.toml`` writes ``recipes/x.lock`` beside the recipe. A lock is *stale* when the
inputs it resolved (toolchain image, model source, requested revision) changed since it was written.
"""

from __future__ import annotations

import datetime as dt
import tomllib
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

from registry.api import digest_of
from trtbuild.errors import LockError
from trtbuild.recipe.load import LoadedRecipe
from trtbuild.recipe.schema import SHA_RE
from trtbuild.recipe.toolchain import DIGEST_RE

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


def read_lock(loaded: LoadedRecipe) -> Lock | None:
    """The lock beside the recipe, or None when there is none. A malformed lock is an input error."""
    path = lock_path_for(loaded.path)
    if not path.exists():
        return None
    try:
        data = tomllib.loads(path.read_text("utf-8"))
        if data.get("version") != LOCK_VERSION:
            raise ValueError(f"unsupported lock version {data.get('version')!r}")
        data.pop("version"), data.pop("recipe", None)
        data.setdefault("requested_revision", None)
        data.setdefault("revision", None)
        lock = Lock(**data)
    except (tomllib.TOMLDecodeError, TypeError, ValueError) as exc:
        raise LockError(
            f"{path}: not a valid lock file: {exc}", hint=f"regenerate it: trtbuild lock {loaded.path}"
        ) from None
    if not DIGEST_RE.match(lock.image_digest):
        raise LockError(
            f"{path}: image_digest: not sha256:<64 hex>", hint=f"regenerate it: trtbuild lock {loaded.path}"
        )
    return lock


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
    import docker
    from docker.errors import APIError, DockerException

    try:
        client = docker.from_env()
        digest = client.images.get_registry_data(image).id
    except APIError as exc:
        raise LockError(
            f"cannot resolve {image} to a digest: {exc.explanation or exc}",
            hint="check the image name and that `docker login nvcr.io` was done on this host",
        ) from None
    except DockerException as exc:
        raise LockError(
            f"cannot reach the Docker Engine to resolve {image}: {exc}",
            hint="start dockerd (or set DOCKER_HOST) and run trtbuild lock again",
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
