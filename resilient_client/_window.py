"""A sliding window of counters in time buckets, shared by the retry budget, the throttle
and the breaker's time window.

Three counters per bucket over a ring of ``slots`` buckets, with running sums kept by
subtract-on-expiry: adding and reading are O(1) and allocate nothing, whatever the call
rate (no list of timestamps). Buckets are numbered by ``floor(now × buckets per
second)``; a bucket that falls out of the ring is zeroed lazily, when the head moves
past it. Not thread-safe on its own: each owner holds its lock around every call.
"""

from __future__ import annotations

__all__ = ["BucketRing"]


class BucketRing:
    """Three counters over a ring of time buckets; ``sums[i]`` totals counter ``i``."""

    __slots__ = ("_counts", "_slots", "head", "sums")

    def __init__(self, slots: int, head: int) -> None:
        self._slots = slots
        self._counts = ([0] * slots, [0] * slots, [0] * slots)
        self.sums = [0, 0, 0]
        self.head = head  # number of the newest bucket

    def slot(self, index: int) -> int:
        """The slot of bucket ``index``, moving the head there and zeroing what expired.

        A clock that went backwards (only a fake one can) keeps counting into the
        current bucket.
        """
        slots, head = self._slots, self.head
        if index <= head:
            return head % slots
        counts, sums = self._counts, self.sums
        if index - head >= slots:
            for ring in counts:
                ring[:] = [0] * slots
            sums[0] = sums[1] = sums[2] = 0
        else:
            for expired in range(head + 1, index + 1):
                slot = expired % slots
                for counter in (0, 1, 2):
                    ring = counts[counter]
                    sums[counter] -= ring[slot]
                    ring[slot] = 0
        self.head = index
        return index % slots

    def add_at(self, index: int, counter: int) -> int:
        """Count one for ``counter`` in bucket ``index`` and return its slot: :meth:`slot`
        and :meth:`add` in one call, for the hot path (no frame while the head stays)."""
        head = self.head
        slot = head % self._slots if index <= head else self.slot(index)
        self._counts[counter][slot] += 1
        self.sums[counter] += 1
        return slot

    def add(self, slot: int, counter: int) -> None:
        """Count one in ``slot`` for ``counter`` (0, 1 or 2)."""
        self._counts[counter][slot] += 1
        self.sums[counter] += 1

    def add_all(self, slot: int, first: int, second: int, third: int) -> None:
        """Add to each counter of ``slot`` at once: one call for what would be up to three
        :meth:`add` calls (a failed call counts as a call and as a failure)."""
        counts, sums = self._counts, self.sums
        counts[0][slot] += first
        counts[1][slot] += second
        counts[2][slot] += third
        sums[0] += first
        sums[1] += second
        sums[2] += third
