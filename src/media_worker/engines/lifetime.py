"""A decoder process dies with the worker that started it.

Its time limit (JOB_TIMEOUT_SECONDS) is enforced by the worker; a worker killed outright
(SIGKILL, the OOM killer) cannot enforce it any more, and a decoder stuck on a hostile file
would run on, holding memory and a core. Linux's parent-death signal has the kernel kill the
decoder the moment its parent goes. Elsewhere nothing is done (the container's own stop
still ends every process in it).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import signal
import sys

PR_SET_PDEATHSIG = 1  # from linux/prctl.h


def die_with_parent() -> None:
    """Ask the kernel for SIGKILL when the parent dies; exit now if it already has."""
    if not sys.platform.startswith("linux"):
        return
    parent = os.getppid()
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    except (OSError, AttributeError):
        return
    if os.getppid() != parent:  # the parent died before the request took effect
        os._exit(1)
