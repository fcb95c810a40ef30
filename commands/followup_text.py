"""Follow-ups (money still to account for) in words. Pure."""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal

from slack_sdk.models.blocks import ActionsBlock, ButtonElement

from commands.actions import ActionId, ButtonState
from commands.format import escape, fmt_day, fmt_money
from services.causes import RiskKind
from services.followups import FollowUp

LISTED = 30
"""Amounts listed in a message; past this they are counted."""
BUTTONS = 5
"""**Mark accounted for** buttons beside one message's money, at most."""


def _label(text: str) -> str:
    return text if len(text) <= 75 else text[:74] + "…"


def followup_line(followup: FollowUp) -> str:
    return (
        f"• Invoice {followup.invoice}: *{escape(followup.reference)}* "
        f"({fmt_money(followup.amount)}): {escape(followup.what)}; acknowledged by "
        f"<@{followup.acknowledged_by}> on {fmt_day(followup.opened_at)}"
    )


def followups_text(followups: Sequence[FollowUp]) -> str:
    lines = [followup_line(f) for f in followups[:LISTED]]
    if len(followups) > LISTED:
        lines.append(f"_…and {len(followups) - LISTED} more_")
    total = sum((f.amount for f in followups), Decimal(0))
    head = f":warning: *Money still to account for* ({fmt_money(total)})"
    return head + "\n" + "\n".join(lines)


def still_to_account(followups: Sequence[FollowUp]) -> str:
    """`CB-4471 ($10.00) is still to account for in QuickBooks`."""
    named = ", ".join(f"{escape(f.reference)} ({fmt_money(f.amount)})" for f in followups[:5])
    more = f" and {len(followups) - 5} more" if len(followups) > 5 else ""
    verb = "is" if len(followups) == 1 else "are"
    return f"{named}{more} {verb} still to account for in QuickBooks"


def accounted_buttons(followups: Sequence[FollowUp]) -> ActionsBlock | None:
    """A **Mark accounted for** button for each unexplained difference (nothing else can
    close one); None when there is none."""
    buttons = [
        ButtonElement(
            text=_label(f"Mark accounted for: {f.reference} ({fmt_money(f.amount)})"),
            action_id=ActionId.MARK_ACCOUNTED.value,
            value=ButtonState(invoice=f.invoice, followup=f.id).dump(),
        )
        for f in followups
        if f.kind is RiskKind.UNEXPLAINED and f.closed_at is None
    ][:BUTTONS]
    return ActionsBlock(elements=buttons) if buttons else None
