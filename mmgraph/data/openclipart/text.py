"""The text of an item: its RDF metadata cleaned, label words removed, joined into one string."""
from __future__ import annotations

import re
from typing import Iterable, NamedTuple, Sequence

#: Words removed from the texts for each category (when it is a kept class), besides the
#: folder name itself: plural/singular forms and stems that name the category in other words.
LABEL_WORDS: dict[str, tuple[str, ...]] = {
    "animals": ("animals", "animal"),
    "buildings": ("buildings", "building"),
    "buttons": ("buttons", "button"),
    "computer": ("computer", "computers", "computing"),
    "containers": ("containers", "container"),
    "decorations": ("decorations", "decoration", "decorative"),
    "education": ("education", "educational"),
    "electronics": ("electronics", "electronic"),
    "food": ("food", "foods"),
    "geography": ("geography", "geographic", "geographical"),
    "logos": ("logos", "logo"),
    "office": ("office", "offices"),
    "people": ("people", "peoples", "person", "persons"),
    "plants": ("plants", "plant"),
    "recreation": ("recreation", "recreational"),
    "science": ("science", "sciences", "scientific"),
    "shapes": ("shapes", "shape"),
    "signs_and_symbols": ("signs and symbols", "signs", "sign", "symbols", "symbol"),
    "special": ("special",),
    "tools": ("tools", "tool"),
    "transportation": ("transportation", "transport", "transports"),
    "unsorted": ("unsorted",),
}
#: Keywords that are artefacts of the library's metadata export, not descriptions.
ARTIFACT_KEYWORDS = frozenset({"hash"})

_PERL_REF = re.compile(r"^(?:\s*(?:hash|array|scalar|code|ref|glob)\(0x[0-9a-f]+\)\s*)+$", re.I)
_HEX_DIGEST = re.compile(r"^\s*[0-9a-f]{16,}\s*$", re.I)
_CONTACT = re.compile(r"^(?:\s*(?:[\w.+-]+@[\w-]+(?:\.[\w-]+)+|(?:https?://|www\.)\S+)[\s,;]*)+$",
                      re.I)


class ItemText(NamedTuple):
    """The cleaned text of one item and what the cleaning did."""
    text: str | None               # title. description. keywords: k1, k2 (None when all empty)
    keywords: list[str]            # cleaned, unique, in first-occurrence order
    junk_description: bool         # the description was a Perl reference, digest or address
    label_words_removed: bool      # the label pattern changed the title, description or keywords
    title: str = ""                # the tidied title, junk removed, label words kept ("" when none)


def label_words(categories: Iterable[str]) -> list[str]:
    """The words and phrases removed from texts for ``categories`` (longest first).

    Known categories use :data:`LABEL_WORDS`; any other name contributes itself (underscores
    read as spaces) and its singular (trailing ``s`` removed) or plural (``s`` added).
    """
    words: set[str] = set()
    for cat in categories:
        base = cat.lower().replace("_", " ").replace("-", " ").strip()
        words.add(base)
        if cat in LABEL_WORDS:
            words.update(LABEL_WORDS[cat])
        else:
            words.add(base[:-1] if base.endswith("s") else base + "s")
    return sorted((w for w in words if w), key=lambda w: (-len(w), w))


def label_pattern(words: Sequence[str]) -> re.Pattern | None:
    """A case-insensitive whole-word pattern for ``words`` (``_``/``-`` count as spaces)."""
    if not words:
        return None
    alts = [r"[\s_-]+".join(re.escape(p) for p in w.split()) for w in words]
    return re.compile(r"(?<![a-z0-9])(?:" + "|".join(alts) + r")(?![a-z0-9])", re.I)


def _tidy(s: str) -> str:
    s = re.sub(r"\s+([.,;:!?])", r"\1", re.sub(r"\s+", " ", s)).strip(" \t,;:-_/|")
    return s if re.search(r"[^\W_]", s) else ""


def remove_label_words(text: str, pattern: re.Pattern | None) -> str:
    """``text`` with every whole-word match of ``pattern`` removed and whitespace tidied."""
    if pattern is None or not text:
        return text
    out = pattern.sub(" ", text)
    out = re.sub(r"\(\s*\)", " ", out)
    return _tidy(out)


def _join(parts: list[str]) -> str:
    out = parts[0]
    for p in parts[1:]:
        out += (" " if out[-1] in ".!?" else ". ") + p
    return out


def _is_junk(s: str) -> bool:
    return bool(_PERL_REF.match(s) or _HEX_DIGEST.match(s) or _CONTACT.match(s))


def _keywords(raw: Iterable[str]) -> list[str]:
    """Normalised keywords: lower case, ``_`` as space, split on ``,``/``;``, artefacts out."""
    out = []
    for item in raw:
        for kw in re.split(r"[,;]", item or ""):
            kw = _tidy(kw.lower().replace("_", " "))
            if kw and kw not in ARTIFACT_KEYWORDS and not _is_junk(kw):
                out.append(kw)
    return out


def item_text(title: str, description: str, keywords: Iterable[str],
              pattern: re.Pattern | None) -> ItemText:
    """Clean one item's metadata and join it; ``pattern`` (or ``None``) matches label words."""
    title = _tidy(title.replace("_", " "))
    desc = description.strip()
    junk = bool(desc) and _is_junk(desc)
    if junk:
        desc = ""
    if title and _is_junk(title):
        title = ""
    plain_title = title
    kws = _keywords(keywords)
    removed = False
    if pattern is not None:
        before = (title, desc, kws)
        title, desc = remove_label_words(title, pattern), remove_label_words(desc, pattern)
        kws = [w for w in (remove_label_words(x, pattern) for x in kws) if w]
        removed = before != (title, desc, kws)
    if desc and desc.casefold().rstrip(".") == title.casefold().rstrip("."):
        desc = ""                            # a description that repeats the title
    kws = list(dict.fromkeys(kws))           # unique, first occurrence order
    parts = [p for p in (title, desc) if p]
    if kws:
        parts.append("keywords: " + ", ".join(kws))
    return ItemText(_join(parts) if parts else None, kws, junk, removed, plain_title)
