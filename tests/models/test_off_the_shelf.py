"""Evaluating models rrx did not train: ImageNet-1k classifiers through a class mapping, zero-shot CLIP / ALIGN,
and the adversarial-backgrounds challenge."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from fixtures.in9 import write_in9
from fixtures.rival10 import write_rival10
from fixtures.runner import one_line_error, rrx
from fixtures.vlm import write_tiny_vlm
from torch import nn

from rrx.challenges.adversarial_backgrounds import fooling_backgrounds, stats_indices
from rrx.challenges.zero_shot import box_stats, score_variability, split_sv
from rrx.data.label_maps import imagenet_wnids, in9_map, rival10_map
from rrx.errors import RRXError
from rrx.models import create_model, model_config
from rrx.models.classifier import map_logits
from rrx.models.zero_shot import descriptor_sentence, read_descriptors

# ---- the ImageNet-1k -> IN-9 mapping ----------------------------------------------------------------------------


def test_wordnet_in9_map_counts_and_the_contiguous_imagenet_ranges():
    """ImageNet-1k's index ranges of dogs (151-268), primates (365-384), insects (300-326), reptiles (33-68),
    fish (0-6 and 389-397) and birds (7-24, 80-100, 127-146) are public knowledge; the WordNet-derived file must
    agree with them, and non-dog carnivores (wolves 269-..., cats, bears, mustelids, pandas) go to carnivore."""
    label = in9_map("wordnet").tolist()
    members = {k: {i for i, c in enumerate(label) if c == k} for k in range(-1, 9)}
    assert members[0] == set(range(151, 269))
    assert members[1] == set(range(7, 25)) | set(range(80, 101)) | set(range(127, 147))
    assert members[3] == set(range(33, 69))
    assert members[5] == set(range(300, 327))
    assert members[7] == set(range(365, 385))
    assert members[8] == set(range(0, 7)) | set(range(389, 398))
    assert {269, 281, 291, 294, 356, 360, 387, 388} <= members[4] and not members[4] & members[0]
    assert {402, 420, 486, 546, 889} <= members[6]  # acoustic guitar, banjo, cello, electric guitar, violin
    assert {407, 436, 444, 511, 717, 751, 817} <= members[
        2
    ]  # ambulance, station wagon, tandem, convertible, pickup, racer, sports car
    assert [len(members[k]) for k in range(9)] == [118, 59, 44, 36, 40, 27, 26, 20, 16]
    assert len(members[-1]) == 1000 - 386 and 150 in members[-1]  # a sea lion is a pinniped, not a carnivore in WordNet


# The ImageNet-1k classes MadryLab's in_to_in9.json (the reference evaluator's map) sends to none of the 9 where
# WordNet puts them in one: black grouse, ptarmigan, ruffed grouse, prairie chicken, peacock, quail, partridge;
# Italian greyhound, whippet; tabby, tiger cat, Persian, Siamese, Egyptian cat; golf cart; mobile home.
REFERENCE_NONE = {
    80: 1,
    81: 1,
    82: 1,
    83: 1,
    84: 1,
    85: 1,
    86: 1,
    171: 0,
    172: 0,
    281: 4,
    282: 4,
    283: 4,
    284: 4,
    285: 4,
    575: 2,
    660: 2,
}  # index -> its WordNet class


def test_the_default_in9_map_is_the_reference_evaluators():
    """The default map differs from the WordNet one in exactly the 16 classes above, which it sends to -1, so its
    per-class counts are WordNet's minus those (and a published IN-9 number of an ImageNet model is reproduced)."""
    reference, wordnet = in9_map(), in9_map("wordnet")
    assert torch.equal(reference, in9_map("reference"))
    differ = set(torch.nonzero(reference != wordnet).flatten().tolist())
    assert differ == set(REFERENCE_NONE)
    assert all(reference[i] == -1 and wordnet[i] == c for i, c in REFERENCE_NONE.items())
    wordnet_counts = [int((wordnet == k).sum()) for k in range(9)]
    removed = [sum(1 for c in REFERENCE_NONE.values() if c == k) for k in range(9)]
    assert [int((reference == k).sum()) for k in range(9)] == [w - r for w, r in zip(wordnet_counts, removed)]
    assert [int((reference == k).sum()) for k in range(9)] == [116, 52, 42, 36, 35, 27, 26, 20, 16]


def test_an_unknown_label_map_is_one_error():
    from rrx.config import typed

    with pytest.raises(RRXError, match=r"dataset.label_map=madry; known: reference, wordnet"):
        in9_map("madry")
    with pytest.raises(RRXError, match=r"dataset.label_map=madry; known: reference, wordnet"):
        typed("dataset", {"name": "in9", "label_map": "madry"})


