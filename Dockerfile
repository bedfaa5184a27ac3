# One image for every process: web (gunicorn), worker (celery worker) and beat (celery beat).
FROM python:3.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /app

COPY pyproject.toml README.md ./
COPY config config
COPY tenants tenants
COPY actions actions
COPY journeys journeys
COPY templates templates
COPY manage.py ./
RUN pip install '.[postgres]' gunicorn \
    && useradd --system --home /app conduit \
    && mkdir -p /app/var && chown conduit /app/var

# Static files are collected into the image and served by whitenoise; the build needs only
# placeholder settings (nothing is read from them at run time).
RUN SECRET_KEY=build-only FIELD_ENCRYPTION_KEYS=cG9zdGhvbGRlci1rZXktZm9yLWJ1aWxkLW9ubHktMDA= \
    python manage.py collectstatic --noinput

USER conduit
EXPOSE 8000
# Web by default; the compose file runs the worker and beat from the same image.
CMD ["gunicorn", "config.wsgi:application", "--bind", "0.0.0.0:8000", "--workers", "3", "--access-logfile", "-"]
