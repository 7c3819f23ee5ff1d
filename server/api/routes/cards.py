"""Chip cards (student cards, CCCD): an admin assigns a UID to a student; each read and change
is audited, since a card identifies its student at the gate, and each change republishes the
school's galleries (gates check cards against the card table in them)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request, status
from sqlmodel import Session, col, select

from server.api import crud
from server.api.deps import (
    AdminUser,
    IdPath,
    Offset,
    OptionalLimit,
    SessionDep,
    audit_change,
    audit_read,
)
from server.api.routes.gallery import PublisherDep
from server.api.schemas.common import MAX_ID
from server.api.schemas.people import CardCreate, CardPublic, CardUpdate
from server.gallery_publish import GalleryPublisher
from server.models import Card, Student, User

router = APIRouter(prefix="/cards", tags=["cards"])
DUPLICATE = "this card UID is already assigned / thẻ này đã được gán cho học sinh khác"


def _commit_and_publish(
    db: Session, publisher: GalleryPublisher, card: Card, admin: User, reason: str
) -> None:
    student = db.get(Student, card.student_id)
    db.commit()
    if student is not None:
        publisher.publish_school(db, student.school_id, reason=reason, actor_id=admin.id)


@router.get("")
def list_cards(
    admin: AdminUser,
    db: SessionDep,
    request: Request,
    student_id: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None,
    uid: Annotated[str | None, Query(max_length=20)] = None,
    limit: OptionalLimit = None,
    offset: Offset = 0,
) -> list[CardPublic]:
    """Cards, of one student or with one UID (upper-case hex, as gates send it)."""
    statement = select(Card).order_by(col(Card.id))
    if student_id is not None:
        statement = statement.where(Card.student_id == student_id)
    if uid is not None:
        statement = statement.where(Card.uid == uid.upper())
    cards = list(db.exec(statement.offset(offset).limit(limit)))
    audit_read(db, admin, [c.student_id for c in cards], "cards", request=request)
    return cards


@router.post("", status_code=status.HTTP_201_CREATED)
def create_card(
    body: CardCreate,
    admin: AdminUser,
    db: SessionDep,
    request: Request,
    publisher: PublisherDep,
) -> CardPublic:
    card = crud.create(db, Card, body, DUPLICATE)
    audit_change(
        db,
        admin,
        "card.create",
        card,
        student_id=card.student_id,
        before={},
        after=body.model_dump(),
        request=request,
    )
    _commit_and_publish(db, publisher, card, admin, "card assigned")
    return card


@router.get("/{card_id}")
def get_card(card_id: IdPath, admin: AdminUser, db: SessionDep, request: Request) -> CardPublic:
    card = crud.get_or_404(db, Card, card_id, "card")
    audit_read(db, admin, card.student_id, "cards", request=request)
    return card


@router.patch("/{card_id}")
def update_card(
    card_id: IdPath,
    body: CardUpdate,
    admin: AdminUser,
    db: SessionDep,
    request: Request,
    publisher: PublisherDep,
) -> CardPublic:
    """Activate or deactivate a card, or change its kind."""
    card = crud.get_or_404(db, Card, card_id, "card")
    before = crud.patch(db, card, CardCreate, body, DUPLICATE)
    audit_change(
        db, admin, "card.update", card, student_id=card.student_id, before=before, request=request
    )
    _commit_and_publish(db, publisher, card, admin, "card changed")
    return card


@router.delete("/{card_id}", status_code=status.HTTP_204_NO_CONTENT)
def delete_card(
    card_id: IdPath, admin: AdminUser, db: SessionDep, request: Request, publisher: PublisherDep
) -> None:
    card = crud.get_or_404(db, Card, card_id, "card")
    audit_change(
        db,
        admin,
        "card.delete",
        card,
        student_id=card.student_id,
        before={"uid": card.uid},
        after={},
        request=request,
    )
    db.delete(card)
    _commit_and_publish(db, publisher, card, admin, "card removed")
