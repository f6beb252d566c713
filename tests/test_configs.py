"""Every YAML of every config group composes into the real config and builds its entry."""

import pytest
from fixtures.isic import write_isic
from fixtures.rival10 import write_rival10
from fixtures.vision import write_cifar10, write_image_folder, write_stl10
from fixtures.waterbirds import write_waterbirds
from hydra import compose, initialize_config_module

from rrx.attacks import create_attack
from rrx.challenges import create_challenge
from rrx.data import create_dataset
from rrx.errors import RRXError
from rrx.methods import create_method, list_methods
from rrx.models import create_model
from rrx.tasks.segmentation import SEGMENTATION_MODELS, SEGMENTATION_ONLY_DATASETS


def _compose(*overrides):
    """The real train config with only ``overrides`` (nothing is trained here)."""
    with initialize_config_module("rrx.conf", version_base="1.3"):
        return compose("train", overrides=list(overrides))


def _method_choices():
    from rrx.config import options
    from rrx.methods import METHODS

    return sorted(options(METHODS))  # the registered methods and their presets (rrda, actdiff_rrda)


def _model_choices():
    from rrx.config import options
    from rrx.models import MODELS

    return sorted(options(MODELS))


def test_every_model_is_an_option():
    from rrx.models import list_models

    assert set(list_models()) <= set(_model_choices())  # and the timm presets vit_b16, vit_test


@pytest.mark.parametrize(
    "choice", [c for c in _model_choices() if c not in SEGMENTATION_MODELS]
)  # unet: test_segmentation
def test_model_choice(choice):
    cfg = _compose(f"model={choice}")
    if choice in ("clip", "align"):  # zero-shot: built for evaluation from its weights, never trained
        with pytest.raises(RRXError, match="zero-shot model"):
            create_model(cfg.model, 9, cfg.dataset.mean, cfg.dataset.std)
        return
    assert create_model(cfg.model, 9, cfg.dataset.mean, cfg.dataset.std) is not None


def test_every_method_and_preset_is_an_option():
    from rrx.methods import list_methods

    assert set(list_methods()) | {"rrda", "actdiff_rrda", "dfr_agree"} == set(_method_choices())


@pytest.mark.parametrize("choice", _method_choices())
def test_method_choice(choice):
    method = create_method(_compose(f"method={choice}").method)
    assert method.rrda == choice.endswith("rrda")


BACKGROUND = ["original", "mixed_same", "mixed_rand", "mixed_next"]
SUITES = {
    "background": BACKGROUND,
    "signal": ["original", "only_fg", "only_bg_t"],
    "all": [*BACKGROUND, "only_fg", "no_fg", "only_bg_b", "only_bg_t"],
    "patches": ["original", "no_patch"],
    "gradient_map": ["original"],
    "zero_shot": ["original", "mixed_same", "mixed_rand", "mixed_next", "only_fg", "only_bg_t"],
}


def _challenge_choices():
    from rrx.challenges import CHALLENGES
    from rrx.config import options

    return sorted(options(CHALLENGES))


def test_every_challenge_is_an_option():
    from rrx.challenges import list_challenges

    assert set(list_challenges()) <= set(_challenge_choices())  # and its presets: original, mixed_rand, signal, ...


@pytest.mark.parametrize("choice", _challenge_choices())
def test_challenge_choice(choice):
    challenge = create_challenge(_compose(f"challenge={choice}").challenge)
    if choice == "edge":
        assert challenge.variations == BACKGROUND and challenge.widths == list(range(5, 55, 5))
    elif choice == "all":
        background, edge, snr = challenge.parts
        assert background.variations == SUITES["all"] and edge.widths == list(range(5, 55, 5))
        assert snr.attributions == ["saliency", "integrated_gradients"] and snr.steps == 50
    elif choice == "snr":
        assert challenge.attributions == ["saliency", "integrated_gradients"] and challenge.variation == "original"
    elif choice == "adversarial_backgrounds":
        assert challenge.needs() == [("original", True), ("only_bg_t", False)] and challenge.stats_per_class == 10
    else:
        assert challenge.variations == SUITES.get(choice, [choice])


def _attack_choices():
    from rrx.attacks import ATTACKS
    from rrx.config import options

    return sorted(options(ATTACKS))


