"""Proves the Web Push subscription API end to end on the real binary:
GET /api/v1/push/vapid gives a 65-byte P-256 point (checked with the
`cryptography` package) that matches <data_dir>/vapid-private.pem (mode 0600)
and survives a restart; subscriptions made from a browser's
PushSubscription.toJSON() are created (201), re-subscribing the same endpoint
answers 200 with the same one, invalid bodies get 400/422 naming the field
(endpoint, keys.p256dh, keys.auth), a user holds at most 16, DELETE removes
only the caller's own (404 otherwise), users never see each other's, every
route needs a token, and the changes are push.subscribed /
push.unsubscribed events in GET /api/v1/events (the log is the source of
truth: the subscriptions come back after a restart)."""
import base64
import os
import stat
import uuid

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from api import (API, UUID_RE, Api, check_envelope, describe, events_since, parse_time, problem,
                 server_fixture, signup, unauthorized)

api_server = server_fixture()

SUBSCRIPTIONS = API + "/push/subscriptions"


def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def b64url_decode(text):
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def browser_subscription(endpoint=None):
    """What PushSubscription.toJSON() gives: a fresh P-256 key and auth secret."""
    key = ec.generate_private_key(ec.SECP256R1())
    point = key.public_key().public_bytes(serialization.Encoding.X962,
                                          serialization.PublicFormat.UncompressedPoint)
    return {
        "endpoint": endpoint or "https://push.example.net/wpush/v2/" + uuid.uuid4().hex,
        "expirationTime": None,
        "keys": {"p256dh": b64url(point), "auth": b64url(os.urandom(16))},
    }


@pytest.fixture(scope="module")
def alice(api_server):
    return signup(api_server, "alice")


@pytest.fixture(scope="module")
def bob(api_server, alice):
    return signup(api_server, "bob")


def subscribe(user, body):
    return user.api.post(SUBSCRIPTIONS, body)


def listed(user):
    response = user.api.get(SUBSCRIPTIONS)
    assert response.status_code == 200, describe(response)
    page = response.json()
    assert set(page) == {"items", "next_cursor"} and page["next_cursor"] is None, page
    return page["items"]


def check_subscription(document, endpoint):
    assert set(document) == {"id", "endpoint", "created_at"}, document
    assert UUID_RE.match(document["id"]), document
    assert document["id"][14] == "7", document  # UUID version 7
    assert document["endpoint"] == endpoint, document
    parse_time(document["created_at"])


def clear(user):
    for item in listed(user):
        response = user.api.delete(SUBSCRIPTIONS + "/" + item["id"])
        assert response.status_code == 204, describe(response)


def test_vapid_key_is_a_p256_point_matching_the_key_file(api_server, alice):
    """The applicationServerKey decodes to a 65-byte uncompressed point on
    P-256, equals the public half of vapid-private.pem (mode 0600), and is
    the same after a restart."""
    response = alice.api.get(API + "/push/vapid")
    assert response.status_code == 200, describe(response)
    document = response.json()
    assert set(document) == {"public_key"}, document
    raw = b64url_decode(document["public_key"])
    assert len(raw) == 65 and raw[0] == 4, raw
    assert b64url(raw) == document["public_key"]  # unpadded, canonical
    point = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), raw)
    path = api_server.data_dir / "vapid-private.pem"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    private = serialization.load_pem_private_key(path.read_bytes(), password=None)
    assert isinstance(private.curve, ec.SECP256R1)
    assert private.public_key().public_numbers() == point.public_numbers()
    api_server.restart()
    again = alice.api.get(API + "/push/vapid")
    assert again.status_code == 200 and again.json() == document, describe(again)


def test_every_route_needs_a_token(api_server, alice):
    """No token or a bad one: 401 with a Bearer challenge on all four routes."""
    anonymous = Api(api_server.base_url)
    forged = Api(api_server.base_url, "not.a.token")
    for client in (anonymous, forged):
        unauthorized(client.get(API + "/push/vapid"))
        unauthorized(client.get(SUBSCRIPTIONS))
        unauthorized(client.post(SUBSCRIPTIONS, browser_subscription()))
        unauthorized(client.delete(SUBSCRIPTIONS + "/" + str(uuid.uuid4())))


def test_subscribe_list_resubscribe_and_delete(alice):
    """201 with id/endpoint/created_at and a Location; the same endpoint again
    is 200 with the same subscription (no second one); the list shows it;
    DELETE is 204, then 404."""
    clear(alice)
    body = browser_subscription()
    created = subscribe(alice, body)
    assert created.status_code == 201, describe(created)
    document = created.json()
    check_subscription(document, body["endpoint"])
    assert created.headers["Location"] == SUBSCRIPTIONS + "/" + document["id"]
    again = subscribe(alice, body)
    assert again.status_code == 200, describe(again)
    assert again.json() == document
    without_expiration = {key: value for key, value in body.items() if key != "expirationTime"}
    assert subscribe(alice, without_expiration).json() == document
    assert listed(alice) == [document]
    deleted = alice.api.delete(SUBSCRIPTIONS + "/" + document["id"])
    assert deleted.status_code == 204 and deleted.content == b"", describe(deleted)
    problem(alice.api.delete(SUBSCRIPTIONS + "/" + document["id"]), 404)
    assert listed(alice) == []
    problem(alice.api.delete(SUBSCRIPTIONS + "/not-a-uuid"), 404)


