"""Every YAML of every config group composes into the real config and builds its entry."""

from pathlib import Path

import pytest
from hydra import compose, initialize_config_module
from isic_fixture import write_isic
from rival10_fixture import write_rival10
from vision_fixture import write_cifar10, write_image_folder, write_stl10

from rrx.attacks import create_attack
from rrx.challenges import create_challenge
from rrx.data import create_dataset
from rrx.errors import RRXError
from rrx.methods import create_method, list_methods
from rrx.models import create_model
from rrx.tasks.segmentation import SEGMENTATION_MODELS, SEGMENTATION_ONLY_DATASETS

CONF = Path(__file__).resolve().parents[1] / "conf"


def _compose(*overrides):
    """The real train config with only ``overrides`` (nothing is trained here)."""
    with initialize_config_module("rrx.conf", version_base="1.3"):
        return compose("train", overrides=list(overrides))


def _choices(group):
    return sorted(p.stem for p in (CONF / group).glob("*.yaml"))


@pytest.mark.parametrize(
    "choice", [c for c in _choices("model") if c not in SEGMENTATION_MODELS]
)  # unet: test_segmentation
def test_model_choice(choice):
    cfg = _compose(f"model={choice}")
    if choice in ("clip", "align"):  # zero-shot: built for evaluation from its weights, never trained
        with pytest.raises(RRXError, match="zero-shot model"):
            create_model(cfg.model, 9, cfg.dataset.mean, cfg.dataset.std)
        return
    assert create_model(cfg.model, 9, cfg.dataset.mean, cfg.dataset.std) is not None


@pytest.mark.parametrize("choice", _choices("method"))
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


@pytest.mark.parametrize("choice", _choices("challenge"))
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


@pytest.mark.parametrize("choice", _choices("attack"))
def test_attack_choice(choice):
    assert create_attack(_compose(f"attack={choice}").attack) is not None


DATASET_OVERRIDES = {
    "synthetic": ["dataset.image_size=32", "dataset.train_per_class=2", "dataset.val_per_class=2"],
    "toy_rules": ["dataset.train_size=10", "dataset.test_size=10"],
    "textures": ["dataset.train_size=10", "dataset.test_size=10"],
    "isic": ["dataset.image_size=16", "dataset.num_workers=0"],
    "image_folder": ["dataset.num_classes=3", "dataset.image_size=16", "dataset.num_workers=0"],
}


@pytest.mark.parametrize(
    "choice", [c for c in _choices("dataset") if c not in SEGMENTATION_ONLY_DATASETS]
)  # scgm: likewise
def test_dataset_choice(choice, tmp_path):
    overrides = [f"dataset={choice}", *DATASET_OVERRIDES.get(choice, [])]
    if choice == "synthetic":
        overrides.append(f"dataset.cache_dir={tmp_path}")
    if choice in ("in9", "rival10", "isic", "cifar10", "stl10", "image_folder"):
        with pytest.raises(RRXError, match=f"dataset={choice} needs dataset.root"):
            create_dataset(_compose(*overrides).dataset)
        roots = {
            "rival10": lambda: write_rival10(tmp_path),
            "isic": lambda: write_isic(tmp_path / "ISIC"),
            "in9": lambda: tmp_path,
            "cifar10": lambda: write_cifar10(tmp_path)["folder"],
            "stl10": lambda: write_stl10(tmp_path)["folder"],
            "image_folder": lambda: write_image_folder(tmp_path) and tmp_path,
        }
        overrides.append(f"dataset.root={roots[choice]()}")
    cfg = _compose(*overrides).dataset
    dataset = create_dataset(cfg)
    assert dataset.name == choice and dataset.num_classes == cfg.num_classes and len(dataset.mean) == 3


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
    with pytest.raises(RRXError, match="unknown method 'rrrr'; known: actdiff, ada, cdep, eg, gradmask, rrr, standard"):
        create_method(cfg.method)
    assert list_methods() == ["actdiff", "ada", "cdep", "eg", "gradmask", "rrr", "standard"]


def test_thesis_grid_gives_each_method_its_table7_lambdas():
    lams = {
        (m, i): _compose("experiment=thesis_in9", f"method={m}", f"lambda_index={i}").method.lam
        for m in ("rrr", "gradmask", "actdiff_rrda", "rrda")
        for i in range(4)
    }
    assert [lams[("rrr", i)] for i in range(4)] == [10, 100, 1000, None]
    assert [lams[("gradmask", i)] for i in range(4)] == [1e-5, 1e-4, 1e-3, 5e-3]
    assert [lams[("actdiff_rrda", i)] for i in range(4)] == [1, 2, 4, 8]
    assert [lams[("rrda", i)] for i in range(4)] == [0.0, None, None, None]
    cfg = _compose("experiment=thesis_rival10")
    assert (cfg.dataset.name, cfg.trainer.epochs, cfg.trainer.batch_size, cfg.optimizer.lr, cfg.model.pretrained) == (
        "rival10",
        50,
        32,
        0.001,
        True,
    )


def test_embedded_and_mnist_presets():
    cfg = _compose("experiment=embedded", "method=rrr")
    assert (cfg.dataset.name, cfg.model.name, cfg.method.lam, cfg.challenge.name, cfg.model.pretrained) == (
        "synthetic",
        "small_cnn",
        10,
        "all",
        False,
    )
    cfg = _compose("experiment=thesis_mnist", "dataset=color_mnist", "method=rrr", "attack=fgsm")
    assert (cfg.model.name, cfg.method.lam, cfg.attack.name, cfg.trainer.epochs) == ("mlp", 10, "fgsm", 10)


def test_a_model_without_weights_refuses_pretrained():
    cfg = _compose("experiment=thesis_grid", "model=small_cnn")
    with pytest.raises(RRXError, match="model=small_cnn has no pretrained weights; set model.pretrained=false"):
        create_model(cfg.model, 9, [0.5] * 3, [0.25] * 3)


def test_thesis_mnist_takes_each_datasets_lambda_and_the_mlp():
    lams = {
        (d, m): _compose("experiment=thesis_mnist", f"dataset={d}", f"method={m}").method.lam
        for d in ("decoy_mnist", "color_mnist")
        for m in ("standard", "rrr", "cdep", "eg")
    }
    assert lams == {
        ("decoy_mnist", "standard"): 0.0,
        ("decoy_mnist", "rrr"): 10,
        ("decoy_mnist", "cdep"): 10,
        ("decoy_mnist", "eg"): 30,
        ("color_mnist", "standard"): 0.0,
        ("color_mnist", "rrr"): 10,
        ("color_mnist", "cdep"): 1,
        ("color_mnist", "eg"): 30,
    }
    cfg = _compose("experiment=thesis_mnist", "dataset=color_mnist", "method=cdep", "attack=fgsm")
    assert (cfg.model.name, cfg.attack.eps, cfg.method.regions) == ("mlp", 0.1, "pixels")


ANALYSIS_NEEDS_MASKS = {"localisation": True, "obey": True, "focus": False, "u_analysis": False, "ipha": False}


@pytest.mark.parametrize("choice", _choices("analysis"))
def test_analysis_choice(choice):
    from rrx.analyses import create_analysis

    with initialize_config_module("rrx.conf", version_base="1.3"):
        cfg = compose("analyze", overrides=[f"analysis={choice}"])
    assert create_analysis(cfg.analysis).needs_masks == ANALYSIS_NEEDS_MASKS[choice]
    assert cfg.analysis.name == choice and cfg.analysis.variation == "original"
