"""Marking an unexplained difference accounted for by hand: the private question with the
required reason, then the close (that follow-up only), audited and kept with who and when."""

from __future__ import annotations

from bot.bootstrap import Container
from bot.context import Caller
from commands.followup_blocks import accounted_done, accounted_question
from services.followups import accountable, mark_accounted_for


async def ask_accounted(deps: Container, caller: Caller, followup_id: int) -> None:
    followup = await accountable(deps.followups, followup_id)
    await caller.tell(**accounted_question(followup).as_kwargs())


async def confirm_accounted(deps: Container, caller: Caller, followup_id: int, reason: str) -> None:
    followup = await mark_accounted_for(
        deps.followups, followup_id, by=caller.user_id, reason=reason, clock=deps.clock
    )
    await deps.audit.record(
        actor=caller.user_id,
        action="followup_accounted",
        target=followup.invoice,
        outcome="closed",
        detail=f"{followup.reference} {followup.amount}: {followup.closed_because}"[:2000],
    )
    await caller.respond(replace_original=True, **accounted_done(followup).as_kwargs())
