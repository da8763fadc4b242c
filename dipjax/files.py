"""Writing files so that a reader never sees half of one: each is written under a temporary name in the same folder
and renamed over its final name (``os.replace``, atomic on POSIX and Windows), so an interrupted or failed write
(Ctrl-C, a full disk) leaves the previous file or none, never a truncated one."""

from __future__ import annotations

import contextlib
import os


@contextlib.contextmanager
def atomic_path(path: str):
    """Yield a temporary path beside ``path``; on success rename it to ``path``, on an exception remove it.

    .. code-block:: python

        with atomic_path("out/metrics.json") as tmp:
            with open(tmp, "w") as f:
                json.dump(metrics, f)
    """
    folder, name = os.path.split(os.path.abspath(path))
    tmp = os.path.join(folder, f".{name}.{os.getpid()}.tmp")
    try:
        yield tmp
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.remove(tmp)
        raise
