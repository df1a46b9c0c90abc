"""Text-generation metrics of MMGL's protocol: BLEU-4, ROUGE-L and CIDEr-D.

Follows the evaluation loop of MMGL (Yoon et al. 2023, "Multimodal Graph Learning for Generative
Tasks"), ``evaluate_loop`` in ``language_modelling/run_generation.py`` of
github.com/minjiyoon/MMGL, and computes every score with the field's maintained scorers:

* **Cut rule** (:func:`cut_prediction`): MMGL takes the *first* ``"."`` of a generated text and,
  only when its index is greater than 5, keeps the text before it (the ``"."`` dropped);
  otherwise the text is kept whole. A first ``"."`` at index 0..5 therefore means *no* cut,
  even if a later ``"."`` exists. Only predictions are cut; references are kept as given.
* **BLEU-4** (:func:`bleu4`): corpus-level BLEU with uniform weights over 1..4-grams, no
  smoothing, brevity penalty from the closest reference length, computed by torchmetrics'
  ``BLEUScore(n_gram=4)`` exactly as MMGL does. Its tokenizer is ``str.split`` (whitespace
  tokens, case kept, punctuation attached), which is what "whitespace tokens" means;
  sacreBLEU with ``tokenize="none"`` would give the same counts, so the library MMGL used is kept.
* **ROUGE-L** (:func:`rouge_l`): the LCS F-measure of Google's ``rouge-score`` package
  (``RougeScorer(["rougeL"])``, no stemming), averaged over items; with several references an
  item takes its best F-measure (``score_multi``), as torchmetrics' ``ROUGEScore`` (MMGL's
  scorer, ``accumulate="best"``) does. Its tokenizer lower-cases and keeps runs of
  ``[a-z0-9]`` only, the same normalisation torchmetrics applies, so the two agree.
* **CIDEr-D** (:func:`cider_d`): coco-caption's CIDEr-D scorer as shipped in ``pycocoevalcap``
  (``Cider``: n = 4, sigma = 6, clipped tf-idf n-gram vectors, Gaussian length penalty, x10),
  which is also the code MMGL copied into ``wikiweb2m/cider/``. MMGL feeds it the raw decoded
  strings: no PTB tokenizer (it needs Java) and no lower-casing, so tokens are whitespace
  tokens with case kept, here as well. Document frequencies come from the references of the
  scored corpus, so the score depends on the whole corpus: a corpus of one item always scores
  0 (every idf is ``log 1 - log 1 = 0``), and scores are on the usual CIDEr scale (10 for
  exact copies of 4+-token references that share no n-gram with other items' references).

Differences from MMGL's code, all fixes of what would not run there: MMGL wraps each reference
in a list twice before calling its CIDEr scorer and then indexes the returned float with
``'rougeLsum_fmeasure'``; both would raise, so no CIDEr number can come from that exact code.
MMGL's ROUGE uses torchmetrics' default keys including ``rougeLsum`` (needs NLTK's punkt data);
only ``rougeL`` is reported here.

Empty reference strings are kept: the item is scored against an empty reference (BLEU counts
its prediction's length with a reference length of 0, ROUGE-L gives it 0, CIDEr-D gives it 0),
as MMGL would, and one warning says how many there are. Empty prediction or reference
*lists*, or lists of different lengths, raise :class:`~mmgraph.errors.DataError`.

All functions return Python floats.
"""
from __future__ import annotations

import warnings
from typing import Sequence, Union

from mmgraph.errors import DataError

References = Union[Sequence[str], Sequence[Sequence[str]]]

#: MMGL keeps the text before the first "." only when that "." is at an index above this.
CUT_MIN_INDEX = 5


def cut_prediction(text: str) -> str:
    """Cut a generated text at its first ``"."`` when that ``"."`` is at index > 5 (MMGL's rule).

    Mirrors ``stop_idx = caption.find('.'); caption[:stop_idx] if stop_idx > 5 else caption``
    in MMGL's ``evaluate_loop`` (``language_modelling/run_generation.py``). The ``"."`` itself
    is dropped; when the first ``"."`` is at index 0..5 or there is none, the text is unchanged.

    >>> cut_prediction("The river floods. Then it dries.")
    'The river floods'
    >>> cut_prediction("Hi. This is long. More.")
    'Hi. This is long. More.'
    """
    stop = text.find(".")
    return text[:stop] if stop > CUT_MIN_INDEX else text


