"""The dialing engine: SIP user agent, pacing, and the per-tenant dialer loop.

Nothing in this package imports Flask; the web portal talks to it through Redis
and the database (see docs/architecture.md).
"""
