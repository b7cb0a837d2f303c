"""The MariaDB backend begins a transaction with one statement and keeps Django's semantics.

The semantics are checked on both databases (SQLite runs Django's own backend, which
begins transactions the same way); the statements sent to the server are counted in CI's
MariaDB leg.
"""

import pytest
from django.db import connection, connections, transaction
from django.test.utils import CaptureQueriesContext

from accounts.models import User

pytestmark = pytest.mark.django_db(transaction=True)


def on_mariadb() -> bool:
    return connection.vendor == "mysql"


def statements_sent() -> int:
    """Statements this connection has sent the server (the counter's own read excluded)."""
    with connection.cursor() as cursor:
        cursor.execute("SHOW SESSION STATUS LIKE 'Questions'")
        return int(cursor.fetchone()[1])


def visible_elsewhere(email: str) -> bool:
    """Whether another connection (another request, say) can see the user yet."""
    other = connections.create_connection("default")
    try:
        with other.cursor() as cursor:
            cursor.execute(f"SELECT COUNT(*) FROM {User._meta.db_table} WHERE email = %s", [email])
            return cursor.fetchone()[0] == 1
    finally:
        other.close()


def test_the_project_backend_is_the_one_configured_for_mariadb():
    engine = connection.settings_dict["ENGINE"]
    assert engine == "ticketing.mysql" or "sqlite" in engine


def test_an_atomic_block_costs_its_statements_plus_begin_and_commit():
    User.objects.filter(email="warm@example.com").exists()  # connected, health-checked
    if not on_mariadb():
        with CaptureQueriesContext(connection) as queries, transaction.atomic():
            User.objects.create(email="a@example.com", name="A")
        assert [q["sql"].split()[0] for q in queries] == ["BEGIN", "INSERT", "COMMIT"]
        return
    before = statements_sent()
    with transaction.atomic():
        User.objects.create(email="a@example.com", name="A")
    sent = statements_sent() - before - 1  # the counter's own SHOW

    # START TRANSACTION, INSERT, COMMIT: no SET autocommit=0 before, nor =1 after.
    assert sent == 3
    assert connection.get_autocommit() and connection.connection.get_autocommit()


def test_work_is_invisible_to_others_until_commit_and_gone_after_rollback():
    with transaction.atomic():
        User.objects.create(email="kept@example.com", name="Kept")
        assert not connection.get_autocommit() and connection.in_atomic_block
        assert not visible_elsewhere("kept@example.com")
    assert visible_elsewhere("kept@example.com")

    with pytest.raises(RuntimeError), transaction.atomic():
        User.objects.create(email="dropped@example.com", name="Dropped")
        raise RuntimeError("the request failed after its write")
    assert not User.objects.filter(email="dropped@example.com").exists()
    assert not visible_elsewhere("dropped@example.com")


def test_savepoints_and_on_commit_behave_as_in_django():
    ran = []
    with transaction.atomic():
        transaction.on_commit(lambda: ran.append("outer"))
        try:
            with transaction.atomic():
                User.objects.create(email="inner@example.com", name="Inner")
                transaction.on_commit(lambda: ran.append("inner"))
                raise ValueError
        except ValueError:
            pass
        User.objects.create(email="outer@example.com", name="Outer")
        assert ran == []

    assert ran == ["outer"]  # the rolled-back savepoint's hook is dropped, as Django does
    assert set(User.objects.values_list("email", flat=True)) == {"outer@example.com"}


def test_turning_autocommit_off_by_hand_still_turns_it_off_on_the_server():
    transaction.set_autocommit(False)
    try:
        if on_mariadb():
            assert not connection.connection.get_autocommit()
        User.objects.create(email="manual@example.com", name="Manual")
        assert not visible_elsewhere("manual@example.com")
        transaction.commit()
        assert visible_elsewhere("manual@example.com")
    finally:
        transaction.set_autocommit(True)
    if on_mariadb():
        assert connection.connection.get_autocommit()
