"""Proves accounts and tokens (PRODUCT.md U1, API.md "Auth and users"): signup
(first account admin, validation, uniqueness), login (indistinguishable
failures, throttling), the JWT's claims and secret file, token lifetime and
leeway settings, /me reads and changes, the admin user list and consumer
list, and the unauthenticated OpenAPI document. One server per module: every
signup and login costs a PBKDF2 hash."""
import os
import stat
import time

import pytest

from api import (API, PASSWORD, USER_FIELDS, UUID_RE, Api, ApiServer, claims_for, describe,
                 forge, login, parse_time, problem, run_threads, server_fixture, signup,
                 token_claims, token_header, unauthorized)
from conftest import run_cli

TTL_S = 3600
api_server = server_fixture("--auth-token-ttl-s", TTL_S)


@pytest.fixture(scope="module")
def root(api_server):
    return signup(api_server, "root")


@pytest.fixture(scope="module")
def alice(api_server, root):
    return signup(api_server, "alice", timezone_name="Europe/Berlin")


def anonymous(api_server):
    return Api(api_server.base_url)


def assert_no_secret_text(text, password=PASSWORD):
    assert "pbkdf2" not in text.lower(), text
    assert password not in text, text


def test_first_signup_is_admin_and_later_ones_are_users(api_server, root, alice):
    """The first account on a fresh data directory is an admin, later ones are users,
    and signup answers the documented user object and a token."""
    assert root.role == "admin"
    assert alice.role == "user"
    for user in (root, alice):
        assert set(user.user) == USER_FIELDS, user.user
        assert UUID_RE.match(user.id)
        assert isinstance(user.user["settings"], dict)
        parse_time(user.user["created_at"])
    assert root.user["timezone"] == "UTC"
    assert alice.user["timezone"] == "Europe/Berlin"
    assert root.id != alice.id


def test_signup_rejects_bad_usernames_with_422(api_server, root):
    """Usernames outside [A-Za-z0-9._-]{3,64} are 422 naming field "username"."""
    for name in ("ab", "x" * 65, "has space", "slash/name", "émile", "", "tab\tname",
                 "semi;colon", "at@sign"):
        response = anonymous(api_server).post(API + "/auth/signup",
                                              {"username": name, "password": PASSWORD})
        problem(response, 422, field="username")
    for body in ({"password": PASSWORD}, {"username": None, "password": PASSWORD},
                 {"username": 12345, "password": PASSWORD}):
        problem(anonymous(api_server).post(API + "/auth/signup", body), 422, field="username")


def test_signup_accepts_every_allowed_character_at_the_maximum_length(api_server, root):
    """A 64-character username of every allowed character class is accepted verbatim."""
    name = ("Az09._-" * 10)[:64]
    user = signup(api_server, name)
    assert user.username == name and user.role == "user"


def test_concurrent_signups_on_a_fresh_directory(tmp_path):
    """Concurrent signups on a fresh data directory make exactly one admin, and two
    concurrent signups of one name make one account (the other 409)."""
    server = ApiServer(tmp_path).start()
    try:
        def attempt(name):
            return Api(server.base_url).post(API + "/auth/signup",
                                             {"username": name, "password": PASSWORD})

        results = run_threads(attempt, [("first%d" % i,) for i in range(3)] + [("twin",)] * 2)
        assert all(r.status_code in (201, 409) for r in results), [describe(r) for r in results]
        created = [r.json()["user"] for r in results if r.status_code == 201]
        assert [r.status_code for r in results[:3]] == [201] * 3
        assert sorted(r.status_code for r in results[3:]) == [201, 409]
        problem(next(r for r in results[3:] if r.status_code == 409), 409, field="username")
        assert [u["role"] for u in created].count("admin") == 1, created
    finally:
        server.close()


def test_signup_rejects_taken_username_with_409(api_server, alice):
    """A taken username is 409 with an error naming "username", and changes nothing."""
    response = anonymous(api_server).post(API + "/auth/signup",
                                          {"username": "alice", "password": "another password"})
    problem(response, 409, field="username")
    assert login(api_server, "alice", PASSWORD).status_code == 200


