"""Tokens from an external issuer (PRODUCT.md U1: "external issuers' keys
configurable"): with auth.external_issuer and its secret file set, a token
that issuer signed for an existing username is accepted; every other
external token is refused, and the external key never signs Docket's own
claims (issuer and audience are checked per key)."""
import os
import time

import pytest

from api import API, Api, ApiServer, claims_for, forge, signup, unauthorized

EXTERNAL_SECRET = os.urandom(48)
ISSUER = "https://login.example.test"
AUDIENCE = "docket-api"


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    root = tmp_path_factory.mktemp("external")
    secret_file = root / "external-secret"
    secret_file.write_bytes(EXTERNAL_SECRET)
    server = ApiServer(root, ["--auth-external-issuer", ISSUER,
                              "--auth-external-audience", AUDIENCE,
                              "--auth-external-secret-file", str(secret_file)]).start()
    yield server
    server.close()


@pytest.fixture(scope="module")
def bob(server):
    return signup(server, "bob")


def external_claims(subject, **overrides):
    now = int(time.time())
    claims = {"sub": subject, "iss": ISSUER, "aud": AUDIENCE, "iat": now, "exp": now + 600}
    claims.update(overrides)
    return claims


def test_external_token_for_existing_user_is_accepted(server, bob):
    """A token the external issuer signed, naming an existing username, acts as that user."""
    token = forge(EXTERNAL_SECRET, external_claims("bob"))
    response = Api(server.base_url, token).get(API + "/me")
    assert response.status_code == 200, response.text
    assert response.json()["id"] == bob.id


def test_external_tokens_that_must_fail(server, bob):
    """Unknown subject, wrong issuer, wrong audience, expired, or signed with another
    key: every one is a 401, and Docket's own claims under the external key too."""
    now = int(time.time())
    cases = [
        forge(EXTERNAL_SECRET, external_claims("nobody-here")),
        forge(EXTERNAL_SECRET, external_claims("bob", iss="https://evil.test")),
        forge(EXTERNAL_SECRET, external_claims("bob", aud="someone-else")),
        forge(EXTERNAL_SECRET, external_claims("bob", exp=now - 3600, iat=now - 7200)),
        forge(os.urandom(48), external_claims("bob")),
        forge(EXTERNAL_SECRET, claims_for(bob.id)),  # Docket's iss/aud, external key
        forge(server.secret(), external_claims("bob")),  # external claims, Docket's key
    ]
    for token in cases:
        unauthorized(Api(server.base_url, token).get(API + "/me"))


def test_docket_tokens_still_work(server, bob):
    """Configuring an external issuer leaves Docket's own tokens working."""
    response = Api(server.base_url, bob.token).get(API + "/me")
    assert response.status_code == 200
