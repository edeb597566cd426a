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
          errors=(402, 409))
def connect(body: PlatformAccountIn):
    """Connect an account; 409 if already connected by anyone; 402 if the plan doesn't allow it."""
    account = svc.connect_account(g.user.id, body.platform, body.external_id, body.access_token,
                                  body.name)
    return account.to_dict(), 201


@bp.patch("/<account_id>")
@require_auth
@endpoint(body=PlatformAccountPatchIn, response=PlatformAccountOut, tags=TAGS, errors=(404,))
def patch(account_id: str, body: PlatformAccountPatchIn):
    """Rename an account or give it a new access token (re-authorize)."""
    return svc.update_account(g.user.id, account_id, body.model_dump(exclude_unset=True)).to_dict()


@bp.delete("/<account_id>")
@require_auth
@endpoint(status=204, tags=TAGS, errors=(404,))
def disconnect(account_id: str):
    """Disconnect an account (its conversations stay)."""
    svc.disconnect_account(g.user.id, account_id)
    return "", 204
