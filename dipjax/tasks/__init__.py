"""Named inverse problems: the task registry (:mod:`dipjax.tasks.base`) and one module per task, found and
imported automatically, so adding a task is adding a module.

.. code-block:: python

    from dipjax.tasks import task_config, degradation_key
    config = task_config("sr", factor=8, sigma=0)      # validated; unknown options are errors
    problem = config.simulate(degradation_key(0, "camera"), x)
"""

import importlib
import pkgutil

from dipjax.tasks.base import (NOISE_CHANNELS, TASKS, OptionError, TaskConfig, degradation_key, get_task,
                               markdown_table, option, register_task, require, task_config, task_options)

for _module in pkgutil.iter_modules(__path__):
    if _module.name != "base":
        importlib.import_module(f"{__name__}.{_module.name}")


def simulate(config: TaskConfig, key, x_true):
    """``config.simulate(key, x_true)``: the operator and noisy measurements of ``x_true``."""
    return config.simulate(key, x_true)


__all__ = ["TASKS", "NOISE_CHANNELS", "TaskConfig", "OptionError", "option", "require", "register_task", "get_task",
           "task_config", "task_options", "degradation_key", "markdown_table", "simulate"]
