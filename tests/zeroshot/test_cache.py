"""The append-only generation cache and resumable cached generation (tiny real models)."""
from __future__ import annotations

import json

import pytest

from mmgraph.errors import ConfigError
from mmgraph.zeroshot.cache import GenerationCache, cached_generate
from mmgraph.zeroshot.generate import Generation, load_generator
from tests.zeroshot.test_generate import Prompt, build_tiny_models, text_prompt


@pytest.fixture(scope="module")
def tiny_lm(tmp_path_factory):
    return load_generator(str(build_tiny_models(tmp_path_factory.mktemp("tiny-generators"))["lm"]))


class Interrupted(RuntimeError):
    pass


class CountingGenerator:
    """Wraps a real generator: records what it is asked to generate, and can die after N prompts
    (like a killed run)."""

    def __init__(self, inner, fail_after: int | None = None):
        self.inner, self.fail_after = inner, fail_after
        self.name, self.accepts_images = inner.name, inner.accepts_images
        self.asked: list[str] = []

    def fingerprint(self) -> str:
        return self.inner.fingerprint()

    def generate(self, prompts, **kw):
        if self.fail_after is not None and len(self.asked) + len(prompts) > self.fail_after:
            raise Interrupted("killed")
        self.asked += [p.key for p in prompts]
        return self.inner.generate(prompts, **kw)


def test_put_get_roundtrip_and_keys(tmp_path):
    path = tmp_path / "c" / "gen.jsonl"
    cache = GenerationCache(path, "model@1", {"max_new_tokens": 8})
    p, q = text_prompt(0), text_prompt(1)
    assert cache.get(p) is None and len(cache) == 0
    cache.put(p, Generation("food", 2, 0.25))
    assert cache.get(p) == Generation("food", 2, 0.25) and cache.get(q) is None
    row = json.loads(path.read_text().splitlines()[0])
    assert set(row) == {"key", "text", "new_tokens", "seconds"} and len(row["key"]) == 40
    assert "node-0" not in row["key"]  # a digest, not the prompt key itself
    # reopened: the same answer; other settings or another model: a different key, no answer
    assert GenerationCache(path, "model@1", {"max_new_tokens": 8}).get(p) == Generation("food", 2, 0.25)
    assert GenerationCache(path, "model@1", {"max_new_tokens": 9}).get(p) is None
    assert GenerationCache(path, "model@2", {"max_new_tokens": 8}).get(p) is None
    # the key depends on prompt.key only
    same_key = Prompt([{"role": "user", "content": "other text"}], [], "node-0")
    assert cache.get(same_key) == Generation("food", 2, 0.25)
    # unicode survives
    cache.put(q, Generation("café – 猫", 3, 0.5))
    assert GenerationCache(path, "model@1", {"max_new_tokens": 8}).get(q).text == "café – 猫"


def test_truncated_and_corrupt_lines_are_skipped_never_rewritten(tmp_path):
    path = tmp_path / "gen.jsonl"
    cache = GenerationCache(path, "m", {})
    prompts = [text_prompt(i) for i in range(4)]
    cache.put_many([(p, Generation(f"a{i}", i + 1, 0.1)) for i, p in enumerate(prompts[:3])])
    good = path.read_bytes()
    lines = good.splitlines(keepends=True)
    # a corrupt middle line and a killed write of the last line (no newline)
    damaged = lines[0] + b'{"key": "x", "text": 5\n' + lines[1] + lines[2][: len(lines[2]) // 2]
    path.write_bytes(damaged)
    with pytest.warns(RuntimeWarning, match=r"skipped 2 truncated or corrupt line"):
        reopened = GenerationCache(path, "m", {})
    assert reopened.skipped_lines == 2
    assert [reopened.get(p) for p in prompts] == [Generation("a0", 1, 0.1), Generation("a1", 2, 0.1), None, None]
    # appending starts a fresh line: earlier bytes untouched, the new line readable
    reopened.put(prompts[3], Generation("a3", 4, 0.1))
    assert path.read_bytes().startswith(damaged)
    with pytest.warns(RuntimeWarning, match="skipped 2"):
        third = GenerationCache(path, "m", {})
    assert third.get(prompts[3]) == Generation("a3", 4, 0.1) and third.get(prompts[2]) is None
    # garbage bytes and an empty file never raise
    (tmp_path / "junk.jsonl").write_bytes(b"\xff\xfe\x00garbage")
    with pytest.warns(RuntimeWarning):
        assert len(GenerationCache(tmp_path / "junk.jsonl", "m", {})) == 0
    (tmp_path / "empty.jsonl").write_bytes(b"")
    assert GenerationCache(tmp_path / "empty.jsonl", "m", {}).skipped_lines == 0


def test_cached_generate_resumes_after_an_interruption(tiny_lm, tmp_path):
    prompts = [text_prompt(i) for i in range(10)]
    reference = tiny_lm.generate(prompts, max_new_tokens=4, batch_size=3)
    path = tmp_path / "gen.jsonl"
    settings = {"max_new_tokens": 4}

    dying = CountingGenerator(tiny_lm, fail_after=7)  # batches of 3: 6 prompts done, the 3rd batch dies
    with pytest.raises(Interrupted):
        cached_generate(dying, prompts, GenerationCache(path, tiny_lm.fingerprint(), settings), batch_size=3)
    assert len(dying.asked) == 6 and len(path.read_text().splitlines()) == 6  # each batch written at once

    resumed = CountingGenerator(tiny_lm)
    cache = GenerationCache(path, tiny_lm.fingerprint(), settings)
    out = cached_generate(resumed, prompts, cache, batch_size=3)
    assert sorted(resumed.asked) == sorted(set(p.key for p in prompts) - set(dying.asked))
    assert [(g.text, g.new_tokens) for g in out] == [(g.text, g.new_tokens) for g in reference]
    assert len(path.read_text().splitlines()) == 10

    # everything cached: nothing generated, answers unchanged; a new prompt alone is generated
    third = CountingGenerator(tiny_lm)
    extra = text_prompt(11)
    again = cached_generate(third, prompts + [extra, extra], GenerationCache(path, tiny_lm.fingerprint(), settings),
                            batch_size=3)
    assert third.asked == ["node-11"]  # duplicates of one key generated once
    assert [g.text for g in again[:10]] == [g.text for g in reference]
    assert again[10] == again[11] and again[10].text == tiny_lm.generate([extra], max_new_tokens=4)[0].text


def test_cached_generate_checks_model_and_settings(tiny_lm, tmp_path):
    path = tmp_path / "gen.jsonl"
    with pytest.raises(ConfigError, match="is for model fingerprint 'other@1'"):
        cached_generate(tiny_lm, [text_prompt(0)], GenerationCache(path, "other@1", {}))
    cache = GenerationCache(path, tiny_lm.fingerprint(), {"max_new_tokens": 3})
    with pytest.raises(ConfigError, match="max_new_tokens=5 but the generation cache settings say 3"):
        cached_generate(tiny_lm, [text_prompt(0)], cache, max_new_tokens=5)
    out = cached_generate(tiny_lm, [text_prompt(0)], cache)  # max_new_tokens taken from the settings
    assert out[0].new_tokens == 3
    image = Prompt([{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "?"}]}], ["a.png"], "i")
    with pytest.raises(ConfigError, match="describe images as words"):
        cached_generate(tiny_lm, [text_prompt(1), image], cache)
    assert cache.get(text_prompt(1)) is None  # refused before anything was generated
