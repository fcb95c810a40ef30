"""`/invoice history`: the integration's recent sync runs, private to the caller."""

from __future__ import annotations

from bot.bootstrap import Container
from bot.context import Caller
from bot.flows.resync import integration_for
from commands.blocks import section
from commands.fix_blocks import owed_fix_blocks
from commands.followup_blocks import closed_by_hand_text
from commands.followup_text import accounted_buttons, followups_text
from commands.resync_blocks import history_message


async def show_history(deps: Container, caller: Caller) -> None:
    integration = await integration_for(deps, None)
    runs = await deps.portal.list_sync_runs(integration.id, limit=10)
    message = history_message(runs, integration_name=integration.name)
    followups = await deps.followups.all_open()
    if followups:  # what past resyncs took out of view and is still unaccounted for
        message.blocks.append(section(followups_text(followups)))
        if (accounted := accounted_buttons(followups)) is not None:
            message.blocks.append(accounted)
        message.blocks.extend(owed_fix_blocks(followups, named=True))
    closed = await deps.followups.closed_by_hand(limit=10)
    if closed:  # who marked what accounted for, when and why
        message.blocks.append(section(closed_by_hand_text(closed)))
    await caller.tell(**message.as_kwargs())
