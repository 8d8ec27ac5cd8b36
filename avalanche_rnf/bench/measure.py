"""Cost measurements: peak memory of a run and the state a strategy keeps between experiences."""

from __future__ import annotations

import ctypes
import gc
import threading
from typing import Any

import psutil
import torch
from torch import nn
from torch.utils.data import Dataset


class PeakMemory:
    """Peak resident memory (RSS) of this process while the block runs, sampled by a thread.

    Runs share a process, so before the block the garbage collector runs and glibc returns freed
    heap to the system (``malloc_trim``); ``delta_mb`` is the peak above the RSS at entry, i.e.
    what the run itself needed. On CUDA, ``cuda_mb`` is PyTorch's peak allocated GPU memory.
    """

    def __init__(self, interval_s: float = 0.02):
        self.interval_s = interval_s
        self.start_mb = self.peak_mb = 0.0
        self.cuda_mb: float | None = None
        self._stop = threading.Event()
        self._process = psutil.Process()

    def _rss_mb(self) -> float:
        return self._process.memory_info().rss / 2**20

    def _sample(self) -> None:
        while not self._stop.wait(self.interval_s):
            self.peak_mb = max(self.peak_mb, self._rss_mb())

    def __enter__(self) -> PeakMemory:
        gc.collect()
        _malloc_trim()
        if torch.cuda.is_available():
            torch.cuda.reset_peak_memory_stats()
        self.start_mb = self.peak_mb = self._rss_mb()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self.peak_mb = max(self.peak_mb, self._rss_mb())
        if torch.cuda.is_available():
            self.cuda_mb = torch.cuda.max_memory_allocated() / 2**20

    @property
    def delta_mb(self) -> float:
        return self.peak_mb - self.start_mb


def _malloc_trim() -> None:
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


def strategy_state_nbytes(name: str, strategy) -> int:
    """Bytes of the extra state ``strategy`` keeps between experiences (beyond the model and optimizer).

    EWC, SI, MAS and LwF: every tensor their plugins hold (importances, old weights, SI's
    trajectories, LwF's teacher copy). Replay and ER-ACE: the buffer's samples (inputs and labels).
    PackNet: the task masks stored in the wrapped layers. RNF: its masks and frozen values. Generative
    Replay: its generator with the generator's optimizer state, and the copies of the previous
    generator and network it keeps to replay.
    """
    if name == "rnf":
        return strategy.rnf.state_nbytes()
    if name in ("slda", "slda_backbone"):
        return sum(t.nbytes for t in (strategy.muK, strategy.cK, strategy.Sigma, strategy.Lambda))
    if name == "packnet":
        return sum(b.nbytes for b in strategy.model.buffers())
    if name in ("replay", "er_ace"):
        owner = strategy if name == "er_ace" else next(p for p in strategy.plugins if hasattr(p, "storage_policy"))
        buffer = owner.storage_policy.buffer
        if len(buffer) == 0:
            return 0
        x = buffer[0][0]
        return len(buffer) * (x.nbytes + torch.tensor(0).nbytes)
    total = 0
    if name == "generative_replay":  # the plugins below hold the generator; its optimizer's moments persist too
        total = sum(t.nbytes for s in strategy.generator_strategy.optimizer.state.values() for t in s.values()
                    if isinstance(t, torch.Tensor))
    exclude = {t.untyped_storage().data_ptr() for t in [*strategy.model.parameters(), *strategy.model.buffers()]}
    seen: set[int] = set()
    for plugin in strategy.plugins:
        if plugin is strategy.evaluator:
            continue
        for tensor in _tensors(plugin, depth=6, visited=set()):
            ptr = tensor.untyped_storage().data_ptr()
            if ptr not in exclude and ptr not in seen:
                seen.add(ptr)
                total += tensor.untyped_storage().nbytes()
    return total


def _tensors(obj: Any, depth: int, visited: set[int]):
    if depth < 0 or id(obj) in visited:
        return
    visited.add(id(obj))
    if isinstance(obj, torch.Tensor):
        yield obj
    elif isinstance(obj, nn.Module):
        yield from obj.parameters()
        yield from obj.buffers()
    elif isinstance(obj, dict):
        for v in obj.values():
            yield from _tensors(v, depth - 1, visited)
    elif isinstance(obj, (list, tuple, set)):
        for v in obj:
            yield from _tensors(v, depth - 1, visited)
    elif hasattr(obj, "__dict__") and not isinstance(obj, (Dataset, torch.optim.Optimizer, type)):
        for v in vars(obj).values():
            yield from _tensors(v, depth - 1, visited)
