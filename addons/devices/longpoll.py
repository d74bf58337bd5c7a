"""The long poll's work: one look for work (a claim), and a poll parked until a wake-up.

A phone's long poll is *parked* as soon as its handler has done the usual
tenant, token and permission checks: the handler detaches from the request
(:mod:`core.web.detach`) and a :class:`ParkedPoll` of a few slots takes over.
It listens on the device's wake-up key, then makes the first look (a claim in
the database thread); each wake makes one more. The first look that finds
work, a settings change, or the end of the wait answers the phone. While
parked, the server holds the connection and this object, and does no
database work. Parking before the first look matters when thousands of phones
reconnect at once (a server restart): what waits for the database is then
this small object, not a whole Tornado handler.

One device keeps at most one poll parked in a process: a newer poll with the same
device answers the older one at once ("nothing to do"), so a leaked or stolen token
cannot pile up held connections, and the phone's latest connection is the one that
gets the work.

A fetch that does not wait (``wait=0``), or one on a server without the detaching
delegate, takes the same path: a :class:`ParkedPoll` that answers through its handler
(:class:`InHandler`) instead of a detached request; ``wait=0`` makes one look and is
not parked.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

from core.clock import utcnow
from core.db import run_in_tenant
from core.groupcommit import GroupCommit, with_refusals
from core.outage import database_outage, is_moving, is_unavailable
from core.web.hosts import tenant_by_slug
from core.web.problem import Problem, database_unavailable, tenant_moving

from . import service
from core.i18n import N_

log = logging.getLogger(__name__)


@dataclass(slots=True, frozen=True)
class Look:
    """One phone's look for work, a group-commit item of :data:`look`."""

    platform: object
    tenant: object  # core.tenancy.TenantInfo
    device_id: int
    limit: int
    touch: bool  # record the contact (the first look of a poll)
    token_hash: str  # the token the poll came in with
    online: object = None  # the AuditEvent recorded, with the claim, if the contact brings the phone online


def look_many(items: list[Look]) -> list:
    """Group-commit work (:mod:`core.groupcommit`): the looks of several phones of one tenant in one
    transaction. An item's outcome is ``(messages, settings_version, came_online)``, or the refusal
    of a phone that may no longer fetch (removed, disabled, or its token replaced since the poll
    came in). The devices are locked in one statement, in id order, as report groups touch them
    (:func:`~addons.devices.service.note_contacts`), so no two groups wait on each other."""
    platform, tenant = items[0].platform, items[0].tenant
    devices = service.locked_many(item.device_id for item in items)

    def claim(checked: list[tuple]) -> list:
        came_online = service.note_contacts(device for device, item in checked if item.touch)
        outcomes = []
        for device, item in checked:
            found, limit = [], item.limit
            for result in platform.registry.hook.smsgw_device_claim(tenant=tenant, device=device, limit=limit):
                found.extend(result or [])
                if len(found) >= limit:
                    break
            online = came_online.pop(item.device_id, False)
            if online:
                service.announce_online(platform, tenant, device, item.online)
            outcomes.append((found[:limit], device.settings_version, online))
        return outcomes

    return with_refusals(items, lambda item: (service.require_usable(devices.get(item.device_id), item.token_hash),
                                              item), claim)


# Phones that look for work together (a fleet polling, a wake-up of many) share a transaction.
# Each look is a claim statement of its own, run one after the other in the group: small groups
# and more of them keep both the latency and the database's parallelism (bench_messaging's
# dispatch at batch 1: groups of 4, 4 at a time gave 0.45; 100, 2 at a time 0.33).
look = GroupCommit(look_many, concurrency=4, max_size=4)


def unclaim(platform, tenant, device_id: int, batch: list) -> None:
    """Inside the tenant transaction: the phone hung up while ``batch`` was claimed for it."""
    platform.registry.hook.smsgw_device_unclaim(tenant=tenant, device_id=device_id, ids=[m["id"] for m in batch])


def settings_changed(known_version: int, version: int) -> bool:
    """The phone named the settings version it has (0: none) and it is not the current one."""
    return bool(known_version and version != known_version)


def answer(batch: list, version: int, changed: bool) -> dict:
    return {"messages": batch, "settings_version": version, "settings_changed": changed,
            "server_time": utcnow().isoformat()}


# The poll parked for each device (by its wake-up key) in this process: see ParkedPoll.supersede.
PARKED: dict[str, "ParkedPoll"] = {}


class InHandler:
    """The answering side of :class:`core.web.detach.Detached` for a poll whose handler keeps its
    request: the poll answers through the handler, which awaits :meth:`answered`."""

    __slots__ = ("handler", "done", "on_close", "problem", "over")

    def __init__(self, handler):
        self.handler, self.done, self.on_close, self.problem, self.over = handler, False, None, None, None

    def respond_json(self, data) -> None:
        if not self.done:
            self._end()
            self.handler.write_json(data)

    def respond_problem(self, problem) -> None:
        if not self.done:
            self.problem = problem  # raised in the handler: answered like any handler's error
            self._end()

    def settled(self) -> None:
        pass  # a handler's place in the admission is given back when it answers

    def closed(self) -> None:
        """The handler's ``on_connection_close``: the phone hung up."""
        if not self.done:
            callback = self.on_close
            self._end()
            if callback is not None:
                callback()

    def _end(self) -> None:
        self.done, self.on_close = True, None
        if self.over is not None and not self.over.done():
            self.over.set_result(None)

    async def answered(self) -> None:
        """Until the poll has answered (or the phone hung up); raises the problem it answered with."""
        if not self.done:
            self.over = asyncio.get_running_loop().create_future()
            await self.over
        if self.problem is not None:
            raise self.problem


