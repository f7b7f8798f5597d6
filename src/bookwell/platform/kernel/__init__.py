"""Pure-Python building blocks that any domain may import."""
