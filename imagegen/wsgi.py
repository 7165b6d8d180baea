"""WSGI entry point served by waitress (run.py) or any production WSGI server."""

import os

from django.conf import settings
from django.core.wsgi import get_wsgi_application

from imagegen.proxy import TrustedProxyMiddleware

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "imagegen.settings")

# Client address, scheme and host come from X-Forwarded-* only when a TRUSTED_PROXIES proxy sent them.
application = TrustedProxyMiddleware(get_wsgi_application(), settings.TRUSTED_PROXIES)
