"""Alembic migrations of the bot's database (run by ``Database.upgrade`` at start)."""
