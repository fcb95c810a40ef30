"""Failed portal payments alerted about (the ``payment_alerts`` table). Keyword-only methods.

``claim`` inserts the payment's row if it is not there yet, in one statement (INSERT ... ON
CONFLICT DO UPDATE ... WHERE): of two pollers that see the same failure, one wins and
alerts. A claim whose message could not be posted is dropped (``release``), so the next
poll tries again; one left behind by a replica that died before posting (no message ts) is
taken over once it is ``stale_after`` old.
"""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import delete, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from services.models import PortalPayment, utcnow
from services.storage.db import Database
from services.storage.tables import PaymentAlertRow

TABLE = PaymentAlertRow.__table__  # type: ignore[attr-defined]
STALE_AFTER = timedelta(minutes=10)


class PaymentAlerts:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def claim(
        self, *, payment: PortalPayment, channel: str, stale_after: timedelta = STALE_AFTER
    ) -> bool:
        """True if nobody alerted about ``payment`` yet (and now this caller does)."""
        now = utcnow()
        insert = pg_insert if self._db.dialect == "postgresql" else sqlite_insert
        statement = (
            insert(TABLE)
            .values(
                payment_id=payment.id[:64],
                invoice_number=payment.invoice_number[:64],
                reference=payment.reference[:64],
                amount=str(payment.amount),
                error=payment.error,
                transferred_at=payment.transferred_at,
                channel=channel,
                alerted_at=now,
            )
            .on_conflict_do_update(
                index_elements=[TABLE.c.payment_id],
                set_={"alerted_at": now, "channel": channel},
                where=TABLE.c.message_ts.is_(None) & (TABLE.c.alerted_at < now - stale_after),
            )
            .returning(TABLE.c.payment_id)
        )
        async with self._db.engine.begin() as conn:
            return (await conn.execute(statement)).first() is not None

    async def posted(self, *, payment_id: str, message_ts: str) -> None:
        statement = (
            update(TABLE).where(TABLE.c.payment_id == payment_id[:64]).values(message_ts=message_ts)
        )
        async with self._db.engine.begin() as conn:
            await conn.execute(statement)

    async def release(self, *, payment_id: str) -> None:
        """Forget a claim whose alert was not posted: the next poll alerts again."""
        statement = delete(TABLE).where(
            TABLE.c.payment_id == payment_id[:64], TABLE.c.message_ts.is_(None)
        )
        async with self._db.engine.begin() as conn:
            await conn.execute(statement)

    async def alerted(self) -> dict[str, str | None]:
        """Payment id -> the alert's message ts (None while being posted)."""
        async with self._db.engine.connect() as conn:
            rows = await conn.execute(select(TABLE.c.payment_id, TABLE.c.message_ts))
            return {row.payment_id: row.message_ts for row in rows}
