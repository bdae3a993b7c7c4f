"""gunicorn settings for the portal, for `gunicorn -c deploy/gunicorn.conf.py`: they live in
the package, webapp/gunicorn_conf.py (where their variables are described), so that an
installed package carries them; this file hands them to gunicorn."""

from webapp.gunicorn_conf import *  # noqa: F403
