"""WSGI entry point served by waitress (run.py) or any production WSGI server."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "imagegen.settings")

application = get_wsgi_application()
