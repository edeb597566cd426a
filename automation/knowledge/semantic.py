"""Meaning, not words: a static token-embedding model that ships inside a PyPI package.

Word overlap cannot tell that "are you guys open on saturday" is about the opening hours
when the passage says "closed at weekends", nor that "my son knocked his tooth out" is an
emergency. A sentence embedding can, but a transformer (MiniLM, tried before: 47 ms a
question) is too slow for the 20 ms decision budget. WordLlama's `l2_supercat_256` is a
static embedding: one 256-number vector per token of a Llama-2 tokenizer (32,000 tokens,
16 MB in float16), and a text's vector is the mean of its tokens' — a few microseconds.

The weights and the tokenizer are files inside the pinned `wordllama` wheel; nothing is
downloaded. They are read here directly (safetensors + tokenizers) rather than through
`WordLlama.load()`, because 0.4.0.post1's loader looks for the tokenizer in a folder the
wheel does not have and then falls back to a hub download, and importing its inference
module reconfigures the root logger (logging.basicConfig). Vectors are unit length, so a dot
product is the cosine. The model is loaded once per process, on first use.
"""
from __future__ import annotations

import importlib.util
import threading
from pathlib import Path

import numpy as np

WEIGHTS = "weights/l2_supercat_256.safetensors"
TOKENIZER = "tokenizers/l2_supercat_tokenizer_config.json"
DIM = 256

_lock = threading.Lock()
_model: tuple | None = None


def package_dir() -> Path:
    """Where the installed wordllama package keeps its files (without importing it)."""
    spec = importlib.util.find_spec("wordllama")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("the wordllama package is not installed (requirements.txt)")
    return Path(next(iter(spec.submodule_search_locations)))


def model() -> tuple:
    """(token embedding matrix, tokenizer), loaded once per process from the package."""
    global _model
    if _model is None:
        with _lock:
            if _model is None:
                from safetensors.numpy import load_file
                from tokenizers import Tokenizer

                root = package_dir()
                table = load_file(str(root / WEIGHTS))["embedding.weight"]
                tokenizer = Tokenizer.from_file(str(root / TOKENIZER))
                tokenizer.no_padding()
                tokenizer.no_truncation()
                _model = (table, tokenizer)
    return _model


def embed(texts: list[str]) -> np.ndarray:
    """One unit vector per text (float32, len(texts) × DIM); a text with no token gets 0s."""
    table, tokenizer = model()
    out = np.zeros((len(texts), DIM), dtype=np.float32)
    for i, enc in enumerate(tokenizer.encode_batch(list(texts), add_special_tokens=False)):
        if enc.ids:
            vec = table[enc.ids].astype(np.float32).mean(axis=0)
            norm = float(np.linalg.norm(vec))
            if norm > 0:
                out[i] = vec / norm
    return out
