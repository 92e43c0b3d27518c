"""The default reconnect backoff: exponential cap, full jitter, seedable."""

from __future__ import annotations

import pytest

from callkeeper.ari.backoff import Backoff, ExponentialBackoff


def test_delays_stay_under_an_exponential_cap() -> None:
    backoff = ExponentialBackoff(seed=1)

    caps = [backoff.cap(attempt) for attempt in range(8)]
    delays = [backoff.next_delay(attempt) for attempt in range(8) for _ in range(50)]

    assert caps == [0.5, 1.0, 2.0, 4.0, 8.0, 10.0, 10.0, 10.0]
    assert all(0.0 <= delay <= 10.0 for delay in delays)
    assert all(0.0 <= backoff.next_delay(0) <= 0.5 for _ in range(100))


def test_full_jitter_spreads_the_delays() -> None:
    backoff = ExponentialBackoff(seed=2)

    delays = [backoff.next_delay(6) for _ in range(1000)]

    assert min(delays) < 1.0
    assert max(delays) > 9.0
    assert 4.0 < sum(delays) / len(delays) < 6.0


def test_same_seed_same_delays() -> None:
    first, second = ExponentialBackoff(seed=42), ExponentialBackoff(seed=42)

    assert [first.next_delay(n) for n in range(10)] == [second.next_delay(n) for n in range(10)]


def test_huge_attempt_numbers_do_not_overflow() -> None:
    assert ExponentialBackoff(seed=3).cap(100_000) == 10.0


def test_custom_parameters_and_reset() -> None:
    backoff: Backoff = ExponentialBackoff(initial=0.1, factor=3.0, maximum=1.0, seed=4)

    backoff.reset()

    assert isinstance(backoff, ExponentialBackoff)
    assert [backoff.cap(n) for n in range(4)] == pytest.approx([0.1, 0.3, 0.9, 1.0])


@pytest.mark.parametrize(
    ("initial", "factor", "maximum"), [(0.0, 2.0, 10.0), (1.0, 0.5, 10.0), (5.0, 2.0, 1.0)]
)
def test_nonsense_parameters_are_refused(initial: float, factor: float, maximum: float) -> None:
    with pytest.raises(ValueError, match="need"):
        ExponentialBackoff(initial, factor, maximum)
