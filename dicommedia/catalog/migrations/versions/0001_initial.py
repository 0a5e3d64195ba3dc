"""The first catalog: volumes, studies, series.

Revision ID: 0001
Revises:
Create Date: 2026-12-04
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Create the three tables."""
    op.create_table(
        "volume",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("path", sa.String(4096), nullable=False, unique=True),
        sa.Column("fileset_id", sa.String(16), nullable=False, index=True),
        sa.Column("label", sa.String(256), nullable=False),
        sa.Column("media", sa.String(32), nullable=False),
        sa.Column("profile", sa.String(64), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=True),
        sa.Column("bytes", sa.Integer, nullable=False),
        sa.Column("node", sa.String(256), nullable=False),
        sa.Column("created", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "study",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("volume_id", sa.Integer, sa.ForeignKey("volume.id", ondelete="CASCADE"), nullable=False, index=True),
        sa.Column("study_instance_uid", sa.String(64), nullable=False, index=True),
        sa.Column("patient_id", sa.String(64), nullable=False, index=True),
        sa.Column("patient_name", sa.String(324), nullable=False),
        sa.Column("accession_number", sa.String(16), nullable=False, index=True),
        sa.Column("study_date", sa.String(8), nullable=False),
        sa.Column("instances", sa.Integer, nullable=False),
    )
    op.create_table(
        "series",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("study_id", sa.Integer, sa.ForeignKey("study.id", ondelete="CASCADE"), nullable=False, index=True),
        sa.Column("series_instance_uid", sa.String(64), nullable=False),
        sa.Column("modality", sa.String(16), nullable=False),
        sa.Column("instances", sa.Integer, nullable=False),
    )


def downgrade() -> None:
    """Drop them."""
    op.drop_table("series")
    op.drop_table("study")
    op.drop_table("volume")
