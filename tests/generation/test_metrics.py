import math
import warnings

import pytest
from nltk.translate.bleu_score import corpus_bleu
from pycocoevalcap.cider.cider import Cider
from torchmetrics.text import ROUGEScore

from mmgraph.errors import DataError
from mmgraph.generation import bleu4, cider_d, cut_prediction, generation_metrics, rouge_l

PREDS = [
    "the cat sat on the mat near the door",
    "a man is riding a red bike down the hill",
    "Paris is the capital city of France and its largest city",
    "the river floods every spring after the snow melts",
]
REFS = [
    ["the cat sat on a mat near the door", "a cat was sitting on the mat"],
    ["a man rides a red bike down a hill"],
    ["Paris is the capital of France and its largest city"],
    ["every spring the river floods when the snow melts"],
]


@pytest.mark.parametrize("text, expected", [
    ("Hi. This is long. More.", "Hi. This is long. More."),  # first "." at 2: no cut at all
    ("Hello world. More text.", "Hello world"),
    ("abcde. x", "abcde. x"),      # "." at index 5: not > 5
    ("abcdef. x", "abcdef"),       # "." at index 6: cut, "." dropped
    ("no full stop here", "no full stop here"),
    ("", ""),
    ("The river floods. Then it dries. Again.", "The river floods"),
])
def test_cut_prediction(text, expected):
    assert cut_prediction(text) == expected


def test_bleu4_matches_nltk_corpus_bleu():
    expected = corpus_bleu([[r.split() for r in refs] for refs in REFS], [p.split() for p in PREDS])
    assert 0 < expected < 1
    # torchmetrics computes in float32
    assert bleu4(PREDS, REFS) == pytest.approx(expected, rel=1e-6)
    single = [r[0] for r in REFS]
    expected = corpus_bleu([[r.split()] for r in single], [p.split() for p in PREDS])
    assert bleu4(PREDS, single) == pytest.approx(expected, rel=1e-6)


def test_bleu4_is_case_sensitive_whitespace_tokens():
    # MMGL's BLEU keeps case and punctuation attached to words
    assert bleu4(["The Cat sat on the mat"], ["the cat sat on the mat"]) < 1
    assert bleu4(["the cat sat on the mat."], ["the cat sat on the mat"]) < 1


def test_rouge_l_hand_computed_lcs():
    preds = ["the cat sat on the mat", "a b c d", "Police killed the gunman"]
    refs = ["the cat is on the mat", "a c e", "police kill the gunman"]
    # LCS lengths by hand: "the cat on the mat" = 5 of 6/6; "a c" = 2 of 4/3;
    # "police the gunman" = 3 of 4/4 (lower-cased, no stemming)
    def f(lcs, n_pred, n_ref):
        p, r = lcs / n_pred, lcs / n_ref
        return 2 * p * r / (p + r)
    per_item = [f(5, 6, 6), f(2, 4, 3), f(3, 4, 4)]
    assert per_item == pytest.approx([5 / 6, 4 / 7, 3 / 4])
    assert rouge_l(preds, refs) == pytest.approx(sum(per_item) / 3, abs=1e-12)
    for p, r, e in zip(preds, refs, per_item):
        assert rouge_l([p], [r]) == pytest.approx(e, abs=1e-12)


def test_rouge_l_matches_torchmetrics():
    # MMGL's scorer; rougeLsum (the default) needs NLTK punkt data, so only the offline keys
    scorer = ROUGEScore(rouge_keys=("rouge1", "rouge2", "rougeL"))
    expected = float(scorer(PREDS, REFS)["rougeL_fmeasure"])
    assert rouge_l(PREDS, REFS) == pytest.approx(expected, rel=1e-6)
    scorer = ROUGEScore(rouge_keys=("rouge1", "rouge2", "rougeL"))
    single = [r[0] for r in REFS]
    expected = float(scorer(PREDS, single)["rougeL_fmeasure"])
    assert rouge_l(PREDS, single) == pytest.approx(expected, rel=1e-6)


def test_cider_d_matches_pycocoevalcap():
    gts = {i: r for i, r in enumerate(REFS)}
    res = {i: [p] for i, p in enumerate(PREDS)}
    expected, _ = Cider(n=4, sigma=6.0).compute_score(gts, res)
    assert cider_d(PREDS, REFS) == pytest.approx(float(expected), abs=1e-12)
    assert 0 < cider_d(PREDS, REFS) < 10


def test_cider_d_properties():
    refs = [r[0] for r in REFS]
    exact = cider_d(refs, refs)
    wrong = cider_d(["zzz qqq www", "xxx yyy", "vvv uuu ttt sss", "ooo"], refs)
    assert wrong == 0.0
    assert exact > cider_d(PREDS, refs) > wrong
    # exact copies of 4+-token references sharing no n-gram with other items: every n-gram
    # weight is log(2) - log(1), every cosine is 1, so 10 * mean(1, 1, 1, 1) = 10
    disjoint = ["alpha beta gamma delta", "one two three four five"]
    assert cider_d(disjoint, disjoint) == pytest.approx(10.0, abs=1e-12)
    # one-item corpus: every idf is log(1) - log(1) = 0, so even an exact copy scores 0
    assert cider_d(["the cat sat on the mat"], ["the cat sat on the mat"]) == 0.0


def test_perfect_predictions():
    refs = [r[0] for r in REFS]
    m = generation_metrics(refs, refs)
    assert set(m) == {"bleu4", "rouge_l", "cider_d"}
    assert all(isinstance(v, float) for v in m.values())
    assert m["bleu4"] == pytest.approx(1.0, abs=1e-6)
    assert m["rouge_l"] == 1.0
    assert m["cider_d"] == pytest.approx(cider_d(refs, refs))
    # MMGL's cut removes what follows the first "." (index > 5) before scoring
    cut = generation_metrics([r + ". And then some more words" for r in refs], refs)
    assert cut == pytest.approx(m)
    uncut = generation_metrics([r + ". And then some more words" for r in refs], refs, cut=False)
    assert uncut["bleu4"] < m["bleu4"] and uncut["rouge_l"] < 1


@pytest.mark.parametrize("preds, refs, match", [
    ([], ["a"], "prediction list is empty"),
    (["a"], [], "reference list is empty"),
    (["a", "b"], ["a"], "2 predictions but 1 references"),
    (["a"], [[]], "non-empty list"),
    ("a", ["a"], "not one string"),
])
def test_bad_input_raises_data_error(preds, refs, match):
    for fn in (generation_metrics, bleu4, rouge_l, cider_d):
        with pytest.raises(DataError, match=match) as info:
            fn(preds, refs)
        assert "\n" not in str(info.value)


def test_empty_reference_is_scored_with_one_counted_warning():
    preds = ["the cat sat on the mat", "a dog ran in the park", "something"]
    refs = ["the cat sat on the mat", "a dog ran in the park", ""]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        m = generation_metrics(preds, refs)
    messages = [str(w.message) for w in caught if "reference texts are empty" in str(w.message)]
    assert messages == ["generation metrics: 1 of 3 reference texts are empty; those items are "
                        "scored against an empty reference"]
    assert m["rouge_l"] == pytest.approx(2 / 3)
    assert all(math.isfinite(v) for v in m.values())
    with pytest.warns(UserWarning, match="1 of 1 reference texts are empty"):
        assert cider_d(["x y"], [""]) == 0.0
