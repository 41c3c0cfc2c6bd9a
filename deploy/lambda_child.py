"""The Lambda runtime's side of deploy/lambda_local.py: run under the runtime's Python as
`python -I lambda_child.py TASK PROVIDED`, with a JSON spec on stdin; prints one line
`LAMBDA-CHILD {report}`. Standard library only: nothing of the project is importable here but the
bundle itself.

Spec: {"api": "app.app", "authorizer": "chalicelib.auth.authorizer.jwt_authorizer",
       "username", "password", "site_id", "steps": "flow" | "snapshot",
       "invite": {"email", "mail", "username", "password"} (optional)}
   or {"schedule": "chalicelib.sites.schedule.retry_invitations", "steps": "schedule"}

- The path is the runtime bootstrap's: TASK, then PROVIDED (the runtime's packages), then the
  standard library (the interpreter's own site-packages are taken off).
- "snapshot" (run with AWS_LAMBDA_INITIALIZATION_TYPE=snap-start): after the init, the hooks
  registered with `snapshot_restore_py` run as the runtime runs them (before the snapshot in
  reverse order of registration, after the restore in order), then the flow.
- The flow: API Gateway proxy events through the handlers, the authorizer first for every
  protected route, its context stringified as API Gateway passes it on. Each step's status and the
  parts of its answer the caller needs are reported; the checks are the caller's. With "invite"
  (the user is the site's admin, MAIL_DELIVERY=directory:<mail>): an invitation made through the
  API, its token read from the newest message in <mail> (the invitee's mailbox, as a person reads
  it: the link's `token`), accepted as a new account, whose token then lists the site.
- "schedule": only the scheduled function's handler is imported (its own Lambda), then invoked with
  the event an EventBridge schedule sends; its answer is reported.
- Afterwards: every module imported from TASK must have had its bytecode there (a read-only
  /var/task cannot take it, so each cold start would compile it again), and nothing may have been
  imported from outside TASK, PROVIDED and the standard library.
"""

import importlib
import importlib.util
import json
import os
import sys
import sysconfig
import time

TASK, PROVIDED = sys.argv[1], sys.argv[2]
sys.path[:] = [TASK, PROVIDED] + [p for p in sys.path if p and "site-packages" not in p]

METHOD_ARN = "arn:aws:execute-api:eu-west-1:123456789012:abcdef1234/api/{method}{resource}"


def handler(name):
    module, _, attribute = name.rpartition(".")
    return getattr(importlib.import_module(module), attribute)


def proxy_event(method, path, resource, *, body=None, headers=None, params=None, query=None, authorizer=None):
    headers = {"Host": "api.example.com", "User-Agent": "lambda-child", **(headers or {})}
    if body is not None:
        body = json.dumps(body)
        headers.setdefault("Content-Type", "application/json")
    context = {
        "httpMethod": method,
        "resourcePath": resource,
        "path": "/api" + path,
        "stage": "api",
        "requestId": "lambda-child",
        "identity": {"sourceIp": "198.51.100.7"},
    }
    if authorizer is not None:
        context["authorizer"] = authorizer
    return {
        "resource": resource,
        "path": path,
        "httpMethod": method,
        "headers": headers,
        "multiValueHeaders": {k: [v] for k, v in headers.items()},
        "queryStringParameters": query,
        "multiValueQueryStringParameters": {k: [v] for k, v in query.items()} if query else None,
        "pathParameters": params,
        "stageVariables": None,
        "requestContext": context,
        "body": body,
        "isBase64Encoded": False,
    }


