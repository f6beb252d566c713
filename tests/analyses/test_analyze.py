"""rrx analyze: the analysis runners on hand-built models whose results are known by construction, and the command."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pandas as pd
import pytest
import torch
from conftest import TINY
from fixtures.runner import one_line_error, rrx
from omegaconf import OmegaConf
from test_u_analysis import MAPS, Quadrants
from torch.utils.data import TensorDataset

from rrx.analyses import create_analysis
from rrx.analyses.focus import randomised_copy
from rrx.runtime import Runtime

CPU = Runtime(torch.device("cpu"), amp=False, batch_size=4, num_workers=0, progress=False)
RED, GREEN, BLUE = (1.0, 0.0, 0.0), (0.0, 1.0, 0.0), (0.0, 0.0, 1.0)


class ColourReader(torch.nn.Module):
    """Logit k = sum over pixels of channel ``channels[k]``: Input x Gradient of class k is that channel where it is
    non-zero, nothing elsewhere."""

    def __init__(self, channels):
        super().__init__()
        self.conv = torch.nn.Conv2d(3, len(channels), 1, bias=False)
        with torch.no_grad():
            self.conv.weight.zero_()
            for k, c in enumerate(channels):
                self.conv.weight[k, c] = 1.0

    def forward(self, x):
        return self.conv(x).sum((2, 3))


def coloured(colours, size=8):
    return torch.stack([torch.tensor(c)[:, None, None].expand(3, size, size) for c in colours]).clone()


def analysis(name, **settings):
    """The analysis ``name`` with its typed config's defaults and ``settings``."""
    return create_analysis({"name": name, **settings})


def test_focus_of_a_class_specific_explanation_is_one_and_a_randomised_copy_loses_it(tmp_path):
    """Class 0 images are red, class 1 green; the model reads red for class 0 and green for class 1, so its Input x
    Gradient of the target class lies in the target quadrants only: Focus 1 on every mosaic."""
    labels = torch.tensor([0] * 4 + [1] * 4)
    data = TensorDataset(coloured([RED] * 4 + [GREEN] * 4), labels)
    dataset = SimpleNamespace(mean=(0.5,) * 3, classes=["red", "green"])
    focus = analysis("focus", attribution=["input_x_gradient"], per_class=3, randomise="none")
    result = focus.run(ColourReader([0, 1]), data, dataset, CPU, tmp_path)["input_x_gradient"]
    assert result["mosaics"] == 6 and result["model"]["n"] == 6
    assert result["model"]["mean"] == pytest.approx(1.0) and result["model"]["std"] == pytest.approx(0.0)
    # the randomised copy: its conv weights W are random, so red quadrants carry W[t, 0] and green ones W[t, 1] per
    # pixel for target t, whatever the class; Eq. 1 counts their positive part g:
    # Focus = g(W[t, own]) / (g(W[t, 0]) + g(W[t, 1]))
    randomised = analysis("focus", attribution=["input_x_gradient"], per_class=3).run(
        ColourReader([0, 1]), data, dataset, CPU, tmp_path
    )["input_x_gradient"]
    w = randomised_copy(ColourReader([0, 1]), seed=0).conv.weight[:, :2, 0, 0].clamp(min=0)
    defined = [t for t in (0, 1) if w[t].sum() > 0]  # a target whose W[t] is all negative has no positive relevance
    expected = [(w[t, t] / w[t].sum()).item() for t in defined]  # the same for its 3 mosaics
    assert randomised["randomised"]["n"] == 3 * len(defined) and randomised["randomised"]["undefined"] == 6 - 3 * len(
        defined
    )
    assert randomised["randomised"]["mean"] == pytest.approx(sum(expected) / len(expected))
    assert randomised["model"]["mean"] == pytest.approx(1.0)
    # a reader of the blue channel has no relevance on red/green images: every Focus undefined, none averaged
    blind = focus.run(ColourReader([2, 2]), data, dataset, CPU, tmp_path)["input_x_gradient"]["model"]
    assert blind["n"] == 0 and blind["undefined"] == 6