@pytest.mark.parametrize("choice", _attack_choices())
def test_attack_choice(choice):
    assert create_attack(_compose(f"attack={choice}").attack) is not None


DATASET_OVERRIDES = {
    "synthetic": ["dataset.image_size=32", "dataset.train_per_class=2", "dataset.val_per_class=2"],
    "toy_rules": ["dataset.train_size=10", "dataset.test_size=10"],
    "textures": ["dataset.train_size=10", "dataset.test_size=10"],
    "isic": ["dataset.image_size=16", "dataset.num_workers=0"],
    "image_folder": ["dataset.num_classes=3", "dataset.image_size=16", "dataset.num_workers=0"],
}


def _dataset_choices():
    from rrx.config import options
    from rrx.data import DATASETS

    return sorted(options(DATASETS))


def test_every_dataset_is_an_option():
    from rrx.data import list_datasets

    assert _dataset_choices() == list_datasets()


@pytest.mark.parametrize(
    "choice", [c for c in _dataset_choices() if c not in SEGMENTATION_ONLY_DATASETS]
)  # scgm: likewise
def test_dataset_choice(choice, tmp_path):
    overrides = [f"dataset={choice}", *DATASET_OVERRIDES.get(choice, [])]
    if choice == "synthetic":
        overrides.append(f"dataset.cache_dir={tmp_path}")
    if choice in ("in9", "rival10", "isic", "cifar10", "stl10", "image_folder", "waterbirds"):
        with pytest.raises(RRXError, match=f"dataset={choice} needs dataset.root"):
            create_dataset(_compose(*overrides).dataset)
        roots = {
            "rival10": lambda: write_rival10(tmp_path),
            "isic": lambda: write_isic(tmp_path / "ISIC"),
            "in9": lambda: tmp_path,
            "cifar10": lambda: write_cifar10(tmp_path)["folder"],
            "stl10": lambda: write_stl10(tmp_path)["folder"],
            "image_folder": lambda: write_image_folder(tmp_path) and tmp_path,
            "waterbirds": lambda: write_waterbirds(tmp_path / "waterbirds"),
        }
        overrides.append(f"dataset.root={roots[choice]()}")
    cfg = _compose(*overrides).dataset
    dataset = create_dataset(cfg)
    assert dataset.name == choice and dataset.num_classes == cfg.num_classes and len(dataset.mean) == 3


@pytest.mark.parametrize(
    "overrides, message",
    [
        (["dataset=cifar10", "dataset.augment=crop_flip"], "dataset.augment: dataset=cifar10 has no key 'augment'"),
        (["dataset=scgm", "dataset.target=gm"], "dataset.target: dataset=scgm has no key 'target'"),  # now tissue
        (["dataset=scgm", "dataset.val_fraction=0.3"], "dataset.val_fraction: dataset=scgm has no key 'val_fraction'"),
        (["dataset=color_mnist", "dataset.variant=cdep"], "dataset.variant: dataset=color_mnist has no key 'variant'"),
        (["dataset.image_size=big"], "dataset.image_size=big: must be an integer"),
    ],
)
def test_a_key_the_dataset_lacks_is_one_line(overrides, message):
    from rrx.config import explain

    with pytest.raises(Exception) as err:
        _compose(*overrides)
    line = explain(err.value)
    assert line.startswith(message) and "\n" not in line
    if "no key" in message:
        assert "; its keys: name, " in line


