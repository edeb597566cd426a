"""The team console under /app: inbox, conversation, tasks, knowledge, workflows, platform
accounts, integrations, plan and analytics. Thin views over the same services as the API.
"""
from __future__ import annotations

import json
from datetime import date, datetime, timedelta, timezone

from flask import abort, flash, g, jsonify, redirect, request, url_for
from pydantic import ValidationError

from routes.pages import integration_forms
from routes.pages.common import done, page_blueprint, render, wants_json
from routes.pages.forms import (
    AnswerConfidenceForm,
    KnowledgeForm,
    PlatformForm,
    ReplyForm,
    WorkflowForm,
)
from routes.schemas import ConversationListQuery, WorkflowPatchIn
from services import analytics, business, messaging, platforms, subscriptions, tasks, workflows
from services import conversations as conv_svc
from services import integrations as integ_svc
from services import knowledge as kb
from utils.auth import issue_access_token
from utils.config import current_settings
from utils.errors import ApiError
from utils.store import ConversationFilters, TaskFilters

bp = page_blueprint("console", "/app")

PLATFORMS = ("facebook", "instagram", "whatsapp")
STATUSES = ("open", "pending", "resolved", "snoozed")


def _form_errors(form) -> dict:
    return {name: errors for name, errors in form.errors.items()}


def _invalid(template: str, form, **context):
    """A form with errors: field errors as JSON for a fetch, else the page again (400)."""
    if wants_json():
        return jsonify({"error": {"code": "validation_error",
                                  "message": "Some fields are missing or invalid.",
                                  "details": [{"field": k, "message": "; ".join(v)}
                                              for k, v in _form_errors(form).items()]}}), 400
    return render(template, 400, form=form, **context)


@bp.get("")
def inbox():
    """Conversations, newest activity first; filter by status and platform, search by text."""
    args = {k: v for k, v in request.args.items() if v}
    try:
        query = ConversationListQuery.model_validate(
            {k: args[k] for k in ("status", "platform", "q", "cursor") if k in args})
    except ValidationError:
        query = ConversationListQuery()
    filters = ConversationFilters(status=query.status, platform=query.platform, q=query.q)
    page = conv_svc.list_conversations(g.user.id, filters, 25, query.cursor)
    return render("app/inbox.html", page=page, query=query, platforms=PLATFORMS,
                  statuses=STATUSES)


@bp.get("/conversations/<conversation_id>")
def conversation(conversation_id: str, form: ReplyForm | None = None, status: int = 200):
    """One thread with the reply box; the 24-hour window is shown (WhatsApp: templates)."""
    conv = conv_svc.get_conversation(g.user.id, conversation_id)
    if conv["unread_count"]:
        conv = conv_svc.mark_read(g.user.id, conversation_id)
    thread = conv_svc.list_messages(g.user.id, conversation_id, 100, None)
    open_tasks = tasks.list_tasks(g.user.id, TaskFilters(conversation_id=conversation_id),
                                  20, None)["items"]
    window_end = None
    if conv.get("last_inbound_at"):
        hours = g.settings.MESSAGING_WINDOW_HOURS
        window_end = datetime.fromisoformat(conv["last_inbound_at"]) + timedelta(hours=hours)
    return render("app/conversation.html", status, conv=conv, thread=thread["items"],
                  tasks=open_tasks, form=form or ReplyForm(),
                  window_open=messaging.window_open(conv), window_end=window_end)


@bp.before_request
def _settings():
    """The app's settings for the views (the messaging window)."""
    g.settings = current_settings()


@bp.post("/conversations/<conversation_id>/reply")
def reply(conversation_id: str):
    """Send an agent reply (or a WhatsApp template); it goes out through the platform."""
    form = ReplyForm()
    if not form.validate():
        if wants_json():
            return _invalid("", form)
        return conversation(conversation_id, form=form, status=400)
    name = (form.template_name.data or "").strip()
    template = ({"name": name, "language": form.template_language.data or "en_US",
                 "components": []} if name else None)
    message = messaging.send_agent_reply(g.user.id, g.user.id, conversation_id,
                                         (form.text.data or "").strip() or None,
                                         template=template)
    if wants_json():
        return jsonify({"status": "ok", "message": message}), 201
    return done("Reply sent." if message["status"] != "failed"
                else f"Reply not delivered: {message['error']}.",
                "console.conversation", conversation_id=conversation_id)