class Gateway:
    """API Gateway in front of the two functions: the authorizer for every request with a token."""

    def __init__(self, api, authorizer):
        self.api, self.authorizer = api, authorizer

    def __call__(self, method, path, resource, *, token=None, **kwargs):
        authorizer = None
        headers = dict(kwargs.pop("headers", None) or {})
        if token is not None:
            headers["Authorization"] = "Bearer " + token
            answer = self.authorizer(
                {
                    "type": "TOKEN",
                    "authorizationToken": "Bearer " + token,
                    "methodArn": METHOD_ARN.format(method=method, resource=resource),
                },
                None,
            )
            authorizer = {k: "" if v is None else str(v) for k, v in answer["context"].items()}
            authorizer["principalId"] = str(answer["principalId"])
        response = self.api(
            proxy_event(method, path, resource, headers=headers, authorizer=authorizer, **kwargs), None
        )
        body = json.loads(response["body"]) if response.get("body") else None
        headers = {k.lower(): v for k, v in (response.get("headers") or {}).items()}
        return response["statusCode"], body, headers


def newest_message(folder):
    """The newest .eml in `folder` (names sort in the order written), parsed."""
    from email import policy
    from email.parser import BytesParser

    names = sorted(name for name in os.listdir(folder) if name.endswith(".eml"))
    with open(os.path.join(folder, names[-1]), "rb") as f:
        return BytesParser(policy=policy.default).parse(f)


def link_in(message):
    """The first link of the message's text, and the `token` its query carries."""
    import re
    from urllib.parse import parse_qs, urlsplit

    link = re.search(r"https?://\S+", message.get_body(("plain",)).get_content()).group(0)
    return link, parse_qs(urlsplit(link).query)["token"][0]


def invitation_steps(gateway, spec, token, step):
    """Invite (as the site's admin), read the message, accept it, list as the new account."""
    invite, site = spec["invite"], str(spec["site_id"])
    status, body, headers = gateway(
        "POST",
        f"/api/sites/{site}/invitations",
        "/api/sites/{site_id}/invitations",
        token=token,
        params={"site_id": site},
        body={"email": invite["email"], "role": "viewer"},
    )
    invitation = (body.get("data") or {}).get("invitation") or {}
    step(
        "invite",
        status,
        id=invitation.get("id"),
        delivery=invitation.get("delivery"),
        location=headers.get("location"),
    )
    message = newest_message(invite["mail"])
    link, emailed = link_in(message)
    status, body, _ = gateway(
        "POST",
        "/api/auth/invitations/accept",
        "/api/auth/invitations/accept",
        body={"token": emailed, "username": invite["username"], "password": invite["password"]},
    )
    joined = (body or {}).get("data") or {}
    step(
        "accept",
        status,
        to=str(message["To"]),
        link=link.replace(emailed, "{token}"),
        username=(joined.get("user") or {}).get("username"),
        current_site=(joined.get("current_site") or {}).get("id"),
    )
    status, body, _ = gateway(
        "GET", "/api/interactions", "/api/interactions", token=joined.get("token"), query={"per_page": "5"}
    )
    step(
        "list as the invitee",
        status,
        total=(body.get("meta") or {}).get("pagination", {}).get("total_records"),
    )


def flow(gateway, spec):
    steps = []

    def step(name, status, **facts):
        steps.append({"step": name, "status": status, **facts})

    status, body, _ = gateway(
        "POST",
        "/api/auth/login",
        "/api/auth/login",
        body={"username": spec["username"], "password": spec["password"]},
    )
    step("login", status)
    token = body["data"]["token"]
    status, body, _ = gateway(
        "POST", "/api/auth/site", "/api/auth/site", token=token, body={"site_id": spec["site_id"]}
    )
    step("site", status, current_site=(body.get("data") or {}).get("current_site", {}).get("id"))
    token = body["data"]["token"]
    status, body, _ = gateway(
        "GET", "/api/interactions", "/api/interactions", token=token, query={"per_page": "5"}
    )
    step("list", status, total=(body.get("meta") or {}).get("pagination", {}).get("total_records"))
    new = {
        "title": "Quarterly review",
        "type": "Meeting",
        "lead": "Ada",
        "start_datetime": "2026-05-01T14:00:00",
        "timezone": "Europe/Paris",
    }
    key = {"Idempotency-Key": "bundle-check-1"}
    created = []
    for name in ("create", "create again"):
        status, body, headers = gateway(
            "POST", "/api/interactions", "/api/interactions", token=token, body=new, headers=key
        )
        created.append(body["data"]["interaction"] if status == 201 else None)
        step(name, status, id=created[-1] and created[-1]["id"], etag=headers.get("etag"))
    item = created[0]
    path, resource = f"/api/interactions/{item['id']}", "/api/interactions/{interaction_id}"
    etag = steps[-2]["etag"]
    status, body, headers = gateway(
        "PUT",
        path,
        resource,
        token=token,
        params={"interaction_id": str(item["id"])},
        body={"title": "Quarterly review (moved)"},
        headers={"If-Match": etag},
    )
    step(
        "update",
        status,
        version=status == 200 and body["data"]["interaction"]["version"],
        etag=headers.get("etag"),
    )
    status, body, _ = gateway(
        "PUT",
        path,
        resource,
        token=token,
        params={"interaction_id": str(item["id"])},
        body={"title": "Stale"},
        headers={"If-Match": etag},
    )
    step("update with a stale If-Match", status, code=(body.get("error") or {}).get("code") if body else None)
    if spec.get("invite"):
        invitation_steps(gateway, spec, token, step)
    status, body, _ = gateway("POST", "/api/auth/logout", "/api/auth/logout", token=token)
    step("logout", status)
    status, body, _ = gateway("GET", "/api/interactions", "/api/interactions", token=token)
    step("list after logout", status)
    return steps


