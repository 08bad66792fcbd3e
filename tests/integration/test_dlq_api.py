"""Proves the dead-letter queue's admin routes (API.md "Operations", PRODUCT.md
E5) on the real binary: both routes answer 401 without a valid token and 403
to non-admins; the list of a fresh server is {"items": [], "next_cursor": null}
for every state filter; bad `state`, `cursor` and `limit` values, unknown and
repeated parameters are 400 problems naming the parameter; a redrive of an
unknown or malformed id is 404; /metrics carries docket_dlq_entries for every
state; notify.db is created beside docket.db; and records in the "dlq" topic
that are not entries (written by `docket log append` while the server was
down) are skipped at start instead of stopping it. The path through a failing
consumer (three failures -> entry -> redrive) is in the notifier's tests."""
import pytest

from api import API, Api, problem, server_fixture, signup, unauthorized
from dlq import DLQ, STATES, dlq_entries, dlq_metrics, dlq_redrive

api_server = server_fixture()
UNKNOWN_ID = "0190c2a0-0000-7000-8000-0000000000ff"


@pytest.fixture(scope="module")
def root(api_server):
    """The first account: an admin."""
    user = signup(api_server, "root")
    assert user.role == "admin"
    return user


@pytest.fixture(scope="module")
def alice(api_server, root):
    user = signup(api_server, "alice")
    assert user.role == "user"
    return user


# The routes, as (method, path).
ROUTES = [("GET", DLQ), ("POST", DLQ + "/" + UNKNOWN_ID + "/redrive")]


@pytest.mark.parametrize("method,path", ROUTES)
def test_without_a_token_is_401(api_server, root, method, path):
    """No token and a garbage token are both 401 with a Bearer challenge."""
    client = Api(api_server.base_url)
    unauthorized(client.request(method, path, token=None))
    unauthorized(client.request(method, path, token="not.a.jwt"))


@pytest.mark.parametrize("method,path", ROUTES)
def test_non_admin_is_403(alice, method, path):
    """A signed-in user who is not an admin gets 403 problem+json."""
    problem(alice.api.request(method, path), 403)


def test_empty_list_shape(root):
    """A fresh server's queue is empty, for every state filter and limit."""
    response = root.api.get(DLQ)
    assert response.status_code == 200, response.text
    assert response.headers["Content-Type"].split(";")[0] == "application/json"
    assert response.json() == {"items": [], "next_cursor": None}
    for state in STATES:
        response = root.api.get(DLQ, params={"state": state, "limit": "500"})
        assert response.json() == {"items": [], "next_cursor": None}, state
    assert dlq_entries(root.api, limit=1) == []


@pytest.mark.parametrize("params,field", [
    ({"state": "gone"}, "state"),
    ({"state": ""}, "state"),
    ({"state": "DEAD"}, "state"),
    ({"cursor": "x"}, "cursor"),
    ({"cursor": "bm90LWEtdXVpZA"}, "cursor"),  # base64url of "not-a-uuid"
    ({"limit": "0"}, "limit"),
    ({"limit": "501"}, "limit"),
    ({"limit": "ten"}, "limit"),
    ({"limit": "-1"}, "limit"),
    ({"sort": "id"}, "sort"),
    ({"state": ["dead", "dead"]}, "state"),
    ({"cursor": ["a", "b"]}, "cursor"),
])
def test_bad_query_parameters_are_named(root, params, field):
    """Each bad, unknown or repeated parameter is a 400 naming it."""
    problem(root.api.get(DLQ, params=params), 400, field=field)


@pytest.mark.parametrize("entry_id", [UNKNOWN_ID, "not-a-uuid", "1"])
def test_redrive_unknown_is_404(root, entry_id):
    """A redrive of an id that names no entry (or is no id at all) is 404."""
    problem(dlq_redrive(root.api, entry_id), 404)


def test_wrong_method_is_405(root):
    """The list is read-only and redrive only takes POST."""
    assert root.api.post(DLQ).status_code == 405
    assert root.api.get(DLQ + "/" + UNKNOWN_ID + "/redrive").status_code == 405


def test_metrics_and_database_file(api_server, root):
    """/metrics has a docket_dlq_entries gauge per state (all 0 here), and the
    queue's database is notify.db in the data directory."""
    assert dlq_metrics(api_server.base_url) == {state: 0 for state in STATES}
    assert (api_server.data_dir / "notify.db").is_file()


def test_foreign_records_in_the_dlq_topic_are_skipped(api_server, root):
    """Records in the "dlq" topic that are not entries do not stop the server:
    the mirror skips them at start (logged) and the list stays empty."""
    api_server.stop()
    result = api_server.cli("log", "append", "--topic", "dlq", "--writers", "1", "--records",
                            "3", "--record-bytes", "64")
    assert result.returncode == 0, result.stderr
    api_server.start()
    assert root.api.get(DLQ).json() == {"items": [], "next_cursor": None}
    assert dlq_metrics(api_server.base_url)["dead"] == 0
    assert "skipping a dlq record" in api_server.process.stderr
    api_server.restart()  # the mirror offset moved past them: no warning again
    assert "skipping a dlq record" not in api_server.process.stderr
