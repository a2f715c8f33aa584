# The service image. Set DATABASE_URL to a PostgreSQL; without it the service starts an
# embedded PostgreSQL with its data under COMMISSIONS_DATA_DIR (mount a volume there).
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app
COPY pyproject.toml README.md ./
COPY service ./service
COPY migrations ./migrations
RUN pip install . \
    && useradd --create-home --uid 10001 commissions

USER commissions
ENV COMMISSIONS_DATA_DIR=/home/commissions/data
EXPOSE 8000

HEALTHCHECK --interval=10s --timeout=3s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import sys, urllib.request; sys.exit(urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=2).status != 200)"]

CMD ["commissions", "serve", "--host", "0.0.0.0", "--port", "8000"]