@bp.post("/conversations/<conversation_id>/status")
def set_status(conversation_id: str):
    """Resolve or reopen a conversation, or switch its AI on or off."""
    changes = {}
    if request.form.get("status") in STATUSES:
        changes["status"] = request.form["status"]
    if request.form.get("ai_enabled") in ("on", "off"):
        changes["ai_enabled"] = request.form["ai_enabled"] == "on"
    conv_svc.update_conversation(g.user.id, conversation_id, changes)
    return done("Conversation updated.", "console.conversation", conversation_id=conversation_id)


@bp.post("/conversations/<conversation_id>/suggest")
def suggest(conversation_id: str):
    """AI reply suggestions for the agent (fills the reply box; nothing is sent)."""
    return jsonify(conv_svc.suggest_replies(g.user.id, conversation_id))


@bp.post("/socket-token")
def socket_token():
    """A short-lived access token of this browser session for the Socket.IO connection."""
    return jsonify({"token": issue_access_token(g.user, g.auth_session)})


@bp.get("/tasks")
def task_list():
    """Tasks for humans (hand-offs first of all): open, in progress, done."""
    status = request.args.get("status") or None
    status = status if status in ("open", "in_progress", "done") else None
    page = tasks.list_tasks(g.user.id, TaskFilters(status=status), 50, request.args.get("cursor"))
    return render("app/tasks.html", page=page, status=status)


@bp.post("/tasks/<task_id>/<action>")
def task_action(task_id: str, action: str):
    """Take a task (in progress, assigned to me) or resolve it (done)."""
    changes = {"take": {"status": "in_progress", "assignee_id": g.user.id},
               "resolve": {"status": "done"}, "reopen": {"status": "open"}}.get(action)
    if changes is None:
        raise ApiError("Unknown task action.", status=404, code="not_found")
    task = tasks.update_task(g.user.id, task_id, changes)
    return done(f"Task {task['status'].replace('_', ' ')}.", "console.task_list")


@bp.get("/knowledge")
def knowledge(form: KnowledgeForm | None = None, status: int = 200,
              import_error: str | None = None, boldness: AnswerConfidenceForm | None = None):
    """Documents of the knowledge base, forms to add or import some, a test question, and
    how bold the AI answers from it (the business profile's answer_confidence).
    """
    question = (request.args.get("q") or "").strip()[:1000]
    preview = conv_svc.preview_answer(g.user.id, question) if question else None
    docs = kb.list_documents(g.user.id, limit=100)
    if boldness is None:
        level = business.get_profile(g.user.id)["answer_confidence"]
        boldness = AnswerConfidenceForm(formdata=None, answer_confidence=level)
    return render("app/knowledge.html", status, docs=docs, form=form or KnowledgeForm(),
                  question=question, preview=preview, import_error=import_error,
                  boldness=boldness)


@bp.post("/knowledge/answer-confidence")
def knowledge_answer_confidence():
    """Change how bold the AI answers (cautious, balanced or bold)."""
    form = AnswerConfidenceForm()
    if not form.validate():
        return _invalid("", form) if wants_json() else knowledge(status=400, boldness=form)
    business.update_profile(g.user.id, {"answer_confidence": form.answer_confidence.data})
    return done(f"The AI now answers at the {form.answer_confidence.data} level.",
                "console.knowledge")


@bp.post("/knowledge/import")
def knowledge_import():
    """Import a .md/.txt file or a question,answer .csv (the page shows the upload's progress)."""
    upload = request.files.get("file")
    if upload is None or not upload.filename:
        message = "Choose a file to import."
        if wants_json():
            return jsonify({"error": {"code": "file_required", "message": message}}), 400
        return knowledge(status=400, import_error=message)
    tags = [t.strip() for t in (request.form.get("tags") or "").split(",") if t.strip()]
    try:
        result = kb.import_file(g.user.id, upload.filename, upload.read(), tags=tags)
    except ApiError as exc:
        if wants_json():
            raise
        return knowledge(status=exc.status, import_error=exc.message)
    return done(f"Imported {result['created']} document(s) from {upload.filename}.",
                "console.knowledge")


