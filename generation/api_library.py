"""Library REST endpoints: favourites, collections and bulk delete (thin views over `generation.library`)."""

from __future__ import annotations

import uuid

from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from generation import library, selectors
from generation.api import PAGING, keyset_page_schema, keyset_response, read_page
from generation.models import Collection
from generation.serializers import GenerationSerializer
from imagegen import fields


class CollectionSerializer(serializers.ModelSerializer):
    size = serializers.IntegerField(read_only=True, help_text="Images in the collection.")

    class Meta:
        model = Collection
        fields = ["id", "name", "size", "created_at"]
        read_only_fields = fields


class CollectionNameSerializer(serializers.Serializer):
    name = fields.CharField(max_length=library.MAX_COLLECTION_NAME, allow_blank=False)


class SelectionSerializer(serializers.Serializer):
    ids = serializers.ListField(
        child=serializers.UUIDField(), allow_empty=False, max_length=library.MAX_SELECTION, help_text="Image ids."
    )


class CollectionItemsSerializer(serializers.Serializer):
    generation_ids = serializers.ListField(
        child=serializers.UUIDField(), allow_empty=False, max_length=library.MAX_SELECTION, help_text="Image ids."
    )


COUNT = {
    "deleted": inline_serializer("DeletedCount", fields={"deleted": serializers.IntegerField()}),
    "changed": inline_serializer(
        "CollectionItemsChanged",
        fields={"changed": serializers.IntegerField(), "collection": CollectionSerializer()},
    ),
}


class GenerationFavouriteView(APIView):
    @extend_schema(request=None, responses=GenerationSerializer, description="Star an image.")
    def post(self, request: Request, generation_id: uuid.UUID) -> Response:
        return self._set(request, generation_id, favourite=True)

    @extend_schema(request=None, responses=GenerationSerializer, description="Unstar an image.")
    def delete(self, request: Request, generation_id: uuid.UUID) -> Response:
        return self._set(request, generation_id, favourite=False)

    def _set(self, request: Request, generation_id: uuid.UUID, *, favourite: bool) -> Response:
        generation = selectors.generation_get(user=request.user, generation_id=generation_id)
        generation = library.generation_favourite_set(generation=generation, favourite=favourite)
        return Response(GenerationSerializer(generation, context={"request": request}).data)


class GenerationBulkDeleteView(APIView):
    @extend_schema(
        request=SelectionSerializer,
        responses=COUNT["deleted"],
        description="Delete up to 500 finished images at once, all or none: an id that is not one of your "
        "images is a 404 (listed in `details.ids`), an image still being made a 409.",
    )
    def post(self, request: Request) -> Response:
        data = SelectionSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        generations = library.owned_generations(user=request.user, ids=data.validated_data["ids"])
        return Response({"deleted": library.generations_delete(generations=generations)})


class CollectionListCreateView(APIView):
    @extend_schema(
        operation_id="v1_collections_list",
        parameters=PAGING,
        responses=keyset_page_schema("CollectionPage", CollectionSerializer),
        description="Your collections, newest first, a page at a time (`next_cursor`), with `count`.",
    )
    def get(self, request: Request) -> Response:
        page = read_page(request, library.collection_page, user=request.user)
        return keyset_response(request, page, CollectionSerializer)

    @extend_schema(request=CollectionNameSerializer, responses={201: CollectionSerializer})
    def post(self, request: Request) -> Response:
        data = CollectionNameSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        collection = library.collection_create(owner=request.user, name=data.validated_data["name"])  # type: ignore[arg-type]
        return Response(CollectionSerializer(collection).data, status=status.HTTP_201_CREATED)


class CollectionDetailView(APIView):
    @extend_schema(responses=CollectionSerializer, description="Its images: `GET /generations/?collection=<id>`.")
    def get(self, request: Request, collection_id: uuid.UUID) -> Response:
        return Response(
            CollectionSerializer(library.collection_get(user=request.user, collection_id=collection_id)).data
        )

    @extend_schema(request=CollectionNameSerializer, responses=CollectionSerializer, description="Rename.")
    def patch(self, request: Request, collection_id: uuid.UUID) -> Response:
        collection = library.collection_get(user=request.user, collection_id=collection_id)
        data = CollectionNameSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        collection = library.collection_rename(collection=collection, name=data.validated_data["name"])
        return Response(CollectionSerializer(collection).data)

    @extend_schema(responses={204: None}, description="Delete the collection; its images stay in the library.")
    def delete(self, request: Request, collection_id: uuid.UUID) -> Response:
        library.collection_delete(collection=library.collection_get(user=request.user, collection_id=collection_id))
        return Response(status=status.HTTP_204_NO_CONTENT)


class CollectionItemsView(APIView):
    @extend_schema(
        request=CollectionItemsSerializer,
        responses=COUNT["changed"],
        description="Add images; those already in it are skipped (`changed` counts the new ones).",
    )
    def post(self, request: Request, collection_id: uuid.UUID) -> Response:
        return self._change(request, collection_id, library.collection_items_add)

    @extend_schema(request=CollectionItemsSerializer, responses=COUNT["changed"], description="Remove images.")
    def delete(self, request: Request, collection_id: uuid.UUID) -> Response:
        return self._change(request, collection_id, library.collection_items_remove)

    def _change(self, request: Request, collection_id: uuid.UUID, change: library.ItemsChange) -> Response:
        collection = library.collection_get(user=request.user, collection_id=collection_id)
        data = CollectionItemsSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        generations = library.owned_generations(user=request.user, ids=data.validated_data["generation_ids"])
        changed = change(collection=collection, generations=generations)
        collection = library.collection_get(user=request.user, collection_id=collection_id)
        return Response({"changed": changed, "collection": CollectionSerializer(collection).data})
