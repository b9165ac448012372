FROM python:3.11-slim
WORKDIR /app
RUN apt-get update && apt-get install -y --no-install-recommends curl && rm -rf /var/lib/apt/lists/*
COPY requirements.txt .
RUN python -m venv .venv && .venv/bin/pip install --no-cache-dir -r requirements.txt
COPY . .
ENV PORT=8000 CC_HOST=0.0.0.0
EXPOSE 8000
CMD [".venv/bin/python", "-m", "ccweb.server"]
