"""Training on several processes: PyTorch DistributedDataParallel, launched through
``torch.distributed.run`` (torchrun), gloo on CPUs and NCCL on GPUs.

``train_distributed`` takes what ``train_lm`` takes. It writes the train split and the
validation events to Parquet (and the catalogue beside them) in a work folder, launches
``nproc_per_node`` workers, and reads back the checkpoint that rank 0 writes: the caller
gets a ``TrainResult`` as from ``train_lm``. Each worker runs ``train_lm`` with a
``World``: it takes every ``size``-th batch of each epoch, DistributedDataParallel
averages the gradients, and every worker validates the same weights, so all agree on
the mixture and on when to stop.

Settings (``lm.distributed`` in project.yml, or ``--vars``):

    nproc_per_node: 2          # workers on this host
    nnodes: 1                  # hosts; above 1 each other host joins with the command below
    node_rank: 0
    rdzv_endpoint: null        # host:port of the rendezvous; null = this host, a free port
    rdzv_id: duckrec
    backend: auto              # gloo on CPU, nccl where the device is CUDA
    work_dir: null             # where inputs and the checkpoint go; shared storage across hosts

On another host (same work_dir, on shared storage):
``python -m torch.distributed.run --nnodes N --node_rank K --nproc_per_node P
--rdzv_backend c10d --rdzv_endpoint HOST:PORT --rdzv_id duckrec -m duckrec.ml.distributed WORK_DIR``.
"""
from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import tempfile
from collections import deque
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from .score import TrainedLM
from .sequences import Catalogue
from .threads import allowed_cpus
from .train import TrainConfig, TrainResult, resolve_device, train_lm

SETTINGS = {"nproc_per_node": 1, "nnodes": 1, "node_rank": 0, "rdzv_endpoint": None, "rdzv_id": "duckrec",
            "backend": "auto", "work_dir": None}


def distributed_settings(values: dict | None) -> dict:
    """``lm.distributed`` with defaults; unknown keys and impossible values are errors."""
    values = dict(values or {})
    unknown = sorted(set(values) - set(SETTINGS))
    if unknown:
        raise ValueError(f"lm.distributed: unknown settings {unknown}; expected some of {sorted(SETTINGS)}")
    out = {**SETTINGS, **values}
    for key in ("nproc_per_node", "nnodes"):
        if isinstance(out[key], bool) or not isinstance(out[key], int) or out[key] < 1:
            raise ValueError(f"lm.distributed.{key}: expected a whole number >= 1, found {out[key]!r}")
    if out["backend"] not in ("auto", "gloo", "nccl"):
        raise ValueError(f"lm.distributed.backend: expected 'auto', 'gloo' or 'nccl', found {out['backend']!r}")
    if out["nnodes"] > 1 and not out["rdzv_endpoint"]:
        raise ValueError("lm.distributed: nnodes > 1 needs rdzv_endpoint (host:port every host can reach)")
    return out


