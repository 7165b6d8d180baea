"""REST URLs of the generation app, mounted under /api/v1/."""

from django.urls import path

from generation import api, api_comparisons, api_downloads, api_library, api_output, api_webhooks

urlpatterns = [
    path("batches/", api.BatchListCreateView.as_view(), name="api-batch-list"),
    path("batches/<uuid:batch_id>/", api.BatchDetailView.as_view(), name="api-batch-detail"),
    path("batches/<uuid:batch_id>/cancel/", api.BatchCancelView.as_view(), name="api-batch-cancel"),
    path("batches/<uuid:batch_id>/retry/", api.BatchRetryView.as_view(), name="api-batch-retry"),
    path("batches/<uuid:batch_id>/pause/", api.BatchPauseView.as_view(), name="api-batch-pause"),
    path("batches/<uuid:batch_id>/resume/", api.BatchResumeView.as_view(), name="api-batch-resume"),
    path("batches/<uuid:batch_id>/generations/", api.BatchGenerationsView.as_view(), name="api-batch-generations"),
    path("generations/", api.LibraryView.as_view(), name="api-library"),
    path("generations/<uuid:generation_id>/", api.GenerationDetailView.as_view(), name="api-generation-detail"),
    path(
        "generations/<uuid:generation_id>/retry/",
        api.GenerationRetryView.as_view(),
        name="api-generation-retry",
    ),
    path(
        "generations/<uuid:generation_id>/image/",
        api.GenerationFileView.as_view(field="image"),
        name="api-generation-image",
    ),
    path(
        "generations/<uuid:generation_id>/thumbnail/",
        api.GenerationFileView.as_view(field="thumbnail"),
        name="api-generation-thumbnail",
    ),
    path("providers/", api.ProviderListView.as_view(), name="api-providers"),
    path("usage/", api.UsageView.as_view(), name="api-usage"),
    path("provider-keys/", api.ProviderKeyListCreateView.as_view(), name="api-provider-keys"),
    path("provider-keys/<slug:provider>/", api.ProviderKeyDetailView.as_view(), name="api-provider-key-detail"),
    path("generations/delete/", api_library.GenerationBulkDeleteView.as_view(), name="api-generations-delete"),
    path(
        "generations/<uuid:generation_id>/favourite/",
        api_library.GenerationFavouriteView.as_view(),
        name="api-generation-favourite",
    ),
    path("collections/", api_library.CollectionListCreateView.as_view(), name="api-collection-list"),
    path("collections/<uuid:collection_id>/", api_library.CollectionDetailView.as_view(), name="api-collection-detail"),
    path(
        "collections/<uuid:collection_id>/items/",
        api_library.CollectionItemsView.as_view(),
        name="api-collection-items",
    ),
    path("batches/<uuid:batch_id>/webhooks/", api_webhooks.BatchWebhookListView.as_view(), name="api-batch-webhooks"),
    path(
        "batches/<uuid:batch_id>/webhooks/<uuid:delivery_id>/resend/",
        api_webhooks.BatchWebhookResendView.as_view(),
        name="api-batch-webhook-resend",
    ),
    path("comparisons/", api_comparisons.ComparisonListCreateView.as_view(), name="api-comparison-list"),
    path(
        "comparisons/<uuid:comparison_id>/",
        api_comparisons.ComparisonDetailView.as_view(),
        name="api-comparison-detail",
    ),
    path(
        "comparisons/<uuid:comparison_id>/cancel/",
        api_comparisons.ComparisonCancelView.as_view(),
        name="api-comparison-cancel",
    ),
    path(
        "comparisons/<uuid:comparison_id>/votes/",
        api_comparisons.ComparisonVoteView.as_view(),
        name="api-comparison-votes",
    ),
    path("batches/<uuid:batch_id>/reprocess/", api_output.BatchReprocessView.as_view(), name="api-batch-reprocess"),
    path("renditions/<uuid:rendition_id>/file/", api_output.RenditionFileView.as_view(), name="api-rendition-file"),
]
urlpatterns += [
    path("batches/estimate/", api.BatchEstimateView.as_view(), name="api-batch-estimate"),
    path("batches/<uuid:batch_id>/download/", api_downloads.BatchDownloadView.as_view(), name="api-batch-download"),
    path("generations/download/", api_downloads.SelectionDownloadView.as_view(), name="api-generations-download"),
    path(
        "collections/<uuid:collection_id>/download/",
        api_downloads.CollectionDownloadView.as_view(),
        name="api-collection-download",
    ),
]
