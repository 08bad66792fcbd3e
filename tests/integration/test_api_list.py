"""Proves GET /api/v1/tasks (PRODUCT.md T3, API.md "Tasks" and "Lists"): full
text, tag (AND) and priority (OR) filters, status, due range, overdue, every
sort key in both directions, the default limit, cursor pagination that
reproduces the unpaginated order, per-user isolation, and 400 naming the
parameter for every unknown parameter or bad value. Results are compared
with a Python oracle over the tasks the test created."""
from datetime import datetime, timezone

import pytest

from api import (API, PRIORITY_RANK, check_task, describe, list_all, parse_time, problem,
                 server_fixture, signup, tasks_all)

api_server = server_fixture()

DATASET = [
    {"title": "Alpha report", "description": "quarterly numbers", "priority": "high",
     "tags": ["work"], "due": "2020-01-01T10:00:00Z"},
    {"title": "beta groceries", "description": "milk and eggs", "priority": "low",
     "tags": ["home"], "due": "2031-01-05T10:00:00Z"},
    {"title": "Gamma taxes", "description": "file the forms", "priority": "urgent",
     "tags": ["home", "money"], "due": "2031-01-03T10:00:00Z"},
    {"title": "delta call mom", "priority": "medium"},
    {"title": "Epsilon review", "description": "code review for alpha", "priority": "medium",
     "tags": ["work"], "due": "2031-01-10T10:00:00Z"},
    {"title": "zeta laundry", "priority": "low", "tags": ["home"]},
    {"title": "Eta finished", "tags": ["work"], "due": "2020-06-01T10:00:00Z",
     "complete": True},
    {"title": "Theta settled", "priority": "urgent", "tags": ["money"], "complete": True},
    {"title": "iota invoice", "priority": "high", "tags": ["work", "money"],
     "due": "2031-01-04T10:00:00Z"},
    {"title": "Kappa late", "priority": "low", "tags": ["home"],
     "due": "2021-01-01T10:00:00Z"},
    {"title": "lambda same due", "priority": "high", "tags": ["home"],
     "due": "2031-01-05T10:00:00Z"},
]
SORTS = ["due", "priority", "created", "updated", "title"]


@pytest.fixture(scope="module")
def alice(api_server):
    return signup(api_server, "alice")


@pytest.fixture(scope="module")
def bob(api_server, alice):
    return signup(api_server, "bob")


@pytest.fixture(scope="module")
def tasks(alice, bob):
    """alice's tasks (current state, by id) after creating DATASET, completing some,
    and creating then deleting one; bob gets one task of his own."""
    api = alice.api
    result = {}
    for spec in DATASET:
        body = {key: value for key, value in spec.items() if key != "complete"}
        task = api.create_task(body)
        if spec.get("complete"):
            response = api.post(API + "/tasks/%s/complete" % task["id"])
            assert response.status_code == 200, describe(response)
            task = response.json()
        result[task["id"]] = task
    doomed = api.create_task({"title": "Mu deleted alpha", "tags": ["work"]})
    assert api.delete(API + "/tasks/" + doomed["id"]).status_code == 204
    bob.api.create_task({"title": "bob alpha", "tags": ["work"]})
    return result


def query(api, params):
    response = api.get(API + "/tasks", params=params)
    assert response.status_code == 200, describe(response)
    page = response.json()
    assert set(page) == {"items", "next_cursor"}, page
    for task in page["items"]:
        check_task(task)
    return page


def titles(items):
    return [task["title"] for task in items]


def oracle(tasks, status="open", tags=(), priorities=(), q=None, due_before=None,
           due_after=None, overdue=False):
    now = datetime.now(timezone.utc)
    selected = []
    for task in tasks.values():
        if status == "open" and task["completed"] or status == "completed" and \
                not task["completed"]:
            continue
        if any(tag not in task["tags"] for tag in tags):
            continue
        if priorities and task["priority"] not in priorities:
            continue
        if q is not None:
            words = (task["title"] + " " + task["description"]).lower().split()
            if q.lower() not in words:
                continue
        due = parse_time(task["due"]) if task["due"] else None
        if due_before is not None and (due is None or due >= parse_time(due_before)):
            continue
        if due_after is not None and (due is None or due < parse_time(due_after)):
            continue
        if overdue and (due is None or due >= now or task["completed"]):
            continue
        selected.append(task["title"])
    return sorted(selected)


