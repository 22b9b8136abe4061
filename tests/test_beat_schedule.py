"""Every periodic job can actually be sent: Celery refuses to send a task whose soft time limit
(its own, or CELERY_TASK_SOFT_TIME_LIMIT) exceeds its hard one, and beat then only logs an error
each time the entry is due, so the job silently never runs."""

from config.celery import app


def test_every_beat_entry_names_a_task_with_consistent_time_limits():
    app.loader.import_default_modules()
    problems = []
    for name, entry in app.conf.beat_schedule.items():
        task = app.tasks.get(entry["task"])
        if task is None:
            problems.append(f"{name}: no task {entry['task']}")
            continue
        if task.soft_time_limit and task.time_limit and task.soft_time_limit > task.time_limit:
            problems.append(f"{name}: soft {task.soft_time_limit} s > hard {task.time_limit} s")
    assert problems == []


def test_every_project_task_can_be_sent():
    app.loader.import_default_modules()
    ours = [t for name, t in app.tasks.items() if name.startswith("apps.")]
    assert len(ours) > 10
    bad = [t.name for t in ours if t.soft_time_limit and t.time_limit
           and t.soft_time_limit > t.time_limit]  # fmt: skip
    assert bad == []
