"""The wake-up hub keeps one waiter per key without a set, several with one, and loses none."""

from __future__ import annotations

import asyncio

from core.wakeups import WakeupHub


def test_listeners_and_waiters_on_one_key_are_all_woken_and_forgotten_one_by_one():
    async def scenario():
        hub = WakeupHub()
        calls = []
        first, second = (lambda: calls.append("first")), (lambda: calls.append("second"))
        hub.listen("k", first)
        hub.listen("k", first)  # the same listener twice is one listener
        assert hub.waiters_of("k") == (first,) and hub.waiting == 1
        hub.listen("k", second)
        waiter = hub.subscribe("k")
        assert hub.waiting == 3
        assert hub.wake("k") == 3 and sorted(calls) == ["first", "second"] and waiter.woken
        waiter.close()
        hub.discard("k", first)
        assert hub.waiters_of("k") == (second,)
        calls.clear()
        assert hub.wake("k") == 1 and calls == ["second"]
        hub.discard("k", first)  # already gone: nothing happens
        hub.discard("k", second)
        assert hub.waiters_of("k") == () and hub.waiting == 0 and hub.wake("k") == 0
        # Another key is not touched by any of this.
        other = hub.subscribe("other")
        assert hub.wake("k") == 0 and not other.woken
        assert await hub.wait("k", 0.01) is False

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
