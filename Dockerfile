FROM python:3.11.11-slim-bookworm
WORKDIR /app
COPY pyproject.toml README.md ./
COPY schemas ./schemas
COPY orchestrator ./orchestrator
COPY adapters ./adapters
COPY honnin ./honnin
# The data directory belongs to the user the container runs as: a named volume mounted on it takes
# its ownership from the image, so the worker can write its store, key file and mail outbox there.
RUN pip install --no-cache-dir . \
    && useradd --system --uid 10001 --user-group --home-dir /data --no-create-home honnin \
    && install -d -o 10001 -g 10001 -m 0700 /data
ENV HONNIN_DATA_DIR=/data \
    HONNIN_LOG_FORMAT=json
VOLUME ["/data"]
USER 10001:10001
EXPOSE 8080
CMD ["honnin", "run"]
