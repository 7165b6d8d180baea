#!/bin/sh
# The long API conformance run: schemathesis for 900 seconds over every operation of the served
# OpenAPI document, authenticated, with the checks and per-operation rules of schemathesis.toml.
# (The test suite runs the same checks with a few examples per operation, in-process.)
#
# Usage, from the project directory, with the platform running (e.g. in another terminal:
#   API_RATE_LIMIT=100000/min DEFAULT_DAILY_IMAGE_QUOTA=10000000 python run.py --port 5000):
#   benchmarks/schemathesis_long.sh [base-url] [seconds]
# Exit status 0 means no failure was found.
set -eu
BASE_URL=${1:-http://127.0.0.1:5000}
SECONDS_BUDGET=${2:-900}
TOKEN=$(.venv/bin/python manage.py create_token "${ADMIN_USERNAME:-admin}" --name "schemathesis long run")
exec .venv/bin/schemathesis run "$BASE_URL/api/schema/" \
    --header "Authorization: Bearer $TOKEN" \
    --max-time "$SECONDS_BUDGET" \
    --workers 2
