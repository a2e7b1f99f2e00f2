"""Recordings in S3-compatible object storage (obstore): store, uploader, completer."""