def test_rival10_map_from_its_meta():
    wnids = imagenet_wnids()
    meta = {wnids[407]: "ambulance", wnids[281]: "tabby", wnids[0]: "tench"}
    mappings = {"ambulance": ["truck", 0], "tabby": ["cat", 4]}
    label = rival10_map(meta, mappings)
    assert label[407] == 0 and label[281] == 4 and (label >= 0).sum() == 2  # tench has no RIVAL10 class


def test_mapped_prediction_is_the_mapping_of_the_argmax():
    """A random 1000-class model scored on IN-9: argmax of the mapped logits == in_to_in9[argmax of the logits],
    with -1 (none of the 9) never equal to a label."""
    torch.manual_seed(0)
    cfg = model_config("torchvision", arch="resnet18")
    label_map = in9_map()
    model = create_model(cfg, None, label_map=label_map).eval()
    x = torch.rand(16, 3, 32, 32)
    with torch.no_grad():
        raw = model.backbone((x - model.mean) / model.std)  # the 1000 ImageNet logits
        mapped = model(x)
    expected = label_map[raw.argmax(1)]
    got = mapped.argmax(1)
    assert raw.shape == (16, 1000) and mapped.shape == (16, 10)
    assert torch.equal(torch.where(got == 9, -1, got), expected)


def test_mapped_argmax_over_many_imagenet_classes():
    """Random logits reach every part of the map (a random network's argmax may sit in a few classes)."""
    torch.manual_seed(1)
    label_map, logits = in9_map(), torch.randn(4096, 1000)
    got = map_logits(logits, label_map).argmax(1)
    expected = label_map[logits.argmax(1)]
    assert torch.equal(torch.where(got == 9, -1, got), expected) and set(expected.tolist()) == set(range(-1, 9))


def test_map_logits_on_a_hand_made_tensor():
    logits = torch.tensor([[1.0, 5.0, 2.0, 0.5, 3.0]])
    out = map_logits(logits, torch.tensor([0, -1, 1, 1, 0]))
    assert out.tolist() == [[3.0, 2.0, 5.0]]  # class 0: max(1, 3); class 1: max(2, 0.5); none: 5


# ---- the adversarial-backgrounds challenge ---------------------------------------------------------------------


class CornerReader(nn.Module):
    """Predicts the class whose colour is nearest to the top-left pixel: a model that reads only the background."""

    def __init__(self, colours: torch.Tensor):
        super().__init__()
        self.colours = colours  # (K, 3)

    def forward(self, x):
        return -((x[:, :, 0, 0, None] - self.colours.T[None]) ** 2).sum(1)


def _hand_made(n_classes=3):
    colours = torch.eye(3)[:n_classes]
    fg = torch.zeros(n_classes, 3, 8, 8)
    mask = torch.zeros(1, 8, 8)
    mask[:, 2:6, 2:6] = 1
    backgrounds = colours[:, :, None, None].expand(n_classes, 3, 8, 8).repeat_interleave(2, 0)  # 2 per class
    return CornerReader(colours), fg, mask, backgrounds, torch.arange(n_classes).repeat_interleave(2)


def test_a_background_reader_is_fooled_by_every_background_of_another_class():
    model, fg, mask, backgrounds, bg_labels = _hand_made()
    for y in range(3):
        wrong, evaluated, prediction, _ = fooling_backgrounds(
            model, fg[y], mask, y, backgrounds, batch_size=6, stop_at_first=False
        )
        assert torch.equal(wrong, bg_labels != y) and evaluated == 6
        assert torch.equal(prediction, bg_labels)  # it reads the corner: the background's colour


def test_stop_at_first_fooling_batch():
    model, fg, mask, backgrounds, _ = _hand_made()
    # class 0: backgrounds 0, 1 are its own; 2 fools it; with batches of 1 the search stops after 3 composites
    wrong, evaluated, prediction, confidence = fooling_backgrounds(
        model, fg[0], mask, 0, backgrounds, batch_size=1, stop_at_first=True
    )
    assert evaluated == 3 and wrong.tolist() == [False, False, True, False, False, False]
    assert prediction.tolist() == [0, 0, 1, -1, -1, -1]  # -1: not evaluated
    assert confidence[:3].gt(0).all() and confidence[3:].isnan().all()
    _, evaluated, *_ = fooling_backgrounds(model, fg[0], mask, 0, backgrounds, batch_size=4, stop_at_first=True)
    assert evaluated == 4