def sort_key(sort, task):
    if sort == "due":
        return parse_time(task["due"]) if task["due"] else None
    if sort == "priority":
        return PRIORITY_RANK[task["priority"]]
    if sort == "created":
        return parse_time(task["created_at"])
    if sort == "updated":
        return parse_time(task["updated_at"])
    return task["title"].lower()


def assert_sorted(items, sort, descending):
    keys = [sort_key(sort, task) for task in items]
    if sort == "due":
        dated = [key for key in keys if key is not None]
        first_null = next((i for i, key in enumerate(keys) if key is None), len(keys))
        if not descending:
            # Tasks without a due date come after every dated one.
            assert all(key is None for key in keys[first_null:]), titles(items)
        else:
            nulls = [i for i, key in enumerate(keys) if key is None]
            assert nulls == list(range(len(nulls))) or \
                nulls == list(range(len(keys) - len(nulls), len(keys))), titles(items)
        keys = dated
    expected = sorted(keys, reverse=descending)
    assert keys == expected, (sort, descending, titles(items))


def test_default_list_is_open_tasks_sorted_by_due(alice, tasks):
    """With no parameters: open tasks only, ascending due with undated ones last,
    next_cursor null when everything fits."""
    page = query(alice.api, {})
    assert sorted(titles(page["items"])) == oracle(tasks)
    assert_sorted(page["items"], "due", False)
    assert page["next_cursor"] is None
    assert page["items"][0]["title"] == "Alpha report"
    assert {task["title"] for task in page["items"][-2:]} == {"delta call mom", "zeta laundry"}


def test_items_are_the_current_task_objects(alice, tasks):
    """List items equal GET /tasks/{id} for each task."""
    for task in tasks_all(alice.api):
        assert alice.api.get_task(task["id"]) == task


@pytest.mark.parametrize("status", ["open", "completed", "all"])
def test_status_filter(alice, tasks, status):
    """status=open|completed|all selects by the completed flag."""
    page = query(alice.api, {"status": status})
    assert sorted(titles(page["items"])) == oracle(tasks, status=status)


@pytest.mark.parametrize("tags", [["home"], ["work"], ["home", "money"], ["work", "money"],
                                  ["money", "home"], ["nothing"], ["home", "work"]])
def test_tags_are_anded(alice, tasks, tags):
    """Repeated tag= parameters must all match (AND)."""
    page = query(alice.api, [("status", "all")] + [("tag", tag) for tag in tags])
    assert sorted(titles(page["items"])) == oracle(tasks, status="all", tags=tags)


@pytest.mark.parametrize("priorities", [["low"], ["urgent"], ["low", "urgent"],
                                        ["medium", "high", "urgent", "low"]])
def test_priorities_are_ored(alice, tasks, priorities):
    """Repeated priority= parameters match any of them (OR)."""
    page = query(alice.api, [("status", "all")] + [("priority", p) for p in priorities])
    assert sorted(titles(page["items"])) == oracle(tasks, status="all", priorities=priorities)


def test_tags_and_priorities_combine(alice, tasks):
    """tag and priority filters apply together."""
    page = query(alice.api, [("status", "all"), ("tag", "home"), ("priority", "low"),
                             ("priority", "urgent")])
    assert sorted(titles(page["items"])) == oracle(tasks, status="all", tags=["home"],
                                                   priorities=["low", "urgent"])


@pytest.mark.parametrize("text", ["alpha", "review", "MILK", "forms", "invoice", "absent"])
def test_full_text_search_on_title_and_description(alice, tasks, text):
    """q= matches words of the title or the description, case-insensitively, and
    never a deleted task."""
    page = query(alice.api, {"q": text, "status": "all"})
    assert sorted(titles(page["items"])) == oracle(tasks, status="all", q=text)


