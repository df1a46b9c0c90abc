"""Batched autoregressive decoding from input embeddings, with a KV cache: greedy and beam search.

:func:`decode` runs any Hugging Face causal LM (Llama/SmolLM2, OPT, GPT-2, ...) or encoder-decoder
LM (T5, ...) from **input embeddings** rather than token ids, so that a prompt may hold soft
"embedding tokens" (for instance one per graph neighbour) next to ordinary token embeddings.
The prompt is run once; afterwards one token per row is fed per step, with the cache the model
returned (transformers' ``DynamicCache``/``EncoderDecoderCache``).

Semantics (checked token for token against ``lm.generate(..., do_sample=False)`` in
``tests/generation/test_decoding.py``):

* **Causal LMs.** ``inputs_embeds [B, L, H]`` are left-padded: ``attention_mask [B, L]`` has its
  0s on the left. Positions of the prompt's real tokens are ``cumsum(mask) - 1`` (pads get 0),
  as ``generate`` computes them from a mask, and grow by one per generated token.
* **Encoder-decoder LMs.** The encoder runs once on ``inputs_embeds`` (padding on either side);
  the decoder starts from ``decoder_start_token_id`` (default ``lm.config.decoder_start_token_id``)
  and does not count it as a generated token.
* **Greedy** (``num_beams=1``): the arg-max token per step. A row that produced an EOS token
  emits ``pad_token_id`` afterwards (it is still fed to the model, as ``generate`` does).
* **Beam search** (``num_beams=k > 1``) follows ``generate(num_beams=k, do_sample=False,
  early_stopping=False, length_penalty=...)``: beam scores are sums of log-softmax
  probabilities; each step keeps the best ``max(2, 1 + number of EOS ids) * k`` continuations
  over all beams of an example; a continuation ending in EOS becomes a finished hypothesis when
  it ranks among the best ``k`` of them, scored ``sum_logprobs / length ** length_penalty``
  (``length`` counts the generated tokens, the EOS token included), and the ``k`` best finished
  hypotheses are kept; the next running beams are the ``k`` best continuations not ending in
  EOS. At ``max_new_tokens`` the best ``k`` continuations all finish. An example stops taking
  hypotheses once all ``k`` slots are full and its best running beam, divided by the current
  length to the power ``length_penalty``, cannot beat its worst finished one (``generate``'s
  heuristic for ``early_stopping=False``). The best finished hypothesis per example is returned.
* **Stopping.** The loop ends when every row is finished (greedy: produced EOS; beam search:
  the heuristic above) or after ``max_new_tokens`` tokens; ``steps`` counts the model forward
  passes run, the prompt pass included (``max_new_tokens`` at most: the last token needs none).

**Rows and beams.** With ``num_beams=k`` every forward pass (the prompt, the encoder, each step)
runs on ``B * k`` rows in example-major order: the beams of example ``b`` are rows
``b*k .. b*k + k - 1``. State the caller attaches to the model per row (e.g. forward hooks that
cross-attend to a per-row memory) must therefore have ``B * k`` rows in that order; beams of one
example share it, and decoding never reorders it (only the KV cache is reordered, with the
cache's own ``reorder_cache``; for encoder-decoder models only the self-attention part, as the
cross-attention keys are identical within an example).

**Prefix tuning** (``prefix_past_key_values``, ``prefix_length = P``; causal LMs only): ``P``
virtual key/value positions per layer, e.g. ``peft_model.get_prompt(batch_size)`` of a peft
``PrefixTuningConfig`` model (pass ``peft_model.get_base_model()`` as ``lm``). It may have 1 row,
``B`` rows (decode repeats each ``k`` times) or ``B * k`` rows (used as they are); decode builds
its own cache from it and never modifies the one passed. As in peft (0.21), the model sees the
attention mask with ``P`` ones prepended and the real tokens at positions ``P + cumsum(mask) - 1``:
peft adds ``P`` to every position id it forwards, and its training forward without position ids
uses ``past length + arange``, which is the same for unpadded or right-padded sequences. Decoding
therefore gives the logits of a teacher-forced ``peft_model(input_ids, attention_mask)`` and the
tokens of ``peft_model.generate``. transformers 5.x models take no ``cache_position``: the cache
length (``P`` after the prefix) is what offsets the causal mask; a model whose ``forward`` still
takes ``cache_position`` gets ``arange(past, past + length)``.

**Differences from generate.** No logits processors: ``generate`` also applies what the
model's ``generation_config`` asks for (repetition penalty, minimum length, forced or suppressed
tokens, ...), ``decode`` uses the raw log-probabilities (the tiny test models and SmolLM2 ask for
none). Rows are padded with ``pad_token_id`` always, where ``generate``'s beam search pads with
the first EOS id when ``pad_token_id`` is 0. Only ``early_stopping=False``, one returned sequence
per prompt and no sampling. Ties between exactly equal scores are broken by ``torch.topk`` in
both, in the same candidate order, which is not guaranteed to give the same choice on every
device.

Decoding does not change ``lm``'s mode: call ``lm.eval()`` first unless dropout is wanted.
"""
from __future__ import annotations

