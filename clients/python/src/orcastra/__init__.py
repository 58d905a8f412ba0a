"""Orcastra for Python: workers and a client over Orcastra's SQL worker protocol (docs/python.md)."""

from ._version import __version__
from .client import Client, NotInTransaction, StepInfo, Submission, SubmitRefused, TaskInfo, TaskNotFound, WaitTimedOut
from .worker import Permanent, Step, Worker

__all__ = [
    "Client", "NotInTransaction", "Permanent", "Step", "StepInfo", "Submission", "SubmitRefused", "TaskInfo", "TaskNotFound", "WaitTimedOut", "Worker",
    "__version__",
]