def _check(predictions: Sequence[str], references: References) -> list[list[str]]:
    """Validate the inputs and return the references as one list of strings per item."""
    if isinstance(predictions, str) or isinstance(references, str):
        raise DataError("generation metrics: predictions and references must be lists of "
                        "strings, not one string")
    if len(predictions) == 0:
        raise DataError("generation metrics: the prediction list is empty; nothing to score")
    if len(references) == 0:
        raise DataError("generation metrics: the reference list is empty; nothing to score")
    if len(predictions) != len(references):
        raise DataError(f"generation metrics: {len(predictions)} predictions but "
                        f"{len(references)} references; give one reference (or list) per item")
    refs: list[list[str]] = []
    for i, (p, r) in enumerate(zip(predictions, references)):
        if not isinstance(p, str):
            raise DataError(f"generation metrics: prediction {i} is {type(p).__name__}, not str")
        r = [r] if isinstance(r, str) else list(r)
        if not r or not all(isinstance(x, str) for x in r):
            raise DataError(f"generation metrics: reference {i} must be a string or a non-empty "
                            f"list of strings")
        refs.append(r)
    empty = sum(1 for r in refs for x in r if not x.strip())
    if empty:
        warnings.warn(f"generation metrics: {empty} of {sum(map(len, refs))} reference texts are "
                      f"empty; those items are scored against an empty reference", stacklevel=3)
    return refs


def bleu4(predictions: Sequence[str], references: References) -> float:
    """Corpus-level BLEU-4 in [0, 1] on whitespace tokens (torchmetrics ``BLEUScore(n_gram=4)``).

    ``references`` holds one string or one list of strings per prediction. No smoothing: a
    corpus without any matching 4-gram scores 0. Predictions are scored as given (not cut).
    """
    from torchmetrics.text import BLEUScore

    refs = _check(predictions, references)
    return float(BLEUScore(n_gram=4)(list(predictions), refs).double())


def rouge_l(predictions: Sequence[str], references: References) -> float:
    """ROUGE-L F-measure in [0, 1] averaged over items (``rouge_score``'s ``RougeScorer``).

    Each item's F-measure is that of the longest common subsequence of its lower-cased
    alphanumeric tokens; with several references the best one counts. No stemming.
    """
    from rouge_score import rouge_scorer

    refs = _check(predictions, references)
    scorer = rouge_scorer.RougeScorer(["rougeL"], use_stemmer=False)
    total = 0.0
    for pred, r in zip(predictions, refs):
        total += scorer.score_multi(r, pred)["rougeL"].fmeasure
    return total / len(refs)


def cider_d(predictions: Sequence[str], references: References) -> float:
    """Corpus CIDEr-D (pycocoevalcap's ``Cider``, n = 4, sigma = 6) on whitespace tokens.

    Inputs are scored as MMGL scores them: whitespace tokens, case kept, no PTB tokenizer.
    Returns the mean of the per-item scores (0 when no reference has any token). Document
    frequencies come from this corpus' references, so a one-item corpus always scores 0.
    """
    from pycocoevalcap.cider.cider import Cider

    refs = _check(predictions, references)
    if not any(x.split() for r in refs for x in r):
        return 0.0  # pycocoevalcap fails on a corpus without a single reference n-gram
    gts = {i: [" ".join(x.split()) for x in r] for i, r in enumerate(refs)}
    res = {i: [" ".join(p.split())] for i, p in enumerate(predictions)}
    score, _ = Cider(n=4, sigma=6.0).compute_score(gts, res)
    return float(score)


def generation_metrics(predictions: Sequence[str], references: References, *,
                       cut: bool = True) -> dict[str, float]:
    """BLEU-4, ROUGE-L and CIDEr-D of generated texts, as MMGL reports them.

    Args:
        predictions: one generated text per item.
        references: one reference string, or a list of reference strings, per item.
        cut: apply :func:`cut_prediction` to each prediction first (MMGL does).

    Returns:
        ``{"bleu4": ..., "rouge_l": ..., "cider_d": ...}``; BLEU-4 and ROUGE-L in [0, 1],
        CIDEr-D on its usual scale (0 to about 10).

    Raises:
        DataError: empty prediction or reference lists, or lists of different lengths.
    """
    refs = _check(predictions, references)  # warns about empty references once, here
    preds = [cut_prediction(p) for p in predictions] if cut else list(predictions)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the per-metric checks would repeat the warning
        return {"bleu4": bleu4(preds, refs), "rouge_l": rouge_l(preds, refs),
                "cider_d": cider_d(preds, refs)}
