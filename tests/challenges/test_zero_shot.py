"""Zero-shot models (thesis ch. 6): Table 14's score variability over the misclassified pairs, and the shipped
descriptor files (object only by default, the first lists with context kept by name)."""

from __future__ import annotations

import json
import math
import re
from types import SimpleNamespace

import pytest
import torch
from fixtures.runner import one_line_error, rrx
from omegaconf import OmegaConf
from torch import nn
from torch.utils.data import TensorDataset

from rrx.challenges.zero_shot import ZeroShotChallenge, sv_of_pairs, table14
from rrx.errors import RRXError
from rrx.models.zero_shot import DESCRIPTOR_DIR, read_descriptors
from rrx.record import Record
from rrx.runtime import Runtime

IN9 = [
    "00_dog",
    "01_bird",
    "02_wheeled vehicle",
    "03_reptile",
    "04_carnivore",
    "05_insect",
    "06_musical instrument",
    "07_primate",
    "08_fish",
]
RIVAL10 = ["truck", "car", "plane", "ship", "cat", "dog", "equine", "deer", "frog", "bird"]
SYNTHETIC = ["circle", "square", "triangle", "cross", "ring", "star", "diamond", "bar", "hexagon", "half moon"]
NAN = float("nan")

# ---- score variability over the misclassified pairs (Table 14) --------------------------------------------------

# Four (original, challenge) pairs of class 0 with two classes. Pairs 0 and 3 are classified correctly on the
# challenge image (pred = target, so there Pred. repeats Target); pairs 1 and 2 are predicted as class 1.
S_ORIGINAL = torch.tensor([[0.5, 0.2], [0.5, 0.4], [0.4, 0.2], [0.4, 0.1]])
S_CHALLENGE = torch.tensor([[0.4, 0.1], [0.25, 0.5], [0.3, 0.35], [0.5, 0.1]])
LABELS = torch.tensor([0, 0, 0, 0])
# SV of the target (class 0):        0.2, 0.5, 0.25, -0.25
# SV of the predicted class (0,1,1,0): 0.2, -0.25, -0.75, -0.25
ERRORS = {
    "target": {"sv_plus": 37.5, "n_plus": 2, "sv_minus": NAN, "n_minus": 0},  # (50 + 25) / 2
    "pred": {"sv_plus": NAN, "n_plus": 0, "sv_minus": 50.0, "n_minus": 2},  # (25 + 75) / 2
    "pairs": 2,
}
ALL_IMAGES = {
    "target": {"sv_plus": 95 / 3, "n_plus": 3, "sv_minus": 25.0, "n_minus": 1},  # (20 + 50 + 25) / 3
    "pred": {"sv_plus": 20.0, "n_plus": 1, "sv_minus": 125 / 3, "n_minus": 3},  # (25 + 75 + 25) / 3
    "pairs": 4,
}


def assert_same(got: dict, expected: dict) -> None:
    """Nested dicts equal, NaN equal to NaN."""
    assert set(got) == set(expected)
    for key, value in expected.items():
        if isinstance(value, dict):
            assert_same(got[key], value)
        elif isinstance(value, float) and math.isnan(value):
            assert math.isnan(got[key]), key
        else:
            assert got[key] == pytest.approx(value), key


def test_sv_is_taken_over_the_misclassified_pairs_and_over_all_pairs():
    sv = sv_of_pairs(S_ORIGINAL, S_CHALLENGE, LABELS)
    assert_same(sv["errors"], ERRORS)
    assert_same(sv["all_images"], ALL_IMAGES)


class ScoresAsImages(nn.Module):
    """A zero-shot backbone whose "image" is its class scores (K,), with one text per class."""

    def __init__(self, classes: int):
        super().__init__()
        self.texts = [f"text {k}" for k in range(classes)]
        self.register_buffer("owner", torch.arange(classes))

    def class_scores(self, features):
        return features

    def similarities(self, features):
        return features


class HandMadeDataset:
    classes = ["00_a", "01_b"]

    def variation_set(self, variation):
        return TensorDataset(S_ORIGINAL if variation == "original" else S_CHALLENGE, LABELS)


def test_the_zero_shot_challenge_reports_sv_over_the_misclassified_pairs():
    """The challenge end to end on hand-made scores: Table 14's Target and Pred. are the misclassified pairs'
    (rrx once averaged every pair, where the Pred. column mostly repeats Target), the all-pairs numbers kept beside."""
    model = SimpleNamespace(backbone=ScoresAsImages(2), eval=lambda: None, forward_features=lambda x: x)
    runtime = Runtime(torch.device("cpu"), amp=False, batch_size=3, num_workers=0, progress=False)
    out = ZeroShotChallenge(OmegaConf.create({"variations": ["mixed_rand"]})).evaluate(
        model, HandMadeDataset(), runtime
    )
    assert out["accuracy"]["mixed_rand"] == 0.5
    run = Record("evaluate", {"architecture": "CLIP", "method": "Descriptors"}, challenges=out)
    table = table14([run]).set_index("Metric")
    assert table.loc["SV+", "Target"] == pytest.approx(37.5) and math.isnan(
        table.loc["SV+", "Pred."]
    )  # all pairs: 31.67, 20
    assert math.isnan(table.loc["SV-", "Target"]) and table.loc["SV-", "Pred."] == pytest.approx(50.0)
    assert list(table.columns) == [
        "Challenge",
        "Model",
        "Target",
        "Pred.",
        "Errors",
        "Target (all)",
        "Pred. (all)",
        "Pairs",
    ]
    assert_same(out["score_variability"]["mixed_rand"], {"errors": ERRORS, "all_images": ALL_IMAGES})
    assert table.loc["SV+", "Target (all)"] == pytest.approx(95 / 3) and table.loc[
        "SV-", "Pred. (all)"
    ] == pytest.approx(125 / 3)
    assert (table["Errors"] == 2).all() and (table["Pairs"] == 4).all()


