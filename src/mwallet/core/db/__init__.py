"""The storage adapter: SQLAlchemy tables, Alembic migrations, repositories and the unit of work.

The only package of the core that imports SQLAlchemy.
"""
