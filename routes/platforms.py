"""/api/platforms: connect Facebook Pages, Instagram accounts and WhatsApp numbers."""
from __future__ import annotations

from flask import Blueprint, g

from routes.schemas import (
    PlatformAccountIn,
    PlatformAccountListOut,
    PlatformAccountOut,
    PlatformAccountPatchIn,
)
from services import platforms as svc
from utils.auth import require_auth
from utils.openapi import endpoint

bp = Blueprint("platforms", __name__, url_prefix="/api/platforms")
TAGS = ["platforms"]


@bp.get("")
@require_auth
@endpoint(response=PlatformAccountListOut, tags=TAGS)
def list_accounts():
    """The caller's connected accounts (tokens are never returned)."""
    return svc.list_accounts(g.user.id)


@bp.post("")
@require_auth
@endpoint(body=PlatformAccountIn, response=PlatformAccountOut, status=201, tags=TAGS,
          errors=(402, 409, 422, 503))
def connect(body: PlatformAccountIn):
    """Connect an account the token is proven (one Graph call) to manage.

    402 `plan_limit` when the plan does not allow it (checked first, nothing sent to Meta);
    422 `platform_check_failed` when Meta refuses the token or it manages another account
    (Meta's reason in the message); 409 when anyone connected it already; 503 when Meta
    cannot be reached. Nothing is stored unless the check passed.
    """
    account = svc.connect_account(g.user.id, body.platform, body.external_id, body.access_token,
                                  body.name)
    return account.to_dict(), 201


@bp.patch("/<account_id>")
@require_auth
@endpoint(body=PlatformAccountPatchIn, response=PlatformAccountOut, tags=TAGS,
          errors=(404, 422, 503))
def patch(account_id: str, body: PlatformAccountPatchIn):
    """Rename an account or give it a new access token (re-authorize).

    A new token is checked with Graph like a connect: 422 `platform_check_failed` (nothing
    changed) unless it manages this very account.
    """
    return svc.update_account(g.user.id, account_id, body.model_dump(exclude_unset=True)).to_dict()


@bp.delete("/<account_id>")
@require_auth
@endpoint(status=204, tags=TAGS, errors=(404,))
def disconnect(account_id: str):
    """Disconnect an account (its conversations stay)."""
    svc.disconnect_account(g.user.id, account_id)
    return "", 204
