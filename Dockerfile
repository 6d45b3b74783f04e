# One image for the worker, the API, migrations and the email capture server (docker-compose.yml
# picks the command). No embedded extras: PostgreSQL and Temporal are separate services here.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app
COPY . /app
RUN pip install . \
    && useradd --system --uid 10001 --home-dir /app billing \
    && chown -R billing /app

USER billing
EXPOSE 8000 9464
# The worker by default; the API: uvicorn api.main:app --host 0.0.0.0 --port 8000
CMD ["python", "-m", "worker"]
