"""Where pretrained weights come from: the local caches only, unless ``model.download=true``.

rrx never downloads in its default configuration (clusters and tests are often offline). A model name the
library does not know lists close matches; a known name whose weights are not in the cache says where rrx
looked and that ``model.weights_path`` (a local file or folder) is the fix.
"""

from __future__ import annotations

import difflib
import pickle
from dataclasses import dataclass
from pathlib import Path

import torch

from rrx.config import param
from rrx.errors import RRXError
from rrx.models import ModelConfig

IMAGENET_NORMALISATION = ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))  # (mean, std) of ImageNet-1k models


@dataclass
class WeightsConfig(ModelConfig):
    """a model with weights of its own (rrx's small models have none)"""

    pretrained: bool = param(
        False, "true: the library's pretrained weights from the local caches ($TORCH_HOME, Hugging Face)"
    )
    weights_path: str | None = param(None, "a local weights file (or folder) instead; it replaces pretrained")
    download: bool = param(False, "true: fetch pretrained weights missing from the caches (needs internet)")


def close_matches(name: str, known: list[str]) -> str:
    """``"; close matches: a, b"`` (or nothing) for an unknown model name."""
    matches = difflib.get_close_matches(name, known, n=5, cutoff=0.6)
    return f"; close matches: {', '.join(matches)}" if matches else ""


def torch_hub_file(url: str) -> Path:
    """Where torch.hub (torchvision, timm's URL weights) caches the file of ``url``: $TORCH_HOME/hub/checkpoints."""
    return Path(torch.hub.get_dir()) / "checkpoints" / Path(url).name


def hf_hub_file(
    repo_id: str, filenames=("model.safetensors", "pytorch_model.bin", "open_clip_pytorch_model.bin")
) -> Path | None:
    """The first of ``filenames`` of ``repo_id`` in the local Hugging Face cache, or None."""
    from huggingface_hub import try_to_load_from_cache

    for filename in filenames:
        found = try_to_load_from_cache(repo_id, filename)
        if isinstance(found, str):
            return Path(found)
    return None


def hf_cache_dir() -> str:
    from huggingface_hub import constants

    return constants.HF_HUB_CACHE


def missing_weights(name: str, looked: list[str]) -> RRXError:
    return RRXError(
        f"model {name}: no pretrained weights in the local cache (looked in {', '.join(looked)}); "
        "pass model.weights_path=<local weights file or folder>, or model.download=true on a machine with internet"
    )


def load_state_dict(path: str | Path, name: str) -> dict:
    """A state dict from a ``.pth``/``.pt``/``.safetensors`` file; an unreadable file is one RRXError naming it."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise RRXError(f"model.weights_path={path}: no such file (model {name})")
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            return load_file(str(path))
        state = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:  # torch's message is a page of advice to unpickle it anyway
        raise RRXError(
            f"model.weights_path={path}: cannot load: it holds Python objects besides tensors and plain "
            "values, which rrx never unpickles (save the state dict alone)"
        ) from err
    except Exception as err:
        raise RRXError(f"model.weights_path={path}: cannot load ({str(err).strip().splitlines()[0]})") from err
    return state.get("state_dict", state) if isinstance(state, dict) else state


def torchvision_state(arch: str, cfg) -> dict | None:
    """The state dict for torchvision model ``arch``: ``cfg.weights_path``, else with ``cfg.pretrained`` the default
    ImageNet weights from the torch.hub cache ($TORCH_HOME/hub/checkpoints; fetched only with ``cfg.download``);
    None for random weights."""
    if cfg.weights_path:
        return load_state_dict(cfg.weights_path, arch)
    if not cfg.pretrained:
        return None
    from torchvision.models import get_model_weights

    weights = get_model_weights(arch).DEFAULT
    file = torch_hub_file(weights.url)
    if file.is_file():
        return load_state_dict(file, arch)
    if cfg.download:
        try:
            return weights.get_state_dict(progress=False)
        except OSError as err:  # URLError is an OSError
            raise RRXError(
                f"model {arch}: cannot download {weights} ({err}); place {file.name} in {file.parent} "
                "or pass model.weights_path=<state dict .pth>"
            ) from err
    raise missing_weights(f"{arch} ({weights})", [str(file)])


def load_weights(model: torch.nn.Module, state: dict, what: str) -> None:
    """``model.load_state_dict(state)``; weights that do not fit are an RRXError naming ``what`` and the first missing
    and unexpected keys and the first shape mismatch (torch's own message starts with a line that names none)."""
    own = model.state_dict()
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    shapes = [
        f"{k} is {tuple(state[k].shape)}, the model's {tuple(t.shape)}"
        for k, t in own.items()
        if k in state and hasattr(state[k], "shape") and tuple(state[k].shape) != tuple(t.shape)
    ]
    found = [
        f"{label} {len(keys)} ({', '.join(keys[:3])}{', ...' if len(keys) > 3 else ''})"
        for label, keys in (("missing keys:", missing), ("unexpected keys:", unexpected))
        if keys
    ]
    if shapes:
        found.append(f"{len(shapes)} shape mismatches (first: {shapes[0]})")
    if found:
        raise RRXError(f"the weights do not fit {what}: {'; '.join(found)}")
    model.load_state_dict(state)