def test_randomised_copy_reinitialises_every_layer_and_leaves_the_model():
    model = torch.nn.Sequential(
        torch.nn.Conv2d(3, 4, 3), torch.nn.BatchNorm2d(4), torch.nn.Flatten(), torch.nn.LazyLinear(2)
    )
    model(torch.zeros(1, 3, 5, 5))
    with torch.no_grad():
        for p in model.parameters():
            p.fill_(0.123)
    copy = randomised_copy(model, seed=0)
    again = randomised_copy(model, seed=0)
    for (name, p), q, r in zip(model.named_parameters(), copy.parameters(), again.parameters()):
        assert torch.all(p == 0.123), name
        assert not torch.all(q == 0.123) or name.startswith("1."), name  # BatchNorm resets to ones and zeros
        assert torch.equal(q, r), name


def test_localisation_and_obey_of_an_object_reader_and_a_background_reader(tmp_path):
    """Red object (the top half) on a blue background. An object reader's Input x Gradient is the object exactly: every
    localisation score is 100 % and ObEy's wIoU 1; a background reader's relevance lies off the object: 0 %."""
    x = coloured([BLUE] * 4)
    x[:, :, :4] = torch.tensor(RED)[:, None, None]
    mask = torch.zeros(4, 1, 8, 8)
    mask[:, :, :4] = 1
    data = TensorDataset(x, torch.zeros(4, dtype=torch.long), mask)
    dataset = SimpleNamespace(mean=(0.5,) * 3, classes=["a", "b"])
    localisation = analysis("localisation", attribution=["input_x_gradient"])
    obey = analysis("obey", attribution=["input_x_gradient"])
    on_object = localisation.run(ColourReader([0, 1]), data, dataset, CPU, tmp_path)["input_x_gradient"]
    off_object = localisation.run(ColourReader([2, 1]), data, dataset, CPU, tmp_path)["input_x_gradient"]
    for metric in ("pointing_game", "relevance_mass", "relevance_rank"):
        assert on_object[metric]["mean"] == pytest.approx(1.0) and on_object[metric]["n"] == 4
        assert off_object[metric]["mean"] == pytest.approx(0.0)
    reader = obey.run(ColourReader([0, 1]), data, dataset, CPU, tmp_path)["input_x_gradient"]
    assert reader["wiou"]["all"]["mean"] == pytest.approx(1.0) and reader["iou"]["all"]["mean"] == pytest.approx(1.0)
    assert reader["wiou"]["correct"]["n"] == 4 and reader["wiou"]["wrong"]["n"] == 0
    # the background reader predicts class 0 (blue sum 32 > green 0): correct, with wIoU 0 on the object
    assert (
        obey.run(ColourReader([2, 1]), data, dataset, CPU, tmp_path)["input_x_gradient"]["wiou"]["correct"]["mean"]
        == 0.0
    )


def test_u_analysis_runner_counts_the_known_u_and_draws_it(tmp_path, monkeypatch):
    """test_u_analysis's Quadrants model predicts [1, 0, 1, 0, 1] along the increasing removal order of MAPS: images
    of label 1 have a U, images of label 0 ((1, 2, 3)) too; a model that always predicts 1 has none for label 1."""
    import rrx.analyses.u_analysis as ua

    monkeypatch.setattr(ua, "explain", lambda model, x, y, method, steps: MAPS.expand(len(x), 8, 8))
    data = TensorDataset(torch.ones(3, 3, 8, 8), torch.tensor([1, 1, 0]))
    dataset = SimpleNamespace(mean=(0.5,) * 3, classes=["zero", "one"])
    u = analysis("u_analysis", window_fraction=0.5, examples=1)
    (result,) = u.run(Quadrants([2.0, 2.0, -2.0, -2.0], 1.0), data, dataset, CPU, tmp_path).values()
    assert (result["images"], result["images_with_u"], result["triples"], result["correct_original"]) == (3, 3, 5, 2)
    assert result["patches"] == 4 and result["patch_size"] == 4 and result["examples"] == ["u_example_0.png"]
    assert (tmp_path / "u_example_0.png").is_file()
    (none,) = u.run(Quadrants([0.0, 0.0, 0.0, 0.0], 1.0), data, dataset, CPU, tmp_path).values()
    assert none["images_with_u"] == 0 and none["correct_original"] == 2


