"""Facts about a model read from its Hugging Face ``config.json`` (when one is at hand).

Used to validate a recipe before any GPU time is spent: heads vs TP, AWQ block divisibility,
max_seq_len vs position embeddings. Stdlib only.
"""

from __future__ import annotations

import json
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

        rope = cfg.get("rope_scaling") if isinstance(cfg.get("rope_scaling"), dict) else {}
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


def find_model_config(scheme: str, location: str, revision: str | None) -> Path | None:
    """The checkpoint's config.json when available without network: a local dir or the HF cache."""
    if scheme == "file":
        candidate = Path(location) / "config.json"
        try:
            return candidate if candidate.is_file() else None
        except OSError:  # a name too long for the file system ...: not available here
            return None
    if scheme == "hf" and revision:
        try:
            from huggingface_hub import try_to_load_from_cache
        except ImportError:  # pragma: no cover - huggingface_hub is a dependency
            return None
        found = try_to_load_from_cache(location, "config.json", revision=revision)
        return Path(found) if isinstance(found, str) else None
    return None