import inspect
import numbers
from dataclasses import dataclass
from typing import Any, Sequence

import torch

#: Score of a beam that must never be chosen (as ``generate`` does, a large finite negative
#: number rather than -inf, so that sums stay finite).
_NEVER = -1.0e9


@dataclass
class DecodeOutput:
    """What :func:`decode` returns.

    Attributes:
        sequences: ``[B, T]`` generated tokens only (no prompt), ``T`` the longest row; after a
            row's EOS token (or its end) the row holds ``pad_token_id``.
        lengths: ``[B]`` number of generated tokens per row, the EOS token included if produced.
        steps: decoder forward passes run, the prompt pass included.
    """

    sequences: torch.LongTensor
    lengths: torch.LongTensor
    steps: int


def _accepts(module: torch.nn.Module, name: str) -> bool:
    """Whether the transformers model's ``forward`` takes a keyword ``name`` (for a peft wrapper,
    its base model's: the wrapper passes such keywords on)."""
    if hasattr(module, "get_base_model"):
        module = module.get_base_model()
    try:
        return name in inspect.signature(module.forward).parameters
    except (TypeError, ValueError):
        return False


def _is_int(value) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _eos_tensor(eos_token_id: int | Sequence[int] | None, device) -> torch.Tensor | None:
    if eos_token_id is None:
        return None
    ids = [eos_token_id] if _is_int(eos_token_id) else list(eos_token_id)
    if not ids or not all(_is_int(i) and i >= 0 for i in ids):
        raise ValueError(f"eos_token_id must be a token id, a non-empty list of token ids or None, "
                         f"got {eos_token_id!r}")
    return torch.tensor([int(i) for i in ids], dtype=torch.long, device=device)


def _prefix_cache(lm, prefix, prefix_length: int, batch: int, num_beams: int):
    """A fresh DynamicCache holding the prefix key/values for ``batch * num_beams`` rows."""
    from transformers import Cache, DynamicCache, EncoderDecoderCache

    if isinstance(prefix, EncoderDecoderCache):
        raise ValueError("prefix_past_key_values is an EncoderDecoderCache: prefix tuning is "
                         "supported for causal LMs only; pass the prefix of a causal LM or none")
    if isinstance(prefix, Cache):
        pairs = [(layer.keys, layer.values) for layer in prefix.layers]
    else:  # legacy: one (keys, values) pair per layer
        pairs = [(kv[0], kv[1]) for kv in prefix]
    if not pairs or any(k is None or k.ndim != 4 for k, _ in pairs):
        raise ValueError("prefix_past_key_values holds no [rows, heads, P, head_dim] key/value "
                         "tensors; pass peft_model.get_prompt(batch_size) or a DynamicCache")
    rows, length = pairs[0][0].shape[0], pairs[0][0].shape[2]
    if length != prefix_length:
        raise ValueError(f"prefix_length is {prefix_length} but prefix_past_key_values holds "
                         f"{length} positions; pass prefix_length={length}")
    total = batch * num_beams
    if rows == total:
        expand = None
    elif rows == batch:
        expand = lambda t: t.repeat_interleave(num_beams, dim=0)
    elif rows == 1:
        expand = lambda t: t.expand(total, *t.shape[1:])
    else:
        raise ValueError(f"prefix_past_key_values has {rows} rows for {batch} prompts and "
                         f"num_beams={num_beams}; give it 1, {batch} or {total} rows")
    if expand is not None:
        pairs = [(expand(k), expand(v)) for k, v in pairs]
    return DynamicCache(pairs, config=lm.config)


