"""Gallery publishing: per site, the signed gallery of everyone who may pass its gates.

A site's gallery holds the face templates of the active students of its school whose consent
is on record (and not withdrawn) for the pack the gates run, and the card table of their
active cards — students without a face (no consent) are in it by card alone. Publishing
compares that with the site's newest published version and, only if anything differs, applies
the difference to that version (:mod:`server.gallery_delta`), signs a notice for the result
with the server's gallery key, stores it as a new :class:`GalleryVersion` and announces the
notice retained on ``cg/v1/{site}/gallery``. Publishing again with nothing changed is a no-op,
so any code that changes students, cards or consents may simply publish afterwards — and a
periodic :meth:`GalleryPublisher.publish_all` catches any change that did not.

Versions never go down for a site, except when the server switches to another pack: the old
history (another model's templates, useless to gates of the new pack) is deleted and the new
pack's gallery starts again from an empty one. Gates check the pack, which the notice signs,
so no gate mixes the two.
"""

from __future__ import annotations

import hashlib
import logging
import threading
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from sqlalchemy import Engine, delete, update
from sqlmodel import Session, col, select

from broker.codec import encode
from broker.gallery_signing import sign
from broker.payloads import GalleryNotice
from broker.topics import gallery_topic
from models.gallery import Gallery
from models.gallery_delta import GalleryChange, apply_change
from models.packs import PackManifest
from server.core.config import get_settings
from server.db import writer
from server.faces import get_face_settings, shared_pack
from server.gallery_announce import Announce, AnnounceError, mqtt_announcer
from server.gallery_delta import entry_id, templates
from server.gallery_key import GalleryKey, load_or_create_key
from server.gallery_models import GalleryVersion
from server.models import BiometricConsent, Card, FaceEnrollment, Site, Student, StudentStatus

log = logging.getLogger(__name__)

PUBLISH_INTERVAL_S = 300.0
GATE_SCOPE = "attendance"
"""The consent scope that lets a student's templates go to the school's gates."""
FILE_PATH = "/gallery/{site}/{version}"
"""Where, under the API's base URL, gates fetch a version's file (``?since=`` for a delta)."""


@dataclass(frozen=True)
class Published:
    """The outcome of publishing one site: its newest version and whether this call made it."""

    site: str
    version: int
    changed: bool
    announced: bool
    notice: GalleryNotice


