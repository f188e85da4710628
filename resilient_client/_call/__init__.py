"""The call room: one logical call's life, the pipeline it runs in, and its endpoints."""
