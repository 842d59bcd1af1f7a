"""Accuracy gate: next-token distributions of the quantized model vs the unquantized one.

Before quantization, ``reference_logprobs`` runs the unquantized model on held-out prompts (never
calibration text) and keeps the log-probabilities of every position on the CPU. After calibration,
``compare`` runs the quantized model (ModelOpt's simulated quantization) on the same prompts and
measures, over all positions:
  top1_agreement  share of positions where both models predict the same next token
  mean_kl         mean KL(unquantized || quantized) in nats
  max_kl          the largest per-position KL
``ref_entropy`` (mean entropy of the unquantized model, nats) is reported so a reader can tell a peaked
model from a near-uniform one, where top-1 agreement says less.
"""

from __future__ import annotations


def _logprobs(model, prompts: list, device) -> list:
    """Per-prompt next-token log-probabilities [len, vocab] (float32, CPU), from one batched forward.

    Prompts are right-padded: with causal attention no real position sees the padding, so the logits of
    the real positions equal those of unpadded single-prompt runs.
    """
    import torch

    lengths = [int(p.shape[0]) for p in prompts]
    batch = torch.zeros((len(prompts), max(lengths)), dtype=torch.long)
    for i, p in enumerate(prompts):
        batch[i, : lengths[i]] = p
    logits = model(input_ids=batch.to(device), use_cache=False).logits
    return [torch.log_softmax(logits[i, :n].float(), dim=-1).cpu() for i, n in enumerate(lengths)]


def reference_logprobs(model, prompts: list, device) -> list:
    import torch

    with torch.no_grad():
        return _logprobs(model, prompts, device)


def compare(model, prompts: list, reference: list, device) -> dict:
    """Figures of the quantized ``model`` against ``reference`` (from ``reference_logprobs``)."""
    import torch

    agree = positions = 0
    kl_sum = kl_max = ent_sum = 0.0
    with torch.no_grad():
        for q, ref in zip(_logprobs(model, prompts, device), reference, strict=True):
            p_ref = ref.exp()
            kl = (p_ref * (ref - q)).sum(-1).clamp_min(0)  # per position
            agree += int((ref.argmax(-1) == q.argmax(-1)).sum())
            positions += ref.shape[0]
            kl_sum += float(kl.sum())
            kl_max = max(kl_max, float(kl.max()))
            ent_sum += float(-(p_ref * ref).sum(-1).sum())
    return {
        "prompts": len(prompts),
        "positions": positions,
        "top1_agreement": agree / positions,
        "mean_kl": kl_sum / positions,
        "max_kl": kl_max,
        "ref_entropy": ent_sum / positions,
    }


def verdict(figures: dict, min_top1: float, max_kl: float) -> list[str]:
    """Reasons the figures fail the thresholds (empty: passed). NaN fails."""
    reasons = []
    top1, kl = figures["top1_agreement"], figures["mean_kl"]
    if not top1 >= min_top1:
        reasons.append(f"top-1 agreement {top1:.4f} < minimum {min_top1}")
    if not kl <= max_kl:
        reasons.append(f"mean KL divergence {kl:.4f} > maximum {max_kl}")
    return reasons
