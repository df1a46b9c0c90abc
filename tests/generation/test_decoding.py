"""mmgraph.generation.decoding.decode against transformers' own generate, token for token.

Tiny random models built from configs (no downloads): Llama, GPT-2, OPT (causal, prompts
left-padded) and T5 (encoder-decoder). ``decode`` gets ``lm.get_input_embeddings()(input_ids)``;
``generate`` gets the same prompts as ``input_ids``.
"""
from __future__ import annotations

import random
import warnings

import pytest
import torch
from transformers import (GPT2Config, GPT2LMHeadModel, LlamaConfig, LlamaForCausalLM, OPTConfig,
                          OPTForCausalLM, T5Config, T5ForConditionalGeneration)
from transformers.utils import logging as hf_logging

from mmgraph.generation.decoding import DecodeOutput, decode

pytestmark = pytest.mark.usefixtures("one_thread")  # tiny models: one torch thread (tests/conftest.py)

VOCAB = 128
PAD = 3  # never an EOS below; generate pads finished rows with it too
PROMPTS = [[5, 17, 33, 9, 21], [40, 41], [7, 8, 9, 10, 11, 12, 13, 14]]
FAMILIES = ["llama", "gpt2", "opt", "t5"]


@pytest.fixture(autouse=True)
def _quiet_transformers():
    """GPT-2's default config names token ids outside our tiny vocabulary; transformers warns."""
    before = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()
    yield
    hf_logging.set_verbosity(before)


def tiny_lm(family: str, seed: int = 0, vocab: int = VOCAB, init: float | None = None):
    """A 2-layer random model of ``family`` with hidden size 32, in eval mode."""
    torch.manual_seed(seed)
    if family == "llama":
        cfg = LlamaConfig(vocab_size=vocab, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                          num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=128,
                          initializer_range=init or 0.02)
        lm = LlamaForCausalLM(cfg)
    elif family == "gpt2":
        cfg = GPT2Config(vocab_size=vocab, n_embd=32, n_layer=2, n_head=4, n_positions=128,
                         bos_token_id=0, eos_token_id=0, initializer_range=init or 0.02)
        lm = GPT2LMHeadModel(cfg)
    elif family == "opt":
        cfg = OPTConfig(vocab_size=vocab, hidden_size=32, ffn_dim=64, num_hidden_layers=2,
                        num_attention_heads=4, max_position_embeddings=128, word_embed_proj_dim=32,
                        init_std=init or 0.02)
        lm = OPTForCausalLM(cfg)
    elif family == "t5":
        cfg = T5Config(vocab_size=vocab, d_model=32, d_kv=8, d_ff=64, num_layers=2, num_heads=4,
                       decoder_start_token_id=0, initializer_factor=(init or 0.02) / 0.02)
        lm = T5ForConditionalGeneration(cfg)
    else:
        raise AssertionError(family)
    return lm.eval()


def batch(prompts=PROMPTS, filler: int = 1):
    """Left-padded ``input_ids`` and ``attention_mask`` for ``prompts``."""
    width = max(map(len, prompts))
    ids = torch.full((len(prompts), width), filler, dtype=torch.long)
    mask = torch.zeros((len(prompts), width), dtype=torch.long)
    for i, p in enumerate(prompts):
        ids[i, width - len(p):] = torch.tensor(p)
        mask[i, width - len(p):] = 1
    return ids, mask


def hf_generate(lm, ids, mask, **kwargs) -> torch.Tensor:
    """The new tokens of ``lm.generate`` (greedy or beam search, no sampling)."""
    kwargs.setdefault("pad_token_id", PAD)
    out = lm.generate(input_ids=ids, attention_mask=mask, do_sample=False, early_stopping=False,
                      **kwargs)
    return out[:, 1:] if lm.config.is_encoder_decoder else out[:, ids.shape[1]:]


def ours(lm, ids, mask, **kwargs) -> DecodeOutput:
    kwargs.setdefault("pad_token_id", PAD)
    return decode(lm, lm.get_input_embeddings()(ids), mask, **kwargs)


