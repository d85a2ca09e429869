"""RQ side of Orion: jobs (thin wrappers over ``app.services``) and the ``rq cron`` config.

The database is the source of truth and Redis only carries messages: every job reads what
to do from the database, is idempotent and safe to run twice or at once. The web app never
imports this package; ``orion worker`` and ``orion cron`` start ``rq worker`` and
``rq cron`` processes that import it by dotted path.
"""
