"""`/invoice history`: the integration's recent sync runs, private to the caller."""

from __future__ import annotations

from bot.bootstrap import Container
from bot.context import Caller
from bot.flows.resync import integration_for
from commands.blocks import section
from commands.followup_text import followups_text
from commands.resync_blocks import history_message


async def show_history(deps: Container, caller: Caller) -> None:
    integration = await integration_for(deps, None)
    runs = await deps.portal.list_sync_runs(integration.id, limit=10)
    message = history_message(runs, integration_name=integration.name)
    followups = await deps.followups.all_open()
    if followups:  # what past resyncs took out of view and is still unaccounted for
        message.blocks.append(section(followups_text(followups)))
    await caller.tell(**message.as_kwargs())
