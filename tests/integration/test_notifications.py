"""Black-box tests of reminder notifications (PRODUCT.md N3, E4, E5): the
channel settings API; a reminder delivered once over every channel (e-mail
through an SMTP relay with STARTTLS and AUTH, Web Push with VAPID and
aes128gcm, a signed HTTPS webhook, in-app over WebSocket), all receivers
real servers on loopback started here; retries then the dead-letter queue
and a redrive; and no delivery twice across kill -9."""
import datetime
import time

import pytest

import wsraw
from api import API, ApiServer, signup
from conftest import scaled
from notify_servers import (SMTP_PASSWORD, SMTP_USER, PushService, SmtpRelay, WebhookReceiver,
                            make_certificates)


def rfc3339(seconds_from_now):
    moment = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(
        seconds=seconds_from_now)
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def wait_until(predicate, timeout, what):
    deadline = time.monotonic() + scaled(timeout)
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError("timed out waiting for " + what)


def events_of(user, types):
    response = user.api.get(API + "/events?since=0&limit=500")
    assert response.status_code == 200, response.text
    return [event for event in response.json()["items"] if event["type"] in types]


def remind_soon(user, title, fire_in=1.5):
    """A task whose reminder fires in about `fire_in` seconds. Returns its id."""
    response = user.api.post(API + "/tasks", {"title": title, "due": rfc3339(fire_in + 60),
                                              "reminders": [{"at": rfc3339(fire_in)}]})
    assert response.status_code == 201, response.text
    return response.json()["id"]


@pytest.fixture
def receivers(tmp_path):
    ca, cert, key = make_certificates(tmp_path)
    smtp = SmtpRelay(cert, key).start()
    webhook = WebhookReceiver(cert, key).start()
    push = PushService(cert, key).start()
    password_file = tmp_path / "smtp-password"
    password_file.write_text(SMTP_PASSWORD + "\n")
    flags = ["--notify-ca-file", ca, "--smtp-host", "127.0.0.1", "--smtp-port", smtp.port,
             "--smtp-username", SMTP_USER, "--smtp-password-file", password_file,
             "--smtp-from", "docket@test.example"]
    yield {"smtp": smtp, "webhook": webhook, "push": push, "flags": flags, "root": tmp_path}
    smtp.stop()
    webhook.stop()
    push.stop()


def start_docket(receivers, *extra):
    root = receivers["root"] / "docket"
    root.mkdir(exist_ok=True)
    return ApiServer(root, receivers["flags"] + list(extra)).start()


def enable_channels(user, receivers, push=True):
    """E-mail, webhook and WebSocket on, and push with one subscription at
    the test's push service when `push`. Returns `push`."""
    body = {"email": {"enabled": True, "address": "%s@mail.test.example" % user.username},
            "webhook": {"enabled": True, "url": receivers["webhook"].origin + "/hook"},
            "websocket": {"enabled": True}}
    push_on = push
    if push_on:
        vapid = user.api.get(API + "/push/vapid")
        assert vapid.status_code == 200, vapid.text
        service = receivers["push"]
        service.vapid_key = vapid.json()["public_key"]
        response = user.api.post(API + "/push/subscriptions", service.subscribe(user.username))
        assert response.status_code in (200, 201), response.text
        body["webpush"] = {"enabled": True}
    response = user.api.patch(API + "/me", {"notifications": body})
    assert response.status_code == 200, response.text
    me = user.api.get(API + "/me").json()
    receivers["webhook"].secret = me["notifications"]["webhook"]["secret"]
    return push_on


def test_settings_are_checked_merged_and_shown(tmp_path):
    """PATCH /me rejects each bad channel value with a 422 naming its dotted
    path and changes nothing; good values merge; GET /me shows the effective
    settings with defaults and a webhook secret that rotates with
    secret_version and appears in no event."""
    server = ApiServer(tmp_path).start()
    try:
        user = signup(server, "carol")
        me = user.api.get(API + "/me").json()
        assert me["notifications"]["websocket"] == {"enabled": True}
        assert me["notifications"]["email"] == {"enabled": False}
        assert me["notifications"]["webpush"] == {"enabled": False}
        first_secret = me["notifications"]["webhook"]["secret"]
        assert len(first_secret) == 43
        bad = [({"email": {"enabled": True}}, "notifications.email.address"),
               ({"email": {"address": "no-at-sign"}}, "notifications.email.address"),
               ({"webhook": {"enabled": True, "url": "ftp://x.example/"}},
                "notifications.webhook.url"),
               ({"webhook": {"secret_version": 0}}, "notifications.webhook.secret_version"),
               ({"webpush": {"enabled": "yes"}}, "notifications.webpush.enabled"),
               ({"pager": {"enabled": True}}, "notifications.pager"),
               ({"websocket": {"enabled": True, "volume": 3}}, "notifications.websocket.volume"),
               ("on", "notifications")]
        for body, field in bad:
            response = user.api.patch(API + "/me", {"notifications": body})
            assert response.status_code == 422, (body, response.text)
            assert field in [error["field"] for error in response.json()["errors"]], response.text
        assert user.api.get(API + "/me").json()["notifications"] == me["notifications"]
        response = user.api.patch(API + "/me", {"notifications": {
            "email": {"enabled": True, "address": "carol@mail.example"},
            "webhook": {"enabled": True, "url": "https://hooks.example/in", "secret_version": 2}}})
        assert response.status_code == 200, response.text
        response = user.api.patch(API + "/me", {"notifications": {"email": {"enabled": False}}})
        assert response.status_code == 200, response.text
        now = user.api.get(API + "/me").json()["notifications"]
        assert now["email"] == {"enabled": False, "address": "carol@mail.example"}
        assert now["webhook"]["url"] == "https://hooks.example/in"
        assert now["webhook"]["secret"] not in (first_secret, None)
        events = user.api.get(API + "/events?since=0&limit=500").text
        assert first_secret not in events and now["webhook"]["secret"] not in events
    finally:
        server.close()