class ParkedPoll:
    """A fetch looking for work: answered by a look that finds some (its first, or a wake-up's), or
    empty at the deadline; while it waits, parked without its handler (the request detached)."""

    __slots__ = ("platform", "tenant", "device_id", "limit", "known_version", "key", "request", "timer",
                 "looking", "again", "expired", "touch", "online", "task", "token_hash", "version")

    def __init__(self, platform, tenant, device_id: int, limit: int, known_version: int, key: str,
                 request, deadline: float | None, online=None, token_hash: str | None = None):
        """Parks the poll until ``deadline`` (answering the device's poll parked before, if any);
        ``deadline=None``: a poll that does not wait, answered by its first look, never parked.
        Then call :meth:`wake` (or await :meth:`look`) for the first look, which records contact;
        ``online`` (an audit event) is recorded with it if that brought the device online (see
        :func:`~addons.devices.service.announce_online`). ``token_hash``: the digest of the
        token the poll came with; once the device has another, the poll is refused rather than
        handed work."""
        self.platform, self.tenant, self.device_id = platform, tenant, device_id
        self.limit, self.known_version, self.key, self.request = limit, known_version, key, request
        self.looking = self.again = False
        self.touch, self.online, self.task = True, online, None
        self.token_hash, self.version = token_hash, known_version
        # The poll itself is the callback of both the hang-up and the hub (a bound method each would
        # cost more per poll).
        request.on_close = self
        self.expired = deadline is None
        if self.expired:
            self.timer = None
            return
        older = PARKED.get(key)
        PARKED[key] = self
        if older is not None:
            older.supersede()
        platform.wakeups.listen(key, self)  # before the first look: a wake during it is not lost
        self.timer = platform.wakeups.deadlines.add(self, deadline)  # at the deadline: self.expire()

    def __call__(self) -> None:
        """A wake-up (from the hub), or the phone hanging up (the request's ``on_close``)."""
        if self.request.done:
            self._finish(None)  # hung up: a look in progress puts back what it claims (see _look)
        else:
            self.wake()

    def expire(self) -> None:
        """The wait is over (the hub's deadlines): a last look, as a phone polling again would make,
        answers whatever it finds."""
        self.expired = True
        self.wake()

    def drain(self) -> None:
        """The server is stopping (``WakeupHub.drain``): 503 with Retry-After, so the phone polls
        again in a second, when the restarted server (or another one) is there."""
        if not self.request.done:
            self._finish(lambda: self.request.respond_problem(Problem(
                503, "server-restarting", N_("This server is restarting; poll again in a moment."),
                headers={"Retry-After": "1"})))

    def supersede(self) -> None:
        """The same device parked a newer poll: answer this one now with nothing to do (a look
        in progress answers with whatever it claims instead, so nothing claimed is lost)."""
        if self.request.done:
            return
        if self.looking:
            self.expired = True
        else:
            version = self.version
            self._finish(lambda: self.request.respond_json(answer([], version, False)))

    def wake(self) -> None:
        if self.looking:
            self.again = True  # woken during a look: look once more before going back to sleep
        else:
            self.looking = True
            self.task = asyncio.ensure_future(self._look())  # kept: the loop holds tasks only weakly

    async def look(self) -> None:
        """The first look, in the caller's task (a handler that keeps its request: no task of its own)."""
        self.looking = True
        await self._look()

    async def _look(self) -> None:
        try:
            while not self.request.done:
                self.again = False
                if not self.touch:  # woken after parking: the workspace may have changed (paused, deleted) meanwhile
                    fresh = await tenant_by_slug(self.platform, self.tenant.slug)
                    if fresh is None:
                        raise Problem(404, "tenant-not-found", N_("The workspace %(slug)s no longer "
                                                                  "exists."), args={"slug": self.tenant.slug})
                    self.tenant = fresh
                item = Look(self.platform, self.tenant, self.device_id, self.limit, self.touch, self.token_hash,
                            self.online if self.touch else None)
                batch, version, came_online = await look(self.tenant.ref, item)
                self.touch, self.version = False, version
                if batch and self.request.done:  # the phone hung up while we claimed: put it back
                    await run_in_tenant(self.tenant.ref, unclaim, self.platform, self.tenant, self.device_id, batch)
                    return
                self.online = None
                changed = settings_changed(self.known_version, version)
                if batch or changed or self.expired:
                    self._finish(lambda: self.request.respond_json(answer(batch, version, changed)))
                    return
                if not self.again:
                    return
        except Exception as exc:
            if isinstance(exc, Problem):
                problem = exc
            elif is_moving(exc):  # the workspace moves to another database server: a short pause
                problem = tenant_moving(self.tenant.slug)
            elif is_unavailable(exc):  # the phone backs off for Retry-After; one log line per outage
                database_outage.failed(exc)
                problem = database_unavailable()
            else:
                log.exception("a parked long poll failed to look for work")
                problem = Problem(500, "internal-error", N_("Something went wrong on our side; poll "
                                                            "again."))
            self._finish(lambda: self.request.respond_problem(problem))
        finally:
            self.looking = False
            self.task = None
            self.request.settled()  # its first look is done: the next request may start its own

    def _finish(self, respond) -> None:
        if self.timer is not None:  # parked
            if PARKED.get(self.key) is self:
                del PARKED[self.key]
            self.platform.wakeups.discard(self.key, self)
            self.platform.wakeups.deadlines.cancel(self.timer, self)
        if respond is not None:
            respond()

