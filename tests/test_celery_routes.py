"""Every Celery route reaches real tasks: a route whose pattern matches no registered task is
dead configuration (its queue never receives anything)."""

from fnmatch import fnmatch

from django.conf import settings

from config.celery import app


def test_every_task_route_matches_a_registered_task():
    app.loader.import_default_modules()
    names = list(app.tasks)
    dead = [
        pattern
        for pattern in settings.CELERY_TASK_ROUTES
        if not any(fnmatch(name, pattern) for name in names)
    ]
    assert dead == []
