"""Tiny random CLIP and ALIGN models saved as ``save_pretrained`` folders (no download), with a character tokenizer."""

from __future__ import annotations

import string
from pathlib import Path

import torch

SPECIAL = ["[PAD]", "[UNK]", "[BOS]", "[EOS]"]
IMAGE_SIZE = 32


def _tokenizer():
    from tokenizers import Tokenizer, models, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    chars = string.ascii_lowercase + string.digits + " .,'-_(){}/"
    vocab = {**{t: i for i, t in enumerate(SPECIAL)}, **{c: i + len(SPECIAL) for i, c in enumerate(chars)}}
    tok = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.Split("", "isolated")
    tok.post_processor = processors.TemplateProcessing(
        single="[BOS] $A [EOS]", special_tokens=[("[BOS]", 2), ("[EOS]", 3)]
    )
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        pad_token="[PAD]",
        unk_token="[UNK]",
        bos_token="[BOS]",
        eos_token="[EOS]",
        model_max_length=77,
    )
    return fast, len(vocab)


def write_tiny_vlm(folder: Path, kind: str = "clip", seed: int = 0) -> Path:
    """A random ``kind`` (clip or align) model and its tokenizer in ``folder``; returns it."""
    from transformers import AlignConfig, AlignModel, CLIPConfig, CLIPModel

    torch.manual_seed(seed)
    tokenizer, vocab_size = _tokenizer()
    text = dict(
        vocab_size=vocab_size,
        hidden_size=32,
        intermediate_size=37,
        num_hidden_layers=2,
        num_attention_heads=4,
        max_position_embeddings=80,
        pad_token_id=0,
        bos_token_id=2,
        eos_token_id=3,
    )
    if kind == "clip":
        config = CLIPConfig(
            text_config=text,
            projection_dim=16,
            vision_config=dict(
                hidden_size=32,
                intermediate_size=37,
                num_hidden_layers=2,
                num_attention_heads=4,
                image_size=IMAGE_SIZE,
                patch_size=8,
            ),
        )
        model = CLIPModel(config)
    else:
        # ALIGN projects the text only: projection_dim is the width of the pooled image features
        config = AlignConfig(
            text_config=text,
            projection_dim=32,
            vision_config=dict(image_size=IMAGE_SIZE, width_coefficient=0.1, depth_coefficient=0.1, hidden_dim=64),
        )
        model = AlignModel(config)
        for module in model.vision_model.modules():  # the std-0.02 init makes the tiny EfficientNet's output vanish
            if isinstance(module, torch.nn.Conv2d):
                torch.nn.init.kaiming_normal_(module.weight)
    folder.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder
