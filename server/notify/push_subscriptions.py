"""Guardians' Web Push subscriptions: stored when a browser subscribes, removed when the push
service says it is gone.

An endpoint belongs to one browser profile, so it belongs to whoever subscribed it last: when
another guardian signs in on a shared tablet and subscribes, the endpoint moves to them and the
first guardian's children's news stops going there.
"""

from __future__ import annotations

from collections.abc import Collection

from sqlalchemy import delete
from sqlmodel import Session, col

from server.models import utc_now
from server.notify.channel import PushSubscription as BrowserSubscription
from server.notify.models import PushSubscription


def subscribe(
    db: Session, guardian_id: int, browser: BrowserSubscription, user_agent: str | None = None
) -> PushSubscription:
    """Store ``browser``'s subscription for ``guardian_id`` in the caller's transaction,
    replacing whatever was stored for its endpoint."""
    forget(db, [browser.endpoint])
    row = PushSubscription(
        guardian_id=guardian_id,
        endpoint=browser.endpoint,
        p256dh=browser.p256dh,
        auth=browser.auth,
        user_agent=user_agent,
        created_at=utc_now(),
    )
    db.add(row)
    db.flush()
    return row


def forget(db: Session, endpoints: Collection[str]) -> int:
    """Delete the subscriptions of ``endpoints``; how many there were."""
    if not endpoints:
        return 0
    statement = delete(PushSubscription).where(col(PushSubscription.endpoint).in_(endpoints))
    return db.exec(statement).rowcount or 0  # type: ignore[call-overload]
