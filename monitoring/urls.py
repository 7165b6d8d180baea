"""URLs of the monitoring app (not namespaced, so `health` keeps its foundation name)."""

from django.urls import path

from monitoring import views

urlpatterns = [
    path("health", views.health, name="health"),
    path("health/live", views.live, name="health_live"),
    path("health/ready", views.ready, name="health_ready"),
    path("metrics", views.metrics, name="metrics"),
    path("monitoring/", views.dashboard, name="monitoring_dashboard"),
    path("monitoring/data", views.dashboard_json, name="monitoring_data"),
]
