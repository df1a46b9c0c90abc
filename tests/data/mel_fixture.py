"""A tiny copy of a MEL data set in MIMIC's / M3EL's file layout, for the tests of
:mod:`mmgraph.data.mel`.

:func:`write_mel_fixture` writes what the loader reads in the published archives::

    kb_entity.json      a JSON list of {"id", "qid", "type": "entity", "entity_name" (URL-quoted),
                        "attr" | "desc", "image_list"}
    qid2id.json         one JSON line {"Q...": id}
    <P>_{train,dev,test}.json   JSON lists of {"id", "mentions", "sentence", "imgPath", "answer"}
                        (+ "entities" in M3EL's copies)
    kb_image/           entity images named as in image_list (one in a sub-folder)
    mention_image/      (RichpediaMEL: mention_images/) <imgPath base name up to its first dot>.jpg

JSON is written as ``json.dump`` writes it by default (one line, non-ASCII escaped). Every image
is a real 8x8 PNG or JPEG of its own colour.

What the fixture holds (the tests check each):

- 12 entities, ids 0-11 written in shuffled order; names with URL-quoted UTF-8
  (``Fran%C3%A7ois_Hollande``); Q243 and Q513 list no image; Q567 lists a missing image before
  an existing one; Q64 lists only a missing image; Q72's images sit in a sub-folder.
- train: 5 mentions (one image file missing, one without imgPath, one imgPath with two dots),
  dev: 3 (one nil), test: 4 (one nil, one answer Q4115189 that the KB lacks).
"""
from __future__ import annotations

import json
from pathlib import Path

from PIL import Image

#: (qid, id, URL-quoted entity_name, description, image_list, listed images without a file)
ENTITIES = [
    ("Q157", 0, "Fran%C3%A7ois_Hollande", "président de la République française de 2012 à 2017",
     ["Q157_0.jpg", "Q157_1.png"], []),
    ("Q567", 1, "Angela_Merkel", "Chancellor of Germany from 2005 to 2021",
     ["Q567_0.jpg", "Q567_1.jpg"], ["Q567_0.jpg"]),
    ("Q174", 2, "S%C3%A3o_Paulo", "most populous city of Brazil", ["Q174_0.jpg"], []),
    ("Q76", 3, "Barack_Obama", "44th president of the United States", ["Q76_0.png"], []),
    ("Q243", 4, "Eiffel_Tower", "wrought-iron lattice tower in Paris", [], []),
    ("Q72", 5, "Z%C3%BCrich", "largest city of Switzerland", ["Q72/0.jpg", "Q72/1.jpg"], []),
    ("Q42", 6, "Douglas_Adams", "English writer and humorist", ["Q42_0.jpg"], []),
    ("Q5083", 7, "Seattle", "city in Washington State", ["Q5083_0.jpg"], []),
    ("Q23", 8, "George_Washington", "first president of the United States", ["Q23_0.jpg"], []),
    ("Q513", 9, "Mount_Everest", "highest mountain above sea level", [], []),
    ("Q90", 10, "Paris", "capital of France", ["Q90_0.png"], []),
    ("Q64", 11, "Berlin", "capital of Germany", ["Q64_0.jpg"], ["Q64_0.jpg"]),
]
#: The order the records are written in (the loader sorts them by id).
WRITE_ORDER = [3, 0, 11, 5, 1, 8, 2, 10, 4, 7, 9, 6]
ABSENT_QID = "Q4115189"

