"""Double of examples/models/core/llama/convert_checkpoint.py: HF Llama → TensorRT-LLM checkpoint.

Writes ``config.json`` (PretrainedConfig-style) and ``rank{N}.safetensors`` for every rank of
tp × pp × cp, with the HF weights really sharded (qkv fused and split by tensor-parallel rank, MLP and
attention output split, layers split by pipeline rank) and cast to the target dtype.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

from trtllm_double import log, st, version
from trtllm_double.cli import parser_for

QUANT_FLAGS = ("use_weight_only", "smoothquant", "use_qserve", "int8_kv_cache", "fp8_kv_cache", "use_fp8",
               "use_nvfp4", "use_fp8_rowwise", "quant_ckpt_path")


def infer_dtype(requested: str, hf: dict[str, Any]) -> str:
    if requested != "auto":
        return requested
    src = hf.get("torch_dtype") or hf.get("dtype")
    if src in ("float16", "bfloat16"):
        return src
    return "float16"  # auto: float32 and unknown sources become float16


def rope(hf: dict[str, Any]) -> tuple[float, dict[str, Any] | None]:
    """(rotary_base, rotary_scaling) from either transformers layout (rope_scaling / rope_parameters)."""
    params = hf.get("rope_parameters") or {}
    base = float(hf.get("rope_theta") or params.get("rope_theta") or 10000.0)
    scaling = hf.get("rope_scaling")
    if scaling is None and params.get("rope_type") not in (None, "default"):
        scaling = {k: v for k, v in params.items() if k != "rope_theta"}
    if scaling is not None:
        scaling = dict(scaling)
        if "rope_type" in scaling and "type" not in scaling:
            scaling["type"] = scaling.pop("rope_type")
    return base, scaling


def load_hf_weights(model_dir: Path) -> dict[str, st.Tensor]:
    files = sorted(model_dir.glob("*.safetensors"))
    if not files:
        raise SystemExit(f"error: no *.safetensors files in {model_dir} (the double converts safetensors only)")
    out: dict[str, st.Tensor] = {}
    for f in files:
        out.update(st.read(f))
    return out


def pretrained_config(hf: dict[str, Any], args: Any, dtype: str) -> dict[str, Any]:
    heads = hf["num_attention_heads"]
    base, scaling = rope(hf)
    world = args.tp_size * args.pp_size * args.cp_size
    moe_tp = args.moe_tp_size if args.moe_tp_size != -1 else args.tp_size
    moe_ep = args.moe_ep_size if args.moe_ep_size != -1 else 1
    return {
        "architecture": "LlamaForCausalLM",
        "dtype": dtype,
        "vocab_size": hf["vocab_size"],
        "hidden_size": hf["hidden_size"],
        "num_hidden_layers": hf["num_hidden_layers"],
        "num_attention_heads": heads,
        "num_key_value_heads": hf.get("num_key_value_heads") or heads,
        "head_size": hf.get("head_dim") or hf["hidden_size"] // heads,
        "hidden_act": hf.get("hidden_act", args.hidden_act),
        "intermediate_size": hf["intermediate_size"],
        "norm_epsilon": hf.get("rms_norm_eps", args.rms_norm_eps),
        "position_embedding_type": "rope_gpt_neox",
        "max_position_embeddings": hf.get("max_position_embeddings", args.n_positions),
        "rotary_base": base,
        "rotary_scaling": scaling,
        "logits_dtype": "float32",
        "use_parallel_embedding": args.use_parallel_embedding,
        "embedding_sharding_dim": args.embedding_sharding_dim,
        "tie_word_embeddings": bool(hf.get("tie_word_embeddings", False)),
        "mlp_bias": bool(hf.get("mlp_bias", False)),
        "attn_bias": bool(hf.get("attention_bias", False)),
        "mapping": {"world_size": world, "gpus_per_node": 8, "cp_size": args.cp_size, "tp_size": args.tp_size,
                    "pp_size": args.pp_size, "moe_tp_size": moe_tp, "moe_ep_size": moe_ep},
        "quantization": {"quant_algo": None, "kv_cache_quant_algo": None, "group_size": args.group_size,
                         "smoothquant_val": 0.5, "clamp_val": None, "use_meta_recipe": False,
                         "has_zero_point": False, "pre_quant_scale": False, "exclude_modules": None},
    }


def rank_weights(w: dict[str, st.Tensor], cfg: dict[str, Any], tp_rank: int, pp_rank: int,
                 dtype: str) -> dict[str, st.Tensor]:
    m = cfg["mapping"]
    tp, pp = m["tp_size"], m["pp_size"]
    layers = cfg["num_hidden_layers"]
    per = layers // pp
    extra = layers % pp
    start = pp_rank * per + min(pp_rank, extra)
    stop = start + per + (1 if pp_rank < extra else 0)
    target = st.TLLM_TO_ST[dtype]
    kv_heads = cfg["num_key_value_heads"]
    head = cfg["head_size"]

    def get(name: str) -> st.Tensor:
        if name not in w:
            raise SystemExit(f"error: tensor {name!r} not found in the HF checkpoint")
        return w[name]

    def kv_split(t: st.Tensor) -> st.Tensor:
        if kv_heads >= tp:
            return st.split(t, tp, tp_rank, 0)
        # fewer KV heads than ranks: each rank holds a replica of its head
        one = st.split(t, kv_heads, tp_rank * kv_heads // tp, 0)
        return st.Tensor(one.dtype, [head, *one.shape[1:]], one.data)

    out: dict[str, st.Tensor] = {}
    for i in range(start, stop):
        hf, tl = f"model.layers.{i}.", f"transformer.layers.{i - start}."
        q = st.split(get(hf + "self_attn.q_proj.weight"), tp, tp_rank, 0)
        k = kv_split(get(hf + "self_attn.k_proj.weight"))
        v = kv_split(get(hf + "self_attn.v_proj.weight"))
        out[tl + "attention.qkv.weight"] = st.concat0([q, k, v])
        out[tl + "attention.dense.weight"] = st.split(get(hf + "self_attn.o_proj.weight"), tp, tp_rank, 1)
        out[tl + "mlp.gate.weight"] = st.split(get(hf + "mlp.up_proj.weight"), tp, tp_rank, 0)
        out[tl + "mlp.fc.weight"] = st.split(get(hf + "mlp.gate_proj.weight"), tp, tp_rank, 0)
        out[tl + "mlp.proj.weight"] = st.split(get(hf + "mlp.down_proj.weight"), tp, tp_rank, 1)
        out[tl + "input_layernorm.weight"] = get(hf + "input_layernorm.weight")
        out[tl + "post_layernorm.weight"] = get(hf + "post_attention_layernorm.weight")
    embed = get("model.embed_tokens.weight")
    if pp_rank == 0:
        if cfg["use_parallel_embedding"]:
            embed_r = st.split(embed, tp, tp_rank, cfg["embedding_sharding_dim"])
        else:
            embed_r = embed
        out["transformer.vocab_embedding.weight"] = embed_r
    if pp_rank == pp - 1:
        out["transformer.ln_f.weight"] = get("model.norm.weight")
        lm = w.get("lm_head.weight", embed)
        out["lm_head.weight"] = st.split(lm, tp, tp_rank, 0)
    return {k: st.convert(t, target) for k, t in out.items()}


def main(argv: list[str] | None = None) -> int:
    ver = version()
    args = parser_for("convert_checkpoint", "convert_checkpoint.py").parse_args(argv)
    print(f"[TensorRT-LLM] TensorRT-LLM version: {ver} (TOOLCHAIN DOUBLE)", flush=True)
    used = [f for f in QUANT_FLAGS if getattr(args, f) not in (None, False)]
    if used:
        print(f"error: the toolchain double does not simulate quantization in convert_checkpoint.py "
              f"({', '.join('--' + f for f in used)}); quantize with the ModelOpt step", file=sys.stderr)
        return 2
    if args.meta_ckpt_dir is not None or args.model_dir is None:
        print("error: the toolchain double converts a Hugging Face checkpoint only: pass --model_dir",
              file=sys.stderr)
        return 2
    model_dir = Path(args.model_dir)
    cfg_path = model_dir / "config.json"
    if not cfg_path.is_file():
        print(f"OSError: {model_dir} does not appear to have a file named config.json", file=sys.stderr)
        return 1
    hf = json.loads(cfg_path.read_text())
    dtype = infer_dtype(args.dtype, hf)
    cfg = pretrained_config(hf, args, dtype)
    if cfg["num_attention_heads"] % args.tp_size:
        print(f"error: num_attention_heads {cfg['num_attention_heads']} is not divisible by tp_size "
              f"{args.tp_size}", file=sys.stderr)
        return 1
    if cfg["num_hidden_layers"] < args.pp_size:
        print(f"error: pp_size {args.pp_size} exceeds num_hidden_layers {cfg['num_hidden_layers']}",
              file=sys.stderr)
        return 1
    if args.cp_size != 1:
        print("error: the toolchain double does not simulate context parallelism (cp_size > 1)",
              file=sys.stderr)
        return 2
    out = Path(args.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.monotonic()
    (out / "config.json").write_text(json.dumps(cfg, indent=4) + "\n")
    if args.save_config_only:
        log("I", f"config saved to {out / 'config.json'}")
        return 0
    weights = load_hf_weights(model_dir)
    for rank in range(cfg["mapping"]["world_size"]):
        tp_rank, pp_rank = rank % args.tp_size, rank // args.tp_size
        size = st.write(out / f"rank{rank}.safetensors",
                        rank_weights(weights, cfg, tp_rank, pp_rank, dtype), {"format": "pt"})
        log("I", f"rank {rank}: wrote {size} bytes to {out / f'rank{rank}.safetensors'}")
    print(f"Total time of converting checkpoints: {time.strftime('%H:%M:%S', time.gmtime(time.monotonic() - t0))}",
          flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
