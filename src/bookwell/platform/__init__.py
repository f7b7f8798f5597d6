"""What every context shares and no context owns."""
