"""Zero-shot vision-language classifiers (thesis ch. 6): CLIP and ALIGN from Hugging Face ``transformers``.

A zero-shot model is a classifier whose logits are class scores. Each class c has a set of texts D(c):
the class name in the prompt templates (``model.prompts``, Method "Top-1"), or the class's visual descriptors
phrased as "<class>, which (is/has) <descriptor>" (classification by description, Menon & Vondrick 2023;
Method "Descriptors"). The score of class c is the mean similarity of the image with the texts of c,
thesis Eq. 6.1: s(c, x) = 1/|D(c)| sum_{d in D(c)} phi(d, x), phi the cosine of the two embeddings; the
prediction is argmax_c s(c, x) (Eq. 6.2). The logits are s scaled by the model's own temperature (CLIP's
``logit_scale``, ALIGN's ``1 / temperature``), which changes no prediction.
"""

from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from rrx.config import param
from rrx.errors import RRXError
from rrx.models import register_model
from rrx.models.weights import WeightsConfig, hf_cache_dir

log = logging.getLogger(__name__)

DESCRIPTOR_DIR = Path(__file__).resolve().parents[1] / "data" / "descriptors"
HF_CLASSES = {"clip": "CLIPModel", "align": "AlignModel"}
DESCRIPTORS_HELP = (
    "null: the prompts | in9 | rival10 | synthetic (object only) | in9_with_context | rival10_with_context (rrx's "
    "first lists, with background phrases) | <path to {class: [descriptor, ...]} JSON>"
)


@dataclass
class ZeroShotConfig(WeightsConfig):
    """a zero-shot vision-language model (transformers), evaluated only: rrx evaluate model=clip ..."""

    hf_name: str = param("", "the Hugging Face model id (weights and tokenizer from the local cache)")
    prompts: list[str] = param(
        ["a photo of a {}."], "class-name templates holding {} (Method Top-1); used when descriptors is null"
    )
    descriptors: str | None = param(None, "the class descriptors (Method Descriptors): " + DESCRIPTORS_HELP)
    image_size: int = param(224, "images are resized to the model's input side", low=1)
    mean: list[float] = param([0.5, 0.5, 0.5], "the model's per-channel normalisation mean", low=0.0, high=1.0)
    std: list[float] = param([0.5, 0.5, 0.5], "the model's per-channel normalisation std", low=0.0, low_open=True)
    pretrained: bool = param(True, "a zero-shot model is its pretrained weights: always true", choices=(True,))
    weights_path: str | None = param(None, "a local folder saved by save_pretrained instead of the cache")


@dataclass
class CLIPConfig(ZeroShotConfig):
    """zero-shot CLIP (transformers CLIPModel), thesis ch. 6"""

    name: str = param("clip", "the registered name of the model")
    display_name: str = param("CLIP", "the Architecture column of the tables and figures")
    hf_name: str = param("openai/clip-vit-base-patch32", "the Hugging Face model id (from the local cache)")
    image_size: int = param(224, "images are resized to the model's input side", low=1)
    mean: list[float] = param(
        [0.48145466, 0.4578275, 0.40821073], "the model's per-channel normalisation mean", low=0.0, high=1.0
    )
    std: list[float] = param(
        [0.26862954, 0.26130258, 0.27577711], "the model's per-channel normalisation std", low=0.0, low_open=True
    )


@dataclass
class ALIGNConfig(ZeroShotConfig):
    """zero-shot ALIGN (transformers AlignModel; the thesis used kakaobrain/align-base)"""

    name: str = param("align", "the registered name of the model")
    display_name: str = param("ALIGN", "the Architecture column of the tables and figures")
    hf_name: str = param("kakaobrain/align-base", "the Hugging Face model id (from the local cache)")
    image_size: int = param(289, "the align-base processor's crop size", low=1)
    mean: list[float] = param([0.5, 0.5, 0.5], "the processor rescales to [-1, 1]", low=0.0, high=1.0)
    std: list[float] = param([0.5, 0.5, 0.5], "the processor rescales to [-1, 1]", low=0.0, low_open=True)


def class_name(folder: str) -> str:
    """A class folder as words: ``02_wheeled vehicle`` -> ``wheeled vehicle``,
    ``wheeled_vehicle`` -> ``wheeled vehicle``."""
    return re.sub(r"^\d+_", "", folder).replace("_", " ").strip()


