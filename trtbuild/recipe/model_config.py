"""Facts about a model read from its Hugging Face ``config.json`` (when one is at hand).

Used to validate a recipe before any GPU time is spent: heads vs TP, AWQ block divisibility,
max_seq_len vs position embeddings. Stdlib only at import time.
"""

from __future__ import annotations

import json
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

# rope types whose factor builder._init_max_seq_len ignores when deducing max_seq_len
_FACTOR_IGNORED = {"su", "longrope", "llama3"}


@dataclass(frozen=True)
class ModelFacts:
    architecture: str | None
    hidden_size: int | None
    intermediate_size: int | None
    num_attention_heads: int | None
    num_key_value_heads: int | None
    num_hidden_layers: int | None
    vocab_size: int | None
    max_position_embeddings: int | None
    rope_type: str | None
    rope_factor: float | None
    source: str
    raw: dict = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_dict(cls, cfg: dict, source: str) -> ModelFacts:
        def num(key: str) -> int | None:
            value = cfg.get(key)
            return value if isinstance(value, int) and not isinstance(value, bool) else None

        rope_scaling = cfg.get("rope_scaling")
        rope = rope_scaling if isinstance(rope_scaling, dict) else {}
        archs = cfg.get("architectures")
        heads = num("num_attention_heads")
        return cls(
            architecture=archs[0] if isinstance(archs, list) and archs else None,
            hidden_size=num("hidden_size"),
            intermediate_size=num("intermediate_size"),
            num_attention_heads=heads,
            num_key_value_heads=num("num_key_value_heads") or heads,
            num_hidden_layers=num("num_hidden_layers"),
            vocab_size=num("vocab_size"),
            max_position_embeddings=num("max_position_embeddings"),
            rope_type=rope.get("rope_type") or rope.get("type"),
            rope_factor=float(rope["factor"]) if isinstance(rope.get("factor"), (int, float)) else None,
            source=source,
            raw=cfg,
        )

    @classmethod
    def from_file(cls, path: Path) -> ModelFacts:
        return cls.from_dict(json.loads(path.read_text("utf-8")), str(path))

    @property
    def max_seq_len_limit(self) -> int | None:
        """The largest max_seq_len the model supports, as trtllm-build deduces it."""
        if self.max_position_embeddings is None:
            return None
        factor = self.rope_factor or 1.0
        if self.rope_type in _FACTOR_IGNORED:
            factor = 1.0
        return int(self.max_position_embeddings * max(factor, 1.0))


# The rules that read the model's config.json (checks.py); named when they could not run.
MODEL_CHECKS = (
    "attention heads and layers vs tp/pp, max_seq_len vs the model's positions, quantization shapes, "
    "architecture"
)
SHA_RE = re.compile(r"^[0-9a-f]{40}\Z")  # a git commit (a pinned Hugging Face revision)


@dataclass(frozen=True)
class ConfigLookup:
    """Where the model's config.json is, or why it is not at hand (``missing``)."""

    path: Path | None
    missing: str | None = None


def locked_revision(recipe_path: Path, source: str, requested: str | None) -> str | None:
    """The commit the lock beside the recipe pins for this model source and requested revision (a lock
    for other model inputs, or a lock that cannot be read, pins nothing here)."""
    try:
        lock = tomllib.loads(recipe_path.with_suffix(".lock").read_text("utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError, RecursionError):
        return None  # plan and build refuse such a lock themselves (trtbuild.recipe.lock.read_lock)
    if lock.get("model_source") != source or lock.get("requested_revision") != requested:
        return None
    revision = lock.get("revision")
    return revision if isinstance(revision, str) and SHA_RE.match(revision) else None


def pinned_revision(recipe_path: Path, source: str, revision: str | None) -> str | None:
    """The model's commit: the recipe's revision when it is a commit sha, else the lock's."""
    if revision and SHA_RE.match(revision):
        return revision
    return locked_revision(recipe_path, source, revision)


def locate_model_config(scheme: str, location: str, revision: str | None) -> ConfigLookup:
    """The checkpoint's config.json when available without network: a local dir or the HF cache."""
    if scheme == "file":
        candidate = Path(location) / "config.json"
        try:
            if candidate.is_file():
                return ConfigLookup(candidate)
        except OSError as exc:  # a name too long for the file system ...: not available here
            return ConfigLookup(None, f"{candidate}: {exc.strerror}")
        return ConfigLookup(None, f"{candidate} does not exist")
    if scheme == "hf":
        from huggingface_hub import try_to_load_from_cache

        found = try_to_load_from_cache(location, "config.json", revision=revision or "main")
        if isinstance(found, str):
            return ConfigLookup(Path(found))
        pinned = revision and SHA_RE.match(revision)
        how = (
            "run validate --fetch-config to download it (config files only)"
            if pinned
            else "pin model.revision to a commit (or run trtbuild lock), then validate --fetch-config"
        )
        return ConfigLookup(
            None,
            f"config.json of hf://{location}@{revision or 'main'} is not in the Hugging Face cache: {how}",
        )
    return ConfigLookup(None, f"validate does not read {scheme}:// sources (the build reads config.json)")


def fetch_model_config(recipe_path: Path) -> Path | None:
    """Download the config files of the recipe's Hugging Face model at its pinned commit into the cache
    (nothing for other sources). Raises InputError when the revision is not pinned, HubUnavailable when
    the Hub cannot be reached."""
    from trtbuild import hub
    from trtbuild.errors import InputError

    try:
        model = tomllib.loads(recipe_path.read_text("utf-8")).get("model") or {}
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError, RecursionError):
        return None  # validation reports the file itself
    source, revision = model.get("source"), model.get("revision")
    if not isinstance(source, str) or not source.startswith("hf://"):
        return None
    pinned = pinned_revision(recipe_path, source, revision if isinstance(revision, str) else None)
    if pinned is None:
        raise InputError(
            f"{recipe_path}: model.revision {revision or '(default branch)'} is not a commit and no lock "
            "pins it: --fetch-config downloads only a pinned revision",
            hint=f"set model.revision to a commit sha, or run trtbuild lock {recipe_path}",
        )
    return hub.download_config(source.removeprefix("hf://"), pinned)
