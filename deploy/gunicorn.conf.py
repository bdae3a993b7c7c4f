"""gunicorn settings for the portal.

Threads, not sync workers: the operator console holds a Server-Sent Events stream open,
and a thread per stream is cheap where a process per stream is not.
"""

import os

bind = os.environ.get("AUTOCALL_WEB_BIND", "127.0.0.1:5000")
workers = int(os.environ.get("AUTOCALL_WEB_WORKERS", "2"))
worker_class = "gthread"
threads = int(os.environ.get("AUTOCALL_WEB_THREADS", "32"))
graceful_timeout = 20
accesslog = "-"