def test_full_text_follows_updates_and_deletes(alice, tasks):
    """The search index follows PATCH and DELETE."""
    api = alice.api
    task = api.create_task({"title": "searchable pineapple"})
    assert titles(query(api, {"q": "pineapple"})["items"]) == ["searchable pineapple"]
    api.patch_task(task["id"], {"title": "searchable mango"})
    assert query(api, {"q": "pineapple"})["items"] == []
    assert titles(query(api, {"q": "mango"})["items"]) == ["searchable mango"]
    api.patch_task(task["id"], {"description": "with kiwi"})
    assert titles(query(api, {"q": "kiwi"})["items"]) == ["searchable mango"]
    assert api.delete(API + "/tasks/" + task["id"]).status_code == 204
    assert query(api, {"q": "mango"})["items"] == []


def test_due_range(alice, tasks):
    """due_before is exclusive, due_after inclusive; undated tasks never match."""
    api = alice.api
    cases = [{"due_before": "2031-01-05T10:00:00Z"},
             {"due_after": "2031-01-05T10:00:00Z"},
             {"due_after": "2031-01-04T00:00:00Z", "due_before": "2031-01-06T00:00:00Z"},
             {"due_before": "2000-01-01T00:00:00Z"}]
    for case in cases:
        page = query(api, {"status": "all", **case})
        assert sorted(titles(page["items"])) == oracle(tasks, status="all", **case), case


def test_overdue(alice, tasks):
    """overdue=true: due in the past and not completed."""
    page = query(alice.api, {"overdue": "true"})
    assert sorted(titles(page["items"])) == oracle(tasks, overdue=True) == \
        ["Alpha report", "Kappa late"]
    page = query(alice.api, {"overdue": "true", "status": "all"})
    assert sorted(titles(page["items"])) == ["Alpha report", "Kappa late"]


@pytest.mark.parametrize("sort", SORTS)
@pytest.mark.parametrize("descending", [False, True])
def test_sorts(alice, tasks, sort, descending):
    """Every sort key orders the whole list, ascending and with "-" descending."""
    value = ("-" if descending else "") + sort
    page = query(alice.api, {"status": "all", "sort": value})
    assert sorted(titles(page["items"])) == oracle(tasks, status="all")
    assert_sorted(page["items"], sort, descending)


def test_title_sort_is_case_insensitive(alice, tasks):
    """sort=title ignores case: "Alpha" < "beta" < "delta" < "Epsilon"."""
    page = query(alice.api, {"status": "all", "sort": "title"})
    assert titles(page["items"])[:4] == ["Alpha report", "beta groceries", "delta call mom",
                                         "Epsilon review"]


@pytest.mark.parametrize("sort", SORTS + ["-" + sort for sort in SORTS])
def test_pages_reproduce_the_unpaginated_order(alice, tasks, sort):
    """Following next_cursor with limit=2 yields exactly the single-page list, in
    order, with no task twice."""
    api = alice.api
    whole = query(api, {"status": "all", "sort": sort, "limit": 500})["items"]
    paged, pages = list_all(api, API + "/tasks", [("status", "all"), ("sort", sort)], limit=2)
    assert [task["id"] for task in paged] == [task["id"] for task in whole]
    # A full last page may or may not carry a cursor to an empty one.
    needed = (len(whole) + 1) // 2
    assert pages in ({needed, needed + 1} if len(whole) % 2 == 0 else {needed}), pages


@pytest.mark.parametrize("params", [
    [("tag", "home"), ("sort", "-priority")],
    [("priority", "low"), ("priority", "high"), ("sort", "title")],
    [("q", "alpha"), ("status", "all"), ("sort", "-due")],
    [("due_after", "2031-01-01T00:00:00Z"), ("sort", "due")],
    [("status", "completed"), ("sort", "updated")],
])
def test_filtered_pages_reproduce_the_filtered_list(alice, tasks, params):
    """Cursors keep the filters: limit=1 pages of a filtered, sorted list equal the
    single page."""
    whole = query(alice.api, params + [("limit", "500")])["items"]
    paged, _ = list_all(alice.api, API + "/tasks", params, limit=1)
    assert [task["id"] for task in paged] == [task["id"] for task in whole]


@pytest.mark.parametrize("text", ['"', '"alpha', "alpha OR", "NEAR(alpha", "*", "title:alpha",
                                  "'", "alpha AND NOT", "(", "^alpha", "-alpha", "a\\b",
                                  "\u00e9t\u00e9", "%", "alpha*"])