def expected_lengths(seqs: torch.Tensor, eos, max_new_tokens: int) -> list[int]:
    """Generated length per row: up to and including the first EOS, else ``max_new_tokens``."""
    eos = [] if eos is None else [eos] if isinstance(eos, int) else list(eos)
    out = []
    for row in seqs.tolist():
        hits = [i for i, t in enumerate(row) if t in eos]
        out.append(hits[0] + 1 if hits else max_new_tokens)
    return out


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("num_beams, length_penalty", [(1, 1.0), (3, 1.0), (3, 0.5)])
def test_matches_generate(family, num_beams, length_penalty):
    lm = tiny_lm(family)
    ids, mask = batch()
    kw = dict(max_new_tokens=10, num_beams=num_beams, eos_token_id=None, length_penalty=length_penalty)
    expected = hf_generate(lm, ids, mask, **kw)
    got = ours(lm, ids, mask, **kw)
    assert torch.equal(got.sequences, expected)
    assert got.lengths.tolist() == [10, 10, 10]
    assert got.steps == 10  # the prompt pass and 9 one-token steps


def pick_eos(lm, ids, mask, max_new_tokens: int) -> int:
    """A token the model really produces: row 0's third greedy token (so row 0 stops there)."""
    return int(ours(lm, ids, mask, max_new_tokens=max_new_tokens, eos_token_id=None).sequences[0, 2])


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("num_beams, length_penalty", [(1, 1.0), (3, 1.0), (3, 0.5)])
def test_eos_stops_rows(family, num_beams, length_penalty):
    lm = tiny_lm(family, init=0.2)  # a larger init: the random model varies its tokens more
    ids, mask = batch()
    eos = pick_eos(lm, ids, mask, 12)
    kw = dict(max_new_tokens=12, num_beams=num_beams, eos_token_id=eos, length_penalty=length_penalty)
    expected = hf_generate(lm, ids, mask, **kw)
    got = ours(lm, ids, mask, **kw)
    lengths = expected_lengths(got.sequences, eos, 12)
    assert torch.equal(got.sequences, expected)
    assert got.lengths.tolist() == lengths
    assert min(lengths) < 12  # some row did stop early
    assert got.sequences.shape[1] == max(lengths)
    for row, n in zip(got.sequences, lengths):
        assert (row[n:] == PAD).all()  # pad after EOS
    if num_beams == 1:
        assert got.steps == max(lengths)  # stopped once every row had its EOS


def test_eos_list_and_all_rows_finish_early():
    lm = tiny_lm("llama", init=0.3)
    ids, mask = batch()
    first = ours(lm, ids, mask, max_new_tokens=8, eos_token_id=None).sequences
    eos = sorted({int(first[0, 1]), int(first[1, 1]), int(first[2, 1])})  # every row ends by step 2
    got = ours(lm, ids, mask, max_new_tokens=8, eos_token_id=eos)
    assert torch.equal(got.sequences, hf_generate(lm, ids, mask, max_new_tokens=8, eos_token_id=eos))
    assert max(got.lengths.tolist()) <= 2 and got.steps == max(got.lengths.tolist())


@pytest.mark.parametrize("seed", range(24))
def test_random_configurations(seed):
    """Small vocabularies, EOS ids the model produces, 1-4 beams, length penalties of either sign."""
    rng = random.Random(seed)
    family = ["llama", "gpt2", "t5"][seed % 3]
    vocab = rng.choice([20, 40, 100])
    lm = tiny_lm(family, seed=seed, vocab=vocab, init=0.2)
    lens = [rng.randint(1, 7) for _ in range(rng.randint(1, 4))]
    ids, mask = batch([[rng.randrange(3, vocab) for _ in range(n)] for n in lens])
    max_new = rng.randint(1, 10)
    produced = ours(lm, ids, mask, max_new_tokens=max_new, eos_token_id=None).sequences.flatten().tolist()
    eos = [rng.choice(produced) for _ in range(rng.choice([1, 2]))]
    kw = dict(max_new_tokens=max_new, num_beams=rng.choice([1, 2, 3, 4]), eos_token_id=eos,
              length_penalty=rng.choice([1.0, 0.5, 2.0, -0.5, 0.0]), pad_token_id=1)
    expected = hf_generate(lm, ids, mask, **kw)
    got = ours(lm, ids, mask, **kw)
    assert torch.equal(got.sequences, expected), kw
    assert got.lengths.tolist() == expected_lengths(got.sequences, eos, max_new)