def snapshot_and_restore():
    """What the managed runtime does around a snapshot, with the hooks the init registered."""
    import snapshot_restore_py

    before, after = snapshot_restore_py.get_before_snapshot(), snapshot_restore_py.get_after_restore()
    for function, args, kwargs in reversed(before):
        function(*args, **kwargs)
    for function, args, kwargs in after:
        function(*args, **kwargs)
    return {
        "before_snapshot": [f.__qualname__ for f, _, _ in before],
        "after_restore": [f.__qualname__ for f, _, _ in after],
    }


def bytecode_problems():
    compiled_from_source, foreign = [], []
    stdlib = {sysconfig.get_path("stdlib"), sysconfig.get_path("platstdlib")}
    for name, module in list(sys.modules.items()):
        path = getattr(module, "__file__", None)
        if not path or path == __file__:  # this script (also as __mp_main__)
            continue
        if path.startswith(TASK + os.sep):
            if path.endswith(".py") and not os.path.exists(importlib.util.cache_from_source(path)):
                compiled_from_source.append(name)
        elif not path.startswith(PROVIDED + os.sep) and not any(path.startswith(s + os.sep) for s in stdlib):
            foreign.append(f"{name}: {path}")
    return sorted(compiled_from_source), sorted(foreign)


def scheduled_event():
    """What an EventBridge (CloudWatch Events) schedule sends its target."""
    return {
        "version": "0",
        "id": "53dc4d37-cffa-4f76-80c9-8b7d4a4d2eaa",
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": "123456789012",
        "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "region": "eu-west-1",
        "resources": ["arn:aws:events:eu-west-1:123456789012:rule/interactions-api-dev-retry_invitations"],
        "detail": {},
    }


def main():
    spec = json.loads(sys.stdin.read())
    report = {"python": ".".join(map(str, sys.version_info[:3])), "cache_tag": sys.implementation.cache_tag}
    started = time.perf_counter()
    if spec["steps"] == "schedule":
        retry = handler(spec["schedule"])
        report["init_ms"] = round((time.perf_counter() - started) * 1000, 1)
        report["answer"] = retry(scheduled_event(), None)
    else:
        api, authorizer = handler(spec["api"]), handler(spec["authorizer"])
        report["init_ms"] = round((time.perf_counter() - started) * 1000, 1)
        if spec["steps"] == "snapshot":
            report["hooks"] = snapshot_and_restore()
        report["steps"] = flow(Gateway(api, authorizer), spec)
    import boto3  # the runtime's, as a module of ours that needs it would find it

    report["boto3"] = boto3.__file__
    report["from_source"], report["foreign"] = bytecode_problems()
    print("LAMBDA-CHILD " + json.dumps(report), flush=True)


main()
