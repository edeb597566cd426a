"""/api/users: the caller's profile, and user administration for admins."""
from __future__ import annotations

from flask import Blueprint, g

from routes.schemas import AdminUserUpdateIn, MeUpdateIn, UserListOut, UserListQuery, UserOut
from services import users as users_service
from utils.auth import require_admin, require_auth
from utils.openapi import endpoint

bp = Blueprint("users", __name__, url_prefix="/api/users")
TAGS = ["users"]


@bp.get("/me")
@require_auth
@endpoint(response=UserOut, tags=TAGS)
def get_me():
    """The caller's profile."""
    return g.user.to_dict()


@bp.patch("/me")
@require_auth
@endpoint(body=MeUpdateIn, response=UserOut, tags=TAGS)
def patch_me(body: MeUpdateIn):
    """Change the caller's name or time zone."""
    return users_service.update_profile(g.user, body.model_dump(exclude_unset=True)).to_dict()


@bp.get("")
@require_admin
@endpoint(query=UserListQuery, response=UserListOut, tags=TAGS)
def list_users(query: UserListQuery):
    """Admin: list users, optionally searching by e-mail."""
    return users_service.list_users(query.q, query.limit, query.cursor)


@bp.get("/<user_id>")
@require_admin
@endpoint(response=UserOut, tags=TAGS, errors=(404,))
def get_user(user_id: str):
    """Admin: one user."""
    return users_service.get_user(user_id).to_dict()


@bp.patch("/<user_id>")
@require_admin
@endpoint(body=AdminUserUpdateIn, response=UserOut, tags=TAGS, errors=(404,))
def patch_user(user_id: str, body: AdminUserUpdateIn):
    """Admin: change a user's role or active flag."""
    return users_service.admin_update_user(g.user, user_id,
                                           body.model_dump(exclude_unset=True)).to_dict()
