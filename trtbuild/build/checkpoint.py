"""The checkpoint step (quantize with trtbuild's ModelOpt driver, or the toolchain's convert_checkpoint.py):
reused from the registry when published under its key, else made from the fetched model and published."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from trtbuild.build.context import BuildContext
from trtbuild.build.fetch import fetch_model
from trtbuild.build.publish import publish_checkpoint
from trtbuild.fsutil import clean_path_on_failure, fresh_dir

TOKENIZER_FILES = (
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "tokenizer.model",
    "generation_config.json",
    "vocab.json",
    "merges.txt",
)


def make_checkpoint(ctx: BuildContext, fingerprint: Any) -> Path:
    """The checkpoint directory of the plan, pulled or built (and then published)."""
    plan = ctx.plan
    step, dest = plan.checkpoint_step, plan.dirs.checkpoint
    with ctx.shared_artifact(plan.checkpoint_key, "checkpoint") as found:
        if found is None:
            model_dir = fetch_model(ctx)
            with clean_path_on_failure(fresh_dir(dest)):
                ctx.run(step)
                copy_tokenizer(model_dir, dest)
            publish_checkpoint(ctx, dest, fingerprint)
            return dest
    ctx.event(f"checkpoint {plan.checkpoint_key[:19]} found in the registry: skipping fetch and {step.kind}")
    ctx.registry.pull(found.hash, dest)  # a no-op where this host made it (marked at publish)
    return dest


def copy_tokenizer(src: Path, dest: Path) -> None:
    """The model's tokenizer files (those present) into ``dest``."""
    files = [src / name for name in TOKENIZER_FILES if (src / name).is_file()]
    if not files:
        return
    dest.mkdir(parents=True, exist_ok=True)
    for path in files:
        if path.parent != dest:
            shutil.copyfile(path, dest / path.name)
