"""Gunicorn settings for the API process (see docs/adr/0006-serve-with-gunicorn-gthread.md)."""

import os

# Threads overlap database I/O inside a worker; workers use the cores. Start from 2 x 4 on
# the 2-core reference machine and change it only with load-test numbers (make bench).
workers = int(os.environ.get("BOOKWELL_WEB_WORKERS", "2"))
threads = int(os.environ.get("BOOKWELL_WEB_THREADS", "4"))
worker_class = "gthread"
timeout = 30
graceful_timeout = 20  # SIGTERM: finish in-flight requests, then stop
keepalive = 5
accesslog = None  # the app writes one structured line per request itself
errorlog = "-"