# ---------------------------------------------------------------------------- prefix tuning
def prefix_model(family: str, num_virtual_tokens: int = 4):
    from peft import PrefixTuningConfig, get_peft_model

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pm = get_peft_model(tiny_lm(family, init=0.1), PrefixTuningConfig(task_type="CAUSAL_LM",
                                                                num_virtual_tokens=num_virtual_tokens))
    with torch.no_grad():  # a prefix that matters (peft's initial one is tiny)
        pm.prompt_encoder["default"].embedding.weight.normal_(0.0, 1.0)
    return pm.eval()


@pytest.mark.parametrize("family", ["llama", "gpt2", "opt"])
@pytest.mark.parametrize("num_beams", [1, 3])
def test_prefix_tuning_matches_peft_generate(family, num_beams):
    pm = prefix_model(family)
    lm = pm.get_base_model()
    ids, mask = batch()
    kw = dict(max_new_tokens=10, num_beams=num_beams, eos_token_id=None)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        expected = hf_generate(pm, ids, mask, **kw)
    without = ours(lm, ids, mask, **kw).sequences
    for rows in {1, 3, 3 * num_beams}:  # one row, one per prompt, one per beam
        prefix = pm.get_prompt(rows)
        got = ours(lm, ids, mask, prefix_past_key_values=prefix, prefix_length=4, **kw)
        assert torch.equal(got.sequences, expected), rows
        assert prefix.get_seq_length() == 4  # the caller's cache is left as it was
    assert not torch.equal(without, expected)  # the prefix changes the output


def test_prefix_tuning_matches_teacher_forced_peft_forward():
    """Greedy tokens are the arg-max of peft's training forward on prompt + generated tokens."""
    pm = prefix_model("llama")
    lm = pm.get_base_model()
    ids, mask = batch()
    got = ours(lm, ids, mask, max_new_tokens=10, eos_token_id=None,
               prefix_past_key_values=pm.get_prompt(3), prefix_length=4).sequences
    for prompt, row in zip(PROMPTS, got):
        full = torch.tensor([prompt + row.tolist()])
        with torch.no_grad():
            logits = pm(input_ids=full, attention_mask=torch.ones_like(full)).logits[0]
            # the same prefix with positions not shifted by P: other tokens, so the shift matters
            unshifted = lm(input_ids=full, attention_mask=torch.ones(1, full.shape[1] + 4, dtype=torch.long),
                           past_key_values=pm.get_prompt(1),
                           position_ids=torch.arange(full.shape[1])[None]).logits[0]
        span = slice(len(prompt) - 1, full.shape[1] - 1)
        assert torch.equal(logits[span].argmax(-1), row)
        assert not torch.equal(unshifted[span].argmax(-1), row)


# ---------------------------------------------------------------------------- per-row memory hooks
def add_memory_hooks(layers, memory_ref: dict):
    """Forward hooks adding ``memory_ref['memory'][row]`` (``[rows, H]``) to each layer's output."""
    def hook(module, args, output):
        memory = memory_ref["memory"][:, None, :]
        if isinstance(output, tuple):
            return (output[0] + memory,) + tuple(output[1:])
        return output + memory
    return [layer.register_forward_hook(hook) for layer in layers]


@pytest.mark.parametrize("family", ["llama", "t5"])
def test_row_memory_hooks_with_beams(family):
    k = 3
    lm = tiny_lm(family, init=0.2)
    layers = lm.model.layers if family == "llama" else lm.decoder.block
    scale = 20.0 if family == "t5" else 1.0  # T5's hidden states are larger
    memory = torch.randn(len(PROMPTS), 32, generator=torch.Generator().manual_seed(1)) * scale
    ref: dict = {}
    handles = add_memory_hooks(layers, ref)
    try:
        kw = dict(max_new_tokens=10, num_beams=k, eos_token_id=None)
        ids, mask = batch()
        ref["memory"] = memory.repeat_interleave(k, dim=0)  # the caller expands to B*k rows
        together = ours(lm, ids, mask, **kw).sequences
        assert torch.equal(together, hf_generate(lm, ids, mask, **kw))
        for i, prompt in enumerate(PROMPTS):
            ref["memory"] = memory[i:i + 1].repeat_interleave(k, dim=0)
            alone = ours(lm, *batch([prompt]), **kw).sequences
            assert torch.equal(together[i, :alone.shape[1]], alone[0]), i
        ref["memory"] = torch.zeros(len(PROMPTS) * k, 32)
        assert not torch.equal(ours(lm, ids, mask, **kw).sequences, together)  # the hook matters
    finally:
        for h in handles:
            h.remove()


