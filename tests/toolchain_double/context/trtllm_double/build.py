"""Double of trtllm-build: TensorRT-LLM checkpoint → engine directory.

Reads ``<checkpoint_dir>/config.json`` and ``rank{N}.safetensors`` (as written by convert_checkpoint.py
or by ModelOpt's TensorRT-LLM export), refuses what the real tool refuses where cheap, and writes
``rank{N}.engine`` per rank plus ``config.json`` = {version, pretrained_config, build_config}. Engine
bytes are a deterministic placeholder (a header naming the double, then the rank's weight bytes), so
their size follows the rank's weights. Timing caches are written and read.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import sys
import time
from pathlib import Path
from typing import Any

from trtllm_double import log, st, version
from trtllm_double.cli import main_rule_errors, parser_for, plugin_flags
from trtllm_double.nvidia_smi import gpus

ENGINE_MAGIC = b"TRTBUILD-TOOLCHAIN-DOUBLE-ENGINE\n"
CACHE_MAGIC = b"TRTBUILD-TOOLCHAIN-DOUBLE-TIMING-CACHE\n"
ROPE_FACTOR_IGNORED = ("su", "longrope", "llama3")


class BuildError(Exception):
    pass


def init_max_seq_len(pretrained: dict[str, Any], max_seq_len: int | None) -> int:
    """builder._init_max_seq_len: max_position_embeddings (fallback 2048) × rotary factor, rounded up."""
    if max_seq_len is not None:
        return max_seq_len
    deduced = pretrained.get("max_position_embeddings") or 2048
    scaling = pretrained.get("rotary_scaling")
    factor = 1.0
    if scaling:
        kind = scaling.get("type", scaling.get("rope_type"))
        factor = 1.0 if kind in ROPE_FACTOR_IGNORED else float(scaling.get("factor", 1.0))
    if factor != 1:
        deduced = math.ceil(deduced * factor)
        log("W", f"max_seq_len is scaled to {deduced} by rotary scaling {factor}")
    log("I", f"max_seq_len is not specified, using deduced value {deduced}")
    return int(deduced)


def check_max_num_tokens(max_num_tokens: int | None, opt_num_tokens: int | None, max_batch_size: int,
                         max_input_len: int, max_seq_len: int, max_beam_width: int, remove_input_padding: bool,
                         enable_context_fmha: bool, tokens_per_block: int,
                         multiple_profiles: bool) -> tuple[int | None, int | None]:
    """_common.check_max_num_tokens, as trtllm-build runs it before saving build_config."""
    if not remove_input_padding:
        if max_num_tokens is not None or opt_num_tokens is not None:
            max_num_tokens = max_batch_size * max_seq_len
            log("W", "remove_input_padding is not enabled, the specified max_num_tokens/opt_num_tokens "
                     "will be ignored.")
        return max_num_tokens, opt_num_tokens
    if max_num_tokens is None:
        max_num_tokens = max_seq_len * max_batch_size
    if opt_num_tokens is None and not multiple_profiles:
        opt_num_tokens = min(max_batch_size * max_beam_width, max_num_tokens)
    if max_num_tokens > max_seq_len * max_batch_size:
        log("W", f"max_num_tokens ({max_num_tokens}) shouldn't be greater than max_seq_len * max_batch_size "
                 f"({max_seq_len * max_batch_size}), specifying to max_seq_len * max_batch_size")
        max_num_tokens = max_seq_len * max_batch_size
    if max_num_tokens < max_input_len and not enable_context_fmha:
        max_num_tokens = max_input_len
    elif max_num_tokens < tokens_per_block and enable_context_fmha:
        max_num_tokens = tokens_per_block
    if opt_num_tokens is not None and opt_num_tokens > max_num_tokens:
        opt_num_tokens = max_num_tokens
    return max_num_tokens, opt_num_tokens


def apply_builder_overrides(plugin: dict[str, Any], pretrained: dict[str, Any], sm: int) -> None:
    """The switches builder.build() overrides for this checkpoint before the engine config is saved."""
    arch = pretrained.get("architecture")
    quant = pretrained.get("quantization") or {}
    algo, kv = quant.get("quant_algo"), quant.get("kv_cache_quant_algo")
    tp = (pretrained.get("mapping") or {}).get("tp_size", 1)
    if plugin["reduce_fusion"] and (tp == 1 or arch not in ("LlamaForCausalLM", "Gemma2ForCausalLM",
                                                             "MedusaForCausalLM")):
        log("W", "Overriding reduce_fusion to False")
        plugin["reduce_fusion"] = False
    if plugin["user_buffer"] and not plugin["reduce_fusion"]:
        log("W", "Overriding user_buffer to False")
        plugin["user_buffer"] = False
    if plugin["norm_quant_fusion"] and (plugin["reduce_fusion"] or arch != "LlamaForCausalLM"
                                        or algo != "NVFP4"):
        log("W", "Overriding norm_quant_fusion to False")
        plugin["norm_quant_fusion"] = False
    if not plugin["context_fmha"]:
        plugin["use_fp8_context_fmha"] = False
        plugin["use_paged_context_fmha"] = False
    elif algo not in ("FP8", "W4A8_AWQ", "NVFP4") or sm < 89:
        if plugin["use_fp8_context_fmha"]:
            log("W", "FP8 Context FMHA is disabled because it must be used together with the fp8 "
                     "quantization workflow.")
            plugin["use_fp8_context_fmha"] = False
        if plugin["use_paged_context_fmha"] and kv == "FP8":
            log("W", "FP8 Paged Context FMHA is disabled because FP8 context FMHA is disabled.")
            plugin["use_paged_context_fmha"] = False
    elif plugin["use_paged_context_fmha"]:
        if kv != "FP8" and plugin["use_fp8_context_fmha"]:
            plugin["use_fp8_context_fmha"] = False
        elif kv == "FP8" and not plugin["use_fp8_context_fmha"]:
            log("W", "FP8 Context FMHA is enabled to support FP8 Paged Context FMHA.")
            plugin["use_fp8_context_fmha"] = True
    if plugin["use_paged_context_fmha"] and kv == "INT8":
        log("W", "Paged Context FMHA is disabled because it doesn't work with int8 kv cache currently.")
        plugin["use_paged_context_fmha"] = False


def plugin_config(args: Any, dtype: str) -> dict[str, Any]:
    cfg: dict[str, Any] = {"dtype": dtype}
    for entry in plugin_flags():
        name = entry["flag"][2:]
        value = getattr(args, name)
        if entry["type"] == "enable/disable":
            cfg[name] = value == "enable"
        elif value == "disable":
            cfg[name] = None
        else:
            cfg[name] = value
    cfg["paged_kv_cache"] = args.kv_cache_type == "PAGED"
    if args.fast_build:
        cfg["manage_weights"] = True
    return cfg


def resolve_kv_cache_type(args: Any) -> str:
    kv = getattr(args, "kv_cache_type", None)
    paged = getattr(args, "paged_kv_cache", None)
    if paged is not None and kv is None:
        log("W", "--paged_kv_cache is deprecated, use --kv_cache_type instead")
        return "PAGED" if paged == "enable" else "CONTINUOUS"
    return kv or "PAGED"


def build_config(args: Any, pretrained: dict[str, Any], sm: int) -> dict[str, Any]:
    args.kv_cache_type = resolve_kv_cache_type(args)
    max_seq_len = init_max_seq_len(pretrained, args.max_seq_len)
    max_input_len = min(args.max_input_len, max_seq_len)
    if args.max_input_len > max_seq_len:
        log("W", f"max_input_len {args.max_input_len} is larger than max_seq_len {max_seq_len}, "
                 f"clipping it to {max_seq_len}")
    plugin = plugin_config(args, pretrained.get("dtype", "float16"))
    max_num_tokens, opt_num_tokens = check_max_num_tokens(
        args.max_num_tokens, args.opt_num_tokens, args.max_batch_size, max_input_len, max_seq_len,
        args.max_beam_width, plugin["remove_input_padding"], plugin["context_fmha"], plugin["tokens_per_block"],
        plugin["multiple_profiles"])
    mode = (args.speculative_decoding_mode or "none").upper()
    if mode != "NONE":
        if mode == "EAGLE" and "num_eagle_layers" not in pretrained:
            raise BuildError("AssertionError: an EAGLE build needs num_eagle_layers in the checkpoint config")
        max_seq_len += args.max_draft_len + int(pretrained.get("num_eagle_layers", 0) if mode == "EAGLE" else 0)
        max_num_tokens = max(max_num_tokens or 0, args.max_batch_size * (args.max_draft_len + 1))
    apply_builder_overrides(plugin, pretrained, sm)
    cfg: dict[str, Any] = {
        "max_input_len": max_input_len,
        "max_seq_len": max_seq_len,
        "opt_batch_size": 8,
        "max_batch_size": args.max_batch_size,
        "max_beam_width": args.max_beam_width,
        "max_num_tokens": max_num_tokens,
        "opt_num_tokens": opt_num_tokens,
        "max_prompt_embedding_table_size": args.max_prompt_embedding_table_size,
        "kv_cache_type": args.kv_cache_type,
        "gather_context_logits": args.gather_context_logits or args.gather_all_token_logits,
        "gather_generation_logits": args.gather_generation_logits or args.gather_all_token_logits,
        "strongly_typed": True,
        "force_num_profiles": None,
        "profiling_verbosity": args.profiling_verbosity,
        "enable_debug_output": args.enable_debug_output,
        "max_draft_len": args.max_draft_len,
        "speculative_decoding_mode": mode,
        "use_refit": False,
        "input_timing_cache": args.input_timing_cache,
        "output_timing_cache": args.output_timing_cache,
        "lora_config": {"lora_dir": args.lora_dir or [], "lora_ckpt_source": args.lora_ckpt_source,
                        "max_lora_rank": args.max_lora_rank,
                        "lora_target_modules": args.lora_target_modules or []},
        "weight_sparsity": args.weight_sparsity,
        "weight_streaming": args.weight_streaming,
        "plugin_config": plugin,
        "use_strip_plan": args.strip_plan,
        "max_encoder_input_len": args.max_encoder_input_len,
        "monitor_memory": args.monitor_memory,
        "use_mrope": False,
    }
    if hasattr(args, "auto_parallel"):  # the parsers before PR #8329 (and their BuildConfig) have it
        cfg["auto_parallel_config"] = {"world_size": args.auto_parallel, "gpus_per_node": args.gpus_per_node,
                                       "cluster_key": args.cluster_key}
    return cfg


def check_checkpoint(ckpt: Path, pretrained: dict[str, Any]) -> list[Path]:
    m = pretrained.get("mapping") or {}
    world = int(m.get("world_size", 1))
    tp, pp, cp = int(m.get("tp_size", 1)), int(m.get("pp_size", 1)), int(m.get("cp_size", 1))
    if world != tp * pp * cp:
        raise BuildError(f"world_size {world} of {ckpt / 'config.json'} does not equal "
                         f"tp_size × pp_size × cp_size = {tp} × {pp} × {cp}")
    if "architecture" not in pretrained:
        raise BuildError(f"{ckpt / 'config.json'} has no 'architecture'")
    ranks = [ckpt / f"rank{r}.safetensors" for r in range(world)]
    missing = [p.name for p in ranks if not p.is_file()]
    if missing:
        raise BuildError(f"checkpoint {ckpt} has world_size {world} but lacks {', '.join(missing)}")
    extra = sorted(p.name for p in ckpt.glob("rank*.safetensors") if p not in ranks)
    if extra:
        raise BuildError(f"checkpoint {ckpt} has more rank files than its world_size {world}: {', '.join(extra)}")
    for p in ranks:
        st.read_header(p)  # raises on a corrupt file
    return ranks


def timing_cache_keys(pretrained: dict[str, Any], bcfg: dict[str, Any], arch: str) -> list[str]:
    """One entry per (layer kind, shape) the builder would time; depends on arch, dtype and shapes."""
    dtype = pretrained.get("dtype")
    h, inter = pretrained.get("hidden_size"), pretrained.get("intermediate_size")
    tp = (pretrained.get("mapping") or {}).get("tp_size", 1)
    quant = (pretrained.get("quantization") or {}).get("quant_algo")
    tokens = bcfg["max_num_tokens"]
    return sorted({f"{arch}|{dtype}|{quant}|{kind}|{shape}|{tokens}" for kind, shape in (
        ("qkv", h), ("dense", h), ("fc", inter), ("proj", inter), ("lm_head", pretrained.get("vocab_size")),
    ) if shape is not None} | {f"{arch}|attention|{h}|{tp}|{bcfg['max_seq_len']}"})


def read_timing_cache(path: Path) -> set[str]:
    data = path.read_bytes()
    if not data.startswith(CACHE_MAGIC):
        raise BuildError(f"{path} is not a timing cache written by this toolchain")
    return set(data[len(CACHE_MAGIC):].decode().split("\n")) - {""}


def engine_bytes(ver: str, rank: int, bcfg: dict[str, Any], weights: Path | None, manage: bool,
                 dummy_size: int) -> bytes:
    body = b"" if weights is None else weights.read_bytes()
    meta = {"toolchain_double": True, "version": ver, "rank": rank,
            "build_config_sha256": hashlib.sha256(json.dumps(
                {k: v for k, v in bcfg.items() if k not in ("input_timing_cache", "output_timing_cache")},
                sort_keys=True).encode()).hexdigest(),
            "weights_sha256": hashlib.sha256(body).hexdigest()}
    head = ENGINE_MAGIC + json.dumps(meta, sort_keys=True).encode() + b"\n"
    if manage:
        return head
    if weights is None:  # built from --model_config: random weights, sized like the model
        seed = hashlib.sha256(head).digest()
        blocks = []
        for i in range((dummy_size + 31) // 32):
            blocks.append(hashlib.sha256(seed + i.to_bytes(8, "little")).digest())
        body = b"".join(blocks)[:dummy_size]
    return head + body


def estimate_rank_bytes(pretrained: dict[str, Any]) -> int:
    h = pretrained.get("hidden_size", 0)
    layers = pretrained.get("num_hidden_layers", 0)
    inter = pretrained.get("intermediate_size", 0)
    vocab = pretrained.get("vocab_size", 0)
    params = 2 * vocab * h + layers * (4 * h * h + 3 * h * inter)
    world = (pretrained.get("mapping") or {}).get("world_size", 1)
    per = {"float32": 4, "float16": 2, "bfloat16": 2}.get(pretrained.get("dtype"), 2)
    return params * per // max(world, 1)


def run(args: Any) -> None:
    ver = version()
    started = time.monotonic()
    if args.build_config is not None or args.model_cls_file is not None:
        raise BuildError("--build_config / --model_cls_file are not simulated by the toolchain double")
    if args.checkpoint_dir is not None:
        ckpt = Path(args.checkpoint_dir)
        if not (ckpt / "config.json").is_file():
            raise BuildError(f"FileNotFoundError: [Errno 2] No such file or directory: '{ckpt / 'config.json'}'")
        pretrained = json.loads((ckpt / "config.json").read_text())
        ranks: list[Path | None] = list(check_checkpoint(ckpt, pretrained))
    elif args.model_config is not None:
        path = Path(args.model_config)
        if not path.is_file():
            raise BuildError(f"FileNotFoundError: [Errno 2] No such file or directory: '{path}'")
        pretrained = json.loads(path.read_text())
        ranks = [None] * int((pretrained.get("mapping") or {}).get("world_size", 1))
        log("W", "no checkpoint given: building with random weights (--model_config)")
    else:
        raise BuildError("either --checkpoint_dir or --model_config must be given")
    if args.logits_dtype:
        pretrained["logits_dtype"] = args.logits_dtype
    detected = gpus()
    arch = f"sm{detected[0]['compute_cap'].replace('.', '')}" if detected else "sm_unknown"
    bcfg = build_config(args, pretrained, int(arch[2:]) if detected else 0)
    plugin = bcfg["plugin_config"]
    if plugin.get("streamingllm"):
        raise BuildError("StreamingLLM is no longer supported")
    workers = max(1, min(args.workers, len(detected) or 1))
    if args.workers > workers:
        log("W", f"{args.workers} workers requested but {len(detected)} GPU(s) visible; using {workers}")
    keys = timing_cache_keys(pretrained, bcfg, arch)
    cached: set[str] = set()
    if args.input_timing_cache:
        cpath = Path(args.input_timing_cache)
        if cpath.is_file():
            cached = read_timing_cache(cpath)
            log("I", f"loaded timing cache {cpath}: {len(cached & set(keys))}/{len(keys)} entries hit")
        else:
            log("W", f"timing cache {cpath} not found; a new one is created")
    if args.dry_run:
        log("I", "dry run: no engine written")
        return
    out = Path(args.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    world = len(ranks)
    log("I", f"building {world} rank(s) for {arch} with {workers} worker(s)")
    manage = bool(plugin.get("manage_weights"))
    dummy = estimate_rank_bytes(pretrained)
    config = {"version": ver, "pretrained_config": dict(pretrained), "build_config": bcfg}
    quant = config["pretrained_config"].get("quantization") or {}
    if quant.get("quant_algo") == "MIXED_PRECISION":
        (out / "quant_cfg.json").write_text(json.dumps({"version": ver, **quant}, indent=4))
        quant = dict(quant)
        quant.pop("quantized_layers", None)
        config["pretrained_config"]["quantization"] = quant
    for rank, weights in enumerate(ranks):
        t0 = time.monotonic()
        data = engine_bytes(ver, rank, bcfg, weights, manage, dummy)
        tmp = out / f"rank{rank}.engine.tmp"
        tmp.write_bytes(data)
        tmp.replace(out / f"rank{rank}.engine")
        if manage and weights is not None:
            (out / f"rank{rank}_managed_weights.safetensors").write_bytes(weights.read_bytes())
        log("I", f"rank {rank}: engine {len(data)} bytes in {time.monotonic() - t0:.2f} s")
    (out / "config.json").write_text(json.dumps(config, indent=4) + "\n")
    if bcfg["output_timing_cache"]:
        cpath = Path(bcfg["output_timing_cache"])
        cpath.parent.mkdir(parents=True, exist_ok=True)
        cpath.write_bytes(CACHE_MAGIC + "\n".join(sorted(cached | set(keys))).encode() + b"\n")
        log("I", f"timing cache saved to {cpath}")
    log("I", f"Total time of building all engines: {time.strftime('%H:%M:%S', time.gmtime(time.monotonic() - started))}")


def main(argv: list[str] | None = None) -> int:
    ver = version()
    args = parser_for("trtllm-build", "trtllm-build").parse_args(argv)
    print(f"[TensorRT-LLM] TensorRT-LLM version: {ver} (TOOLCHAIN DOUBLE)", flush=True)
    if args.gather_all_token_logits:
        args.gather_context_logits = args.gather_generation_logits = True
    for error in main_rule_errors(args):  # main() raises before building
        print(f"Traceback (most recent call last):\n  (toolchain double)\n{error}", file=sys.stderr, flush=True)
        return 1
    sleep = float(os.environ.get("TOOLCHAIN_DOUBLE_SLEEP", "0") or 0)  # for interrupt/timeout tests
    end = time.monotonic() + sleep
    while time.monotonic() < end:
        log("I", f"building... ({end - time.monotonic():.0f} s left)")
        time.sleep(min(1.0, max(0.0, end - time.monotonic())))
    if args.gather_generation_logits:
        log("W", "--gather_generation_logits is deprecated; use output_generation_logits at runtime")
    try:
        run(args)
    except BuildError as exc:
        print(f"[TRT-LLM] [E] {exc}", file=sys.stderr, flush=True)
        return 1
    except st.SafetensorsError as exc:
        print(f"[TRT-LLM] [E] {exc}", file=sys.stderr, flush=True)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
