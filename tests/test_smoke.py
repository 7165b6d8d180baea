"""The test settings themselves: the queue runs synchronously."""

from django.conf import settings


def test_queue_runs_synchronously_in_tests():
    assert settings.Q_CLUSTER["sync"] is True
