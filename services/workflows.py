"""Workflows per user (CRUD, the default workflow) and their recorded runs."""
from __future__ import annotations

from sqlalchemy import select

from automation.core.assignees import check_definition_assignees
from automation.core.workflow_engine import DEFAULT_DEFINITION
from models_db import Workflow, WorkflowRun, db
from utils.errors import NotFound
from utils.pagination import paginate


def create_default_workflow(user_id: str) -> Workflow:
    """Every new business starts answering with AI and handing off when unsure."""
    return create_workflow(user_id, {
        "name": "Answer with AI",
        "description": "Answer every customer message from the knowledge base; when the AI is "
                       "not sure, open a task for a human and tell the customer.",
        "enabled": True, "position": 1000, "definition": DEFAULT_DEFINITION})


def list_workflows(user_id: str) -> dict:
    """The user's workflows in the order they run (position, then age)."""
    rows = db.session.scalars(select(Workflow).where(Workflow.user_id == user_id)
                              .order_by(Workflow.position, Workflow.created_at))
    return {"items": [w.to_dict() for w in rows], "next_cursor": None}


def get_workflow(user_id: str, workflow_id: str) -> Workflow:
    """One of the user's workflows, or 404."""
    wf = db.session.scalar(select(Workflow).where(Workflow.id == workflow_id,
                                                  Workflow.user_id == user_id))
    if wf is None:
        raise NotFound("No such workflow.", code="workflow_not_found")
    return wf


def create_workflow(user_id: str, data: dict) -> Workflow:
    """Store a workflow; an `assign` action may name the owner only (404 otherwise)."""
    definition = data["definition"]
    check_definition_assignees(user_id, definition)
    wf = Workflow(user_id=user_id, name=data["name"], description=data.get("description") or "",
                  enabled=data.get("enabled", True), position=data.get("position", 100),
                  trigger_type=definition["trigger"]["type"], definition=definition)
    db.session.add(wf)
    db.session.commit()
    return wf


def update_workflow(user_id: str, workflow_id: str, changes: dict) -> Workflow:
    """Change a workflow; a new definition also updates its trigger type."""
    wf = get_workflow(user_id, workflow_id)
    check_definition_assignees(user_id, changes.get("definition"))
    for key in ("name", "description", "enabled", "position"):
        if changes.get(key) is not None:
            setattr(wf, key, changes[key])
    if changes.get("definition") is not None:
        wf.definition = changes["definition"]
        wf.trigger_type = changes["definition"]["trigger"]["type"]
    db.session.commit()
    return wf


def delete_workflow(user_id: str, workflow_id: str) -> None:
    """Delete one of the user's workflows (its runs stay, unlinked)."""
    db.session.delete(get_workflow(user_id, workflow_id))
    db.session.commit()


def list_runs(user_id: str, workflow_id: str | None, conversation_id: str | None,
              matched: bool | None, limit: int, cursor: str | None) -> dict:
    """Recorded runs, newest first."""
    stmt = select(WorkflowRun).where(WorkflowRun.user_id == user_id)
    if workflow_id:
        stmt = stmt.where(WorkflowRun.workflow_id == workflow_id)
    if conversation_id:
        stmt = stmt.where(WorkflowRun.conversation_id == conversation_id)
    if matched is not None:
        stmt = stmt.where(WorkflowRun.matched.is_(matched))
    return paginate(stmt, WorkflowRun.started_at, WorkflowRun.id, cursor, limit,
                    WorkflowRun.to_dict).to_dict()
