"""Tiny random-weight Llama checkpoints for tests, made locally (no downloads).

``make_tiny_llama(dir)`` writes a Hugging Face checkpoint directory: ``config.json``,
``model.safetensors`` (random weights from ``LlamaForCausalLM(cfg)``, seeded) and a byte-level BPE
tokenizer trained offline with ``tokenizers`` on the project's built-in calibration passages, saved as a
transformers tokenizer (``tokenizer.json`` + ``tokenizer_config.json``).

The defaults are chosen so that every layout the tests use is valid:
  hidden 256, intermediate 768, 4 heads of 64, 2 KV heads, 2 layers, vocab 512
  - tp 1 and 2: heads (4), KV heads (2), hidden (256), intermediate (768) and vocab (512) divide by 2;
  - pp 1 and 2: 2 layers;
  - INT4 AWQ block 128: every quantized layer's input size / tp (256/1, 256/2, 768/1, 768/2) is a
    multiple of 128 (block 64 works too);
  - vocab 512 is a multiple of 64, so AWQ export pads nothing.
Weights are N(0, 0.32/sqrt(hidden)) (Llama's default 0.02 at hidden 256), except: the embedding is drawn
with std 0.1 and the lm_head with 1.6/sqrt(hidden) (0.1 at hidden 256), so the residual stream carries
the token identity and next-token distributions are peaked (entropy ~5.0 nats of ln 512 = 6.2) enough
for top-1 agreement to mean something; and the residual-branch outputs (o_proj, down_proj) are scaled by
1/sqrt(2 * layers) as in GPT-2/Megatron's scaled init. Random models made this way stay well-conditioned
at any width and depth; with Llama's 0.02 at hidden 2048 and 16 layers a random model amplifies small
perturbations layer after layer (FP8 top-1 agreement ~0.55 measured on an H100). With
these weights, correct FP8 / INT8 SQ / INT4 AWQ calibrations agree with the float model on ~95-97% /
~97% / ~90-92% of next tokens; weight scales corrupted 10x after calibration on ~56-59%.
Needs torch, transformers and tokenizers (the ``[quantize]`` and ``[test]`` extras).
"""

from __future__ import annotations

import json
from pathlib import Path

BUILTIN_CALIB = Path(__file__).resolve().parents[1] / "trtbuild" / "data" / "calib_builtin.jsonl"
SPECIAL_TOKENS = ["<unk>", "<s>", "</s>"]  # ids 0, 1, 2 as in Llama configs


def train_tokenizer(out_dir: Path, vocab_size: int, model_max_length: int = 2048) -> int:
    """Train a byte-level BPE tokenizer offline on the built-in passages; save it; return its size."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    texts = [
        json.loads(line)["text"]
        for line in BUILTIN_CALIB.read_text(encoding="utf-8").splitlines()
        if line.strip()
    ]
    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=SPECIAL_TOKENS,
        show_progress=False,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    tok.train_from_iterator(texts, trainer=trainer)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token="<s>",
        eos_token="</s>",
        unk_token="<unk>",
        model_max_length=model_max_length,
    )
    fast.save_pretrained(str(out_dir))
    return tok.get_vocab_size()


def width_scaled_std(hidden_size: int, gain: float = 0.32) -> float:
    """Weight std ``gain / sqrt(hidden)``: 0.02 (Llama's default) at hidden 256 for the default gain 0.32.

    Keeps a random model's per-layer dynamics the same at any width (0.02 at hidden 2048 makes a random
    16-layer Llama amplify perturbations: FP8 top-1 agreement ~0.55 on an H100, see bench/quantize_gpu).
    """
    import math

    return gain / math.sqrt(hidden_size)


def init_random_llama(
    model, embed_std: float | None = 0.1, lm_head_std: float | None = None, scaled_residual_init: bool = True
) -> None:
    """Embedding std ``embed_std``, lm_head std ``lm_head_std`` (default ``1.6 / sqrt(hidden)``: logits of
    std ~1.6), residual outputs scaled by 1/sqrt(2 * layers). In place."""
    import torch

    hidden = model.config.hidden_size
    with torch.no_grad():
        if embed_std is not None:
            model.model.embed_tokens.weight.normal_(0.0, embed_std)
        model.lm_head.weight.normal_(
            0.0, lm_head_std if lm_head_std is not None else width_scaled_std(hidden, 1.6)
        )
    if scaled_residual_init:
        scale_residual_outputs(model)


def scale_residual_outputs(model) -> None:
    """Scale o_proj and down_proj weights by 1/sqrt(2 * layers) (GPT-2 / Megatron scaled init), in place."""
    import math

    import torch

    factor = 1.0 / math.sqrt(2 * len(model.model.layers))
    with torch.no_grad():
        for layer in model.model.layers:
            layer.self_attn.o_proj.weight.mul_(factor)
            layer.mlp.down_proj.weight.mul_(factor)


def make_tiny_llama(
    out_dir: str | Path,
    *,
    hidden_size: int = 256,
    intermediate_size: int = 768,
    num_hidden_layers: int = 2,
    num_attention_heads: int = 4,
    num_key_value_heads: int = 2,
    vocab_size: int = 512,
    max_position_embeddings: int = 1024,
    initializer_range: float | None = None,
    embed_std: float | None = 0.1,
    lm_head_std: float | None = None,
    scaled_residual_init: bool = True,
    dtype: str = "float16",
    seed: int = 0,
    tokenizer: bool = True,
    rope_theta: float | None = None,
    rope_scaling: dict | None = None,
) -> Path:
    """Write a random-weight Llama checkpoint (and tokenizer) to ``out_dir``; return the directory.

    ``rope_theta`` / ``rope_scaling`` (e.g. Llama 3's 500000 and llama3 scaling) are written in the config
    layout of the installed transformers (top-level in 4.x, ``rope_parameters`` in 5.x)."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    if tokenizer:
        n_tokens = train_tokenizer(out, vocab_size)
        if n_tokens > vocab_size:  # pragma: no cover - the trainer never exceeds its target
            raise ValueError(f"tokenizer has {n_tokens} tokens > vocab_size {vocab_size}")
    cfg = LlamaConfig(
        vocab_size=vocab_size,
        hidden_size=hidden_size,
        intermediate_size=intermediate_size,
        num_hidden_layers=num_hidden_layers,
        num_attention_heads=num_attention_heads,
        num_key_value_heads=num_key_value_heads,
        max_position_embeddings=max_position_embeddings,
        initializer_range=initializer_range
        if initializer_range is not None
        else width_scaled_std(hidden_size),
        tie_word_embeddings=False,
        bos_token_id=1,
        eos_token_id=2,
        **({"rope_theta": rope_theta} if rope_theta is not None else {}),
        **({"rope_scaling": rope_scaling} if rope_scaling is not None else {}),
    )
    torch.manual_seed(seed)
    model = LlamaForCausalLM(cfg).eval()
    init_random_llama(model, embed_std, lm_head_std, scaled_residual_init)
    model = model.to(getattr(torch, dtype))
    model.save_pretrained(str(out))
    return out