@pytest.mark.parametrize(
    "settings, fragments",
    [
        ({"order": "sideways"}, ["analysis.order=sideways", "increasing"]),
        ({"fill": "pink"}, ["analysis.fill=pink", "region_mean"]),
        ({"window_fraction": 1.5}, ["analysis.window_fraction=1.5: must be in (0, 1]"]),
        ({"window_fraction": 0.0}, ["analysis.window_fraction=0: must be in (0, 1]"]),
        ({"attribution": "lime"}, ["analysis.attribution=lime", "gradcam"]),
        ({"noise": "zeros"}, ["analysis.noise: analysis=u_analysis has no key 'noise'", "fill, window_fraction"]),
        ({"window": 0.1}, ["analysis.window: analysis=u_analysis has no key 'window'"]),
    ],
)
def test_bad_u_settings_stop_before_any_work(settings, fragments):
    from rrx.errors import RRXError

    with pytest.raises(RRXError) as err:
        analysis("u_analysis", **settings)
    assert all(f in str(err.value) for f in fragments)


def test_an_attribution_named_twice_is_refused():
    """Named twice, it was scored twice: 18 images reported for 9, and a spread over duplicated samples."""
    from rrx.errors import RRXError

    for name in ("localisation", "obey", "focus"):
        with pytest.raises(
            RRXError, match=r"analysis.attribution=\['saliency', 'gradcam', 'saliency'\] names saliency more"
        ):
            analysis(name, attribution=["saliency", "gradcam", "saliency"])


def test_a_window_under_a_pixel_is_warned_of(tmp_path, monkeypatch, caplog):
    import rrx.analyses.u_analysis as ua

    monkeypatch.setattr(ua, "explain", lambda model, x, y, method, steps: MAPS.expand(len(x), 8, 8))
    data = TensorDataset(torch.ones(1, 3, 8, 8), torch.tensor([1]))
    dataset = type("D", (), {"classes": ["a", "b"], "mean": [0.0] * 3, "std": [1.0] * 3})()
    analysis("u_analysis", window_fraction=0.5, examples=0).run(
        Quadrants([2.0, 2.0, -2.0, -2.0], 1.0), data, dataset, CPU, tmp_path
    )
    assert "predictions per image" not in caplog.text
    analysis("u_analysis", window_fraction=0.01, examples=0).run(
        Quadrants([2.0, 2.0, -2.0, -2.0], 1.0), data, dataset, CPU, tmp_path
    )
    # 0.01 of 8 px is 0.08 px: 1 px patches, 64 of them, 65 predictions per image
    assert (
        "analysis.window_fraction=0.01 is 0.08 px of a 8 px image: 1 px patches, 64 of them, 65 predictions per image"
        in caplog.text
    )


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory, request):
    """A tiny model trained for one epoch on the synthetic benchmark (masks included)."""
    folder = tmp_path_factory.mktemp("analyze")
    cache = folder / "cache"
    rrx("train", *TINY, f"dataset.cache_dir={cache}", "challenge=original", f"hydra.run.dir={folder / 'train'}")
    return folder, [f"dataset.cache_dir={cache}"]


TINY_ANALYSES = {
    "localisation": ["analysis.attribution=[saliency,gradcam]", "analysis.max_images=9"],
    "obey": ["analysis.max_images=9"],
    "focus": ["analysis.attribution=[gradcam]", "analysis.per_class=2", "analysis.max_images=18"],
    "ipha": [
        "analysis.fill=[zeros,normalisation_mean]",
        "analysis.compare=[saliency]",
        "analysis.iterations=3",
        "analysis.neighbours=2",
        "analysis.max_images=4",
        "analysis.examples=1",
    ],
}


