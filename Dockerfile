# One image for every dmzwatch service: `docker run dmzwatch <poller|dedup|classifier|notifier>`.
FROM python:3.11.11-slim-bookworm AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY cli cli
COPY shared shared
COPY services services
RUN pip install --no-cache-dir --prefix=/install .

FROM python:3.11.11-slim-bookworm
RUN useradd --system --uid 10001 --home /app dmzwatch
COPY --from=build /install /usr/local
COPY deploy/kafka/topics.yaml /app/deploy/kafka/topics.yaml
WORKDIR /app
USER 10001
ENV DMZWATCH_METRICS_HOST=0.0.0.0 DMZWATCH_LOG_FORMAT=json
ENTRYPOINT ["dmzwatch"]
