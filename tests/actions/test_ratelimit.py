"""The shared limiter: strict in any window, bursts up to the limit, several limits atomically."""

import random

import pytest

from actions.ratelimit import DatabaseLimiter, Limit, RedisLimiter


@pytest.fixture(params=["database", "redis"])
def limiter(request, db):
    if request.param == "database":
        return DatabaseLimiter()
    limiter = RedisLimiter(request.getfixturevalue("redis_url"))
    limiter.client.flushdb()
    return limiter


def test_burst_up_to_the_limit_then_wait(limiter):
    five_per_second = [Limit("action:1", 5, 1)]
    assert [limiter.acquire(five_per_second, 100.0) for _ in range(5)] == [None] * 5
    retry_at = limiter.acquire(five_per_second, 100.0)
    assert retry_at is not None and retry_at >= 101.0
    assert limiter.acquire(five_per_second, retry_at) is None


def test_never_more_than_the_limit_in_any_window(limiter):
    limit = [Limit("action:2", 7, 2)]
    rng = random.Random(4)
    now, accepted = 1000.0, []
    for _ in range(400):
        now += rng.expovariate(20)  # about 20 attempts a second against 3.5 allowed
        if limiter.acquire(limit, now) is None:
            accepted.append(now)
    assert len(accepted) > 50
    assert all(accepted[i + 7] - accepted[i] >= 2.0 for i in range(len(accepted) - 7))


def test_two_limits_are_taken_together_or_not_at_all(limiter):
    host = Limit("host:1:api.example.com", 3, 60)
    first, second = Limit("action:a", 100, 60), Limit("action:b", 100, 60)
    assert [limiter.acquire([first, host], 10.0) for _ in range(2)] == [None, None]
    assert limiter.acquire([second, host], 10.0) is None
    assert limiter.acquire([second, host], 10.0) is not None  # the host is full
    # The refused call took nothing from the action limit: one of two is used, one is left.
    assert limiter.acquire([Limit("action:b", 2, 60)], 10.0) is None
    assert limiter.acquire([Limit("action:b", 2, 60)], 10.0) is not None
