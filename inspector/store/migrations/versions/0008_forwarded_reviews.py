"""how far a station's reviews have been forwarded

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-07 13:00:00.000000

"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision: str = '0008'
down_revision: Union[str, Sequence[str], None] = '0007'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    """Upgrade schema."""
    with op.batch_alter_table('forward_marks', schema=None) as batch_op:
        batch_op.add_column(sa.Column('last_review_id', sa.Integer(), server_default=sa.text('0'), nullable=False))


def downgrade() -> None:
    """Downgrade schema."""
    with op.batch_alter_table('forward_marks', schema=None) as batch_op:
        batch_op.drop_column('last_review_id')
