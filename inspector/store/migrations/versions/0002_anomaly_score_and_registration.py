"""anomaly score and registration of each inspection

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-07 06:00:00.000000

"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision: str = '0002'
down_revision: Union[str, Sequence[str], None] = '0001'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    """Upgrade schema."""
    with op.batch_alter_table('inspections', schema=None) as batch_op:
        batch_op.add_column(sa.Column('anomaly_score', sa.Float(), nullable=True))
        batch_op.add_column(sa.Column('registration', sa.String(length=40), nullable=True))
        batch_op.create_index(batch_op.f('ix_inspections_anomaly_score'), ['anomaly_score'], unique=False)


def downgrade() -> None:
    """Downgrade schema."""
    with op.batch_alter_table('inspections', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_inspections_anomaly_score'))
        batch_op.drop_column('registration')
        batch_op.drop_column('anomaly_score')
