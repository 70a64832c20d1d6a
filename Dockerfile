# syntax=docker/dockerfile:1
# Copytrade service image.
#   docker build -t copytrade .
#   docker run --rm -p 8000:8000 -e COPYTRADE_DATABASE_URL=... -e COPYTRADE_REDIS_URL=... \
#     -e COPYTRADE_ADMIN_TOKEN=... copytrade                 (or: copytrade migrate)
# docker-compose.yml runs it with Postgres, Redis and the migrations.
#
# Layout. `copytrade migrate` finds alembic.ini and migrations/ in the directory that holds the
# `app` package (app/cli.py), so a plain `pip install .` into site-packages cannot migrate:
# site-packages has no alembic.ini. Instead:
#   - the builder stage installs the locked runtime dependencies into /opt/venv, then the project
#     with --no-deps, only to get pip's `copytrade` console script and the package metadata, and
#     removes that site-packages copy of `app`;
#   - the runtime stage holds the source tree at /srv/copytrade (app/, migrations/, alembic.ini
#     side by side) and puts it on PYTHONPATH, so `copytrade` imports app from there.
# No editable install, one copy of the code, and the compilers stay in the builder.

# Both stages must use the same Python: the venv's compiled extensions are built for it.
FROM python:3.11.14-slim-bookworm AS builder

# Only a fallback for a platform where a dependency has no wheel (all have for amd64 and arm64).
RUN apt-get update \
    && apt-get install -y --no-install-recommends build-essential=12.9 \
    && rm -rf /var/lib/apt/lists/*

ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PATH=/opt/venv/bin:$PATH
RUN python -m venv /opt/venv

WORKDIR /build

# Dependencies first, in their own layer: editing the code does not reinstall them. Only the
# runtime dependencies of pyproject.toml, at the versions of requirements.lock (which also pins
# the dev tools; as constraints those are not installed).
COPY pyproject.toml requirements.lock ./
RUN python -c "import tomllib; print('\n'.join(tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']))" > requirements-runtime.txt \
    && pip install --no-cache-dir -c requirements.lock -r requirements-runtime.txt \
    && pip check

COPY app ./app
RUN pip install --no-cache-dir --no-deps --no-compile . \
    && rm -r "$(python -c 'import sysconfig; print(sysconfig.get_path("purelib"))')/app"


FROM python:3.11.14-slim-bookworm AS runtime

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PATH=/opt/venv/bin:$PATH \
    PYTHONPATH=/srv/copytrade \
    COPYTRADE_HOST=0.0.0.0 \
    COPYTRADE_PORT=8000

RUN groupadd --system --gid 10001 copytrade \
    && useradd --system --uid 10001 --gid copytrade --no-create-home \
        --home-dir /nonexistent --shell /usr/sbin/nologin copytrade

COPY --from=builder /opt/venv /opt/venv

# The working directory is the project root: alembic.ini's `prepend_sys_path = .` and the
# settings' optional .env are read from here.
WORKDIR /srv/copytrade
COPY alembic.ini ./
COPY migrations ./migrations
COPY app ./app
# Compile once at build time: the files are root-owned and read-only for the service user, and
# PYTHONDONTWRITEBYTECODE keeps it from trying to write bytecode at run time.
RUN python -m compileall -q app migrations

USER 10001:10001

EXPOSE 8000
# `docker stop` sends this, then SIGKILL after its timeout. On SIGTERM the service drains: no new
# fills, the ones in flight are finished and acknowledged, push sockets close with 1012, then it
# exits 0 (app/shutdown.py). Give it 2 x COPYTRADE_SHUTDOWN_GRACE_S + 5 s (docker stop -t 25).
STOPSIGNAL SIGTERM
HEALTHCHECK --interval=15s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('COPYTRADE_PORT', '8000'), timeout=4)"]

CMD ["copytrade", "serve"]
