"""/api/workflows: automation rules and their runs."""
from __future__ import annotations

from flask import Blueprint, g

from routes.schemas import (
    WorkflowIn,
    WorkflowListOut,
    WorkflowOut,
    WorkflowPatchIn,
    WorkflowRunListOut,
    WorkflowRunQuery,
)
from services import workflows as svc
from utils.auth import require_auth
from utils.openapi import endpoint

bp = Blueprint("workflows", __name__, url_prefix="/api")
TAGS = ["workflows"]


@bp.get("/workflows")
@require_auth
@endpoint(response=WorkflowListOut, tags=TAGS)
def list_workflows():
    """The caller's workflows in the order they run."""
    return svc.list_workflows(g.user.id)


@bp.post("/workflows")
@require_auth
@endpoint(body=WorkflowIn, response=WorkflowOut, status=201, tags=TAGS, errors=(404,))
def create_workflow(body: WorkflowIn):
    """Add a workflow (the definition is validated: trigger, conditions, actions)."""
    return svc.create_workflow(g.user.id, body.model_dump(mode="json")).to_dict(), 201


@bp.get("/workflows/runs")
@require_auth
@endpoint(query=WorkflowRunQuery, response=WorkflowRunListOut, tags=TAGS)
def list_runs(query: WorkflowRunQuery):
    """Recorded runs, newest first: what matched and what each action did."""
    return svc.list_runs(g.user.id, query.workflow_id, query.conversation_id, query.matched,
                         query.limit, query.cursor)


@bp.get("/workflows/<workflow_id>")
@require_auth
@endpoint(response=WorkflowOut, tags=TAGS, errors=(404,))
def get_workflow(workflow_id: str):
    """One workflow."""
    return svc.get_workflow(g.user.id, workflow_id).to_dict()


@bp.patch("/workflows/<workflow_id>")
@require_auth
@endpoint(body=WorkflowPatchIn, response=WorkflowOut, tags=TAGS, errors=(404,))
def patch_workflow(workflow_id: str, body: WorkflowPatchIn):
    """Change a workflow."""
    return svc.update_workflow(g.user.id, workflow_id,
                               body.model_dump(mode="json", exclude_unset=True)).to_dict()


@bp.delete("/workflows/<workflow_id>")
@require_auth
@endpoint(status=204, tags=TAGS, errors=(404,))
def delete_workflow(workflow_id: str):
    """Delete a workflow."""
    svc.delete_workflow(g.user.id, workflow_id)
    return "", 204