def test_signup_rejects_short_or_missing_password_with_422(api_server, root):
    """Passwords under 8 characters (or missing, or not strings) are 422 naming "password"."""
    for body in ({"username": "shorty", "password": "1234567"},
                 {"username": "shorty"},
                 {"username": "shorty", "password": 12345678},
                 {"username": "shorty", "password": None}):
        problem(anonymous(api_server).post(API + "/auth/signup", body), 422, field="password")
    assert login(api_server, "shorty", "1234567").status_code == 401


def test_signup_rejects_bad_timezone_with_422(api_server, root):
    """A timezone that is not an IANA name is 422 naming "timezone"."""
    for zone in ("Mars/Olympus", "", "UTC+25", 5):
        response = anonymous(api_server).post(
            API + "/auth/signup", {"username": "zoned", "password": PASSWORD, "timezone": zone})
        problem(response, 422, field="timezone")


def test_malformed_bodies_are_400(api_server, root):
    """Malformed JSON, a non-object body or a wrong Content-Type is 400 on signup and login."""
    client = anonymous(api_server)
    for path in ("/auth/signup", "/auth/login"):
        problem(client.post(API + path, raw=b'{"username": "x",'), 400)
        problem(client.post(API + path, raw=b"[1, 2]"), 400)
        problem(client.post(API + path, raw=b""), 400)
        problem(client.post(API + path, raw=b'{"username":"alice","password":"x"}',
                            content_type="text/plain"), 400)
        problem(client.post(API + path, raw=b'{"username":"alice","password":"x"}',
                            content_type=None), 400)


def test_login_returns_the_user_and_a_working_token(api_server, alice):
    """Login answers 200 with the same user object as signup and a token that works."""
    response = login(api_server, "alice", PASSWORD)
    assert response.status_code == 200, describe(response)
    document = response.json()
    assert set(document) == {"user", "token"}
    assert document["user"] == alice.user
    me = Api(api_server.base_url, document["token"]).get(API + "/me")
    assert me.status_code == 200 and me.json()["id"] == alice.id
    assert_no_secret_text(response.text)


def test_login_failures_are_indistinguishable(api_server, alice):
    """A wrong password and an unknown username get the same 401 status and body."""
    wrong = login(api_server, "alice", "not the password")
    unknown = login(api_server, "nobody-here", "not the password")
    problem(wrong, 401)
    problem(unknown, 401)
    assert wrong.json() == unknown.json()
    assert wrong.headers.get("Content-Type") == unknown.headers.get("Content-Type")


def test_login_is_throttled_after_five_failures(api_server, root, alice):
    """After 5 failed logins for one username, even the right password is 429 with
    Retry-After; other usernames are not affected."""
    victim = signup(api_server, "victim")
    for _ in range(5):
        problem(login(api_server, victim.username, "wrong password!"), 401)
    response = login(api_server, victim.username, victim.password)
    problem(response, 429)
    retry_after = response.headers.get("Retry-After")
    assert retry_after is not None and retry_after.isdigit(), describe(response)
    assert 0 < int(retry_after) <= 15 * 60
    # The token from signup still works, and another account can log in.
    assert victim.api.get(API + "/me").status_code == 200
    assert login(api_server, "alice", PASSWORD).status_code == 200


def test_unknown_usernames_fail_and_throttle_like_real_ones(tmp_path):
    """Logins naming no account cost a hash like wrong passwords (no timing oracle)
    and are throttled after 5 failures the same way (no throttling oracle)."""
    server = ApiServer(tmp_path).start()
    try:
        signup(server, "real")

        def fail(name):
            response = login(server, name, "not the password")
            return response.status_code, response.elapsed.total_seconds()

        results = run_threads(fail, [("real",), ("ghost",)] * 5, start_together=False)
        assert all(status == 401 for status, _ in results), results
        real = sorted(seconds for i, (_, seconds) in enumerate(results) if i % 2 == 0)[2]
        ghost = sorted(seconds for i, (_, seconds) in enumerate(results) if i % 2 == 1)[2]
        assert ghost >= 0.3 * real, "unknown user answered in %.3fs, wrong password %.3fs" \
            % (ghost, real)
        for name in ("real", "ghost"):
            response = login(server, name, "not the password")
            problem(response, 429)
            assert response.headers.get("Retry-After", "").isdigit(), describe(response)
        assert login(server, "real", PASSWORD).status_code == 429
    finally:
        server.close()