@pytest.mark.slow
def test_cli_every_analysis_then_report_merges_them_into_the_training_run(checkpoint):
    folder, data = checkpoint
    for name, settings in TINY_ANALYSES.items():
        rrx(
            "analyze",
            f"analysis={name}",
            f"checkpoint={folder / 'train'}",
            *settings,
            "trainer.device=cpu",
            f"hydra.run.dir={folder / 'analyses' / name}",
        )
        metrics = json.loads((folder / "analyses" / name / "metrics.json").read_text())
        assert list(metrics["analyses"]) == [name] and metrics["analysis"]["images"] > 0
        assert metrics["checkpoint_state"]["finished"] is True
    assert (folder / "analyses" / "ipha" / "ipha_zeros_0.png").is_file()
    rrx(
        "analyze",
        "-m",
        "analysis=u_analysis",
        f"checkpoint={folder / 'train'}",
        "analysis.order=increasing,random",
        "analysis.max_images=9",
        "trainer.device=cpu",
        f"hydra.sweep.dir={folder / 'analyses' / 'u'}",
    )
    rrx("report", f"runs={folder}", f"hydra.run.dir={folder / 'report'}")
    u = pd.read_csv(folder / "report" / "u_analysis_synthetic.csv")
    assert sorted(u["Order"]) == ["increasing", "random"] and set(u["Method"]) == {"Standard"}
    assert len(pd.read_csv(folder / "report" / "localisation_synthetic.csv")) == 2
    fii = pd.read_csv(folder / "report" / "ipha_non_important_synthetic.csv")
    assert list(fii["Fill"]) == ["zeros", "normalisation_mean"] and {"ipha", "saliency"} <= set(fii.columns)
    text = (folder / "report" / "report.md").read_text()
    assert "Focus on 2 x 2 mosaics" in text and "ObEy" in text and "u_analysis_synthetic.png" in text
    assert (folder / "report" / "ipha_important_synthetic.png").is_file()


@pytest.mark.slow
def test_cli_a_killed_analysis_is_completed_by_the_same_command(checkpoint, tmp_path):
    """A killed analyze left a temporary file and a PNG, no metrics.json; the rerun refused the folder "as it holds
    results". Its partial files are replaced; a temporary file alone is never a result; a training run's folder stays
    refused."""
    folder, _ = checkpoint
    command = [
        "analyze",
        "analysis=u_analysis",
        f"checkpoint={folder / 'train'}",
        "analysis.max_images=9",
        "analysis.examples=2",
        "trainer.device=cpu",
    ]
    out = tmp_path / "u"
    rrx(*command, f"hydra.run.dir={out}")
    (out / "metrics.json").unlink()  # as a kill before the end leaves it
    (out / ".u_example_1.png.x8k2p1.tmp").write_bytes(b"cut short")
    again = rrx(*command, f"hydra.run.dir={out}")
    assert (
        "holds an unfinished rrx analyze (no metrics.json: killed or failed); replacing its"
        in again.stderr + again.stdout
    )
    assert (out / "metrics.json").is_file() and not list(out.glob(".*.tmp"))
    (tmp_path / "t").mkdir()
    (tmp_path / "t" / ".metrics.json.a1b2c3.tmp").write_bytes(b"")
    rrx(*command, f"hydra.run.dir={tmp_path / 't'}")
    refused = rrx(*command, f"hydra.run.dir={folder / 'train'}", check=False)
    one_line_error(refused, "already holds results")


def _compose_analyze(overrides):
    from hydra import compose, initialize_config_module

    with initialize_config_module("rrx.conf", version_base="1.3"):
        return compose("analyze", overrides=overrides)


