"""A tiny, randomly initialised MPNet saved as a sentence-transformers folder, for tests (needs arttag[export]).

It has the real model's shape of everything that matters to the code
(MPNet architecture, a lower-casing WordPiece tokenizer with ``<s> ... </s>``
and ``<pad>`` = 1, mean pooling, Normalize, a max sequence length) at a
fraction of the size, so export and runtime are tested without the 440 MB download.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path

SPECIALS = ["<s>", "<pad>", "</s>", "<unk>", "[UNK]", "<mask>"]


def build_tokenizer(texts: Iterable[str], vocab_size: int = 400):
    """A WordPiece tokenizer trained on ``texts``, set up like all-mpnet-base-v2's."""
    from tokenizers import (
        Tokenizer,
        decoders,
        models,
        normalizers,
        pre_tokenizers,
        processors,
        trainers,
    )

    tokenizer = Tokenizer(models.WordPiece(unk_token="[UNK]", continuing_subword_prefix="##"))
    tokenizer.normalizer = normalizers.BertNormalizer(lowercase=True, clean_text=True, handle_chinese_chars=True)
    tokenizer.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    trainer = trainers.WordPieceTrainer(vocab_size=vocab_size, special_tokens=SPECIALS, min_frequency=1)
    tokenizer.train_from_iterator(list(texts), trainer)
    tokenizer.post_processor = processors.RobertaProcessing(sep=("</s>", 2), cls=("<s>", 0))
    tokenizer.decoder = decoders.WordPiece(prefix="##")
    return tokenizer


def build_tiny_mpnet(
    out_dir: Path,
    texts: Iterable[str],
    *,
    hidden_size: int = 32,
    layers: int = 2,
    heads: int = 2,
    intermediate_size: int = 64,
    max_seq_length: int = 64,
    vocab_size: int = 400,
    seed: int = 0,
) -> Path:
    """Write a sentence-transformers model folder (Transformer + mean Pooling + Normalize) to ``out_dir``."""
    import torch
    from sentence_transformers import SentenceTransformer

    try:  # newer sentence-transformers moved the modules here (the old path warns); older ones have only the old
        from sentence_transformers.sentence_transformer import modules as models
    except ImportError:
        from sentence_transformers import models
    from transformers import MPNetConfig, MPNetModel, MPNetTokenizerFast

    out_dir = Path(out_dir)
    base = out_dir.with_name(out_dir.name + "-base")
    base.mkdir(parents=True, exist_ok=True)
    tokenizer = build_tokenizer(texts, vocab_size)
    tokenizer.save(str(base / "tokenizer.json"))
    fast = MPNetTokenizerFast(
        tokenizer_file=str(base / "tokenizer.json"),
        bos_token="<s>", eos_token="</s>", sep_token="</s>", cls_token="<s>",
        unk_token="[UNK]", pad_token="<pad>", mask_token="<mask>", do_lower_case=True,
        model_max_length=512,
    )
    fast.save_pretrained(str(base))
    torch.manual_seed(seed)
    config = MPNetConfig(
        vocab_size=tokenizer.get_vocab_size(),
        hidden_size=hidden_size,
        num_hidden_layers=layers,
        num_attention_heads=heads,
        intermediate_size=intermediate_size,
        # MPNet positions start after the padding index, hence the +2.
        max_position_embeddings=max_seq_length + 2,
        pad_token_id=1, bos_token_id=0, eos_token_id=2,
    )
    model = MPNetModel(config).eval()
    # Random init gives near-identical token vectors; larger weights make texts distinguishable,
    # so parity checks compare meaningfully different embeddings.
    with torch.no_grad():
        model.embeddings.word_embeddings.weight.normal_(0.0, 1.0)
    model.save_pretrained(str(base), safe_serialization=True)
    transformer = models.Transformer(str(base), max_seq_length=max_seq_length)
    pooling = models.Pooling(hidden_size, pooling_mode="mean")
    st = SentenceTransformer(modules=[transformer, pooling, models.Normalize()], device="cpu")
    st.save(str(out_dir))
    # The folder must look like the fetched one: model weights as safetensors, tokenizer.json present.
    for name in ("model.safetensors", "tokenizer.json", "modules.json"):
        if not (out_dir / name).is_file():
            raise RuntimeError(f"tiny model folder lacks {name}")
    (out_dir / "arttag-tiny.json").write_text(json.dumps({"seed": seed, "hidden_size": hidden_size}) + "\n")
    return out_dir
