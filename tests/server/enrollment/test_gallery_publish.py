"""Gallery publishing (server.gallery_publish, server.gallery_delta): who is in a site's
gallery, versions that move only on change, erasure, deltas that rebuild the published file."""

from __future__ import annotations

import hashlib
import threading
from datetime import date

import pytest
from sqlmodel import Session, select

from broker.gallery_signing import verify
from models.gallery import Gallery
from models.gallery_delta import GalleryDelta, replay
from server.demo import load_demo
from server.enrollment import withdraw_consent
from server.gallery_announce import AnnounceError
from server.gallery_delta import DeltaUnavailable, build_delta
from server.gallery_models import GalleryVersion
from server.gallery_publish import GalleryPublisher, newest_version, publish_loop
from server.models import Card, Site, StudentStatus
from tests.server.conftest import World, make_school
from tests.server.enrollment.conftest import BASE_URL, add_templates


def _file(db: Session, world: World) -> Gallery:
    db.rollback()
    return Gallery.from_bytes(newest_version(db, world.site.id).data)


def _versions(db: Session, world: World) -> list[int]:
    db.rollback()
    rows = db.exec(select(GalleryVersion.version).where(GalleryVersion.site_id == world.site.id))
    return sorted(rows.all())


def test_the_gallery_holds_consenting_active_students_and_every_active_card(
    db: Session, world: World, publisher: GalleryPublisher
) -> None:
    face_only, card_only, transferred = world.students
    pack = publisher.manifest.name
    add_templates(db, face_only, 2, pack)
    add_templates(db, transferred, 1, pack, rng_seed=1)
    add_templates(db, card_only, 1, "another-pack", rng_seed=2)  # not the gates' pack
    transferred.status = StudentStatus.TRANSFERRED
    db.add_all(
        [
            transferred,
            Card(uid="04A1B2C3", student_id=card_only.id),
            Card(uid="04D4E5F6", student_id=card_only.id, active=False),
            Card(uid="0400AA11", student_id=transferred.id),
        ]
    )
    db.commit()
    other = make_school(db, site="school-b", prefix="OB")  # not at this site
    add_templates(db, other.students[0], 1, pack, rng_seed=3)

    published = publisher.publish_site(db, "school-a", reason="test")

    gallery = _file(db, world)
    assert published.changed and published.version == gallery.version
    assert gallery.persons == (face_only.code,) and len(gallery) == 2
    assert dict(gallery.cards) == {"04A1B2C3": card_only.code}
    assert (gallery.pack, gallery.dim) == (pack, 128)
    assert gallery.threshold == publisher.manifest.identify_threshold


def test_the_notice_is_signed_and_describes_the_file(
    db: Session, world: World, publisher: GalleryPublisher
) -> None:
    add_templates(db, world.students[0], 3, publisher.manifest.name)
    notice = publisher.publish_site(db, "school-a", reason="test").notice
    row = newest_version(db, world.site.id)
    verify(publisher.key.public_key, notice)
    assert notice.key_id == publisher.key.key_id
    assert (notice.site, notice.version, notice.entries) == ("school-a", row.version, 3)
    assert notice.sha256 == hashlib.sha256(row.data).hexdigest()
    assert notice.size_bytes == len(row.data)
    assert str(notice.url) == f"{BASE_URL}/gallery/school-a/{row.version}"


def test_publishing_again_without_a_change_keeps_the_version(
    db: Session, world: World, publisher: GalleryPublisher
) -> None:
    add_templates(db, world.students[0], 1, publisher.manifest.name)
    first = publisher.publish_site(db, "school-a", reason="test")
    again = publisher.publish_site(db, "school-a", reason="test")
    assert not again.changed and again.version == first.version
    assert again.notice == first.notice
    assert _versions(db, world) == [first.version]


def test_an_empty_site_gets_an_empty_first_version(
    db: Session, world: World, publisher: GalleryPublisher
) -> None:
    published = publisher.publish_site(db, "school-a", reason="test")
    assert published.changed and published.version == 0
    assert len(_file(db, world)) == 0
    assert not publisher.publish_site(db, "school-a", reason="test").changed