def test_token_claims(api_server, alice, root):
    """Tokens are HS256 JWTs with sub = user id, role, iss/aud "docket", and
    exp = iat + --auth-token-ttl-s."""
    for user in (alice, root):
        assert token_header(user.token)["alg"] == "HS256"
        claims = token_claims(user.token)
        assert claims["sub"] == user.id
        assert claims["role"] == user.role
        assert claims["iss"] == "docket"
        assert claims["aud"] == "docket" or claims["aud"] == ["docket"]
        assert claims["exp"] - claims["iat"] == TTL_S
        assert abs(claims["iat"] - time.time()) < 300


def test_jwt_secret_file_is_private_and_signs_tokens(api_server, alice):
    """<data_dir>/jwt-secret is mode 0600, at least 32 bytes, and is the HMAC key of
    the tokens (a token forged with it is accepted)."""
    path = api_server.data_dir / "jwt-secret"
    mode = stat.S_IMODE(os.stat(path).st_mode)
    assert mode == 0o600, oct(mode)
    secret = api_server.secret()
    assert 32 <= len(secret) <= 128
    token = forge(secret, claims_for(alice.id))
    response = Api(api_server.base_url, token).get(API + "/me")
    assert response.status_code == 200, describe(response)
    assert response.json()["id"] == alice.id


def test_default_leeway_accepts_a_token_expired_seconds_ago(api_server, alice):
    """With the default leeway (60 s), a token that expired 5 s ago is accepted and
    one that expired 10 minutes ago is 401."""
    secret = api_server.secret()
    now = int(time.time())
    recent = forge(secret, claims_for(alice.id, iat=now - 100, exp=now - 5))
    assert Api(api_server.base_url, recent).get(API + "/me").status_code == 200
    stale = forge(secret, claims_for(alice.id, iat=now - 1000, exp=now - 600))
    unauthorized(Api(api_server.base_url, stale).get(API + "/me"))


def test_token_ttl_and_zero_leeway(tmp_path):
    """--auth-token-ttl-s 3 --auth-leeway-s 0: a fresh token works, then expires;
    a token expired 5 s ago is refused."""
    server = ApiServer(tmp_path, ["--auth-token-ttl-s", "3", "--auth-leeway-s", "0"]).start()
    try:
        user = signup(server, "ephemeral")
        claims = token_claims(user.token)
        assert claims["exp"] - claims["iat"] == 3
        if time.time() < claims["exp"] - 0.5:  # a slow (sanitizer) signup may eat it all
            assert user.api.get(API + "/me").status_code == 200
        time.sleep(max(0.0, claims["exp"] + 1.2 - time.time()))
        unauthorized(user.api.get(API + "/me"))
        now = int(time.time())
        expired = forge(server.secret(), claims_for(user.id, iat=now - 60, exp=now - 5))
        unauthorized(Api(server.base_url, expired).get(API + "/me"))
        # Logging in again gives a new working token.
        response = login(server, "ephemeral", PASSWORD)
        assert response.status_code == 200, describe(response)
        assert token_claims(response.json()["token"])["exp"] > now
    finally:
        server.close()


def test_auth_settings_are_validated_and_shown_by_config():
    """`docket config` shows the auth and audit settings; out-of-range values exit 2."""
    result = run_cli(["config", "--auth-token-ttl-s", "120", "--auth-leeway-s", "7",
                      "--audit-retention-days", "30"])
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert any("ttl" in line and line.endswith(" 120") for line in lines), result.stdout
    assert any("leeway" in line and line.endswith(" 7") for line in lines), result.stdout
    assert any("audit" in line and "retention" in line and line.endswith(" 30")
               for line in lines), result.stdout
    for flags in (["--auth-leeway-s", "301"], ["--auth-leeway-s", "-1"],
                  ["--auth-token-ttl-s", "0"], ["--auth-token-ttl-s", "x"],
                  ["--audit-retention-days", "-1"]):
        result = run_cli(["config", *flags])
        assert result.returncode == 2, (flags, result.stdout, result.stderr)
        area, _, rest = flags[0][2:].partition("-")
        setting = area + "." + rest.replace("-", "_")
        assert flags[0] in result.stderr or setting in result.stderr, (flags, result.stderr)


def test_me_returns_the_caller(api_server, alice, root):
    """GET /me returns the caller's user object, and never a password hash."""
    for user in (alice, root):
        response = user.api.get(API + "/me")
        assert response.status_code == 200, describe(response)
        me = response.json()
        # GET /me alone adds the effective notification channels (test_notifications.py)
        assert set(me.pop("notifications")) == {"websocket", "email", "webpush", "webhook"}
        assert me == user.user
        assert_no_secret_text(response.text)


