"""Child processes that must not outlive the process that started them, and those that must
give up every privilege before they run what they were started for."""

import ctypes
import os
import pwd
import signal

_PR_SET_PDEATHSIG = 1
_PR_SET_NO_NEW_PRIVS = 38
# Whom a child started by root becomes, the first there is: a user of its own, which owns
# nothing (`sluice run` as root makes it), else nobody.
UNPRIVILEGED = ("sluice-sandbox", "nobody")


def die_with_parent(signum: signal.Signals) -> None:
    """Ask Linux to send this process `signum` when its parent ends (even by `kill -9`).
    (Forgotten when the process changes its user: ask again after `confine`.)"""
    _prctl(_PR_SET_PDEATHSIG, signum)


def no_new_privileges() -> None:
    """This process, and every thread it starts from now on, may never gain a privilege again
    (no set-user-ID program, no file capability). Per thread: call it before starting any."""
    _prctl(_PR_SET_NO_NEW_PRIVS, 1)


def drop_root() -> None:
    """If this process is root, it stops being root for good, every thread of it: it becomes
    the first of UNPRIVILEGED there is, with that user's group only. Done once it has opened
    what it needs, so that nothing it reads has to be readable by that user."""
    if os.geteuid() != 0:
        return
    account = _unprivileged()
    os.setgroups([])
    os.setresgid(account.pw_gid, account.pw_gid, account.pw_gid)
    os.setresuid(account.pw_uid, account.pw_uid, account.pw_uid)


def _unprivileged() -> pwd.struct_passwd:
    for name in UNPRIVILEGED:
        try:
            return pwd.getpwnam(name)
        except KeyError:
            continue
    raise RuntimeError(f"none of the users {', '.join(UNPRIVILEGED)} exists to run as")


def _prctl(option: int, value: int) -> None:
    if ctypes.CDLL("libc.so.6", use_errno=True).prctl(option, value, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), f"prctl({option}) failed")
