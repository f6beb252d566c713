"""``rrx evaluate``: a saved checkpoint, or an off-the-shelf model, on a challenge."""

from __future__ import annotations

import logging
from pathlib import Path

from omegaconf import DictConfig

from rrx.attacks import create_attack
from rrx.challenges import check_variations, create_challenge
from rrx.challenges.adversarial import evaluate_with_attack
from rrx.data import data_report
from rrx.outputs import claim_new_folder, record_hydra_config
from rrx.results import write_results
from rrx.subject import DatasetChoice, open_subject

log = logging.getLogger(__name__)


def evaluate(cfg: DictConfig, out_dir: Path, dataset_choice: DatasetChoice | bool = False) -> dict:
    """Evaluate ``cfg.checkpoint`` (or the off-the-shelf ``cfg.model``) on ``cfg.challenge`` (see ``open_subject``);
    results go to ``out_dir`` (a new folder). An unfinished checkpoint is evaluated and marked so in ``metrics.json``."""
    subject = open_subject(cfg, dataset_choice)
    with claim_new_folder(out_dir, "evaluate", replace_unfinished=True):
        record_hydra_config(out_dir, cfg)
        challenge = create_challenge(cfg.challenge)
        check_variations(challenge, subject.dataset, cfg.attack.name)
        model = subject.build()
        log.info("Evaluating %s (%s) on %s / %s", subject.run["architecture"], subject.run["method"], subject.dataset.name,
                 cfg.challenge.name)
        results = evaluate_with_attack(challenge, cfg.attack.name, create_attack(cfg.attack), model, subject.dataset,
                                       subject.runtime, cfg.attack.get("eval_eps"))
        metrics = {"run": subject.run, "challenges": results, **subject.record, "data": data_report(subject.dataset)}
        write_results(out_dir, metrics)
        return metrics
