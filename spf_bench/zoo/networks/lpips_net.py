"""Placeholder until this network is written."""
