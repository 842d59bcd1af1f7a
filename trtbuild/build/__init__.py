"""Stage 2 — the build: the plan (steps and content keys) and the orchestrator that runs it (lease, fetch,
quantize/convert, engine build, verify, publish)."""
