"""ImageNet-1k class index -> dataset class, to score an off-the-shelf ImageNet-1k model on IN-9 or RIVAL10 (the
datasets' ``Benchmark.imagenet_label_map`` read them).

- IN-9, ``dataset.label_map``:
  - ``reference`` (default): ``maps/in_to_in9.json``, the reference evaluator's map (MadryLab/backgrounds_challenge
    ``in_to_in9.json``, which its ``challenge_eval.py`` and ``in9_eval.py`` read), so a published IN-9 number of an
    ImageNet-1k model is reproduced. Counts per class: 116, 52, 42, 36, 35, 27, 26, 20, 16 (370 of 1000 classes).
  - ``wordnet``: ``maps/in_to_in9_wordnet.json``, derived from the WordNet 3.0 hierarchy by
    ``scripts/make_imagenet_maps.py``, not the reference's: an ImageNet class belongs to the first IN-9 class (in
    label order: dog, bird, wheeled vehicle, reptile, carnivore, insect, musical instrument, primate, fish) whose
    synset is among its ancestors, so carnivore holds the carnivores that are not dogs. Counts per class: 118, 59,
    44, 36, 40, 27, 26, 20, 16 (386 classes). It differs from the reference in exactly 16 classes, which the
    reference sends to none of the 9: 80-86 (grouse, ptarmigan, prairie chicken, peacock, quail, partridge),
    171-172 (Italian greyhound, whippet), 281-285 (the domestic cats), 575 (golf cart) and 660 (mobile home).
- RIVAL10: from the dataset's own meta files (``wnid_to_class.json``, ``label_mappings.json``), whose
  ImageNet classes are looked up among the ImageNet-1k synsets in index order (timm's list).
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import torch

from rrx.errors import check_choice

log = logging.getLogger(__name__)

MAPS = Path(__file__).resolve().parent / "maps"
IN9_CLASSES = (
    "dog",
    "bird",
    "wheeled vehicle",
    "reptile",
    "carnivore",
    "insect",
    "musical instrument",
    "primate",
    "fish",
)
IMAGENET_CLASSES = 1000


def imagenet_wnids() -> list[str]:
    """The 1000 ImageNet-1k synsets in class-index order (sorted wnids, as every ImageNet-1k model is labelled)."""
    from timm.data import ImageNetInfo

    info = ImageNetInfo()
    return [info.index_to_label_name(i) for i in range(IMAGENET_CLASSES)]


def imagenet_class_names() -> list[str]:
    """The 1000 ImageNet-1k class names in class-index order ("tench", "goldfish", ...), as torchvision ships them
    (offline, with its weights' metadata)."""
    from torchvision.models import ResNet18_Weights

    return list(ResNet18_Weights.IMAGENET1K_V1.meta["categories"])


IN9_MAPS = {"reference": "in_to_in9.json", "wordnet": "in_to_in9_wordnet.json"}  # dataset.label_map -> file


def in9_map(name: str = "reference") -> torch.Tensor:
    """(1000,) IN-9 class of each ImageNet-1k class, -1 for none, by the map ``name`` (``IN9_MAPS``)."""
    check_choice("dataset.label_map", name, list(IN9_MAPS))
    table = json.loads((MAPS / IN9_MAPS[name]).read_text())
    return torch.tensor([table[str(i)] for i in range(IMAGENET_CLASSES)])


def rival10_map(wnid_to_class: dict, label_mappings: dict) -> torch.Tensor:
    """Each ImageNet-1k class whose ImageNet name RIVAL10's meta maps to a RIVAL10 label gets that label."""
    index = {wnid: i for i, wnid in enumerate(imagenet_wnids())}
    out = torch.full((IMAGENET_CLASSES,), -1)
    outside = []
    for wnid, name in wnid_to_class.items():
        if name not in label_mappings:
            continue
        if wnid not in index:
            outside.append(wnid)
            continue
        out[index[wnid]] = int(label_mappings[name][1])
    if outside:
        log.warning(
            "RIVAL10 meta: %d wnids are not ImageNet-1k classes and are left out: %s", len(outside), outside[:5]
        )
    return out
