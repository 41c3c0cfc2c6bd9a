"""The local run command's HTTP server: `chalice local`'s own server with API Gateway's part played
as deployed.

Underneath it is chalice.local as `chalice local --stage dev` builds it — the stage's config and
environment, the threaded LocalDevServer, its request handler, its Lambda event converter and
context, the app with a thread-local `current_request` — with one step replaced: before the handler
runs, devtools/edge.py decides what API Gateway would (payload limit, route and method, the token
authorizer with its result cache, CORS preflights) and its refusals are the packaged Gateway
Responses. Every response carries API Gateway's request id (`x-amzn-RequestId`), which is also the
event's `requestContext.requestId`.

    python -m devtools.server [--host 127.0.0.1] [--port 8000] [--stage dev]

serves with the environment as it is (DATABASE_URL, REDIS_URL and JWT_SECRET already set);
`python -m devtools.run` (`make run`) prepares services and data first.
"""

from __future__ import annotations

import argparse
import functools
import logging
import os
import signal
import sys
import threading
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

from chalice.local import (
    ChaliceRequestHandler,
    CustomLocalChalice,
    LocalChalice,
    LocalDevServer,
    LocalGateway,
)

from devtools.edge import Edge, GatewayAnswer, local_cache_seconds

ROOT = Path(__file__).resolve().parent.parent
# Past this a refused body is not read to its end: the connection is closed instead.
_DRAIN_LIMIT = 64 * 1024 * 1024
log = logging.getLogger("devtools.server")


class EdgeRequestHandler(ChaliceRequestHandler):
    """chalice.local's request handler, with the edge deciding before the Lambda handler runs."""

    def __init__(
        self, request: Any, client_address: Any, server: Any, app_object: Any, config: Any, edge: Edge
    ) -> None:
        self.edge = edge
        self.local_gateway = LocalGateway(app_object, config)
        BaseHTTPRequestHandler.__init__(self, request, client_address, server)  # handles the request

    def __getattr__(self, name: str) -> Any:
        # Every method reaches the edge (TRACE, CONNECT, ...): deployed they are 404s like any
        # method a resource lacks, where chalice.local's handler would answer 501.
        if name.startswith("do_"):
            return self._generic_handle
        raise AttributeError(name)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base class's name
        if os.environ.get("EDGE_ACCESS_LOG"):
            super().log_message(format, *args)

    def _generic_handle(self) -> None:
        headers = dict(self.headers)
        try:
            length = int(self.headers.get("content-length") or 0)
            if length < 0:
                raise ValueError
        except ValueError:
            self.close_connection = True
            self._send_answer(GatewayAnswer("DEFAULT_4XX", "bad Content-Length", status=400), drain=0)
            return
        gateway = self.local_gateway
        lambda_context = gateway._generate_lambda_context()
        try:
            admission = self.edge.admit(
                self.command, self.path, headers, length, lambda_context=lambda_context
            )
        except GatewayAnswer as answer:
            self._send_answer(answer, drain=length)
            return
        body = self.rfile.read(length) if length > 0 else None
        if admission.preflight_headers is not None:
            self._send_http_response(
                200, {**admission.preflight_headers, "x-amzn-RequestId": admission.request_id}, None
            )
            return
        event = gateway._generate_lambda_event(self.command, self.path, headers, body)
        context = event["requestContext"]
        context.update(admission.request_context(source_ip=context["identity"]["sourceIp"]))
        try:
            response = gateway._app_object(event, lambda_context)
        except Exception:
            # Deployed, a Lambda that fails instead of answering is API Gateway's 502 (its
            # DEFAULT_5XX response); chalice.local would drop the connection.
            log.exception("the API handler raised (API Gateway answers 502)")
            failed = GatewayAnswer("DEFAULT_5XX", "the handler raised", status=502)
            failed.request_id = admission.request_id
            self._send_answer(failed, drain=0)
            return
        out = response["headers"].copy()
        out.update(response["multiValueHeaders"])
        out["x-amzn-RequestId"] = admission.request_id
        response = self._handle_binary(response)
        self._send(response["statusCode"], out, response["body"])

    do_GET = do_PUT = do_POST = do_HEAD = do_DELETE = do_PATCH = do_OPTIONS = _generic_handle

    def _send_answer(self, answer: GatewayAnswer, *, drain: int) -> None:
        if 0 < drain <= _DRAIN_LIMIT:
            remaining = drain
            while remaining > 0:
                chunk = self.rfile.read(min(remaining, 1 << 16))
                if not chunk:
                    break
                remaining -= len(chunk)
        elif drain > _DRAIN_LIMIT:
            self.close_connection = True
        if answer.request_id == "":
            import uuid

            answer.request_id = str(uuid.uuid4())
        status, headers, body = self.edge.render(answer)
        if self.close_connection:
            headers["Connection"] = "close"
        self._send(status, headers, body)

    def _send(self, status: int, headers: dict[str, Any], body: Any) -> None:
        if self.command == "HEAD" and body is not None:
            payload = body.encode() if isinstance(body, str) else body
            self.send_response(status)
            self.send_header("Content-Length", str(len(payload)))
            self._send_headers(headers)
            return
        self._send_http_response(status, headers, body)


def create_server(
    host: str, port: int, *, stage: str = "dev", cache_seconds: int | None = None
) -> tuple[LocalDevServer, Edge, str]:
    """(server, edge, why the cache TTL is what it is), built as `chalice local --stage` builds
    its server: the stage's variables are copied over os.environ before app.py is imported."""
    from chalice.cli import validate_routes  # type: ignore[attr-defined]
    from chalice.cli.factory import CLIFactory

    os.environ["AWS_CHALICE_CLI_MODE"] = "true"
    factory = CLIFactory(project_dir=str(ROOT), environ=os.environ)
    config = factory.create_config_obj(chalice_stage_name=stage)
    app_obj = config.chalice_app
    validate_routes(app_obj.routes)
    # As chalice.local.create_local_server does: `current_request` becomes thread-local, since the
    # server runs each connection on a thread of its own.
    CustomLocalChalice.__bases__ = (LocalChalice, app_obj.__class__)
    app_obj.__class__ = CustomLocalChalice
    if cache_seconds is None:
        cache_seconds, why = local_cache_seconds(stage=stage)
    else:
        why = "given"
    from chalicelib.config import get_settings

    edge = Edge(app_obj, cache_seconds=cache_seconds, origins=get_settings().cors_allow_origins)
    handler = functools.partial(EdgeRequestHandler, edge=edge)
    return LocalDevServer(app_obj, config, host, port, handler_cls=handler), edge, why


def describe(edge: Edge, why: str) -> str:
    cache = f"{edge.cache_seconds} s per Authorization header" if edge.cache_seconds else "off"
    origins = ", ".join(edge.origins or ())
    return (
        f"CORS origins: {origins}; API Gateway's part: Gateway Responses for {edge.origin}, "
        f"authorizer cache {cache} ({why})"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default=os.environ.get("HOST", "127.0.0.1"))
    parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", "8000")))
    parser.add_argument("--stage", default="dev")
    args = parser.parse_args(argv)
    logging.basicConfig(stream=sys.stdout, level=logging.INFO, format="%(message)s")
    try:
        server, edge, why = create_server(args.host, args.port, stage=args.stage)
    except (OSError, ValueError) as exc:
        print(f"cannot serve: {exc}", file=sys.stderr)
        return 1
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    print(describe(edge, why), flush=True)
    while not stop.wait(0.5):
        pass
    server.shutdown()
    server.server.server_close()
    print("server stopped", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
