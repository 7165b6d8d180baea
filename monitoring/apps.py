"""App configuration for monitoring: connects the django-q2 task hooks."""

from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class MonitoringConfig(AppConfig):
    name = "monitoring"
    verbose_name = _("Monitoring")

    def ready(self) -> None:
        from django_q.signals import post_execute_in_worker, pre_execute

        from monitoring import checks, task_signals  # noqa: F401 - checks register themselves

        pre_execute.connect(task_signals.on_pre_execute, dispatch_uid="monitoring-pre-execute")
        post_execute_in_worker.connect(task_signals.on_post_execute, dispatch_uid="monitoring-post-execute")
