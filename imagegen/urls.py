"""Root URL configuration: portal, REST API v1, OpenAPI docs, admin, health and the OpenAI-compatible /v1/."""

from django.contrib import admin
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.templatetags.static import static
from django.urls import include, path
from django.utils.translation import gettext_lazy as _
from django.views.generic import RedirectView
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

admin.site.site_header = _("ImageGen administration")
admin.site.site_title = _("ImageGen administration")


def favicon(request: HttpRequest) -> HttpResponse:
    """Browsers ask for /favicon.ico on pages without an icon link (admin, API docs)."""
    return redirect(static("img/favicon.svg"), permanent=False)


api_v1 = [
    path("", include("accounts.api_urls")),
    path("", include("generation.api_urls")),
]

urlpatterns = [
    path("", RedirectView.as_view(pattern_name="generation:batch_list", permanent=False)),
    path("favicon.ico", favicon),
    path("batches/", include("generation.urls")),
    path("accounts/", include("accounts.urls")),
    path("i18n/", include("django.conf.urls.i18n")),
    path("admin/", admin.site.urls),
    path("api/v1/", include(api_v1)),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("api/docs/", SpectacularSwaggerSplitView.as_view(url_name="api-schema"), name="api-docs"),
    path("", include("monitoring.urls")),
    path("v1/", include("generation.gateway_urls")),
    path("comparisons/", include("generation.urls_comparisons")),
]

handler400 = "imagegen.api.bad_request"
handler404 = "imagegen.api.page_not_found"
handler500 = "imagegen.api.server_error"