def test_search_text_is_never_query_syntax(alice, tasks, text):
    """q is text, never full-text query syntax: operators and quotes answer 200 (no
    5xx) with only tasks that exist."""
    response = alice.api.get(API + "/tasks", params={"q": text, "status": "all"})
    assert response.status_code == 200, describe(response)
    found = {task["id"] for task in response.json()["items"]}
    assert found <= set(tasks)


def test_cursor_is_stable_under_inserts(alice, tasks):
    """A task created between pages does not make the next page repeat or skip
    existing tasks."""
    api = alice.api
    first = query(api, {"status": "all", "sort": "title", "limit": 3})
    extra = api.create_task({"title": "aardvark first"})
    rest, _ = list_all(api, API + "/tasks", [("status", "all"), ("sort", "title"),
                                              ("cursor", first["next_cursor"])], limit=3)
    seen = titles(first["items"]) + titles(rest)
    assert len(seen) == len(set(seen))
    assert set(seen) >= {task["title"] for task in tasks.values()}
    assert api.delete(API + "/tasks/" + extra["id"]).status_code == 204


def test_default_and_maximum_limit(api_server, alice):
    """limit defaults to 50 and allows 500: 55 tasks give 50 then 5."""
    carol = signup(api_server, "carol")
    api = carol.api
    for index in range(55):
        api.create_task({"title": "bulk %02d" % index})
    page = query(api, {})
    assert len(page["items"]) == 50 and page["next_cursor"] is not None
    rest = query(api, {"cursor": page["next_cursor"]})
    assert len(rest["items"]) == 5 and rest["next_cursor"] is None
    assert len(query(api, {"limit": 500})["items"]) == 55
    assert len(query(api, {"limit": 1})["items"]) == 1


def test_lists_are_isolated_per_user(alice, bob, tasks):
    """Each user lists only their own tasks, whatever the filter."""
    for params in ({"status": "all"}, {"q": "alpha", "status": "all"},
                   [("tag", "work"), ("status", "all")]):
        items = query(bob.api, params)["items"]
        assert titles(items) == ["bob alpha"], params
        assert not set(task["id"] for task in items) & set(tasks)


@pytest.mark.parametrize("params,field", [
    ({"foo": "1"}, "foo"),
    ({"status": "done"}, "status"),
    ({"status": ""}, "status"),
    ({"priority": "critical"}, "priority"),
    ({"sort": "colour"}, "sort"),
    ({"sort": "-"}, "sort"),
    ({"sort": "+due"}, "sort"),
    ({"due_before": "yesterday"}, "due_before"),
    ({"due_after": "2031-13-01T00:00:00Z"}, "due_after"),
    ({"overdue": "maybe"}, "overdue"),
    ({"limit": "0"}, "limit"),
    ({"limit": "501"}, "limit"),
    ({"limit": "-1"}, "limit"),
    ({"limit": "ten"}, "limit"),
    ({"limit": "1e2"}, "limit"),
    ({"cursor": "not-a-cursor"}, "cursor"),
    ({"q": "x" * 513}, "q"),
    ({"tag": "t" * 65}, "tag"),
    ([("tag", "t%d" % i) for i in range(21)], "tag"),
    ({"Status": "open"}, "Status"),
])
def test_bad_parameters_are_400_naming_them(alice, tasks, params, field):
    """An unknown parameter or a bad value is 400 with errors[0].field naming it."""
    problem(alice.api.get(API + "/tasks", params=params), 400, first_field=field)


def test_cursor_is_bound_to_its_sort_and_user(alice, bob, tasks):
    """A cursor used with another sort, or by another user, is 400 naming "cursor"."""
    page = query(alice.api, {"status": "all", "sort": "title", "limit": 2})
    cursor = page["next_cursor"]
    assert cursor
    problem(alice.api.get(API + "/tasks", params={"status": "all", "sort": "due",
                                                   "cursor": cursor}), 400, first_field="cursor")
    problem(bob.api.get(API + "/tasks", params={"status": "all", "sort": "title",
                                                 "cursor": cursor}), 400, first_field="cursor")
    tampered = cursor[:-2] + ("AA" if cursor[-2:] != "AA" else "BB")
    response = alice.api.get(API + "/tasks", params={"status": "all", "sort": "title",
                                                      "cursor": tampered})
    assert response.status_code in (200, 400), describe(response)
    if response.status_code == 400:
        problem(response, 400, first_field="cursor")