def test_every_channel_delivers_a_reminder_once(receivers):
    """One reminder reaches the relay (STARTTLS, AUTH, Message-ID of the
    delivery key), the webhook (valid signature and timestamp), the push
    service (valid VAPID, decryptable payload) and the open WebSocket, each
    exactly once, and each delivery is recorded as notification.sent."""
    server = start_docket(receivers)
    try:
        user = signup(server, "dave")
        push_on = enable_channels(user, receivers)
        ws = wsraw.open_ws(server.process.port, user.token)
        task_id = remind_soon(user, "Water the plants")
        reminder = None
        deadline = time.monotonic() + scaled(15)
        while reminder is None and time.monotonic() < deadline:
            message = ws.recv_json(timeout=scaled(15))
            if message.get("type") == "reminder":
                reminder = message
        assert reminder is not None and reminder["task"]["id"] == task_id, reminder
        key = reminder["reminder"]["key"]
        assert key.startswith(task_id + "@")
        channels = {"email", "webhook", "websocket"} | ({"webpush"} if push_on else set())
        sent = wait_until(lambda: (lambda found: found if len(found) >= len(channels) else None)(
            events_of(user, {"notification.sent"})), 20, "notification.sent for every channel")
        assert {event["data"]["channel"] for event in sent} == channels
        assert all(event["data"]["reminder_key"] == key and event["data"]["attempts"] == 1
                   for event in sent)
        smtp, webhook, push = receivers["smtp"], receivers["webhook"], receivers["push"]
        assert len(smtp.messages) == 1
        recipients, message = smtp.messages[0]
        assert recipients == ["dave@mail.test.example"]
        assert message["Subject"] == "Reminder: Water the plants"
        assert message["Message-ID"].endswith("@docket>")
        assert webhook.rejected == [] and len(webhook.deliveries) == 1
        delivery, body, _ = webhook.deliveries[0]
        assert delivery == key + "/webhook" and body["delivery"] == delivery
        assert body["task"]["id"] == task_id and body["reminder"]["key"] == key
        if push_on:
            assert push.rejected == [] and len(push.received) == 1
            _, headers, payload = push.received[0]
            assert headers["TTL"] == "86400" and headers["Urgency"] == "high"
            assert payload["task_id"] == task_id and payload["key"] == key
            assert payload["title"] == "Water the plants"
        time.sleep(scaled(1))  # nothing more arrives
        assert len(smtp.messages) == 1 and len(webhook.deliveries) == 1
        assert len(events_of(user, {"notification.sent", "notification.failed"})) == len(channels)
        metrics = user.api.get("/metrics").text
        for channel in channels:
            assert ('docket_notify_deliveries_total{channel="%s",outcome="sent"} 1' % channel
                    in metrics), metrics
        assert "docket_notify_inflight 0" in metrics
        ws.close()
    finally:
        server.close()


