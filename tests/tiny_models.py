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
Weights are Llama's default N(0, 0.02) except the embedding and lm_head, drawn with std 0.1: the residual
stream then carries the token identity next to the layers' contributions (as in trained models) and the
next-token distributions are peaked enough (entropy ~5.0 nats of ln 512 = 6.2) for top-1 agreement to
mean something. With these, correct FP8 / INT8 SQ / INT4 AWQ calibrations agree with the float model on
~94% / ~97% / ~82% of next tokens, and weight scales corrupted by 10x on ~29% (see tests/quantize).
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

    texts = [json.loads(line)["text"] for line in BUILTIN_CALIB.read_text(encoding="utf-8").splitlines()
             if line.strip()]
    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=SPECIAL_TOKENS, show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(texts, trainer=trainer)
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<s>", eos_token="</s>", unk_token="<unk>",
                                   model_max_length=model_max_length)
    fast.save_pretrained(str(out_dir))
    return tok.get_vocab_size()


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
    initializer_range: float = 0.02,
    embed_std: float | None = 0.1,
    lm_head_std: float | None = 0.1,
    dtype: str = "float16",
    seed: int = 0,
    tokenizer: bool = True,
) -> Path:
    """Write a random-weight Llama checkpoint (and tokenizer) to ``out_dir``; return the directory."""
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
        initializer_range=initializer_range,
        tie_word_embeddings=False,
        bos_token_id=1,
        eos_token_id=2,
    )
    torch.manual_seed(seed)
    model = LlamaForCausalLM(cfg).eval()
    with torch.no_grad():
        if embed_std is not None:
            model.model.embed_tokens.weight.normal_(0.0, embed_std)
        if lm_head_std is not None:
            model.lm_head.weight.normal_(0.0, lm_head_std)
    model = model.to(getattr(torch, dtype))
    model.save_pretrained(str(out))
    return out
