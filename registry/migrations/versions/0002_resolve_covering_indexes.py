"""covering indexes for resolve: ix_artifacts_resolve, ix_artifact_names_name_created_hash

Revision ID: 0002
Revises: 0001
Resolve reads a name's candidates newest first (artifact_names) joined to a few artifacts columns. With these
indexes both sides are index-only (SQLite: COVERING INDEX; PostgreSQL: Index Only Scan), never touching the
wide artifacts rows. ix_artifact_names_name_created is a prefix of the new names index and is dropped.
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0002"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

RESOLVE_COLUMNS = [
    "hash",
    "kind",
    "name",
    "size",
    "build_key",
    "created_at",
    "gpu_arch",
    "trtllm_version",
    "cuda_version",
    "tp",
    "pp",
    "driver_version",
    "gpu_name",
]


def upgrade() -> None:
    with op.batch_alter_table("artifacts", schema=None) as batch_op:
        batch_op.create_index("ix_artifacts_resolve", RESOLVE_COLUMNS, unique=False)
    with op.batch_alter_table("artifact_names", schema=None) as batch_op:
        batch_op.create_index(
            "ix_artifact_names_name_created_hash", ["name", "created_at", "hash"], unique=False
        )
        batch_op.drop_index("ix_artifact_names_name_created")


def downgrade() -> None:
    with op.batch_alter_table("artifact_names", schema=None) as batch_op:
        batch_op.create_index("ix_artifact_names_name_created", ["name", "created_at"], unique=False)
        batch_op.drop_index("ix_artifact_names_name_created_hash")
    with op.batch_alter_table("artifacts", schema=None) as batch_op:
        batch_op.drop_index("ix_artifacts_resolve")