@dataclass(frozen=True)
class GalleryPublisher:
    """Everything publishing needs besides a database session.

    ``base_url`` is the API's base as gates reach it (``https://…/api/v1``); ``announce`` None
    stores and signs without telling the broker (for tools and tests that only build).
    """

    manifest: PackManifest
    key: GalleryKey
    base_url: str
    announce: Announce | None = None

    def publish_site(
        self,
        db: Session,
        site_code: str,
        *,
        reason: str,
        actor_id: int | None = None,
        announce_unchanged: bool = False,
    ) -> Published:
        """Publish a new version of the site's gallery if anything changed; commit; announce.

        The site's row is locked for the transaction (PostgreSQL; SQLite writer sessions
        serialise anyway), so two publishes of one site never build on the same version.
        ``announce_unchanged`` re-announces the newest notice even when nothing changed (a
        forced publish, or a broker that lost its retained messages).
        """
        site = db.exec(select(Site).where(Site.code == site_code).with_for_update()).one()
        latest = newest_version(db, site.id)
        previous = self._previous(latest)
        gallery, members = previous or (self._empty(), [])
        change = _difference(members, dict(gallery.cards), *self._wanted(db, site))
        if latest is not None and previous is not None and not change:
            db.commit()
            notice = self.notice(site.code, latest)
            announced = announce_unchanged and self._announce(notice)
            return Published(site.code, latest.version, False, announced, notice)
        if latest is not None and previous is None:  # another pack's history: useless now
            db.exec(delete(GalleryVersion).where(col(GalleryVersion.site_id) == site.id))
        row = self._store(db, site, gallery, members, change, reason, actor_id)
        db.commit()
        notice = self.notice(site.code, row)
        log.info(
            "gallery published",
            extra={"site": site.code, "version": row.version, "entries": row.entries},
        )
        return Published(site.code, row.version, True, self._announce(notice), notice)

    def publish_school(
        self, db: Session, school_id: int, *, reason: str, actor_id: int | None = None
    ) -> list[Published]:
        """:meth:`publish_site` for every site of a school (after a change to its students)."""
        codes = db.exec(select(Site.code).where(Site.school_id == school_id).order_by(Site.code))
        return [
            self.publish_site(db, code, reason=reason, actor_id=actor_id) for code in codes.all()
        ]

    def publish_all(self, db: Session, *, reason: str = "reconcile") -> list[Published]:
        """:meth:`publish_site` for every site, re-announcing unchanged ones: run at start-up
        and now and then, it catches changes nobody published and brokers that forgot."""
        codes = db.exec(select(Site.code).order_by(Site.code)).all()
        return [
            self.publish_site(db, code, reason=reason, announce_unchanged=True) for code in codes
        ]

    def notice(self, site_code: str, row: GalleryVersion) -> GalleryNotice:
        """The signed notice of a stored version, pointing at this server's file URL."""
        return GalleryNotice(
            site=site_code,
            version=row.version,
            ts=row.created_at,
            model_pack=row.model_pack,
            entries=row.entries,
            url=self.base_url.rstrip("/") + FILE_PATH.format(site=site_code, version=row.version),
            sha256=row.sha256,
            size_bytes=row.size_bytes,
            key_id=row.key_id,
            signature=row.signature,
        )

    # --- steps ----------------------------------------------------------------------------------

    def _previous(
        self, latest: GalleryVersion | None
    ) -> tuple[Gallery, list[tuple[str, str]]] | None:
        """The newest version's gallery and rows, if the next version can build on it (it
        holds this pack's templates); None for a site to start afresh."""
        if latest is None or latest.model_pack != self.manifest.name:
            return None
        if latest.data is None or latest.members is None:  # only older versions lose them
            return None
        return Gallery.from_bytes(latest.data), [
            (entry, person) for entry, person in latest.members
        ]

    def _empty(self) -> Gallery:
        """An empty gallery of this pack, at version 0."""
        manifest = self.manifest
        threshold = (
            manifest.identify_threshold
            if manifest.identify_threshold is not None
            else manifest.match_threshold
        )
        return Gallery(manifest.name, manifest.recogniser.embedding_size, threshold)

    def _wanted(self, db: Session, site: Site) -> tuple[list[tuple[str, str]], dict[str, str]]:
        """Who should be in the site's gallery: template rows and the card table, in the
        canonical order (student code, then row; card UID)."""
        active = (Student.school_id == site.school_id) & (Student.status == StudentStatus.ACTIVE)
        faces = db.exec(
            select(FaceEnrollment.id, Student.code)
            .join(Student, col(Student.id) == FaceEnrollment.student_id)
            .join(BiometricConsent, col(BiometricConsent.id) == FaceEnrollment.consent_id)
            .where(
                active,
                FaceEnrollment.model_pack == self.manifest.name,
                col(BiometricConsent.withdrawn_at).is_(None),
                BiometricConsent.scope == GATE_SCOPE,
            )
            .order_by(col(Student.code), col(FaceEnrollment.id))
        )
        cards = db.exec(
            select(Card.uid, Student.code)
            .join(Student, col(Student.id) == Card.student_id)
            .where(active, col(Card.active).is_(True))
            .order_by(col(Card.uid))
        )
        return [(entry_id(row_id), code) for row_id, code in faces], dict(cards.all())

    def _store(
        self,
        db: Session,
        site: Site,
        gallery: Gallery,
        members: list[tuple[str, str]],
        change: GalleryChange,
        reason: str,
        actor_id: int | None,
    ) -> GalleryVersion:
        """Apply ``change``, sign the result and store it as the site's newest version."""
        found = templates(db, [entry for entry, _ in change.add])
        rows = [found[entry] for entry, _ in change.add]
        embeddings = np.array(rows, np.float32).reshape(len(rows), gallery.dim)
        apply_change(gallery, change, embeddings)
        data = gallery.to_bytes()
        fields = dict(
            site=site.code,
            version=gallery.version,
            model_pack=gallery.pack,
            entries=len(gallery),
            sha256=hashlib.sha256(data).hexdigest(),
            size_bytes=len(data),
            key_id=self.key.key_id,
        )
        # Older files may hold templates of students erased since: keep only the newest.
        db.exec(
            update(GalleryVersion)
            .where(col(GalleryVersion.site_id) == site.id)
            .values(data=None, members=None)
        )
        removed = set(change.remove)
        kept = [pair for pair in members if pair[0] not in removed]
        row = GalleryVersion(
            site_id=site.id,
            signature=sign(self.key.private_key, **fields),
            reason=reason,
            created_by=actor_id,
            data=data,
            members=[list(pair) for pair in kept + list(change.add)],
            changes=change.to_json(),
            **{name: value for name, value in fields.items() if name != "site"},
        )
        db.add(row)
        db.flush()
        return row

    def _announce(self, notice: GalleryNotice) -> bool:
        """Tell the broker; a broker that is down is logged, not raised: the version is stored
        and :meth:`publish_all` announces it again later."""
        if self.announce is None:
            return False
        try:
            self.announce(gallery_topic(notice.site), encode(notice))
        except AnnounceError as exc:
            log.error(
                "gallery notice not announced",
                extra={"site": notice.site, "version": notice.version, "reason": str(exc)},
            )
            return False
        return True


