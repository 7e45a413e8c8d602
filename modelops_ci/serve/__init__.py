"""Serving: the ASGI app that answers from the versions a deployment file names, and its log."""
