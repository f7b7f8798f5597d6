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
from bookwell.platform.observability.exporter import exposition

ReadinessCheck = Callable[[], bool]
SWAGGER_DIST = os.path.join(os.path.dirname(flask_swagger_ui.__file__), "dist")

# The contract's examples are fixed (the day 2027-06-07, ids such as res_01KBA..., one
# Idempotency-Key); so that "Try it out" works on them as written, the page moves those days to a
# week from today and, in what it sends, replaces an example id with the last id of the same kind
# that an answer here created, and the example Idempotency-Key with a new one per request.
_DOCS_PAGE = """<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <title>Bookwell API v1</title>
  <link rel="stylesheet" href="/docs/assets/swagger-ui.css">
  <style>#note { font-family: sans-serif; margin: 1em 2em 0; color: #3b4151; }</style>
</head>
<body>
  <p id="note">Try it out: <b>Authorize</b> with an API key (<code>bookwell org create</code> prints one).
  The examples' dates are moved to a week from today, and an example id is replaced by the id of the same
  kind you last created on this page, and the example Idempotency-Key by a new one: create a resource, ask
  its availability, then book it.</p>
  <div id="reference"></div>
  <script src="/docs/assets/swagger-ui-bundle.js"></script>
  <script>
    const ID = /\\b(org|key|res|bkg|pay|rfd|evt)_[0-9A-Z]{26}\\b/g;
    const day = (ahead) => new Date(Date.now() + ahead * 86400000).toISOString().slice(0, 10);
    const created = {};
    const EXAMPLE_KEY = "7c9e6679-7425-40de-944b-e07fc1f90ae7";
    const newKey = () => (crypto.randomUUID ? crypto.randomUUID() : `${Date.now()}-${Math.random()}`);
    fetch("/openapi/v1.json").then((answer) => answer.text()).then((text) => {
      const examples = new Set(text.match(ID));
      const mine = (sent) => sent.replace(ID, (id, kind) => (examples.has(id) && created[kind]) || id);
      SwaggerUIBundle({
        spec: JSON.parse(text.replaceAll("2027-06-07", day(7)).replaceAll("2027-06-08", day(8))),
        dom_id: "#reference",
        deepLinking: true,
        requestInterceptor: (request) => {
          if (request.headers["Idempotency-Key"] === EXAMPLE_KEY) {
            request.headers["Idempotency-Key"] = newKey();
          }
          request.url = mine(request.url);
          if (typeof request.body === "string") request.body = mine(request.body);
          return request;
        },
        responseInterceptor: (response) => {
          const id = response.status === 201 && response.obj && response.obj.id;
          if (typeof id === "string") created[id.split("_")[0]] = id;
          return response;
        },
      });
    });
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
