"""Stream consumers and scheduled jobs (``python -m worker``)."""
