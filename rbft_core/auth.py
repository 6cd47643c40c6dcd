"""Logins and roles of the web app.

``--auth user:pass`` (or ``RBFT_AUTH``) keeps working: one login, an admin. ``--auth db`` signs in against the
``users`` table, filled with ``rbft users add NAME --role ROLE`` (the password is read from the terminal or stdin,
never from the command line) and stored as a salted scrypt hash. Roles: ``reviewer`` (answers items),
``adjudicator`` (also writes the final text of items with several responses), ``admin`` (also sets the reviews per
item, assigns adjudication and runs the bulk actions). Without a login (a local app) the user is an admin.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
from typing import Callable, Optional

from db import user_queries as uq
from db.engine import session_scope
from db.models import ROLES
from rbft_core.errors import ConfigError

__all__ = ["ROLES", "AUTH_FROM_DB", "hash_password", "verify_password", "add_user", "remove_user", "set_role",
           "list_users", "login_checker", "role_of", "require_role", "can_adjudicate", "MIN_PASSWORD_CHARS"]

AUTH_FROM_DB = "db"  # --auth db: the users table
MIN_PASSWORD_CHARS = 8
_SCRYPT = {"n": 2 ** 14, "r": 8, "p": 1}  # ~16 MB and tens of ms per check: slow to guess, fine to sign in
_RANK = {role: i for i, role in enumerate(ROLES)}


def hash_password(password: str, *, salt: Optional[bytes] = None) -> str:
    """``scrypt$n$r$p$salt$hash`` (base64); a fresh 16-byte salt per password."""
    salt = salt or os.urandom(16)
    digest = hashlib.scrypt(password.encode("utf-8"), salt=salt, dklen=32, **_SCRYPT)
    b64 = base64.b64encode
    return f"scrypt${_SCRYPT['n']}${_SCRYPT['r']}${_SCRYPT['p']}${b64(salt).decode()}${b64(digest).decode()}"


def verify_password(password: str, stored: str) -> bool:
    try:
        scheme, n, r, p, salt, digest = stored.split("$")
        if scheme != "scrypt":
            return False
        mine = hashlib.scrypt(password.encode("utf-8"), salt=base64.b64decode(salt), n=int(n), r=int(r), p=int(p),
                              dklen=32)
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(mine, base64.b64decode(digest))


_DUMMY = hash_password("not a password", salt=b"0" * 16)  # unknown names cost as much as known ones


def _name(name: str) -> str:
    name = (name or "").strip()
    if not name or len(name) > 200 or ":" in name or any(ord(c) < 32 for c in name):
        raise ConfigError(f"user name {name[:40]!r} must be 1-200 characters without ':' or control characters")
    return name


def add_user(db_url: Optional[str], name: str, role: str, password: str) -> None:
    if len(password or "") < MIN_PASSWORD_CHARS:
        raise ConfigError(f"the password must have at least {MIN_PASSWORD_CHARS} characters; nothing was stored")
    with session_scope(db_url) as s:
        uq.add_user(s, _name(name), role, hash_password(password))


def remove_user(db_url: Optional[str], name: str) -> None:
    with session_scope(db_url) as s:
        uq.remove_user(s, name)


def set_role(db_url: Optional[str], name: str, role: str) -> None:
    with session_scope(db_url) as s:
        uq.set_role(s, name, role)


def list_users(db_url: Optional[str]) -> list[dict[str, str]]:
    with session_scope(db_url) as s:
        return uq.list_users(s)


def login_checker(db_url: Optional[str]) -> Callable[[str, str], bool]:
    """Gradio's ``auth`` callable for ``--auth db``; refuses to start without a single admin to sign in as."""
    with session_scope(db_url) as s:
        users = uq.list_users(s)
    if not any(u["role"] == "admin" for u in users):
        raise ConfigError("--auth db signs in against the users table, which has no admin yet; add one with "
                          "`rbft users add NAME --role admin` (and reviewers with --role reviewer)")

    def check(username: str, password: str) -> bool:
        with session_scope(db_url) as s:
            user = uq.find_user(s, (username or "").strip())
        ok = verify_password(password or "", user["password_hash"] if user else _DUMMY)
        return bool(user) and ok

    return check


def role_of(db_url: Optional[str], username: Optional[str]) -> str:
    """The role of a signed-in user: from the users table; a login that is not there can only be the single
    ``--auth user:pass`` one, an admin; no login at all (a local app) is an admin too."""
    if not username:
        return "admin"
    with session_scope(db_url) as s:
        user = uq.find_user(s, username)
    return user["role"] if user else "admin"


def require_role(db_url: Optional[str], username: Optional[str], role: str, action: str) -> str:
    """The user's role when it is ``role`` or above; else ``ConfigError`` naming who, what and the fix."""
    have = role_of(db_url, username)
    if _RANK[have] < _RANK[role]:
        raise ConfigError(f"{username} is a {have}; {action} needs the {role} role: ask an admin "
                          f"(`rbft users role {username} {role}`)")
    return have


def can_adjudicate(db_url: Optional[str], username: Optional[str], dataset: str, assigned: list[str]) -> None:
    """Adjudicators and admins may adjudicate; when an admin assigned the dataset to some logins, only they (and
    admins) may."""
    role = require_role(db_url, username, "adjudicator", f"adjudicating {dataset}")
    if role != "admin" and assigned and username not in assigned:
        flags = " ".join(f"--adjudicator {name}" for name in [*assigned, username])
        raise ConfigError(f"adjudication of dataset {dataset} is assigned to {', '.join(assigned)}, not to {username}; "
                          f"an admin can add you (`rbft review-settings {dataset} {flags}`)")