def test_failing_webhook_retries_then_dead_letters_and_redrives(receivers):
    """A webhook answering 500 is tried exactly 4 times (1 + 3 retries at
    100/200/300 ms), then listed in the dead-letter queue with its error;
    after the receiver recovers, a redrive delivers it once, marks the entry
    redriven and records notification.sent."""
    server = start_docket(receivers, "--notify-retry-delays-ms", "100,200,300")
    try:
        admin = signup(server, "erin")  # the first account is the admin
        assert admin.role == "admin"
        response = admin.api.patch(API + "/me", {"notifications": {
            "websocket": {"enabled": False},
            "webhook": {"enabled": True, "url": receivers["webhook"].origin + "/hook"}}})
        assert response.status_code == 200, response.text
        webhook = receivers["webhook"]
        webhook.secret = admin.api.get(API + "/me").json()["notifications"]["webhook"]["secret"]
        webhook.status = 500
        task_id = remind_soon(admin, "Renew passport")
        entry = wait_until(lambda: next(iter(admin.api.get(API + "/admin/dlq").json()["items"]),
                                        None), 20, "a dead-letter entry")
        assert len(webhook.deliveries) == 4, webhook.deliveries
        assert len({delivery for delivery, _, _ in webhook.deliveries}) == 1
        assert entry["consumer"] == "notifier" and entry["state"] == "dead"
        assert entry["attempts"] == 4 and "500" in entry["error"]
        assert entry["item"]["channel"] == "webhook"
        assert entry["key"] == webhook.deliveries[0][0]
        failed = events_of(admin, {"notification.failed"})
        assert len(failed) == 1 and failed[0]["subject"] == task_id
        webhook.status = 200
        response = admin.api.post(API + "/admin/dlq/%s/redrive" % entry["id"])
        assert response.status_code == 202, response.text
        wait_until(lambda: events_of(admin, {"notification.sent"}), 10, "notification.sent")
        assert [status for _, _, status in webhook.deliveries] == [500, 500, 500, 500, 200]

        def redriven():
            items = admin.api.get(API + "/admin/dlq").json()["items"]
            return [item for item in items if item["id"] == entry["id"]
                    and item["state"] == "redriven"]
        wait_until(redriven, 10, "the entry to be redriven")
        again = admin.api.post(API + "/admin/dlq/%s/redrive" % entry["id"])
        assert again.status_code == 409, again.text
        time.sleep(scaled(0.5))
        assert len(webhook.deliveries) == 5
    finally:
        server.close()


def test_kill_9_never_delivers_a_reminder_twice(receivers):
    """A burst of reminders over every channel, docket killed with SIGKILL
    while they are delivered, then restarted: no Message-ID and no webhook
    delivery key is received twice, and every (reminder, channel) is either
    delivered or recorded as failed with "outcome unknown"."""
    count = 12
    server = start_docket(receivers, "--notify-max-inflight", "4")
    user = signup(server, "frank")
    enable_channels(user, receivers, push=False)
    response = user.api.patch(API + "/me", {"notifications": {"websocket": {"enabled": False}}})
    assert response.status_code == 200
    fire_in = 2.0
    task_ids = [remind_soon(user, "Burst %d" % index, fire_in) for index in range(count)]
    smtp, webhook = receivers["smtp"], receivers["webhook"]
    wait_until(lambda: len(smtp.messages) + len(webhook.deliveries) >= 3, 20, "first deliveries")
    server.kill()
    server.start()
    try:
        def settled():
            outcomes = events_of(user, {"notification.sent", "notification.failed"})
            return outcomes if len(outcomes) >= 2 * count else None
        outcomes = wait_until(settled, 30, "an outcome for every delivery")
        time.sleep(scaled(1))
        ids = smtp.message_ids()
        assert len(ids) == len(set(ids)), ids
        keys = [delivery for delivery, _, _ in webhook.deliveries]
        assert len(keys) == len(set(keys)), keys
        by_key = {}
        for event in outcomes:
            by_key.setdefault(event["data"]["key"], []).append(event)
        assert len(by_key) == 2 * count
        for key, events in by_key.items():
            kinds = {event["type"] for event in events}
            assert len(kinds) == 1, (key, events)  # never both sent and failed
            if kinds == {"notification.failed"}:
                assert events[0]["data"]["error"].startswith("outcome unknown"), events
        assert set(keys) <= set(by_key)  # whatever arrived is accounted for
        assert len(ids) <= count
        assert {event["subject"] for event in outcomes} == set(task_ids)
    finally:
        server.close()


def test_gone_push_subscription_is_removed_without_retry(receivers):
    """A push service answering 410 Gone gets one attempt only: the delivery
    is recorded as failed and the subscription is removed."""
    server = start_docket(receivers, "--notify-retry-delays-ms", "100,100,100")
    try:
        user = signup(server, "gina")
        enable_channels(user, receivers)
        response = user.api.patch(API + "/me", {"notifications": {
            "websocket": {"enabled": False}, "email": {"enabled": False},
            "webhook": {"enabled": False}}})
        assert response.status_code == 200, response.text
        push = receivers["push"]
        push.status = 410
        remind_soon(user, "Stretch")
        failed = wait_until(lambda: events_of(user, {"notification.failed"}), 15,
                            "notification.failed")
        assert failed[0]["data"]["channel"] == "webpush"
        assert "gone" in failed[0]["data"]["error"]
        wait_until(lambda: user.api.get(API + "/push/subscriptions").json()["items"] == [], 10,
                   "the subscription to be removed")
        time.sleep(scaled(0.5))
        assert len(push.received) == 1 and push.rejected == []
    finally:
        server.close()
