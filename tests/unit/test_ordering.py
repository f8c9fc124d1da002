from dataclasses import dataclass

from engine.pipeline.delivery.ordering import UserQueues


@dataclass(eq=False)
class Job:
    user_key: str
    n: int


def test_one_job_per_user_in_flight_and_in_order() -> None:
    queues: UserQueues[Job] = UserQueues()
    for n in range(3):
        queues.add(Job("a", n))
        queues.add(Job("b", n))
    first = queues.take(10)
    assert [(j.user_key, j.n) for j in first] == [("a", 0), ("b", 0)]
    assert queues.take(10) == []  # both users have a job in flight
    queues.done(first[0])
    assert [(j.user_key, j.n) for j in queues.take(10)] == [("a", 1)]
    assert len(queues) == 5


def test_a_retry_holds_back_only_that_user() -> None:
    queues: UserQueues[Job] = UserQueues()
    a0, a1, b0, b1 = Job("a", 0), Job("a", 1), Job("b", 0), Job("b", 1)
    for job in (a0, a1, b0, b1):
        queues.add(job)
    assert queues.take(2) == [a0, b0]
    queues.retry(a0, not_before=100.0)
    queues.done(b0)
    assert queues.take(5) == [b1]
    assert queues.release(now=50.0) == 100.0
    assert queues.take(5) == []  # a1 waits behind a0
    assert queues.release(now=100.0) is None
    assert queues.take(5) == [a0]  # the same job again, then the next
    queues.done(a0)
    assert queues.take(5) == [a1]


def test_a_job_loaded_mid_retry_waits_its_turn() -> None:
    queues: UserQueues[Job] = UserQueues()
    queues.add(Job("a", 0), not_before=10.0)
    queues.add(Job("a", 1))
    assert queues.take(5) == []
    queues.release(now=10.0)
    assert [j.n for j in queues.take(5)] == [0]


def test_take_respects_the_limit() -> None:
    queues: UserQueues[Job] = UserQueues()
    for user in "abcde":
        queues.add(Job(user, 0))
    assert [j.user_key for j in queues.take(3)] == ["a", "b", "c"]
    assert [j.user_key for j in queues.take(3)] == ["d", "e"]
