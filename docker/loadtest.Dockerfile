# The load tester's image, for the in-cluster load generator (gke-llm-bench:loadgen, docs/in-cluster.md).
#
#   docker build -f docker/loadtest.Dockerfile -t REGION-docker.pkg.dev/PROJECT/REPO/loadtest:0.1.0 .
#   docker push REGION-docker.pkg.dev/PROJECT/REPO/loadtest:0.1.0      # prints the digest
#
# then set gke-llm-bench:loadgen.image to REGION-docker.pkg.dev/PROJECT/REPO/loadtest@sha256:<digest>.
# Slim: only what `python -m loadtest run | upload | merge` imports (requirements-loadgen.txt, at the
# lock's versions), no Pulumi, no analysis; runs as a non-root user with a read-only root filesystem.
#
# The base is pinned by digest (python:3.11-slim, the Python the project is tested on). Refresh it
# with `docker buildx imagetools inspect python:3.11-slim` when rebuilding.
FROM python:3.11-slim@sha256:9c900dea9e8fb7e16277c179b555cc72d29a352dbc33cff48ad5a0412fd5bfc7

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app
COPY requirements-loadgen.txt requirements.lock ./
RUN python -m pip install -r requirements-loadgen.txt -c requirements.lock

COPY loadtest/ loadtest/
COPY stacks/ stacks/

# 10001: the uid the load generator's pod runs as (components/load_generator.py)
RUN useradd --uid 10001 --no-create-home --shell /usr/sbin/nologin loadtest
USER 10001
ENTRYPOINT ["python", "-m", "loadtest"]
