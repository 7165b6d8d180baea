"""REST URLs of the accounts app, mounted under /api/v1/."""

from django.urls import path

from accounts import api, api_webhooks

urlpatterns = [
    path("auth/token/", api.TokenObtainView.as_view(), name="api-token"),
    path("auth/signup/", api.SignupView.as_view(), name="api-signup"),
    path("me/", api.MeView.as_view(), name="api-me"),
    path("tokens/", api.TokenListCreateView.as_view(), name="api-token-list"),
    path("tokens/<uuid:token_id>/", api.TokenDetailView.as_view(), name="api-token-detail"),
    path("tokens/<uuid:token_id>/revoke/", api.TokenRevokeView.as_view(), name="api-token-revoke"),
    path("webhooks/secret/", api_webhooks.WebhookSecretView.as_view(), name="api-webhook-secret"),
]