@bp.post("/knowledge")
def knowledge_add():
    """Add a document (cut into passages and indexed at once; 402 over the plan's limit)."""
    form = KnowledgeForm()
    if not form.validate():
        return knowledge(form=form, status=400) if not wants_json() else _invalid("", form)
    kb.add_document(g.user.id, {"title": form.title.data, "content": form.content.data,
                                   "format": form.format.data, "tags": [], "enabled": True})
    return done("Document added.", "console.knowledge")


@bp.get("/workflows")
def workflow_list():
    """Workflows in the order they run, with their recent runs."""
    items = workflows.list_workflows(g.user.id)["items"]
    runs = workflows.list_runs(g.user.id, None, None, None, 20, None)["items"]
    return render("app/workflows.html", items=items, runs=runs)


@bp.post("/workflows/<workflow_id>/toggle")
def workflow_toggle(workflow_id: str):
    """Enable or disable a workflow."""
    enabled = request.form.get("enabled") == "on"
    workflows.update_workflow(g.user.id, workflow_id, {"enabled": enabled})
    return done("Workflow enabled." if enabled else "Workflow disabled.", "console.workflow_list")


@bp.route("/workflows/<workflow_id>", methods=["GET", "POST"])
def workflow_edit(workflow_id: str):
    """Edit a workflow's definition as JSON; it is validated like the API's (errors shown)."""
    wf = workflows.get_workflow(g.user.id, workflow_id)
    form = WorkflowForm()
    if request.method == "GET":
        form.definition.data = json.dumps(wf.definition, indent=2)
    elif form.validate():
        try:
            body = WorkflowPatchIn.model_validate({"definition": form.definition.parsed})
        except ValidationError as exc:
            form.definition.errors = [
                f"{'.'.join(str(p) for p in e['loc'][1:]) or 'definition'}: {e['msg']}"
                for e in exc.errors(include_url=False)]
        else:
            workflows.update_workflow(g.user.id, workflow_id,
                                      body.model_dump(mode="json", exclude_unset=True))
            return done("Workflow saved.", "console.workflow_edit", workflow_id=workflow_id)
    status = 400 if form.errors or form.definition.errors else 200
    if status == 400 and wants_json():
        return _invalid("", form)
    return render("app/workflow_edit.html", status, wf=wf.to_dict(), form=form)


@bp.route("/platforms", methods=["GET", "POST"])
def platform_accounts():
    """Connected Pages, Instagram accounts and WhatsApp numbers (status, last error); connect."""
    form = PlatformForm()
    status = 200
    if request.method == "POST":
        if form.validate():
            try:
                platforms.connect_account(g.user.id, form.platform.data, form.external_id.data,
                                          form.access_token.data, form.name.data or "")
            except ApiError as exc:
                form.external_id.errors = [exc.message]
                status = exc.status
            else:
                return done("Account connected.", "console.platform_accounts")
        else:
            status = 400
    items = platforms.list_accounts(g.user.id)["items"]
    return render("app/platforms.html", status, items=items, form=form)


def _integrations_page(status: int = 200, posted: dict | None = None,
                       tried: dict | None = None):
    """Every type of the catalogue with, for the caller's configured ones, their state and a
    form; `posted` = {"type", "fields", "errors"} of a refused form, shown again; `tried` =
    {"type", "query", "params", "result" | "error"} of a database lookup just tried.
    """
    mine = {i["type"]: i for i in integ_svc.list_integrations(g.user.id)["items"]}
    types = []
    for info in integ_svc.list_types(g.user.id)["items"]:
        current = mine.get(info["type"])
        refused = posted if posted and posted["type"] == info["type"] else None
        types.append({**info, "current": current,
                      "enabled": current["enabled"] if current else True,
                      "fields": refused["fields"] if refused
                      else integration_forms.fields_of(info, current),
                      "errors": refused["errors"] if refused else {},
                      "tried": tried if tried and tried["type"] == info["type"] else None})
    return render("app/integrations.html", status, types=types)