#: split -> (id, mentions, sentence, imgPath, answer, image file written?)
MENTIONS = {
    "train": [
        (0, "Fran%C3%A7ois Hollande", "François Hollande speaks in Tulle in 2012.", "train_0.png",
         "Q157", True),
        (1, "Obama", "President Obama at the White House.", "images/train_1.jpeg", "Q76", True),
        (2, "S%C3%A3o Paulo", "The skyline of São Paulo at dusk.", "train_2.photo.png", "Q174", True),
        (3, "Hollande", "Hollande meets the press in Paris.", "train_3.png", "Q157", False),
        (4, "George Washington", "A portrait of George Washington.", "", "Q23", False),
    ],
    "dev": [
        (0, "Merkel", "Angela Merkel in the Bundestag.", "dev_0.jpg", "Q567", True),
        (1, "the crowd", "The crowd outside the stadium.", "dev_1.jpg", "nil", True),
        (2, "Douglas Adams", "Douglas Adams signs books.", "dev_2.jpg", "Q42", True),
    ],
    "test": [
        (0, "Barack Obama", "Barack Obama visits Berlin.", "test_0.jpg", "Q76", True),
        (1, "Will Rogers", "Seattle Mayor Charles L. Smith with Will Rogers, circa 1935.",
         "test_1.jpg", ABSENT_QID, True),
        (2, "Eiffel Tower", "Fireworks over the Eiffel Tower.", "test_2.jpg", "Q243", True),
        (3, "someone", "A man waves from a boat.", "test_3.jpg", "nil", True),
    ],
}
#: name -> (mention file prefixes: MIMIC's, M3EL's; mention image folder as distributed)
LAYOUTS = {
    "wikimel": (("WIKIMEL", "WIKIMEL"), "mention_image"),
    "richpediamel": (("RichpediaMEL", "RichpediaMEL"), "mention_images"),
    "wikidiverse": (("wiki_diverse", "WikiDiverse"), "mention_image"),
}
FILE_SPLITS = {"train": "train", "dev": "val", "test": "test"}


def _colour(i: int) -> tuple[int, int, int]:
    """A distinct colour for image ``i``."""
    return ((37 * i + 40) % 256, (91 * i + 120) % 256, (151 * i + 200) % 256)


def _image(path: Path, i: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (8, 8), _colour(i)).save(path, "PNG" if path.suffix == ".png" else "JPEG")


def _dump(path: Path, value) -> None:
    with open(path, "w", encoding="utf-8") as fp:
        json.dump(value, fp)


def mention_prefix(name: str, desc_key: str = "attr") -> str:
    """The mention files' prefix the fixture writes (M3EL's WikiDiverse name with ``desc``)."""
    mimic, m3el = LAYOUTS[name][0]
    return m3el if desc_key == "desc" else mimic


def write_mel_fixture(root: str | Path, name: str = "wikimel", desc_key: str = "attr", *,
                      mention_dir: str | None = None, prefix: str | None = None) -> Path:
    """Write the fixture of data set ``name`` into ``root`` (created) and return ``root``.

    Args:
        desc_key: ``"attr"`` (MIMIC's files) or ``"desc"`` (M3EL's, whose mention records also
            carry ``"entities"``).
        mention_dir: the mention image folder (default: the name the data set's archive uses).
        prefix: the mention files' prefix (default: :func:`mention_prefix`).
    """
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    prefix = prefix or mention_prefix(name, desc_key)
    mention_dir = mention_dir or LAYOUTS[name][1]
    n = 0
    records = []
    for k in WRITE_ORDER:
        qid, ident, ename, text, images, missing = ENTITIES[k]
        records.append({"id": ident, "qid": qid, "type": "entity", "entity_name": ename,
                        desc_key: text, "image_list": list(images)})
        for img in images:
            if img not in missing:
                _image(root / "kb_image" / img, n)
                n += 1
    _dump(root / "kb_entity.json", records)
    with open(root / "qid2id.json", "w", encoding="utf-8") as fp:
        fp.write(json.dumps({qid: ident for qid, ident, *_ in ENTITIES}) + "\n")
    names = {qid: ename for qid, _, ename, *_ in ENTITIES}
    for file_split in FILE_SPLITS:
        rows = []
        for ident, words, sentence, img_path, answer, written in MENTIONS[file_split]:
            rec = {"id": ident, "mentions": words, "sentence": sentence, "imgPath": img_path,
                   "answer": answer}
            if desc_key == "desc":
                rec["entities"] = names.get(answer, answer)
            rows.append(rec)
            if written:
                stem = img_path.rsplit("/", 1)[-1].split(".", 1)[0]
                _image(root / mention_dir / f"{stem}.jpg", n)
                n += 1
        _dump(root / f"{prefix}_{file_split}.json", rows)
    return root
