"""Where a run's steps execute: in the run's own process, or as Celery tasks on worker hosts.

One machine (the default): a run's steps share its process, one after another (each layer needs
the one before), since a process per step costs ~3.5 s of start-up each.

The cluster profile (``PLATFORM_CELERY_BROKER=redis://:<password>@<host>:<port>/<db>``): every
step is a Celery task that any worker host listening on the broker picks up, so the daemon and the
webserver stay on the control host while the work spreads. Workers run this module's ``app``:

    celery -A platform_assets.execution worker -Q dagster -c 1 -n worker@%h

A step's task is acknowledged only once the step has finished (``task_acks_late``). If its worker
process dies, the task goes back to the queue (``task_reject_on_worker_lost``); if the whole host
dies, nobody is left to say so, and Redis hands the unacknowledged task to another worker once it
has been out for ``PLATFORM_CELERY_REDELIVER_SECONDS``. The run waits for the same task meanwhile,
so it finishes on the other host without a retry. A step that runs longer than that is handed out
a second time while it still runs: keep the setting above the longest step (the loads and layers
write idempotently, so a second run of a step costs time, not data). See docs/production.md.
"""

import functools
import os

import dagster as dg

from platform_assets.settings import CELERY_BROKER_ENV, CELERY_REDELIVER_ENV


def celery_settings() -> dict:
    """The Celery settings of both sides: the run that sends the steps, the workers that take them."""
    from dagster_celery.defaults import broker_transport_options

    redeliver = float(os.environ.get(CELERY_REDELIVER_ENV, "3600"))
    return {
        "task_acks_late": True,
        "task_reject_on_worker_lost": True,
        "worker_prefetch_multiplier": 1,  # a worker holds only the task it is running
        "broker_connection_retry_on_startup": True,
        # a worker whose link to Redis is down when its step ends keeps the step's result and
        # tries again (backing off to 10 s) instead of reporting "No route to host" as the step's
        # failure once the link is back: the step's work is committed, its run must see it succeed
        "result_backend_always_retry": True,
        "result_backend_max_sleep_between_retries_ms": 10_000,
        "broker_transport_options": {
            **broker_transport_options,  # dagster-celery's retries of a send
            "visibility_timeout": redeliver,
            # look for abandoned tasks every tenth of that (Kombu's default: every 100 s)
            "unacked_restore_interval": max(1.0, min(redeliver / 10, 60.0)),
            "unacked_restore_throttle": 1,
        },
    }


def executor() -> dg.ExecutorDefinition:
    """The code location's executor, chosen by the environment of the process that loads it."""
    if not os.environ.get(CELERY_BROKER_ENV):
        return dg.in_process_executor
    from dagster_celery import celery_executor

    broker = {"env": CELERY_BROKER_ENV}  # read when the run starts: the password is never in run config
    return celery_executor.configured({"broker": broker, "backend": broker, "config_source": celery_settings()},
                                      name="celery_on_workers")


@functools.cache
def _worker_app():
    """The Celery app of a worker host: the broker from its environment, the task dagster-celery sends."""
    from dagster_celery.config import DEFAULT_CONFIG, dict_wrapper
    from dagster_celery.make_app import make_app
    from dagster_celery.tasks import create_task

    broker = os.environ.get(CELERY_BROKER_ENV)
    if not broker:
        raise RuntimeError(f"a worker needs {CELERY_BROKER_ENV}=redis://:<password>@<host>:<port>/<db>")
    settings = dict_wrapper({**DEFAULT_CONFIG, **celery_settings()})  # as the sending side builds its app
    worker_app = make_app({"broker": broker, "backend": broker, "config_source": settings})
    create_task(worker_app)
    return worker_app


def __getattr__(name: str):
    """``app`` is built on first use, so loading the code location never needs Celery installed."""
    if name == "app":
        return _worker_app()
    raise AttributeError(name)
