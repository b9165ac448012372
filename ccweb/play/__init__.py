"""The built-in player web client (``/play``): static HTML, CSS and ES modules that talk to
the public REST API and the realtime socket like any other client (issue 15)."""
