"""Test doubles shipped as real code (fake external services for tests and demos)."""
