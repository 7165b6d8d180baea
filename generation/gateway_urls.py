"""URLs of the OpenAI-compatible gateway, mounted at /v1/ (OpenAI's paths, without trailing slashes)."""

from django.urls import path, re_path

from generation import gateway_api

urlpatterns = [
    re_path(r"^images/generations/?$", gateway_api.ImageGenerationsView.as_view(), name="gateway-images-generations"),
    re_path(r"^models/?$", gateway_api.ModelListView.as_view(), name="gateway-models"),
    path("models/<path:model_id>", gateway_api.ModelDetailView.as_view(), name="gateway-model-detail"),
    path("images/files/<str:token>", gateway_api.ImageFileView.as_view(), name="gateway-image-file"),
    re_path(r"^(?P<path>.*)$", gateway_api.not_found),
]
