"""Jobs: the queue (Huey on Redis), its tasks, the dispatcher services call after commit, and
the worker (consumer, janitor, heartbeat).

Nothing here is built at import. The composition root (``paygate.wiring``) builds one
:class:`paygate.jobs.queue.Queue` per process from ``Settings``; tasks carry ids only, and the
record is the database.
"""