def _check_args(lm, inputs_embeds, attention_mask, max_new_tokens, num_beams, pad_token_id,
                prefix_past_key_values, prefix_length, length_penalty):
    if not _is_int(max_new_tokens) or max_new_tokens < 1:
        raise ValueError(f"max_new_tokens must be a positive integer, got {max_new_tokens!r}")
    if not _is_int(num_beams) or num_beams < 1:
        raise ValueError(f"num_beams must be an integer >= 1 (1 is greedy), got {num_beams!r}")
    if not _is_int(pad_token_id) or pad_token_id < 0:
        raise ValueError(f"pad_token_id must be a token id (an integer >= 0), got {pad_token_id!r}")
    if not isinstance(length_penalty, numbers.Real) or isinstance(length_penalty, bool):
        raise ValueError(f"length_penalty must be a number, got {length_penalty!r}")
    peft_config = getattr(lm, "active_peft_config", None)
    if peft_config is not None and getattr(peft_config, "is_prompt_learning", False):
        raise ValueError("lm is a prompt-learning PeftModel; pass peft_model.get_base_model() as lm "
                         "and its prefix as prefix_past_key_values")
    if inputs_embeds.ndim != 3:
        raise ValueError(f"inputs_embeds must be [batch, length, hidden], got shape "
                         f"{tuple(inputs_embeds.shape)}")
    if attention_mask is None or tuple(attention_mask.shape) != tuple(inputs_embeds.shape[:2]):
        got = None if attention_mask is None else tuple(attention_mask.shape)
        raise ValueError(f"attention_mask must be [batch, length] = {tuple(inputs_embeds.shape[:2])} "
                         f"like inputs_embeds, got {got}")
    if inputs_embeds.shape[0] == 0:
        raise ValueError("inputs_embeds holds no prompt (batch size 0); pass at least one row")
    if not _is_int(prefix_length) or prefix_length < 0:
        raise ValueError(f"prefix_length must be an integer >= 0, got {prefix_length!r}")
    if prefix_past_key_values is None and prefix_length:
        raise ValueError(f"prefix_length is {prefix_length} but no prefix_past_key_values was "
                         f"given; pass both or neither")
    if prefix_past_key_values is not None and lm.config.is_encoder_decoder:
        raise ValueError("prefix_past_key_values is not supported for encoder-decoder models; "
                         "use a causal LM for prefix tuning or decode without a prefix")


