"""The fetch step: a model checkpoint pinned by revision (hf://, s3://) or by content (file://)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

from registry.api import HashCache, dest_lock, digest_of, hash_file
from trtbuild.errors import InputError, TrtbuildError
from trtbuild.fsutil import clean_path_on_failure, fresh_dir

if TYPE_CHECKING:
    from trtbuild.build.context import BuildContext

_SKIP_DIRS = {".git", ".cache", "__pycache__"}


def local_tree_digest(root: Path) -> str:
    """Content digest of every file under ``root`` (relative path, size, sha256); links are followed.

    File digests come from the registry's stat-keyed hash cache, so re-planning a 140 GB checkpoint does
    not read it again unless it changed.
    """
    from trtbuild.settings import hash_cache_path

    root = Path(root)
    if not root.is_dir():
        raise InputError(
            f"model.source: {root} is not a directory", hint="point file:// at a checkpoint directory"
        )
    cache = HashCache(hash_cache_path())
    entries = []
    try:
        for dirpath, dirnames, filenames in os.walk(root):
            dirnames[:] = sorted(d for d in dirnames if d not in _SKIP_DIRS)
            for name in sorted(filenames):
                path = Path(dirpath) / name
                rel = path.relative_to(root).as_posix()
                path = path.resolve()  # HF caches use links into blobs/: hash what they point to
                st = path.stat()
                digest = cache.get(path, st)
                if digest is None:
                    digest, _ = hash_file(path)
                    cache.put(path, st, digest)
                entries.append([rel, st.st_size, digest])
    finally:
        cache.close()
    if not entries:
        raise InputError(f"model.source: {root} is empty", hint="point file:// at a checkpoint directory")
    return digest_of(entries)


def fetch_model(ctx: BuildContext) -> Path:
    """The model directory of the plan: a file:// source as is, else downloaded once per fetch key."""
    step, model = ctx.plan.step("fetch"), ctx.recipe.model
    if model.scheme == "file":
        return Path(model.location)
    dest = ctx.plan.dirs.model
    marker = dest / ".trtbuild-fetched"
    # builds of other checkpoints of this model on this host share the folder: one downloads, they wait
    with dest_lock(dest, on_wait=lambda: ctx.event(f"another build is fetching into {dest}; waiting")):
        if marker.exists() and marker.read_text() == step.key:
            return dest
        with clean_path_on_failure(fresh_dir(dest)):
            ctx.event(f"fetching {model.source}@{step.params.get('revision')}")
            if model.scheme == "hf":
                fetch_hf(model.location, step.params["revision"], dest, step.params["allow_patterns"])
            else:
                fetch_s3(model.location, dest)
            marker.write_text(step.key)
    ctx.steps_run.append("fetch")
    return dest


def fetch_hf(repo_id: str, revision: str, dest: Path, allow_patterns: list[str]) -> Path:
    """Download ``repo_id`` at commit ``revision`` into ``dest`` (weights, configs, tokenizer only)."""
    from trtbuild import hub

    return hub.download_snapshot(repo_id, revision, dest, allow_patterns)


def fetch_s3(location: str, dest: Path) -> Path:
    """Copy every object under ``s3://bucket/prefix`` into ``dest``, keeping relative paths."""
    import boto3
    from botocore.exceptions import BotoCoreError, ClientError

    bucket, _, prefix = location.partition("/")
    client = boto3.client("s3")
    try:
        for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
            for obj in page.get("Contents", []):
                rel = obj["Key"][len(prefix) :].lstrip("/")
                if not rel or ".." in Path(rel).parts:
                    continue
                target = dest / rel
                target.parent.mkdir(parents=True, exist_ok=True)
                client.download_file(bucket, obj["Key"], str(target))
    except (BotoCoreError, ClientError) as exc:
        raise TrtbuildError(
            f"downloading s3://{location} failed: {exc}",
            hint="check AWS credentials / AWS_ENDPOINT_URL and the prefix",
        ) from None
    return dest
