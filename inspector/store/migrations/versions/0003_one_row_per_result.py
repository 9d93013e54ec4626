"""one row per image, recipe and model, kept by the database

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-07 08:00:00.000000

Existing rows get their key where it is unambiguous: the first judged row of each image,
recipe and model, and the first ERROR row of each file content and name. Duplicates
stored before the rule keep no key (they stay, counted as they were).
"""
import hashlib
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision: str = '0003'
down_revision: Union[str, Sequence[str], None] = '0002'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def _error_key(sha: str, name: str) -> str:
    # As inspector.store.repository.result_key writes it for an ERROR.
    return f"{sha}/{hashlib.sha256(name.encode('utf-8', 'surrogateescape')).hexdigest()[:16]}"


def upgrade() -> None:
    """Upgrade schema."""
    with op.batch_alter_table('inspections', schema=None) as batch_op:
        batch_op.add_column(sa.Column('result_key', sa.String(length=120), nullable=True))
    connection = op.get_bind()
    page = sa.text(
        "SELECT id, image_sha256, image_path, verdict, recipe_sha256, model_sha256 FROM inspections "
        "WHERE image_sha256 IS NOT NULL AND id > :last ORDER BY id LIMIT 5000"
    )
    taken = set()  # hashes, not the strings: a million rows stay a few tens of MB
    last = 0
    while rows := connection.execute(page, {'last': last}).fetchall():
        keys = []
        for row_id, sha, path, verdict, recipe, model in rows:
            key = _error_key(sha, path) if verdict == 'ERROR' else sha
            if hash((key, recipe, model)) not in taken:
                taken.add(hash((key, recipe, model)))
                keys.append({'id': row_id, 'key': key})
        if keys:
            connection.execute(sa.text("UPDATE inspections SET result_key = :key WHERE id = :id"), keys)
        last = rows[-1][0]
    with op.batch_alter_table('inspections', schema=None) as batch_op:
        batch_op.create_index('uq_inspections_result', ['result_key', 'recipe_sha256', 'model_sha256'], unique=True)


def downgrade() -> None:
    """Downgrade schema."""
    with op.batch_alter_table('inspections', schema=None) as batch_op:
        batch_op.drop_index('uq_inspections_result')
        batch_op.drop_column('result_key')
