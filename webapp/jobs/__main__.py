"""`python -m webapp.jobs engines|default|webhooks|cron`: one worker process (worker.py)."""

import sys

from webapp.jobs.worker import main

sys.exit(main())
