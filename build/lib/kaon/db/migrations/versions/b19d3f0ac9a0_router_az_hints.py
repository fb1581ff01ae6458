"""router az hints: availability_zone_hints of routers

Revision ID: b19d3f0ac9a0
Revises: b98553edfb9d
Create Date: 2026-11-21 06:40:30.410628
"""

import sqlalchemy as sa
from alembic import op

revision = 'b19d3f0ac9a0'
down_revision = 'b98553edfb9d'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'router_az_hints',
        sa.Column('router_id', sa.String(length=36), nullable=False),
        sa.Column('hints', sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(['router_id'], ['routers.id'], name=op.f('fk_router_az_hints_router_id_routers'),
                                ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('router_id', name=op.f('pk_router_az_hints')),
    )


def downgrade() -> None:
    op.drop_table('router_az_hints')
