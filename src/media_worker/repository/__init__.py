"""The media repository port and its adapters (PostgreSQL, embedded SQLite)."""
