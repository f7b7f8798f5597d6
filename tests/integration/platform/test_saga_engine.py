"""The saga engine and `after_commit`, on both databases: leases, lost leases, failures that are recorded."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy import update

from bookwell.platform.db import Database
from bookwell.platform.db import SqlUnitOfWork
from bookwell.platform.workflow.saga import Saga
from bookwell.platform.workflow.saga import SagaLog
from bookwell.platform.workflow.saga import Sagas
from bookwell.platform.workflow.saga import saga_steps
from bookwell.platform.workflow.saga import sagas
from bookwell.platform.workflow.saga import start_saga


def started(database: Database, sagas_: Sagas, steps: dict[str, Any]) -> str:
    for name, run in steps.items():
        sagas_.define("test", name, run)
    with database.engine.begin() as connection:
        saga_id = start_saga(connection, "test", "subject_1", next(iter(steps)))
    assert saga_id is not None
    return saga_id


def test_a_step_that_outlived_its_lease_writes_nothing(database: Database) -> None:
    engine = Sagas(database, lease_s=60)

    def slow(saga: Saga, record: SagaLog) -> None:
        with database.engine.begin() as connection:  # another worker took the saga meanwhile
            connection.execute(update(sagas).values(locked_until=None))
        with SqlUnitOfWork(database, shared=True) as work:
            record.step(work, "done", next_step=None)
            work.commit()

    saga_id = started(database, engine, {"only": slow})
    engine.advance(saga_id)
    with database.engine.connect() as connection:
        assert connection.execute(select(sagas.c.status)).scalar_one() == "running"
        assert connection.execute(select(saga_steps.c.outcome)).scalars().all() == ["started"]


def test_a_step_that_raises_is_recorded_and_retried_not_left_to_spin(database: Database) -> None:
    engine = Sagas(database, backoff_base_s=0.001, backoff_cap_s=0.001)

    def broken(_saga: Saga, _record: SagaLog) -> None:
        raise KeyError("no such thing")

    saga_id = started(database, engine, {"only": broken})
    engine.advance(saga_id)
    with database.engine.connect() as connection:
        row = connection.execute(select(sagas.c.attempts, sagas.c.locked_until)).one()
        outcomes = connection.execute(select(saga_steps.c.outcome, saga_steps.c.detail)).all()
    assert (row.attempts, row.locked_until) == (1, None)
    assert outcomes[-1].outcome == "retry"
    assert "KeyError" in outcomes[-1].detail["reason"]


def test_after_commit_callbacks_of_a_rolled_back_unit_of_work_never_run(database: Database) -> None:
    fired: list[str] = []
    with database.request_transaction() as connection:
        with pytest.raises(RuntimeError), SqlUnitOfWork(database) as failing:
            failing.after_commit(lambda: fired.append("rolled back"))
            raise RuntimeError("the unit of work fails")
        with SqlUnitOfWork(database) as succeeding:
            succeeding.after_commit(lambda: fired.append("committed"))
            succeeding.commit()
        assert fired == [], "nothing runs before the enclosing transaction commits"
        connection.commit()
    assert fired == ["committed"]
