"""The gallery over HTTPS: gates fetch their site's signed file (or a delta); admins publish.

A gate learns of a new version from the retained notice on ``cg/v1/{site}/gallery`` and
fetches the URL it names with its own credential (HTTP Basic ``{site}.{device}``). A gate asks
only for its own site's gallery: another site's is 404, as is any version but the newest (the
notice the gate holds is then stale; a fresher one is on its way). With ``?since=N`` the answer
is a delta from version N (:mod:`server.gallery_delta`), or 410 when there is none to give, and
the gate fetches the full file.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Path, Query, Response, status
from sqlmodel import select

from broker.payloads import GalleryNotice
from models.gallery_delta import GalleryDelta
from server.api.deps import AdminUser, DeviceDep, SessionDep, not_found
from server.api.schemas.enrollment import GalleryPublished
from server.gallery_delta import DeltaUnavailable, build_delta
from server.gallery_publish import (
    FILE_PATH,
    GalleryPublisher,
    Published,
    newest_version,
    shared_publisher,
)
from server.models import ID_REGEX, Site

router = APIRouter(tags=["gallery"])

PublisherDep = Annotated[GalleryPublisher, Depends(shared_publisher)]
SiteCode = Annotated[str, Path(pattern=ID_REGEX, max_length=63)]
MAX_VERSION = 2**53


def published(result: Published) -> GalleryPublished:
    """The API's view of a publish."""
    return GalleryPublished(
        site=result.site, version=result.version, changed=result.changed, announced=result.announced
    )


@router.get(
    FILE_PATH,
    response_class=Response,
    responses={
        200: {
            "description": "The gallery file, or with ``since`` a delta (JSON).",
            "model": GalleryDelta,
            "content": {
                "application/octet-stream": {"schema": {"type": "string", "format": "binary"}}
            },
        },
        404: {"description": "Not this device's site, or not the newest version."},
        410: {"description": "No delta from ``since``: fetch the full file."},
    },
)
def gallery_file(
    site: SiteCode,
    version: Annotated[int, Path(ge=0, le=MAX_VERSION)],
    device: DeviceDep,
    db: SessionDep,
    since: Annotated[int | None, Query(ge=0, le=MAX_VERSION)] = None,
) -> Response:
    """The site's newest gallery file (as the notice announced it), for the site's own gates."""
    own = db.exec(select(Site).where(Site.id == device.site_id, Site.code == site)).first()
    row = newest_version(db, own.id) if own is not None else None
    if row is None or row.version != version or row.data is None:
        raise not_found("gallery", f"{site} v{version}")
    if since is None:
        return Response(
            row.data,
            media_type="application/octet-stream",
            headers={"ETag": f'"{row.sha256}"', "Cache-Control": "no-store"},
        )
    try:
        delta = build_delta(db, site, row.site_id, since, row)
    except DeltaUnavailable as exc:
        raise HTTPException(
            status.HTTP_410_GONE, f"{exc}; fetch the full file / hãy tải cả tệp"
        ) from None
    return Response(delta, media_type="application/json", headers={"Cache-Control": "no-store"})


@router.get(
    "/gallery/{site}",
    responses={404: {"description": "Not this device's site, or nothing published yet."}},
)
def gallery_notice(
    site: SiteCode, device: DeviceDep, db: SessionDep, publisher: PublisherDep
) -> GalleryNotice:
    """The signed notice of the site's newest gallery, the one the broker keeps retained: for
    `gatectl doctor`, which checks the whole way from notice to file with the gate's own
    credential and CA, and for anything that must not depend on the broker's retained copy."""
    own = db.exec(select(Site).where(Site.id == device.site_id, Site.code == site)).first()
    row = newest_version(db, own.id) if own is not None else None
    if row is None or row.data is None:
        raise not_found("gallery", site)
    return publisher.notice(site, row)


@router.post("/gallery/{site}/publish")
def publish_gallery(
    site: SiteCode, admin: AdminUser, db: SessionDep, publisher: PublisherDep
) -> GalleryPublished:
    """Publish the site's gallery now if anything changed, and announce its newest notice
    again either way (e.g. after the broker lost its retained messages)."""
    if db.exec(select(Site.id).where(Site.code == site)).first() is None:
        raise not_found("site", site)
    return published(
        publisher.publish_site(
            db, site, reason="manual", actor_id=admin.id, announce_unchanged=True
        )
    )
