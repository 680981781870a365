"""One gateway's queue, built from ``Settings``: the Huey instance, its tasks and a dispatcher.

The composition root (``paygate.wiring``) builds it once per process and binds the process's
services context to it, which is what the tasks run with. Tasks are registered under the same
names in every process (``paygate.jobs.tasks.<name>``), so what the API enqueues the worker runs.
"""

from __future__ import annotations

from huey import RedisHuey
from redis import ConnectionPool

from ..config import Settings
from ..services import Context
from .dispatcher import HueyDispatcher
from .messages import JsonTaskSerializer, RefusedMessage, plain_message
from .tasks import Tasks

DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"


class PaygateHuey(RedisHuey):
    """RedisHuey without task revocation, which Paygate never uses.

    A job that should not run finds its row no longer due and returns, so nothing is ever
    revoked. Huey would still spend two Redis round trips on every task for revocation (read
    the flags before running, clear the task's flag after), as much as the dequeue itself;
    this class skips them and refuses to revoke.
    """

    def is_revoked(self, task, timestamp=None, peek=True) -> bool:
        return False

    def delete(self, key):
        if isinstance(key, str) and key.startswith("r:"):
            return False  # a task's revocation flag: never set, so nothing to clear
        return super().delete(key)

    def revoke(self, *args, **kwargs):
        raise NotImplementedError("Paygate does not revoke tasks: the database says what is due")

    revoke_all = revoke_by_id = revoke

    # Up to this many messages per dequeue, merged into one task when they are all calls of a
    # task in ``batchable`` (which takes any number of ids): ``Queue`` sets both on the
    # deliveries' queue. 1: one message per dequeue, as Huey does.
    batch = 1
    batchable: frozenset[str] = frozenset()
    # The threads that consume this queue: a thread takes its share of the backlog (the
    # queue's length over the threads, at most ``batch``), so a short queue still spreads over
    # every thread (a slow endpoint or processor is not waited on in turn).
    consumers = 1

    def dequeue(self):
        """The next task, or None; a message that is not a Paygate task (``messages``) has been
        logged by the serializer and is dropped here, never run, and the worker reads on.

        With ``batch`` > 1, this thread's share of the messages waiting at the head of the
        queue (the queue's length over ``consumers``, at least one, at most ``batch``; one round
        trip) is taken together: calls of one batchable task become one call with
        all their ids, in queue order; anything else runs alone and the rest goes back to the
        head of the queue, in order. An empty queue is waited on as Huey does (BRPOP), so a
        lone message is not delayed."""
        if self.batch <= 1:
            try:
                return super().dequeue()
            except RefusedMessage:
                return None
        tasks = []
        raws = self._pop_several()
        for raw in raws:
            try:
                tasks.append(self.deserialize_task(raw))
            except RefusedMessage:
                continue
        if len(tasks) <= 1:
            return tasks[0] if tasks else None
        first = tasks[0]
        name = self._registry.task_to_string(type(first))
        if name not in self.batchable:
            self._put_back(tasks[1:])
            return first
        same = [t for t in tasks if type(t) is type(first)]
        others = [t for t in tasks if type(t) is not type(first)]
        if others:
            self._put_back(others)
        args = tuple(arg for task in same for arg in task.args)
        return self._registry.create_task(plain_message(first.id, name, args))

    def _put_back(self, tasks: list) -> None:
        """Return ``tasks`` to the head of the queue, the first of them to be taken next."""
        again = [self.serialize_task(task) for task in tasks]
        self.storage.conn.rpush(self.storage.queue_key, *reversed(again))

    def _pop_several(self) -> list[bytes]:
        raws = self._take_share(
            keys=[self.storage.queue_key], args=[self.batch, max(1, self.consumers)]
        )
        if raws:
            return raws
        one = self.storage.dequeue()  # waits (BRPOP) like Huey when nothing is there
        return [one] if one is not None else []

    @property
    def _take_share(self):
        script = self.__dict__.get("_share_script")
        if script is None:
            script = self.storage.conn.register_script(TAKE_SHARE)
            self.__dict__["_share_script"] = script
        return script


# One round trip: this thread's share of the queue, oldest first (RPOP one by one: any Redis).
TAKE_SHARE = """
local length = redis.call('LLEN', KEYS[1])
local take = math.min(tonumber(ARGV[1]), math.max(1, math.floor(length / tonumber(ARGV[2]))))
local taken = {}
for i = 1, take do
    local message = redis.call('RPOP', KEYS[1])
    if not message then break end
    taken[i] = message
end
return taken
"""


