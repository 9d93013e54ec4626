"""The results database: SQLAlchemy models, opening and migrating, repository functions."""