@torch.no_grad()
def decode(lm, inputs_embeds: torch.Tensor, attention_mask: torch.Tensor, *, max_new_tokens: int,
           num_beams: int = 1, eos_token_id: int | list[int] | None, pad_token_id: int,
           prefix_past_key_values=None, prefix_length: int = 0, length_penalty: float = 1.0,
           decoder_start_token_id: int | None = None) -> DecodeOutput:
    """Generate up to ``max_new_tokens`` tokens per prompt, greedily or with beam search.

    Args:
        lm: a transformers ``PreTrainedModel``, causal or encoder-decoder
            (``lm.config.is_encoder_decoder``), possibly with peft LoRA layers injected and forward
            hooks on its layers (see the module docstring for the row order they see).
        inputs_embeds: ``[B, L, H]`` prompt embeddings (left-padded for causal LMs).
        attention_mask: ``[B, L]``, 1 for real positions, 0 for padding.
        max_new_tokens: the most tokens to generate per row (>= 1).
        num_beams: 1 for greedy decoding, k > 1 for beam search with k beams.
        eos_token_id: token id(s) that end a row, or None (rows then run to ``max_new_tokens``).
        pad_token_id: the id written after a row's end (and fed to the model for finished rows).
        prefix_past_key_values: prefix-tuning key/values (a ``Cache`` or ``(keys, values)`` per
            layer) with 1, B or ``B * num_beams`` rows, or None.
        prefix_length: number of prefix positions ``P`` in ``prefix_past_key_values`` (0 without).
        length_penalty: exponent of the length that divides a finished hypothesis's summed
            log-probability (beam search only).
        decoder_start_token_id: first decoder token of an encoder-decoder model (default
            ``lm.config.decoder_start_token_id``).

    Returns:
        :class:`DecodeOutput` with the best sequence per prompt (new tokens only).
    """
    _check_args(lm, inputs_embeds, attention_mask, max_new_tokens, num_beams, pad_token_id,
                prefix_past_key_values, prefix_length, length_penalty)
    max_new_tokens, num_beams, pad_token_id = int(max_new_tokens), int(num_beams), int(pad_token_id)
    prefix_length = int(prefix_length)
    device = inputs_embeds.device
    eos = _eos_tensor(eos_token_id, device)
    batch, k = inputs_embeds.shape[0], num_beams
    mask = attention_mask.to(device=device, dtype=torch.long)
    if not bool((mask.sum(1) > 0).all()):
        raise ValueError("a row of attention_mask is all 0s; every prompt needs at least one "
                         "real position")
    if k > 1:  # example-major rows: the k beams of example b are rows b*k .. b*k + k - 1
        inputs_embeds = inputs_embeds.repeat_interleave(k, dim=0)
        mask = mask.repeat_interleave(k, dim=0)
    if lm.config.is_encoder_decoder:
        step = _Seq2SeqSteps(lm, inputs_embeds, mask, decoder_start_token_id)
    else:
        if not bool((mask[:, 1:] >= mask[:, :-1]).all()):
            raise ValueError("attention_mask is not left-padded: a causal LM needs its 0s before the "
                             "first 1 of each row (pad on the left, e.g. padding_side='left')")
        cache = None
        if prefix_past_key_values is not None:
            cache = _prefix_cache(lm, prefix_past_key_values, prefix_length, batch, k)
        step = _CausalSteps(lm, inputs_embeds, mask, cache, prefix_length, max_new_tokens)
    if k == 1:
        return _greedy(step, max_new_tokens, eos, pad_token_id)
    return _beam_search(step, batch, k, max_new_tokens, eos, pad_token_id, float(length_penalty))


