# syntax=docker/dockerfile:1
# The diagnose agent: `diagnose serve`, `diagnose worker` and the `kubectl-diagnose` plugin.
# Build from the repository's top folder:  docker build -t diagnose:0.1.0 .
# docs/deploy.md explains the choices below.

ARG PYTHON_IMAGE=python:3.11-slim-bookworm

# --- build: one wheel for the project, wheels for everything it needs ----------------------
FROM ${PYTHON_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
COPY pyproject.toml README.md ./
COPY diagnose ./diagnose
COPY connectors ./connectors
COPY graphs ./graphs
COPY sandbox ./sandbox
RUN python -m pip wheel --wheel-dir /wheels .

# --- runtime: a virtualenv with those wheels, the playbooks, a non-root user -----------------
FROM ${PYTHON_IMAGE} AS runtime
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 \
    PATH=/opt/diagnose/bin:$PATH \
    DIAGNOSE_STATE_DIR=/var/lib/diagnose
RUN --mount=type=bind,from=build,source=/wheels,target=/wheels \
    python -m venv /opt/diagnose \
    && /opt/diagnose/bin/pip install --no-index --find-links=/wheels diagnose \
    && /opt/diagnose/bin/pip uninstall --yes pip
# The probe catalogue is read from `playbooks/` beside the installed packages
# (sandbox/catalogue.py); it lives in /etc/diagnose/playbooks, where the chart mounts its
# ConfigMap, and is linked into site-packages.
COPY playbooks /etc/diagnose/playbooks
RUN ln -s /etc/diagnose/playbooks \
        "$(/opt/diagnose/bin/python -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')/playbooks" \
    && groupadd --system --gid 10001 diagnose \
    && useradd --system --uid 10001 --gid 10001 --home-dir /var/lib/diagnose --no-create-home \
        --shell /usr/sbin/nologin diagnose \
    && install -d -o 10001 -g 10001 -m 0750 /var/lib/diagnose
USER 10001:10001
WORKDIR /var/lib/diagnose
EXPOSE 8080
ENTRYPOINT ["diagnose"]
CMD ["serve", "--host=0.0.0.0", "--port=8080"]