def test_stats_indices_are_evenly_spaced_per_class():
    labels = np.array([0] * 5 + [1] * 3)
    assert stats_indices(labels, 2) == {0, 4, 5, 7}
    assert stats_indices(labels, None) == set(range(8))


@pytest.mark.slow
def test_cli_adversarial_backgrounds_with_an_off_the_shelf_model(tmp_path):
    root = write_in9(tmp_path, per_class=2, size=32)
    out = tmp_path / "run"
    rrx(
        "evaluate",
        "model=torchvision",
        "model.arch=resnet18",
        "dataset=in9",
        f"dataset.root={root}",
        "dataset.image_size=32",
        "dataset.val_per_class=2",
        "dataset.num_workers=0",
        "challenge=adversarial_backgrounds",
        "challenge.stats_per_class=1",
        "challenge.batch_size=4",
        "trainer.device=cpu",
        "trainer.progress=false",
        f"hydra.run.dir={out}",
    )
    metrics = json.loads((out / "metrics.json").read_text())
    found = metrics["challenges"]["adversarial_backgrounds"]
    assert found["foregrounds"] == 18 and found["backgrounds"] == 18 and found["stats_foregrounds"] == 9
    assert found["accuracy"] == pytest.approx(1 - found["vulnerable"] / 18)
    assert sum(found["per_class"].values()) / 9 == pytest.approx(found["accuracy"])
    assert found["composites"] >= 9 * 18 and len(found["backgrounds_table"]) == 18
    assert all(row["foregrounds"] == 8 for row in found["backgrounds_table"])  # one stats foreground per other class
    assert metrics["run"]["method"] == "Random weights (reference map)" and metrics["run"]["architecture"] == "resnet18"
    assert metrics["label_map"] == metrics["run"]["label_map"] == "reference"  # which ImageNet -> IN-9 map was read
    rows = pd.read_parquet(out / "predictions.parquet")  # one per foreground: right where no background fools it
    assert len(rows) == 18 and set(rows["condition"]) == {"every background"}
    assert rows["correct"].mean() == pytest.approx(found["accuracy"], abs=1e-12)
    fooled = rows[~rows["correct"]]
    assert len(fooled) == found["vulnerable"] and (fooled["prediction"] != fooled["label"]).all()
    assert fooled["background_class"].notna().all() and rows[rows["correct"]]["background_class"].isna().all()
    report = tmp_path / "report"
    rrx("report", f"runs={out}", f"hydra.run.dir={report}")
    assert "Adversarial backgrounds" in (report / "report.md").read_text()
    assert list(report.glob("adversarial_backgrounds_*.png"))


# ---- zero-shot models ------------------------------------------------------------------------------------------


def test_score_variability_on_hand_made_scores():
    s_orig = torch.tensor([0.5, 0.2, 0.4, 0.25])
    s_chal = torch.tensor([0.25, 0.3, 0.4, 0.2])
    sv = score_variability(s_orig, s_chal)
    assert sv.tolist() == pytest.approx([0.5, -0.5, 0.0, 0.2])
    split = split_sv(sv)
    assert split["sv_plus"] == pytest.approx(35.0) and split["n_plus"] == 2  # (50 % + 20 %) / 2
    assert split["sv_minus"] == pytest.approx(50.0) and split["n_minus"] == 1


def test_box_stats_on_hand_made_values():
    """[1, 2, 3, 4, 100]: quartiles 2, 3, 4 (linear interpolation), IQR 2, so the whiskers stop at 1 and 4 and 100
    is an outlier; mean 22."""
    stats = box_stats(np.array([1.0, 2.0, 3.0, 4.0, 100.0]))
    assert stats == pytest.approx({"q1": 2.0, "med": 3.0, "q3": 4.0, "whislo": 1.0, "whishi": 4.0, "mean": 22.0})


def test_descriptor_sentences_and_files(tmp_path):
    assert descriptor_sentence("dog", "a furry coat") == "dog, which is a furry coat"
    assert descriptor_sentence("dog", "four legs") == "dog, which has four legs"
    assert descriptor_sentence("bird", "can fly") == "bird, which can fly"
    table = read_descriptors("in9", ["00_dog", "08_fish"])
    assert set(table) == {"00_dog", "08_fish"} and all(5 <= len(v) <= 8 for v in table.values())
    for name in ("in9", "rival10", "synthetic"):
        shipped = json.loads(
            (Path(__file__).resolve().parents[2] / "rrx" / "data" / "descriptors" / f"{name}.json").read_text()
        )
        assert all(5 <= len(v) <= 8 for k, v in shipped.items() if not k.startswith("_"))
    (tmp_path / "d.json").write_text(json.dumps({"dog": ["four legs"]}))
    with pytest.raises(RRXError, match=r"no descriptors for the classes \['08_fish'\]"):
        read_descriptors(str(tmp_path / "d.json"), ["00_dog", "08_fish"])


