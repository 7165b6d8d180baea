"""Library reads and writes (generation.library, selectors.library_*) and the portal pages over them."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.core.files.storage import FileSystemStorage, default_storage
from django.urls import reverse
from django.utils import timezone

from accounts.quotas import quota_usage
from generation import library, result_cache, rollups, selectors, stats
from generation.models import Batch, Comparison, ComparisonArm, Generation
from imagegen.errors import Conflict, NotFound, ValidationFailed
from tests.generation.test_search import _assert_no_full_scan, _plan, every_page


@pytest.fixture
def made(make_batch: Any) -> Batch:
    return make_batch(name="made", prompts=["a red fox", "一隻藍色的貓", "夕陽下的海邊"])


@pytest.fixture
def owner_client(client: Any, owner: Any) -> Any:
    client.force_login(owner)
    return client


def _images(made: Batch) -> list[Generation]:
    return list(made.generations.order_by("position"))


# --- selectors --------------------------------------------------------------------------------------


def test_filters_parse_every_spelling(settings: Any) -> None:
    filters = selectors.library_filters(
        {"q": "貓", "size": "512×768", "created_after": "2025-01-02", "until": "2025-01-03", "favorite": "true"}
    )
    assert (filters.search, filters.width, filters.height, filters.favourite) == ("貓", 512, 768, True)
    assert filters.since is not None and filters.until is not None
    assert (filters.until - filters.since).days == 2  # "until" a date includes that whole day
    moment = selectors.library_filters({"since": "2025-01-02T10:00:00Z"}).since
    assert moment is not None and moment.hour == 10


@pytest.mark.parametrize(
    "query", [{"size": "10"}, {"since": "soon"}, {"favourite": "yes"}, {"collection": "1"}, {"collection": ""}]
)
def test_bad_filters_raise_a_validation_error(query: dict[str, str]) -> None:
    with pytest.raises(ValidationFailed):
        selectors.library_filters(query)


def test_deleted_images_leave_every_list(owner: Any, made: Batch, run_queue: Any) -> None:
    fox, cat, _sea = _images(made)
    with run_queue():
        library.generations_delete(generations=[fox])
    assert {g.prompt for g in selectors.library_list(user=owner)} == {cat.prompt, _sea.prompt}
    assert not list(selectors.library_list(user=owner, search="fox"))
    assert list(selectors.generation_list(batch=made)) == [cat, _sea]
    with pytest.raises(NotFound):
        selectors.generation_get(user=owner, generation_id=fox.pk)


def test_a_collection_filter_and_favourites_use_their_own_small_sets(owner: Any, made: Batch) -> None:
    fox, cat, _sea = _images(made)
    collection = library.collection_create(owner=owner, name="Cats")
    library.collection_items_add(collection=collection, generations=[cat])
    library.generation_favourite_set(generation=fox, favourite=True)
    page = selectors.library_page(user=owner, size=10, filters=selectors.LibraryFilters(collection_id=collection.pk))
    assert [g.prompt for g in page.items] == [cat.prompt]
    page = selectors.library_page(user=owner, size=10, filters=selectors.LibraryFilters(favourite=True))
    assert [g.prompt for g in page.items] == [fox.prompt]


def test_history_thumbnails_come_in_one_query(owner: Any, make_batch: Any, django_assert_num_queries: Any) -> None:
    batches = [make_batch(name=f"b{n}", prompts=[f"p{n}-{i}" for i in range(6)]) for n in range(3)]
    with django_assert_num_queries(1):
        strips = selectors.batch_thumbnail_ids(batches=batches, per_batch=4)
    firsts = [list(b.generations.order_by("position").values_list("pk", flat=True)[:4]) for b in batches]
    assert [strips[b.pk] for b in batches] == firsts


def test_the_date_filter_narrows_the_owners_batch_index(owner: Any, made: Batch) -> None:
    filters = selectors.LibraryFilters(since=timezone.now() - timedelta(days=1))
    batches = Batch.objects.filter(filters.batch_conditions(), owner_id=owner.pk).order_by(*selectors.BATCH_ORDER)
    plan = _plan(batches[:2])
    _assert_no_full_scan(plan)
    assert "batch_owner_newest" in plan, plan


def test_a_filtered_chunk_of_batches_reads_their_images_by_index(owner: Any, made: Batch) -> None:
    filters = selectors.LibraryFilters(status="succeeded", width=256, height=256, model="procedural-v1")
    chunk = (
        Generation.objects.filter(filters.image_conditions(), batch_id__in=[made.pk])
        .select_related("batch")
        .order_by(*selectors.LIBRARY_ORDER)
    )
    _assert_no_full_scan(_plan(chunk[:61]))


def test_favourites_are_read_from_their_partial_index(owner: Any, made: Batch) -> None:
    favourites = selectors.library_list(user=owner, filters=selectors.LibraryFilters(favourite=True))
    plan = _plan(favourites[:61])
    _assert_no_full_scan(plan)
    assert "generation_favourites" in plan, plan


def test_a_collection_is_read_through_its_membership_index(owner: Any, made: Batch) -> None:
    # The collection's few images are sorted in memory (a small set): no table is scanned whole.
    collection = library.collection_create(owner=owner, name="Some")
    filters = selectors.LibraryFilters(collection_id=collection.pk)
    plan = _plan(selectors.library_list(user=owner, filters=filters)[:61])
    for table in ("generation_generation", "generation_batch", "generation_collectionitem"):
        assert f"Seq Scan on {table}" not in plan and not plan.rstrip().endswith(f"SCAN {table}"), plan
    assert "one_membership_per_image" in plan or "generation_collectionitem" in plan, plan


# --- services ---------------------------------------------------------------------------------------


def test_deleting_keeps_usage_quota_and_batch_counts(owner: Any, made: Batch, run_queue: Any) -> None:
    rollups.rollup_advance(now=timezone.now() + timedelta(minutes=2))
    before = (quota_usage(user=owner).images_today, stats.owner_usage(owner_id=owner.pk))
    with run_queue():
        library.batch_delete(batch=made)
    rollups.rollup_advance(now=timezone.now() + timedelta(minutes=3))
    assert (quota_usage(user=owner).images_today, stats.owner_usage(owner_id=owner.pk)) == before
    made.refresh_from_db()
    assert (made.total, made.completed, made.deleted, made.listed) == (3, 3, 3, 0)
    assert made.deleted_at is not None


def test_files_go_only_after_the_transaction_commits(
    owner: Any, made: Batch, django_capture_on_commit_callbacks: Any
) -> None:
    fox = _images(made)[0]
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        library.generations_delete(generations=[fox])
    assert default_storage.exists(str(fox.image.name))  # not yet: the rows could still roll back
    callbacks[0]()
    assert not default_storage.exists(str(fox.image.name)) and not default_storage.exists(str(fox.thumbnail.name))


def test_files_are_removed_from_an_object_store(object_store: Any, owner: Any, make_batch: Any, run_queue: Any) -> None:
    batch = make_batch(prompts=["stored in S3"])
    generation = batch.generations.get()
    assert default_storage.exists(str(generation.image.name))
    with run_queue():
        library.generations_delete(generations=[generation])
    assert not default_storage.exists(str(generation.image.name))
    assert not default_storage.exists(str(generation.thumbnail.name))


def test_a_file_that_cannot_be_removed_is_logged_not_raised(caplog: Any, monkeypatch: Any) -> None:
    def refuse(storage: Any, name: str) -> None:
        raise OSError("disk gone")

    monkeypatch.setattr(FileSystemStorage, "delete", refuse)
    library.remove_files(["images/x.png"])
    assert "Could not remove images/x.png" in caplog.text


def test_a_running_batch_is_not_deleted(owner: Any, make_batch: Any) -> None:
    batch = make_batch(prompts=["waiting"], run=False)
    with pytest.raises(Conflict):
        library.batch_delete(batch=batch)
    with pytest.raises(Conflict):
        library.generations_delete(generations=list(batch.generations.all()))
    assert not Generation.objects.filter(deleted_at__isnull=False).exists()


def test_a_deleted_image_leaves_its_collections_and_loses_its_star(owner: Any, made: Batch, run_queue: Any) -> None:
    fox = _images(made)[0]
    collection = library.collection_create(owner=owner, name="Foxes")
    library.collection_items_add(collection=collection, generations=[fox])
    library.generation_favourite_set(generation=fox, favourite=True)
    with run_queue():
        library.generations_delete(generations=[fox])
    assert library.collection_get(user=owner, collection_id=collection.pk).size == 0  # type: ignore[attr-defined]
    fox.refresh_from_db()
    assert not fox.favourite and not fox.image and not fox.thumbnail


def test_retry_failed_skips_deleted_images(owner: Any, make_batch: Any, run_queue: Any) -> None:
    from generation import services

    batch = make_batch(prompts=["a", "b"])
    Generation.objects.filter(batch=batch).update(status="failed", error_code="server_error")
    first, _second = batch.generations.order_by("position")
    with run_queue():
        library.generations_delete(generations=[first])
    services.batch_retry_failed(batch=Batch.objects.get(pk=batch.pk))
    first.refresh_from_db()
    assert first.status == "failed" and first.deleted_at is not None


def test_owned_generations_refuses_others_and_bad_ids(owner: Any, other_user: Any, made: Batch) -> None:
    with pytest.raises(NotFound):
        library.owned_generations(user=other_user, ids=[_images(made)[0].pk])
    for ids in ([], ["x"], [str(_images(made)[0].pk)] * 501):
        with pytest.raises(ValidationFailed):
            library.owned_generations(user=owner, ids=ids)


def test_collection_names_are_cleaned_and_checked(owner: Any) -> None:
    assert library.collection_create(owner=owner, name="  a \n b ").name == "a b"
    for name in ("", "   ", "x" * 101):
        with pytest.raises(ValidationFailed):
            library.collection_create(owner=owner, name=name)
    with pytest.raises(Conflict):
        library.collection_create(owner=owner, name="a b")


# --- portal -----------------------------------------------------------------------------------------


def test_the_library_page_shows_my_images_and_searches_cjk(
    owner_client: Any, made: Batch, make_batch: Any, other_user: Any
) -> None:
    make_batch(other_user, prompts=["一隻貓 of theirs"], run=False)
    page = owner_client.get(reverse("generation:library"), {"q": "貓"}).content.decode()
    assert "一隻藍色的貓" in page and "a red fox" not in page and "theirs" not in page
    assert 'id="lightbox"' in page and 'role="search"' in page


def test_the_library_page_survives_bad_filters_and_cursors(owner_client: Any, made: Batch) -> None:
    response = owner_client.get(reverse("generation:library"), {"size": "huge", "cursor": "nope"})
    assert response.status_code == 200
    assert "a red fox" in response.content.decode()


def test_load_more_pages_through_the_library(owner_client: Any, make_batch: Any, monkeypatch: Any) -> None:
    from generation import views_library

    monkeypatch.setattr(views_library, "LIBRARY_PAGE_SIZE", 2)
    make_batch(prompts=["p1", "p2", "p3"], run=False)
    first = owner_client.get(reverse("generation:library"))
    assert first.context["next_url"]
    second = owner_client.get(reverse("generation:library") + first.context["next_url"])
    assert [g.prompt for g in second.context["generations"]] == ["p3"]


@pytest.mark.parametrize("size", [1, 2, 3, 7])
@pytest.mark.parametrize("status", ["", "succeeded"])
def test_paging_through_batches_of_every_size_shows_each_image_once_in_order(
    owner: Any, make_batch: Any, size: int, status: str
) -> None:
    for number, count in enumerate([1, 3, 1, 0, 5, 2, 1]):
        batch = make_batch(prompts=[f"b{number}-{i}" for i in range(max(count, 1))])
        if count == 0:  # every image deleted: the batch lists none
            library.generations_delete(generations=list(batch.generations.all()))
    batch = make_batch(prompts=["f0", "f1", "f2"], run=False)  # still waiting: filtered out by status
    filters = selectors.LibraryFilters(status=status)
    expected = [g.pk for g in selectors.library_list(user=owner, filters=filters)]
    seen, _last = every_page(selectors.library_page, user=owner, size=size, filters=filters)
    assert seen == expected
    assert len(expected) == (13 if status else 16)


@pytest.mark.parametrize("size", [1, 2, 4])
def test_batches_made_at_the_same_moment_are_paged_by_id_without_gaps_or_repeats(
    owner: Any, make_batch: Any, monkeypatch: Any, size: int
) -> None:
    for number, count in enumerate([2, 1, 3, 1, 2]):
        make_batch(prompts=[f"一隻貓 {number}-{i}" for i in range(count)])
    Batch.objects.filter(owner=owner).update(created_at=timezone.now())  # chunks end inside one created_at
    monkeypatch.setattr(selectors, "LIBRARY_BATCH_WINDOW", 2)
    for filters in (selectors.LibraryFilters(), selectors.LibraryFilters(search="貓")):
        expected = [g.pk for g in selectors.library_list(user=owner, filters=filters)]
        monkeypatch.setattr(selectors, "COMMON_SEARCH_MATCHES", 1)  # the search walks the chunks too
        seen, _last = every_page(selectors.library_page, user=owner, size=size, filters=filters)
        assert seen == expected and len(expected) == 9


def test_history_rows_show_thumbnails(owner_client: Any, made: Batch) -> None:
    page = owner_client.get(reverse("generation:batch_list")).content.decode()
    assert page.count('class="history-strip"') == 1
    assert reverse("api-generation-thumbnail", args=[_images(made)[0].pk]) in page


def test_star_from_the_portal(owner_client: Any, made: Batch) -> None:
    fox = _images(made)[0]
    url = reverse("generation:generation_favourite", args=[fox.pk])
    answer = owner_client.post(url, {"favourite": "1"}, HTTP_ACCEPT="application/json").json()
    assert answer == {"id": str(fox.pk), "favourite": True}
    response = owner_client.post(url, {"favourite": "0", "next": "https://evil.example/"})
    assert response.status_code == 302 and response["Location"] == reverse("generation:library")
    assert not Generation.objects.get(pk=fox.pk).favourite


def test_delete_an_image_with_a_confirm_step(owner_client: Any, made: Batch, run_queue: Any) -> None:
    fox = _images(made)[0]
    url = reverse("generation:generation_delete", args=[fox.pk])
    confirm = owner_client.get(url)
    assert 'id="confirm-delete"' in confirm.content.decode()
    assert Generation.objects.listed().filter(pk=fox.pk).exists()
    with run_queue():
        assert owner_client.post(url).status_code == 302
    assert not Generation.objects.listed().filter(pk=fox.pk).exists()
    batch_page = owner_client.get(reverse("generation:batch_detail", args=[made.pk])).content.decode()
    assert 'id="count-deleted">1<' in batch_page and str(fox.pk) not in batch_page


def test_delete_a_batch_only_once_it_ended(owner_client: Any, make_batch: Any, made: Batch, run_queue: Any) -> None:
    running = make_batch(prompts=["waiting"], run=False)
    response = owner_client.get(reverse("generation:batch_delete", args=[running.pk]), follow=True)
    assert "cancel it before deleting it" in response.content.decode()
    owner_client.post(reverse("generation:batch_delete", args=[running.pk]))
    assert Batch.objects.get(pk=running.pk).deleted_at is None
    with run_queue():
        response = owner_client.post(reverse("generation:batch_delete", args=[made.pk]))
    assert response["Location"] == reverse("generation:batch_list")
    assert owner_client.get(reverse("generation:batch_detail", args=[made.pk])).status_code == 404


def test_bulk_delete_and_add_to_a_collection_from_the_selection(
    owner_client: Any, owner: Any, made: Batch, run_queue: Any
) -> None:
    fox, cat, sea = _images(made)
    collection = library.collection_create(owner=owner, name="Best")
    url = reverse("generation:library_selection")
    owner_client.post(url, {"action": "add", "collection": str(collection.pk), "ids": [str(fox.pk), str(cat.pk)]})
    assert set(collection.generations.all()) == {fox, cat}
    confirm = owner_client.post(url, {"action": "delete", "ids": [str(fox.pk), str(sea.pk)]})
    assert confirm.status_code == 200 and 'name="confirm" value="1"' in confirm.content.decode()
    assert Generation.objects.listed().filter(batch=made).count() == 3
    with run_queue():
        owner_client.post(url, {"action": "delete", "confirm": "1", "ids": [str(fox.pk), str(sea.pk)]})
    assert list(Generation.objects.listed().filter(batch=made)) == [cat]


def test_the_selection_refuses_another_users_images(client: Any, other_user: Any, made: Batch) -> None:
    client.force_login(other_user)
    ids = [str(g.pk) for g in _images(made)]
    response = client.post(
        reverse("generation:library_selection"), {"action": "delete", "confirm": "1", "ids": ids}, follow=True
    )
    assert "No such image" in response.content.decode()
    assert Generation.objects.listed().filter(batch=made).count() == 3


def test_collection_pages(owner_client: Any, owner: Any, made: Batch) -> None:
    response = owner_client.post(reverse("generation:collection_list"), {"name": "海邊"})
    collection = library.collection_list(user=owner).get()
    assert response["Location"] == reverse("generation:collection_detail", args=[collection.pk])
    library.collection_items_add(collection=collection, generations=_images(made)[2:])
    page = owner_client.get(reverse("generation:collection_detail", args=[collection.pk])).content.decode()
    assert "夕陽下的海邊" in page and "a red fox" not in page
    owner_client.post(reverse("generation:collection_detail", args=[collection.pk]), {"name": "Sea"})
    assert library.collection_get(user=owner, collection_id=collection.pk).name == "Sea"
    assert "Sea" in owner_client.get(reverse("generation:collection_list")).content.decode()
    delete_url = reverse("generation:collection_delete", args=[collection.pk])
    assert 'id="confirm-delete"' in owner_client.get(delete_url).content.decode()
    owner_client.post(delete_url)
    assert not library.collection_list(user=owner).exists()


def test_library_pages_need_a_login_and_hide_others(client: Any, other_user: Any, owner: Any, made: Batch) -> None:
    collection = library.collection_create(owner=owner, name="Mine")
    fox = _images(made)[0]
    pages = [reverse("generation:library"), reverse("generation:collection_list")]
    for url in pages:
        assert client.get(url).status_code == 302
    client.force_login(other_user)
    for url in (
        reverse("generation:collection_detail", args=[collection.pk]),
        reverse("generation:collection_delete", args=[collection.pk]),
        reverse("generation:generation_delete", args=[fox.pk]),
        reverse("generation:batch_delete", args=[made.pk]),
    ):
        assert client.get(url).status_code == 404
        assert client.post(url).status_code == 404
    assert client.post(reverse("generation:generation_favourite", args=[fox.pk]), {"favourite": "1"}).status_code == 404
    assert client.get(reverse("generation:generation_favourite", args=[fox.pk])).status_code == 405


def test_grid_pages_cost_the_same_few_queries_however_many_images(
    owner_client: Any, make_batch: Any, django_assert_max_num_queries: Any
) -> None:
    batch = make_batch(prompts=[f"p{n}" for n in range(30)], run=False)
    for url in (
        reverse("generation:batch_detail", args=[batch.pk]),
        reverse("generation:library"),
        reverse("generation:batch_list"),
    ):
        with django_assert_max_num_queries(20):
            assert owner_client.get(url).status_code == 200


def test_a_batch_that_is_one_side_of_a_comparison_is_not_deleted(owner: Any, made: Batch) -> None:
    comparison = Comparison.objects.create(owner=owner, name="A/B")
    ComparisonArm.objects.create(
        comparison=comparison, index=0, label="A", provider="local", model="m", width=256, height=256, batch=made
    )
    with pytest.raises(Conflict) as refused:
        library.batch_delete(batch=made)
    assert refused.value.code == "batch_in_comparison"


def test_a_deleted_image_is_never_a_cache_source(owner: Any, made: Batch, run_queue: Any) -> None:
    fox = _images(made)[0]
    Generation.objects.filter(pk=fox.pk).update(cache_key="k" * 64)
    assert result_cache.hit_exists("k" * 64)
    with run_queue():
        library.generations_delete(generations=[fox])
    assert not result_cache.hit_exists("k" * 64)


@pytest.mark.parametrize("size", [1, 2, 5])
def test_a_common_search_term_walks_the_batches_and_finds_the_same_images(
    owner: Any, make_batch: Any, monkeypatch: Any, size: int
) -> None:
    for number in range(6):
        prompts = [f"一隻貓 {number}-{i}" if i % 2 else f"a dog {number}-{i}" for i in range(number % 3 + 1)]
        make_batch(prompts=prompts)
    filters = selectors.LibraryFilters(search="貓")
    expected = [g.pk for g in selectors.library_list(user=owner, filters=filters)]
    monkeypatch.setattr(selectors, "COMMON_SEARCH_MATCHES", 1)  # every term counts as common
    seen, _last = every_page(selectors.library_page, user=owner, size=size, filters=filters)
    assert seen == expected and len(expected) == 4
