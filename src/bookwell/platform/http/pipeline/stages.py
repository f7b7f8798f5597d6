"""The request pipeline: the stages every request meets, in order, and the app that runs them.

A request goes down the list and its answer comes back up through it: each stage does its one job
before and after `proceed` (the rest of the list, then the view). To add a stage, write a module
here with one function or class of the `Stage` shape and put it in its place in `request_stages`;
no other stage changes.
"""

from __future__ import annotations

from collections.abc import Sequence

from flask import Flask
from flask import Response
from flask import request
from flask.typing import ResponseReturnValue

from bookwell.platform.http.contract.binding import bound_operation
from bookwell.platform.http.pipeline.access_log import log_and_measure
from bookwell.platform.http.pipeline.authentication import Authentication
from bookwell.platform.http.pipeline.authentication import Authenticator
from bookwell.platform.http.pipeline.authorization import authorize
from bookwell.platform.http.pipeline.body_limit import BodyLimit
from bookwell.platform.http.pipeline.errors import render_errors
from bookwell.platform.http.pipeline.exchange import Exchange
from bookwell.platform.http.pipeline.exchange import Proceed
from bookwell.platform.http.pipeline.exchange import Stage
from bookwell.platform.http.pipeline.guess_limit import GuessLimit
from bookwell.platform.http.pipeline.idempotency import Idempotency
from bookwell.platform.http.pipeline.prefer import apply_wait
from bookwell.platform.http.pipeline.rate_limit import RateLimit
from bookwell.platform.http.pipeline.request_context import request_context
from bookwell.platform.http.pipeline.validation import validate
from bookwell.platform.http.pipeline.view import run_view
from bookwell.platform.ratelimit import Policy
from bookwell.platform.ratelimit import PolicyResolver
from bookwell.platform.ratelimit import RateLimiter

_PIPELINE = "bookwell.pipeline"


def request_stages(
    *,
    authenticator: Authenticator,
    limiter: RateLimiter,
    policies: PolicyResolver,
    auth_failures: Policy,
    proxy_hops: int,
    idempotency: Idempotency,
    max_body_bytes: int,
) -> list[Stage]:
    """The stages in the order a request meets them; the view (and presentation) comes after the last."""
    return [
        request_context,  # the request id and trace context, current for all below; X-Request-ID on the answer
        log_and_measure,  # log and metrics: one access-log line and the RED metrics, for every answer
        render_errors,  # whatever a stage below raises becomes problem+json
        BodyLimit(max_body_bytes),  # 413 for a body over the limit, chunked or not
        GuessLimit(
            limiter, auth_failures, proxy_hops=proxy_hops
        ),  # 429 for an address whose failed authentications spent their policy
        Authentication(authenticator),  # the caller (401), current for all below
        RateLimit(limiter, policies),  # per credential and per organization: 429, and the RateLimit headers
        authorize,  # the operation's scopes (403)
        apply_wait,  # `Prefer: wait`, served once the request's transaction below committed
        idempotency,  # `Idempotency-Key`: claim, run the rest in one transaction, store, replay (ADR 0023)
        validate,  # binding and validation: headers, body, query and path into the view's `Call`
    ]


class PipelineApp(Flask):
    """Flask, with every request (matched or not) dispatched through the installed stages."""

    def dispatch_request(self) -> ResponseReturnValue:
        pipeline: Proceed = self.extensions[_PIPELINE]
        rule = request.url_rule
        operation, view = bound_operation(rule.endpoint if rule else None) or (None, None)
        return pipeline(Exchange(operation, view, dict(request.view_args or {})))


def install(app: PipelineApp, stages: Sequence[Stage]) -> None:
    """Run `stages`, then the view, for every request `app` serves."""
    proceed: Proceed = run_view
    for stage in reversed(stages):
        proceed = _then(stage, proceed)
    app.extensions[_PIPELINE] = proceed


def _then(stage: Stage, rest: Proceed) -> Proceed:
    """`stage`, with `rest` as what it proceeds to."""

    def step(exchange: Exchange) -> Response:
        return stage(exchange, rest)

    return step
