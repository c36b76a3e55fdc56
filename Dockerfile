FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY schemas ./schemas
COPY orchestrator ./orchestrator
COPY adapters ./adapters
COPY honnin ./honnin
RUN pip install --no-cache-dir . && useradd --system --uid 10001 honnin
USER honnin
ENV HONNIN_LOG_FORMAT=json
CMD ["honnin", "run"]