def new_huey(
    settings: Settings, name: str | None = None, connection_pool: ConnectionPool | None = None
) -> PaygateHuey:
    """The Huey instance for queue ``name`` (default ``settings.queue_name``) on
    ``settings.redis_url``, or on ``connection_pool`` when given (a process's queues share one);
    its messages are JSON data (``messages.JsonTaskSerializer``), never pickle."""
    huey = PaygateHuey(
        name or settings.queue_name,
        serializer=JsonTaskSerializer(known=lambda task: task in huey._registry._registry),
        connection_pool=connection_pool
        or ConnectionPool.from_url(
            settings.redis_url or DEFAULT_REDIS_URL,
            socket_connect_timeout=2,
            socket_timeout=5,
            health_check_interval=10,
        ),
        results=False,
        store_none=False,
        utc=True,
        blocking=True,
        read_timeout=1,
    )
    return huey


def webhook_queue_name(name: str) -> str:
    """The webhook deliveries' queue next to the queue ``name``."""
    return f"{name}-webhooks"


def _take_shares(huey: PaygateHuey, task, batch: int, consumers: int) -> None:
    """Let ``huey``'s threads take calls of ``task`` (which takes any number of ids) up to
    ``batch`` at a time, each its share of the queue over ``consumers`` threads."""
    huey.batch = batch
    huey.consumers = consumers
    huey.batchable = frozenset({huey._registry.task_to_string(task.task_class)})


class Queue:
    """Two Huey instances on one Redis, the tasks registered on them, and the dispatcher that
    feeds them.

    ``huey`` (``settings.queue_name``) carries payments, refunds, captures and releases;
    ``webhook_huey`` (``<queue_name>-webhooks``) carries webhook deliveries only, consumed by
    threads of their own (``paygate.jobs.webhook_consumer``), so a slow endpoint never holds a
    thread that settles payments. Redis keys next to Huey's are named after the queue:
    ``<name>:workers`` (the heartbeats) and ``<name>:marker`` (the janitor's "is this still the
    queue we fed?"; one marker covers both lists, which live and die with the same Redis).
    """

    def __init__(self, settings: Settings):
        self.name = settings.queue_name
        self.webhook_name = webhook_queue_name(self.name)
        self.heartbeat_ttl = settings.heartbeat_ttl_seconds
        self.heartbeat_key = f"{self.name}:workers"
        self.marker_key = f"{self.name}:marker"
        self.huey = new_huey(settings)
        # The same Redis: one connection pool for both.
        self.webhook_huey = new_huey(
            settings, self.webhook_name, self.huey.storage.conn.connection_pool
        )
        self._context: Context | None = None
        self.tasks = Tasks(self.huey, self.context, webhook_huey=self.webhook_huey)
        # A thread takes its share of a backlog several tasks at a time (one task call): a
        # webhook thread its deliveries, a task thread its payments (one claim each).
        _take_shares(
            self.webhook_huey,
            self.tasks.deliver_webhook,
            settings.webhook_batch,
            settings.webhook_concurrency,
        )
        _take_shares(
            self.huey,
            self.tasks.process_payment,
            settings.payment_batch,
            settings.worker_concurrency,
        )
        self.dispatcher = self.new_dispatcher()

    def bind(self, ctx: Context) -> None:
        """Run this process's tasks with ``ctx`` (the composition root calls this once)."""
        self._context = ctx

    def context(self) -> Context:
        if self._context is None:
            raise RuntimeError("the queue has no services context: build it with paygate.wiring")
        return self._context

    def new_dispatcher(self) -> HueyDispatcher:
        """A dispatcher of its own (the janitor's pauses after a failed enqueue are its own)."""
        return HueyDispatcher(
            self.huey,
            self.tasks,
            webhook_huey=self.webhook_huey,
            heartbeat_key=self.heartbeat_key,
            marker_key=self.marker_key,
            heartbeat_ttl=self.heartbeat_ttl,
        )

    def flush(self) -> None:
        """Empty both queues and forget the heartbeats (only this queue's keys, never the
        Redis)."""
        self.huey.flush()
        self.webhook_huey.flush()
        self.huey.storage.conn.delete(self.heartbeat_key)


def build_queue(settings: Settings) -> Queue:
    return Queue(settings)
