"""Output masking (being rewritten)."""
