"""GitHub: the REST client and what is posted there."""
