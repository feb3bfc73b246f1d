"""Lists in SQL against a real (SQLite) database: filters, sort, keyset paging with nulls."""

from __future__ import annotations

import itertools
import random

import pytest

from ryu_sched import errors
from ryu_sched.config import Settings
from ryu_sched.db import Database
from ryu_sched.db.models import Network
from ryu_sched.resources import admin_context, listing, networks
from ryu_sched.resources.context import Context
from ryu_sched.services import Services


@pytest.fixture(scope="module")
def services():
    database = Database("sqlite://")
    database.create_schema()
    rng = random.Random(7)
    with database.session() as session:
        for i in range(60):
            flat = rng.random() < 0.3
            session.add(Network(
                name=rng.choice(["a", "b", "c", ""]), project_id=rng.choice(["p1", "p2"]),
                shared=rng.random() < 0.2, mtu=rng.choice([1400, 1500, 9000]),
                network_type="flat" if flat else "vlan",
                physical_network=f"flat{i}" if flat else rng.choice(["physnet1", None]),
                segmentation_id=None if flat or rng.random() < 0.3 else 100 + i))
    yield Services(settings=Settings(connection="sqlite://"), db=database)
    database.dispose()


def page_all(services, query: listing.ListQuery, context=None) -> list[dict]:
    context = context or admin_context()
    items, marker = [], None
    while True:
        page = networks.page_networks(services, context, listing.ListQuery(
            filters=query.filters, sorts=query.sorts, limit=query.limit, marker=marker))
        items += page.items
        if not page.more:
            return items
        marker = page.items[-1]["id"]


def python_order(items: list[dict], sorts: tuple[listing.Sort, ...]) -> list[dict]:
    result = sorted(items, key=lambda n: n["id"])
    for sort in reversed(sorts):
        result.sort(key=lambda n, k=sort.key: (n[k] is not None, n[k] or 0 if not isinstance(
            n[k], str) else n[k]), reverse=sort.descending)
    return result


SORTS = [(), (listing.Sort("name"),), (listing.Sort("provider:segmentation_id", True),),
         (listing.Sort("provider:physical_network"), listing.Sort("mtu", True)),
         (listing.Sort("shared", True), listing.Sort("tenant_id"), listing.Sort("name"))]


@pytest.mark.parametrize("sorts", SORTS, ids=lambda s: ",".join(
    f"{x.key}:{'desc' if x.descending else 'asc'}" for x in s) or "default")
@pytest.mark.parametrize("limit", [1, 7, 59, 60, 100])
def test_keyset_pages_equal_the_sorted_whole(services, sorts, limit):
    whole = networks.list_networks(services, admin_context())
    expected = python_order(whole, sorts) if sorts else whole
    got = page_all(services, listing.ListQuery(sorts=sorts, limit=limit))
    assert [n["id"] for n in got] == [n["id"] for n in expected]


def test_reverse_page_is_the_items_before_the_marker(services):
    whole = networks.list_networks(services, admin_context())
    for index in (1, 5, 59):
        page = networks.page_networks(services, admin_context(), listing.ListQuery(
            limit=4, marker=whole[index]["id"], page_reverse=True))
        assert [n["id"] for n in page.items] == [n["id"] for n in whole[max(0, index - 4):index]]
        assert page.more == (index > 4)


FILTERS = [{"name": ["a", ""]}, {"shared": ["True"]}, {"shared": ["0"]}, {"shared": ["yes"]},
           {"mtu": ["1500", "9000"]}, {"mtu": ["01500"]}, {"provider:segmentation_id": ["None"]},
           {"provider:physical_network": ["", "physnet1"]}, {"tenant_id": ["p2"]},
           {"project_id": ["p1"], "name": ["b"], "router:external": ["false"]},
           {"availability_zones": [""]}, {"is_default": ["False"], "ipv4_address_scope": [""]}]


@pytest.mark.parametrize("filters", FILTERS)
def test_sql_filters_agree_with_matching_the_dicts(services, filters):
    from ryu_sched.resources import common

    whole = networks.list_networks(services, admin_context())
    expected = common.filter_items(whole, common.normalize_filters(filters))
    assert networks.list_networks(services, admin_context(), filters) == expected
    paged = page_all(services, listing.ListQuery(filters=filters, limit=3))
    assert [n["id"] for n in paged] == [n["id"] for n in expected]


def test_visibility_applies_to_lists_and_markers(services):
    member = Context("p1", False)
    seen = networks.list_networks(services, member)
    assert seen and all(n["project_id"] == "p1" or n["shared"] for n in seen)
    hidden = next(n for n in networks.list_networks(services, admin_context())
                  if n["project_id"] == "p2" and not n["shared"])
    with pytest.raises(errors.HTTPBadRequest, match="marker"):
        networks.page_networks(services, member, listing.ListQuery(limit=2,
                                                                   marker=hidden["id"]))


def test_filters_on_what_the_resource_does_not_have_are_refused(services):
    with pytest.raises(errors.HTTPBadRequest, match=r"\[limit_me\] is invalid attribute"):
        networks.list_networks(services, admin_context(), {"name": ["a"], "limit_me": ["x"]})


@pytest.mark.parametrize("key", ["subnets", "tags", "nope"])
def test_only_columns_are_sort_keys(services, key):
    with pytest.raises(errors.HTTPBadRequest, match="sort_key"):
        networks.page_networks(services, admin_context(),
                               listing.ListQuery(sorts=(listing.Sort(key),)))


def test_finisher_sees_every_batch_once(services):
    batches: list[int] = []

    def finish(batch: list[dict]) -> list[str]:
        batches.append(len(batch))
        return [n["id"] for n in batch]

    page = networks.page_networks(services, admin_context(), listing.ListQuery(), finish)
    assert len(page.items) == 60 and sum(batches) == 60
    assert list(itertools.chain(page.items)) == [
        n["id"] for n in networks.list_networks(services, admin_context())]
