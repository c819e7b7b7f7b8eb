"""Pins: a program's KV held across a tool call, with an expiry, on the GPU or parked on the CPU tier.

A pin is an owner other than a sequence. It holds one reference on each of its blocks, so they are never
evicted while it lasts. Where the references live follows the pin's state::

    pin()  ──► GPU refs ── park() ──► CPU refs ── prefetch() ──► GPU refs ── unpin() ──► no refs
                                         └────────────── unpin() ──────────────────────► no refs

The pin remembers each block's key (hash, parent hash, tokens), so it can find or re-index its blocks on
either tier whichever blocks happen to hold them.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass, replace

from tether.kvcache.block import BlockKey
from tether.kvcache.block_pool import BlockPool
from tether.kvcache.cpu_tier import CpuTier
from tether.kvcache.errors import BlockStateError, KVCacheIntegrityError, OutOfCpuBlocksError, UnknownPinError


@dataclass(frozen=True)
class PinInfo:
    """What one pin holds: GPU blocks while not parked, CPU blocks while parked (never both)."""

    pin_id: Hashable
    block_ids: tuple[int, ...]
    created_at: float
    expires_at: float
    parked: bool = False
    cpu_block_ids: tuple[int, ...] = ()

    @property
    def num_blocks(self) -> int:
        return len(self.block_ids) + len(self.cpu_block_ids)


@dataclass
class _Pin:
    info: PinInfo
    keys: tuple[BlockKey, ...]


class PinTable:
    """Pins keyed by an opaque hashable ``pin_id`` (the engine uses the program id).

    Rules:
    - A pin holds exactly one reference per block, on the GPU pool while not parked, on the CPU tier
      while parked. References are released tail first, so the tail of a pin is evicted first.
    - ``pin`` over an existing ``pin_id`` replaces it atomically: new references first, then the old ones go.
    - ``park`` and ``prefetch`` are atomic; ``can_park``, ``can_prefetch`` and ``expired`` are pure.

    Two views are kept up to date with every change, so the engine's per-step questions cost no scan:
    ``_infos`` (each pin's ``PinInfo``, in pin order) and ``_gpu_refs`` (GPU block -> pin references);
    ``check_integrity`` compares both with values recomputed from the pins.
    """

    def __init__(self, gpu: BlockPool, cpu: CpuTier, clock: Callable[[], float]):
        self.gpu = gpu
        self.cpu = cpu
        self._clock = clock
        self._pins: dict[Hashable, _Pin] = {}
        self._infos: dict[Hashable, PinInfo] = {}
        self._gpu_refs: Counter[int] = Counter()

    def infos(self) -> dict[Hashable, PinInfo]:
        """``pin_id -> PinInfo`` in pin order (a copy)."""
        return dict(self._infos)

    def __contains__(self, pin_id: object) -> bool:
        return pin_id in self._pins

    def __len__(self) -> int:
        return len(self._pins)

    def pin(self, pin_id: Hashable, gpu_blocks: Sequence[int], expires_at: float) -> tuple[int, ...]:
        """Take one reference on each of ``gpu_blocks`` (all hashed) for ``pin_id``, replacing its old pin."""
        keys = tuple(self._gpu_key(block_id) for block_id in gpu_blocks)
        self.gpu.incref_all(gpu_blocks)
        old = self._pins.pop(pin_id, None)
        self._infos.pop(pin_id, None)
        info = PinInfo(pin_id, tuple(gpu_blocks), self._clock(), expires_at)
        self._pins[pin_id] = _Pin(info, keys)
        self._infos[pin_id] = info
        self._gpu_refs.update(info.block_ids)
        if old is not None:
            self._release(old.info)
        return info.block_ids

    def unpin(self, pin_id: Hashable) -> int:
        """Release the pin's references, tail first; returns how many blocks became unreferenced."""
        pin = self._get(pin_id)
        del self._pins[pin_id]
        del self._infos[pin_id]
        return self._release(pin.info)

    def set_expiry(self, pin_id: Hashable, expires_at: float) -> None:
        pin = self._get(pin_id)
        self._set_info(pin, replace(pin.info, expires_at=expires_at))

    def expired(self, now: float) -> list[Hashable]:
        """Pins with ``expires_at <= now``, earliest first (ties in pin order); the caller unpins them."""
        due = [info for info in self._infos.values() if info.expires_at <= now]
        return [info.pin_id for info in sorted(due, key=lambda info: info.expires_at)]

    def exclusive_blocks(self, pin_id: Hashable) -> int:
        """GPU blocks whose only reference is this pin: what unpinning would make reclaimable."""
        blocks = self.gpu.blocks
        return sum(1 for block_id in self._get(pin_id).info.block_ids if blocks[block_id].ref_count == 1)

    def num_pinned_blocks(self) -> int:
        """GPU blocks with at least one pin reference."""
        return len(self._gpu_refs)

    def can_park(self, pin_id: Hashable) -> bool:
        pin = self._get(pin_id)
        free = self.cpu.num_free_blocks
        return pin.info.parked or len(pin.keys) <= free or self.cpu.blocks_to_store(pin.keys) <= free

    def park(self, pin_id: Hashable) -> int:
        """Move the pin to CPU blocks (queueing to_cpu copies for blocks not on CPU yet), drop its GPU refs.

        Returns the number of copies queued; 0 for a pin already parked. Raises ``OutOfCpuBlocksError``
        and changes nothing when the CPU tier cannot hold every block.
        """
        pin = self._get(pin_id)
        if pin.info.parked:
            return 0
        fits = len(pin.keys) <= self.cpu.num_free_blocks  # the usual case: no need to count the hits
        needed = len(pin.keys) if fits else self.cpu.blocks_to_store(pin.keys)
        if needed > self.cpu.num_free_blocks:
            raise OutOfCpuBlocksError(
                f"pin {pin_id!r} needs {needed} CPU blocks to park {len(pin.keys)} blocks, but only"
                f" {self.cpu.num_free_blocks} of {self.cpu.num_blocks} CPU blocks are free or evictable",
                needed=needed,
                available=self.cpu.num_free_blocks,
            )
        cpu_blocks, copied = self.cpu.store(pin.info.block_ids, pin.keys)
        self.gpu.decref_all(reversed(pin.info.block_ids), self._clock())
        self._set_info(pin, replace(pin.info, block_ids=(), cpu_block_ids=tuple(cpu_blocks), parked=True))
        return copied

    def can_prefetch(self, pin_id: Hashable) -> bool:
        pin = self._get(pin_id)
        free = self.gpu.num_free_blocks
        return not pin.info.parked or len(pin.keys) <= free or self.cpu.blocks_to_fetch(pin.keys) <= free

    def prefetch(self, pin_id: Hashable) -> bool:
        """Bring a parked pin back to GPU blocks (GPU hits reused, the rest copied), drop its CPU refs.

        Returns ``False`` and changes nothing when the GPU pool cannot supply the blocks; ``True`` for a
        pin that is not parked.
        """
        pin = self._get(pin_id)
        if not pin.info.parked:
            return True
        if not self.can_prefetch(pin_id):
            return False
        gpu_blocks = self.cpu.fetch(pin.info.cpu_block_ids, pin.keys)
        self.cpu.decref_all(pin.info.cpu_block_ids[::-1])
        self._set_info(pin, replace(pin.info, block_ids=tuple(gpu_blocks), cpu_block_ids=(), parked=False))
        return True

    def gpu_ref_counts(self) -> Counter[int]:
        return Counter(block_id for pin in self._pins.values() for block_id in pin.info.block_ids)

    def cpu_ref_counts(self) -> Counter[int]:
        return Counter(block_id for pin in self._pins.values() for block_id in pin.info.cpu_block_ids)

    def check_integrity(self) -> None:
        """Each pin holds distinct, existing blocks on exactly the tier its state says, one per key; the
        kept views (``infos``, the GPU reference counts) equal their values recomputed from the pins."""
        for pin in self._pins.values():
            info = pin.info
            held, other, tier, size = (
                (info.cpu_block_ids, info.block_ids, "CPU", self.cpu.num_blocks)
                if info.parked
                else (info.block_ids, info.cpu_block_ids, "GPU", self.gpu.num_blocks)
            )
            state = "parked" if info.parked else "not parked"
            if other:
                raise KVCacheIntegrityError(f"pin {info.pin_id!r} is {state} but holds blocks {list(other)}")
            if len(held) != len(pin.keys) or len(set(held)) != len(held):
                raise KVCacheIntegrityError(
                    f"pin {info.pin_id!r} holds {tier} blocks {list(held)} for {len(pin.keys)} distinct keys"
                )
            missing = [block_id for block_id in held if not 0 <= block_id < size]
            if missing:
                raise KVCacheIntegrityError(
                    f"pin {info.pin_id!r} holds {tier} blocks {missing} that do not exist"
                )
        if list(self._infos.items()) != [(pin_id, pin.info) for pin_id, pin in self._pins.items()]:
            raise KVCacheIntegrityError("the kept pin infos differ from the pins")
        if self._gpu_refs != self.gpu_ref_counts():
            raise KVCacheIntegrityError(
                f"the kept GPU pin references {dict(self._gpu_refs)} differ from the pins'"
                f" {dict(self.gpu_ref_counts())}"
            )

    def _get(self, pin_id: Hashable) -> _Pin:
        pin = self._pins.get(pin_id)
        if pin is None:
            raise UnknownPinError(pin_id)
        return pin

    def _gpu_key(self, block_id: int) -> BlockKey:
        key = self.gpu.block(block_id).key
        if key is None:
            raise BlockStateError(
                f"block {block_id} is not in the prefix index; only indexed blocks are pinned"
            )
        return key

    def _set_info(self, pin: _Pin, info: PinInfo) -> None:
        """Change a pin's info, keeping ``_infos`` and ``_gpu_refs`` in step."""
        if info.block_ids is not pin.info.block_ids:
            self._drop_gpu_refs(pin.info.block_ids)
            self._gpu_refs.update(info.block_ids)
        pin.info = info
        self._infos[info.pin_id] = info

    def _drop_gpu_refs(self, block_ids: Sequence[int]) -> None:
        refs = self._gpu_refs
        for block_id in block_ids:
            if refs[block_id] <= 1:
                del refs[block_id]
            else:
                refs[block_id] -= 1

    def _release(self, info: PinInfo) -> int:
        self._drop_gpu_refs(info.block_ids)
        if info.parked:
            self.cpu.decref_all(info.cpu_block_ids[::-1])
            return sum(1 for block_id in info.cpu_block_ids if self.cpu.block(block_id).ref_count == 0)
        self.gpu.decref_all(reversed(info.block_ids), self._clock())
        return sum(1 for block_id in info.block_ids if self.gpu.block(block_id).ref_count == 0)
