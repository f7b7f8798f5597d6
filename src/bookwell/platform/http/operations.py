"""Operational endpoints: liveness, readiness, metrics, the contract and its reference (assets served locally)."""

from __future__ import annotations

import os
from collections.abc import Callable
from collections.abc import Mapping

import flask_swagger_ui
from flask import Flask
from flask import Response
from flask import jsonify
from flask import redirect
from flask import send_from_directory
from flask.typing import ResponseReturnValue

from bookwell.platform.http.contract.binding import Call
from bookwell.platform.http.contract.binding import Views
from bookwell.platform.http.contract.binding import serve_contract
from bookwell.platform.http.contract.spec import Contract
from bookwell.platform.http.problems import HttpProblem
from bookwell.platform.observability.metrics import exposition

ReadinessCheck = Callable[[], bool]
SWAGGER_DIST = os.path.join(os.path.dirname(flask_swagger_ui.__file__), "dist")

_DOCS_PAGE = """<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <title>Bookwell API v1</title>
  <link rel="stylesheet" href="/docs/assets/swagger-ui.css">
</head>
<body>
  <div id="reference"></div>
  <script src="/docs/assets/swagger-ui-bundle.js"></script>
  <script>
    SwaggerUIBundle({url: "/openapi/v1.json", dom_id: "#reference", deepLinking: true});
  </script>
</body>
</html>
"""


def operation_views(contract: Contract, checks: Mapping[str, ReadinessCheck]) -> Views:
    """The views of the contract's operational endpoints; `checks` decide readiness."""
    views = Views()

    @views.operation("getLiveness")
    def liveness(_call: Call) -> Response:
        return jsonify({"status": "ok"})

    @views.operation("getReadiness")
    def readiness(_call: Call) -> Response:
        results = {name: "ok" if check() else "unavailable" for name, check in checks.items()}
        failing = sorted(name for name, result in results.items() if result != "ok")
        if failing:
            raise HttpProblem(
                503,
                "dependency_unavailable",
                "Service unavailable",
                f"Not ready: {', '.join(failing)} unreachable.",
                headers={"Retry-After": "5"},
            )
        return jsonify({"status": "ok", "checks": results})

    @views.operation("getMetrics")
    def metrics(_call: Call) -> Response:
        body, content_type = exposition()
        return Response(body, content_type=content_type)

    @views.operation("getContract")
    def contract_json(_call: Call) -> Response:
        return serve_contract(contract)

    @views.operation("getDocs")
    def docs(_call: Call) -> Response:
        return Response(_DOCS_PAGE, mimetype="text/html")

    @views.operation("getDocsWithASlash")
    def docs_with_a_slash(_call: Call) -> ResponseReturnValue:
        return redirect("/docs", code=308)  # a trailing slash is a common typo

    return views


def init_app(app: Flask) -> None:
    """Serve the reference page's assets from the installed Swagger UI distribution (no CDN)."""

    @app.get("/docs/assets/<path:filename>")
    def docs_assets(filename: str) -> Response:
        return send_from_directory(SWAGGER_DIST, filename, max_age=86400)
