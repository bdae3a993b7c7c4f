"""gunicorn settings for the portal.

Threads, not sync workers: each open operator console holds a Server-Sent Events stream,
which waits in Redis (XREAD BLOCK) most of its life, and a waiting thread is cheap where a
process per stream is not. 600 threads per worker hold 500 consoles and leave room for the
pages; measured with bench/consoles.py (docs/portal.md). A stream ends after five minutes
and the browser reconnects, so a thread is never held for good.
"""

import os

bind = os.environ.get("AUTOCALL_WEB_BIND", "127.0.0.1:5000")
workers = int(os.environ.get("AUTOCALL_WEB_WORKERS", "2"))
worker_class = "gthread"
threads = int(os.environ.get("AUTOCALL_WEB_THREADS", "600"))
graceful_timeout = 20
accesslog = "-"


def post_worker_init(worker):
    """The portal's logs in the deployment's format (AUTOCALL_LOG_FORMAT)."""
    from engine import logs
    from webapp.config import Config

    logs.configure(Config.from_env().logs)
