"""The task-type registry: type name -> TaskType. Adding a task type = one module with its class, plus its
import and its entry here."""

from __future__ import annotations

from ..errors import ConfigError
from .base import Inputs, Scores, TaskType
from .generation import Generation
from .heads import ClassificationHead
from .harness import LmEval
from .perplexity import Perplexity

TASK_TYPES: dict[str, TaskType] = {t.name: t for t in (
    LmEval(),
    Perplexity(),
    Generation(),
    ClassificationHead(),
)}

__all__ = ["TASK_TYPES", "Inputs", "Scores", "TaskType", "get_task_type"]


def get_task_type(name: str) -> TaskType:
    try:
        return TASK_TYPES[name]
    except KeyError:
        raise ConfigError(f"unknown task type {name!r}; known: {sorted(TASK_TYPES)}") from None