def test_invalid_bodies_name_the_field(api_server, alice):
    """Each invalid subscription is refused with the field path; nothing is stored."""
    clear(alice)
    good = browser_subscription()
    off_curve = b64url(b"\x04" + b"\x01" * 64)
    cases = [
        ({"keys": good["keys"]}, "endpoint"),
        ({**good, "endpoint": 42}, "endpoint"),
        ({**good, "endpoint": "http://push.example.net/x"}, "endpoint"),
        ({**good, "endpoint": "https://user@push.example.net/x"}, "endpoint"),
        ({**good, "endpoint": "not a url"}, "endpoint"),
        ({"endpoint": good["endpoint"]}, "keys"),
        ({**good, "keys": "p256dh"}, "keys"),
        ({**good, "keys": {"auth": good["keys"]["auth"]}}, "keys.p256dh"),
        ({**good, "keys": {**good["keys"], "p256dh": off_curve}}, "keys.p256dh"),
        ({**good, "keys": {**good["keys"], "p256dh": good["keys"]["p256dh"][:-4]}},
         "keys.p256dh"),
        ({**good, "keys": {**good["keys"], "p256dh": "!!" + good["keys"]["p256dh"][2:]}},
         "keys.p256dh"),
        ({**good, "keys": {**good["keys"], "auth": b64url(os.urandom(15))}}, "keys.auth"),
        ({**good, "keys": {**good["keys"], "auth": 7}}, "keys.auth"),
        ({**good, "keys": {"p256dh": good["keys"]["p256dh"]}}, "keys.auth"),
        ({**good, "expirationTime": "tomorrow"}, "expirationTime"),
        ({**good, "extra": 1}, "extra"),
    ]
    for body, field in cases:
        document = problem(subscribe(alice, body), 422, field=field)
        assert all(error["message"] for error in document["errors"])
    both = {**good, "keys": {"p256dh": off_curve, "auth": "AA"}}
    fields = [error["field"] for error in problem(subscribe(alice, both), 422)["errors"]]
    assert fields == ["keys.p256dh", "keys.auth"], fields
    problem(alice.api.post(SUBSCRIPTIONS, raw=b"{not json",
                           headers={"Content-Type": "application/json"}), 400)
    problem(alice.api.post(SUBSCRIPTIONS, raw=b"[]",
                           headers={"Content-Type": "application/json"}), 400)
    problem(alice.api.post(SUBSCRIPTIONS, raw=b"{}", headers={"Content-Type": "text/plain"}),
            400)
    problem(alice.api.get(SUBSCRIPTIONS, params={"cursor": "x"}), 400)
    assert listed(alice) == []


def test_at_most_16_subscriptions_per_user(alice):
    """The 17th subscription is a 422 naming endpoint; after a delete one fits again."""
    clear(alice)
    made = []
    for _ in range(16):
        response = subscribe(alice, browser_subscription())
        assert response.status_code == 201, describe(response)
        made.append(response.json())
    problem(subscribe(alice, browser_subscription()), 422, field="endpoint")
    # Re-subscribing an existing endpoint is still fine at the limit.
    assert len(listed(alice)) == 16
    assert alice.api.delete(SUBSCRIPTIONS + "/" + made[0]["id"]).status_code == 204
    response = subscribe(alice, browser_subscription())
    assert response.status_code == 201, describe(response)
    assert len(listed(alice)) == 16
    clear(alice)


def test_users_are_isolated(alice, bob):
    """Bob cannot see or delete Alice's subscription; the same endpoint
    subscribed by Bob is his own, with another id."""
    clear(alice)
    clear(bob)
    body = browser_subscription()
    mine = subscribe(alice, body).json()
    assert listed(bob) == []
    problem(bob.api.delete(SUBSCRIPTIONS + "/" + mine["id"]), 404)
    assert listed(alice) == [mine]
    theirs = subscribe(bob, body)
    assert theirs.status_code == 201, describe(theirs)
    assert theirs.json()["id"] != mine["id"]
    assert listed(alice) == [mine] and listed(bob) == [theirs.json()]
    clear(alice)
    clear(bob)


def test_changes_are_events_and_survive_a_restart(api_server, alice):
    """push.subscribed carries id, endpoint, keys and created_at with the id as
    subject; push.unsubscribed carries the id; after a restart the remaining
    subscription is listed as before."""
    clear(alice)
    before = events_since(alice.api)
    since = before[-1]["sequence"] if before else 0
    kept_body = browser_subscription()
    kept = subscribe(alice, kept_body).json()
    gone = subscribe(alice, browser_subscription()).json()
    assert alice.api.delete(SUBSCRIPTIONS + "/" + gone["id"]).status_code == 204
    events = events_since(alice.api, since)
    assert [event["type"] for event in events] == ["push.subscribed", "push.subscribed",
                                                   "push.unsubscribed"], events
    for event in events:
        check_envelope(event, alice.id)
    first = events[0]
    assert first["subject"] == kept["id"], first
    assert first["data"] == {"id": kept["id"], "endpoint": kept_body["endpoint"],
                             "keys": kept_body["keys"], "created_at": kept["created_at"]}
    assert events[2]["subject"] == gone["id"] and events[2]["data"] == {"id": gone["id"]}
    api_server.restart()
    assert listed(alice) == [kept]
    clear(alice)