@pytest.mark.parametrize(
    "overrides, message",
    [
        (
            ["analysis=u_analysis", "analysis.noise=zeros"],
            "analysis.noise: analysis=u_analysis has no key 'noise'; its keys: name, variation, max_images, ig_steps, "
            "attribution, order, fill, window_fraction, examples, seed",
        ),
        (["analysis=u_analysis", "analysis.window=0.1"], "analysis.window: analysis=u_analysis has no key 'window'"),
        (["analysis=ipha", "analysis.constant=[zero]"], "analysis.constant: analysis=ipha has no key 'constant'"),
        (["analysis=localisation", "analysis.seed=1"], "analysis.seed: analysis=localisation has no key 'seed'"),
        (["analysis=obey", "analysis.target=label"], "analysis.target: analysis=obey has no key 'target'"),
        (["analysis=focus", "analysis.fill=zeros"], "analysis.fill: analysis=focus has no key 'fill'"),
        (["analysis=u_analysis", "analysis.window_fraction=wide"], "analysis.window_fraction=wide: must be a number"),
        (["analysis=ipha", "analysis.iterations=many"], "analysis.iterations=many: must be an integer"),
    ],
)
def test_an_unknown_or_inapplicable_analysis_key_is_one_line(overrides, message):
    """Each analysis has the keys of its typed config only (rrx.config): another analysis's key, or an older rrx's
    name of one (noise, window, constant), is one line naming the analysis's keys."""
    from rrx.config import explain

    with pytest.raises(Exception) as err:
        _compose_analyze(overrides)
    line = explain(err.value)
    assert line is not None and "\n" not in line and line.startswith(message)


@pytest.mark.parametrize(
    "overrides, message",
    [
        (["analysis=u_analysis", "analysis.window_fraction=0"], "analysis.window_fraction=0: must be in (0, 1]"),
        (["analysis=u_analysis", "analysis.window_fraction=1.01"], "analysis.window_fraction=1.01: must be in (0, 1]"),
        (
            ["analysis=u_analysis", "analysis.fill=grey_gaussian"],
            "analysis.fill=grey_gaussian; known: zeros, ones, gaussian, image_mean, region_mean, normalisation_mean",
        ),
        (["analysis=u_analysis", "analysis.order=sideways"], "analysis.order=sideways; known: increasing"),
        (["analysis=u_analysis", "analysis.examples=-1"], "analysis.examples=-1: must be >= 0"),
        (
            ["analysis=ipha", "analysis.fill=[zeros,region_mean]"],
            "analysis.fill=[zeros,region_mean]; known: zeros, ones, grey_gaussian, normalisation_mean",
        ),
        (["analysis=ipha", "analysis.fill=zero"], "analysis.fill=zero; known: zeros"),  # configs: today's names only
        (["analysis=ipha", "analysis.search=random"], "analysis.search=random; known: alg6, greedy_top_k"),
        (["analysis=ipha", "analysis.iterations=0"], "analysis.iterations=0: must be >= 1"),
        (["analysis=ipha", "analysis.neighbours=0"], "analysis.neighbours=0: must be >= 1"),
        (["analysis=ipha", "analysis.block=0"], "analysis.block=0: must be >= 1"),
        (["analysis=obey", "analysis.iou_threshold=1.5"], "analysis.iou_threshold=1.5: must be in [0, 1]"),
        (["analysis=focus", "analysis.randomise=true"], "analysis.randomise=True; known: none, full, cascading"),
        (["analysis=focus", "analysis.per_class=0"], "analysis.per_class=0: must be >= 1"),
        (["analysis=focus", "analysis.mosaic_size=0"], "analysis.mosaic_size=0: must be >= 1"),
        (["analysis=focus", "analysis.seed=-1"], "analysis.seed=-1: must be >= 0"),
        (["analysis=localisation", "analysis.target=both"], "analysis.target=both; known: label, prediction"),
        (["analysis=localisation", "analysis.max_images=0"], "analysis.max_images=0: must be >= 1"),
        (["analysis=localisation", "analysis.ig_steps=0"], "analysis.ig_steps=0: must be >= 1"),
    ],
)
def test_an_analysis_value_outside_its_range_or_choices_fails_the_check(overrides, message):
    from rrx.config import check
    from rrx.errors import RRXError

    cfg = _compose_analyze(overrides)
    with pytest.raises(RRXError) as err:
        check(cfg)
    assert str(err.value).startswith(message)
    with pytest.raises(RRXError) as err:  # and the runner of a config built in Python
        create_analysis(cfg.analysis)
    assert str(err.value).startswith(message)


