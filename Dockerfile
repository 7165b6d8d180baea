# ImageGen: one image for the web application and the workers (compose.yaml, docs/deploy.md).
FROM python:3.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    DATA_DIR=/data

# pg_dump / pg_restore for `manage.py backup` and `restore`.
RUN apt-get update \
    && apt-get install -y --no-install-recommends postgresql-client \
    && rm -rf /var/lib/apt/lists/*

WORKDIR /app
COPY requirements.txt ./
RUN pip install -r requirements.txt
COPY . .
# Translations are compiled into the image, which stays read-only to the platform's user.
RUN DATA_DIR=/tmp/build python manage.py compile_catalogs && rm -rf /tmp/build \
    && useradd --system --home-dir /data --shell /usr/sbin/nologin imagegen \
    && mkdir -p /data && chown imagegen:imagegen /data

USER imagegen
VOLUME ["/data"]
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s \
    CMD python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/health/live', timeout=4)"
# The web application; workers run `python manage.py qcluster` from the same image.
CMD ["sh", "-c", "python manage.py collectstatic --noinput -v0 && exec waitress-serve --listen=0.0.0.0:8000 --threads=${WEB_THREADS:-8} imagegen.wsgi:application"]
