"""Helpers shared by the test suites: helm rendering, servers, the API emulator."""
