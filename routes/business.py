"""/api/business: the business profile the AI speaks for (name, persona, instructions,
hand-off message, language, answer confidence).
"""
from __future__ import annotations

from flask import Blueprint, g

from routes.schemas import BusinessProfileIn, BusinessProfileOut
from services import business
from utils.auth import require_auth
from utils.openapi import endpoint

bp = Blueprint("business", __name__, url_prefix="/api/business")
TAGS = ["business"]


@bp.get("")
@require_auth
@endpoint(response=BusinessProfileOut, tags=TAGS)
def get_business():
    """The business profile the AI uses (name, persona, instructions, hand-off message,
    language, how bold the offline AI is).
    """
    return business.get_profile(g.user.id)


@bp.put("")
@require_auth
@endpoint(body=BusinessProfileIn, response=BusinessProfileOut, tags=TAGS)
def put_business(body: BusinessProfileIn):
    """Change the business profile."""
    return business.update_profile(g.user.id, body.model_dump(exclude_unset=True))
