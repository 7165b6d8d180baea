"""Portal view for batch webhooks: send a delivery again (the list is on the batch page)."""

from __future__ import annotations

import uuid

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from generation import selectors, services
from imagegen.errors import ApplicationError


@login_required
@require_POST
def batch_webhook_resend(request: HttpRequest, batch_id: uuid.UUID, delivery_id: uuid.UUID) -> HttpResponse:
    batch = selectors.batch_get(user=request.user, batch_id=batch_id)
    delivery = selectors.webhook_delivery_get(batch=batch, delivery_id=delivery_id)
    try:
        services.webhook_delivery_resend(delivery=delivery)
    except ApplicationError as error:
        messages.error(request, error.message)
    else:
        messages.success(request, _("The webhook is being sent again."))
    return redirect(reverse("generation:batch_detail", args=[batch.pk]) + "#webhooks")
