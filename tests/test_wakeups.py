"""The wake-up hub keeps one waiter per key without a set, several with one, and loses none."""

from __future__ import annotations

import asyncio
import time

from core.wakeups import WakeupHub


def test_listeners_on_one_key_are_all_woken_and_forgotten_one_by_one():
    async def scenario():
        hub = WakeupHub()
        calls = []
        first, second, third = (lambda: calls.append("first")), (lambda: calls.append("second")), \
            (lambda: calls.append("third"))
        hub.listen("k", first)
        hub.listen("k", first)  # the same listener twice is one listener
        assert hub.waiters_of("k") == (first,) and hub.waiting == 1
        hub.listen("k", second)
        hub.listen("k", third)
        assert hub.waiting == 3
        assert hub.wake("k") == 3 and sorted(calls) == ["first", "second", "third"]
        hub.discard("k", third)
        hub.discard("k", first)
        assert hub.waiters_of("k") == (second,)
        calls.clear()
        assert hub.wake("k") == 1 and calls == ["second"]
        hub.discard("k", first)  # already gone: nothing happens
        hub.discard("k", second)
        assert hub.waiters_of("k") == () and hub.waiting == 0 and hub.wake("k") == 0
        # Another key is not touched by any of this.
        hub.listen("other", lambda: calls.append("other"))
        calls.clear()
        assert hub.wake("k") == 0 and calls == []

    asyncio.run(scenario())


def test_a_failing_listener_does_not_keep_the_others_asleep():
    async def scenario():
        hub = WakeupHub()
        woken = []

        def broken():
            raise RuntimeError("bug in one listener")

        hub.listen("k", broken)
        hub.listen("k", lambda: woken.append(True))
        assert hub.wake("k") == 2 and woken == [True]

    asyncio.run(scenario())


def test_deadlines_tell_each_wait_when_it_ends_with_one_timer_and_never_a_cancelled_one():
    from core.wakeups import Deadlines

    class Wait:
        def __init__(self, name, log):
            self.name, self.log = name, log

        def expire(self):
            self.log.append((self.name, asyncio.get_running_loop().time()))

    async def scenario():
        loop = asyncio.get_running_loop()
        deadlines, told = Deadlines(), []
        start = loop.time()
        late, early, cancelled, same = (Wait(n, told) for n in ("late", "early", "cancelled", "same"))
        deadlines.add(late, start + 0.6)
        group = deadlines.add(cancelled, start + 0.3)
        deadlines.add(early, start + 0.2)  # earlier than the armed timer: re-armed
        deadlines.add(same, start + 0.6)
        assert len(deadlines) == 4
        Deadlines.cancel(group, cancelled)
        await asyncio.sleep(0.45)
        assert [name for name, _ in told] == ["early"]
        await asyncio.sleep(0.6)
        assert sorted(name for name, _ in told) == ["early", "late", "same"]
        for name, at in told:
            due = 0.2 if name == "early" else 0.6
            assert due <= at - start <= due + Deadlines.STEP + 0.2, (name, at - start)
        assert len(deadlines) == 0

    asyncio.run(scenario())


def test_deadlines_work_again_on_a_new_event_loop():
    """A server restarted in the same process (tests do) must not inherit a timer of a dead loop."""
    from core.wakeups import Deadlines

    deadlines, told = Deadlines(), []

    class Wait:
        def expire(self):
            told.append(True)

    async def leave_one_pending():
        deadlines.add(Wait(), asyncio.get_running_loop().time() + 0.1)

    async def a_short_one():
        deadlines.add(Wait(), asyncio.get_running_loop().time() + 0.05)
        await asyncio.sleep(0.5)

    asyncio.run(leave_one_pending())  # that loop ends with its wait pending
    time.sleep(0.2)  # the next wait ends after the dead loop's timer would have fired
    asyncio.run(a_short_one())
    assert told == [True]
