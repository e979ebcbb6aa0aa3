"""Command-line programs (absl flags); ``bin/`` holds thin launchers for them."""
