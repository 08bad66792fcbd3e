"""Proves the authorization matrix (PRODUCT.md U1, U2; API.md "Auth"): every
authenticated route answers 401 problem+json with a Bearer challenge for
every kind of bad token (none, malformed, expired, bad signature, alg none,
algorithm confusion, wrong issuer or audience, missing claims, unknown
user); another user's task is 404 on every task route; non-admins get 403
on admin routes; and after all of it nothing changed (same tasks, same
events). Tokens are forged with the server's own <data_dir>/jwt-secret."""
import hashlib
import json
import time

import pytest

from api import (API, Api, b64url, b64url_decode, claims_for, describe, events_since, forge,
                 problem, server_fixture, signup, tasks_all, unauthorized, unsigned)

api_server = server_fixture()
UNKNOWN_USER = "0190c2a0-0000-7000-8000-0000000000ff"


@pytest.fixture(scope="module")
def root(api_server):
    return signup(api_server, "root")


@pytest.fixture(scope="module")
def alice(api_server, root):
    return signup(api_server, "alice")


@pytest.fixture(scope="module")
def bob(api_server, alice):
    return signup(api_server, "bob")


@pytest.fixture(scope="module")
def target(alice):
    """alice's task that every denied request aims at, and her state before."""
    task = alice.api.create_task({"title": "target", "due": "2031-01-01T00:00:00Z"})
    return task


def routes(task_id):
    """(method, path, body) of every authenticated route."""
    task = API + "/tasks/" + task_id
    return [
        ("GET", API + "/me", None),
        ("PATCH", API + "/me", {"timezone": "Asia/Tokyo"}),
        ("GET", API + "/tasks", None),
        ("POST", API + "/tasks", {"title": "intruder"}),
        ("GET", task, None),
        ("PATCH", task, {"title": "hijacked"}),
        ("DELETE", task, None),
        ("POST", task + "/complete", None),
        ("POST", task + "/uncomplete", None),
        ("GET", task + "/events", None),
        ("GET", API + "/events", None),
        ("GET", API + "/audit", None),
        ("GET", API + "/admin/users", None),
        ("GET", API + "/admin/consumers", None),
    ]


def bad_tokens(secret, alice_token, alice_id):
    """name -> Authorization header value (None: no header)."""
    now = int(time.time())
    claims = claims_for(alice_id)
    header, payload, signature = alice_token.split(".")
    tampered_payload = b64url(json.dumps({**json.loads(b64url_decode(payload)), "role": "admin"},
                                         separators=(",", ":")))
    flipped = signature[:-1] + ("A" if signature[-1] != "A" else "B")
    return {
        "none": None,
        "empty bearer": "Bearer ",
        "basic scheme": "Basic YWxpY2U6cGFzc3dvcmQ=",
        "token without scheme": alice_token,
        "garbage": "Bearer not.a.token",
        "two segments": "Bearer " + header + "." + payload,
        "expired": "Bearer " + forge(secret, claims_for(alice_id, iat=now - 7200,
                                                        exp=now - 3600)),
        "bad signature": "Bearer " + header + "." + payload + "." + flipped,
        "other secret": "Bearer " + forge(b"x" * 32, claims),
        "tampered payload": "Bearer " + header + "." + tampered_payload + "." + signature,
        "alg none": "Bearer " + unsigned(claims),
        "alg None": "Bearer " + unsigned(claims, alg="None"),
        "alg NONE": "Bearer " + unsigned(claims, alg="NONE"),
        "alg none with signature": "Bearer " + unsigned(claims) + signature,
        "alg HS512": "Bearer " + forge(secret, claims, header={"alg": "HS512", "typ": "JWT"},
                                       digest=hashlib.sha512),
        "alg RS256 confusion": "Bearer " + forge(secret, claims,
                                                 header={"alg": "RS256", "typ": "JWT"}),
        "unknown kid": "Bearer " + forge(secret, claims,
                                         header={"alg": "HS256", "kid": "other"}),
        "crit header": "Bearer " + forge(secret, claims,
                                         header={"alg": "HS256", "crit": ["exp"]}),
        "wrong issuer": "Bearer " + forge(secret, claims_for(alice_id, iss="someone-else")),
        "wrong audience": "Bearer " + forge(secret, claims_for(alice_id, aud="other-app")),
        "no exp": "Bearer " + forge(secret, claims_for(alice_id, exp=None)),
        "no sub": "Bearer " + forge(secret, claims_for(alice_id, sub=None)),
        "empty sub": "Bearer " + forge(secret, claims_for(alice_id, sub="")),
        "not yet valid": "Bearer " + forge(secret, claims_for(alice_id, nbf=now + 3600)),
        "issued in the future": "Bearer " + forge(secret, claims_for(alice_id, iat=now + 3600,
                                                                     exp=now + 7200)),
        "string exp": "Bearer " + forge(secret, claims_for(alice_id, exp=str(now + 3600))),
        "unknown user": "Bearer " + forge(secret, claims_for(UNKNOWN_USER)),
        "unknown admin": "Bearer " + forge(secret, claims_for(UNKNOWN_USER, role="admin")),
        "oversized": "Bearer " + "a" * 9000,
        "padded base64": "Bearer " + alice_token + "=",
    }


