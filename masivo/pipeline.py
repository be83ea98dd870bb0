"""Top-level orchestration: ingestion → audiences → journeys → destinations.

Reactions between apps flow through explicit calls made here (or outbox rows a higher layer
reads), never through Django signals. The apps that feed it arrive with their issues.
"""
