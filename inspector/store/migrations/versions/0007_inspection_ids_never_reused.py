"""inspection ids are never reused (SQLite AUTOINCREMENT)

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-07 12:00:00.000000

A station forwards its results to a central database in id order and remembers the last
id sent; SQLite gives a deleted largest id to the next row unless the table is declared
AUTOINCREMENT. The table is rebuilt with it (its rows and ids kept). PostgreSQL's
sequences never reuse ids: nothing to do there.
"""
from typing import Sequence, Union

from alembic import op


# revision identifiers, used by Alembic.
revision: str = '0007'
down_revision: Union[str, Sequence[str], None] = '0006'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    """Upgrade schema."""
    if op.get_bind().dialect.name != 'sqlite':
        return
    with op.batch_alter_table('inspections', recreate='always', table_kwargs={'sqlite_autoincrement': True}):
        pass


def downgrade() -> None:
    """Downgrade schema."""
    if op.get_bind().dialect.name != 'sqlite':
        return
    with op.batch_alter_table('inspections', recreate='always', table_kwargs={'sqlite_autoincrement': False}):
        pass
