"""Which images a grid shows: every class present, round-robin, whatever the loader's order."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Generic, TypeVar

T = TypeVar("T")


class RoundRobin(Generic[T]):
    """Keep, from a stream of labelled items, the ``total`` items a grid shows.

    The pick takes the ``max_classes`` lowest labels present, each class in turn (label
    order, round-robin) until ``total`` items are taken, at most ``per_class`` of one
    class; within a class the first items to arrive. So a loader sorted by class shows
    as many classes as a shuffled one, and the pick depends only on the labels and their
    order. Only what the pick can still need is kept (at most ``ceil(total / classes
    seen)`` items of a class), so memory stays near ``total`` items. Items without labels
    fill, in arrival order, what the labelled ones leave.

    Args:
        total: Items picked.
        per_class: Most items of one class (default: ``total``).
        max_classes: Most classes (default: ``total``: more could not each get one).
    """

    def __init__(
        self, total: int, per_class: int | None = None, max_classes: int | None = None
    ) -> None:
        self.total = max(total, 0)
        self.per_class = self.total if per_class is None else per_class
        self.max_classes = self.total if max_classes is None else max_classes
        self.by_class: dict[int, list[T]] = {}
        self.unlabelled: list[T] = []

    def _cap(self, classes: int) -> int:
        """The most items of one class a pick among ``classes`` classes can need."""
        return min(self.per_class, math.ceil(self.total / max(classes, 1)))

    def _count(self, counts: dict[int, int], label: int) -> bool:
        """Count ``label``'s item in ``counts`` if the pick may need it; whether it did."""
        if label not in counts and len(counts) >= self.max_classes:
            if label > max(counts):
                return False
            del counts[max(counts)]
        counts[label] = counts.get(label, 0) + 1
        cap = self._cap(len(counts))
        if counts[label] > cap:
            counts[label] = cap
            return False
        for other in counts:
            counts[other] = min(counts[other], cap)
        return True

    def add(
        self, labels: Sequence[int] | None, count: int, fetch: Callable[[list[int]], list[T]]
    ) -> None:
        """Take a batch of ``count`` items; ``fetch(positions)`` builds only the kept ones.

        Args:
            labels: The batch's labels (on the host), or None for unlabelled items.
            count: Items in the batch.
            fetch: The kept items (e.g. their CPU copies) from their positions in the batch.
        """
        if labels is None:
            room = min(self.total - len(self.unlabelled), count)
            if room > 0:
                self.unlabelled += fetch(list(range(room)))
            return
        counts = {label: len(items) for label, items in self.by_class.items()}
        positions = [i for i, label in enumerate(labels) if self._count(counts, int(label))]
        if not positions:
            return
        for position, item in zip(positions, fetch(positions), strict=True):
            self.by_class.setdefault(int(labels[position]), []).append(item)
        # the counts followed every trim: a class keeps its first items, up to its count
        self.by_class = {label: self.by_class[label][:n] for label, n in sorted(counts.items())}

    def pick(self) -> list[tuple[int | None, T]]:
        """The picked ``(label, item)`` pairs, by class (labels ascending), then arrival."""
        classes = sorted(self.by_class)
        taken = dict.fromkeys(classes, 0)
        left = self.total
        while left > 0 and any(taken[c] < len(self.by_class[c]) for c in classes):
            for label in classes:
                if left > 0 and taken[label] < len(self.by_class[label]):
                    taken[label] += 1
                    left -= 1
        picked: list[tuple[int | None, T]] = [
            (label, item) for label in classes for item in self.by_class[label][: taken[label]]
        ]
        return picked + [(None, item) for item in self.unlabelled[:left]]

    def clear(self) -> None:
        """Forget everything (a new epoch)."""
        self.by_class, self.unlabelled = {}, []