def newest_version(db: Session, site_id: int) -> GalleryVersion | None:
    """The site's newest published gallery, or None before its first."""
    return db.exec(
        select(GalleryVersion)
        .where(GalleryVersion.site_id == site_id)
        .order_by(col(GalleryVersion.version).desc())
        .limit(1)
    ).first()


def _difference(
    members: list[tuple[str, str]],
    cards: dict[str, str],
    wanted: list[tuple[str, str]],
    wanted_cards: dict[str, str],
) -> GalleryChange:
    """What turns a gallery with ``members`` and ``cards`` into the wanted one."""
    have, want = set(members), set(wanted)
    return GalleryChange(
        remove=tuple(entry for entry, person in members if (entry, person) not in want),
        add=tuple(pair for pair in wanted if pair not in have),
        cards=None if wanted_cards == cards else wanted_cards,
    )


def default_base_url() -> str:
    """The API's base URL as gates reach it: the configured public URL, else loopback."""
    public = get_face_settings().public_url
    if public is not None:
        return str(public).rstrip("/")
    http = get_settings().http
    return f"{http.scheme}://127.0.0.1:{http.port}/api/v1"


@lru_cache
def shared_publisher() -> GalleryPublisher:
    """The process's publisher: the configured pack, the key in the data directory, the
    broker of the server's MQTT settings."""
    settings = get_settings()
    return GalleryPublisher(
        manifest=shared_pack().manifest,
        key=load_or_create_key(settings.data_dir),
        base_url=default_base_url(),
        announce=mqtt_announcer(settings.mqtt),
    )


def publish_loop(
    engine: Engine,
    stop: threading.Event,
    publisher: GalleryPublisher | None = None,
    interval_s: float = PUBLISH_INTERVAL_S,
) -> None:
    """:meth:`GalleryPublisher.publish_all` now and then every ``interval_s`` until ``stop``.

    Run beside the web server: the first round gives a new site its first gallery and puts
    every site's notice back on a broker that lost it; later rounds publish what changed
    without a publish (a student made inactive, a card added). A failed round (database or
    pack away) is logged and tried again at the next tick."""
    while True:
        try:
            with Session(writer(engine)) as db:
                (publisher or shared_publisher()).publish_all(db)
        except Exception:
            log.exception("gallery publishing failed; trying again at the next tick")
        if stop.wait(interval_s):
            return
