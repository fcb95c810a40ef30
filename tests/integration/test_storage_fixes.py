"""Fix proposals in the database: one open per invoice, once-only moves, claims."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest

from services.fixes import AlreadyProposed, Fix, ProposalState
from services.models import WriteResult, utcnow
from services.storage.db import Database
from services.storage.fixes import FixProposalStore
from tests.unit.test_fixes import failed_duplicate_world, fix_of

S = ProposalState


def the_fix() -> Fix:
    fix = fix_of(failed_duplicate_world())
    assert isinstance(fix, Fix)
    return fix


async def test_one_open_proposal_per_invoice_and_one_approval(db: Database) -> None:
    a, b = FixProposalStore(db, worker="a"), FixProposalStore(db, worker="b")
    later = utcnow() + timedelta(hours=24)
    first = await a.create(
        fix=the_fix(), proposed_by="U1", channel="C", thread_ts="1.1", expires_at=later
    )
    with pytest.raises(AlreadyProposed) as caught:
        await b.create(
            fix=the_fix(), proposed_by="U2", channel="C", thread_ts="1.1", expires_at=later
        )
    assert caught.value.existing.id == first.id
    assert first.fix == the_fix() and first.request_id == f"fix-{first.id}"

    moves = await asyncio.gather(
        *(
            store.move(
                proposal_id=first.id,
                frm=(S.PROPOSED,),
                to=S.APPROVED,
                claim=True,
                decided_by=f"U{n}",
            )
            for n, store in enumerate((a, b, a, b))
        )
    )
    assert sum(m is not None for m in moves) == 1  # four clicks, one approval
    assert await b.claim_due() == []  # the approver's claim is live

    written = WriteResult(txn_type="Payment", txn_id="9001", sync_token="1", request_id="r")
    winner = a if moves[0] or moves[2] else b
    await winner.move(proposal_id=first.id, frm=(S.APPROVED,), to=S.WRITING)
    stored = await winner.move(proposal_id=first.id, frm=(S.WRITING,), to=S.WRITTEN, result=written)
    assert stored is not None and stored.result == written
    done = await winner.move(proposal_id=first.id, frm=(S.WRITTEN,), to=S.DONE)
    assert done is not None and done.state is S.DONE
    again = await a.create(
        fix=the_fix(), proposed_by="U1", channel="C", thread_ts="1.1", expires_at=later
    )
    assert again.id != first.id  # finished: the invoice is free again


async def test_a_dead_workers_approved_proposal_is_taken_over(db: Database) -> None:
    dead = FixProposalStore(db, worker="dead", lease=timedelta(milliseconds=50))
    live = FixProposalStore(db, worker="live")
    proposal = await dead.create(
        fix=the_fix(),
        proposed_by="U1",
        channel="C",
        thread_ts="1.1",
        expires_at=utcnow() + timedelta(hours=1),
    )
    await dead.move(proposal_id=proposal.id, frm=(S.PROPOSED,), to=S.APPROVED, claim=True)
    await dead.move(proposal_id=proposal.id, frm=(S.APPROVED,), to=S.WRITING, claim=True)
    await asyncio.sleep(0.1)
    taken = await live.claim_due()
    assert [p.id for p in taken] == [proposal.id] and taken[0].state is S.WRITING
    assert await dead.move(proposal_id=proposal.id, frm=(S.WRITING,), to=S.WRITTEN) is None


async def test_proposals_past_their_expiry_are_found(db: Database) -> None:
    store = FixProposalStore(db)
    now = utcnow()
    proposal = await store.create(
        fix=the_fix(), proposed_by="U1", channel="C", thread_ts="1.1", expires_at=now
    )
    assert await store.expired(now=now - timedelta(seconds=1)) == []
    assert [p.id for p in await store.expired(now=now)] == [proposal.id]
    assert await store.claim_message(proposal_id=proposal.id)
    assert not await store.claim_message(proposal_id=proposal.id)  # one poster