def descriptor_sentence(name: str, descriptor: str) -> str:
    """Menon & Vondrick's phrasing of one descriptor of class ``name``: "which is" before an article or "used",
    "which" before a verb such as has/often/can, else "which has"."""
    first = descriptor.split(" ", 1)[0].lower()
    if first in ("a", "an", "used"):
        link = "which is"
    elif first in ("has", "often", "typically", "may", "can", "is", "are"):
        link = "which"
    else:
        link = "which has"
    return f"{name}, {link} {descriptor}"


def descriptor_file(source: str) -> Path:
    """The JSON file of ``model.descriptors``: a path, or the name of a file rrx ships (``DESCRIPTOR_DIR``: ``in9``,
    ``rival10``, ``synthetic`` describe the object only; ``in9_with_context``, ``rival10_with_context`` are rrx's
    first lists, which also name backgrounds). Any other name is one error listing the shipped names."""
    path = Path(source).expanduser()
    if not path.suffix and not path.exists():
        path = DESCRIPTOR_DIR / f"{source}.json"
    if not path.is_file():
        shipped = ", ".join(sorted(p.stem for p in DESCRIPTOR_DIR.glob("*.json")))
        raise RRXError(f"model.descriptors={source}: no such file (rrx ships: {shipped}; or give a JSON path)")
    return path


def read_descriptors(source: str, classes: list[str]) -> dict[str, list[str]]:
    """``{class: [descriptor, ...]}`` for ``classes`` from a JSON file (Menon & Vondrick's format; ``descriptor_file``).
    Keys starting with ``_`` document the file (``_source``: where its lists come from) and are skipped. Keys are
    matched on the class words (``class_name``); a class without descriptors is one error naming every such class."""
    path = descriptor_file(source)
    try:
        table = json.loads(path.read_text())
    except ValueError as err:
        raise RRXError(f"model.descriptors={source}: {path} is not JSON ({err})") from err
    if not isinstance(table, dict):
        raise RRXError(f"model.descriptors={source}: {path} must be a JSON object {{class: [descriptor, ...]}}")
    table = {str(k): v for k, v in table.items() if not str(k).startswith("_")}
    bad = sorted(k for k, v in table.items() if not isinstance(v, list))
    if bad:
        raise RRXError(f"model.descriptors={source}: {path}: the entries {bad} are not lists [descriptor, ...]")
    by_name = {class_name(k).lower(): v for k, v in table.items()}
    missing = [c for c in classes if not by_name.get(class_name(c).lower())]
    if missing:
        raise RRXError(
            f"model.descriptors={source}: {path} has no descriptors for the classes {missing} (it has {sorted(table)})"
        )
    return {c: [str(d) for d in by_name[class_name(c).lower()]] for c in classes}


def class_texts(cfg, classes: list[str]) -> tuple[list[str], list[int]]:
    """Every text and the class it describes: descriptor sentences with ``cfg.descriptors``, else the prompts."""
    texts, owner = [], []
    if cfg.descriptors:
        table = read_descriptors(str(cfg.descriptors), classes)
        for k, c in enumerate(classes):
            texts += [descriptor_sentence(class_name(c), d) for d in table[c]]
            owner += [k] * len(table[c])
    else:
        prompts = list(cfg.prompts)
        if not prompts or any("{}" not in p for p in prompts):
            raise RRXError(f"model.prompts={prompts}: give templates holding {{}} for the class name")
        for k, c in enumerate(classes):
            texts += [p.format(class_name(c)) for p in prompts]
            owner += [k] * len(prompts)
    return texts, owner


def _embedding(output) -> torch.Tensor:
    """``get_*_features`` returns the projected embedding (transformers 4) or an output holding it (5)."""
    return output if torch.is_tensor(output) else output.pooler_output


