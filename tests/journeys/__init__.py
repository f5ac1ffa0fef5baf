"""Helpers of tests/test_journeys.py: servers, the browser, the notebook UI and the course copy."""
