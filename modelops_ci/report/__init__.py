"""Rendering results for people: the console, markdown, HTML."""
