"""a small picture of each defect, kept with its row

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-07 11:00:00.000000

"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision: str = '0006'
down_revision: Union[str, Sequence[str], None] = '0005'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    """Upgrade schema."""
    op.create_table(
        'defect_pictures',
        sa.Column('defect_id', sa.Integer(), nullable=False),
        sa.Column('jpeg', sa.LargeBinary(), nullable=False),
        sa.ForeignKeyConstraint(['defect_id'], ['defects.id'], ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('defect_id'),
    )


def downgrade() -> None:
    """Downgrade schema."""
    op.drop_table('defect_pictures')