def test_table14_reads_a_metrics_file_written_before_the_misclassified_pairs():
    """The old flat entry held SV over every pair: it fills the (all) columns, Target and Pred. stay empty."""
    old = {"target": ALL_IMAGES["target"], "pred": ALL_IMAGES["pred"], "pairs": 4}
    run = Record(
        "evaluate", {"architecture": "ALIGN", "method": "Top-1"}, challenges={"score_variability": {"mixed_same": old}}
    )
    table = table14([run]).set_index("Metric")
    assert table["Target"].isna().all() and table["Pred."].isna().all() and table["Errors"].isna().all()
    assert table.loc["SV-", "Target (all)"] == pytest.approx(25.0) and (table["Pairs"] == 4).all()


# ---- descriptor files ---------------------------------------------------------------------------------------------

# words naming a place, a background, a pose in a scene or a person: none belongs in a description of the object
CONTEXT_WORDS = (
    "road",
    "street",
    "highway",
    "water",
    "underwater",
    "sea",
    "ocean",
    "river",
    "lake",
    "pond",
    "sky",
    "runway",
    "air",
    "grass",
    "tree",
    "trees",
    "forest",
    "field",
    "meadow",
    "snow",
    "sand",
    "rock",
    "rocks",
    "leaf",
    "leaves",
    "flower",
    "branch",
    "lily",
    "pad",
    "nest",
    "cage",
    "background",
    "scene",
    "parked",
    "perched",
    "flying",
    "swimming",
    "climbing",
    "lying",
    "held",
    "musician",
    "angler",
    "person",
    "people",
    "indoors",
    "outdoors",
    "wild",
)
CONTEXT = re.compile(r"\b(" + "|".join(CONTEXT_WORDS) + r")\b", re.IGNORECASE)


@pytest.mark.parametrize("name, classes", [("in9", IN9), ("rival10", RIVAL10), ("synthetic", SYNTHETIC)])
def test_default_descriptors_describe_the_object_only(name, classes):
    table = read_descriptors(name, classes)
    assert all(5 <= len(v) <= 8 for v in table.values())
    context = [d for v in table.values() for d in v if CONTEXT.search(d)]
    assert not context, f"{name}.json names a context: {context}"


@pytest.mark.parametrize(
    "name, classes, phrase",
    [
        ("in9_with_context", IN9, "on a road or a street"),
        ("rival10_with_context", RIVAL10, "in the sky or on a runway"),
    ],
)
def test_the_first_descriptors_with_context_load_by_name(name, classes, phrase):
    table = read_descriptors(name, classes)
    assert any(phrase in v for v in table.values()) and all(len(v) == 6 for v in table.values())
    assert sum(any(CONTEXT.search(d) for d in v) for v in table.values()) >= 6  # the word list does catch them


def test_every_shipped_file_says_where_its_lists_come_from():
    files = sorted(DESCRIPTOR_DIR.glob("*.json"))
    assert {p.stem for p in files} >= {"in9", "rival10", "synthetic", "in9_with_context", "rival10_with_context"}
    for path in files:
        source = json.loads(path.read_text()).get("_source")
        assert isinstance(source, str) and len(source) > 40, path
    with pytest.raises(RRXError, match=r"no descriptors for the classes \['source'\]"):
        read_descriptors("in9", ["source"])  # the documentation key is not a class


def test_a_bad_descriptor_file_is_one_error(tmp_path):
    with pytest.raises(
        RRXError, match=r"model.descriptors=in10: no such file \(rrx ships: in9, in9_with_context, rival10"
    ):
        read_descriptors("in10", IN9)
    (tmp_path / "d.json").write_text(json.dumps({"dog": "four legs"}))
    with pytest.raises(RRXError, match=r"the entries \['dog'\] are not lists"):
        read_descriptors(str(tmp_path / "d.json"), ["00_dog"])


def test_cli_unknown_descriptor_name_is_one_error_line_before_any_weights(tmp_path):
    one_line_error(
        rrx(
            "evaluate",
            "model=clip",
            "model.descriptors=in10",
            "dataset.train_per_class=4",
            "dataset.val_per_class=2",
            f"dataset.cache_dir={tmp_path / 'cache'}",
            f"hydra.run.dir={tmp_path / 'a'}",
            check=False,
        ),
        "model.descriptors=in10",
        "in9, in9_with_context, rival10, rival10_with_context, synthetic",
    )
