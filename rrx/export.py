"""``rrx export``: a trained checkpoint as files other tools load with their own loaders.

Formats (``format=``):

- ``madry``: what MadryLab/backgrounds_challenge's ``tools/model_utils.make_and_restore_model`` restores (the loader
  of its ``in9_eval.py`` and ``challenge_eval.py``): ``{"model": state dict, "epoch": int}``, the state dict of its
  ``NormalizedModel`` with every key prefixed ``module.`` (the loader strips the first 7 characters of each key):
  ``module.normalizer.new_mean`` and ``module.normalizer.new_std`` (3, 1, 1), the model's own normalisation, which
  overwrites the loader's dataset constants, and ``module.model.<key>`` for each key of the torchvision-layout network
  its ``get_model(arch)`` builds (ResNets: ``model=resnet18``, ``resnet50`` or ``model=torchvision`` with a
  ResNet ``arch``). Run it with ``--arch <arch>`` and this file as ``--checkpoint``.
- ``state_dict``: the network's plain state dict (torchvision's or timm's key layout; no normalisation: the images it
  takes are normalised by ``export.json``'s ``mean`` and ``std``), for ``torchvision.models.get_model(arch,
  num_classes=K).load_state_dict(...)`` or ``timm.create_model(arch, num_classes=K)``.

Beside each file, ``export.json`` says what it is: the format, the architecture, the classes in label order, the
normalisation, the checkpoint it came from (path and SHA-256) and how to load it. Files hold tensors and numbers
only: ``torch.load(file, weights_only=True)`` reads them.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import torch
from omegaconf import DictConfig

from rrx.checkpoint import load_checkpoint, saved_config
from rrx.errors import RRXError
from rrx.outputs import atomic_write, claim_new_folder, record_hydra_config, write_json
from rrx.provenance import collect, file_sha256

log = logging.getLogger(__name__)
FORMATS = ("madry", "state_dict")
PREFIX = "backbone."  # rrx.models.classifier.Classifier: the network, then its mean and std buffers


def network_state(state_dict: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The network's own keys of an rrx classifier's state dict (``backbone.<key>`` -> ``<key>``); every other key
    must be the classifier's ``mean`` or ``std``, so that nothing is dropped unseen."""
    other = [k for k in state_dict if not k.startswith(PREFIX) and k not in ("mean", "std")]
    if other:
        raise RRXError(f"the checkpoint's model has keys outside its network and normalisation: {', '.join(other[:3])}")
    return {k[len(PREFIX) :]: v for k, v in state_dict.items() if k.startswith(PREFIX)}


def torchvision_arch(model_cfg) -> str | None:
    """The torchvision architecture name of a model config with the torchvision layout, else None."""
    if model_cfg.name in ("resnet18", "resnet50"):
        return str(model_cfg.name)
    if model_cfg.name == "torchvision":
        return str(model_cfg.arch)
    return None


def madry_checkpoint(
    network: dict[str, torch.Tensor], mean: torch.Tensor, std: torch.Tensor, epoch: int
) -> dict[str, Any]:
    """``{"model": ..., "epoch": ...}`` in the layout of the reference's ``NormalizedModel`` (module docstring): the
    network's state dict (``network_state``) behind the normaliser of ``mean`` and ``std``."""
    model = {
        "module.normalizer.new_mean": mean.reshape(3, 1, 1).clone(),
        "module.normalizer.new_std": std.reshape(3, 1, 1).clone(),
    }
    model.update({f"module.model.{k}": v.clone() for k, v in network.items()})
    return {"model": model, "epoch": int(epoch)}


def export(cfg: DictConfig, out_dir: Path) -> Path:
    """Write ``cfg.checkpoint`` in ``cfg.format`` (``FORMATS``) into ``out_dir`` (a new folder); returns the file."""
    if cfg.format not in FORMATS:
        raise RRXError(f"format={cfg.format}; known: {', '.join(FORMATS)}")
    ckpt, file = load_checkpoint(cfg.checkpoint, unpickle_older=False)
    trained = saved_config(ckpt["config"])
    arch = torchvision_arch(trained.model)
    if cfg.format == "madry" and not (arch or "").startswith("resnet"):
        raise RRXError(
            f"format=madry holds the reference's ResNets (torchvision's layout); this checkpoint's model is "
            f"{trained.model.name}: use format=state_dict"
        )
    state = ckpt["state_dict"]
    network = network_state(state)  # checked before anything is written
    with claim_new_folder(out_dir, "export"):
        record_hydra_config(out_dir, cfg)
        if cfg.format == "madry":
            target, payload = (
                out_dir / "madry_checkpoint.pt",
                madry_checkpoint(network, state["mean"], state["std"], ckpt.get("epoch", 0)),
            )
            how = f"python in9_eval.py --arch {arch} --checkpoint {target.name} (MadryLab/backgrounds_challenge)"
        else:
            target, payload = out_dir / "state_dict.pt", {k: v.clone() for k, v in network.items()}
            k = trained.dataset.num_classes
            if arch:
                how = f"torchvision.models.get_model({arch!r}, num_classes={k}).load_state_dict(torch.load(file))"
            elif trained.model.name == "timm":
                how = f"timm.create_model({trained.model.arch!r}, num_classes={k}).load_state_dict(torch.load(file))"
            else:  # one of rrx's own networks
                how = (
                    f"rrx.models.create_model(rrx.config.component('model', {trained.model.name!r}), {k}, mean, std)"
                    ".backbone.load_state_dict(torch.load(file))"
                )
        atomic_write(target, lambda tmp: torch.save(payload, tmp))
        write_json(
            out_dir / "export.json",
            {
                "format": cfg.format,
                "file": target.name,
                "architecture": arch or trained.model.get("arch", trained.model.name),
                "classes": ckpt.get("classes"),
                "mean": state["mean"].flatten().tolist(),
                "std": state["std"].flatten().tolist(),
                "checkpoint": str(file.resolve()),
                "checkpoint_sha256": file_sha256(file),
                "load": how,
                "provenance": collect(None, None, {"checkpoint": str(file.resolve())}),
            },
        )
    log.info("Exported %s (%s) to %s", file, cfg.format, target)
    return target
