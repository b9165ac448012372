"""The WebSocket/SSE hub and fan-out (built in a later issue; see SPEC §3 Realtime)."""
