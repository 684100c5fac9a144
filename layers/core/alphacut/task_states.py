"""Async tasks: the states of PicWish-style tasks and which failure ends in which state.

No AWS here: the task table adapter is ``alphacut.aws.tasks.table``, the flow is the state machine in
statemachine/task.asl.json, whose Catch clauses use ``FAILURE_STATES`` (the error names are the
exception class names a Lambda step raises, which Step Functions reports as the error).

Usage::

    TaskState.TIMED_OUT.value        # -8
    TaskState(1).is_final            # True
    failure_state("CorruptImage")    # TaskState.INVALID_IMAGE
"""

from __future__ import annotations

from enum import IntEnum


class TaskState(IntEnum):
    QUEUED = 0
    DONE = 1
    PREPARING = 2
    WAITING = 3
    PROCESSING = 4
    FAILED = -1
    RESULT_UPLOAD_FAILED = -2
    DOWNLOAD_FAILED = -3
    DOWNLOAD_TOO_LARGE = -5
    INVALID_IMAGE = -7
    TIMED_OUT = -8

    @property
    def is_final(self) -> bool:
        return self is TaskState.DONE or self.value < 0

    @property
    def progress(self) -> int:
        """PicWish-style progress: 100 when done, 0 when failed; in between by stage."""
        return {
            TaskState.DONE: 100,
            TaskState.QUEUED: 0,
            TaskState.PREPARING: 10,
            TaskState.WAITING: 20,
            TaskState.PROCESSING: 50,
        }.get(self, 0)


class ResultUploadFailed(Exception):
    """The result could not be stored (state -2)."""


class TaskNoLongerRunning(Exception):
    """The task ended (or its execution was stopped) while a step ran: it stores and sends nothing."""


class ModelRunsOnTheGpu(Exception):
    """The task's model is the GPU endpoint's only (too large for Lambda): the CPU path hands the
    task to the endpoint (the state machine's Segment step catches this and submits it there)."""


class SupersededUpload(Exception):
    """A newer upload of the same key came first or is being processed: this older one's result
    must not replace the newer one (-1, its result never stored)."""


# error name (exception class, or a Step Functions error) -> final state
FAILURE_STATES: dict[str, TaskState] = {
    "UrlFetchFailed": TaskState.DOWNLOAD_FAILED,
    "UrlNotAllowed": TaskState.DOWNLOAD_FAILED,
    "ImageTooLarge": TaskState.DOWNLOAD_TOO_LARGE,
    "CorruptImage": TaskState.INVALID_IMAGE,
    "UnsupportedImageFormat": TaskState.INVALID_IMAGE,
    "ImageTooSmall": TaskState.INVALID_IMAGE,
    "ResultUploadFailed": TaskState.RESULT_UPLOAD_FAILED,
    "States.Timeout": TaskState.TIMED_OUT,
    "ModelTimedOut": TaskState.TIMED_OUT,
    "DeadlineExceeded": TaskState.TIMED_OUT,  # the step's one deadline ran out between its waits
    "Sandbox.Timedout": TaskState.TIMED_OUT,  # the Segment function hit its own timeout
}

TASK_TIME_LIMIT_SECONDS = 30  # PicWish-style tasks: a task running longer ends in -8

# What a caller reads about a failed task: one fixed sentence per state. What went wrong in
# detail (a Step Functions cause holds the Lambda's stack trace, ARNs, endpoint names) stays in
# the task record and the logs.
FAILURE_MESSAGES: dict[TaskState, str] = {
    TaskState.FAILED: "the task failed on our side: quote its task_id when reporting it",
    TaskState.RESULT_UPLOAD_FAILED: "the result could not be stored: submit the task again",
    TaskState.DOWNLOAD_FAILED: "the image could not be fetched from image_url",
    TaskState.DOWNLOAD_TOO_LARGE: "the image is over the size limit",
    TaskState.INVALID_IMAGE: (
        "the file is not an image that can be read (damaged, too small or an unknown format)"
    ),
    TaskState.TIMED_OUT: f"the task took longer than {TASK_TIME_LIMIT_SECONDS} s",
}


def failure_state(error_name: str) -> TaskState:
    return FAILURE_STATES.get(error_name, TaskState.FAILED)