def test_withdrawing_consent_publishes_a_version_without_the_student(
    db: Session, world: World, publisher: GalleryPublisher
) -> None:
    leaving, staying = world.students[:2]
    pack = publisher.manifest.name
    add_templates(db, leaving, 2, pack)
    add_templates(db, staying, 1, pack, rng_seed=1)
    before = publisher.publish_site(db, "school-a", reason="test").version

    withdraw_consent(db, leaving.id, actor_id=None)
    after = publisher.publish_site(db, "school-a", reason="consent withdrawn")

    assert after.changed and after.version > before
    assert _file(db, world).persons == (staying.code,)
    old = db.exec(select(GalleryVersion).where(GalleryVersion.version == before)).one()
    assert old.data is None and old.members is None  # the old file held the student's templates


def test_erasing_a_student_publishes_a_version_without_their_face_or_card(
    db: Session, world: World, publisher: GalleryPublisher
) -> None:
    erased = world.students[0]
    add_templates(db, erased, 2, publisher.manifest.name)
    db.add(Card(uid="04A1B2C3", student_id=erased.id))
    db.commit()
    before = publisher.publish_site(db, "school-a", reason="test").version

    db.delete(erased)
    db.commit()
    after = publisher.publish_site(db, "school-a", reason="erasure")

    gallery = _file(db, world)
    assert after.version > before
    assert (gallery.persons, dict(gallery.cards)) == ((), {})


def test_a_publish_for_the_school_covers_each_of_its_sites(
    db: Session, world: World, publisher: GalleryPublisher
) -> None:
    db.add(Site(code="school-a-annex", name="annex", school_id=world.school.id))
    db.commit()
    add_templates(db, world.students[0], 1, publisher.manifest.name)
    published = publisher.publish_school(db, world.school.id, reason="test")
    assert [(p.site, p.changed) for p in published] == [
        ("school-a", True),
        ("school-a-annex", True),
    ]


def test_a_delta_rebuilds_the_published_file_byte_for_byte(
    db: Session, world: World, publisher: GalleryPublisher
) -> None:
    first, second, third = world.students
    pack = publisher.manifest.name
    add_templates(db, first, 6, pack)
    add_templates(db, second, 6, pack, rng_seed=1)
    since = publisher.publish_site(db, "school-a", reason="test").version
    old_file = newest_version(db, world.site.id).data
    add_templates(db, third, 1, pack, rng_seed=2)  # one step adds a row
    publisher.publish_site(db, "school-a", reason="test")
    withdraw_consent(db, second.id, actor_id=None)  # the next removes six and adds a card
    db.add(Card(uid="04A1B2C3", student_id=first.id))
    db.commit()
    target = publisher.publish_site(db, "school-a", reason="test")

    row = newest_version(db, world.site.id)
    delta = GalleryDelta.model_validate_json(build_delta(db, "school-a", world.site.id, since, row))
    assert (delta.since, delta.version, len(delta.steps)) == (since, target.version, 2)
    assert (delta.sha256, delta.size_bytes) == (target.notice.sha256, target.notice.size_bytes)
    gallery = Gallery.from_bytes(old_file)
    replay(delta, gallery)
    assert gallery.to_bytes() == row.data


def test_no_delta_from_an_unknown_version_or_with_an_erased_template(
    db: Session, world: World, publisher: GalleryPublisher
) -> None:
    first, second = world.students[:2]
    pack = publisher.manifest.name
    add_templates(db, first, 8, pack)
    since = publisher.publish_site(db, "school-a", reason="test").version
    add_templates(db, second, 1, pack, rng_seed=1)
    publisher.publish_site(db, "school-a", reason="test")
    row = newest_version(db, world.site.id)
    assert build_delta(db, "school-a", world.site.id, since, row)  # available now

    with pytest.raises(DeltaUnavailable, match="not in the history"):
        build_delta(db, "school-a", world.site.id, since - 1, row)
    with pytest.raises(DeltaUnavailable, match="not older"):
        build_delta(db, "school-a", world.site.id, row.version, row)
    withdraw_consent(db, second.id, actor_id=None)
    publisher.publish_site(db, "school-a", reason="test")
    row = newest_version(db, world.site.id)
    # The delta would have to carry the template of a student who withdrew: the gate gets the
    # full file instead, which no longer holds it.
    with pytest.raises(DeltaUnavailable, match="erased"):
        build_delta(db, "school-a", world.site.id, since, row)


