"""The system users Sluice makes for itself when it is started as root: `sluice`, which the
embedded PostgreSQL runs as, and `sluice-sandbox`, which transformation sandboxes become
(`engine.children`) and which owns nothing at all."""

import logging
import pwd
import subprocess

log = logging.getLogger(__name__)


def ensure(name: str, purpose: str) -> pwd.struct_passwd:
    """The system user `name`, made (no home, no shell, a group of its own) if there is none."""
    try:
        return pwd.getpwnam(name)
    except KeyError:
        log.info("creating the system user %r %s", name, purpose)
        subprocess.run(
            ["useradd", "--system", "--user-group", "--no-create-home",
             "--home-dir", "/nonexistent", "--shell", "/usr/sbin/nologin", name],
            check=True,
        )  # fmt: skip
        return pwd.getpwnam(name)
