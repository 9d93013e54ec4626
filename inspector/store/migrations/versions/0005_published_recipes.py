"""recipes published for stations, and the version a run used

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-07 10:00:00.000000

"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision: str = '0005'
down_revision: Union[str, Sequence[str], None] = '0004'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    """Upgrade schema."""
    op.create_table(
        'published_recipes',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('product', sa.String(length=200), nullable=False),
        sa.Column('version', sa.Integer(), nullable=False),
        sa.Column('recipe_sha256', sa.String(length=64), nullable=False),
        sa.Column('content', sa.Text(), nullable=False),
        sa.Column('published_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('published_by', sa.String(length=100), nullable=False),
        sa.Column('note', sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('product', 'version', name='uq_published_recipes_version'),
    )
    with op.batch_alter_table('published_recipes', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_published_recipes_product'), ['product'], unique=False)
        batch_op.create_index(batch_op.f('ix_published_recipes_recipe_sha256'), ['recipe_sha256'], unique=False)
    op.create_table(
        'published_files',
        sa.Column('published_id', sa.Integer(), nullable=False),
        sa.Column('name', sa.String(length=255), nullable=False),
        sa.Column('sha256', sa.String(length=64), nullable=False),
        sa.Column('content', sa.LargeBinary(), nullable=False),
        sa.ForeignKeyConstraint(['published_id'], ['published_recipes.id'], ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('published_id', 'name'),
    )
    with op.batch_alter_table('runs', schema=None) as batch_op:
        batch_op.add_column(sa.Column('recipe_version', sa.Integer(), nullable=True))


def downgrade() -> None:
    """Downgrade schema."""
    with op.batch_alter_table('runs', schema=None) as batch_op:
        batch_op.drop_column('recipe_version')
    op.drop_table('published_files')
    op.drop_table('published_recipes')