@pytest.mark.parametrize("kind", ["clip", "align"])
def test_class_score_is_the_mean_of_its_descriptor_similarities(tmp_path, kind):
    """Eq. 6.1, recomputed here from the Hugging Face model's own text and image features."""
    folder = write_tiny_vlm(tmp_path / kind, kind)
    cfg = model_config(kind, weights_path=str(folder), image_size=32, descriptors="in9")
    classes = ["00_dog", "01_bird", "08_fish"]
    model = create_model(cfg, None, classes=classes).eval()
    x = torch.rand(2, 3, 32, 32)
    hf, tokenizer = model.backbone.hf_model, model.backbone.tokenizer
    pixel = (x - torch.tensor(cfg.mean).view(1, 3, 1, 1)) / torch.tensor(cfg.std).view(1, 3, 1, 1)

    def features(output):
        return output if torch.is_tensor(output) else output.pooler_output

    table = read_descriptors("in9", classes)
    with torch.no_grad():
        image = features(hf.get_image_features(pixel_values=pixel))
        image = image / image.norm(dim=-1, keepdim=True)
        expected = []
        for c in classes:
            words = {"00_dog": "dog", "01_bird": "bird", "08_fish": "fish"}[c]
            tokens = tokenizer([descriptor_sentence(words, d) for d in table[c]], padding=True, return_tensors="pt")
            text = features(
                hf.get_text_features(input_ids=tokens["input_ids"], attention_mask=tokens["attention_mask"])
            )
            text = text / text.norm(dim=-1, keepdim=True)
            expected.append((image @ text.T).mean(1))
        expected = torch.stack(expected, 1)
        got = model.backbone.class_scores(model.forward_features(x))
        logits = model(x)
    assert torch.allclose(got, expected, atol=1e-5)
    assert torch.equal(logits.argmax(1), expected.argmax(1)) and logits.shape == (2, 3)


@pytest.mark.slow
def test_cli_zero_shot_clip_with_descriptors_and_report(tmp_path):
    root = write_in9(tmp_path, per_class=2, size=32)
    folder = write_tiny_vlm(tmp_path / "clip", "clip")
    out = tmp_path / "run"
    rrx(
        "evaluate",
        "model=clip",
        f"model.weights_path={folder}",
        "model.image_size=32",
        "model.descriptors=in9",
        "dataset=in9",
        f"dataset.root={root}",
        "dataset.image_size=32",
        "dataset.val_per_class=2",
        "dataset.num_workers=0",
        "challenge=zero_shot",
        "trainer.device=cpu",
        "trainer.progress=false",
        f"hydra.run.dir={out}",
    )
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["run"]["architecture"] == "CLIP" and metrics["run"]["method"] == "Descriptors"
    challenges = metrics["challenges"]
    assert set(challenges["accuracy"]) == {"original", "mixed_same", "mixed_rand", "mixed_next", "only_fg", "only_bg_t"}
    # the fixture's mixed images are copies of their originals: every SV is 0, neither positive nor negative
    sv = challenges["score_variability"]["mixed_rand"]
    assert sv["all_images"]["target"]["n_plus"] == 0 and sv["all_images"]["pairs"] == 18
    assert sv["errors"]["pairs"] == round(18 * (1 - challenges["accuracy"]["mixed_rand"]))
    assert len(challenges["similarities"]["original"]["00_dog"]) == 6  # one box per dog descriptor
    rows = pd.read_parquet(out / "predictions.parquet")
    assert set(rows["challenge"]) == {"zero_shot"} and len(rows) == 6 * 18
    for variation, acc in challenges["accuracy"].items():
        assert rows[rows["variation"] == variation]["correct"].mean() == pytest.approx(acc, abs=1e-12)
    report = tmp_path / "report"
    rrx("report", f"runs={out}", f"hydra.run.dir={report}")
    text = (report / "report.md").read_text()
    assert "Table 14 shape" in text and "| CLIP" in text and list(report.glob("fig25_*.png"))


# ---- bad input -------------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_unknown_model_names_list_close_matches(tmp_path):
    line = one_line_error(
        rrx("evaluate", "model=timm", "model.arch=resnet5", f"hydra.run.dir={tmp_path / 'a'}", check=False),
        "model.arch=resnet5",
        "close matches",
        "resnet50",
    )
    assert "timm" in line
    one_line_error(
        rrx("evaluate", "model=torchvision", "model.arch=resnet5O", f"hydra.run.dir={tmp_path / 'b'}", check=False),
        "torchvision has no such",
        "resnet50",
    )


