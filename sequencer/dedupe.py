"""The window of recently journaled request ids, so that a retried command is never journaled twice."""

from __future__ import annotations

from collections import deque


class RequestWindow:
    """Maps (src, req) -> in_seq for the last ``capacity`` journaled commands; the oldest fall out first."""

    __slots__ = ("_capacity", "_order", "_seqs")

    def __init__(self, capacity: int) -> None:
        self._capacity = capacity
        self._seqs: dict[tuple[str, int], int] = {}
        self._order: deque[tuple[str, int]] = deque()

    def get(self, key: tuple[str, int]) -> int | None:
        return self._seqs.get(key)

    def add(self, key: tuple[str, int], in_seq: int) -> None:
        self._seqs[key] = in_seq
        self._order.append(key)
        if len(self._order) > self._capacity:
            old = self._order.popleft()
            if self._seqs.get(old) is not None:
                del self._seqs[old]

    def discard(self, key: tuple[str, int]) -> None:
        """Forget a key staged for a batch that could not be journaled (only the newest keys are discarded)."""
        if self._seqs.pop(key, None) is not None and self._order and self._order[-1] == key:
            self._order.pop()

    def __len__(self) -> int:
        return len(self._seqs)