# ---------------------------------------------------------------------------- bad arguments
@pytest.mark.parametrize("kwargs, message", [
    (dict(max_new_tokens=0), "max_new_tokens must be a positive integer"),
    (dict(max_new_tokens=-3), "max_new_tokens must be a positive integer"),
    (dict(num_beams=0), "num_beams must be an integer >= 1"),
    (dict(num_beams=-1), "num_beams must be an integer >= 1"),
    (dict(prefix_length=2), "no prefix_past_key_values was given"),
    (dict(eos_token_id=[]), "eos_token_id must be"),
])
def test_bad_arguments(kwargs, message):
    lm = tiny_lm("llama")
    ids, mask = batch()
    kw = dict(max_new_tokens=4, eos_token_id=None) | kwargs
    with pytest.raises(ValueError, match=message) as info:
        ours(lm, ids, mask, **kw)
    assert "\n" not in str(info.value)


def test_bad_masks_and_prefixes():
    lm = tiny_lm("llama")
    ids, mask = batch()
    with pytest.raises(ValueError, match="not left-padded"):
        ours(lm, ids, mask.flip(1), max_new_tokens=2, eos_token_id=None)
    empty = mask.clone()
    empty[1] = 0
    with pytest.raises(ValueError, match="all 0s"):
        ours(lm, ids, empty, max_new_tokens=2, eos_token_id=None)
    with pytest.raises(ValueError, match=r"attention_mask must be \[batch, length\]"):
        ours(lm, ids, mask[:, 1:], max_new_tokens=2, eos_token_id=None)
    pm = prefix_model("llama")
    with pytest.raises(ValueError, match="pass prefix_length=4"):
        ours(pm.get_base_model(), ids, mask, max_new_tokens=2, eos_token_id=None,
             prefix_past_key_values=pm.get_prompt(3), prefix_length=3)
    with pytest.raises(ValueError, match="give it 1, 3 or 6 rows"):
        ours(pm.get_base_model(), ids, mask, max_new_tokens=2, eos_token_id=None, num_beams=2,
             prefix_past_key_values=pm.get_prompt(4), prefix_length=4)
    with pytest.raises(ValueError, match="get_base_model"):
        ours(pm, ids, mask, max_new_tokens=2, eos_token_id=None)
    t5 = tiny_lm("t5")
    with pytest.raises(ValueError, match="encoder-decoder"):
        ours(t5, ids, mask, max_new_tokens=2, eos_token_id=None,
             prefix_past_key_values=pm.get_prompt(3), prefix_length=4)


def test_lora_injected_model_matches_peft_generate():
    """A model with peft LoRA layers injected (the peft model's base model) is simply called."""
    from peft import LoraConfig, get_peft_model

    with warnings.catch_warnings():  # peft asks a deprecated transformers property
        warnings.simplefilter("ignore", FutureWarning)
        pm = get_peft_model(tiny_lm("llama", init=0.1), LoraConfig(
            r=4, target_modules=["q_proj", "v_proj"], init_lora_weights=False)).eval()
    ids, mask = batch()
    for num_beams in (1, 3):
        kw = dict(max_new_tokens=10, num_beams=num_beams, eos_token_id=None)
        expected = hf_generate(pm, ids, mask, **kw)
        assert torch.equal(ours(pm.get_base_model(), ids, mask, **kw).sequences, expected)
        with pm.disable_adapter():
            assert not torch.equal(ours(pm.get_base_model(), ids, mask, **kw).sequences, expected)
