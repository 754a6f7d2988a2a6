"""Where steps run: the executor follows PLATFORM_CELERY_BROKER, and the broker's password stays in the environment."""

import dagster as dg
import pytest

from platform_assets import execution

SECRET_URL = "redis://:s3cret-password@10.0.0.1:6379/0"


def test_without_a_broker_a_runs_steps_share_its_process(monkeypatch):
    monkeypatch.delenv(execution.CELERY_BROKER_ENV, raising=False)
    assert execution.executor() is dg.in_process_executor


def test_with_a_broker_steps_go_to_celery_and_the_url_is_read_when_a_run_starts(monkeypatch):
    monkeypatch.setenv(execution.CELERY_BROKER_ENV, SECRET_URL)
    chosen = execution.executor()
    assert chosen.name == "celery_on_workers"
    # the definition names the variable, not its value: a run resolves it in its own environment
    monkeypatch.setenv(execution.CELERY_BROKER_ENV, "redis://:rotated-password@10.0.0.1:6379/0")
    resolved = chosen.apply_config_mapping({}).value["config"]
    assert resolved["broker"] == resolved["backend"] == "redis://:rotated-password@10.0.0.1:6379/0"
    assert resolved["config_source"]["task_acks_late"] and resolved["config_source"]["task_reject_on_worker_lost"]


def test_a_worker_without_a_broker_is_refused_with_what_to_set(monkeypatch):
    monkeypatch.delenv(execution.CELERY_BROKER_ENV, raising=False)
    with pytest.raises(RuntimeError, match="PLATFORM_CELERY_BROKER=redis://"):
        execution.app  # noqa: B018


def test_a_worker_app_takes_the_task_runs_send(monkeypatch):
    monkeypatch.setenv(execution.CELERY_BROKER_ENV, SECRET_URL)
    app = execution.app
    assert "execute_plan" in app.tasks
    assert app.conf.broker_url == SECRET_URL and app.conf.task_acks_late and app.conf.task_reject_on_worker_lost
