"""Marking an unexplained difference accounted for by hand: the private question with the
required reason, then the close (that follow-up only), audited and kept with who and when.
Never one person's word alone: whoever acknowledged hiding the money cannot close it, and
when FIX_APPROVERS is set only they can (refusals are audited too)."""

from __future__ import annotations

from bot.bootstrap import Container
from bot.context import Caller
from bot.flows.fixes import may_approve
from commands.followup_blocks import accounted_done, accounted_question
from services.errors import NotAllowedError
from services.followups import Closer, FollowUp, accountable, mark_accounted_for


async def closer(deps: Container, user_id: str) -> Closer:
    if not deps.settings.fix_approvers:
        return Closer(user_id)
    return Closer(user_id, approver=await may_approve(deps, user_id))


def who_can(deps: Container) -> str:
    """The approvers, as Slack shows them (users and user groups)."""
    named = [
        f"<!subteam^{a}>" if a.startswith("S") else f"<@{a}>" for a in deps.settings.fix_approvers
    ]
    return ", ".join(named)


async def _refused(deps: Container, caller: Caller, followup_id: int, exc: NotAllowedError) -> None:
    found = await deps.followups.get(followup_id=followup_id)
    await deps.audit.record(
        actor=caller.user_id,
        action="followup_accounted",
        target=found.invoice if found is not None else str(followup_id),
        outcome="refused",
        detail=exc.message[:2000],
    )
    if deps.settings.fix_approvers:
        raise NotAllowedError(f"{exc.message} Approvers: {who_can(deps)}.") from exc
    raise exc


async def ask_accounted(deps: Container, caller: Caller, followup_id: int) -> None:
    try:
        followup = await accountable(
            deps.followups, followup_id, await closer(deps, caller.user_id)
        )
    except NotAllowedError as exc:
        await _refused(deps, caller, followup_id, exc)
        return
    await caller.tell(**accounted_question(followup).as_kwargs())


async def confirm_accounted(deps: Container, caller: Caller, followup_id: int, reason: str) -> None:
    try:
        followup: FollowUp = await mark_accounted_for(
            deps.followups,
            followup_id,
            by=await closer(deps, caller.user_id),
            reason=reason,
            clock=deps.clock,
        )
    except NotAllowedError as exc:
        await _refused(deps, caller, followup_id, exc)
        return
    await deps.audit.record(
        actor=caller.user_id,
        action="followup_accounted",
        target=followup.invoice,
        outcome="closed",
        detail=f"{followup.reference} {followup.amount}: {followup.closed_because}"[:2000],
    )
    await caller.respond(replace_original=True, **accounted_done(followup).as_kwargs())
