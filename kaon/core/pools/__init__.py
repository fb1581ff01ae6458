"""Subnet pools, prefix allocation and address scopes."""
