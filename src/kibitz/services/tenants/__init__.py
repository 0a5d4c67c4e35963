"""The tenants service: tenants, plans, memberships, invites and usage counters."""
