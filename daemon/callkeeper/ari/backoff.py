"""How long to wait before the next connection attempt."""

from __future__ import annotations

import random
from typing import Protocol


class Backoff(Protocol):
    def next_delay(self, attempt: int) -> float:
        """Seconds to wait before retry number `attempt` (0 = first retry)."""
        ...

    def reset(self) -> None:
        """The connection was healthy again: forget any state kept between attempts."""
        ...


class ExponentialBackoff:
    """Full jitter (uniform between 0 and an exponentially growing cap), so that many daemons
    do not hit a restarted Asterisk in the same instant."""

    def __init__(
        self, initial: float = 0.5, factor: float = 2.0, maximum: float = 10.0, seed: int | None = None
    ) -> None:
        if initial <= 0 or factor < 1 or maximum < initial:
            raise ValueError("need 0 < initial <= maximum and factor >= 1")
        self.initial = initial
        self.factor = factor
        self.maximum = maximum
        self._random = random.Random(seed)

    def cap(self, attempt: int) -> float:
        # Bounding the exponent keeps factor**attempt finite after days of retrying.
        return min(self.maximum, self.initial * self.factor ** min(attempt, 64))

    def next_delay(self, attempt: int) -> float:
        return self._random.uniform(0.0, self.cap(attempt))

    def reset(self) -> None:
        """Stateless: the attempt number carries everything."""
