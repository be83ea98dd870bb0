"""End-to-end benchmark: ingestion and the follow-up together (see README.md)."""
