"""A least-recently-used cache of loaded models, bounded by an estimate of their memory."""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Any, Callable, Hashable

import torch

from aigc_desktop.core.errors import is_out_of_memory


def module_bytes(obj: Any) -> int:
    """Bytes held by the parameters and buffers of a module or of a pipeline's modules."""
    modules = []
    if isinstance(obj, torch.nn.Module):
        modules = [obj]
    elif hasattr(obj, "components"):
        modules = [m for m in obj.components.values() if isinstance(m, torch.nn.Module)]
    elif isinstance(obj, (list, tuple)):
        return sum(module_bytes(o) for o in obj)
    elif hasattr(obj, "modules_for_size"):
        modules = list(obj.modules_for_size())
    total = 0
    seen: set[int] = set()
    for m in modules:
        for t in list(m.parameters()) + list(m.buffers()):
            if id(t) in seen:
                continue
            seen.add(id(t))
            total += t.numel() * t.element_size()
    return total


def default_budget_bytes(device: torch.device) -> int:
    """Automatic budget: most of the GPU's memory, or a quarter of system RAM on CPU (at least 4 GB)."""
    if device.type == "cuda":
        _free, total = torch.cuda.mem_get_info(device)
        return int(total * 0.6)
    try:
        import os

        ram = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        ram = 16 << 30
    return max(4 << 30, ram // 4)


def _release_memory() -> None:
    """Give an evicted model's memory back: pipelines hold reference cycles, and CUDA keeps freed blocks."""
    import gc

    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


class ModelCache:
    def __init__(self, budget_bytes: int, sizer: Callable[[Any], int] = module_bytes) -> None:
        self.budget = int(budget_bytes)
        self._sizer = sizer
        self._items: OrderedDict[Hashable, tuple[Any, int]] = OrderedDict()
        self._lock = threading.Lock()
        self.evictions: list[Hashable] = []

    def get(self, key: Hashable) -> Any | None:
        with self._lock:
            hit = self._items.get(key)
            if hit is None:
                return None
            self._items.move_to_end(key)
            return hit[0]

    def get_or_load(self, key: Hashable, loader: Callable[[], Any], estimate: int = 0) -> Any:
        """The cached value, or `loader()`'s, cached. With an `estimate` of the new value's bytes, older
        entries make room before loading; when loading runs out of memory with other models resident,
        they are all dropped and the load is tried once more."""
        hit = self.get(key)
        if hit is not None:
            return hit
        if estimate:
            self.make_room(estimate)
        try:
            value = loader()
        except Exception as exc:  # noqa: BLE001 - only out-of-memory is retried
            if not is_out_of_memory(exc) or not self._items:
                raise
            self.clear()
            value = loader()
        self.put(key, value)
        return value

    def put(self, key: Hashable, value: Any) -> None:
        size = self._sizer(value)
        with self._lock:
            self._items[key] = (value, size)
            self._items.move_to_end(key)
            self._trim(keep=key)

    def _trim(self, keep: Hashable) -> None:
        while self.used_bytes() > self.budget and len(self._items) > 1:
            oldest = next(iter(self._items))
            if oldest == keep:
                break
            del self._items[oldest]
            self.evictions.append(oldest)
            _release_memory()

    def make_room(self, needed: int) -> None:
        """Evict least-recently-used entries until `needed` more bytes fit the budget."""
        with self._lock:
            evicted = False
            while self._items and self.used_bytes() + needed > self.budget:
                oldest = next(iter(self._items))
                del self._items[oldest]
                self.evictions.append(oldest)
                evicted = True
        if evicted:
            _release_memory()

    def used_bytes(self) -> int:
        return sum(size for _v, size in self._items.values())

    def keys(self) -> list[Hashable]:
        with self._lock:
            return list(self._items)

    def clear(self) -> None:
        with self._lock:
            self._items.clear()
        _release_memory()

    def __contains__(self, key: Hashable) -> bool:
        with self._lock:
            return key in self._items
