"""REST URLs of the accounts app, mounted under /api/v1/."""

from django.urls import path

from accounts.api import TokenObtainView

urlpatterns = [
    path("auth/token/", TokenObtainView.as_view(), name="api-token"),
]
