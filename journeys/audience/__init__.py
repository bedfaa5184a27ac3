"""Audiences (issue 19): profiles loaded in bulk, and segments that pick profiles with a CEL expression."""
