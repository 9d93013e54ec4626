"""stations, and what a station has forwarded to a central database

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-07 09:00:00.000000

"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision: str = '0004'
down_revision: Union[str, Sequence[str], None] = '0003'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    """Upgrade schema."""
    op.create_table(
        'stations',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('name', sa.String(length=200), nullable=False),
        sa.Column('host', sa.String(length=255), nullable=False),
        sa.Column('inspector_version', sa.String(length=40), nullable=False),
        sa.Column('first_seen', sa.DateTime(timezone=True), nullable=False),
        sa.Column('last_seen', sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('name'),
    )
    op.create_table(
        'forward_marks',
        sa.Column('central', sa.String(length=64), nullable=False),
        sa.Column('last_inspection_id', sa.Integer(), nullable=False),
        sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('central'),
    )
    op.create_table(
        'forwarded_runs',
        sa.Column('central', sa.String(length=64), nullable=False),
        sa.Column('local_run_id', sa.Integer(), nullable=False),
        sa.Column('central_run_id', sa.Integer(), nullable=False),
        sa.Column('status', sa.String(length=20), nullable=False),
        sa.ForeignKeyConstraint(['local_run_id'], ['runs.id'], ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('central', 'local_run_id'),
    )
    # Stations that wrote before they were registered.
    connection = op.get_bind()
    names = [name for (name,) in connection.execute(sa.text("SELECT DISTINCT station FROM runs"))]
    if names:
        connection.execute(
            sa.text(
                "INSERT INTO stations (name, host, inspector_version, first_seen, last_seen) "
                "SELECT station, '', '', MIN(started_at), MAX(started_at) FROM runs WHERE station = :name "
                "GROUP BY station"
            ),
            [{'name': name} for name in names],
        )


def downgrade() -> None:
    """Downgrade schema."""
    op.drop_table('forwarded_runs')
    op.drop_table('forward_marks')
    op.drop_table('stations')