@pytest.mark.slow
def test_missing_weights_name_the_cache_and_the_fix(tmp_path):
    env = {
        **__import__("os").environ,
        "HF_HOME": str(tmp_path / "hf"),
        "TORCH_HOME": str(tmp_path / "torch"),
        "HF_HUB_OFFLINE": "1",
    }
    one_line_error(
        rrx("evaluate", "model=clip", f"hydra.run.dir={tmp_path / 'a'}", env=env, check=False),
        "openai/clip-vit-base-patch32",
        str(tmp_path / "hf"),
        "model.weights_path",
    )
    one_line_error(
        rrx(
            "evaluate",
            "model=timm",
            "model.arch=resnet50",
            "model.pretrained=true",
            f"hydra.run.dir={tmp_path / 'b'}",
            env=env,
            check=False,
        ),
        "resnet50",
        str(tmp_path / "hf"),
        str(tmp_path / "torch"),
        "model.weights_path",
    )


def test_a_1000_class_model_on_a_dataset_without_mapping(tmp_path):
    one_line_error(
        rrx(
            "evaluate",
            "model=torchvision",
            "model.arch=resnet18",
            "dataset.train_per_class=4",
            "dataset.val_per_class=2",
            f"dataset.cache_dir={tmp_path / 'cache'}",
            f"hydra.run.dir={tmp_path / 'a'}",
            check=False,
        ),
        "dataset=synthetic has no mapping from ImageNet-1k",
    )


@pytest.mark.slow
def test_checkpoint_and_model_together_and_zero_shot_training_are_refused(tmp_path):
    one_line_error(
        rrx("evaluate", "checkpoint=x", "model=clip", f"hydra.run.dir={tmp_path / 'a'}", check=False), "not both"
    )
    one_line_error(
        rrx(
            "train",
            "model=clip",
            "trainer.epochs=1",
            f"dataset.cache_dir={tmp_path / 'cache'}",
            "dataset.train_per_class=4",
            "dataset.val_per_class=2",
            f"hydra.run.dir={tmp_path / 'b'}",
            check=False,
        ),
        "zero-shot model",
    )


def test_rival10_mapping_error_when_no_imagenet_class_maps(tmp_path):
    """The fixture's wnids are not ImageNet-1k synsets: no class can be mapped, a clear error."""
    root = write_rival10(tmp_path)
    one_line_error(
        rrx(
            "evaluate",
            "model=torchvision",
            "model.arch=resnet18",
            "dataset=rival10",
            f"dataset.root={root}",
            "dataset.image_size=32",
            "dataset.num_workers=0",
            "challenge=original",
            f"hydra.run.dir={tmp_path / 'a'}",
            check=False,
        ),
        "dataset=rival10: no ImageNet-1k class maps",
    )


def test_timm_weights_are_read_from_the_hugging_face_cache(tmp_path, monkeypatch):
    """The real pretrained path: a file placed where huggingface_hub caches timm's weights is found and loaded."""
    import huggingface_hub
    import timm
    from safetensors.torch import save_file

    reference = timm.create_model("test_vit", pretrained=False)
    snapshot = tmp_path / "models--timm--test_vit.r160_in1k" / "snapshots" / "abc123"
    snapshot.mkdir(parents=True)
    save_file(reference.state_dict(), str(snapshot / "model.safetensors"))
    (tmp_path / "models--timm--test_vit.r160_in1k" / "refs").mkdir()
    (tmp_path / "models--timm--test_vit.r160_in1k" / "refs" / "main").write_text("abc123")
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path))
    model = create_model(model_config("timm", arch="test_vit", pretrained=True), None)
    assert torch.equal(model.backbone.patch_embed.proj.weight, reference.patch_embed.proj.weight)
    assert model.mean.flatten().tolist() == [0.5, 0.5, 0.5]  # timm's own normalisation for this model


def test_a_vit_at_another_image_size_is_one_error(tmp_path):
    one_line_error(
        rrx(
            "evaluate",
            "model=timm",
            "model.arch=vit_tiny_patch16_224",
            "dataset.image_size=32",
            "dataset.train_per_class=4",
            "dataset.val_per_class=2",
            f"dataset.cache_dir={tmp_path / 'cache'}",
            f"hydra.run.dir={tmp_path / 'a'}",
            check=False,
        ),
        "model vit_tiny_patch16_224 cannot take 32 px images",
        "model.img_size=32",
    )
