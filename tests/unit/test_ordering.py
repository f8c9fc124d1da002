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


def _any(first: Job, then: Job) -> bool:
    """Any next job of a user may travel with the first."""
    return True


def test_a_users_next_jobs_may_travel_with_the_first() -> None:
    queues: UserQueues[Job] = UserQueues()
    a = [Job("a", n) for n in range(4)]
    b0 = Job("b", 0)
    for job in (*a, b0):
        queues.add(job)
    taken = queues.take(4, together=lambda first, then: then.n < 3)
    assert taken == [a[0], a[1], a[2], b0]  # a's fourth job may not go with the others
    queues.done(a[0])
    queues.done(a[1])
    assert queues.take(5) == []  # a[2] of the same request is still in flight
    queues.done(a[2])
    assert queues.take(5) == [a[3]]


def test_the_limit_counts_every_job_taken_together() -> None:
    queues: UserQueues[Job] = UserQueues()
    for n in range(5):
        queues.add(Job("a", n))
    assert [j.n for j in queues.take(3, together=_any)] == [0, 1, 2]


def test_a_retry_in_a_request_holds_the_user_until_every_job_of_it_settled() -> None:
    queues: UserQueues[Job] = UserQueues()
    a0, a1, a2 = Job("a", 0), Job("a", 1), Job("a", 2)
    for job in (a0, a1, a2):
        queues.add(job)
    assert queues.take(2, together=_any) == [a0, a1]
    queues.retry(a0, not_before=10.0)  # the vendor refused a0 for now and took a1
    assert queues.release(now=20.0) is None
    assert queues.take(5) == []  # a1 is still in flight
    queues.done(a1)
    assert queues.release(now=5.0) == 10.0
    assert queues.take(5) == []  # a0 waits for its retry, a2 behind it
    queues.release(now=10.0)
    assert queues.take(5, together=_any) == [a0, a2]
    assert len(queues) == 2
