"""Portal URLs of A/B comparisons, mounted at /comparisons/."""

from django.urls import path

from generation import views_comparisons

app_name = "comparisons"

urlpatterns = [
    path("", views_comparisons.comparison_list, name="comparison_list"),
    path("new/", views_comparisons.comparison_new, name="comparison_new"),
    path("<uuid:comparison_id>/", views_comparisons.comparison_detail, name="comparison_detail"),
    path("<uuid:comparison_id>/votes/", views_comparisons.comparison_vote, name="comparison_vote"),
    path("<uuid:comparison_id>/cancel/", views_comparisons.comparison_cancel, name="comparison_cancel"),
]
