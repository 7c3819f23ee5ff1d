"""A browser's push subscription belongs to whoever subscribed it last."""

from __future__ import annotations

from sqlmodel import Session, select

from server.notify.channel import PushSubscription as BrowserSubscription
from server.notify.models import PushSubscription
from server.notify.push_subscriptions import forget, subscribe
from tests.server.conftest import World, fresh
from tests.server.notify.family import add_guardian


def test_a_shared_tablet_stops_getting_the_first_guardians_news(db: Session, world: World) -> None:
    mai = add_guardian(db, world.students[0], "Trần Thị Mai")
    hoa = add_guardian(db, world.students[1], "Lê Thị Hoa")
    tablet = BrowserSubscription("https://push.example/t1", "BKey", "auth")
    subscribe(db, mai.id, tablet)
    subscribe(db, mai.id, BrowserSubscription("https://push.example/phone", "BKey2", "auth2"))
    subscribe(db, hoa.id, tablet, "Chrome/131")
    db.commit()
    owners = {row.endpoint: row.guardian_id for row in fresh(db).exec(select(PushSubscription))}
    assert owners == {"https://push.example/t1": hoa.id, "https://push.example/phone": mai.id}
    assert forget(db, ["https://push.example/t1", "https://push.example/none"]) == 1
