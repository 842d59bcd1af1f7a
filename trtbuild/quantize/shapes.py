"""Shape checks for a quantize step, from the model's ``config.json`` alone (stdlib only, no torch).

``check_shapes(config, fmt, tp, pp, awq_block_size)`` returns every problem found before any weight is
loaded, each naming the recipe field to change and a value that works. The recipe validator calls it
too, so it must stay importable without torch, transformers or ModelOpt.

Rules (what ModelOpt 0.47's TensorRT-LLM export and TensorRT-LLM's sharding need):
- attention heads and KV heads divide by tp: ModelOpt splits q, k and v by chunks of the tensor, so a
  KV head count that tp does not divide would be cut mid-head (and the export does not replicate KV
  heads);
- hidden and intermediate size divide by tp (row/column-parallel linears);
- INT4 AWQ: every quantized linear's input size / tp is a multiple of the AWQ block size (q/k/v and
  gate/up read ``hidden_size``, o_proj reads ``num_heads * head_dim``, down_proj reads
  ``intermediate_size``), else the export fails with "not divisible for block size";
- layers divide by pp (ModelOpt splits the decoder layers evenly over pipeline stages);
- vocab not divisible by tp is only a warning: the export pads the embedding and lm_head.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

FORMATS = ("fp8", "int8_sq", "int4_awq", "full_prec")
AWQ_BLOCK_SIZES = (128, 64)  # group sizes TensorRT-LLM's W4A16 AWQ kernels take; 128 is quantize.py's default

# recipe field -> driver flag (quantize.py's name), for messages that may be read by either user
RECIPE_TO_FLAG = {
    "parallelism.tp": "--tp_size",
    "parallelism.pp": "--pp_size",
    "quantization.awq_block_size": "--awq_block_size",
    "quantization.format": "--qformat",
    "model": "--model_dir",
}


@dataclass(frozen=True)
class ShapeProblem:
    """One shape problem: the recipe field to change, what is wrong, and a fix that works."""

    field: str  # recipe field, e.g. "quantization.awq_block_size" or "parallelism.tp"
    message: str
    fix: str
    value: object = None
    severity: str = "error"  # "error" stops the build; "warning" is reported only

    @property
    def flag(self) -> str:
        """The quantize.py flag that carries ``field``."""
        return RECIPE_TO_FLAG.get(self.field, self.field)

    def render(self) -> str:
        shown = "" if self.value is None else f" (got {self.value!r})"
        return f"{self.field} [{self.flag}]: {self.message}{shown}\n  fix: {self.fix}"

    def as_dict(self) -> dict[str, object]:
        return {**asdict(self), "flag": self.flag}


def model_dims(config: dict) -> dict[str, int]:
    """The dimensions that sharding and block quantization depend on, read from an HF config dict.

    Raises ``KeyError``/``ValueError`` when a required field is missing or not a positive integer.
    """
    text_config = config.get("text_config")
    text = text_config if isinstance(text_config, dict) else config
    dims: dict[str, int] = {}
    for key in ("hidden_size", "intermediate_size", "num_attention_heads", "num_hidden_layers", "vocab_size"):
        if key not in text:
            raise KeyError(key)
        dims[key] = _positive_int(key, text[key])
    dims["num_key_value_heads"] = _positive_int(
        "num_key_value_heads", text.get("num_key_value_heads") or dims["num_attention_heads"]
    )
    head_dim = text.get("head_dim") or dims["hidden_size"] // dims["num_attention_heads"]
    dims["head_dim"] = _positive_int("head_dim", head_dim)
    dims["attn_out_features"] = dims["num_attention_heads"] * dims["head_dim"]
    return dims


def _positive_int(key: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ValueError(f"{key} must be a positive integer, got {value!r}")
    return value


def _divisors(n: int, limit: int = 64) -> list[int]:
    return [d for d in range(1, min(n, limit) + 1) if n % d == 0]


def check_shapes(
    config: dict, fmt: str, tp: int = 1, pp: int = 1, awq_block_size: int = 128
) -> list[ShapeProblem]:
    """Every shape problem of quantizing ``config`` to ``fmt`` for tp x pp; empty when all is well."""
    problems: list[ShapeProblem] = []
    if fmt not in FORMATS:
        return [
            ShapeProblem(
                "quantization.format",
                f"unknown format; one of {', '.join(FORMATS)}",
                "use fp8, int8_sq or int4_awq",
                fmt,
            )
        ]
    for field, value in (("parallelism.tp", tp), ("parallelism.pp", pp)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            problems.append(ShapeProblem(field, "must be a positive integer", "use 1, 2, 4 or 8", value))
    if problems:
        return problems
    try:
        dims = model_dims(config)
    except KeyError as exc:
        return [
            ShapeProblem(
                "model",
                f"config.json lacks {exc.args[0]!r}",
                "point the recipe at a Llama-architecture Hugging Face checkpoint",
            )
        ]
    except ValueError as exc:
        return [
            ShapeProblem(
                "model", f"config.json: {exc}", "point the recipe at a valid Hugging Face checkpoint"
            )
        ]

    def tp_fix(*sizes: int) -> str:
        ok = [d for d in _divisors(min(sizes)) if all(s % d == 0 for s in sizes)]
        return f"set parallelism.tp to one of {ok}"

    heads, kv, hidden, inter = (
        dims["num_attention_heads"],
        dims["num_key_value_heads"],
        dims["hidden_size"],
        dims["intermediate_size"],
    )
    if heads % tp:
        problems.append(
            ShapeProblem(
                "parallelism.tp", f"num_attention_heads={heads} is not divisible by tp", tp_fix(heads, kv), tp
            )
        )
    if kv % tp:
        problems.append(
            ShapeProblem(
                "parallelism.tp",
                f"num_key_value_heads={kv} is not divisible by tp "
                "(the checkpoint export would split a KV head between ranks)",
                tp_fix(heads, kv),
                tp,
            )
        )
    if hidden % tp:
        problems.append(
            ShapeProblem("parallelism.tp", f"hidden_size={hidden} is not divisible by tp", tp_fix(hidden), tp)
        )
    if inter % tp:
        problems.append(
            ShapeProblem(
                "parallelism.tp", f"intermediate_size={inter} is not divisible by tp", tp_fix(inter), tp
            )
        )
    layers = dims["num_hidden_layers"]
    if layers % pp:
        problems.append(
            ShapeProblem(
                "parallelism.pp",
                f"num_hidden_layers={layers} is not divisible by pp",
                f"set parallelism.pp to one of {_divisors(layers)}",
                pp,
            )
        )
    vocab = dims["vocab_size"]
    if vocab % tp:
        problems.append(
            ShapeProblem(
                "parallelism.tp",
                f"vocab_size={vocab} is not divisible by tp; the export pads the embedding and lm_head",
                "none needed",
                tp,
                severity="warning",
            )
        )

    if fmt == "int4_awq":
        if isinstance(awq_block_size, bool) or not isinstance(awq_block_size, int) or awq_block_size <= 0:
            problems.append(
                ShapeProblem(
                    "quantization.awq_block_size",
                    "must be a positive integer",
                    "use 128 or 64",
                    awq_block_size,
                )
            )
            return problems
        inputs = {
            "hidden_size (q/k/v, gate/up input)": hidden,
            "num_attention_heads*head_dim (o_proj input)": dims["attn_out_features"],
            "intermediate_size (down_proj input)": inter,
        }
        bad = {name: size for name, size in inputs.items() if size % tp or (size // tp) % awq_block_size}
        if bad:
            sizes = list(inputs.values())
            ok_blocks = [b for b in AWQ_BLOCK_SIZES if all(s % tp == 0 and (s // tp) % b == 0 for s in sizes)]
            ok_tp = [
                d
                for d in _divisors(min(sizes))
                if all(s % d == 0 and (s // d) % awq_block_size == 0 for s in sizes)
                and heads % d == 0
                and kv % d == 0
            ]
            detail = ", ".join(f"{name}={size} / tp={tp} = {size / tp:g}" for name, size in bad.items())
            fixes = []
            if ok_blocks:
                fixes.append(f"set quantization.awq_block_size to {ok_blocks[0]}")
            if ok_tp:
                fixes.append(f"set parallelism.tp to one of {ok_tp}")
            if not fixes:
                fixes.append("use format fp8 or int8_sq for this model")
            problems.append(
                ShapeProblem(
                    "quantization.awq_block_size" if ok_blocks or not ok_tp else "parallelism.tp",
                    "INT4 AWQ needs every quantized layer's input size / tp to be a multiple of the block "
                    f"size {awq_block_size}: {detail}",
                    " or ".join(fixes),
                    awq_block_size if ok_blocks else tp,
                )
            )
    return problems


def errors_only(problems: list[ShapeProblem]) -> list[ShapeProblem]:
    return [p for p in problems if p.severity == "error"]