@dataclass
class World:
    """This process's place in a DistributedDataParallel job (see ``train_lm``)."""

    rank: int
    size: int
    device: torch.device

    def wrap(self, module: torch.nn.Module) -> torch.nn.Module:
        from torch.nn.parallel import DistributedDataParallel

        ids = [self.device.index] if self.device.type == "cuda" else None
        # a catalogue without content tokens leaves the token embedding out of the loss
        return DistributedDataParallel(module, device_ids=ids, find_unused_parameters=True)

    def shard(self, batches: list) -> list:
        """Every ``size``-th batch from ``rank``; all take the same number of steps."""
        per = len(batches) // self.size
        if per == 0:  # fewer batches than processes: each takes one, repeats allowed
            return [batches[self.rank % len(batches)]]
        return batches[self.rank :: self.size][:per]

    def all_sum(self, *values: float) -> list[float]:
        import torch.distributed as dist

        t = torch.tensor(values, dtype=torch.float64, device=self.device)
        dist.all_reduce(t)
        return t.tolist()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def export_inputs(folder: Path, catalogue: Catalogue, train_sequences: list[np.ndarray],
                  valid_histories: list[np.ndarray], valid_targets: np.ndarray, config: TrainConfig,
                  text: np.ndarray | None = None) -> None:
    """The worker's inputs: the train split and validation events as Parquet, the catalogue, the
    config, and the text embeddings where the LM reads them."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    folder.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.table({"sequence": pa.array([np.asarray(s, dtype=np.int64) for s in train_sequences],
                                                   type=pa.list_(pa.int64()))}), folder / "train.parquet")
    pq.write_table(pa.table({"history": pa.array([np.asarray(h, dtype=np.int64) for h in valid_histories],
                                                  type=pa.list_(pa.int64())),
                             "target": pa.array(np.asarray(valid_targets, dtype=np.int64))}),
                   folder / "valid.parquet")
    np.savez(folder / "catalogue.npz", item_ids=catalogue.item_ids, token_offsets=catalogue.token_offsets,
             token_index=catalogue.token_index, token_names=np.asarray(catalogue.token_names, dtype=str))
    (folder / "config.json").write_text(json.dumps(asdict(replace(config, distributed=None))))
    if text is not None:
        np.save(folder / "text.npy", np.asarray(text, dtype=np.float32))


def _import_inputs(folder: Path):
    import pyarrow.parquet as pq

    cat = np.load(folder / "catalogue.npz")
    catalogue = Catalogue(cat["item_ids"], tuple(cat["token_names"].tolist()), cat["token_offsets"],
                          cat["token_index"])
    train = [np.asarray(s, dtype=np.int64) for s in pq.read_table(folder / "train.parquet")["sequence"].to_pylist()]
    valid = pq.read_table(folder / "valid.parquet")
    histories = [np.asarray(h, dtype=np.int64) for h in valid["history"].to_pylist()]
    targets = valid["target"].to_numpy()
    config = TrainConfig.from_vars(json.loads((folder / "config.json").read_text()))
    text = np.load(folder / "text.npy") if (folder / "text.npy").exists() else None
    return catalogue, train, histories, targets, config, text


def train_distributed(catalogue: Catalogue, train_sequences: list[np.ndarray], valid_histories: list[np.ndarray],
                      valid_targets: np.ndarray, config: TrainConfig,
                      log: Callable[[str], None] = print, text: np.ndarray | None = None) -> TrainResult:
    """``train_lm`` on ``lm.distributed`` processes: export, launch, gather (see the module)."""
    settings = distributed_settings(config.distributed)
    nproc = settings["nproc_per_node"]
    device = resolve_device(config.device)
    with tempfile.TemporaryDirectory(prefix="duckrec-ddp-", dir=settings["work_dir"]) as tmp:
        folder = Path(tmp)
        export_inputs(folder, catalogue, train_sequences, valid_histories, valid_targets, config, text)
        endpoint = settings["rdzv_endpoint"] or f"127.0.0.1:{_free_port()}"
        cmd = [sys.executable, "-m", "torch.distributed.run", f"--nproc_per_node={nproc}",
               f"--nnodes={settings['nnodes']}", f"--node_rank={settings['node_rank']}",
               "--rdzv_backend=c10d", f"--rdzv_endpoint={endpoint}", f"--rdzv_id={settings['rdzv_id']}",
               "-m", "duckrec.ml.distributed", str(folder), settings["backend"]]
        env = dict(os.environ)
        # the host's CPUs split between the workers, so they never oversubscribe it
        per_worker = max(1, min(allowed_cpus(), config.threads or allowed_cpus()) // nproc)
        env.update(OMP_NUM_THREADS=str(per_worker), OMP_WAIT_POLICY=env.get("OMP_WAIT_POLICY", "PASSIVE"))
        log(f"distributed training: {nproc} processes x {settings['nnodes']} hosts on {device.type} "
            f"({'nccl' if device.type == 'cuda' and settings['backend'] != 'gloo' else 'gloo'}), "
            f"{per_worker} threads each, rendezvous {endpoint}, inputs in {folder}")
        tail: deque[str] = deque(maxlen=30)
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
        for line in proc.stdout:
            line = line.rstrip()
            tail.append(line)
            if line.startswith("[duckrec] "):
                log(line.removeprefix("[duckrec] "))
        rc = proc.wait()
        checkpoint = folder / "checkpoint.pt"
        if rc != 0 or not checkpoint.exists():
            raise RuntimeError(f"distributed training: expected the workers to write {checkpoint.name}, "
                               f"found exit code {rc}; last output:\n" + "\n".join(tail))
        lm = TrainedLM.from_bytes(checkpoint.read_bytes())
        meta = json.loads((folder / "result.json").read_text())
    return TrainResult(lm, meta["history"], meta["best_epoch"])


def _worker(folder: Path, backend: str) -> None:
    import torch.distributed as dist

    catalogue, train, histories, targets, config, text = _import_inputs(folder)
    rank, size = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
    local = int(os.environ.get("LOCAL_RANK", "0"))
    device = resolve_device(config.device)
    if device.type == "cuda":
        device = torch.device("cuda", local % torch.cuda.device_count())
        torch.cuda.set_device(device)
    if backend == "auto":
        backend = "nccl" if device.type == "cuda" else "gloo"
    dist.init_process_group(backend)
    try:
        threads = int(os.environ.get("OMP_NUM_THREADS", "1"))
        config = replace(config, threads=threads)

        def log(text: str) -> None:
            if rank == 0:
                print(f"[duckrec] {text}", flush=True)

        result = train_lm(catalogue, train, histories, targets, config, log=log,
                          world=World(rank, size, device), text=text)
        if rank == 0:
            (folder / "result.json").write_text(json.dumps({"history": result.history,
                                                            "best_epoch": result.best_epoch}))
            (folder / "checkpoint.pt").write_bytes(result.lm.to_bytes())
        dist.barrier()
    finally:
        dist.destroy_process_group()


if __name__ == "__main__":
    _worker(Path(sys.argv[1]), sys.argv[2] if len(sys.argv) > 2 else "auto")
