"""/api/integrations: connect business tools (Slack, e-mail, ...), check and remove them."""
from __future__ import annotations

from flask import Blueprint, g

from routes.schemas import (
    IntegrationIn,
    IntegrationListOut,
    IntegrationOut,
    IntegrationTestOut,
    IntegrationTypeListOut,
    LookupIn,
    LookupOut,
)
from services import integrations as svc
from utils.auth import require_auth
from utils.openapi import endpoint

bp = Blueprint("integrations", __name__, url_prefix="/api/integrations")
TAGS = ["integrations"]


@bp.get("")
@require_auth
@endpoint(response=IntegrationListOut, tags=TAGS)
def list_integrations():
    """The caller's integrations (secrets masked)."""
    return svc.list_integrations(g.user.id)


@bp.get("/types")
@require_auth
@endpoint(response=IntegrationTypeListOut, tags=TAGS)
def list_types():
    """Every integration type: its config's JSON schema and whether the caller's plan has it."""
    return svc.list_types(g.user.id)


@bp.post("")
@require_auth
@endpoint(body=IntegrationIn, response=IntegrationOut, status=201, tags=TAGS,
          errors=(402, 409, 422))
def configure(body: IntegrationIn):
    """Configure an integration: 201 new, 200 updated; 422 when the service refuses it."""
    integration, created = svc.configure_integration(g.user.id, body.type, body.config,
                                                     body.enabled)
    return integration, 201 if created else 200


@bp.get("/<integration_type>")
@require_auth
@endpoint(response=IntegrationOut, tags=TAGS, errors=(404,))
def get_integration(integration_type: str):
    """One of the caller's integrations."""
    return svc.get_integration(g.user.id, integration_type)


@bp.post("/<integration_type>/test")
@require_auth
@endpoint(response=IntegrationTestOut, tags=TAGS, errors=(404,))
def test(integration_type: str):
    """Check the stored credentials with the service now; the status follows the outcome."""
    return svc.test_integration(g.user.id, integration_type)


@bp.post("/<integration_type>/query")
@require_auth
@endpoint(body=LookupIn, response=LookupOut, tags=TAGS, errors=(402, 404, 409, 502))
def query(integration_type: str, body: LookupIn):
    """Run a named lookup of a database integration with bound parameters (read-only)."""
    return svc.run_lookup(g.user.id, integration_type, body.query, body.params)


@bp.delete("/<integration_type>")
@require_auth
@endpoint(status=204, tags=TAGS, errors=(404,))
def delete(integration_type: str):
    """Remove an integration."""
    svc.delete_integration(g.user.id, integration_type)
    return "", 204
