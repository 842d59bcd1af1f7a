"""tag_history.hash nullable: an untag is recorded as a move to no artifact

Revision ID: 0003
Revises: 0002
``trtbuild untag NAME:TAG`` (and ``rm --force`` of a tagged artifact) removes the tag; the history keeps the
event with ``hash`` NULL and ``previous_hash`` the artifact it pointed to.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | Sequence[str] | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("tag_history", schema=None) as batch_op:
        batch_op.alter_column("hash", existing_type=sa.String(length=71), nullable=True)


def downgrade() -> None:
    op.execute("DELETE FROM tag_history WHERE hash IS NULL")
    with op.batch_alter_table("tag_history", schema=None) as batch_op:
        batch_op.alter_column("hash", existing_type=sa.String(length=71), nullable=False)
