"""The guard's promise, over random evidence and random sequences of entry points: no write
reaches the portal that takes a payment or credit out of view unless the requester
acknowledged exactly that amount, and then it is a follow-up before the write happens.

Every entry point (a typed command, a button, a digest line, an alert, Resync anyway, a
resumed job) ends in ResyncRunner.run with the acknowledgement it carries (none, the
current one, or one made against older evidence): that is what is drawn here."""

from __future__ import annotations

import itertools
from datetime import timedelta
from decimal import Decimal
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from services.guard import Assessment, Exposure, WriteGuard
from services.jobs import Job, JobKind, JobState, Outcome
from services.models import TransferStatus
from services.resync import PollPolicy, ResyncRunner
from tests.diagnosis_support import (
    AFTER_SYNC,
    BEFORE_SYNC,
    NOW,
    acct,
    credit_memo,
    mirror,
    portal_payment,
)
from tests.unit.fakes import (
    FakeAccounting,
    FakePortal,
    MemoryFollowUps,
    MemoryJobs,
    SilentReporter,
    World,
)

cents = st.integers(min_value=1, max_value=9_000).map(lambda c: f"{Decimal(c) / 100:.2f}")
statuses = st.sampled_from(list(TransferStatus))
counter = itertools.count()


@st.composite
def worlds(draw: st.DrawFn) -> World:
    world = World(
        acct=acct(draw(cents), updated=draw(st.sampled_from([BEFORE_SYNC, AFTER_SYNC]))),
        portal=mirror(draw(cents)),
    )
    for i in range(draw(st.integers(0, 3))):
        world.portal_payments.append(
            portal_payment(f"CB-{i}", draw(cents), draw(statuses), error="x")
        )
    if draw(st.booleans()):
        world.memos.append(credit_memo(draw(cents)))
    return world


# A step: ("write", which acknowledgement, full or record) or ("change", what).
steps = st.lists(
    st.one_of(
        st.tuples(
            st.just("write"),
            st.sampled_from(["none", "current", "stale", "forged"]),
            st.booleans(),
        ),
        st.tuples(st.just("change"), st.sampled_from(["fail", "post", "memo", "balance"]), cents),
    ),
    min_size=1,
    max_size=6,
)


def change(world: World, what: str, amount: str) -> None:
    n = len(world.portal_payments)
    if what == "fail":
        world.portal_payments.append(portal_payment(f"CB-n{n}", amount, TransferStatus.FAILED))
    elif what == "post" and world.portal_payments:
        first = world.portal_payments[0]
        world.portal_payments[0] = first.model_copy(update={"status": TransferStatus.POSTED})
    elif what == "memo":
        world.memos = [credit_memo(amount, number=f"CM-{n}")]
    elif what == "balance":
        world.acct = world.acct.model_copy(
            update={"balance": Decimal(amount), "last_updated": NOW - timedelta(minutes=1)}
        )


def job(kind: JobKind, ack: str | None) -> Job:
    return Job(
        id=f"job-{next(counter)}",
        kind=kind,
        record_type="invoice",
        target="11265" if kind is JobKind.RECORD else "int-1",
        invoice="11265",
        integration_id="int-1" if kind is JobKind.FULL else None,
        sync_from=(NOW - timedelta(days=30)).date() if kind is JobKind.FULL else None,
        requested_by="U0ALICE001",
        channel="C0FINANCE1",
        thread_ts="1.1",
        state=JobState.QUEUED,
        acknowledged=ack,
        created_at=NOW,
        updated_at=NOW,
    )