def test_analysis_defaults_are_the_dataclasses():
    """The defaults the YAML files of the analysis group held, now in the typed configs (numbers unchanged)."""
    defaults = {
        name: {k: v for k, v in OmegaConf.to_container(_compose_analyze([f"analysis={name}"]).analysis).items()}
        for name in ("localisation", "obey", "focus", "u_analysis", "ipha")
    }
    shared = {"variation": "original", "ig_steps": 50}
    assert defaults["localisation"] == shared | {
        "name": "localisation",
        "attribution": ["saliency", "gradcam", "integrated_gradients"],
        "target": "label",
        "max_images": None,
    }
    assert defaults["obey"] == shared | {
        "name": "obey",
        "attribution": ["saliency", "gradcam"],
        "iou_threshold": 0.5,
        "object_masks": None,
        "max_images": None,
    }
    assert defaults["focus"] == shared | {
        "name": "focus",
        "attribution": ["gradcam", "saliency", "integrated_gradients"],
        "per_class": 10,
        "randomise": "full",
        "mosaic_size": None,
        "max_images": None,
        "seed": 0,
    }
    assert defaults["u_analysis"] == shared | {
        "name": "u_analysis",
        "attribution": "saliency",
        "order": "increasing",
        "fill": "zeros",
        "window_fraction": 0.1,
        "examples": 4,
        "max_images": 200,
        "seed": 0,
    }
    assert defaults["ipha"] == shared | {
        "name": "ipha",
        "fill": ["zeros", "ones", "grey_gaussian", "normalisation_mean"],
        "search": "alg6",
        "iterations": 10000,
        "neighbours": 16,
        "block": 2,
        "compare": ["saliency", "guided_backprop", "gradcam", "guided_gradcam", "integrated_gradients"],
        "examples": 2,
        "max_images": 100,
        "seed": 0,
    }


def test_cli_unknown_analysis_lists_the_known_ones(tmp_path):
    result = rrx("analyze", "analysis=shap", f"hydra.run.dir={tmp_path}", check=False)
    one_line_error(result, "unknown analysis 'shap'; known: focus, ipha, localisation, obey, u_analysis")


@pytest.mark.parametrize(
    "overrides, fragments",
    [
        (["analysis=u_analysis", "analysis.noise=gaussian"], ["analysis=u_analysis has no key 'noise'", "fill"]),
        (["analysis=ipha", "analysis.fill=zero"], ["analysis.fill=zero; known: zeros, ones, grey_gaussian"]),
        (["analysis=u_analysis", "analysis.window_fraction=0"], ["analysis.window_fraction=0", "in (0, 1]"]),
    ],
)
def test_cli_a_bad_analysis_key_or_value_is_one_line_before_any_model_is_read(tmp_path, overrides, fragments):
    """No checkpoint is given: the config is refused before rrx looks for a model."""
    one_line_error(rrx("analyze", *overrides, f"hydra.run.dir={tmp_path}", check=False), *fragments)


@pytest.mark.parametrize(
    "overrides, fragments",
    [
        (["analysis=focus", "analysis.attribution=[lime]"], ["analysis.attribution=lime", "integrated_gradients"]),
        (["analysis=ipha", "analysis.iterations=0"], ["analysis.iterations=0"]),
        (["analysis=ipha", "analysis.fill=grey"], ["analysis.fill=grey", "grey_gaussian"]),
        (["analysis=ipha", "analysis.constant=zero"], ["analysis=ipha has no key 'constant'", "fill"]),
        (["analysis=u_analysis", "analysis.window_fraction=2"], ["analysis.window_fraction=2", "in (0, 1]"]),
        (["analysis=u_analysis", "analysis.noise=zeros"], ["analysis=u_analysis has no key 'noise'"]),
        (["analysis=focus", "analysis.max_images=1"], ["Focus needs images of at least two classes"]),
    ],
)
def test_cli_bad_analysis_settings_are_one_line(checkpoint, tmp_path, overrides, fragments):
    folder, _ = checkpoint
    result = rrx(
        "analyze",
        *overrides,
        f"checkpoint={folder / 'train'}",
        "trainer.device=cpu",
        f"hydra.run.dir={tmp_path / 'a'}",
        check=False,
    )
    one_line_error(result, *fragments)


