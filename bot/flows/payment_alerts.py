"""Failed-payment alerts: a payment a client made in the portal that QuickBooks refused is
money at risk (a resync would hide it), so it is announced at once, not in the next
morning's digest.

Every PAYMENT_ALERT_SECONDS one replica (a lease) asks the portal for payments whose
transfer failed in the last PAYMENT_ALERT_LOOKBACK_HOURS, and posts one alert per payment in
ALERT_CHANNEL (default DIGEST_CHANNEL): the failure, then the invoice's check with its cause,
evidence, steps and the buttons that help. Each payment is alerted once (``payment_alerts``
table); an alert that could not be posted is tried again at the next poll.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta

from bot.bootstrap import Container
from bot.flows.check import check_or_none
from commands.alert_blocks import alert_message
from services.models import PortalPayment
from services.reconcile import choose_sync_date
from services.storage import leases

log = logging.getLogger(__name__)
LEASE = "payment-alerts"


async def alert_failed_payments(deps: Container) -> int:
    """One poll: alert every failure nobody alerted about yet. Returns how many were posted.
    A payment whose alert cannot be posted is logged and tried again at the next poll; it
    does not hold up the others."""
    channel = deps.settings.payment_alerts_channel
    if not channel:
        return 0
    since = deps.clock() - timedelta(hours=deps.settings.payment_alert_lookback_hours)
    posted = 0
    for payment in await deps.portal.list_failed_payments(since=since):
        if not await deps.payment_alerts.claim(payment=payment, channel=channel):
            continue  # alerted before (or by another replica right now)
        try:
            ts = await _post_alert(deps, channel, payment)
        except asyncio.CancelledError:
            await asyncio.shield(deps.payment_alerts.release(payment_id=payment.id))
            raise
        except Exception:
            log.warning("could not alert about portal payment %s", payment.id, exc_info=True)
            await deps.payment_alerts.release(payment_id=payment.id)
            continue
        await asyncio.shield(deps.payment_alerts.posted(payment_id=payment.id, message_ts=ts))
        deps.metrics.payment_alerts.inc()
        posted += 1
        await _audit(deps, payment)
    return posted


async def _post_alert(deps: Container, channel: str, payment: PortalPayment) -> str:
    # The alert goes out anyway, without the invoice's check if a system does not answer.
    comparison = await check_or_none(deps, payment.invoice_number, purpose="payment_alert")
    now = deps.clock()
    acct = comparison.accounting if comparison else None
    message = alert_message(
        payment,
        comparison=comparison,
        now=now,
        full_resync_since=choose_sync_date(
            now=now, last_modified=acct.last_updated if acct else None
        ),
    )
    await deps.pacer.wait(channel)
    response = await deps.slack.chat_postMessage(channel=channel, **message.as_kwargs())
    log.info("alerted: portal payment %s on %s failed", payment.reference, payment.invoice_number)
    return str(response["ts"])


async def _audit(deps: Container, payment: PortalPayment) -> None:
    """Best effort: the alert is posted and recorded as such whatever happens here."""
    try:
        await deps.audit.record(
            actor="bot",
            action="payment_alert",
            target=payment.invoice_number,
            outcome="posted",
            detail=f"{payment.reference}: {payment.error or ''}"[:500],
        )
    except Exception:
        log.warning("could not audit the alert about %s", payment.id, exc_info=True)


async def poll_once(deps: Container) -> int:
    """One poll if this replica holds (or takes) the alerts lease; 0 otherwise."""
    interval = deps.settings.payment_alert_seconds
    ttl = timedelta(seconds=max(30.0, 3 * interval))
    async with leases.hold(
        deps.db,
        name=LEASE,
        holder=deps.replica,
        ttl=ttl,
        keep_for=timedelta(seconds=2 * interval),
        clock=deps.clock,
        sleep=deps.sleep,
    ) as held:
        return await alert_failed_payments(deps) if held else 0


async def _watch_forever(deps: Container) -> None:
    while True:
        try:
            await poll_once(deps)
        except Exception:
            log.warning("failed-payment poll failed; trying again later", exc_info=True)
        await deps.sleep(deps.settings.payment_alert_seconds)


def start_payment_alerts(deps: Container) -> bool:
    """Start polling in the background (once); False when alerts are off."""
    settings = deps.settings
    if settings.payment_alert_seconds <= 0 or not settings.payment_alerts_channel:
        log.info("failed-payment alerts off (set ALERT_CHANNEL or DIGEST_CHANNEL to have them)")
        return False
    if deps.alerter is None:
        deps.alerter = asyncio.create_task(_watch_forever(deps), name="payment-alerts")
    return True
