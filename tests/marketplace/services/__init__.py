"""Unit tests of each service, run through the test harness."""
