"""sync=1 waits from the time the invocation has left, and answers the task as it stands."""

from __future__ import annotations

from alphacut.aws.tasks.service import TaskService
from alphacut.task_states import TaskState


class Clock:
    def __init__(self, seconds_left: float):
        self.left = seconds_left

    def remaining(self) -> float:
        return self.left

    def sleep(self, seconds: float) -> None:
        self.left -= seconds


class StuckTable:
    """A task that stays in progress, however often it is read."""

    def __init__(self):
        self.reads = 0

    def get(self, task_id, owner=None):
        self.reads += 1
        return type("Record", (), {"state": TaskState.PROCESSING})()


def service_with(table) -> TaskService:
    service = TaskService("uploads", "results", "queue", "tasks")
    service.__dict__["table"] = table  # the cached_property's slot
    return service


def test_sync_wait_answers_before_the_invocation_runs_out():
    clock, table = Clock(seconds_left=6.0), StuckTable()
    record = service_with(table).wait("t", "owner", clock.remaining, margin=2.0, sleep=clock.sleep)
    assert record.state is TaskState.PROCESSING
    assert 0 <= clock.left <= 2.0 + 1e-9  # it stopped at the margin, not after a fixed 25 s
    assert table.reads == 17  # (6 - 2) / 0.25 polls, and the one that returns


def test_sync_wait_with_no_time_left_answers_at_once():
    clock, table = Clock(seconds_left=1.0), StuckTable()
    service_with(table).wait("t", "owner", clock.remaining, margin=2.0, sleep=clock.sleep)
    assert table.reads == 1 and clock.left == 1.0