@pytest.mark.parametrize(
    "overrides, message",
    [
        (["dataset.augment=true"], "dataset.augment=True; known: none, crop_flip"),  # the bool of rrx before 0.x
        (["dataset.augment=classic"], "dataset.augment=classic; known: none, crop_flip"),  # method=ada's, not this
        (["dataset=in9", "dataset.label_map=madry"], "dataset.label_map=madry; known: reference, wordnet"),
        (["dataset=scgm", "dataset.tissue=csf"], "dataset.tissue=csf; known: gm, wm, sc"),
        (["dataset=scgm", "dataset.val_subject_fraction=1.0"], "dataset.val_subject_fraction=1: must be in (0, 1)"),
        (["dataset=scgm", "dataset.vote=1.0"], "dataset.vote=1: must be in [0, 1)"),
        (["dataset=rival10", "dataset.fill=grey"], "dataset.fill=grey; known: black, tile"),
        (["dataset=decoy_mnist", "dataset.variant=big"], "dataset.variant=big; known: ross, cdep, none"),
        (["dataset=toy_rules", "dataset.rule=all"], "dataset.rule=all; known: both, corners, top_middle"),
        (["dataset.mean=[0.5,2,0.5]"], "dataset.mean=[0.5,2,0.5]: must be in [0, 1]"),
        (["dataset.std=[0.25,0,0.25]"], "dataset.std=[0.25,0,0.25]: must be > 0"),
        (["dataset.augment_scale=[0,1]"], "dataset.augment_scale=[0,1]: must be in (0, 1]"),
        (["dataset.num_classes=1"], "dataset.num_classes=1: must be >= 2"),
        (["dataset.bg_correlation=1.5"], "dataset.bg_correlation=1.5: must be in [0, 1]"),
    ],
)
def test_a_dataset_value_outside_its_range_or_choices_fails_the_check(overrides, message):
    import re

    from rrx.config import check

    check(_compose(*overrides[:-1]))  # the same config with the value's default passes
    with pytest.raises(RRXError, match=f"^{re.escape(message)}$"):
        check(_compose(*overrides))


def test_other_commands_compose():
    with initialize_config_module("rrx.conf", version_base="1.3"):
        evaluate = compose("evaluate", overrides=["checkpoint=run", "challenge=mixed_next"])
        report = compose("report", overrides=["runs=[a,b]"])
        inspect = compose("inspect", overrides=["model=resnet18", "inspector.port=9000"])
    assert evaluate.checkpoint == "run" and evaluate.challenge.variations == ["mixed_next"]
    assert inspect.model.name == "resnet18" and inspect.inspector.host == "127.0.0.1" and inspect.inspector.port == 9000
    assert list(report.runs) == ["a", "b"]


def test_unknown_registry_name_lists_the_known_ones():
    cfg = _compose()
    cfg.method.name = "rrrr"
    with pytest.raises(
        RRXError,
        match="unknown method 'rrrr'; known: actdiff, ada, balanced, cdep, dfr, eg, gradmask, groupdro, jtt, rrr, "
        "standard",
    ):
        create_method(cfg.method)
    known = ["actdiff", "ada", "balanced", "cdep", "dfr", "eg", "gradmask", "groupdro", "jtt", "rrr", "standard"]
    assert list_methods() == known


def _grid_lam(*overrides):
    """The job's method.lam after its experiment's grid (rrx.experiments), None where the grid has no job."""
    from rrx.experiments import apply_experiment, grid_has_no_lambda

    cfg = _compose(*overrides)
    return None if grid_has_no_lambda(cfg) else apply_experiment(cfg).method.get("lam", "no lam")


def test_thesis_grid_gives_each_method_its_table7_lambdas():
    from rrx.experiments import apply_experiment

    lams = {
        (m, i): _grid_lam("experiment=thesis_in9", f"method={m}", f"lambda_index={i}")
        for m in ("rrr", "gradmask", "actdiff_rrda", "rrda")
        for i in range(4)
    }
    assert [lams[("rrr", i)] for i in range(4)] == [10, 100, 1000, None]
    assert [lams[("gradmask", i)] for i in range(4)] == [1e-5, 1e-4, 1e-3, 5e-3]
    assert [lams[("actdiff_rrda", i)] for i in range(4)] == [1, 2, 4, 8]
    assert [lams[("rrda", i)] for i in range(4)] == ["no lam", None, None, None]  # Standard + RRDA weighs nothing
    rrr = apply_experiment(_compose("experiment=thesis_in9", "method=rrr")).method
    rrda = apply_experiment(_compose("experiment=thesis_in9", "method=rrda")).method
    assert (rrr.reduction, rrr.input_space, rrr.pairing, rrda.pairing) == ("sum", "normalized", "alg3", "alg3")
    assert "reduction" not in rrda
    cfg = apply_experiment(_compose("experiment=thesis_rival10"))
    assert (cfg.dataset.name, cfg.trainer.epochs, cfg.trainer.batch_size, cfg.optimizer.lr, cfg.model.pretrained) == (
        "rival10",
        50,
        32,
        0.001,
        True,
    )