@pytest.mark.slow
def test_cli_on_cifar10_an_analysis_that_needs_masks_stops_and_one_that_does_not_runs(tmp_path):
    """An off-the-shelf model (no checkpoint) on a dataset without masks: localisation stops before any work and
    names the dataset; U Analysis needs no masks and runs."""
    from fixtures.vision import write_cifar10

    data = [
        f"dataset.root={write_cifar10(tmp_path / 'data')['folder']}",
        "dataset=cifar10",
        "model=small_cnn",
        "model.width=4",
        "trainer.device=cpu",
    ]
    result = rrx("analyze", "analysis=localisation", *data, f"hydra.run.dir={tmp_path / 'loc'}", check=False)
    one_line_error(result, "analysis=localisation needs object masks", "dataset cifar10 has none")
    assert not (tmp_path / "loc" / "metrics.json").exists()
    rrx("analyze", "analysis=u_analysis", "analysis.window_fraction=0.25", *data, f"hydra.run.dir={tmp_path / 'u'}")
    (result,) = json.loads((tmp_path / "u" / "metrics.json").read_text())["analyses"]["u_analysis"].values()
    assert result["images"] == 4 and result["patches"] == 16 and result["patch_size"] == 8


def test_focus_on_a_model_with_a_fixed_input_size_names_mosaic_size(tmp_path):
    """A model that takes only 8 x 8 images: 16 px mosaics are one clear error; analysis.mosaic_size=8 runs."""
    from rrx.errors import RRXError

    class Fixed(ColourReader):
        def forward(self, x):
            if x.shape[-1] != 8:
                raise RuntimeError(f"Input width ({x.shape[-1]}) doesn't match model (8).")
            return super().forward(x)

    data = TensorDataset(coloured([RED] * 2 + [GREEN] * 2), torch.tensor([0, 0, 1, 1]))
    dataset = SimpleNamespace(mean=(0.5,) * 3, classes=["red", "green"])
    with pytest.raises(RRXError, match="cannot take 16 x 16 px mosaics .*set analysis.mosaic_size"):
        analysis("focus", attribution=["input_x_gradient"], per_class=1).run(
            Fixed([0, 1]), data, dataset, CPU, tmp_path
        )
    result = analysis("focus", attribution=["input_x_gradient"], per_class=1, mosaic_size=8, randomise="none").run(
        Fixed([0, 1]), data, dataset, CPU, tmp_path
    )
    assert result["input_x_gradient"]["model"]["n"] == 2 and result["input_x_gradient"]["model"][
        "mean"
    ] == pytest.approx(1.0)


def test_evenly_per_class_keeps_every_class_of_a_shuffled_split():
    from rrx.analyses.common import evenly_per_class

    labels = [2, 0, 1, 2, 2, 0, 1, 1, 2, 0, 2]  # shuffled: 3 of class 0, 3 of class 1, 5 of class 2
    chosen = evenly_per_class(labels, 6)
    assert sorted(labels[i] for i in chosen) == [0, 0, 1, 1, 2, 2]
    assert chosen == [
        0,
        1,
        2,
        7,
        9,
        10,
    ]  # within a class its first and last image: class 0 at 1, 5, 9; 1 at 2, 6, 7; 2 at 0 .. 10
    # a small class gives all it has and the rest go to the others
    small = [0, 1, 1, 1, 1, 1]
    assert evenly_per_class(small, 4) == [0, 1, 3, 5]


