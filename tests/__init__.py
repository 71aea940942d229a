"""The test suite (a package, so that test modules and conftests have unique names)."""