def test_me_patch_timezone_and_settings(api_server, root):
    """PATCH /me changes the timezone and the settings object; invalid values are 422
    naming the field and change nothing."""
    user = signup(api_server, "settler")
    api = user.api
    response = api.patch(API + "/me", {"timezone": "America/New_York"})
    assert response.status_code == 200, describe(response)
    assert response.json()["timezone"] == "America/New_York"
    settings = {"email": False, "quiet_hours": {"from": "22:00", "to": "07:00"}}
    response = api.patch(API + "/me", {"settings": settings})
    assert response.status_code == 200, describe(response)
    assert response.json()["settings"] == settings
    before = api.get(API + "/me").json()
    assert before["timezone"] == "America/New_York" and before["settings"] == settings
    problem(api.patch(API + "/me", {"timezone": "Nowhere/Land"}), 422, field="timezone")
    problem(api.patch(API + "/me", {"settings": [1, 2]}), 422, field="settings")
    problem(api.patch(API + "/me", {"settings": "loud"}), 422, field="settings")
    problem(api.patch(API + "/me", {"colour": "blue"}), 422, field="colour")
    for member in ("id", "username", "role", "created_at"):
        problem(api.patch(API + "/me", {member: "x"}), 422, field=member)
    problem(api.patch(API + "/me", raw=b"{bad json"), 400)
    problem(api.patch(API + "/me", raw=b'{"timezone":"UTC"}', content_type="text/plain"), 400)
    assert api.get(API + "/me").json() == before
    # A task created now defaults to the new timezone.
    task = api.create_task({"title": "zoned task"})
    assert task["timezone"] == "America/New_York"


def test_me_password_change(api_server, root):
    """PATCH /me {"password","current_password"} needs the right current password
    (else 422 "current_password"), then only the new password logs in."""
    user = signup(api_server, "changer")
    api = user.api
    new_password = "a brand new secret"
    problem(api.patch(API + "/me", {"password": new_password,
                                    "current_password": "wrong wrong"}),
            422, field="current_password")
    problem(api.patch(API + "/me", {"password": new_password}), 422, field="current_password")
    problem(api.patch(API + "/me", {"password": "short", "current_password": user.password}),
            422, field="password")
    response = api.patch(API + "/me", {"password": new_password,
                                       "current_password": user.password})
    assert response.status_code == 200, describe(response)
    assert_no_secret_text(response.text, new_password)
    assert login(api_server, "changer", new_password).status_code == 200
    problem(login(api_server, "changer", user.password), 401)


def test_openapi_document_is_served_without_auth(api_server):
    """GET /api/v1/openapi.json needs no token and is an OpenAPI 3.1 JSON document."""
    response = anonymous(api_server).get(API + "/openapi.json")
    assert response.status_code == 200, describe(response)
    assert response.headers["Content-Type"].split(";")[0] == "application/json"
    document = response.json()
    assert document["openapi"].startswith("3.1."), document.get("openapi")
    assert "paths" in document


def test_admin_user_list(api_server, root, alice):
    """GET /admin/users lists every account (no password hashes) for an admin, and is
    403 problem+json for a user."""
    response = root.api.get(API + "/admin/users")
    assert response.status_code == 200, describe(response)
    items = response.json()["items"]
    by_name = {item["username"]: item for item in items}
    assert by_name["root"]["role"] == "admin" and by_name["root"]["id"] == root.id
    assert by_name["alice"]["role"] == "user" and by_name["alice"]["id"] == alice.id
    assert_no_secret_text(response.text)
    problem(alice.api.get(API + "/admin/users"), 403)


def test_admin_consumers(api_server, root, alice):
    """GET /admin/consumers answers name, offset and lag for an admin; 403 for a user."""
    response = root.api.get(API + "/admin/consumers")
    assert response.status_code == 200, describe(response)
    items = response.json()["items"]
    assert isinstance(items, list)
    for item in items:
        assert isinstance(item["name"], str) and item["name"]
        assert isinstance(item["offset"], int) and item["offset"] >= 0
        assert isinstance(item["lag"], int) and item["lag"] >= 0
    problem(alice.api.get(API + "/admin/consumers"), 403)
