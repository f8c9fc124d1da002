"""Child processes that must not outlive the process that started them."""

import ctypes
import signal

_PR_SET_PDEATHSIG = 1


def die_with_parent(signum: signal.Signals) -> None:
    """Ask Linux to send this process `signum` when its parent ends (even by `kill -9`)."""
    ctypes.CDLL("libc.so.6", use_errno=True).prctl(_PR_SET_PDEATHSIG, signum)
