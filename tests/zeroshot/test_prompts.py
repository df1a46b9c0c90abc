import pytest

from mmgraph.errors import ConfigError
from mmgraph.zeroshot.prompts import NodeContent, Prompt, build_prompt, image_identity

CLASSES = ["cat", "wild cat", "truck"]


def user_text(p: Prompt) -> str:
    return "".join(part.get("text", "<IMG>") for part in p.messages[-1]["content"])


def check_format(p: Prompt):
    assert p.messages[-1]["role"] == "user"
    assert all(m["role"] in ("system", "user") for m in p.messages)
    for m in p.messages:
        for part in m["content"]:
            assert part["type"] in ("text", "image")
            assert (part["type"] == "text") == ("text" in part)
    n_img = sum(part["type"] == "image" for m in p.messages for part in m["content"])
    assert n_img == len(p.images)


def nodes():
    center = NodeContent("a grey kitten on a sofa", image="imgs/center.png",
                         image_words="an image that looks like: tabby cat, sofa")
    n1 = NodeContent("a red pickup truck", image="imgs/n1.png", image_words="an image that looks like: pickup")
    n2 = NodeContent(None, image=b"\x89PNG fake bytes", image_words=None)
    n3 = NodeContent("   ", image=None)
    return center, [n1, n2, n3]


@pytest.mark.parametrize("mode", ["text", "image", "both"])
def test_modes_decide_what_neighbours_show(mode):
    center, nbs = nodes()
    p = build_prompt(center, nbs, CLASSES, mode=mode)
    check_format(p)
    text = user_text(p)
    assert "a grey kitten on a sofa" in text
    assert text.count("Linked item") == 3
    assert p.images[0] == "imgs/center.png"
    if mode == "text":
        assert p.images == ["imgs/center.png"]
        assert "a red pickup truck" in text and text.count("(no text)") == 2
    if mode == "image":
        assert p.images == ["imgs/center.png", "imgs/n1.png", b"\x89PNG fake bytes"]
        assert "a red pickup truck" not in text and "(no text)" not in text
        assert text.count("(no image)") == 1                     # n3 has none
    if mode == "both":
        assert p.images == ["imgs/center.png", "imgs/n1.png", b"\x89PNG fake bytes"]
        assert "a red pickup truck" in text and text.count("(no text)") == 2
    # The centre's image comes before its description, the neighbours' after it.
    assert text.index("<IMG>") < text.index("a grey kitten") < text.index("Linked item 1")


def test_text_only_model_gets_image_words_instead_of_images():
    center, nbs = nodes()
    p = build_prompt(center, nbs, CLASSES, mode="both", images=False)
    check_format(p)
    text = user_text(p)
    assert p.images == [] and "<IMG>" not in text
    assert "tabby cat, sofa" in text and "an image that looks like: pickup" in text
    assert "None" not in text                                    # n2's missing words are left out
    only_images = user_text(build_prompt(center, nbs, CLASSES, mode="image", images=False))
    assert "a red pickup truck" not in only_images and "an image that looks like: pickup" in only_images
    # Without words the centre's image is simply not mentioned.
    bare = user_text(build_prompt(NodeContent("x", image="a.png"), [], CLASSES, images=False))
    assert "image" not in bare.lower() and "Description of the item: x\n" in bare


def test_no_neighbours_and_categories_and_instruction():
    p = build_prompt(NodeContent("hello"), [], CLASSES)
    check_format(p)
    text = user_text(p)
    assert "Linked item" not in text and p.images == []
    for c in CLASSES:
        assert f"- {c}\n" in text
    assert "exactly one category name" in text and "Answer:" not in text
    cot = user_text(build_prompt(NodeContent("hello"), [], CLASSES, cot=True))
    assert "step by step" in cot and '"Answer:"' in cot
    assert cot.rstrip().endswith("copied exactly.")


def test_truncation_and_missing_text():
    long = "word " * 500
    p = build_prompt(NodeContent(long), [NodeContent("short one")], CLASSES, max_chars=50)
    text = user_text(p)
    line = next(l for l in text.splitlines() if l.startswith("Description of the item: "))
    desc = line[len("Description of the item: "):]
    assert len(desc) <= 50 and desc.endswith("…") and desc.startswith("word word")
    assert "Description: short one\n" in text
    exact = "x" * 50
    assert f": {exact}\n" in user_text(build_prompt(NodeContent(exact), [], CLASSES, max_chars=50))
    assert "Description of the item: (no text)" in user_text(build_prompt(NodeContent(None), [], CLASSES))
    assert "Description of the item: (no text)" in user_text(build_prompt(NodeContent(" \n"), [], CLASSES))


def test_key_is_stable_and_sensitive():
    center, nbs = nodes()
    base = build_prompt(center, nbs, CLASSES, mode="both")
    again = build_prompt(*nodes(), list(CLASSES), mode="both")
    assert base.key == again.key and base.messages == again.messages
    assert "a red pickup truck" in base.key and "imgs/n1.png" in base.key
    assert "fake bytes" not in base.key and image_identity(b"\x89PNG fake bytes") in base.key

    def variant(**change):
        c, nb = nodes()
        if "n1" in change:
            nb[0] = change.pop("n1")
        if "n2" in change:
            nb[1] = change.pop("n2")
        return build_prompt(c, nb, change.pop("classes", CLASSES), **{"mode": "both", **change}).key

    keys = {base.key,
            variant(n1=NodeContent("a blue pickup truck", image="imgs/n1.png")),
            variant(n1=NodeContent("a red pickup truck", image="imgs/other.png")),
            variant(n2=NodeContent(None, image=b"\x89PNG other bytes")),
            variant(classes=list(reversed(CLASSES))),
            variant(cot=True),
            variant(mode="text"),
            variant(max_chars=5),
            variant(images=False)}
    assert len(keys) == 9


def test_bad_arguments():
    with pytest.raises(ConfigError, match="unknown neighbour mode 'audio'; valid modes: text, image, both"):
        build_prompt(NodeContent("x"), [], CLASSES, mode="audio")
    with pytest.raises(ConfigError, match="at least one category"):
        build_prompt(NodeContent("x"), [], [])
    with pytest.raises(ConfigError, match="max_chars"):
        build_prompt(NodeContent("x"), [], CLASSES, max_chars=0)


def test_image_identity_of_pil_images_and_paths():
    from pathlib import Path

    from PIL import Image

    a = Image.new("RGB", (4, 4), (255, 0, 0))
    b = Image.new("RGB", (4, 4), (255, 0, 0))
    c = Image.new("RGB", (4, 4), (0, 255, 0))
    assert image_identity(a) == image_identity(b) != image_identity(c)
    assert image_identity(Path("imgs/a.png")) == image_identity("imgs/a.png")
    p1 = build_prompt(NodeContent("x", image=a), [], CLASSES)
    p2 = build_prompt(NodeContent("x", image=c), [], CLASSES)
    assert p1.images == [a] and p1.key != p2.key
