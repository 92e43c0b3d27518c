"""The shell's background tasks: an error is logged, what is left is cancelled on stop, and a
task starts with a log context of its own."""

from __future__ import annotations

import asyncio

import structlog
from structlog.testing import capture_logs

from callkeeper.service.tasks import Tasks


async def test_an_error_of_a_task_is_logged_with_its_name() -> None:
    tasks = Tasks()

    async def broken() -> None:
        raise RuntimeError("store gone")

    with capture_logs() as logs:
        task = tasks.start(broken(), name="persist-presence")
        await asyncio.gather(task, return_exceptions=True)
        await asyncio.sleep(0)
    assert [(e["event"], e["task"]) for e in logs] == [("task_failed", "persist-presence")]
    assert not tasks.running


async def test_close_lets_tasks_finish_within_the_grace_then_cancels_the_rest() -> None:
    tasks = Tasks()
    done: list[str] = []

    async def work(name: str, seconds: float) -> None:
        await asyncio.sleep(seconds)
        done.append(name)

    quick = tasks.start(work("quick", 0), name="quick")
    slow = tasks.start(work("slow", 60), name="slow")
    await tasks.close(grace_seconds=0.5)
    assert done == ["quick"] and quick.done() and slow.cancelled() and not tasks.running


async def test_a_task_does_not_inherit_the_log_context_of_who_started_it() -> None:
    tasks = Tasks()
    seen: list[dict[str, object]] = []

    async def look() -> None:
        seen.append(structlog.contextvars.get_contextvars())

    structlog.contextvars.bind_contextvars(call_id="c1")
    try:
        await tasks.start(look(), name="look")
    finally:
        structlog.contextvars.clear_contextvars()
    assert seen == [{}]
