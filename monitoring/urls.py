"""URLs of the monitoring app."""

from django.urls import path

from monitoring import views

urlpatterns = [
    path("health", views.health, name="health"),
]
