"""gunicorn settings for the portal: `gunicorn -c python:webapp.gunicorn_conf`, or
`-c deploy/gunicorn.conf.py`, which is this module for deployments that name a file. They
live in the package so that an installed package has them (`autocall run` uses them).

Variables: AUTOCALL_WEB_BIND (the address, 127.0.0.1:5000; `--bind` overrides it),
AUTOCALL_WEB_WORKERS (worker processes, 2), AUTOCALL_WEB_STREAMS and AUTOCALL_WEB_PAGE_THREADS
(below), AUTOCALL_LOG_FORMAT (the logs' format, as for every process).

Threads (`gthread`), and two kinds of them. Each open operator console holds a Server-Sent
Events stream, and a stream holds a thread for its life (at most five minutes; then the
browser reconnects). So each worker has `AUTOCALL_WEB_STREAMS` threads for streams (2,000)
and `AUTOCALL_WEB_PAGE_THREADS` more for everything else (50); the portal refuses a stream
beyond AUTOCALL_WEB_STREAMS with 503 (webapp/streams.py), so open consoles never take the
threads a sign-in page needs (600 shared threads once held 1,200 streams of one operator
and other tenants' pages timed out). A waiting stream is cheap: a thread's stack and a
condition variable, no Redis connection (one reader thread per process waits in Redis for
every stream and hands the events out) and no database connection. bench/consoles.py opens
2,000 consoles on one worker and times the sign-in page beside them (docs/portal.md).

Chosen over: gevent or eventlet (monkey-patching psycopg, redis-py and SQLite, and any call
that blocks stalls every request of the process); handing the stream's socket to an event
loop (gunicorn owns the connection and shuts it down when the response returns); long
polling (a waiting poll holds a thread just the same, and a short one multiplies requests:
2,000 consoles asking every second are 2,000 requests a second).
"""

import os

from webapp.config import Config

bind = os.environ.get("AUTOCALL_WEB_BIND", "127.0.0.1:5000")
workers = int(os.environ.get("AUTOCALL_WEB_WORKERS", "2"))
worker_class = "gthread"
#: The same variable, read by the portal, caps the streams of a worker.
stream_threads = int(os.environ.get("AUTOCALL_WEB_STREAMS", Config.web_streams))
threads = stream_threads + int(os.environ.get("AUTOCALL_WEB_PAGE_THREADS", "50"))
#: Connections a worker takes: every thread busy, plus idle keep-alive connections.
worker_connections = threads + 500
graceful_timeout = 20
accesslog = "-"


def post_worker_init(worker):
    """The portal's logs in the deployment's format (AUTOCALL_LOG_FORMAT)."""
    from engine import logs
    from webapp.config import Config

    logs.configure(Config.from_env().logs)
