# Image of the dagster-code, dagster-webserver and dagster-daemon services of docker-compose.yml,
# and of every run's container (DockerRunLauncher starts runs from it).
FROM python:3.11-slim
WORKDIR /opt/kline_assets
# torch first, pinned; pass your CPU- or CUDA-wheel index as TORCH_INDEX_URL to choose the build.
ARG TORCH_INDEX_URL=""
RUN pip install --no-cache-dir torch==2.13.0 ${TORCH_INDEX_URL:+--index-url $TORCH_INDEX_URL}
COPY pyproject.toml README.md ./
COPY kline_assets ./kline_assets
COPY sql ./sql
COPY workspace.yaml ./
COPY deploy ./deploy
RUN pip install --no-cache-dir -e .
ENV DAGSTER_HOME=/opt/dagster/home
RUN mkdir -p $DAGSTER_HOME
COPY dagster.yaml $DAGSTER_HOME/dagster.yaml