def test_a_delta_as_large_as_the_file_is_not_offered(
    db: Session, world: World, publisher: GalleryPublisher
) -> None:
    since = publisher.publish_site(db, "school-a", reason="test").version
    add_templates(db, world.students[0], 2, publisher.manifest.name)
    publisher.publish_site(db, "school-a", reason="test")
    row = newest_version(db, world.site.id)
    with pytest.raises(DeltaUnavailable, match="not smaller"):
        build_delta(db, "school-a", world.site.id, since, row)


def test_switching_pack_starts_the_site_s_history_again(
    db: Session, world: World, publisher: GalleryPublisher
) -> None:
    add_templates(db, world.students[0], 1, publisher.manifest.name)
    db.add(Card(uid="04A1B2C3", student_id=world.students[1].id))
    db.commit()
    publisher.publish_site(db, "school-a", reason="test")
    publisher.publish_site(db, "school-a", reason="test")
    other_pack = publisher.manifest.model_copy(update={"name": "other-pack"})
    switched = GalleryPublisher(other_pack, publisher.key, publisher.base_url)

    published = switched.publish_site(db, "school-a", reason="pack changed")

    gallery = _file(db, world)
    assert (gallery.pack, len(gallery), dict(gallery.cards)) == (
        "other-pack",
        0,
        {"04A1B2C3": "HS2"},
    )
    assert _versions(db, world) == [published.version]


def test_a_broker_that_is_down_does_not_lose_the_version(
    db: Session, world: World, publisher: GalleryPublisher
) -> None:
    told: list[tuple[str, bytes]] = []
    broker_up = False

    def announce(topic: str, payload: bytes) -> None:
        if not broker_up:
            raise AnnounceError("connection refused")
        told.append((topic, payload))

    announcing = GalleryPublisher(publisher.manifest, publisher.key, BASE_URL, announce)
    add_templates(db, world.students[0], 1, publisher.manifest.name)
    published = announcing.publish_site(db, "school-a", reason="test")
    assert published.changed and not published.announced
    assert newest_version(db, world.site.id).version == published.version

    broker_up = True
    [again] = announcing.publish_all(db)
    assert not again.changed and again.announced
    assert told == [("cg/v1/school-a/gallery", again.notice.model_dump_json().encode())]


def test_the_publish_loop_gives_every_site_its_gallery_and_announces_it(
    db: Session, engine, world: World, publisher: GalleryPublisher
) -> None:
    make_school(db, site="school-b", prefix="OB")
    told: list[str] = []
    announcing = GalleryPublisher(
        publisher.manifest, publisher.key, BASE_URL, lambda topic, _payload: told.append(topic)
    )
    stop = threading.Event()
    stop.set()  # one round
    publish_loop(engine, stop, announcing)
    assert told == ["cg/v1/school-a/gallery", "cg/v1/school-b/gallery"]
    assert _versions(db, world) == [0]


def test_the_demo_school_s_first_publish_carries_its_cards(
    db: Session, engine, publisher: GalleryPublisher
) -> None:
    summary = load_demo(engine, date(2025, 10, 6), "Asia/Ho_Chi_Minh")
    stop = threading.Event()
    stop.set()
    publish_loop(engine, stop, publisher)
    site = db.exec(select(Site).where(Site.code == "demo")).one()
    gallery = Gallery.from_bytes(newest_version(db, site.id).data)
    assert (len(gallery), len(gallery.cards)) == (0, summary.students)
