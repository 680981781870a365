# One image for every Paygate process: api, worker, dashboard, checkout (see docker-compose.yml).
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app
COPY setup.cfg pyproject.toml README.md ./
COPY paygate ./paygate
COPY plugins ./plugins
COPY web ./web
COPY sdk ./sdk
RUN pip install . \
    && useradd --system --uid 10001 --home /app paygate

USER paygate
EXPOSE 8000 3000 3001
# The default process is the API; docker-compose.yml picks the command per service.
CMD ["paygate", "api"]
