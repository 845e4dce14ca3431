# One image for the web server and the workers (docker-compose.yml picks the command).
# Python 3.11, as on the project's machines: requirements/base.lock is compiled for it.
FROM python:3.11-slim-bookworm
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 DIROPS_VAR_DIR=/var/lib/dirops
WORKDIR /app
# The locked runtime dependencies only (no lab, no test tools), each checked against its hash; a layer of
# its own, so a code change does not reinstall them.
COPY requirements/pip.lock requirements/base.lock ./requirements/
RUN pip install --no-cache-dir --require-hashes -r requirements/pip.lock \
 && pip install --no-cache-dir --require-hashes -r requirements/base.lock
COPY pyproject.toml README.md ./
COPY portal ./portal
COPY migrations_app ./migrations_app
COPY diagnostics_app ./diagnostics_app
RUN pip install --no-cache-dir --no-deps .
COPY manage.py ./
COPY templates ./templates
COPY static ./static
RUN mkdir -p /var/lib/dirops && SECRET_KEY=build-only python manage.py collectstatic --noinput -v0
RUN useradd --system --home /app dirops && chown -R dirops /var/lib/dirops
USER dirops
EXPOSE 8000
CMD ["gunicorn", "portal.wsgi:application", "--workers", "2", "--threads", "4", "--timeout", "120", "--bind", "0.0.0.0:8000"]
