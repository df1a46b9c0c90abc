import pytest

from mmgraph.errors import ConfigError
from mmgraph.zeroshot.parse import AnswerParser, Parsed, mismatch_rate, normalize

CLASSES = ["cat", "wild cat", "Truck", "fire-truck", "C++ book", "Case_Study"]


@pytest.fixture(scope="module")
def minilm():
    from mmgraph.features.encoders import get_encoder

    enc = get_encoder("minilm")
    enc.load()
    return enc


@pytest.mark.parametrize("output, label, how", [
    ("cat", "cat", "exact"),
    ("wild cat", "wild cat", "exact"),                       # the longer name at the same position
    ("It is a wild cat, not a cat.", "wild cat", "exact"),
    ("A cat, or maybe a wild cat.", "cat", "exact"),          # the earliest mention wins
    ("Truck", "Truck", "exact"),
    ("fire-truck", "fire-truck", "exact"),                   # not "Truck" inside it (case) ...
    ("C++ book", "C++ book", "exact"),                       # regex characters in names
    ("Case_Study.", "Case_Study", "exact"),
    ("catalogue", None, "unknown"),                           # whole words only
    ("concatenate the wildcats", None, "unknown"),
    ("TRUCK", "Truck", "normalized"),
    ("Trucks!", "Truck", "normalized"),                       # plural
    ("Wild-Cat", "wild cat", "normalized"),
    ("fire truck", "fire-truck", "normalized"),
    ("a case study", "Case_Study", "normalized"),
    ("The category is: **Cats**.", "cat", "normalized"),
    ("", None, "unknown"),
    ("   \n ", None, "unknown"),
    ("I cannot tell.", None, "unknown"),
])
def test_exact_and_normalized_matches(output, label, how):
    got = AnswerParser(CLASSES).parse(output)
    assert (got.label, got.how) == (label, how)
    assert got.index == (CLASSES.index(label) if label is not None else -1)


def test_chain_of_thought_counts_only_the_last_answer_line():
    p = AnswerParser(CLASSES)
    cot = ("The picture shows a truck on a road, but the text mentions a wild cat twice.\n"
           "Answer: Truck (draft)\nLet me reconsider.\n**Final Answer:** wild cat")
    assert p.parse(cot) == Parsed(index=1, label="wild cat", how="exact")
    assert p.parse("Reasoning about a truck.\nanswer: CAT").label == "cat"
    # The answer text after the line start also counts when it spans a line break.
    assert p.parse("Looks like a Truck.\nAnswer:\nwild cat").label == "wild cat"
    # Reasoning that merely contains the word "answer" is not an answer line.
    assert p.parse("The answer might be Truck").label == "Truck"
    # An empty final answer is unknown, whatever the reasoning said.
    assert p.parse("It is a cat.\nAnswer:").how == "unknown"


def test_embedding_fallback_with_minilm(minilm):
    calls = []

    def embed(texts):
        calls.append(list(texts))
        return minilm.encode_text(texts)

    p = AnswerParser(["cat", "truck", "building"], embed=embed)
    assert p.parse("a small kitten") == Parsed(index=0, label="cat", how="embedding")
    assert p.parse("a skyscraper\nwith many floors").label == "building"   # first line only
    assert p.parse("quarterly tax report") == Parsed(index=-1, label=None, how="unknown")
    assert p.parse("truck").how == "exact"                                # no embedding needed
    assert p.parse("").how == "unknown"
    assert calls.count(["cat", "truck", "building"]) == 1                  # class names embedded once
    assert len(calls) == 4                                                 # classes + 3 outputs
    strict = AnswerParser(["cat", "truck", "building"], embed=embed, min_similarity=0.9)
    assert strict.parse("a small kitten").how == "unknown"
    outputs = ["a small kitten", "Building", "quarterly tax report", "a skyscraper"]
    batch = p.parse_many(outputs)
    assert batch == [p.parse(o) for o in outputs]
    assert [b.label for b in batch] == ["cat", "building", None, "building"]


def test_mismatch_rate_and_bad_class_names():
    p = AnswerParser(CLASSES)
    parsed = [p.parse(o) for o in ["cat", "nothing", "", "TRUCK"]]
    assert mismatch_rate(parsed) == pytest.approx(0.5)
    assert mismatch_rate([]) == 0.0
    with pytest.raises(ConfigError, match="at least one class"):
        AnswerParser([])
    with pytest.raises(ConfigError, match="non-empty"):
        AnswerParser(["cat", " "])


def test_normalize():
    assert normalize("  Fire-Trucks__and   C++ books!  ") == "fire truck and c book"
    assert normalize("glass bus") == "glass bus"
