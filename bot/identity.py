"""This process's name in job claims and leases: stable per deployment slot by default.

The name is REPLICA_ID, or the host name (a container's or pod's name: the same again when
the same slot restarts). A restarted process of the slot takes the jobs claimed under that
name back at once, without waiting for the dead process's leases to run out.

Two live processes must never share a name (both would run the same jobs). So the name is
itself a lease (``replica:<name>``) held by this process (host, pid and a random part) and
renewed by the job sweep. A process starting under a name whose lease is live takes it over
only when the holder is known to be dead: on the same host, a pid that no longer runs (or
our own pid: a restarted container's first process). Otherwise it runs under a unique name
(``<name>:<pid>:<random>``), and the jobs of the name move to it through their leases.
"""

from __future__ import annotations

import logging
import os
import socket
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from services.models import utcnow
from services.storage import leases
from services.storage.db import Database

log = logging.getLogger(__name__)
LIVE: set[str] = set()
"""The holders of this process (several bots can run in one process: tests, the demo)."""


@dataclass(frozen=True)
class Identity:
    name: str
    """The worker name in job claims (``claimed_by``) and leases."""
    holder: str
    """This process's holder of the ``replica:<name>`` lease."""
    owns_name: bool
    """False: another live process has the name; this one runs under a unique one."""

    @property
    def lease_name(self) -> str:
        return f"replica:{self.name}"


def host() -> str:
    return socket.gethostname()[:40] or "localhost"


def new_holder() -> str:
    return f"{host()[:30]}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def pid_runs(pid: int) -> bool:
    """Whether ``pid`` is a running process on this host (a zombie is not)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return stat.rsplit(")", 1)[-1].split()[:1] != ["Z"]


def is_dead(holder: str) -> bool:
    """Whether the process that wrote ``holder`` is known to have ended."""
    where, _, rest = holder.partition(":")
    pid_text, _, _ = rest.partition(":")
    if where != host()[:30] or not pid_text.isdigit():
        return False  # another host: only its lease tells
    pid = int(pid_text)
    if pid == os.getpid():
        return holder not in LIVE
    return not pid_runs(pid)


async def take_identity(
    db: Database,
    *,
    replica_id: str | None,
    ttl: timedelta,
    clock: Callable[[], datetime] = utcnow,
    dead: Callable[[str], bool] = is_dead,
) -> Identity:
    """The name this process runs under (see the module's doc)."""
    name = (replica_id or host())[:40]
    holder = new_holder()
    lease = f"replica:{name}"
    owns = await leases.acquire(db, name=lease, holder=holder, ttl=ttl, clock=clock)
    if not owns:
        current = await leases.current(db, name=lease, clock=clock)
        if current is None:
            owns = await leases.acquire(db, name=lease, holder=holder, ttl=ttl, clock=clock)
        elif dead(current.holder):
            owns = await leases.take_over(
                db, name=lease, holder=holder, previous=current.holder, ttl=ttl, clock=clock
            )
    LIVE.add(holder)
    if owns:
        return Identity(name=name, holder=holder, owns_name=True)
    unique = f"{name}:{holder.split(':', 1)[1]}"
    log.warning("replica name %s is in use by a live process: running as %s", name, unique)
    return Identity(name=unique, holder=holder, owns_name=False)


async def keep_identity(
    db: Database, identity: Identity, *, ttl: timedelta, clock: Callable[[], datetime] = utcnow
) -> None:
    if identity.owns_name:
        await leases.renew(
            db, name=identity.lease_name, holder=identity.holder, ttl=ttl, clock=clock
        )


async def release_identity(db: Database, identity: Identity) -> None:
    LIVE.discard(identity.holder)
    if identity.owns_name:
        await leases.release(db, name=identity.lease_name, holder=identity.holder)