@settings(
    max_examples=120, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow]
)
@given(world=worlds(), plan=steps)
async def test_no_write_hides_money_nobody_acknowledged(
    world: World, plan: list[tuple[Any, ...]]
) -> None:
    accounting, portal, followups = FakeAccounting(world), FakePortal(world), MemoryFollowUps()
    guard = WriteGuard(accounting=accounting, portal=portal, clock=lambda: NOW)
    jobs = MemoryJobs()
    runner = ResyncRunner(
        accounting=accounting,
        portal=portal,
        jobs=jobs,
        guard=guard,
        followups=followups,
        poll=PollPolicy(interval=0, timeout=5),
        clock=lambda: NOW,
    )

    violations: list[str] = []

    def oracle(w: World) -> None:
        """At the moment of each write that moves the portal's balance: every payment the
        portal has not posted is a follow-up someone acknowledged."""
        if w.portal.balance == w.acct.balance:
            return  # the write moves nothing out of view
        acknowledged = {f.reference for f in followups.rows if f.closed_at is None}
        for p in w.portal_payments:
            if p.status is not TransferStatus.POSTED and p.reference not in acknowledged:
                violations.append(f"{p.reference} ({p.status}) written over unacknowledged")

    world.on_write = oracle
    stale: str | None = None
    for step in plan:
        if step[0] == "change":
            change(world, step[1], step[2])
            continue
        _, which, full = step
        kind = JobKind.FULL if full else JobKind.RECORD
        current = (
            await guard.assess_full("int-1", (NOW - timedelta(days=30)).date())
            if full
            else await guard.assess_invoice("11265")
        )
        ack = {
            "none": None,
            "current": current.fingerprint,
            "stale": stale,
            "forged": "0123456789abcdef",
        }[which]
        stale = current.fingerprint
        writes = len(world.writes)
        done = await runner.run(jobs.add(job(kind, ack)), SilentReporter())
        if len(world.writes) > writes:
            assert current.acknowledged(ack) or not current.exposures
        elif done.outcome is Outcome.REFUSED:
            assert not current.acknowledged(ack)
    assert violations == []


async def test_an_acknowledged_write_opens_the_follow_ups_first() -> None:
    """The example the issue names: Resync anyway on a failed payment keeps it in view."""
    world = World(acct=acct("50.00"), portal=mirror("40.00"))
    world.portal_payments.append(portal_payment("CB-4471", "10.00", TransferStatus.FAILED))
    accounting, portal, followups = FakeAccounting(world), FakePortal(world), MemoryFollowUps()
    guard = WriteGuard(accounting=accounting, portal=portal, clock=lambda: NOW)
    jobs = MemoryJobs()
    runner = ResyncRunner(
        accounting=accounting, portal=portal, jobs=jobs, guard=guard, followups=followups,
        poll=PollPolicy(interval=0, timeout=5), clock=lambda: NOW,
    )  # fmt: skip
    refused = await runner.run(jobs.add(job(JobKind.RECORD, None)), SilentReporter())
    assert refused.outcome is Outcome.REFUSED and world.writes == []

    assessment = await guard.assess_invoice("11265")
    assert [e.key for e in assessment.exposures] == ["11265|failed_payment|CB-4471|10.00"]
    reporter = SilentReporter()
    done = await runner.run(jobs.add(job(JobKind.RECORD, assessment.fingerprint)), reporter)
    assert world.writes == ["record:11265"] and done.outcome is Outcome.FIXED
    [followup] = await followups.open_for(invoice="11265")
    assert (followup.reference, followup.amount) == ("CB-4471", Decimal("10.00"))
    assert [f.reference for f in reporter.results[-1].followups] == ["CB-4471"]


def test_a_fingerprint_names_exactly_the_amounts() -> None:
    one = portal_payment("CB-1", "10.00", TransferStatus.FAILED)
    other = one.model_copy(update={"amount": Decimal("10.01")})
    from services.causes import AtRisk, RiskKind

    def fp(amount: Decimal) -> str | None:
        risk = AtRisk(kind=RiskKind.FAILED_PAYMENT, reference="CB-1", amount=amount, what="x")
        return Assessment((Exposure("11265", risk),)).fingerprint

    assert fp(one.amount) != fp(other.amount)
    assert Assessment(()).fingerprint is None and Assessment(()).acknowledged(None)