class ZeroShotClassifier(nn.Module):
    """Image -> class scores of a vision-language model; the class texts are embedded once by ``set_classes``.

    ``forward_features`` is the unit image embedding (B, D); ``similarities`` the cosine with every class text
    (B, T); ``forward_head`` the scaled class scores (B, K) of Eq. 6.1.
    """

    hf_model: Any  # a transformers CLIP/ALIGN model: get_image_features, get_text_features, logit_scale/temperature
    scale: torch.Tensor
    text_embeds: torch.Tensor
    owner: torch.Tensor

    def __init__(self, hf_model: nn.Module, tokenizer, cfg):
        super().__init__()
        self.hf_model = hf_model.eval()
        self.tokenizer = tokenizer
        self.cfg = cfg
        self.image_size = int(cfg.image_size)
        self.normalisation = (list(cfg.mean), list(cfg.std))
        hf = self.hf_model
        scale = hf.logit_scale.exp() if hasattr(hf, "logit_scale") else 1.0 / hf.temperature
        self.register_buffer("scale", scale.detach().float().reshape(()))
        self.texts: list[str] = []

    @torch.no_grad()
    def set_classes(self, classes: list[str]) -> None:
        texts, owner = class_texts(self.cfg, list(classes))
        tokens = self.tokenizer(texts, padding=True, truncation=True, return_tensors="pt")
        device = self.scale.device
        embeds = _embedding(
            self.hf_model.get_text_features(
                input_ids=tokens["input_ids"].to(device), attention_mask=tokens["attention_mask"].to(device)
            )
        )
        self.texts = texts
        self.register_buffer("text_embeds", F.normalize(embeds.float(), dim=-1), persistent=False)
        self.register_buffer("owner", torch.tensor(owner, device=device), persistent=False)
        self.num_classes = len(classes)
        log.info("zero-shot %s: %d texts for %d classes", self.cfg.hf_name, len(texts), len(classes))

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[-1] != self.image_size or x.shape[-2] != self.image_size:
            x = F.interpolate(
                x, size=(self.image_size, self.image_size), mode="bicubic", align_corners=False, antialias=True
            )
        return F.normalize(_embedding(self.hf_model.get_image_features(pixel_values=x)).float(), dim=-1)

    def similarities(self, features: torch.Tensor) -> torch.Tensor:
        """phi(d, x) for every class text d: (B, T) cosines."""
        return features @ self.text_embeds.T

    def class_scores(self, features: torch.Tensor) -> torch.Tensor:
        """s(c, x), thesis Eq. 6.1: the mean of the similarities of the texts of each class, (B, K)."""
        sims = self.similarities(features)
        total = sims.new_zeros(sims.shape[0], self.num_classes).index_add_(1, self.owner, sims)
        return total / torch.bincount(self.owner, minlength=self.num_classes).to(sims.dtype)

    def forward_head(self, features: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        return features if pre_logits else self.scale * self.class_scores(features)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))


def load_hf(cfg):
    """The model and tokenizer ``cfg.hf_name`` (or the folder ``cfg.weights_path``) from local files; fetched only
    with ``cfg.download=true``. A name not in the cache is one error naming it and the cache."""
    import transformers

    source = str(cfg.weights_path) if cfg.weights_path else str(cfg.hf_name)
    local_only = not cfg.download
    model_class = getattr(transformers, HF_CLASSES[cfg.name])
    try:
        tokenizer = transformers.AutoTokenizer.from_pretrained(source, local_files_only=local_only)
        model = model_class.from_pretrained(source, local_files_only=local_only)
    except (OSError, ValueError) as err:
        where = source if cfg.weights_path else f"the Hugging Face cache {hf_cache_dir()}"
        raise RRXError(
            f"model.hf_name={cfg.hf_name}: no {HF_CLASSES[cfg.name]} weights and tokenizer for {source} in {where} "
            f"({str(err).splitlines()[0]}); pass model.weights_path=<folder saved by save_pretrained>, "
            "or model.download=true on a machine with internet"
        ) from err
    return model, tokenizer


def create_zero_shot(cfg, num_classes: int | None) -> nn.Module:
    if num_classes is not None:
        raise RRXError(
            f"model={cfg.name} is a zero-shot model: it is evaluated (rrx evaluate model={cfg.name}), not trained"
        )
    if cfg.descriptors:
        descriptor_file(str(cfg.descriptors))  # a bad name fails before the weights are loaded
    model, tokenizer = load_hf(cfg)
    return ZeroShotClassifier(model, tokenizer, cfg)


register_model("clip", config=CLIPConfig)(create_zero_shot)
register_model("align", config=ALIGNConfig)(create_zero_shot)