TOKEN_KINDS = list(bad_tokens(b"s" * 32, forge(b"s" * 32, claims_for(UNKNOWN_USER)),
                              UNKNOWN_USER))


@pytest.fixture(scope="module")
def snapshot(alice, target):
    """alice's tasks and events before any denied request."""
    return tasks_all(alice.api), events_since(alice.api)


@pytest.mark.parametrize("kind", TOKEN_KINDS)
def test_every_route_denies_bad_tokens(api_server, alice, target, snapshot, kind):
    """Each bad token kind is 401 problem+json with a Bearer challenge on every
    authenticated route."""
    value = bad_tokens(api_server.secret(), alice.token, alice.id)[kind]
    api = alice.api
    for method, path, body in routes(target["id"]):
        headers = {} if value is None else {"Authorization": value}
        kwargs = {"body": body} if body is not None else {}
        response = api.request(method, path, token=None, headers=headers, **kwargs)
        try:
            unauthorized(response)
        except AssertionError as error:
            raise AssertionError("%s %s with %s token: %s" % (method, path, kind, error))


def test_foreign_task_routes_are_404(alice, bob, target, snapshot):
    """bob's valid token on alice's task is 404 on every task route."""
    for method, path, body in routes(target["id"]):
        if "/tasks/" not in path:
            continue
        kwargs = {"body": body} if body is not None else {}
        problem(bob.api.request(method, path, **kwargs), 404)


def test_foreign_data_never_appears_in_collections(alice, bob, target, snapshot):
    """bob's lists, events and audit trail never mention alice's task."""
    for path in ("/tasks?status=all", "/events", "/audit"):
        response = bob.api.get(API + path)
        assert response.status_code == 200, describe(response)
        assert target["id"] not in response.text, path
        assert alice.id not in response.text, path


def test_admin_routes_are_403_for_users(alice, bob, target):
    """Non-admins get 403 problem+json on every admin route; the admin gets 200."""
    for path in ("/admin/users", "/admin/consumers"):
        for user in (alice, bob):
            problem(user.api.get(API + path), 403)


def test_admin_routes_answer_the_admin(root):
    """The first account (admin) is let through the admin routes."""
    for path in ("/admin/users", "/admin/consumers"):
        response = root.api.get(API + path)
        assert response.status_code == 200, describe(response)


def test_admin_cannot_reach_other_users_tasks(root, target):
    """Admin rights cover admin routes and audit, not other users' tasks: 404."""
    problem(root.api.get(API + "/tasks/" + target["id"]), 404)
    problem(root.api.patch(API + "/tasks/" + target["id"], {"title": "admin edit"}), 404)


def test_unauthenticated_routes(api_server):
    """signup, login and openapi.json need no token; /healthz stays public."""
    api = Api(api_server.base_url)
    assert api.get(API + "/openapi.json").status_code == 200
    assert api.get("/healthz").status_code == 200
    problem(api.post(API + "/auth/login", {"username": "nobody", "password": "whatever1"}),
            401)


def test_nothing_changed_after_the_denied_requests(alice, target, snapshot):
    """Every denied request above left alice's tasks and events exactly as they were
    (this test runs last in the module)."""
    tasks, events = snapshot
    assert tasks_all(alice.api) == tasks
    assert events_since(alice.api) == events
    assert alice.api.get_task(target["id"]) == target
    me = alice.api.get(API + "/me").json()
    assert me["timezone"] == "UTC"