def test_ipha_results_of_a_fill_do_not_depend_on_the_other_fills(tmp_path):
    data = TensorDataset(torch.rand(3, 3, 8, 8, generator=torch.Generator().manual_seed(0)), torch.tensor([0, 1, 0]))
    dataset = SimpleNamespace(mean=(0.5,) * 3, classes=["a", "b"])
    model = ColourReader([0, 1])
    settings = {"compare": [], "iterations": 3, "neighbours": 2, "examples": 0}
    both = analysis("ipha", fill=["zeros", "ones"], **settings).run(model, data, dataset, CPU, tmp_path)
    alone = analysis("ipha", fill="ones", **settings).run(model, data, dataset, CPU, tmp_path)
    assert both["ones"] == alone["ones"] and both["ones"]["kept"]["ipha"] < 1


def test_report_keeps_analyses_with_different_settings_apart():
    """Two localisation results of one model that differ only in the explained class (target): two rows, told apart by
    a Settings column, never merged or averaged."""
    from rrx.analyses.localisation import LocalisationConfig, table_localisation
    from rrx.analyze import keyed_by_settings
    from rrx.record import Record

    stats = {
        m: {"mean": 0.5, "std": 0.1, "n": 4, "undefined": 0}
        for m in ("pointing_game", "relevance_mass", "relevance_rank")
    }
    runs = []
    for target, mass in (("label", 0.9), ("prediction", 0.1)):
        cfg = OmegaConf.merge(OmegaConf.structured(LocalisationConfig), {"target": target})
        result = keyed_by_settings(
            {"gradcam": {**stats, "relevance_mass": {**stats["relevance_mass"], "mean": mass}}}, cfg, ("attribution",)
        )
        runs.append(
            Record.from_dict(
                {
                    "run": {"architecture": "SmallCNN", "method": "Standard"},
                    "challenges": {},
                    "analyses": {"localisation": result},
                }
            )
        )
    merged = {**runs[0].analyses["localisation"], **runs[1].analyses["localisation"]}
    assert len(merged) == 2
    table = table_localisation([Record(command="analyze", run=runs[0].run, analyses={"localisation": merged})])
    assert list(table["Settings"]) == ["target=label", "target=prediction"]
    assert list(table["Relevance mass"]) == [90.0, 10.0] and list(table["Attribution"]) == ["gradcam", "gradcam"]


def test_declared_analysis_tables_come_after_the_challenges_in_todays_order():
    """The analyses' modules declare their tables (and figures) as specs; each holds the records with its analysis."""
    from rrx.analyses import ANALYSES
    from rrx.record import Record

    analysis_of = {
        "localisation": "localisation",
        "obey": "obey",
        "focus": "focus",
        "u_analysis": "u_analysis",
        "ipha_non_important": "ipha",
        "ipha_important": "ipha",
    }
    tables = sorted(ANALYSES.declared("TABLES"), key=lambda t: t.order)
    assert [t.name for t in tables] == list(analysis_of) and [t.order for t in tables] == [100, 101, 102, 103, 104, 105]
    assert all(not t.mark_best and t.in_run and t.in_report for t in tables)
    figures = sorted(ANALYSES.declared("FIGURES"), key=lambda f: f.order)
    assert [(f.name, f.order, f.per_run) for f in figures] == [
        ("u_analysis", 130, False),
        ("ipha_non_important", 132, False),
        ("ipha_important", 133, False),
    ]
    bare = Record(command="evaluate", run={"architecture": "SmallCNN", "method": "Standard", "dataset": "synthetic"})
    for spec in tables + figures:
        analysis = analysis_of[spec.name]
        having = Record(command="analyze", run=bare.run, analyses={analysis: {}})
        assert not spec.holds(bare) and spec.holds(having), spec.name
        others = Record(
            command="analyze", run=bare.run, analyses={a: {} for a in set(analysis_of.values()) - {analysis}}
        )
        assert not spec.holds(others), spec.name
