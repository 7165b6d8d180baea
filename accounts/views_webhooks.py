"""Portal view for the webhook signing secret: create or rotate it (it is shown on the profile page)."""

from __future__ import annotations

from typing import cast

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.contrib.auth.models import User
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from accounts.webhook_secrets import webhook_secret_get, webhook_secret_rotate


@login_required
@require_POST
def webhook_secret_rotate_view(request: HttpRequest) -> HttpResponse:
    user = cast(User, request.user)
    if webhook_secret_get(user=user) is not None and request.POST.get("confirm") != "1":
        messages.error(request, _("Tick the box to confirm: the current secret stops working at once."))
    else:
        webhook_secret_rotate(user=user, request=request)
        messages.success(request, _("Your new webhook signing secret is shown below."))
    return redirect(reverse("accounts:profile") + "#webhook-secret")
