"""The web app's logins (``users``): name, role and a password hash; the hashing itself is ``rbft_core.auth``'s.
Flush, never commit."""

from __future__ import annotations

from typing import Any, Optional

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from db.models import ROLES, User
from rbft_core.errors import ConfigError, DataError

__all__ = ["add_user", "find_user", "list_users", "remove_user", "set_role"]


def _role(role: str) -> str:
    if role not in ROLES:
        raise ConfigError(f"role must be one of {', '.join(ROLES)}, got {role!r}")
    return role


def add_user(session: Session, name: str, role: str, password_hash: str) -> None:
    if find_user(session, name) is not None:
        raise DataError(f"user {name!r} already exists; remove it first (`rbft users remove {name}`) or change its "
                        f"role with `rbft users role {name} ROLE`")
    session.add(User(name=name, role=_role(role), password_hash=password_hash))
    session.flush()


def find_user(session: Session, name: str) -> Optional[dict[str, Any]]:
    row = session.scalar(select(User).where(User.name == name))
    return {"name": row.name, "role": row.role, "password_hash": row.password_hash} if row is not None else None


def list_users(session: Session) -> list[dict[str, str]]:
    return [{"name": u.name, "role": u.role} for u in session.scalars(select(User).order_by(User.name))]


def remove_user(session: Session, name: str) -> None:
    if session.execute(delete(User).where(User.name == name)).rowcount != 1:
        raise DataError(f"no user {name!r}; `rbft users list` shows the logins")


def set_role(session: Session, name: str, role: str) -> None:
    user = session.scalar(select(User).where(User.name == name))
    if user is None:
        raise DataError(f"no user {name!r}; add it with `rbft users add {name} --role {role}`")
    user.role = _role(role)
    session.flush()
