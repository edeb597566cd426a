"""Request parsing and the OpenAPI 3.1 document, from the same Pydantic models.

`@endpoint(body=Model, query=Model, response=Model)` validates the JSON body / query string
with those models (400 with field details on failure), passes them to the view as `body`
and `query`, and records them so that `build_spec(app)` documents exactly what is enforced.
"""
from __future__ import annotations

import re
from functools import wraps
from typing import Any

from flask import Flask, request
from pydantic import BaseModel, ValidationError

from utils.errors import ApiError, ValidationFailed, validation_details

_HTTP_METHODS = ("get", "post", "put", "patch", "delete")


def parse_json_body(model: type[BaseModel]) -> BaseModel:
    """Validate the request's JSON body with a model; 415/400 in the error shape otherwise."""
    if not request.is_json:
        raise ApiError("Send the body as JSON with 'Content-Type: application/json'.",
                       status=415, code="unsupported_media_type")
    data = request.get_json(silent=True)  # None also for a body nested too deeply to parse
    if data is None:
        raise ApiError("The body is not valid JSON.", status=400, code="invalid_json")
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise ValidationFailed(details=validation_details(exc)) from None


def parse_query(model: type[BaseModel]) -> BaseModel:
    """Validate the query string with a model; repeated keys become lists."""
    data: dict[str, Any] = {}
    for key in request.args:
        values = request.args.getlist(key)
        field = model.model_fields.get(key)
        is_list = field is not None and "list" in str(field.annotation).lower()
        data[key] = values if is_list else values[-1]
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise ValidationFailed(details=validation_details(exc)) from None


def endpoint(*, body: type[BaseModel] | None = None, query: type[BaseModel] | None = None,
             response: type[BaseModel] | None = None, status: int = 200,
             summary: str | None = None, tags: list[str] | None = None,
             errors: tuple[int, ...] = (), form: dict[str, str | tuple[str, str]] | None = None):
    """Parse and document a view. The view receives `body=` / `query=` keyword arguments.

    `form` documents a multipart/form-data body ({field: "file" | "string", or (kind,
    description)}) that the view reads itself (file uploads).
    """

    def decorate(view):
        @wraps(view)
        def wrapper(*args, **kwargs):
            if body is not None:
                kwargs["body"] = parse_json_body(body)
            if query is not None:
                kwargs["query"] = parse_query(query)
            return view(*args, **kwargs)

        wrapper._dana_doc = {
            "body": body, "query": query, "response": response, "status": status,
            "summary": summary or (view.__doc__ or "").strip().split("\n")[0],
            "tags": tags, "errors": errors, "form": form,
        }
        return wrapper

    return decorate


def _without_null(schema: dict) -> dict:
    """A query parameter is absent or a string, never JSON null: drop `null` from `anyOf`."""
    any_of = schema.get("anyOf")
    if not isinstance(any_of, list) or {"type": "null"} not in any_of:
        return schema
    rest = [s for s in any_of if s != {"type": "null"}]
    out = {k: v for k, v in schema.items() if k != "anyOf"}
    if len(rest) == 1:
        out.update(rest[0])
    else:
        out["anyOf"] = rest
    if out.get("default", 0) is None:
        out.pop("default")
    return out


def _schema(model: type[BaseModel], components: dict, mode: str) -> dict:
    schema = model.model_json_schema(ref_template="#/components/schemas/{model}", mode=mode)
    for name, sub in schema.pop("$defs", {}).items():
        components[name] = sub
    components[model.__name__] = schema
    return {"$ref": f"#/components/schemas/{model.__name__}"}


_ERROR_SCHEMA = {
    "type": "object",
    "required": ["error"],
    "properties": {"error": {
        "type": "object", "required": ["code", "message"],
        "properties": {"code": {"type": "string"}, "message": {"type": "string"},
                       "details": {"type": "array", "items": {"type": "object"}},
                       "checkout_url": {
                           "type": "string", "format": "uri",
                           "description": "402 payment_required with Stripe configured: "
                                          "where the user pays for the plan"}},
    }},
}


def build_spec(app: Flask) -> dict:
    """Walk the URL map and document every view decorated with @endpoint."""
    components: dict[str, Any] = {"Error": _ERROR_SCHEMA}
    paths: dict[str, dict] = {}
    for rule in app.url_map.iter_rules():
        view = app.view_functions.get(rule.endpoint)
        doc = getattr(view, "_dana_doc", None)
        if doc is None:
            continue
        path = re.sub(r"<(?:[^:<>]+:)?([^<>]+)>", r"{\1}", rule.rule)
        for method in sorted(m.lower() for m in rule.methods if m.lower() in _HTTP_METHODS):
            op: dict[str, Any] = {"summary": doc["summary"],
                                  "operationId": f"{rule.endpoint}.{method}",
                                  "responses": {}}
            if doc["tags"]:
                op["tags"] = doc["tags"]
            # in the order they appear in the path (rule.arguments is an unordered set)
            params = [{"name": a, "in": "path", "required": True, "schema": {"type": "string"}}
                      for a in re.findall(r"{([^{}]+)}", path)]
            if doc["query"] is not None:
                qs = doc["query"].model_json_schema()
                for name, prop in qs.get("properties", {}).items():
                    params.append({"name": name, "in": "query",
                                   "required": name in qs.get("required", []),
                                   "schema": _without_null(prop)})
            if params:
                op["parameters"] = params
            if doc["body"] is not None:
                op["requestBody"] = {"required": True, "content": {
                    "application/json": {"schema": _schema(doc["body"], components, "validation")}}}
            if doc.get("form"):
                props, required = {}, []
                for name, spec in doc["form"].items():
                    kind, description = spec if isinstance(spec, tuple) else (spec, None)
                    prop = {"type": "string", "format": "binary"} if kind == "file" \
                        else {"type": "string"}
                    if description:
                        prop["description"] = description
                    props[name] = prop
                    if kind == "file":
                        required.append(name)
                op["requestBody"] = {"required": True, "content": {"multipart/form-data": {
                    "schema": {"type": "object", "properties": props, "required": required}}}}
            ok: dict[str, Any] = {"description": "Success"}
            if doc["response"] is not None:
                ok["content"] = {"application/json": {
                    "schema": _schema(doc["response"], components, "serialization")}}
            op["responses"][str(doc["status"])] = ok
            error_statuses = set(doc["errors"])
            if doc["body"] is not None or doc["query"] is not None:
                error_statuses.add(400)
            if doc["body"] is not None:
                error_statuses.add(415)  # parse_json_body: the body must be application/json
            if getattr(view, "_dana_auth", False):
                op["security"] = [{"bearerAuth": []}]
                error_statuses.add(401)
            if getattr(view, "_dana_admin", False):
                error_statuses.add(403)
            for code in sorted(error_statuses):
                op["responses"][str(code)] = {"description": "Error", "content": {
                    "application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}
            paths.setdefault(path, {})[method] = op
    return {
        "openapi": "3.1.0",
        "info": {"title": "Dana AI Platform API", "version": "1.0.0",
                 "description": "REST API of Dana. Errors always use the Error shape."},
        "paths": dict(sorted(paths.items())),
        "components": {
            "schemas": dict(sorted(components.items())),
            "securitySchemes": {"bearerAuth": {"type": "http", "scheme": "bearer",
                                               "bearerFormat": "JWT"}},
        },
    }
