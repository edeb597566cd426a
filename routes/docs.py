"""The API's documentation: /api/openapi.json and the offline Swagger UI page /api/docs."""
from __future__ import annotations

from pathlib import Path

import flask_swagger_ui
from flask import Blueprint, current_app, render_template_string, send_from_directory, url_for

from utils.config import app_resource
from utils.openapi import build_spec

bp = Blueprint("docs", __name__)

# Swagger UI 5.x (renders OpenAPI 3.1, which the spec is), vendored by the flask-swagger-ui
# package: served from here, so the docs page needs no other host.
SWAGGER_UI_DIST = str(Path(flask_swagger_ui.__file__).resolve().parent / "dist")

_DOCS_PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>Dana API docs</title>
<link rel="stylesheet" href="{{ url_for('docs.docs_asset', filename='swagger-ui.css') }}"></head>
<body><div id="swagger-ui"></div>
<script src="{{ url_for('docs.docs_asset', filename='swagger-ui-bundle.js') }}"></script>
<script src="{{ url_for('docs.docs_asset', filename='swagger-ui-standalone-preset.js') }}"></script>
<script src="{{ url_for('docs.docs_asset', filename='dana-docs.js') }}"></script>
</body></html>"""

# validatorUrl null: Swagger UI would otherwise load a badge from validator.swagger.io.
_DOCS_INIT = """window.onload = function () {
  window.ui = SwaggerUIBundle({url: "%s", dom_id: "#swagger-ui", validatorUrl: null,
    presets: [SwaggerUIBundle.presets.apis, SwaggerUIStandalonePreset],
    layout: "StandaloneLayout"});
};"""


@bp.get("/api/openapi.json")
def openapi_json():
    """The OpenAPI 3 document, built from the request/response models."""
    return app_resource("dana_openapi", lambda: build_spec(current_app))


@bp.get("/api/docs")
def docs():
    """Swagger UI, with its assets served by this service (works offline)."""
    return render_template_string(_DOCS_PAGE)


@bp.get("/api/docs/assets/<path:filename>")
def docs_asset(filename: str):
    """Swagger UI's files, and the small script that points it at /api/openapi.json."""
    if filename == "dana-docs.js":
        return current_app.response_class(_DOCS_INIT % url_for("docs.openapi_json"),
                                          mimetype="application/javascript")
    return send_from_directory(SWAGGER_UI_DIST, filename, max_age=3600)