@bp.get("/integrations")
def integrations():
    """Business tools: the catalogue, what is connected (status, last error), connect forms."""
    return _integrations_page()


@bp.post("/integrations/<integration_type>")
def integration_configure(integration_type: str):
    """Connect or update an integration from its generated form (checked before stored)."""
    info = next((t for t in integ_svc.list_types(g.user.id)["items"]
                 if t["type"] == integration_type), None)
    if info is None:
        abort(404)
    fields = integration_forms.fields_of(info)
    config, errors = integration_forms.parse(fields, request.form)
    if not errors:
        try:
            integ_svc.configure_integration(g.user.id, integration_type, config,
                                            "enabled" in request.form)
        except ApiError as exc:
            errors = _integration_errors(exc, info, fields)
            status = exc.status
        else:
            return done(f"{info['name']} connected.", "console.integrations")
    else:
        status = 400
    return _integrations_page(status, {"type": integration_type, "fields": fields,
                                       "errors": errors})


def _integration_errors(exc: ApiError, info: dict, fields) -> dict[str, list[str]]:
    """Where each refusal is shown: a field's own error next to it; the service's refusal of
    the credentials next to the first secret field; anything else above the form.
    """
    names = {f.name for f in fields}
    errors: dict[str, list[str]] = {}
    if exc.code == "validation_error" and exc.details:
        for d in exc.details:
            name = d["field"].removeprefix("config.").split(".")[0]
            key = name if name in names else "_form"
            whole = name in ("", "body", "config")  # a rule across fields (e.g. user+password)
            errors.setdefault(key, []).append(
                d["message"] if key != "_form" or whole else f"{d['field']}: {d['message']}")
        return errors
    secrets = [f.name for f in fields if f.kind == "password"]
    key = secrets[0] if exc.code == "integration_check_failed" and secrets else "_form"
    return {key: [exc.message]}


@bp.post("/integrations/<integration_type>/test")
def integration_test(integration_type: str):
    """Check the stored credentials now; the status (and last error) follow the outcome."""
    result = integ_svc.test_integration(g.user.id, integration_type)
    if wants_json():
        return jsonify(result)
    if result["ok"]:
        flash(f"The check worked: {result['detail']}", "success")
    else:
        flash(f"The check failed: {result['detail']}", "error")
    return redirect(url_for("console.integrations"))


@bp.post("/integrations/<integration_type>/try")
def integration_try(integration_type: str):
    """Run a named lookup of a database integration with typed values (the "try it")."""
    raw = request.form.get("params", "").strip() or "{}"
    tried = {"type": integration_type, "query": request.form.get("query", ""), "params": raw}
    status = 200
    try:
        params = json.loads(raw)
        if not isinstance(params, dict):
            raise ValueError
    except ValueError:
        tried["error"] = 'The values must be a JSON object, e.g. {"order_number": "55821"}.'
        status = 400
    else:
        try:
            tried["result"] = integ_svc.run_lookup(g.user.id, integration_type,
                                                   tried["query"], params)
        except ApiError as exc:
            tried["error"], status = exc.message, exc.status
    return _integrations_page(status, tried=tried)


@bp.post("/integrations/<integration_type>/delete")
def integration_delete(integration_type: str):
    """Remove an integration (and what it kept about conversations)."""
    integ_svc.delete_integration(g.user.id, integration_type)
    return done("Integration removed.", "console.integrations")


@bp.get("/plan")
def plan():
    """The plan in effect, its limits and this month's usage; the plans on offer."""
    return render("app/plan.html", sub=subscriptions.subscription_view(g.user.id),
                  tiers=subscriptions.list_tiers()["items"])


@bp.get("/analytics")
def analytics_page():
    """Charts and tables of /api/analytics/summary (the same service)."""
    def _day(name):
        try:
            return date.fromisoformat(request.args.get(name, ""))
        except ValueError:
            return None
    data = analytics.summary(g.user.id, _day("from"), _day("to"))
    return render("app/analytics.html", data=data, today=datetime.now(timezone.utc).date(),
                  data_url=url_for("analytics.summary"))
