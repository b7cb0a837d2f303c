"""Django's MySQL/MariaDB backend, beginning transactions with one statement.

Django enters `transaction.atomic()` on MySQL by turning autocommit off and leaves it
by committing and turning autocommit back on: three round trips (SET autocommit=0,
COMMIT, SET autocommit=1) around every transaction. Here the connection stays in
autocommit and a transaction is begun explicitly, as Django's SQLite backend does:
START TRANSACTION, then COMMIT (or ROLLBACK). Autocommit turned back on is then already
on, which mysqlclient knows from the server's status flags and does not send. Every
hold is one transaction, so on a flash sale this is one statement fewer per hold.

Code that turns autocommit off itself (`transaction.set_autocommit(False)`) still gets
a real SET autocommit=0: only `atomic()` asks for a transaction begun this way.

One difference from Django's own backend: once the server ends the transaction by itself
(a deadlock, which InnoDB answers by rolling the whole transaction back, or a statement
that commits implicitly, such as DDL), whatever the same `atomic()` block runs next is
committed statement by statement instead of waiting for the block's end. Django already
forbids catching database errors inside `atomic()` (use a nested block), and the project
retries deadlocks outside it (reservations.services._retry_on_deadlock); migrations with
DDL run in their own transactions.
"""

from django.db.backends.mysql import base
from django.db.backends.utils import debug_transaction


class DatabaseWrapper(base.DatabaseWrapper):
    def _start_transaction_under_autocommit(self):
        # Called by set_autocommit(False, force_begin_transaction_with_broken_autocommit=True),
        # which is how Atomic.__enter__ opens the outermost block. Logged as "BEGIN",
        # like the SET autocommit=0 it replaces, so query counts stay as they were.
        with debug_transaction(self, "BEGIN"), self.wrap_database_errors:
            self.connection.query("START TRANSACTION")
