"""initial schema: artifacts, artifact_names, tags, tag_history, leases, pushes

Revision ID: 0001
Revises:
First migration: creates the whole catalog schema.

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

# revision identifiers, used by Alembic.
revision: str = "0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Upgrade schema."""

    op.create_table(
        "artifacts",
        sa.Column("hash", sa.String(length=71), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("build_key", sa.String(length=200), nullable=True),
        sa.Column("recipe_digest", sa.String(length=200), nullable=True),
        sa.Column("model_source", sa.String(length=500), nullable=True),
        sa.Column("model_revision", sa.String(length=200), nullable=True),
        sa.Column("dtype", sa.String(length=32), nullable=True),
        sa.Column("quant_format", sa.String(length=64), nullable=True),
        sa.Column("kv_cache_quant", sa.String(length=64), nullable=True),
        sa.Column("tp", sa.Integer(), nullable=True),
        sa.Column("pp", sa.Integer(), nullable=True),
        sa.Column("max_batch_size", sa.Integer(), nullable=True),
        sa.Column("max_input_len", sa.Integer(), nullable=True),
        sa.Column("max_seq_len", sa.Integer(), nullable=True),
        sa.Column("max_num_tokens", sa.Integer(), nullable=True),
        sa.Column("max_beam_width", sa.Integer(), nullable=True),
        sa.Column("gpu_arch", sa.String(length=32), nullable=True),
        sa.Column("gpu_name", sa.String(length=200), nullable=True),
        sa.Column("driver_version", sa.String(length=64), nullable=True),
        sa.Column("cuda_version", sa.String(length=64), nullable=True),
        sa.Column("trtllm_version", sa.String(length=64), nullable=True),
        sa.Column("tensorrt_version", sa.String(length=64), nullable=True),
        sa.Column("modelopt_version", sa.String(length=64), nullable=True),
        sa.Column("toolchain_image", sa.String(length=500), nullable=True),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("file_count", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("host", sa.String(length=255), nullable=True),
        sa.Column("build_seconds", sa.Float(), nullable=True),
        sa.Column(
            "verification",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=True,
        ),
        sa.Column(
            "manifest",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column(
            "provenance",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=True,
        ),
        sa.PrimaryKeyConstraint("hash"),
    )
    with op.batch_alter_table("artifacts", schema=None) as batch_op:
        batch_op.create_index("ix_artifacts_arch_trtllm", ["gpu_arch", "trtllm_version"], unique=False)
        batch_op.create_index("ix_artifacts_build_key_kind", ["build_key", "kind"], unique=False)
        batch_op.create_index("ix_artifacts_created_at", ["created_at"], unique=False)
        batch_op.create_index("ix_artifacts_name_created", ["name", "created_at"], unique=False)

    op.create_table(
        "leases",
        sa.Column("build_key", sa.String(length=200), nullable=False),
        sa.Column("holder", sa.String(length=255), nullable=False),
        sa.Column("acquired_at", sa.Float(), nullable=False),
        sa.Column("expires_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("build_key"),
    )
    op.create_table(
        "pushes",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("hash", sa.String(length=71), nullable=False),
        sa.Column(
            "blobs",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("started_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_table(
        "tag_history",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("tag", sa.String(length=128), nullable=False),
        sa.Column("hash", sa.String(length=71), nullable=False),
        sa.Column("previous_hash", sa.String(length=71), nullable=True),
        sa.Column("changed_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("tag_history", schema=None) as batch_op:
        batch_op.create_index("ix_tag_history_name_tag", ["name", "tag", "changed_at"], unique=False)

    op.create_table(
        "artifact_names",
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("hash", sa.String(length=71), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["hash"], ["artifacts.hash"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("name", "hash"),
    )
    with op.batch_alter_table("artifact_names", schema=None) as batch_op:
        batch_op.create_index("ix_artifact_names_hash", ["hash"], unique=False)
        batch_op.create_index("ix_artifact_names_name_created", ["name", "created_at"], unique=False)

    op.create_table(
        "tags",
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("tag", sa.String(length=128), nullable=False),
        sa.Column("hash", sa.String(length=71), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["hash"],
            ["artifacts.hash"],
        ),
        sa.PrimaryKeyConstraint("name", "tag"),
    )
    with op.batch_alter_table("tags", schema=None) as batch_op:
        batch_op.create_index("ix_tags_hash", ["hash"], unique=False)


def downgrade() -> None:
    """Downgrade schema."""

    with op.batch_alter_table("tags", schema=None) as batch_op:
        batch_op.drop_index("ix_tags_hash")

    op.drop_table("tags")
    with op.batch_alter_table("artifact_names", schema=None) as batch_op:
        batch_op.drop_index("ix_artifact_names_name_created")
        batch_op.drop_index("ix_artifact_names_hash")

    op.drop_table("artifact_names")
    with op.batch_alter_table("tag_history", schema=None) as batch_op:
        batch_op.drop_index("ix_tag_history_name_tag")

    op.drop_table("tag_history")
    op.drop_table("pushes")
    op.drop_table("leases")
    with op.batch_alter_table("artifacts", schema=None) as batch_op:
        batch_op.drop_index("ix_artifacts_name_created")
        batch_op.drop_index("ix_artifacts_created_at")
        batch_op.drop_index("ix_artifacts_build_key_kind")
        batch_op.drop_index("ix_artifacts_arch_trtllm")

    op.drop_table("artifacts")
