# syntax=docker/dockerfile:1
# Mercury's one image: every Mercury process of the Procfile runs from it with its own command
# (docker-compose.yml, deploy/k8s). Three stages: the UI built with Node, the Python build (the project's
# dependencies, QuickFIX's C++ and the engine's hot modules compiled with mypyc), and a slim runtime without
# compilers. Base images are pinned by their full version tag, so a rebuild gets the same Python and Node.

FROM node:22.12.0-bookworm-slim AS ui
WORKDIR /src/ui
# the lock file first: the npm ci layer is reused until the dependencies change
COPY ui/package.json ui/package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY ui/ ./
RUN npm run build

FROM python:3.11.11-slim-bookworm AS build
# gcc for mypyc's C (setup.py), g++ for quickfix==1.16.0, which pip builds from source (a few minutes)
RUN apt-get update \
    && apt-get install -y --no-install-recommends gcc g++ \
    && rm -rf /var/lib/apt/lists/*
ENV VIRTUAL_ENV=/opt/venv PATH=/opt/venv/bin:$PATH PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/venv
WORKDIR /app
COPY . .
# editable, as ./mercury does: the compiled engine modules land next to their sources in /app/engine, where
# engine/__init__.py checks they are not older than the sources (COPY keeps the files' times)
RUN pip install -e . \
    && python -c "import engine.core, engine.book; print('compiled:', engine.core.__file__)" \
    | grep -q '\.so$'
# bytecode now: the runtime's root filesystem may be read-only (deploy/k8s), so it could not be cached later
# (pip already compiled what it installed into /opt/venv)
RUN python -m compileall -q /app

FROM python:3.11.11-slim-bookworm AS runtime
# nginx: the front door (python -m frontdoor renders its configuration and runs it in the foreground)
RUN apt-get update \
    && apt-get install -y --no-install-recommends nginx \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --system --gid 10001 mercury \
    && useradd --system --uid 10001 --gid mercury --home-dir /app --shell /usr/sbin/nologin mercury
ENV VIRTUAL_ENV=/opt/venv PATH=/opt/venv/bin:$PATH PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1
COPY --from=build /opt/venv /opt/venv
COPY --from=build /app /app
COPY --from=ui /src/ui/dist /app/ui/dist
WORKDIR /app
# var/: the FIX message store, the front door's rendered configuration and the simulator's keys; the only
# directory the processes write (a volume in docker-compose.yml)
RUN mkdir -p /app/var && chown mercury:mercury /app/var
USER mercury:mercury
# bind every listener to the container's interfaces (the settings default to 127.0.0.1 for a laptop)
ENV MERCURY_HTTP_HOST=0.0.0.0 MERCURY_FEED_HOST=0.0.0.0 MERCURY_FIX_HOST=0.0.0.0 MERCURY_RESEARCH_HOST=0.0.0.0 MERCURY_FRONTDOOR_HOST=0.0.0.0
EXPOSE 8080 8081 8090 8091 9878 9101
CMD ["python", "-m", "engine"]
