"""Where a run's steps execute: in the run's own process, or as Celery tasks on worker hosts.

One machine (the default): a run's steps share its process, one after another (each layer needs
the one before), since a process per step costs ~3.5 s of start-up each.

The cluster profile (``PLATFORM_CELERY_BROKER=redis://:<password>@<host>:<port>/<db>``): every
step is a Celery task that any worker host listening on the broker picks up, so the daemon and the
webserver stay on the control host while the work spreads. Workers run this module's ``app``:

    celery -A platform_assets.execution worker -Q dagster -c 1 -n worker@%h

A task is acknowledged only once its step has finished (``task_acks_late``), and a task whose
worker process died is handed back to the broker (``task_reject_on_worker_lost``); see
docs/production.md for what that means for a killed worker.
"""

import os

import dagster as dg

CELERY_BROKER_ENV = "PLATFORM_CELERY_BROKER"

# The same Celery settings on both sides: the run that sends the tasks, the workers that take them.
CELERY_SETTINGS = {
    "task_acks_late": True,
    "task_reject_on_worker_lost": True,
    "worker_prefetch_multiplier": 1,  # a worker holds only the task it is running
    "broker_connection_retry_on_startup": True,
}


def executor() -> dg.ExecutorDefinition:
    """The code location's executor, chosen by the environment of the process that loads it."""
    if not os.environ.get(CELERY_BROKER_ENV):
        return dg.in_process_executor
    from dagster_celery import celery_executor

    broker = {"env": CELERY_BROKER_ENV}  # read when the run starts: the password is never in run config
    return celery_executor.configured({"broker": broker, "backend": broker, "config_source": CELERY_SETTINGS},
                                      name="celery_on_workers")


def _worker_app():
    """The Celery app of a worker host: the broker from its environment, the task dagster-celery sends."""
    from dagster_celery.config import DEFAULT_CONFIG, dict_wrapper
    from dagster_celery.make_app import make_app
    from dagster_celery.tasks import create_task

    broker = os.environ.get(CELERY_BROKER_ENV)
    if not broker:
        raise RuntimeError(f"a worker needs {CELERY_BROKER_ENV}=redis://:<password>@<host>:<port>/<db>")
    settings = dict_wrapper({**DEFAULT_CONFIG, **CELERY_SETTINGS})  # as the sending side builds its app
    worker_app = make_app({"broker": broker, "backend": broker, "config_source": settings})
    create_task(worker_app)
    return worker_app


def __getattr__(name: str):
    """``app`` is built on first use, so loading the code location never needs Celery installed."""
    if name == "app":
        return _worker_app()
    raise AttributeError(name)
