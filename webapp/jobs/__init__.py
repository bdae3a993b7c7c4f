"""Background jobs: the RQ queues, the worker processes and everything they run.

This package is the one composition root of the worker processes: it reads the deployment's
configuration and hands the engine (`engine/`, which imports nothing of `webapp`) its
database store, its address rule and its queues.

- `queues`: the queue names, the portal's `queue()` and the `job_context()` jobs run in;
- `watched`: jobs a tenant's admin starts and watches (lead imports, connection checks);
- `engines`: the engine-host job `run_engine_host` and `ensure_hosts`, which enqueues hosts;
- `schedule`: the cron scheduler's registrations (ensure_hosts, the webhooks' sweep, the
  reports' roll-up);
- `worker`: the worker processes, `python -m webapp.jobs engines|default|webhooks|cron`
  (`autocall worker` starts them together: webapp/launcher.py).

Importing the package loads none of these: the portal that enqueues a job never loads the
engine host, the dialer or the SIP stack.
"""
