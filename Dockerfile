# One image for the worker, the API and the migrate job (docker-compose.yml picks the command;
# its `dev` profile also runs the dev stand-ins from it). No embedded extras: PostgreSQL and
# Temporal are separate services.
#
# Stage 1 installs exactly requirements.lock (every file checked against its hash, nothing
# unlocked pulled in) into a virtualenv; it is rebuilt only when the lockfile changes.
FROM python:3.11.11-slim-bookworm AS dependencies

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

COPY requirements.lock /tmp/requirements.lock
RUN python -m venv /opt/venv \
    && /opt/venv/bin/pip install --require-hashes --no-deps -r /tmp/requirements.lock

# Stage 2: the locked virtualenv and the code, owned by root and run by an unprivileged user.
# The code runs from /app as it is (PYTHONPATH), so no build backend is fetched unlocked.
FROM python:3.11.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PYTHONPATH=/app \
    PATH=/opt/venv/bin:$PATH

RUN useradd --system --uid 10001 --no-create-home --home-dir /nonexistent billing
COPY --from=dependencies /opt/venv /opt/venv
WORKDIR /app
COPY . /app

USER 10001:10001
EXPOSE 8000 9464 9465
# The worker by default; the API: uvicorn api.main:app --host 0.0.0.0 --port 8000
CMD ["python", "-m", "worker"]
