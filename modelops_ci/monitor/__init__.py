"""Monitoring live traffic: windows of logged rows, their profiles, drift and performance."""