@pytest.mark.parametrize("dataset", ["in9", "rival10"])
def test_the_thesis_scale_beyond_masks_presets(dataset):
    """Standard + RRDA on each labelled-mask fraction, JTT and class-balanced ERM at the thesis grid's scale."""
    from rrx.experiments import apply_experiment, grid_has_no_lambda

    def job(method, index=0):
        cfg = _compose(f"experiment=beyond_masks_{dataset}", f"method={method}", f"mask_index={index}")
        return None if grid_has_no_lambda(cfg) else apply_experiment(cfg)

    fractions = [job("rrda", i) for i in range(5)]
    assert [(c.mask.name, c.mask.p) for c in fractions] == [("fraction", p) for p in (0.0, 0.01, 0.05, 0.25, 1.0)]
    assert job("standard", 1) is None and job("jtt").mask.name == "labelled" and job("balanced").method.by == "class"
    cfg = fractions[2]
    assert (cfg.dataset.name, cfg.model.name, cfg.model.pretrained, cfg.method.pairing) == (
        dataset,
        "resnet18",
        True,
        "alg3",
    )
    assert (cfg.trainer.epochs, cfg.trainer.batch_size, cfg.trainer.scheduler, cfg.optimizer.lr) == (
        50,
        32,
        "none",
        0.001,
    )


def test_embedded_and_mnist_presets():
    from rrx.experiments import apply_experiment

    cfg = apply_experiment(_compose("experiment=embedded", "method=rrr"))
    assert (cfg.dataset.name, cfg.model.name, cfg.method.lam, cfg.challenge.name) == (
        "synthetic",
        "small_cnn",
        10,
        "all",
    )
    assert "pretrained" not in cfg.model  # SmallCNN has no weights to load
    assert apply_experiment(_compose("experiment=embedded", "model=vit_test")).model.pretrained is False
    cfg = apply_experiment(_compose("experiment=thesis_mnist", "dataset=color_mnist", "method=rrr", "attack=fgsm"))
    assert (cfg.model.name, cfg.method.lam, cfg.attack.name, cfg.trainer.epochs) == ("mlp", 10, "fgsm", 10)


def test_a_model_without_weights_refuses_pretrained():
    from rrx.config import explain

    with pytest.raises(Exception) as err:
        _compose("model=small_cnn", "model.pretrained=true")  # only models with weights have the key
    assert explain(err.value) == (
        "model.pretrained: model=small_cnn has no key 'pretrained'; its keys: name, display_name, width"
    )


def test_thesis_mnist_takes_each_datasets_lambda_and_the_mlp():
    from rrx.experiments import apply_experiment

    lams = {
        (d, m): _grid_lam("experiment=thesis_mnist", f"dataset={d}", f"method={m}")
        for d in ("decoy_mnist", "color_mnist")
        for m in ("standard", "rrr", "cdep", "eg")
    }
    assert lams == {
        ("decoy_mnist", "standard"): "no lam",
        ("decoy_mnist", "rrr"): 10,
        ("decoy_mnist", "cdep"): 10,
        ("decoy_mnist", "eg"): 30,
        ("color_mnist", "standard"): "no lam",
        ("color_mnist", "rrr"): 10,
        ("color_mnist", "cdep"): 1,
        ("color_mnist", "eg"): 30,
    }
    cfg = apply_experiment(_compose("experiment=thesis_mnist", "dataset=color_mnist", "method=cdep", "attack=fgsm"))
    assert (cfg.model.name, cfg.attack.eps, cfg.method.regions) == ("mlp", 0.1, "pixels")


ANALYSIS_NEEDS_MASKS = {"localisation": True, "obey": True, "focus": False, "u_analysis": False, "ipha": False}


def _analysis_choices():
    from rrx.analyses import ANALYSES
    from rrx.config import options

    return sorted(options(ANALYSES))


def test_every_analysis_is_an_option():
    assert _analysis_choices() == sorted(ANALYSIS_NEEDS_MASKS)


@pytest.mark.parametrize("choice", _analysis_choices())
def test_analysis_choice(choice):
    from rrx.analyses import create_analysis

    with initialize_config_module("rrx.conf", version_base="1.3"):
        cfg = compose("analyze", overrides=[f"analysis={choice}"])
    assert create_analysis(cfg.analysis).needs_masks == ANALYSIS_NEEDS_MASKS[choice]
    assert cfg.analysis.name == choice and cfg.analysis.variation == "original"
