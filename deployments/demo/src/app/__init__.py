"""The demo application (what the build step packages)."""