class _CausalSteps:
    """Forward passes of a causal LM: the prompt once, then one token per row per call."""

    def __init__(self, lm, inputs_embeds, mask, cache, prefix_length: int, max_new_tokens: int):
        self.lm, self.cache = lm, cache
        self.embed = lm.get_input_embeddings()
        rows, length = mask.shape
        self.keep = {"logits_to_keep": 1} if _accepts(lm, "logits_to_keep") else {}
        self.positions = _accepts(lm, "position_ids")
        self.cache_position = _accepts(lm, "cache_position")
        # The whole mask, allocated once: P prefix ones, the prompt's mask, one 1 per new token.
        full = torch.ones(rows, prefix_length + length + max_new_tokens, dtype=torch.long,
                          device=mask.device)
        full[:, prefix_length:prefix_length + length] = mask
        self.full_mask, self.seen = full, prefix_length + length
        self.next_position = mask.sum(1, keepdim=True) + prefix_length  # [rows, 1]
        prompt_positions = (mask.cumsum(1) - 1).clamp(min=0) + prefix_length
        self.first = (inputs_embeds, prompt_positions, prefix_length)

    def _forward(self, embeds, positions, past: int):
        length = embeds.shape[1]
        kwargs: dict[str, Any] = dict(inputs_embeds=embeds, use_cache=True, return_dict=True,
                                      attention_mask=self.full_mask[:, :past + length], **self.keep)
        if self.cache is not None:
            kwargs["past_key_values"] = self.cache
        if self.positions:
            kwargs["position_ids"] = positions
        if self.cache_position:
            kwargs["cache_position"] = torch.arange(past, past + length, device=embeds.device)
        out = self.lm(**kwargs)
        self.cache = out.past_key_values
        return out.logits[:, -1, :]

    def prompt(self) -> torch.Tensor:
        """Run the prompt; the next-token logits ``[rows, V]``."""
        embeds, positions, past = self.first
        self.first = None
        return self._forward(embeds, positions, past)

    def next(self, tokens: torch.Tensor) -> torch.Tensor:
        """Feed one token per row; the next-token logits ``[rows, V]``."""
        logits = self._forward(self.embed(tokens[:, None]), self.next_position, self.seen)
        self.seen += 1
        self.next_position = self.next_position + 1
        return logits

    def reorder(self, rows: torch.Tensor) -> None:
        self.cache.reorder_cache(rows)


class _Seq2SeqSteps:
    """Forward passes of an encoder-decoder LM: the encoder once, the decoder token by token."""

    def __init__(self, lm, inputs_embeds, mask, decoder_start_token_id):
        start = decoder_start_token_id
        if start is None:
            start = getattr(lm.config, "decoder_start_token_id", None)
        if start is None:
            raise ValueError("the model's config has no decoder_start_token_id; pass "
                             "decoder_start_token_id=")
        self.lm, self.mask, self.cache = lm, mask, None
        self.encoder_outputs = lm.get_encoder()(inputs_embeds=inputs_embeds, attention_mask=mask,
                                                return_dict=True)
        self.start = torch.full((mask.shape[0],), int(start), dtype=torch.long, device=mask.device)

    def next(self, tokens: torch.Tensor) -> torch.Tensor:
        out = self.lm(encoder_outputs=self.encoder_outputs, attention_mask=self.mask,
                      decoder_input_ids=tokens[:, None], past_key_values=self.cache,
                      use_cache=True, return_dict=True)
        self.cache = out.past_key_values
        return out.logits[:, -1, :]

    def prompt(self) -> torch.Tensor:
        return self.next(self.start)

    def reorder(self, rows: torch.Tensor) -> None:
        # Beams of one example share the encoder output, so the cross-attention part is unchanged.
        cache = self.cache
        getattr(cache, "self_attention_cache", cache).reorder_cache(rows)


def _is_eos(tokens: torch.Tensor, eos: torch.Tensor | None) -> torch.Tensor:
    if eos is None:
        return torch.zeros_like(tokens, dtype=torch.bool)
    return torch.isin(tokens, eos)


def _greedy(step, max_new_tokens: int, eos, pad_token_id: int) -> DecodeOutput:
    logits = step.prompt()
    rows = logits.shape[0]
    out = torch.full((rows, max_new_tokens), pad_token_id, dtype=torch.long, device=logits.device)
    running = torch.ones(rows, dtype=torch.bool, device=logits.device)
    lengths = torch.zeros(rows, dtype=torch.long, device=logits.device)
    steps = 1
    for t in range(max_new_tokens):
        tokens = torch.where(running, logits.argmax(-1), pad_token_id)
        out[:, t] = tokens
        lengths += running
        running &= ~_is_eos(tokens, eos)
        if t + 1 == max_new_tokens or not bool(running.any()):
            break
        logits = step.next(tokens)
        steps += 1
    return DecodeOutput(out[:, :int(lengths.max())], lengths, steps)


