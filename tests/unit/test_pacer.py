"""The channel pacer: a burst of three, then one a second (Slack's per-channel pace)."""

from __future__ import annotations

from bot.pacer import ChannelPacer


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_a_burst_of_three_then_one_a_second_per_channel() -> None:
    clock = Clock()
    pacer = ChannelPacer(1.0, clock, burst=3)
    assert [pacer.try_take("C1") for _ in range(4)] == [True, True, True, False]
    assert pacer.try_take("C2")  # another channel has its own pace
    clock.now += 0.5
    assert not pacer.try_take("C1")
    clock.now += 0.5
    assert pacer.try_take("C1")
    assert not pacer.try_take("C1")
    clock.now += 10
    assert [pacer.try_take("C1") for _ in range(4)] == [True, True, True, False]


async def test_wait_sleeps_only_past_the_burst() -> None:
    clock = Clock()
    pacer = ChannelPacer(0.01, clock, burst=2)
    await pacer.wait("C1")
    await pacer.wait("C1")
    assert not pacer.try_take("C1")  # both slots taken; a third must wait
