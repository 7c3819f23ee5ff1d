"""Users: an admin creates, changes, deactivates and removes them, and sets their passwords."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, status
from sqlalchemy import delete
from sqlmodel import col, select

from server.api import crud
from server.api.deps import AdminUser, IdPath, SessionDep
from server.api.schemas.users import PasswordSet, UserCreate, UserPublic, UserRules, UserUpdate
from server.api.security import hash_password
from server.auth_models import WebSession
from server.models import Role, User

router = APIRouter(prefix="/users", tags=["users"])
DUPLICATE = "username taken / tên đăng nhập đã có người dùng"


@router.get("")
def list_users(
    _admin: AdminUser, db: SessionDep, role: Annotated[Role | None, Query()] = None
) -> list[UserPublic]:
    statement = select(User).order_by(col(User.username))
    if role is not None:
        statement = statement.where(User.role == role)
    return list(db.exec(statement))


@router.post("", status_code=status.HTTP_201_CREATED)
def create_user(body: UserCreate, _admin: AdminUser, db: SessionDep) -> UserPublic:
    password = body.password
    user = User(
        **body.model_dump(exclude={"password"}),
        password_hash=hash_password(password) if password else None,
    )
    crud.store(db, user, DUPLICATE)
    db.commit()
    return user


@router.get("/{user_id}")
def get_user(user_id: IdPath, _admin: AdminUser, db: SessionDep) -> UserPublic:
    return crud.get_or_404(db, User, user_id, "user")


@router.patch("/{user_id}")
def update_user(user_id: IdPath, body: UserUpdate, admin: AdminUser, db: SessionDep) -> UserPublic:
    """Change a user; an admin cannot take away their own admin role or deactivate themselves,
    so a school is never left without one."""
    user = crud.get_or_404(db, User, user_id, "user")
    demoted = body.role not in (None, Role.ADMIN) or body.is_active is False
    if user.id == admin.id and demoted:
        raise crud.conflict("cannot demote or deactivate yourself / không thể tự hạ quyền")
    crud.patch(db, user, UserRules, body, DUPLICATE)
    db.commit()
    return user


@router.put("/{user_id}/password", status_code=status.HTTP_204_NO_CONTENT)
def set_password(user_id: IdPath, body: PasswordSet, _admin: AdminUser, db: SessionDep) -> None:
    """Set a user's password (a new account, a forgotten password); their web sessions end."""
    user = crud.get_or_404(db, User, user_id, "user")
    user.password_hash = hash_password(body.password)
    db.add(user)
    db.exec(delete(WebSession).where(col(WebSession.user_id) == user.id))
    db.commit()


@router.delete("/{user_id}", status_code=status.HTTP_204_NO_CONTENT)
def delete_user(user_id: IdPath, admin: AdminUser, db: SessionDep) -> None:
    """Remove a user; records they made keep their content with no author."""
    user = crud.get_or_404(db, User, user_id, "user")
    if user.id == admin.id:
        raise crud.conflict("cannot delete yourself / không thể tự xoá tài khoản")
    db.delete(user)
    db.commit()
