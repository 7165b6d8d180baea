"""ASGI entry point, for servers that prefer ASGI; the platform itself is synchronous."""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "imagegen.settings")

application = get_asgi_application()
