"""``rrx analyze``: an interpretability analysis (config group ``analysis``) of a checkpoint or
an off-the-shelf model."""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import cast

from omegaconf import DictConfig, OmegaConf

from rrx.analyses import create_analysis
from rrx.analyses.common import analysis_images
from rrx.config import check
from rrx.errors import RRXError
from rrx.loggers import tracked
from rrx.outputs import claim_new_folder, record_hydra_config
from rrx.record import Record
from rrx.results import write_results
from rrx.subject import DatasetChoice, open_subject

log = logging.getLogger(__name__)


NOT_RESULTS = ("name", "examples")  # analysis settings that change no number


def keyed_by_settings(results: dict, analysis_cfg: DictConfig, keyed: tuple[str, ...]) -> dict:
    """The runner's ``{key: result}`` with every other result-changing setting added to the key (``gradcam
    [ig_steps=50, max_images=None, target=label, variation=original]``) and to the result (``key``, ``settings``), so
    that ``rrx report`` keeps analyses of one checkpoint with different settings apart instead of merging them."""
    settings = {
        k: v
        for k, v in sorted(cast(dict, OmegaConf.to_container(analysis_cfg, resolve=True)).items())
        if k not in (*NOT_RESULTS, *keyed)
    }
    suffix = ", ".join(f"{k}={v}" for k, v in settings.items())
    return {f"{key} [{suffix}]": {**value, "key": key, "settings": settings} for key, value in results.items()}


def analyze(cfg: DictConfig, out_dir: Path, dataset_choice: DatasetChoice | bool = False) -> Record:
    """Run ``cfg.analysis`` on the test images of ``cfg.analysis.variation`` (all, or ``cfg.analysis.max_images``
    evenly spaced) of ``cfg.checkpoint`` or ``cfg.model`` (see ``rrx.subject.open_subject``); results go to
    ``out_dir`` (a new folder): ``metrics.json`` with the results under ``analyses.<name>``, the analysis's tables and
    figures. An analysis that needs object masks stops before any work on a dataset without them."""
    check(cfg)
    started = time.time()
    analysis = create_analysis(cfg.analysis)
    subject = open_subject(cfg, dataset_choice)
    dataset = subject.dataset
    if analysis.needs_masks and not dataset.has_masks:
        raise RRXError(
            f"analysis={cfg.analysis.name} needs object masks and dataset {dataset.name} has none; "
            "use a dataset with masks (synthetic, in9, rival10, or image_folder with masks/)"
        )
    data = analysis_images(dataset, cfg.analysis.variation, analysis.needs_masks, cfg.analysis.max_images)
    with claim_new_folder(out_dir, "analyze", replace_unfinished=True), tracked(cfg, out_dir) as tracker:
        record_hydra_config(out_dir, cfg)
        model = subject.build().eval()
        log.info(
            "Analysis %s of %s (%s) on %d images of %s / %s",
            cfg.analysis.name,
            subject.run["architecture"],
            subject.run["method"],
            len(data),
            dataset.name,
            cfg.analysis.variation,
        )
        start = time.perf_counter()
        results = keyed_by_settings(
            analysis.run(model, data, dataset, subject.runtime, out_dir), cfg.analysis, analysis.keyed
        )
        seconds = time.perf_counter() - start
        timing = {
            "images": len(data),
            "seconds": seconds,
            "images_per_s": len(data) / seconds,
            "device": str(subject.runtime.device),
        }
        record = subject.record(
            "analyze",
            started,
            model,
            analyses={cfg.analysis.name: results},
            analysis={**cast(dict, OmegaConf.to_container(cfg.analysis, resolve=True)), **timing},
        )
        write_results(out_dir, record, tracker)
        log.info("%.1f images/s", timing["images_per_s"])
        return record