def _beam_search(step, batch: int, k: int, max_new_tokens: int, eos, pad_token_id: int,
                 length_penalty: float) -> DecodeOutput:
    logits = step.prompt()
    device, vocab = logits.device, logits.shape[-1]
    n_eos = 0 if eos is None else int(eos.numel())
    width = min(max(2, 1 + n_eos) * k, k * vocab)  # continuations kept per example and step
    running_tokens = torch.full((batch, k, max_new_tokens), pad_token_id, dtype=torch.long,
                                device=device)
    # Only beam 0 may start: the k beams of an example hold the same prompt.
    running_scores = torch.full((batch, k), _NEVER, device=device)
    running_scores[:, 0] = 0.0
    done_tokens = running_tokens.clone()
    done_scores = torch.full((batch, k), float("-inf"), device=device)
    done_lengths = torch.zeros((batch, k), dtype=torch.long, device=device)
    closed = torch.zeros(batch, dtype=torch.bool, device=device)  # takes no more hypotheses
    row_base = (torch.arange(batch, device=device) * k)[:, None]
    steps = 1
    for t in range(max_new_tokens):
        last = t + 1 == max_new_tokens
        scores = torch.log_softmax(logits.float(), dim=-1).view(batch, k, vocab)
        scores = (scores + running_scores[:, :, None]).view(batch, k * vocab)
        cand_scores, cand = torch.topk(scores, width, dim=1)  # sorted, best first
        cand_beam, cand_token = cand // vocab, cand % vocab
        ends = torch.ones_like(cand_token, dtype=torch.bool) if last else _is_eos(cand_token, eos)
        # Hypotheses that end now and rank among the best k continuations of their example.
        finishing = ends[:, :k] & ~closed[:, None]
        if bool(finishing.any()):
            new_scores = torch.where(finishing, cand_scores[:, :k] / float(t + 1) ** length_penalty,
                                     float("-inf"))
            new_tokens = running_tokens.gather(
                1, cand_beam[:, :k, None].expand(-1, -1, max_new_tokens)).clone()
            new_tokens[:, :, t] = cand_token[:, :k]
            merged_scores = torch.cat([done_scores, new_scores], dim=1)
            best = torch.topk(merged_scores, k, dim=1).indices
            done_scores = merged_scores.gather(1, best)
            done_tokens = torch.cat([done_tokens, new_tokens], dim=1).gather(
                1, best[:, :, None].expand(-1, -1, max_new_tokens))
            new_lengths = torch.full_like(done_lengths, t + 1)
            done_lengths = torch.cat([done_lengths, new_lengths], dim=1).gather(1, best)
        if last:
            break
        # The next running beams: the best k continuations that do not end in EOS.
        open_scores = torch.where(ends, _NEVER, cand_scores)
        pick = torch.topk(open_scores, k, dim=1).indices
        running_scores = open_scores.gather(1, pick)
        origin = cand_beam.gather(1, pick)
        tokens = cand_token.gather(1, pick)
        running_tokens = running_tokens.gather(1, origin[:, :, None].expand(-1, -1, max_new_tokens))
        running_tokens[:, :, t] = tokens
        # An example closes once its k slots are full and its best running beam cannot win.
        full = torch.isfinite(done_scores).all(1)
        hope = running_scores[:, 0] / float(t + 1) ** length_penalty
        closed |= full & ~(hope > done_scores.min(1).values)
        if bool(closed.all()):
            break
        rows = (row_base + origin).view(-1)
        if not torch.equal(rows, torch.arange(batch * k, device=device)):
            step.reorder(rows)
        logits = step.next(tokens.view(-1))
        steps += 1
    # topk keeps the finished hypotheses sorted: slot 0 is the best of each example.
    sequences, lengths = done_tokens[:, 0], done_lengths[:, 0]
    return DecodeOutput(sequences[:, :int(lengths.max())], lengths, steps)
