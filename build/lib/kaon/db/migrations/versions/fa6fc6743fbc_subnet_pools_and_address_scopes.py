"""subnet pools and address scopes (with their RBAC tables)

Revision ID: fa6fc6743fbc
Revises: b19d3f0ac9a0
Create Date: 2026-11-21 06:43:01.541378
"""

import sqlalchemy as sa
from alembic import op

revision = 'fa6fc6743fbc'
down_revision = 'b19d3f0ac9a0'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('address_scopes',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('project_id', sa.String(length=255), nullable=False),
    sa.Column('name', sa.String(length=255), nullable=False),
    sa.Column('ip_version', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_address_scopes'))
    )
    with op.batch_alter_table('address_scopes', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_address_scopes_project_id'), ['project_id'], unique=False)

    op.create_table('addressscope_rbacs',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('project_id', sa.String(length=255), nullable=False),
    sa.Column('object_id', sa.String(length=36), nullable=False),
    sa.Column('action', sa.String(length=32), nullable=False),
    sa.Column('target_project', sa.String(length=255), nullable=False),
    sa.ForeignKeyConstraint(['object_id'], ['address_scopes.id'], name=op.f('fk_addressscope_rbacs_object_id_address_scopes'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_addressscope_rbacs')),
    sa.UniqueConstraint('object_id', 'action', 'target_project', name=op.f('uq_addressscope_rbacs_object_id_action_target_project'))
    )
    with op.batch_alter_table('addressscope_rbacs', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_addressscope_rbacs_project_id'), ['project_id'], unique=False)
        batch_op.create_index('ix_addressscope_rbacs_target', ['target_project', 'action'], unique=False)

    op.create_table('subnetpools',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('project_id', sa.String(length=255), nullable=False),
    sa.Column('name', sa.String(length=255), nullable=False),
    sa.Column('description', sa.String(length=255), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('updated_at', sa.DateTime(), nullable=False),
    sa.Column('revision_number', sa.BigInteger(), nullable=False),
    sa.Column('ip_version', sa.Integer(), nullable=False),
    sa.Column('prefixes', sa.JSON(), nullable=False),
    sa.Column('default_prefixlen', sa.Integer(), nullable=False),
    sa.Column('min_prefixlen', sa.Integer(), nullable=False),
    sa.Column('max_prefixlen', sa.Integer(), nullable=False),
    sa.Column('default_quota', sa.Integer(), nullable=True),
    sa.Column('is_default', sa.Boolean(), nullable=False),
    sa.Column('address_scope_id', sa.String(length=36), nullable=True),
    sa.ForeignKeyConstraint(['address_scope_id'], ['address_scopes.id'], name=op.f('fk_subnetpools_address_scope_id_address_scopes')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_subnetpools'))
    )
    with op.batch_alter_table('subnetpools', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_subnetpools_address_scope_id'), ['address_scope_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_subnetpools_project_id'), ['project_id'], unique=False)

    op.create_table('subnetpool_rbacs',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('project_id', sa.String(length=255), nullable=False),
    sa.Column('object_id', sa.String(length=36), nullable=False),
    sa.Column('action', sa.String(length=32), nullable=False),
    sa.Column('target_project', sa.String(length=255), nullable=False),
    sa.ForeignKeyConstraint(['object_id'], ['subnetpools.id'], name=op.f('fk_subnetpool_rbacs_object_id_subnetpools'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_subnetpool_rbacs')),
    sa.UniqueConstraint('object_id', 'action', 'target_project', name=op.f('uq_subnetpool_rbacs_object_id_action_target_project'))
    )
    with op.batch_alter_table('subnetpool_rbacs', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_subnetpool_rbacs_project_id'), ['project_id'], unique=False)
        batch_op.create_index('ix_subnetpool_rbacs_target', ['target_project', 'action'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('subnetpool_rbacs', schema=None) as batch_op:
        batch_op.drop_index('ix_subnetpool_rbacs_target')
        batch_op.drop_index(batch_op.f('ix_subnetpool_rbacs_project_id'))

    op.drop_table('subnetpool_rbacs')
    with op.batch_alter_table('subnetpools', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_subnetpools_project_id'))
        batch_op.drop_index(batch_op.f('ix_subnetpools_address_scope_id'))

    op.drop_table('subnetpools')
    with op.batch_alter_table('addressscope_rbacs', schema=None) as batch_op:
        batch_op.drop_index('ix_addressscope_rbacs_target')
        batch_op.drop_index(batch_op.f('ix_addressscope_rbacs_project_id'))

    op.drop_table('addressscope_rbacs')
    with op.batch_alter_table('address_scopes', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_address_scopes_project_id'))

    op.drop_table('address_scopes')
