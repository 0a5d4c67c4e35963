"""Single sign-on: linked identities, tenants' identity providers and domains, spent states;
a password becomes optional (people who sign in only through a provider have none).

Revision ID: 0003_single_sign_on
Revises: 0002_api_keys
Create Date: 2026-12-07
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003_single_sign_on"
down_revision: str | None = "0002_api_keys"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Batch mode: SQLite cannot ALTER a column in place.
    with op.batch_alter_table("users") as users:
        users.alter_column("password_hash", existing_type=sa.String(255), nullable=True)
    op.create_table(
        "sso_identities",
        sa.Column("id", sa.Uuid(), primary_key=True),
        sa.Column(
            "user_id", sa.Uuid(), sa.ForeignKey("users.id", ondelete="CASCADE"), nullable=False
        ),
        sa.Column("provider_id", sa.String(64), nullable=False),
        sa.Column("subject", sa.String(255), nullable=False),
        sa.Column("email", sa.String(254), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("provider_id", "subject", name="uq_sso_identities_provider_id_subject"),
    )
    op.create_index("ix_sso_identities_user_id", "sso_identities", ["user_id"])
    op.create_table(
        "sso_tenant_providers",
        sa.Column("id", sa.Uuid(), primary_key=True),
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("issuer", sa.String(500), nullable=False),
        sa.Column("client_id", sa.String(255), nullable=False),
        sa.Column("client_secret_encrypted", sa.Text(), nullable=False),
        sa.Column("enforce", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("tenant_id", name="uq_sso_tenant_providers_tenant_id"),
    )
    op.create_table(
        "sso_tenant_domains",
        sa.Column("domain", sa.String(253), primary_key=True),
        sa.Column(
            "provider_id",
            sa.Uuid(),
            sa.ForeignKey("sso_tenant_providers.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
    )
    op.create_index("ix_sso_tenant_domains_provider_id", "sso_tenant_domains", ["provider_id"])
    op.create_index("ix_sso_tenant_domains_tenant_id", "sso_tenant_domains", ["tenant_id"])
    op.create_table(
        "sso_spent_states",
        sa.Column("state_hash", sa.String(64), primary_key=True),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_sso_spent_states_expires_at", "sso_spent_states", ["expires_at"])


def downgrade() -> None:
    op.drop_table("sso_spent_states")
    op.drop_table("sso_tenant_domains")
    op.drop_table("sso_tenant_providers")
    op.drop_table("sso_identities")
    with op.batch_alter_table("users") as users:
        users.alter_column("password_hash", existing_type=sa.String(255), nullable=False)
