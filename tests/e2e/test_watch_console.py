"""`make demo` with the QuickBooks watch: a change made in QuickBooks is alerted without any
slash command, and a payment recorded by hand while the portal's is pending transfer is
announced before the transfer fails."""

from __future__ import annotations

import io

from bot.demo import demo_stack
from bot.flows.watch import watch_wait
from sandbox.console import run_console


async def console(script: str, **options: object) -> str:
    output = io.StringIO()
    async with demo_stack(sync_seconds=0.3, **options) as (world, bot):  # type: ignore[arg-type]
        await run_console(
            world.emulator,
            input_stream=io.StringIO(script),
            output=output,
            is_busy=lambda: bot.container.tasks.busy,
            quiet=0.3,
            portal=world.portal,
            pay_wait=2 * bot.container.settings.payment_alert_seconds + 0.3,
            qbo=world.qbo,
            qbo_wait=watch_wait(bot.container.settings),
        )
    return output.getvalue()


async def test_an_invoice_changed_in_quickbooks_is_alerted_with_its_cause() -> None:
    out = await console("qbo change 11003 99.00\n", webhook_format="legacy")
    alert = out.split("> qbo change 11003 99.00", 1)[1]
    assert "QuickBooks changed and the portal still differs" in alert
    assert "# Invoice 11003" in alert and "Cause: Stale copy" in alert
    assert "[1] Resync invoice" in alert
    assert "> /invoice" not in out  # no slash command was typed


async def test_a_collision_names_both_payments_before_the_transfer_fails() -> None:
    out = await console("pay 11005 25.00\nqbo pay 11005 25.00\n", transfer_delay=3.0)
    collision = out.index("Payment collision on invoice 11005")
    failed = out.index("The portal transferred CB-9001: refused by QuickBooks")
    assert collision < failed
    named = out[collision:failed]
    assert "Portal payment CB-9001: $25.00" in named and "pending transfer" in named
    assert "QuickBooks payment Id" in named and "by Alice (QuickBooks user)" in named
    assert "Delete the payment entered by hand" in named
    assert "A portal payment failed to transfer" in out[failed:]  # and the failure, after
