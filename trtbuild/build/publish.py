"""The publish step: a step's output directory becomes a registry artifact (blobs, manifest, catalog row)
described by the typed contract."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from registry.api import Artifact
from trtbuild.build.context import BuildContext
from trtbuild.build.provenance import checkpoint_facts, checkpoint_identity, engine_facts, engine_identity


def publish_checkpoint(ctx: BuildContext, checkpoint_dir: Path, fingerprint: Any) -> Artifact:
    """Push the checkpoint under ``<recipe>-checkpoint`` and mark its directory as holding it (a later pull
    into it is then a no-op)."""
    artifact = ctx.registry.push(
        checkpoint_dir,
        name=f"{ctx.recipe.name}-checkpoint",
        metadata=checkpoint_identity(ctx.plan),
        provenance=checkpoint_facts(fingerprint),
    )
    ctx.registry.record_local_copy(checkpoint_dir, artifact)
    return artifact


def publish_engine(
    ctx: BuildContext, engine_dir: Path, verification: dict[str, Any], fingerprint: Any
) -> Artifact:
    """Push the verified engine under the recipe's name (and ``--tag``) with its build facts."""
    artifact = ctx.registry.push(
        engine_dir,
        name=ctx.recipe.name,
        metadata=engine_identity(ctx.plan),
        provenance=engine_facts(ctx, fingerprint, verification),
        tag=ctx.options.tag,
    )
    ctx.steps_run.append("publish")
    return artifact
