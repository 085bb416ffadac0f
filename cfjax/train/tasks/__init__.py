"""Tasks: how a batch feeds a model, the loss, and the evaluation protocol (``config.task``).

The protocol is :class:`~cfjax.train.tasks.base.Task`'s; one module per task:
``classification``, ``frame_detection`` (Coarse-Fine, Charades), ``clip_set`` (GCF-Net) and
``tubes`` (CFAD). :func:`get_task` builds the task of ``config.task`` by its ``from_config``;
new tasks subclass :class:`Task` and :func:`register_task` themselves.
"""

from __future__ import annotations

from cfjax.train.tasks.base import Task, short_video_mode, video_transform
from cfjax.train.tasks.classification import ClassificationTask
from cfjax.train.tasks.clip_set import ClipSetTask
from cfjax.train.tasks.frame_detection import FrameDetectionTask, WithTimePoints, grid_density
from cfjax.train.tasks.tubes import (
    TUBE_TARGET_KEYS,
    VIDEO_TARGET_KEYS,
    TubeDetectionTask,
    TubeTargets,
    tube_clip_targets,
    tube_video_targets,
)

__all__ = [
    "TASKS",
    "TUBE_TARGET_KEYS",
    "VIDEO_TARGET_KEYS",
    "ClassificationTask",
    "ClipSetTask",
    "FrameDetectionTask",
    "Task",
    "TubeDetectionTask",
    "TubeTargets",
    "WithTimePoints",
    "get_task",
    "grid_density",
    "register_task",
    "short_video_mode",
    "tube_clip_targets",
    "tube_video_targets",
    "video_transform",
]

TASKS: dict[str, type[Task]] = {}


def register_task(cls: type[Task]) -> type[Task]:
    """Makes ``config.task = cls.name`` select ``cls``."""
    TASKS[cls.name] = cls
    return cls


for _cls in (ClassificationTask, FrameDetectionTask, ClipSetTask, TubeDetectionTask):
    register_task(_cls)


def get_task(config) -> Task:
    """The task of ``config.task``, built by its ``from_config(config)``."""
    if config.task not in TASKS:
        raise ValueError(f"task: unknown task {config.task!r}; known: {sorted(TASKS)}")
    return TASKS[config.task].from_config(config)
