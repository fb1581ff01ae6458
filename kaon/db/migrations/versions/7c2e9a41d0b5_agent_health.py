"""agent health: what an agent's last state report said about itself

Revision ID: 7c2e9a41d0b5
Revises: d6833a2bbff3
Create Date: 2026-12-07 07:55:00
"""

import sqlalchemy as sa
from alembic import op

revision = '7c2e9a41d0b5'
down_revision = 'd6833a2bbff3'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column('agents', sa.Column('health', sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('agents') as batch:
        batch.drop_column('health')
