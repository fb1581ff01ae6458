"""agents: agents, DHCP/L3 scheduling bindings, port binding levels

Revision ID: 33f5ca49ded2
Revises: e645ecd2a61b
Create Date: 2026-11-21 06:14:38.812008
"""

import sqlalchemy as sa
from alembic import op

revision = '33f5ca49ded2'
down_revision = 'e645ecd2a61b'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'agents',
        sa.Column('id', sa.String(length=36), nullable=False),
        sa.Column('agent_type', sa.String(length=255), nullable=False),
        sa.Column('binary', sa.String(length=255), nullable=False),
        sa.Column('topic', sa.String(length=255), nullable=False),
        sa.Column('host', sa.String(length=255), nullable=False),
        sa.Column('admin_state_up', sa.Boolean(), nullable=False),
        sa.Column('description', sa.String(length=255), nullable=True),
        sa.Column('created_at', sa.DateTime(), nullable=False),
        sa.Column('started_at', sa.DateTime(), nullable=False),
        sa.Column('heartbeat_timestamp', sa.DateTime(), nullable=False),
        sa.Column('configurations', sa.JSON(), nullable=False),
        sa.Column('availability_zone', sa.String(length=255), nullable=True),
        sa.Column('resources_synced', sa.Boolean(), nullable=True),
        sa.Column('load', sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_agents')),
        sa.UniqueConstraint('agent_type', 'host', name=op.f('uq_agents_agent_type_host')),
    )
    with op.batch_alter_table('agents', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_agents_host'), ['host'], unique=False)

    op.create_table(
        'network_dhcp_agent_bindings',
        sa.Column('network_id', sa.String(length=36), nullable=False),
        sa.Column('dhcp_agent_id', sa.String(length=36), nullable=False),
        sa.ForeignKeyConstraint(['dhcp_agent_id'], ['agents.id'],
                                name=op.f('fk_network_dhcp_agent_bindings_dhcp_agent_id_agents'),
                                ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['network_id'], ['networks.id'],
                                name=op.f('fk_network_dhcp_agent_bindings_network_id_networks'),
                                ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('network_id', 'dhcp_agent_id', name=op.f('pk_network_dhcp_agent_bindings')),
    )
    with op.batch_alter_table('network_dhcp_agent_bindings', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_network_dhcp_agent_bindings_dhcp_agent_id'), ['dhcp_agent_id'],
                              unique=False)

    op.create_table(
        'router_l3_agent_bindings',
        sa.Column('router_id', sa.String(length=36), nullable=False),
        sa.Column('l3_agent_id', sa.String(length=36), nullable=False),
        sa.Column('binding_index', sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(['l3_agent_id'], ['agents.id'],
                                name=op.f('fk_router_l3_agent_bindings_l3_agent_id_agents'), ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['router_id'], ['routers.id'],
                                name=op.f('fk_router_l3_agent_bindings_router_id_routers'), ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('router_id', 'l3_agent_id', name=op.f('pk_router_l3_agent_bindings')),
    )
    with op.batch_alter_table('router_l3_agent_bindings', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_router_l3_agent_bindings_l3_agent_id'), ['l3_agent_id'], unique=False)

    op.create_table(
        'port_binding_levels',
        sa.Column('port_id', sa.String(length=36), nullable=False),
        sa.Column('level', sa.Integer(), autoincrement=False, nullable=False),
        sa.Column('host', sa.String(length=255), nullable=False),
        sa.Column('driver', sa.String(length=64), nullable=False),
        sa.Column('segment_id', sa.String(length=36), nullable=True),
        sa.ForeignKeyConstraint(['port_id'], ['ports.id'], name=op.f('fk_port_binding_levels_port_id_ports'),
                                ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('port_id', 'level', name=op.f('pk_port_binding_levels')),
    )


def downgrade() -> None:
    op.drop_table('port_binding_levels')
    with op.batch_alter_table('router_l3_agent_bindings', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_router_l3_agent_bindings_l3_agent_id'))
    op.drop_table('router_l3_agent_bindings')
    with op.batch_alter_table('network_dhcp_agent_bindings', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_network_dhcp_agent_bindings_dhcp_agent_id'))
    op.drop_table('network_dhcp_agent_bindings')
    with op.batch_alter_table('agents', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_agents_host'))
    op.drop_table('agents')
