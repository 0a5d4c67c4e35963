"""Ending accounts: a person deletes their own, or is removed from their tenant."""
