"""Business logic shared by views, jobs and the engine. No Flask request objects here."""
