"""Portal URLs of the generation app."""

from django.urls import path

from generation import views, views_downloads, views_library, views_output, views_webhooks

app_name = "generation"

urlpatterns = [
    path("", views.batch_list, name="batch_list"),
    path("new/", views.batch_new, name="batch_new"),
    path("<uuid:batch_id>/", views.batch_detail, name="batch_detail"),
    path("<uuid:batch_id>/cancel/", views.batch_cancel, name="batch_cancel"),
    path("<uuid:batch_id>/retry/", views.batch_retry, name="batch_retry"),
    path("<uuid:batch_id>/pause/", views.batch_pause, name="batch_pause"),
    path("<uuid:batch_id>/resume/", views.batch_resume, name="batch_resume"),
    path("images/<uuid:generation_id>/retry/", views.generation_retry, name="generation_retry"),
    path("images/<uuid:generation_id>/", views.generation_detail, name="generation_detail"),
    path("keys/", views.provider_keys, name="provider_keys"),
    path("keys/<slug:provider>/delete/", views.provider_key_delete, name="provider_key_delete"),
    path("library/", views_library.library_page, name="library"),
    path("library/selection/", views_library.library_selection, name="library_selection"),
    path("collections/", views_library.collection_list, name="collection_list"),
    path("collections/<uuid:collection_id>/", views_library.collection_detail, name="collection_detail"),
    path("collections/<uuid:collection_id>/delete/", views_library.collection_delete, name="collection_delete"),
    path("images/<uuid:generation_id>/favourite/", views_library.generation_favourite, name="generation_favourite"),
    path("images/<uuid:generation_id>/delete/", views_library.generation_delete, name="generation_delete"),
    path("<uuid:batch_id>/delete/", views_library.batch_delete, name="batch_delete"),
    path(
        "<uuid:batch_id>/webhooks/<uuid:delivery_id>/resend/",
        views_webhooks.batch_webhook_resend,
        name="batch_webhook_resend",
    ),
    path("<uuid:batch_id>/reprocess/", views_output.batch_reprocess, name="batch_reprocess"),
]
urlpatterns += [
    path("<uuid:batch_id>/download/", views_downloads.batch_download, name="batch_download"),
    path("download/", views_downloads.download_selection, name="download_selection"),
    path(
        "collections/<uuid:collection_id>/download/",
        views_downloads.collection_download,
        name="collection_download",
    ),
]
