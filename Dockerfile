# One image for every Paygate process: api, worker, dashboard, checkout (see docker-compose.yml).
FROM python:3.11-slim

# PAYGATE_BIND: outside a container Paygate listens on 127.0.0.1 by default; inside one it must
# listen on every interface of the container for published ports to reach it.
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PAYGATE_BIND=0.0.0.0 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app
# Dependencies first, from the hashed lock (scripts/lock regenerates it): every file pip fetches
# must match a listed sha256, and --no-deps means nothing unlisted is pulled in.
COPY requirements.lock ./
RUN pip install --require-hashes --no-deps -r requirements.lock
COPY setup.cfg pyproject.toml README.md ./
COPY paygate ./paygate
COPY plugins ./plugins
COPY web ./web
COPY sdk ./sdk
# The project itself, resolving nothing: its dependencies and its build backend (setuptools,
# wheel: also in the lock, hence --no-build-isolation) are in place already.
RUN pip install --no-deps --no-build-isolation . \
    && pip check \
    && useradd --system --uid 10001 --home /app paygate

USER paygate
EXPOSE 8000 3000 3001
# The default process is the API; docker-compose.yml picks the command per service.
CMD ["paygate", "api"]
